"""`details.parquet`: the two flattened tables in one file, written by `summarize`, read back by the
trust commands. Writer and reader sit together so the file's layout is decided in one place.

The prompts and criteria tables (docs/design.md, "The flattened details") are stacked with a
`kind` column (`prompt` | `criterion`). Both directions use `engine="auto"`, so files from the
Lambda (fastparquet, no pyarrow in its bundle) and from a laptop (pyarrow) both work.
"""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from novajudge.errors import ResultsError
from novajudge.verdicts import CRITERION_COLUMNS, FLOAT_COLUMNS, PROMPT_COLUMNS

#: The files `summarize` writes into a results folder, by role.
FILES = {
    "summary": "summary.json",
    "details": "details.parquet",
    "figure": "report.png",
    "report": "report.html",
}
KINDS = ("prompt", "criterion")


#: details.parquet's columns, in order: `kind`, then the prompt columns, then the criterion ones
#: the prompts table lacks (a row has None where its kind has no such column).
COLUMNS = ("kind", *dict.fromkeys([*PROMPT_COLUMNS, *CRITERION_COLUMNS]))


def details_table(prompts: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """Both flattened tables stacked with `kind`; columns typed so pyarrow and fastparquet agree."""
    p = prompts.assign(kind=KINDS[0])
    c = criteria.assign(kind=KINDS[1])
    out: dict[str, Any] = {}
    for name in COLUMNS:
        left = p[name] if name in p.columns else None
        right = c[name] if name in c.columns else None
        dtype = next((s.dtype for s in (left, right) if s is not None), object)
        if name == "row":
            out[name] = np.concatenate([left.to_numpy(np.int64), right.to_numpy(np.int64)])
        elif dtype == np.float64:
            out[name] = np.concatenate(
                [
                    left.to_numpy(np.float64) if left is not None else np.full(len(p), np.nan),
                    right.to_numpy(np.float64) if right is not None else np.full(len(c), np.nan),
                ]
            )
        else:  # strings; None where a kind has no such column
            out[name] = pd.Series(
                np.concatenate(
                    [
                        left.to_numpy(object) if left is not None else np.full(len(p), None, dtype=object),
                        right.to_numpy(object) if right is not None else np.full(len(c), None, dtype=object),
                    ]
                ),
                dtype=object,
            )
    return pd.DataFrame(out)


def _arrow_table(prompts: pd.DataFrame, criteria: pd.DataFrame) -> Any:
    """`details_table` built in Arrow: each table's columns converted once and the two stacked
    there, without the stacked pandas frame (twice as fast at 100,000 rows, and it takes no new
    reference to each string, so a forked encoder copies fewer pages)."""
    import pyarrow as pa

    def arrow_type(name: str) -> Any:
        return pa.int64() if name == "row" else pa.float64() if name in FLOAT_COLUMNS else pa.string()

    def part(frame: pd.DataFrame, kind: str) -> Any:
        arrays = [
            pa.array(np.full(len(frame), kind, dtype=object), pa.string())
            if name == "kind"
            else pa.array(frame[name].to_numpy(), arrow_type(name), from_pandas=True)
            if name in frame.columns
            else pa.nulls(len(frame), arrow_type(name))
            for name in COLUMNS
        ]
        return pa.Table.from_arrays(arrays, names=list(COLUMNS))

    return pa.concat_tables([part(prompts, KINDS[0]), part(criteria, KINDS[1])])


def details_parquet(prompts: pd.DataFrame, criteria: pd.DataFrame, *, engine: str = "auto") -> bytes:
    """details.parquet's bytes; `engine="auto"` picks pyarrow when present, else fastparquet (the
    Lambda). Bytes rather than a file so `summarize` can encode them beside the figure, and still
    write nothing when anything fails. Both engines write the same columns (`COLUMNS`) and types."""
    buffer = io.BytesIO()
    if engine in ("auto", "pyarrow") and importlib.util.find_spec("pyarrow") is not None:
        import pyarrow.parquet as pq

        pq.write_table(_arrow_table(prompts, criteria), buffer)
        return buffer.getvalue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecates fastparquet; the Lambda bundle has only it
        details_table(prompts, criteria).to_parquet(buffer, engine=engine, index=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Details:
    """The two flattened tables of one run, the judge variant, and where they came from."""

    prompts: pd.DataFrame
    criteria: pd.DataFrame
    variant: str
    source: Path


def _variant(folder: Path, criteria: pd.DataFrame) -> str:
    """The variant named in summary.json; without one, rubric exactly when criteria exist."""
    summary = folder / FILES["summary"]
    if summary.is_file():
        try:
            value = json.loads(summary.read_text(encoding="utf-8")).get("variant")
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise ResultsError(f"{summary}: cannot read the judge variant ({exc})") from exc
        if value in ("rubric", "binary"):
            return value
    return "rubric" if not criteria.empty else "binary"


def load_details(path: str | Path) -> Details:
    """Load `<path>/details.parquet` (or `path` itself when it is a parquet file) and split by `kind`."""
    path = Path(path)
    name = FILES["details"]
    if not path.exists():
        raise ResultsError(f"{path}: no such folder; expected a results folder holding {name}")
    file = path / name if path.is_dir() else path
    if not file.is_file():
        raise ResultsError(f"{file}: not found; expected the {name} written by `novajudge summarize`")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas deprecates fastparquet; the Lambda only has it
            table = pd.read_parquet(file, engine="auto")
    except Exception as exc:  # pyarrow/fastparquet raise many unrelated types for a bad file
        raise ResultsError(f"{file}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    if "kind" not in table.columns:
        raise ResultsError(f"{file}: no 'kind' column; expected prompt and criterion rows (docs/design.md)")
    unknown = set(table["kind"].dropna().astype(str)) - set(KINDS)
    if unknown:
        raise ResultsError(f"{file}: column 'kind' has {sorted(unknown)}; expected 'prompt' or 'criterion'")
    tables = {}
    for kind, columns in zip(KINDS, (PROMPT_COLUMNS, CRITERION_COLUMNS), strict=True):
        part = table[table["kind"] == kind]
        missing = [c for c in columns if c not in part.columns]
        if missing:
            raise ResultsError(f"{file}: {kind} rows lack column(s) {', '.join(missing)}")
        part = part[list(columns)].reset_index(drop=True)
        part["row"] = part["row"].astype("int64")
        part["prompt_id"] = part["prompt_id"].astype(str)
        tables[kind] = part
    if tables["prompt"].empty:
        raise ResultsError(f"{file}: no prompt rows; nothing was judged")
    return Details(prompts=tables["prompt"], criteria=tables["criterion"],
                   variant=_variant(file.parent, tables["criterion"]), source=file)  # fmt: skip
