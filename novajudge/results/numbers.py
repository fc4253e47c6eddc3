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

from novajudge.results.length import METHOD as LENGTH_METHOD
from novajudge.results.length import TOKENS_NOTE, WARNING_RULE, length_check
from novajudge.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_interval,
    jsonable,
    mean_with_interval,
    sign_test_p,
    wilson_interval,
)
from novajudge.trust.margins import recompute_weighted as recompute_weighted_rows
from novajudge.verdicts import ERROR, PASS_KEYS, label_verdict, swap, to_model

#: Below this many prompts with a valid outcome the headline draws no conclusion: an exact sign
#: test needs 6 prompts all one way to reach p < 0.05, and a bootstrap over a handful of prompts
#: understates its own uncertainty.
MIN_PROMPTS = 10
#: A judged order's outcome for model B: win 1, tie (or both bad) 1/2, loss 0.
OUTCOME_B: dict[str, float] = {"B": 1.0, "tie": 0.5, "bothbad": 0.5, "A": 0.0}

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


def judged_orders(prompts: pd.DataFrame, passes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every judged order of every prompt, in model terms: `prompt_id`, `source`, `winner`.

    A judge-input row gives one judged order (its label). For the binary judge, whose every row
    was judged forward and backward (`passes`, aligned with the rows), the row gives two: the
    forward output as sent and the backward output, whose label names the positions swapped.
    """
    rows = prompts[["row", "prompt_id", "order", "winner"]]
    if passes is None or not len(passes):
        return pd.DataFrame(
            {
                "prompt_id": rows["prompt_id"].astype(str).to_numpy(),
                "source": "label",
                "winner": rows["winner"].to_numpy(),
            }
        )
    index = rows["row"].to_numpy()
    forward = passes[PASS_KEYS[0]].to_numpy(object)[index]
    backward = passes[PASS_KEYS[1]].to_numpy(object)[index]
    ids, sources, winners = [], [], []
    for pid, order, label_winner, fwd, bwd in zip(
        rows["prompt_id"].astype(str), rows["order"], rows["winner"], forward, backward, strict=True
    ):
        if fwd is None and bwd is None:  # no passes on this row: its label is its one judged order
            ids.append(pid), sources.append("label"), winners.append(label_winner)
            continue
        ids += [pid, pid]
        sources += ["forward", "backward"]
        winners += [to_model(label_verdict(fwd), order), to_model(swap(label_verdict(bwd)), order)]
    return pd.DataFrame({"prompt_id": ids, "source": sources, "winner": winners})


def prompt_outcomes(prompts: pd.DataFrame, passes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One outcome per prompt: the mean of its valid judged orders (B win 1, tie 1/2, A win 0).

    Columns: prompt_id, judged (valid judged orders), errors, outcome (NaN when none was valid).
    """
    orders = judged_orders(prompts, passes)
    score = orders["winner"].map(OUTCOME_B)
    frame = pd.DataFrame(
        {"prompt_id": orders["prompt_id"], "score": score, "valid": score.notna(), "error": score.isna()}
    )
    g = frame.groupby("prompt_id", sort=True)
    out = pd.DataFrame(
        {
            "judged": g["valid"].sum().astype(np.int64),
            "errors": g["error"].sum().astype(np.int64),
            "outcome": g["score"].mean(),
        }
    )
    return out.reset_index()


def prompt_verdict(b_prompts: int, a_prompts: int, n: int, p: float) -> tuple[str, str]:
    """(code, words) from the prompts: the exact sign test over prompts with a net preference decides.

    Codes: B, A, inconclusive, none. Below MIN_PROMPTS nothing is concluded whatever the judge said.
    """
    if n == 0:
        return "none", "no prompt has a valid judgement"
    if n < MIN_PROMPTS:
        return "inconclusive", f"too few prompts to conclude ({n} < {MIN_PROMPTS})"
    if a_prompts + b_prompts == 0:
        return "inconclusive", f"inconclusive: no net preference in any of the {n} prompts"
    if p < 0.05:
        who = "B" if b_prompts > a_prompts else "A"
        return who, f"{who} is preferred, significant at 5% (sign test over prompts)"
    return "inconclusive", f"inconclusive: the sign test over prompts gives p = {p:.3g}"


def prompt_level_stats(
    prompts: pd.DataFrame,
    passes: pd.DataFrame | None = None,
    *,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """The headline: the prompt as the unit (orders of one prompt are not independent evidence).

    Win rate = mean over prompts of the per-prompt outcome; 95% interval = percentile bootstrap
    over prompts, except when every prompt has the same outcome (the bootstrap collapses to a
    point), where the Wilson interval of that share is given instead; none below MIN_PROMPTS.
    Significance: exact two-sided sign test over prompts with a net preference (outcome above or
    below 1/2), prompts with none left out.
    """
    per = prompt_outcomes(prompts, passes)
    valid = per[per["judged"] > 0]
    values = valid["outcome"].to_numpy(dtype=np.float64)
    n = len(values)
    b = int((values > 0.5).sum())
    a = int((values < 0.5).sum())
    even = n - a - b
    p = sign_test_p(b, a + b)
    rate = float(values.mean()) if n else None
    if n < MIN_PROMPTS:
        lo = hi = None
        method = f"none: fewer than {MIN_PROMPTS} prompts"
    else:
        est = mean_with_interval(values, seed=seed, resamples=resamples)
        lo, hi, method = est["ci_low"], est["ci_high"], est["ci_method"]
    code, words = prompt_verdict(b, a, n, p)
    return {
        "unit": "prompt",
        "prompts": len(per),
        "prompts_valid": n,
        "prompts_all_errors": int(len(per) - n),
        "judged_orders": int(per["judged"].sum()),
        "b_preferred": b,
        "a_preferred": a,
        "no_net_preference": even,
        "win_rate_b": rate,
        "interval_95": [lo, hi],
        "interval_method": method,
        "sign_test_p": p,
        "min_prompts": MIN_PROMPTS,
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
    """Per row (as sent): weight sum, renormalised flag and our weighted scores of response_A / _B
    (`novajudge.trust.margins`, the one definition shared with calibration and reweight)."""
    return recompute_weighted_rows(criteria).drop(columns=["margin"])


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


def _most_common(table: pd.DataFrame, column: str) -> pd.Series:
    """Per criterion key, the most common value of `column`; ties go to the smallest (`Series.mode`)."""
    counts = table.groupby(["criterion_key", column], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values(["criterion_key", "n", column], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("criterion_key").set_index("criterion_key")[column]


def _per_criterion(c: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per criterion key, aggregated column-wise (a run may have thousands of keys)."""
    na, nb = c["model_norm_A"].to_numpy(), c["model_norm_B"].to_numpy()
    table = c.assign(a_win=na > nb, b_win=nb > na, tie=na == nb)
    grouped = table.groupby("criterion_key", sort=False)
    agg = grouped.agg(
        judgements=("row", "nunique"), mean_weight=("weight", "mean"), mean_norm_A=("model_norm_A", "mean"),
        mean_norm_B=("model_norm_B", "mean"), a_wins=("a_win", "sum"), b_wins=("b_win", "sum"),
        ties=("tie", "sum"),
    )  # fmt: skip
    names, kinds = _most_common(table, "criterion"), _most_common(table, "type")
    return [
        {
            "criterion_key": key,
            "name": names[key],
            "type": kinds[key],
            "judgements": int(row.judgements),
            "mean_weight": float(row.mean_weight),
            "mean_norm_A": float(row.mean_norm_A),
            "mean_norm_B": float(row.mean_norm_B),
            "a_wins": int(row.a_wins),
            "b_wins": int(row.b_wins),
            "ties": int(row.ties),
        }
        for key, row in zip(agg.index, agg.itertuples(index=False), strict=True)
    ]


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
        per_crit = _per_criterion(c)
        per_crit.sort(key=lambda r: (-r["judgements"], r["criterion_key"]))
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
    passes: pd.DataFrame | None = None,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """All statistics as a JSON-ready dict (NaN -> None): `prompt_level` (the headline), `length`
    (the length check, `novajudge.results.length`), `ours` (per judgement, secondary), `judge`,
    `rubric` (or None), `methods`."""
    headline = prompt_level_stats(prompts, passes, seed=seed, resamples=resamples)
    per_prompt = prompt_outcomes(prompts, passes)
    length = length_check(per_prompt, prompts, min_prompts=MIN_PROMPTS, raw_interval=headline["interval_95"])
    ours = preference_stats(prompts, seed=seed, resamples=resamples)
    rubric = rubric_stats(prompts, criteria) if variant == "rubric" else None
    methods = {
        "prompt_level": (
            "the headline. Each prompt's outcome is the mean of its judged orders in model terms "
            "(B win 1, tie or both bad 1/2, A win 0; errors left out); for the binary judge a row's "
            "forward and backward passes are two judged orders. Win rate = mean over prompts"
        ),
        "interval_95": {
            "method": "percentile bootstrap over prompts (Wilson when every prompt has the same "
            f"outcome); none below {MIN_PROMPTS} prompts",
            "seed": seed,
            "resamples": resamples,
        },
        "prompt_sign_test": "exact two-sided sign test over prompts with a net preference "
        "(outcome above or below 1/2), p = 1/2; prompts with no net preference left out",
        "verdict": f"significant when the sign test over prompts gives p < 0.05 and at least "
        f"{MIN_PROMPTS} prompts have a valid outcome; otherwise inconclusive",
        "per_judgement": "secondary: every judgement (judge-input row) counted as if independent, "
        "which it is not when a prompt is judged in both orders",
        "win_rate_b_decided": "per judgement: B wins / (A wins + B wins); ties, both-bad ties and "
        "errors excluded",
        "wilson_95": "per judgement: 95% Wilson score interval for the decided win rate",
        "win_rate_b_ties_half": "per judgement: (B wins + (ties + both-bad ties) / 2) / valid judgements",
        "bootstrap_95": {
            "method": "per judgement: percentile bootstrap over judgements of the ties-as-half win rate",
            "seed": seed,
            "resamples": resamples,
        },
        "sign_test_p": "per judgement: exact two-sided binomial sign test of B wins among decided judgements",
        "judge": "the judge's own numbers (Bradley-Terry win rate, its bootstrap bounds), copied as "
        "reported; they refer to the responses as sent (response_A/response_B), i.e. to positions "
        "when the input mixes orders",
        "counts": "in terms of the models: rows sent swapped (order BA) have their label mirrored",
        "length": {
            "lengths": f"characters of each model's answer per prompt, mean over prompts with a valid "
            f"outcome; {TOKENS_NOTE}",
            "bins": "B's win rate over prompts (mean per-prompt outcome) in up to 5 bins of consecutive "
            "length differences B minus A (characters) holding about equal numbers of prompts (equal "
            "differences never split), with the prompts in each bin",
            "lc_win_rate": LENGTH_METHOD,
            "warning": WARNING_RULE,
        },
    }
    if rubric is not None:
        methods["weighted_scores"] = (
            "per response: sum of weight x normalised score ((s-1)/4 for 1-5 scales, 1/0 for binary) "
            "divided by the sum of weights; averaged per model over valid judgements"
        )
        methods["margin"] = "model A's weighted score minus model B's (the judge's sign: positive favours A)"
    return jsonable(
        {
            "prompt_level": headline,
            "length": length,
            "ours": ours,
            "judge": judge_reported(judge_metrics),
            "rubric": rubric,
            "methods": methods,
        }
    )
