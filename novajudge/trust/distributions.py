"""How the judge uses its scales, measurable without any human labels.

A judge that scores almost everything 4 or 5, or whose margins cluster at 0, gives verdicts that
rest on tiny differences; these figures make that visible before anyone trusts a win rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from novajudge.trust.reweight import normalised_score
from novajudge.trust.verdicts import check_prompts

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
#: |margin| at or below this is "near tie" in the distribution summary (same as reweight's default).
NEAR_TIE = 0.05


def score_distribution(criteria: pd.DataFrame) -> dict[str, object]:
    """Counts per 1–5 score (both responses), share of extremes (1 or 5), and binary pass rate."""
    if criteria.empty:
        return {"scale": {"n": 0, "counts": {}, "values_used": 0, "share_extremes": None},
                "binary": {"n": 0, "share_true": None}}
    scale_scores: list[float] = []
    binary_scores: list[float] = []
    for rec in criteria.to_dict("records"):
        kind = str(rec["type"])
        for side in ("A", "B"):
            where = f"criteria table: row {rec['row']}, criterion {rec['criterion']!r}, field 'score_{side}'"
            norm = normalised_score(rec[f"score_{side}"], kind, where)
            if norm is None:
                continue
            (scale_scores if kind == "scale" else binary_scores).append(
                norm * 4 + 1 if kind == "scale" else norm)
    counts: dict[str, int] = {}
    for value in range(1, 6):
        counts[str(value)] = sum(1 for s in scale_scores if math.isclose(s, value))
    fractional = sum(1 for s in scale_scores if not float(s).is_integer())
    if fractional:
        counts["non-integer"] = fractional
    extremes = sum(1 for s in scale_scores if s in (1.0, 5.0))
    return {
        "scale": {"n": len(scale_scores), "counts": counts,
                  "values_used": sum(1 for v in range(1, 6) if counts[str(v)]),
                  "share_extremes": extremes / len(scale_scores) if scale_scores else None},
        "binary": {"n": len(binary_scores),
                   "share_true": sum(binary_scores) / len(binary_scores) if binary_scores else None},
    }


def margin_distribution(prompts: pd.DataFrame, bins: int = 20) -> dict[str, object]:
    """Quantiles and a histogram of the weighted score margin in model terms (A − B; BA negated)."""
    table = check_prompts(prompts)
    if "score_margin" not in table.columns:
        return {"measured": False, "reason": "not measured: the prompts table has no score_margin"}
    values = pd.to_numeric(table["score_margin"], errors="coerce")
    sign = np.where(table["order"] == "BA", -1.0, 1.0)
    margins = (values * sign).dropna().to_numpy(dtype=float)
    if margins.size == 0:
        return {"measured": False, "reason": "not measured: no score margins (binary judge or none parsed)"}
    counts, edges = np.histogram(np.clip(margins, -1, 1), bins=bins, range=(-1.0, 1.0))
    return {
        "measured": True,
        "n": int(margins.size),
        "quantiles": {f"{q:g}": float(np.quantile(margins, q)) for q in QUANTILES},
        "mean": float(margins.mean()),
        "share_near_tie": float(np.mean(np.abs(margins) <= NEAR_TIE + 1e-9)),
        "near_tie_threshold": NEAR_TIE,
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "note": "margin = weighted score of model A − model B; positive favours model A",
    }
