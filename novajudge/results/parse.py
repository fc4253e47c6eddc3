"""Read the judge's `output.tar.gz` (or its extracted folder) into the flattened details tables.

Why so defensive: the archive comes from a managed job whose format is only documented by example.
Files are located by pattern (`results_*.json`, `details_*.parquet`, anywhere in the tree, names may
contain `|`), the aggregate is read from `all` else the single task key, `metrics` cells are Python
dict literals (`ast.literal_eval`, never `eval`/json), and labels may come with or without their
double brackets. Anything unexpected raises `ResultsError` naming the file (and row) and what was
expected, so a user never gets numbers computed from a half-understood file.

Where the prompt and the two responses come from: the generation manifest's `prompt`,
`response_A`, `response_B` when it carries them; otherwise they are cut out of `full_prompt` using
the pairwise template markers (`[User Question]`, `[The Start of Assistant A's Answer]`, ...);
otherwise the whole `full_prompt` is the prompt and the responses are empty.

The output is the two tables of docs/design.md, "The flattened details"; `winner` is in terms of the
*models* (a row sent as `BA` has its label mirrored), everything else is as sent.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import io
import json
import re
import tarfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from novajudge.errors import ResultsError

LABELS: tuple[str, ...] = ("A>B", "B>A", "A=B", "A=B (bothbad)")
ORDERS: tuple[str, ...] = ("AB", "BA")

PROMPT_COLUMNS: tuple[str, ...] = (
    "row",
    "prompt_id",
    "order",
    "prompt",
    "response_A",
    "response_B",
    "label",
    "winner",
    "weighted_score_A",
    "weighted_score_B",
    "score_margin",
    "overall_justification",
)
CRITERION_COLUMNS: tuple[str, ...] = (
    "row",
    "prompt_id",
    "order",
    "criterion",
    "criterion_key",
    "type",
    "weight",
    "score_A",
    "score_B",
    "norm_A",
    "norm_B",
    "justification_A",
    "justification_B",
)

_TRUE_WORDS = frozenset({"true", "yes", "pass", "1"})
_FALSE_WORDS = frozenset({"false", "no", "fail", "0"})
_LABEL_IN_TEXT = re.compile(r"\[\[\s*(A>B|B>A|A=B \(bothbad\)|A=B)\s*\]\]")
_WINNER_AS_SENT = {"A>B": "A", "B>A": "B", "A=B": "tie", "A=B (bothbad)": "bothbad", "error": "error"}
_SWAP = {"A": "B", "B": "A"}
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
    """The two flattened tables plus where they came from."""

    judge: JudgeOutput
    prompts: pd.DataFrame
    criteria: pd.DataFrame


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
        with tarfile.open(path, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            rname = _pick(list(members), "results_*.json", str(path))
            dname = _pick(list(members), "details_*.parquet", str(path))
            rfile, dfile = tar.extractfile(members[rname]), tar.extractfile(members[dname])
            if rfile is None or dfile is None:  # pragma: no cover - isfile() guarantees a stream
                raise ResultsError(f"{path}: could not read {rname} or {dname}")
            return rname, rfile.read().decode("utf-8", "replace"), dname, dfile.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
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


def _read_parquet(data: bytes, where: str) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # pandas 3 warns that fastparquet is deprecated; Lambda has only it
            return pd.read_parquet(io.BytesIO(data), engine="auto")
    except Exception as exc:  # the engines raise many types for a corrupt file
        raise ResultsError(
            f"{where}: not a readable parquet file ({exc}); expected the judge's details"
        ) from exc


def load_judge_output(source: str | Path) -> JudgeOutput:
    """Locate and decode the results JSON and the details parquet (no interpretation yet)."""
    rname, rtext, dname, dbytes = _read_sources(source)
    task_key, metrics = _judge_metrics(rtext, f"{source}:{rname}")
    details = _read_parquet(dbytes, f"{source}:{dname}")
    missing = [c for c in ("full_prompt", "metrics") if c not in details.columns]
    if missing:
        raise ResultsError(
            f"{source}:{dname}: expected columns full_prompt, gold, predictions, metrics; missing {missing}"
        )
    sample = " ".join(_text(v) for v in details["metrics"].head(50).tolist())
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


def _text(value: Any) -> str:
    """A details cell as text: lighteval-style cells may be lists/arrays of one string."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, float) and np.isnan(value):
        return ""
    return str(value)


def parse_label(raw: Any) -> str | None:
    """The preference label in a raw judge output, with or without `[[...]]`; None if there is none."""
    text = _text(raw).strip()
    if not text:
        return None
    found = _LABEL_IN_TEXT.findall(text)
    if found:
        return found[-1]
    bare = text.strip("[] \n\t")
    return bare if bare in LABELS else None


