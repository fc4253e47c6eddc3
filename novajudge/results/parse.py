"""Read the judge's `output.tar.gz` (or its extracted folder) into the flattened details tables.

Why so defensive: the archive comes from a managed job whose format is only documented by example.
Files are located by pattern (`results_*.json`, `details_*.parquet`, anywhere in the tree, names may
contain `|`), the aggregate is read from `all` else the single task key, `metrics` cells are Python
dict literals (`novajudge.metrics_cells`: exactly `ast.literal_eval`'s reading, never `eval`), and
labels, criterion names and scores are read by the one vocabulary in `novajudge.verdicts`.
Anything unexpected raises `ResultsError` naming the file (and row) and what was expected, so a
user never gets numbers computed from a half-understood file.

Where the prompt and the two responses come from: the generation manifest's `prompt`,
`response_A`, `response_B` when it carries them; otherwise they are cut out of `full_prompt` using
the pairwise template markers (`[User Question]`, `[The Start of Assistant A's Answer]`, ...);
otherwise the whole `full_prompt` is the prompt and the responses are empty.

The output is the two tables of docs/design.md, "The flattened details"; `winner` is in terms of the
*models* (a row sent as `BA` has its label mirrored), everything else is as sent. The `metrics`
cells are read once, in batches, and columns are built whole (numbers, scores, keys and labels
vectorised), so a run of 100,000 judgements reads in seconds (`benchmarks/bench_summarize.py`).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import math
import tarfile
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from novajudge.errors import ResultsError
from novajudge.memory import release_free_memory
from novajudge.metrics_cells import iter_metrics
from novajudge.parallel import ordered_map
from novajudge.verdicts import (
    CRITERION_COLUMNS,
    ERROR,
    FLOAT_COLUMNS,
    LABEL_VERDICT,
    ORDERS,
    PASS_KEYS,
    PROMPT_COLUMNS,
    SCORE_TYPES,
    cell_text,
    criterion_keys,
    normalise_scores,
    parse_label,
    swap,
)

_MARKERS = (
    "[User Question]",
    "[The Start of Assistant A's Answer]",
    "[The End of Assistant A's Answer]",
    "[The Start of Assistant B's Answer]",
    "[The End of Assistant B's Answer]",
)


@dataclass
class JudgeOutput:
    """What the archive holds, located and decoded but not yet interpreted."""

    source: str
    variant: str
    task_key: str
    results_file: str
    details_file: str
    judge_metrics: dict[str, Any]
    details: pd.DataFrame


@dataclass
class Flattened:
    """The two flattened tables plus where they came from.

    `passes` holds the binary judge's raw output of each pass (`forward_output`, `backward_output`
    columns, one row per judged row), taken from the same reading of the `metrics` cells as the
    tables; None when no row carries them (the rubric judge).
    """

    judge: JudgeOutput
    prompts: pd.DataFrame
    criteria: pd.DataFrame
    passes: pd.DataFrame | None = None
    #: Judge-input rows whose output held no label and was not flagged as an inference error;
    #: they are error rows in the tables, counted and listed in the summary's notes.
    unreadable: list[int] = dc_field(default_factory=list)


# ----------------------------------------------------------------------------- locating files


def _pick(names: Sequence[str], pattern: str, source: str) -> str:
    hits = sorted(n for n in names if fnmatch.fnmatchcase(n.rsplit("/", 1)[-1], pattern))
    if not hits:
        raise ResultsError(f"{source}: expected a file matching {pattern!r} in the judge output, found none")
    if len(hits) > 1:
        raise ResultsError(
            f"{source}: expected exactly one file matching {pattern!r}, found {len(hits)}: {', '.join(hits)}"
        )
    return hits[0]


def _read_sources(source: str | Path) -> tuple[str, str, str, bytes]:
    """Return (results name, results text, details name, details bytes) from an archive or a folder."""
    path = Path(source)
    if not path.exists():
        raise ResultsError(f"{path}: not found; expected the judge's output.tar.gz or its extracted folder")
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        rname = _pick(names, "results_*.json", str(path))
        dname = _pick(names, "details_*.parquet", str(path))
        return rname, (path / rname).read_text("utf-8", "replace"), dname, (path / dname).read_bytes()
    try:
        raw = path.read_bytes()
        # Decompressed once, in C: tarfile's own gzip stream would decompress the archive again to
        # seek back from the member listing to each member.
        plain = io.BytesIO(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        del raw
        with tarfile.open(fileobj=plain, mode="r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            rname = _pick(list(members), "results_*.json", str(path))
            dname = _pick(list(members), "details_*.parquet", str(path))
            rfile, dfile = tar.extractfile(members[rname]), tar.extractfile(members[dname])
            if rfile is None or dfile is None:  # pragma: no cover - isfile() guarantees a stream
                raise ResultsError(f"{path}: could not read {rname} or {dname}")
            return rname, rfile.read().decode("utf-8", "replace"), dname, dfile.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ResultsError(
            f"{path}: not a readable tar.gz archive ({type(exc).__name__}); "
            "expected the judge's output.tar.gz or its extracted folder"
        ) from exc


def _judge_metrics(text: str, where: str) -> tuple[str, dict[str, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{where}: not valid JSON ({exc}); expected the judge's results JSON") from exc
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or not results:
        raise ResultsError(f"{where}: expected an object with a non-empty 'results' object")
    task_keys = [k for k in results if k != "all"]
    if "all" in results:
        block = results["all"]
    elif len(task_keys) == 1:
        block = results[task_keys[0]]
    else:
        raise ResultsError(
            f"{where}: expected 'results' to hold 'all' or exactly one task key, found {sorted(results)}"
        )
    if not isinstance(block, dict):
        raise ResultsError(f"{where}: expected the results block to be an object, got {type(block).__name__}")
    return (task_keys[0] if task_keys else "all"), block


#: Other spellings of the judge's aggregate keys: the docs write `weighted_score_A`/`_B`, the
#: public rubric sample notebook prints `average_weighted_score_a`/`_b`.
AGGREGATE_SYNONYMS: dict[str, str] = {
    "average_weighted_score_a": "weighted_score_A",
    "average_weighted_score_b": "weighted_score_B",
    "average_weighted_score_a_stderr": "weighted_score_A_stderr",
    "average_weighted_score_b_stderr": "weighted_score_B_stderr",
}


def _canonical_keys(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The judge's aggregate with every known spelling mapped to the documented one (kept if both)."""
    out = dict(metrics)
    for alias, key in AGGREGATE_SYNONYMS.items():
        if alias in out and key not in out:
            out[key] = out[alias]
    return out


