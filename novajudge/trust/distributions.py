"""How the judge uses its scales, measurable without any human labels.

A judge that scores almost everything 4 or 5, or whose margins cluster at 0, gives verdicts that
rest on tiny differences; these figures make that visible before anyone trusts a win rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from novajudge.trust.margins import renormalised_margins
from novajudge.verdicts import check_prompts, normalise_scores

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
#: |margin| at or below this is "near tie" in the distribution summary (same as reweight's default).
NEAR_TIE = 0.05


def score_distribution(criteria: pd.DataFrame) -> dict[str, object]:
    """Counts per 1–5 score (both responses), share of extremes (1 or 5), and binary pass rate."""
    if criteria.empty:
        return {"scale": {"n": 0, "counts": {}, "values_used": 0, "share_extremes": None},
                "binary": {"n": 0, "share_true": None}}
    kinds = list(map(str, criteria["type"].tolist())) * 2
    rows, names = criteria["row"].tolist(), criteria["criterion"].tolist()
    n = len(rows)

    def where(i: int) -> str:
        side = "A" if i < n else "B"
        return f"criteria table: row {rows[i % n]}, criterion {names[i % n]!r}, field 'score_{side}'"

    values = pd.concat([criteria["score_A"], criteria["score_B"]], ignore_index=True).to_numpy()
    scores, _ = normalise_scores(values, kinds, where)
    is_scale = np.asarray(kinds, dtype=object) == "scale"
    present = ~np.isnan(scores)
    scale_scores = scores[is_scale & present]
    binary_scores = scores[~is_scale & present]
    counts = {str(v): int(np.isclose(scale_scores, v, rtol=1e-9, atol=0).sum()) for v in range(1, 6)}
    fractional = int(np.sum(scale_scores != np.round(scale_scores)))
    if fractional:
        counts["non-integer"] = fractional
    extremes = int(np.sum((scale_scores == 1.0) | (scale_scores == 5.0)))
    return {
        "scale": {"n": int(scale_scores.size), "counts": counts,
                  "values_used": sum(1 for v in range(1, 6) if counts[str(v)]),
                  "share_extremes": extremes / scale_scores.size if scale_scores.size else None},
        "binary": {"n": int(binary_scores.size),
                   "share_true": float(binary_scores.mean()) if binary_scores.size else None},
    }


def margin_distribution(prompts: pd.DataFrame, bins: int = 20,
                        criteria: pd.DataFrame | None = None) -> dict[str, object]:
    """Quantiles and a histogram of the renormalised weighted score margin per judgement, in model
    terms (A − B; BA negated); see `novajudge.trust.margins`."""
    table = check_prompts(prompts)
    if "score_margin" not in table.columns and (criteria is None or criteria.empty):
        return {"measured": False, "reason": "not measured: the prompts table has no score_margin"}
    values = renormalised_margins(table, criteria)
    sign = np.where(table["order"] == "BA", -1.0, 1.0)
    margins = (values * sign).dropna().to_numpy(dtype=float)
    if margins.size == 0:
        return {"measured": False, "reason": "not measured: no score margins (binary judge or none parsed)"}
    counts, edges = np.histogram(np.clip(margins, -1, 1), bins=bins, range=(-1.0, 1.0))
    return {
        "measured": True,
        "n": int(margins.size),
        "unit": "judgements",
        "quantiles": {f"{q:g}": float(np.quantile(margins, q)) for q in QUANTILES},
        "mean": float(margins.mean()),
        "share_near_tie": float(np.mean(np.abs(margins) <= NEAR_TIE + 1e-9)),
        "near_tie_threshold": NEAR_TIE,
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "note": "one margin per judgement (a prompt judged in both orders gives two): weighted score "
                "of model A − model B, weights renormalised to sum to 1; positive favours model A",
    }
