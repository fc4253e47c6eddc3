"""Read a results folder (`details.parquet`, optionally `summary.json`) back into the two tables.

`novajudge summarize` stacks the prompts and criteria tables in one parquet with a `kind` column
(docs/design.md); trust commands run later, offline, on that folder, so they need the inverse.
Reading uses `engine="auto"` like the writer, so files from the Lambda (fastparquet) and from a
laptop (pyarrow) both work.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from novajudge.errors import ResultsError
from novajudge.results.parse import CRITERION_COLUMNS, PROMPT_COLUMNS

DETAILS_FILE = "details.parquet"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Details:
    """The two flattened tables of one run, the judge variant, and where they came from."""

    prompts: pd.DataFrame
    criteria: pd.DataFrame
    variant: str
    source: Path


def _variant(folder: Path, criteria: pd.DataFrame) -> str:
    """The variant named in summary.json; without one, rubric exactly when criteria exist."""
    summary = folder / SUMMARY_FILE
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
    if not path.exists():
        raise ResultsError(f"{path}: no such folder; expected a results folder holding {DETAILS_FILE}")
    file = path / DETAILS_FILE if path.is_dir() else path
    if not file.is_file():
        raise ResultsError(f"{file}: not found; expected the {DETAILS_FILE} written by `novajudge summarize`")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas deprecates fastparquet; the Lambda only has it
            table = pd.read_parquet(file, engine="auto")
    except Exception as exc:  # pyarrow/fastparquet raise many unrelated types for a bad file
        raise ResultsError(f"{file}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    if "kind" not in table.columns:
        raise ResultsError(f"{file}: no 'kind' column; expected prompt and criterion rows (docs/design.md)")
    kinds = set(table["kind"].dropna().astype(str))
    unknown = kinds - {"prompt", "criterion"}
    if unknown:
        raise ResultsError(f"{file}: column 'kind' has {sorted(unknown)}; expected 'prompt' or 'criterion'")
    tables = {}
    for kind, columns in (("prompt", PROMPT_COLUMNS), ("criterion", CRITERION_COLUMNS)):
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
    folder = file.parent
    return Details(prompts=tables["prompt"], criteria=tables["criterion"],
                   variant=_variant(folder, tables["criterion"]), source=file)