#: The details columns the summary reads; any other (`gold`, a newer judge's extras) is not decoded.
DETAILS_COLUMNS = ("metrics", "predictions", *PASS_KEYS)


def _parquet_columns(data: bytes) -> list[str]:
    """The column names in the file's footer, read by whichever engine is installed."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the Lambda bundle: fastparquet only
        import fastparquet

        return list(fastparquet.ParquetFile(io.BytesIO(data)).columns)
    return list(pq.ParquetFile(io.BytesIO(data)).schema_arrow.names)


def _read_parquet(data: bytes, where: str, *, full_prompt: bool = True) -> pd.DataFrame:
    """The details table: the columns the summary reads (`full_prompt` only when asked: it is the
    largest and a manifest with the texts makes it unnecessary), or all of a file without `metrics`,
    for the error that lists them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 deprecates fastparquet; Lambda has only it
            present = _parquet_columns(data)
            wanted = (*DETAILS_COLUMNS, "full_prompt") if full_prompt else DETAILS_COLUMNS
            columns = [c for c in present if c in wanted] if "metrics" in present else None
            return pd.read_parquet(io.BytesIO(data), engine="auto", columns=columns)
    except Exception as exc:  # the engines raise many types for a corrupt file
        raise ResultsError(
            f"{where}: not a readable parquet file ({exc}); expected the judge's details"
        ) from exc


