"""The summary's numbers: counts, win rates with stated methods, a test, and a verdict in words.

Why our own numbers beside the judge's: the judge reports a Bradley-Terry win rate and a bootstrap
interval whose exact method is not public (the documented examples match no simple formula). We
report those as *the judge's*, and next to them numbers anyone can recompute from the details:

* counts in terms of the *models* (rows sent swapped are un-swapped via the manifest's `order`);
* B's win rate over decided judgements (A or B won) with a 95% Wilson score interval, and B's win
  rate with ties counted as half with a seeded percentile bootstrap;
* the exact two-sided sign test (binomial, p = 1/2, ties excluded);
* a verdict: significant only when the Wilson interval excludes 0.5 *and* the sign test has
  p < 0.05 (the two can disagree near the border; we then say so and call it inconclusive).

For the rubric judge we recompute each response's weighted score from its criteria ((s-1)/4 on the
1-5 scale, 1/0 for binary), renormalising weights that do not sum to 1 (and counting how often that
was needed), compare with the judge's own weighted scores, and summarise the margin and the
criteria. The interval and test themselves live in `novajudge.stats`, shared with the trust block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from novajudge.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_interval,
    jsonable,
    sign_test_p,
    wilson_interval,
)
from novajudge.verdicts import ERROR

WEIGHT_TOLERANCE = 1e-6

JUDGE_KEYS: tuple[str, ...] = (
    "a_scores",
    "b_scores",
    "ties",
    "inference_error",
    "score",
    "winrate",
    "lower_rate",
    "upper_rate",
    "weighted_score_A",
    "weighted_score_B",
    "score_margin",
)


def verdict(b_wins: int, a_wins: int, valid: int, lo: float, hi: float, p: float) -> tuple[str, str]:
    """(code, words). Codes: B, A, inconclusive, none."""
    if valid == 0:
        return "none", "no valid judgements"
    if a_wins + b_wins == 0:
        return "inconclusive", f"inconclusive: all {valid} valid judgements are ties"
    if lo > 0.5 and p < 0.05:
        return "B", "B is preferred, significant at 5%"
    if hi < 0.5 and p < 0.05:
        return "A", "A is preferred, significant at 5%"
    if lo <= 0.5 <= hi:
        return "inconclusive", "inconclusive: the interval includes 0.5"
    return (
        "inconclusive",
        f"inconclusive: the interval excludes 0.5 but the exact sign test does not (p={p:.3g})",
    )


def preference_stats(
    prompts: pd.DataFrame, *, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, Any]:
    """Counts, rates, intervals, sign test and verdict from the flattened prompt table (model terms)."""
    winner = prompts["winner"].astype(str)
    a = int((winner == "A").sum())
    b = int((winner == "B").sum())
    ties = int((winner == "tie").sum())
    bothbad = int((winner == "bothbad").sum())
    errors = int((winner == ERROR).sum())
    total = len(prompts)
    valid = total - errors
    decided = a + b
    lo, hi = wilson_interval(b, decided)
    p = sign_test_p(b, decided)
    blo, bhi = bootstrap_interval(b, ties + bothbad, valid, seed=seed, resamples=resamples)
    code, words = verdict(b, a, valid, lo, hi, p)
    return {
        "counts": {
            "total": total,
            "valid": valid,
            "decided": decided,
            "a_wins": a,
            "b_wins": b,
            "ties": ties,
            "bothbad_ties": bothbad,
            "inference_errors": errors,
        },
        "error_rate": errors / total if total else None,
        "win_rate_b_decided": b / decided if decided else None,
        "wilson_95": [lo, hi],
        "win_rate_b_ties_half": (b + 0.5 * (ties + bothbad)) / valid if valid else None,
        "bootstrap_95": [blo, bhi],
        "sign_test_p": p,
        "verdict": code,
        "verdict_text": words,
    }


def judge_reported(judge_metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The judge's own aggregate numbers, copied as reported (these are *its* numbers, not ours)."""
    return {k: judge_metrics[k] for k in JUDGE_KEYS if k in judge_metrics} | {
        f"{k}_stderr": judge_metrics[f"{k}_stderr"] for k in JUDGE_KEYS if f"{k}_stderr" in judge_metrics
    }


def _describe(values: np.ndarray) -> dict[str, float | int | None]:
    if len(values) == 0:
        return {"n": 0, "mean": None, "median": None, "std": None, "min": None, "q05": None,
                "q25": None, "q75": None, "q95": None, "max": None}  # fmt: skip
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {
        "n": len(values),
        "mean": float(values.mean()),
        "median": float(q[2]),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "q05": float(q[0]),
        "q25": float(q[1]),
        "q75": float(q[3]),
        "q95": float(q[4]),
        "max": float(values.max()),
    }


def recompute_weighted(prompts: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """Per row (as sent): weight sum, renormalised flag and our weighted scores of response_A / _B."""
    if criteria.empty:
        return pd.DataFrame(
            {"row": pd.Series(dtype=np.int64)}
            | {k: pd.Series(dtype=np.float64) for k in ("weight_sum", "ours_A", "ours_B")}
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
        }
    )


