"""The Nova judge's output archive (`output.tar.gz`) in code.

Why this exists: the local stand-in judge and the test fixtures must produce archives that look
exactly like what the real judge job leaves in S3 (the "Output" of
https://docs.aws.amazon.com/sagemaker/latest/dg/nova-judge-evaluation.html), so that the parser in
`novajudge.results` is exercised against the real layout -- including the `|` in the rubric judge's
file names, the Python-dict-literal `metrics` strings and the double-bracketed preference labels --
and never against a convenient private format. It lives in `novajudge.local` because only the
emulator and tests write archives: the Lambda bundles leave `novajudge/local/` out.

Layout written (one run)::

    <run_name>/eval_results/results_<ts>.json
    <run_name>/eval_results/details/<model>/<ts>/details_<task>_<ts>.parquet
    <run_name>/tensorboard_results/eval/events.out.tfevents.<ts>

The TensorBoard file is a small placeholder (a text note, not TF event records): nothing in this
project reads it, it is there so the layout is complete.

What is *our approximation* of the judge (the judge's own code is not public):

* `winrate` is the Bradley-Terry estimate of P(B preferred over A). With only two players and ties
  counted as half a win each, the Bradley-Terry maximum-likelihood estimate reduces to
  ``(b + ties / 2) / (a + b + ties)``. `lower_rate` / `upper_rate` are the 2.5th / 97.5th
  percentiles of that estimate over a seeded bootstrap of the judged pairs (1,000 resamples,
  `seed` argument). `score` is that same point estimate (B's aggregate).
* Each `<count>_stderr` is the standard error of the total: ``sqrt(n) * sd`` of the per-pair values;
  the rubric's `weighted_score_*` and `score_margin` are means over valid judgements and their
  stderr is ``sd / sqrt(n)``.
* Binary judge: every pair is judged in both orders; `a_scores` / `b_scores` / `ties` count wins
  across both passes (so they add up to at most 2 per pair). The backward pass sees the responses
  swapped, so its `[[A>B]]` is a win for the original B. The preference `label` of a binary
  judgement summarises the pair (written to the `predictions` column).
* Rubric judge: one judgement per pair; `a_scores` counts `A>B`, `b_scores` counts `B>A`, `ties`
  counts `A=B` and `A=B (bothbad)`.

Row order in the details parquet is judge-input order (the order of `judgements`).
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from novajudge.errors import ResultsError

Variant = Literal["rubric", "binary"]

#: The four preference labels the judge emits (written as ``[[label]]`` in raw output).
LABELS: tuple[str, ...] = ("A>B", "B>A", "A=B", "A=B (bothbad)")
TIE_LABELS: frozenset[str] = frozenset({"A=B", "A=B (bothbad)"})

#: Task keys and details folders per variant. The rubric names are documented; the binary judge's
#: task key and model folder are not, so these are our stand-in choices (the parser never relies on
#: them: it locates files by pattern).
TASK_KEYS: dict[str, str] = {
    "rubric": "custom|rubric_llm_judge_judge|0",
    "binary": "custom|llm_judge_judge|0",
}
DETAILS_MODEL_FOLDERS: dict[str, str] = {
    "rubric": "rubric_judge_model",
    "binary": "llm_judge_model",
}

BOOTSTRAP_RESAMPLES = 1000

_FULL_PROMPT_TEMPLATE = (
    "[User Question]\n{prompt}\n\n"
    "[The Start of Assistant A's Answer]\n{response_A}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{response_B}\n[The End of Assistant B's Answer]"
)


@dataclass
class Criterion:
    """One rubric criterion as the rubric judge writes it in `criteria_breakdown`.

    `score_A` / `score_B` are 1-5 for `type == "scale"` and true/false for `type == "binary"`.
    """

    name: str
    description: str
    type: Literal["scale", "binary"]
    weight: float
    score_A: float | int | bool
    score_B: float | int | bool
    justification_A: str = ""
    justification_B: str = ""

    def normalised(self, score: float | int | bool) -> float:
        """Map a raw score to [0, 1] the judge's way: (s - 1) / 4 on the 1-5 scale, 1/0 for binary."""
        if self.type == "binary":
            return 1.0 if bool(score) else 0.0
        if self.type == "scale":
            return (float(score) - 1.0) / 4.0
        raise ResultsError(f"criterion {self.name!r}: type must be 'scale' or 'binary', got {self.type!r}")


@dataclass
class Judgement:
    """One judged pair, in the order it was sent to the judge (A = `response_A` as sent).

    `label` is None when the judge could not make a judgement (an inference error). For the rubric
    judge `criteria` is the rubric; `weighted_score_A/B` default to the judge's formula over the
    criteria and may be given explicitly (e.g. to reproduce a judge whose numbers disagree with its
    own breakdown). For the binary judge `forward_output` / `backward_output` are the raw outputs of
    the two passes; when omitted they are derived from `label` (a position-consistent judge).
    """

    prompt: str
    response_A: str
    response_B: str
    label: str | None
    criteria: list[Criterion] = field(default_factory=list)
    overall_justification: str = ""
    forward_output: str | None = None
    backward_output: str | None = None
    weighted_score_A: float | None = None
    weighted_score_B: float | None = None