def load_judge_output(source: str | Path, *, full_prompt: bool = True) -> JudgeOutput:
    """Locate and decode the results JSON and the details parquet (no interpretation yet); the
    details hold the columns the summary reads (`DETAILS_COLUMNS`, and `full_prompt` unless
    `full_prompt` is False)."""
    rname, rtext, dname, dbytes = _read_sources(source)
    task_key, metrics = _judge_metrics(rtext, f"{source}:{rname}")
    details = _read_parquet(dbytes, f"{source}:{dname}", full_prompt=full_prompt)
    # `full_prompt` is optional: the AWS docs list it for every task "except llm_judge and
    # strong_reject"; the prompt text then comes from the generation manifest.
    if "metrics" not in details.columns:
        raise ResultsError(
            f"{source}:{dname}: expected a 'metrics' column (and optionally full_prompt, predictions, "
            f"forward_output, backward_output); found {sorted(map(str, details.columns))}"
        )
    metrics = _canonical_keys(metrics)
    sample = " ".join(cell_text(v) for v in details["metrics"].head(50).tolist())
    rubric = (
        "rubric" in task_key
        or "rubric" in dname
        or "weighted_score_A" in metrics
        or "criteria_breakdown" in sample
        or "weighted_score_A" in sample
    )
    return JudgeOutput(
        source=str(source),
        variant="rubric" if rubric else "binary",
        task_key=task_key,
        results_file=rname,
        details_file=dname,
        judge_metrics=metrics,
        details=details.reset_index(drop=True),
    )


# ----------------------------------------------------------------------------- decoding cells


def _numbers(values: Sequence[Any]) -> np.ndarray:
    """Cells as float64; anything that is not a number (None, text) is NaN."""
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)


def _texts(values: Sequence[Any]) -> list[str]:
    """Cells as text; a column that is all strings already (the usual case) is returned as is."""
    if set(map(type, values)) <= {str}:
        return values if isinstance(values, list) else list(values)
    return [v if type(v) is str else cell_text(v) for v in values]


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A list as a 1-d object array, element for element (a list in a cell stays one element)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _split_full_prompt(full: str) -> tuple[str, str, str] | None:
    positions = [full.find(m) for m in _MARKERS]
    if any(p < 0 for p in positions) or positions != sorted(positions):
        return None
    cuts = [(positions[i] + len(_MARKERS[i]), positions[i + 1]) for i in range(4)]
    prompt = full[cuts[0][0] : cuts[0][1]].strip()
    a = full[cuts[1][0] : cuts[1][1]].strip()
    b = full[positions[3] + len(_MARKERS[3]) : positions[4]].strip()
    return prompt, a, b