@functools.lru_cache(maxsize=4096)
def normalise_criterion(name: str) -> str:
    """Key that merges spellings of one criterion across prompts ("Factual Accuracy" = "factual-accuracy")."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _score(value: Any, ctype: str, where: str) -> float:
    """A raw criterion score as a number: 1-5 for scale, 1.0/0.0 for binary."""
    if ctype == "binary":
        if isinstance(value, (bool, np.bool_)):
            return 1.0 if value else 0.0
        if isinstance(value, str) and value.strip().lower() in {
            "true",
            "yes",
            "pass",
            "1",
            "false",
            "no",
            "fail",
            "0",
        }:
            return 1.0 if value.strip().lower() in {"true", "yes", "pass", "1"} else 0.0
        if isinstance(value, (int, float)) and value in (0, 1):
            return float(value)
        raise ResultsError(f"{where}: expected a binary score (true/false), got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ResultsError(f"{where}: expected a 1-5 scale score, got {value!r}") from None
    if not 1.0 <= number <= 5.0:
        raise ResultsError(f"{where}: expected a 1-5 scale score, got {value!r}")
    return number


def _float_or_nan(value: Any) -> float:
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _split_full_prompt(full: str) -> tuple[str, str, str] | None:
    positions = [full.find(m) for m in _MARKERS]
    if any(p < 0 for p in positions) or positions != sorted(positions):
        return None
    cuts = [(positions[i] + len(_MARKERS[i]), positions[i + 1]) for i in range(4)]
    prompt = full[cuts[0][0] : cuts[0][1]].strip()
    a = full[cuts[1][0] : cuts[1][1]].strip()
    b = full[positions[3] + len(_MARKERS[3]) : positions[4]].strip()
    return prompt, a, b


def _metrics_dict(cell: Any, where: str) -> dict[str, Any]:
    if isinstance(cell, dict):
        return cell
    text = _text(cell).strip()
    if not text:
        return {}
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ResultsError(f"{where}: 'metrics' is not a Python dict literal ({exc})") from None
    if not isinstance(value, dict):
        raise ResultsError(f"{where}: expected 'metrics' to be a dict literal, got {type(value).__name__}")
    return value


def _binary_label(metrics: Mapping[str, Any]) -> str | None:
    """Summarise a binary judge's two passes when `predictions` carries no label."""
    a, b, t = (int(metrics.get(k) or 0) for k in ("a_scores", "b_scores", "ties"))
    if a + b + t == 0:
        return None
    if a > b:
        return "A>B"
    if b > a:
        return "B>A"
    return "A=B"


def _row_label(variant: str, metrics: Mapping[str, Any], prediction_cell: Any, where: str) -> str | None:
    """The row's label: the rubric's `metrics['predictions']` when present, else the `predictions` column,
    else (binary) the two passes' counts. A non-empty raw output without a label is malformed unless
    the row is flagged as an inference error; an empty one is an inference error."""
    raw = metrics.get("predictions") if variant == "rubric" else None
    if not _text(raw).strip():
        raw = prediction_cell
    label = parse_label(raw)
    if label is None and variant == "binary":
        label = _binary_label(metrics)
    text = _text(raw).strip()
    if label is None and text and not int(metrics.get("inference_error") or 0):
        raise ResultsError(
            f"{where}: expected a preference label {LABELS} (with or without [[ ]]), got {text[:80]!r}"
        )
    return label


# ----------------------------------------------------------------------------- manifest


def _manifest_rows(manifest: Sequence[Mapping[str, Any]] | None, n: int, where: str) -> dict[int, Mapping]:
    if manifest is None:
        return {}
    by_row: dict[int, Mapping[str, Any]] = {}
    for i, entry in enumerate(manifest):
        if not isinstance(entry, Mapping):
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