def model_scores(prompts: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """Per valid judged row: our weighted scores as sent and per *model*, and the margin A - B.

    For a row sent as `BA`, response_A is model B's, so the pair is swapped back. Columns: row,
    order, judge_A, judge_B (the judge's, as sent), ours_A, ours_B (as sent), weight_sum,
    renormalised, model_A, model_B, margin (model A minus model B; NaN without criteria).
    """
    valid = prompts[prompts["label"] != ERROR]
    ours = recompute_weighted(valid, criteria[criteria["row"].isin(valid["row"])])
    merged = valid[["row", "order", "weighted_score_A", "weighted_score_B"]].merge(ours, on="row", how="left")
    merged = merged.rename(columns={"weighted_score_A": "judge_A", "weighted_score_B": "judge_B"})
    swapped = (merged["order"] == "BA").to_numpy()
    oa, ob = merged["ours_A"].to_numpy(dtype=np.float64), merged["ours_B"].to_numpy(dtype=np.float64)
    merged["model_A"] = np.where(swapped, ob, oa)
    merged["model_B"] = np.where(swapped, oa, ob)
    merged["margin"] = merged["model_A"] - merged["model_B"]
    return merged


def rubric_stats(prompts: pd.DataFrame, criteria: pd.DataFrame, *, top: int = 10) -> dict[str, Any]:
    """Weighted scores recomputed and compared with the judge's, margin distribution, per-criterion table.

    The margin keeps the judge's sign convention: model A minus model B (positive favours A).
    """
    valid = prompts[prompts["label"] != ERROR]
    scores = model_scores(prompts, criteria)
    has = np.isfinite(scores["margin"].to_numpy())
    diffs = np.concatenate(
        [
            np.abs(scores["judge_A"].to_numpy() - scores["ours_A"].to_numpy(dtype=np.float64)),
            np.abs(scores["judge_B"].to_numpy() - scores["ours_B"].to_numpy(dtype=np.float64)),
        ]
    )
    diffs = diffs[np.isfinite(diffs)]
    margin = scores["margin"].to_numpy()[has]
    model_a = scores["model_A"].to_numpy()[has]
    model_b = scores["model_B"].to_numpy()[has]

    per_crit: list[dict[str, Any]] = []
    if not criteria.empty:
        c = criteria[criteria["row"].isin(valid["row"])]
        sw = (c["order"] == "BA").to_numpy()
        c = c.assign(
            model_norm_A=np.where(sw, c["norm_B"], c["norm_A"]),
            model_norm_B=np.where(sw, c["norm_A"], c["norm_B"]),
        )
        for key, grp in c.groupby("criterion_key", sort=False):
            na, nb = grp["model_norm_A"].to_numpy(), grp["model_norm_B"].to_numpy()
            per_crit.append(
                {
                    "criterion_key": key,
                    "name": grp["criterion"].mode().iloc[0],
                    "type": grp["type"].mode().iloc[0],
                    "prompts": int(grp["row"].nunique()),
                    "mean_weight": float(grp["weight"].mean()),
                    "mean_norm_A": float(na.mean()),
                    "mean_norm_B": float(nb.mean()),
                    "a_wins": int((na > nb).sum()),
                    "b_wins": int((nb > na).sum()),
                    "ties": int((na == nb).sum()),
                }
            )
        per_crit.sort(key=lambda r: (-r["prompts"], r["criterion_key"]))
    renorm = int(scores["renormalised"].fillna(False).astype(bool).sum())
    return {
        "rows_with_criteria": int(has.sum()),
        "weighted_score_A_mean": float(model_a.mean()) if has.any() else None,
        "weighted_score_B_mean": float(model_b.mean()) if has.any() else None,
        "margin": _describe(margin),
        "judge_vs_ours_max_abs_diff": float(diffs.max()) if len(diffs) else None,
        "judge_vs_ours_rows_differing": int((diffs > 1e-6).sum()),
        "weights_renormalised_rows": renorm,
        "weights_note": (
            f"weights did not sum to 1 in {renorm} rubric(s); our weighted scores divide by the weight sum"
            if renorm
            else "weights summed to 1 in every rubric"
        ),
        "criteria": per_crit,
        "most_frequent_criteria": [r["name"] for r in per_crit[:top]],
    }


def compute(
    prompts: pd.DataFrame,
    criteria: pd.DataFrame,
    judge_metrics: Mapping[str, Any],
    variant: str,
    *,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """All statistics as a JSON-ready dict (NaN -> None): `ours`, `judge`, `rubric` (or None), `methods`."""
    ours = preference_stats(prompts, seed=seed, resamples=resamples)
    rubric = rubric_stats(prompts, criteria) if variant == "rubric" else None
    methods = {
        "win_rate_b_decided": "B wins / (A wins + B wins); ties, both-bad ties and errors excluded",
        "wilson_95": "95% Wilson score interval for the decided win rate",
        "win_rate_b_ties_half": "(B wins + (ties + both-bad ties) / 2) / valid judgements",
        "bootstrap_95": {
            "method": "percentile bootstrap over prompts of the ties-as-half win rate",
            "seed": seed,
            "resamples": resamples,
        },
        "sign_test_p": "exact two-sided binomial sign test of B wins among decided judgements, p = 1/2",
        "verdict": "significant when the Wilson interval excludes 0.5 and the sign test p < 0.05",
        "judge": "the judge's own numbers (Bradley-Terry win rate, its bootstrap bounds), copied as reported",
        "counts": "in terms of the models: rows sent swapped (order BA) have their label mirrored",
    }
    if rubric is not None:
        methods["weighted_scores"] = (
            "per response: sum of weight x normalised score ((s-1)/4 for 1-5 scales, 1/0 for binary) "
            "divided by the sum of weights; averaged per model over valid judgements"
        )
        methods["margin"] = "model A's weighted score minus model B's (the judge's sign: positive favours A)"
    return jsonable(
        {"ours": ours, "judge": judge_reported(judge_metrics), "rubric": rubric, "methods": methods}
    )