def _number(value: Any) -> float:
    """A flag or count cell as a number; anything unreadable (None, text, NaN) is 0."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(x) else x


def _binary_label(metrics: Mapping[str, Any]) -> str | None:
    """A binary row decided from its per-row counts over both passes (`a_scores`: wins of the
    response sent as A, `b_scores`: of the one sent as B), when no forward output is readable."""
    a, b, t = (_number(metrics.get(k)) for k in ("a_scores", "b_scores", "ties"))
    if a + b + t == 0:
        return None
    if a > b:
        return "A>B"
    if b > a:
        return "B>A"
    return "A=B"


def _row_label(variant: str, metrics: Mapping[str, Any], prediction_cell: Any, forward: Any) -> str | None:
    """The row's label as sent, or None when the judge's output holds none (an unreadable row).

    Rubric: `metrics['predictions']`, else the `predictions` column. Binary: the documented
    `forward_output` (the pair as sent) first, then the per-row counts of both passes, and only
    then `predictions`, which may hold both passes' texts with the backward (swapped) one last.
    """
    if variant == "binary":
        label = parse_label(forward)
        if label is None:
            label = _binary_label(metrics)
        return label if label is not None else parse_label(prediction_cell)
    raw = metrics.get("predictions")
    if not cell_text(raw).strip():
        raw = prediction_cell
    return parse_label(raw)


# ----------------------------------------------------------------------------- manifest


def _manifest_rows(manifest: Sequence[Mapping[str, Any]] | None, n: int, where: str) -> dict[int, Mapping]:
    if manifest is None:
        return {}
    by_row: dict[int, Mapping[str, Any]] = {}
    for i, entry in enumerate(manifest):
        if type(entry) is not dict and not isinstance(entry, Mapping):  # the ABC check is slow
            raise ResultsError(f"{where} entry {i}: expected an object with row, prompt_id, order")
        if entry.get("row") is None:
            continue  # a generation that never reached the judge (e.g. failed): not a judge-input line
        try:
            row = int(entry["row"])
        except (TypeError, ValueError):
            raise ResultsError(
                f"{where} entry {i}: expected an integer 'row', got {entry['row']!r}"
            ) from None
        order = entry.get("order", "AB")
        if order not in ORDERS:
            raise ResultsError(f"{where} entry {i}: expected 'order' AB or BA, got {order!r}")
        if row in by_row:
            raise ResultsError(f"{where}: row {row} appears twice; expected one entry per judge-input line")
        by_row[row] = entry
    if sorted(by_row) != list(range(n)):
        missing = sorted(set(range(n)) - set(by_row))[:5]
        extra = sorted(set(by_row) - set(range(n)))[:5]
        raise ResultsError(
            f"{where}: expected rows 0..{n - 1} matching the {n} judged rows; "
            f"missing {missing}, unexpected {extra}"
        )
    return by_row


# ----------------------------------------------------------------------------- flattening


@dataclass
class _Criteria:
    """Criterion cells as read, one list per field, before they are checked and typed column-wise."""

    row: list[int]
    name: list[str]
    kind: list[Any]
    weight: list[Any]
    score_A: list[Any]
    score_B: list[Any]
    justification_A: list[Any]
    justification_B: list[Any]

    def add(self, first_row: int, batch: Sequence[Mapping[str, Any]], source: str) -> None:
        """The criteria of a batch of rows (row numbers from `first_row`), field by field."""
        owners: list[int] = []
        names: list[Any] = []
        cells: list[Any] = []
        for row, metrics in enumerate(batch, start=first_row):
            breakdown = metrics.get("criteria_breakdown") or {}
            if type(breakdown) is not dict and not isinstance(breakdown, Mapping):
                raise ResultsError(
                    f"{source} row {row}: expected 'criteria_breakdown' to be a dict of criteria"
                )
            owners.extend([row] * len(breakdown))
            names.extend(breakdown)
            cells.extend(breakdown.values())
        if not set(map(type, cells)) <= {dict}:
            for i, c in enumerate(cells):
                if not isinstance(c, Mapping):
                    raise ResultsError(
                        f"{source} row {owners[i]} criterion {names[i]!r}: "
                        "expected a dict with type, weight, score_A, score_B"
                    )
        self.row.extend(owners)
        self.name.extend(names if set(map(type, names)) <= {str} else map(str, names))
        self.kind.extend([c.get("type", "scale") for c in cells])
        for field in ("weight", "score_A", "score_B", "justification_A", "justification_B"):
            getattr(self, field).extend([c.get(field) for c in cells])

    def columns(self, source: str) -> dict[str, Any]:
        """The criteria columns but `prompt_id` and `order` (the caller's, by row), checked and
        typed (numpy arrays, object arrays for text); errors name the row, the criterion and the
        field, first in row order."""

        def where(i: int, field: str = "") -> str:
            return f"{source} row {self.row[i]} criterion {self.name[i]!r}{field}"

        as_text = self.kind if set(map(type, self.kind)) <= {str} else list(map(str, self.kind))
        lowered = {k: k.strip().lower() for k in set(as_text)}
        kinds = list(map(lowered.__getitem__, as_text))
        unknown = set(lowered.values()) - set(SCORE_TYPES)
        if unknown:
            i = next(i for i, k in enumerate(kinds) if k in unknown)
            raise ResultsError(f"{where(i)}: expected type 'scale' or 'binary', got {self.kind[i]!r}")
        weights = _numbers(self.weight)
        bad = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0)))
        if bad.size:
            i = int(bad[0])
            raise ResultsError(f"{where(i)}: expected a non-negative weight, got {self.weight[i]!r}")
        scores = {
            side: normalise_scores(
                getattr(self, f"score_{side}"),
                kinds,
                lambda i, s=side: where(i, f" score_{s}"),
                required=True,
            )
            for side in ("A", "B")
        }
        return {
            "row": np.asarray(self.row, dtype=np.int64),
            "criterion": _objects(self.name),
            "criterion_key": _objects(criterion_keys(self.name)),
            "type": _objects(kinds),
            "weight": weights,
            "score_A": scores["A"][0],
            "score_B": scores["B"][0],
            "norm_A": scores["A"][1],
            "norm_B": scores["B"][1],
            "justification_A": _objects(_texts(self.justification_A)),
            "justification_B": _objects(_texts(self.justification_B)),
        }


_NO_ENTRY: Mapping[str, Any] = {}  # a judged row the manifest does not describe


def _texts_of_prompts(
    full_prompts: Sequence[Any] | None, entries: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    """Prompt, response_A, response_B of each row (its manifest entry, and its `full_prompt` cell
    when there is one): from the manifest, else cut out of `full_prompt`."""
    prompt, resp_a, resp_b = [], [], []
    for i, entry in enumerate(entries):
        if "prompt" in entry:
            texts = (
                str(entry.get("prompt", "")),
                str(entry.get("response_A", "")),
                str(entry.get("response_B", "")),
            )
        else:
            full = cell_text(full_prompts[i]) if full_prompts is not None else ""
            texts = _split_full_prompt(full) or (full, "", "")
        prompt.append(texts[0])
        resp_a.append(texts[1])
        resp_b.append(texts[2])
    return prompt, resp_a, resp_b


#: The prompt columns read from each row's `metrics` (the passes too, in `PASS_KEYS`).
_PROMPT_FIELDS = ("weighted_score_A", "weighted_score_B", "score_margin", "overall_justification")


#: Judged rows read as one task; the forked worker of `novajudge.parallel` reads every other slice.
ROWS_PER_TASK = 10_000


@dataclass
class _RowReader:
    """What every slice of rows reads, taken from the details and the manifest once, before the
    worker is forked (so the worker holds them too, copy-on-write)."""

    variant: str
    source: str
    metrics: pd.Series
    predictions: list[Any]
    forward_column: list[Any]
    orders: list[str]
    entries: list[Mapping[str, Any]]
    full_prompts: pd.Series | None

    def read(self, first: int) -> dict[str, dict[str, Any] | list[int]]:
        """Rows `first` to `first + ROWS_PER_TASK`, checked and typed: the prompt columns this
        slice decides, its criteria columns and its unreadable rows, as numpy arrays (object
        arrays for text), so the slices are joined and framed without converting them again."""
        cells = self.metrics.iloc[first : first + ROWS_PER_TASK].tolist()
        fields: dict[str, list[Any]] = {k: [] for k in (*_PROMPT_FIELDS, *PASS_KEYS)}
        criteria = _Criteria([], [], [], [], [], [], [], [])
        labels: list[str] = []
        unreadable: list[int] = []
        row = first
        for batch in iter_metrics(cells, self.source, first_row=first):
            for metrics in batch:
                forward = metrics.get(PASS_KEYS[0])
                label = _row_label(
                    self.variant,
                    metrics,
                    self.predictions[row],
                    self.forward_column[row] if forward is None else forward,
                )
                if label is None:
                    # No label: an error row, counted and shown, never an abort. A row the judge
                    # flagged (or left empty) is an inference error; any other is unreadable.
                    raw = forward if forward is not None else self.predictions[row]
                    if cell_text(raw).strip() and not _number(metrics.get("inference_error")):
                        unreadable.append(row)
                    label = ERROR
                labels.append(label)
                row += 1
            for key, values in fields.items():
                values.extend([metrics.get(key) for metrics in batch])
            criteria.add(row - len(batch), batch, self.source)
        orders = self.orders[first:row]
        winners = [LABEL_VERDICT[label] for label in labels]
        full = self.full_prompts.iloc[first:row].tolist() if self.full_prompts is not None else None
        texts = _texts_of_prompts(full, self.entries[first:row])
        strings = {
            "prompt": texts[0],
            "response_A": texts[1],
            "response_B": texts[2],
            "label": labels,
            "winner": [swap(w) if o == "BA" else w for w, o in zip(winners, orders, strict=True)],
            "overall_justification": _texts(fields["overall_justification"]),
        }
        prompts = {
            **{k: _objects(v) for k, v in strings.items()},
            **{k: _numbers(fields[k]) for k in _PROMPT_FIELDS[:3]},
            **{k: fields[k] for k in PASS_KEYS},
        }
        return {"prompts": prompts, "criteria": criteria.columns(self.source), "unreadable": unreadable}


def _joined(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Column-wise concatenation of the slices' columns (arrays stay arrays, lists lists)."""
    out: dict[str, Any] = {}
    for key, first in parts[0].items():
        if isinstance(first, np.ndarray):
            out[key] = np.concatenate([part[key] for part in parts])
        else:
            out[key] = [v for part in parts for v in part[key]]
    return out


def flatten(judge: JudgeOutput, manifest: Sequence[Mapping[str, Any]] | None = None) -> Flattened:
    """Build the prompt and criterion tables of docs/design.md from the decoded judge output.

    The rows are read in slices of `ROWS_PER_TASK`, every other slice by a forked worker when two
    cores are free (`novajudge.parallel`), and joined in row order: the tables, and the first error
    raised, are those of reading the slices one after the other.
    """
    details = judge.details
    n = len(details)
    by_row = _manifest_rows(manifest, n, "manifest")
    source = f"{judge.source}:{judge.details_file}"
    entries = [by_row.get(row, _NO_ENTRY) for row in range(n)]
    orders = [str(e.get("order", "AB")) for e in entries]
    ids = [str(e.get("prompt_id", row)) for row, e in enumerate(entries)]
    reader = _RowReader(
        variant=judge.variant,
        source=source,
        metrics=details["metrics"],
        predictions=details["predictions"].tolist() if "predictions" in details.columns else [None] * n,
        forward_column=details[PASS_KEYS[0]].tolist() if PASS_KEYS[0] in details.columns else [None] * n,
        orders=orders,
        entries=entries,
        full_prompts=details["full_prompt"] if "full_prompt" in details.columns else None,
    )
    prompt_parts, criteria_parts, unreadable = [], [], []
    for part in ordered_map(reader.read, range(0, max(n, 1), ROWS_PER_TASK)):
        prompt_parts.append(part["prompts"])
        criteria_parts.append(part["criteria"])
        unreadable.extend(part["unreadable"])
    fields = _joined(prompt_parts)
    del prompt_parts
    criteria = _joined(criteria_parts)
    del criteria_parts
    for key in PASS_KEYS:  # the passes may be columns rather than metrics entries
        if key in details.columns:
            column = details[key].tolist()
            fields[key] = [m if m is not None else c for m, c in zip(fields[key], column, strict=True)]
    prompts = _typed(
        {"row": np.arange(n, dtype=np.int64), "prompt_id": ids, "order": orders, **fields}, PROMPT_COLUMNS
    )
    passes = None
    if any(v is not None for key in PASS_KEYS for v in fields[key]):
        passes = pd.DataFrame({key: pd.Series(fields[key], dtype=object) for key in PASS_KEYS})
    rows = criteria["row"]
    criteria["prompt_id"] = np.asarray(ids, dtype=object)[rows]
    criteria["order"] = np.asarray(orders, dtype=object)[rows]
    return Flattened(
        judge=judge, prompts=prompts, criteria=_typed(criteria, CRITERION_COLUMNS), passes=passes,
        unreadable=unreadable,
    )


def _typed(columns: Mapping[str, Any], names: Sequence[str]) -> pd.DataFrame:
    """Fixed dtypes (int64 row, float64 numbers, object strings) so parquet engines agree."""
    data: dict[str, Any] = {}
    for name in names:
        if name == "row":
            data[name] = np.asarray(columns[name], dtype=np.int64)
        elif name in FLOAT_COLUMNS:
            data[name] = np.asarray(columns[name], dtype=np.float64)
        else:
            data[name] = pd.Series(columns[name], dtype=object)
    return pd.DataFrame(data)


def _texts_in(manifest: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether every judge row of the manifest carries its texts: the judge's `full_prompt` (the
    largest column of its details) is then not read. A malformed manifest reads it, and fails
    later with the manifest's own error."""
    return manifest is not None and all(
        isinstance(e, Mapping) and ("prompt" in e or e.get("row") is None) for e in manifest
    )


def read_flattened(source: str | Path, manifest: Sequence[Mapping[str, Any]] | None = None) -> Flattened:
    """Archive or folder -> flattened tables (the one call most users need)."""
    judge = load_judge_output(source, full_prompt=not _texts_in(manifest))
    release_free_memory()  # the archive's bytes and the parquet reader's buffers, before a worker forks
    return flatten(judge, manifest)
