"""The weighted-score margin of each judgement, renormalised: one definition for every reader.

The rubric judge's own `score_margin` is Σ w·(norm_A − norm_B) with the weights as it wrote them;
when they do not sum to 1 (seen: 2.2) that margin leaves [−1, 1] and stops being comparable across
judgements. The summary, the calibration buckets, the margin distribution and `reweight` all use
this renormalised margin (weights divided by their sum within each judgement) so they agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEIGHT_TOLERANCE = 1e-6


def recompute_weighted(criteria: pd.DataFrame) -> pd.DataFrame:
    """Per judged row (as sent): weight sum, renormalised flag, weighted scores and margin A − B.

    Columns: row, weight_sum, renormalised, ours_A, ours_B, margin (NaN where the weights sum to 0).
    """
    if criteria.empty:
        return pd.DataFrame(
            {"row": pd.Series(dtype=np.int64)}
            | {k: pd.Series(dtype=np.float64) for k in ("weight_sum", "ours_A", "ours_B", "margin")}
        ).assign(renormalised=pd.Series(dtype=bool))
    c = criteria.assign(
        wa=criteria["weight"] * criteria["norm_A"], wb=criteria["weight"] * criteria["norm_B"]
    )
    g = c.groupby("row", sort=True).agg(weight_sum=("weight", "sum"), wa=("wa", "sum"), wb=("wb", "sum"))
    ws = g["weight_sum"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ours_a = np.where(ws > 0, g["wa"].to_numpy() / ws, np.nan)
        ours_b = np.where(ws > 0, g["wb"].to_numpy() / ws, np.nan)
    return pd.DataFrame(
        {
            "row": g.index.to_numpy(dtype=np.int64),
            "weight_sum": ws,
            "renormalised": np.abs(ws - 1.0) > WEIGHT_TOLERANCE,
            "ours_A": ours_a,
            "ours_B": ours_b,
            "margin": ours_a - ours_b,
        }
    )


def renormalised_margins(prompts: pd.DataFrame, criteria: pd.DataFrame | None) -> pd.Series:
    """Margin A − B as sent per prompts-table row (index = the table's index), renormalised.

    From the criteria when a row has them; otherwise the judge's `score_margin` when it lies in
    [−1, 1] (it can only be trusted as a margin there); NaN otherwise.
    """
    judge = (
        pd.to_numeric(prompts["score_margin"], errors="coerce")
        if "score_margin" in prompts.columns
        else pd.Series(np.nan, index=prompts.index)
    )
    judge = judge.where(judge.abs() <= 1.0 + WEIGHT_TOLERANCE)
    if criteria is None or criteria.empty:
        return judge.astype(np.float64)
    ours = recompute_weighted(criteria).set_index("row")["margin"]
    mapped = prompts["row"].map(ours)
    return mapped.where(mapped.notna(), judge).astype(np.float64)