def flatten(judge: JudgeOutput, manifest: Sequence[Mapping[str, Any]] | None = None) -> Flattened:
    """Build the prompt and criterion tables of docs/design.md from the decoded judge output."""
    details = judge.details
    n = len(details)
    by_row = _manifest_rows(manifest, n, "manifest")
    where_file = f"{judge.source}:{judge.details_file}"
    has_predictions = "predictions" in details.columns
    prompts: dict[str, list[Any]] = {c: [] for c in PROMPT_COLUMNS}
    crit: dict[str, list[Any]] = {c: [] for c in CRITERION_COLUMNS}
    full_prompts = details["full_prompt"].tolist()
    metric_cells = details["metrics"].tolist()
    prediction_cells = details["predictions"].tolist() if has_predictions else [None] * n
    for row in range(n):
        where = f"{where_file} row {row}"
        metrics = _metrics_dict(metric_cells[row], where)
        entry = by_row.get(row, {})
        order = entry.get("order", "AB")
        prompt_id = str(entry.get("prompt_id", row))
        label = _row_label(judge.variant, metrics, prediction_cells[row], where)
        label = label or "error"
        winner = _WINNER_AS_SENT[label]
        if order == "BA":
            winner = _SWAP.get(winner, winner)
        if "prompt" in entry:
            prompt, resp_a, resp_b = (
                str(entry.get("prompt", "")),
                str(entry.get("response_A", "")),
                str(entry.get("response_B", "")),
            )
        else:
            full = _text(full_prompts[row])
            prompt, resp_a, resp_b = _split_full_prompt(full) or (full, "", "")
        prompts["row"].append(row)
        prompts["prompt_id"].append(prompt_id)
        prompts["order"].append(order)
        prompts["prompt"].append(prompt)
        prompts["response_A"].append(resp_a)
        prompts["response_B"].append(resp_b)
        prompts["label"].append(label)
        prompts["winner"].append(winner)
        prompts["weighted_score_A"].append(_float_or_nan(metrics.get("weighted_score_A")))
        prompts["weighted_score_B"].append(_float_or_nan(metrics.get("weighted_score_B")))
        prompts["score_margin"].append(_float_or_nan(metrics.get("score_margin")))
        prompts["overall_justification"].append(_text(metrics.get("overall_justification")))
        breakdown = metrics.get("criteria_breakdown") or {}
        if not isinstance(breakdown, Mapping):
            raise ResultsError(f"{where}: expected 'criteria_breakdown' to be a dict of criteria")
        for name, c in breakdown.items():
            cwhere = f"{where} criterion {name!r}"
            if not isinstance(c, Mapping):
                raise ResultsError(f"{cwhere}: expected a dict with type, weight, score_A, score_B")
            ctype = str(c.get("type", "scale")).strip().lower()
            if ctype not in ("scale", "binary"):
                raise ResultsError(f"{cwhere}: expected type 'scale' or 'binary', got {c.get('type')!r}")
            weight = _float_or_nan(c.get("weight"))
            if not np.isfinite(weight) or weight < 0:
                raise ResultsError(f"{cwhere}: expected a non-negative weight, got {c.get('weight')!r}")
            sa = _score(c.get("score_A"), ctype, cwhere + " score_A")
            sb = _score(c.get("score_B"), ctype, cwhere + " score_B")
            crit["row"].append(row)
            crit["prompt_id"].append(prompt_id)
            crit["order"].append(order)
            crit["criterion"].append(str(name))
            crit["criterion_key"].append(normalise_criterion(str(name)))
            crit["type"].append(ctype)
            crit["weight"].append(weight)
            crit["score_A"].append(sa)
            crit["score_B"].append(sb)
            crit["norm_A"].append(sa if ctype == "binary" else (sa - 1.0) / 4.0)
            crit["norm_B"].append(sb if ctype == "binary" else (sb - 1.0) / 4.0)
            crit["justification_A"].append(_text(c.get("justification_A")))
            crit["justification_B"].append(_text(c.get("justification_B")))
    return Flattened(
        judge=judge, prompts=_typed(prompts, PROMPT_COLUMNS), criteria=_typed(crit, CRITERION_COLUMNS)
    )


_FLOAT_COLUMNS = frozenset(
    {
        "weighted_score_A",
        "weighted_score_B",
        "score_margin",
        "weight",
        "score_A",
        "score_B",
        "norm_A",
        "norm_B",
    }
)


def _typed(columns: Mapping[str, list[Any]], names: Sequence[str]) -> pd.DataFrame:
    """Fixed dtypes (int64 row, float64 numbers, object strings) so parquet engines agree."""
    data: dict[str, Any] = {}
    for name in names:
        if name == "row":
            data[name] = np.asarray(columns[name], dtype=np.int64)
        elif name in _FLOAT_COLUMNS:
            data[name] = np.asarray(columns[name], dtype=np.float64)
        else:
            data[name] = pd.Series(columns[name], dtype=object)
    return pd.DataFrame(data)


def read_flattened(source: str | Path, manifest: Sequence[Mapping[str, Any]] | None = None) -> Flattened:
    """Archive or folder -> flattened tables (the one call most users need)."""
    return flatten(load_judge_output(source), manifest)
