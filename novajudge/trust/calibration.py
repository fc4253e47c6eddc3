"""Calibration: how often does the judge agree with people, and does its confidence mean anything?

With human preference labels we report agreement of the judge's forward (AB) verdict, a stricter
reconciled agreement (both orders must give the same verdict, and it must match the human), Cohen's
kappa (agreement beyond chance, three classes) and accuracy by |score margin| bucket: if the judge's
margin carried confidence, wide-margin verdicts would agree with humans more often.
Without labels we can still show how the judge uses its scales (`distributions.py`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from novajudge.errors import DatasetError
from novajudge.jsonl import read_jsonl_file
from novajudge.labels import parse_preference
from novajudge.stats import cohen_kappa, proportion
from novajudge.trust.margins import renormalised_margins
from novajudge.verdicts import PREFERENCES, check_prompts, preference

#: |score margin| buckets: [low, high), the last one closed at 1.
BUCKETS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 1.0))


def _preference_value(value: object, where: str) -> str:
    label = parse_preference(value)
    if label is None:
        raise DatasetError(f"{where}: field 'preference' is {value!r}; expected one of A, B, tie")
    return label


def load_human_labels(path: str | Path) -> dict[str, str]:
    """Read human labels from JSONL: one `{"prompt_id": ..., "preference": "A"|"B"|"tie"}` per line.

    Preferences are in terms of the *models* (A = baseline, B = challenger), whatever order the
    judge saw. Blank lines are skipped; every error names the file, the line and the field.
    """
    path = Path(path)
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, record in read_jsonl_file(path, error=DatasetError):
        where = f"{path}: line {number}"
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: expected a JSON object with prompt_id and preference")
        if "prompt_id" not in record or record["prompt_id"] in (None, ""):
            raise DatasetError(f"{where}: field 'prompt_id' is missing")
        if "preference" not in record:
            raise DatasetError(f"{where}: field 'preference' is missing")
        pid = str(record["prompt_id"])
        value = _preference_value(record["preference"], where)
        if pid in labels and labels[pid] != value:
            raise DatasetError(
                f"{where}: field 'prompt_id' {pid!r} was already labelled "
                f"{labels[pid]!r} on line {first_line[pid]}"
            )
        labels[pid] = value
        first_line.setdefault(pid, number)
    if not labels:
        raise DatasetError(f"{path}: no labels found")
    return labels


def labels_from_column(table: pd.DataFrame, column: str, id_column: str = "prompt_id") -> dict[str, str]:
    """Human labels held in a column of a table (e.g. the dataset), keyed by `id_column`.

    Empty cells mean "not labelled"; errors name the table row index and the column.
    """
    for name in (column, id_column):
        if name not in table.columns:
            raise DatasetError(f"labels table: no column {name!r}")
    labels: dict[str, str] = {}
    for index, pid, value in zip(table.index, table[id_column], table[column], strict=True):
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            continue
        labels[str(pid)] = _preference_value(value, f"labels table: row {index}, column {column!r}")
    return labels


def _bucket_of(margin: float) -> int:
    size = abs(margin)
    for i, (low, high) in enumerate(BUCKETS):
        if low <= size < high or (i == len(BUCKETS) - 1 and size <= high):
            return i
    raise ValueError(f"score margin {margin} is outside [-1, 1]")


def calibrate(
    prompts: pd.DataFrame, labels: Mapping[str, str], criteria: pd.DataFrame | None = None
) -> dict[str, object]:
    """Agreement of the judge with human labels (all rates over the same labelled, judged prompts).

    Forward agreement uses the AB judgement; reconciled agreement credits a prompt only when its BA
    judgement exists, gives the same verdict, and that verdict matches the human — so it can never
    exceed forward agreement. `bothbad` counts as a tie. Judge errors are excluded and counted.
    Confidence buckets use the renormalised margin (`novajudge.trust.margins`), from `criteria`
    when given, so a rubric whose weights sum to 2.2 buckets like any other.
    """
    table = check_prompts(prompts)
    bad = sorted(pid for pid, value in labels.items() if value not in PREFERENCES)
    if bad:
        raise DatasetError(
            f"human labels: prompt_id {bad[0]!r} has preference {labels[bad[0]]!r}; expected one of A, B, tie"
        )
    ab = table[table["order"] == "AB"].set_index("prompt_id")
    ba = table[table["order"] == "BA"].set_index("prompt_id")
    labelled = sorted(set(labels) & set(ab.index))
    judged = [pid for pid in labelled if preference(ab.at[pid, "winner"]) is not None]
    humans = [labels[pid] for pid in judged]
    forward = [preference(ab.at[pid, "winner"]) for pid in judged]
    agree = [h == f for h, f in zip(humans, forward, strict=True)]

    result: dict[str, object] = {
        "labels": len(labels),
        "labels_without_judgement": len(set(labels) - set(ab.index)),
        "judge_errors": len(labelled) - len(judged),
        "forward_agreement": proportion(sum(agree), len(judged)),
        "kappa": cohen_kappa(humans, forward, PREFERENCES),
        "confusion": {
            h: {
                j: sum(1 for hh, jj in zip(humans, forward, strict=True) if (hh, jj) == (h, j))
                for j in PREFERENCES
            }
            for h in PREFERENCES
        },
    }
    if ba.empty:
        result["reconciled_agreement"] = {
            "measured": False,
            "reason": "not measured: no pair was judged in the BA order",
        }
    else:
        credited = 0
        for pid, human, fwd in zip(judged, humans, forward, strict=True):
            back = preference(ba.at[pid, "winner"]) if pid in ba.index else None
            credited += int(back is not None and back == fwd == human)
        rec = proportion(credited, len(judged))
        rec["measured"] = True
        result["reconciled_agreement"] = rec

    renorm = renormalised_margins(table, criteria)
    by_id = dict(
        zip(table.loc[table["order"] == "AB", "prompt_id"], renorm[table["order"] == "AB"], strict=True)
    )
    margins = [(pid, float(by_id[pid])) for pid in judged if not pd.isna(by_id.get(pid, float("nan")))]
    if not margins:
        result["by_confidence"] = {
            "measured": False,
            "reason": "not measured: no score margins (binary judge or none parsed)",
        }
    else:
        rows = []
        hit = dict(zip(judged, agree, strict=True))
        for i, (low, high) in enumerate(BUCKETS):
            members = [pid for pid, m in margins if _bucket_of(m) == i]
            correct = sum(hit[pid] for pid in members)
            rows.append(
                {
                    "low": low,
                    "high": high,
                    "closed": i == len(BUCKETS) - 1,
                    "n": len(members),
                    "correct": correct,
                    "accuracy": correct / len(members) if members else None,
                }
            )
        result["by_confidence"] = {
            "measured": True,
            "buckets": rows,
            "note": "confidence = |weighted score margin| of the AB judgement, weights "
            "renormalised to sum to 1",
        }
    return result


def reliability_png(calibration: Mapping[str, object], path: str | Path | None = None) -> bytes:
    """Bar chart of agreement with humans per |margin| bucket (PNG bytes; also saved if `path`).

    Built on a bare `Figure` (no pyplot state), so it is safe inside a Lambda or a test run.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    plot_reliability(calibration, ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def plot_reliability(calibration: Mapping[str, object], ax) -> None:
    """Draw agreement per |margin| bucket on `ax`, each bar labelled with its count."""
    block = calibration.get("by_confidence") or {}
    ax.set_title("Judge vs human agreement by |score margin|")
    if not block.get("measured"):
        ax.text(
            0.5,
            0.5,
            str(block.get("reason", "not measured")),
            ha="center",
            va="center",
            transform=ax.transAxes,
            wrap=True,
        )
        ax.set_axis_off()
        return
    buckets = block["buckets"]
    names = [f"[{b['low']:g}, {b['high']:g}{']' if b['closed'] else ')'}" for b in buckets]
    values = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in buckets]
    bars = ax.bar(names, values, color="#4c72b0")
    for bar, bucket in zip(bars, buckets, strict=True):
        text = f"n={bucket['n']}" if bucket["n"] else "n=0"
        ax.annotate(
            text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8
        )
    forward = (calibration.get("forward_agreement") or {}).get("rate")
    if forward is not None:
        ax.axhline(forward, linestyle="--", color="grey", linewidth=1, label=f"overall {forward:.0%}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("|weighted score margin|")
    ax.set_ylabel("agreement with humans")