def bracket(label: str) -> str:
    """The raw form of a label as the judge writes it: ``[[A>B]]``."""
    return f"[[{label}]]"


def mirror(label: str) -> str:
    """The same preference seen with the responses swapped (A>B <-> B>A; ties unchanged)."""
    return {"A>B": "B>A", "B>A": "A>B"}.get(label, label)


def _strip(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.strip()
    while text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    return text or None


def _weighted(j: Judgement) -> tuple[float, float]:
    if j.weighted_score_A is not None and j.weighted_score_B is not None:
        return float(j.weighted_score_A), float(j.weighted_score_B)
    wa = sum(c.weight * c.normalised(c.score_A) for c in j.criteria)
    wb = sum(c.weight * c.normalised(c.score_B) for c in j.criteria)
    return (
        float(j.weighted_score_A) if j.weighted_score_A is not None else wa,
        float(j.weighted_score_B) if j.weighted_score_B is not None else wb,
    )


def _pair_counts(variant: Variant, j: Judgement) -> dict[str, int]:
    """Per-pair a/b/tie/error counts: one pass for the rubric judge, two for the binary judge."""
    counts = {"a_scores": 0, "b_scores": 0, "ties": 0, "inference_error": 0}
    if j.label is None:
        counts["inference_error"] = 1
        return counts
    if variant == "rubric":
        passes = [j.label]
    else:
        fwd = _strip(j.forward_output) if j.forward_output is not None else j.label
        bwd = _strip(j.backward_output) if j.backward_output is not None else mirror(j.label)
        # The backward pass saw B as "A": mirror it back into the original order.
        passes = [fwd, mirror(bwd) if bwd is not None else None]
    for p in passes:
        if p == "A>B":
            counts["a_scores"] += 1
        elif p == "B>A":
            counts["b_scores"] += 1
        elif p in TIE_LABELS:
            counts["ties"] += 1
        else:
            counts["inference_error"] += 1
    return counts


def _rate(a: int, b: int, t: int) -> float:
    n = a + b + t
    return (b + 0.5 * t) / n if n else float("nan")


def _sd(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _bootstrap_rates(valid: list[dict[str, int]], seed: int) -> list[float]:
    """Sorted bootstrap replicates of the win rate, resampling judged pairs (seeded, numpy)."""
    if not valid:
        return []
    a = np.array([c["a_scores"] for c in valid], dtype=np.int64)
    b = np.array([c["b_scores"] for c in valid], dtype=np.int64)
    t = np.array([c["ties"] for c in valid], dtype=np.int64)
    rng = np.random.default_rng(seed)
    reps = np.empty(BOOTSTRAP_RESAMPLES)
    for i in range(BOOTSTRAP_RESAMPLES):
        idx = rng.integers(0, len(valid), len(valid))
        sa, sb, st = a[idx].sum(), b[idx].sum(), t[idx].sum()
        reps[i] = (sb + 0.5 * st) / (sa + sb + st)
    return sorted(reps.tolist())


def _aggregate(variant: Variant, judgements: Sequence[Judgement], seed: int) -> dict[str, float | int | None]:
    """The `results` block. NaN (nothing valid to average) is written as JSON null."""
    per_pair = [_pair_counts(variant, j) for j in judgements]
    n = len(per_pair)
    out: dict[str, float | int | None] = {}
    for key in ("a_scores", "b_scores", "ties", "inference_error"):
        vals = [float(c[key]) for c in per_pair]
        out[key] = int(sum(vals))
        out[f"{key}_stderr"] = math.sqrt(n) * _sd(vals) if n else 0.0
    a, b, t = int(out["a_scores"]), int(out["b_scores"]), int(out["ties"])
    rate = _rate(a, b, t)
    boots = _bootstrap_rates([c for c in per_pair if c["a_scores"] + c["b_scores"] + c["ties"] > 0], seed)
    out["score"] = rate
    out["score_stderr"] = _sd(boots)
    out["winrate"] = rate
    out["winrate_stderr"] = _sd(boots)
    out["lower_rate"] = _percentile(boots, 2.5)
    out["upper_rate"] = _percentile(boots, 97.5)
    if variant == "rubric":
        scored = [_weighted(j) for j in judgements if j.label is not None]
        wa = [s[0] for s in scored]
        wb = [s[1] for s in scored]
        margin = [x - y for x, y in scored]
        m = len(scored)
        for key, vals in (("weighted_score_A", wa), ("weighted_score_B", wb), ("score_margin", margin)):
            out[key] = sum(vals) / m if m else float("nan")
            out[f"{key}_stderr"] = _sd(vals) / math.sqrt(m) if m else float("nan")
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _metrics_literal(variant: Variant, j: Judgement) -> str:
    """The `metrics` cell: a Python dict literal string (repr), as the judge writes it."""
    counts = _pair_counts(variant, j)
    if variant == "binary":
        metrics: dict[str, object] = {
            "forward_output": j.forward_output
            if j.forward_output is not None
            else (bracket(j.label) if j.label else ""),
            "backward_output": j.backward_output
            if j.backward_output is not None
            else (bracket(mirror(j.label)) if j.label else ""),
            **counts,
        }
        return repr(metrics)
    if j.label is None:
        metrics = {"predictions": None, **counts, "criteria_breakdown": {}}
        return repr(metrics)
    wa, wb = _weighted(j)
    breakdown: dict[str, dict[str, object]] = {}
    for c in j.criteria:
        if c.name in breakdown:
            raise ResultsError(f"judgement for prompt {j.prompt[:40]!r}: criterion {c.name!r} appears twice")
        breakdown[c.name] = {
            "description": c.description,
            "type": c.type,
            "weight": c.weight,
            "score_A": c.score_A,
            "score_B": c.score_B,
            "justification_A": c.justification_A,
            "justification_B": c.justification_B,
        }
    metrics = {
        "predictions": bracket(j.label),
        "a_scores": counts["a_scores"],
        "b_scores": counts["b_scores"],
        "weighted_score_A": wa,
        "weighted_score_B": wb,
        "score_margin": wa - wb,
        "overall_justification": j.overall_justification,
        "criteria_breakdown": breakdown,
    }
    return repr(metrics)


def full_prompt(prompt: str, response_A: str, response_B: str) -> str:
    """The judge prompt our stand-in records in `full_prompt` (an MT-Bench-style pairwise template)."""
    return _FULL_PROMPT_TEMPLATE.format(prompt=prompt, response_A=response_A, response_B=response_B)


def details_frame(variant: Variant, judgements: Sequence[Judgement]) -> pd.DataFrame:
    """The details table, one row per judgement in judge-input order."""
    for i, j in enumerate(judgements):
        if j.label is not None and j.label not in LABELS:
            raise ResultsError(f"judgement {i}: label must be one of {LABELS} or None, got {j.label!r}")
    return pd.DataFrame(
        {
            "full_prompt": [full_prompt(j.prompt, j.response_A, j.response_B) for j in judgements],
            "gold": ["" for _ in judgements],
            "predictions": [bracket(j.label) if j.label else "" for j in judgements],
            "metrics": [_metrics_literal(variant, j) for j in judgements],
        },
        dtype=object,
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_judge_archive(
    path: str | Path,
    variant: Variant,
    judgements: Sequence[Judgement],
    run_name: str,
    timestamp: str,
    *,
    judge_model: str = "nova-judge",
    seed: int = 0,
) -> Path:
    """Write an `output.tar.gz` laid out as the real judge job's and return its path.

    `path` is the archive file, or a directory (then `output.tar.gz` is created in it).
    """
    if variant not in TASK_KEYS:
        raise ResultsError(f"variant must be 'rubric' or 'binary', got {variant!r}")
    for name, value in (("run_name", run_name), ("timestamp", timestamp)):
        if not value or "/" in value:
            raise ResultsError(f"{name} must be a non-empty name without '/', got {value!r}")
    target = Path(path)
    if target.is_dir():
        target = target / "output.tar.gz"
    task = TASK_KEYS[variant]
    aggregate = _aggregate(variant, judgements, seed)
    results = {
        "config_general": {
            "model_name": judge_model,
            "variant": variant,
            "run_name": run_name,
            "timestamp": timestamp,
            "num_judgements": len(judgements),
            "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": seed},
        },
        "results": {task: aggregate, "all": dict(aggregate)},
        "versions": {task: 0},
    }
    frame = details_frame(variant, judgements)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # pandas 3 deprecates engine="auto" and fastparquet; design.md needs both (no pyarrow in Lambda).
        warnings.simplefilter("ignore")
        frame.to_parquet(buf, engine="auto", index=False)
    folder = DETAILS_MODEL_FOLDERS[variant]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        _add_bytes(
            tar,
            f"{run_name}/eval_results/results_{timestamp}.json",
            json.dumps(results, indent=2, allow_nan=False).encode(),
        )
        _add_bytes(
            tar,
            f"{run_name}/eval_results/details/{folder}/{timestamp}/details_{task}_{timestamp}.parquet",
            buf.getvalue(),
        )
        _add_bytes(
            tar,
            f"{run_name}/tensorboard_results/eval/events.out.tfevents.{timestamp}",
            b"placeholder written by novajudge.local.judge_archive; not TensorBoard event records\n",
        )
    return target
