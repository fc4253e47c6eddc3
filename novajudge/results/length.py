"""The length check: answer lengths, win rate by length difference, and a length-controlled win rate.

Why: LLM judges prefer longer answers (AlpacaEval, MT-Bench). A model that wins by writing more is
not the same finding as a model that wins at equal length, so the summary shows how much of the
preference length can explain.

* Lengths are counted in characters of each model's answer (what AlpacaEval 2 counts), with an
  *estimated* token count beside them: characters / `CHARS_PER_TOKEN` (3.5), the generation step's
  estimate; no tokenizer is in the Lambda bundle, so these are never measured tokens.
* The length difference is model B's answer minus model A's (positive: B wrote more), per prompt,
  in model terms (rows sent swapped are un-swapped via `order`).
* The prompt is the unit: its outcome is the mean of its judged orders (B win 1, tie 1/2, A win 0),
  the same per-prompt outcome as the headline.
* Length-controlled (LC) win rate, the AlpacaEval 2 method (Dubois et al. 2024, "Length-Controlled
  AlpacaEval", `alpaca_eval/metrics/glm_winrate.py`): a logistic model of the per-prompt preference
  for B, logit P(B) = b0 + b1 * tanh(d / sd(d)), evaluated at zero length difference: LC = logistic(b0).
  The difference is divided by its standard deviation (not centred, so zero still means "equal
  length") and passed through tanh, as AlpacaEval 2 does: the feature is unit-free (characters or
  tokens give the same fit) and bounded, so a few very long answers cannot dominate the slope.
  Unlike AlpacaEval 2 there is no instruction-difficulty term (it needs many models judged on the
  same prompts) and no L1 penalty: a plain maximum-likelihood fit of one pair.
* Fractional outcomes (1/2, 1/4, 3/4) are fitted as a fractional logit (Papke & Wooldridge 1996):
  the Bernoulli log-likelihood with y in [0, 1], which is what AlpacaEval's duplicated rows with
  weights y and 1 - y maximise. Its standard errors are the robust (sandwich, HC0) ones, valid when
  y is not 0/1; the LC interval is the Wald interval on the logit scale, mapped through logistic.
* Fitted with Newton's method (IRLS) in numpy: the summarize Lambda has no scipy or statsmodels.
  Separation (the length difference splits B-preferred from A-preferred prompts) has no finite
  maximum, so it is detected beforehand and reported, never fitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from novajudge.generation.manifest import CHARS_PER_TOKEN
from novajudge.stats import Z95

#: Two-sided level of the slope's Wald test: below it, length is said to explain the preference.
SLOPE_ALPHA = 0.05
#: At most this many length-difference bins, each holding about the same number of prompts.
MAX_BINS = 5
#: Prompts per bin aimed for: few prompts get fewer bins (10 prompts: 2 bins), not bins of one or two.
PROMPTS_PER_BIN = 5

METHOD = (
    "AlpacaEval 2 length control without its instruction-difficulty term or penalty: per-prompt "
    "preference for B (mean of its judged orders, tie 1/2) fitted by a fractional logit, "
    "logit P(B) = b0 + b1 * tanh(d / sd(d)) with d = B's answer length minus A's in characters and "
    "sd its standard deviation (tanh-standardised: unit-free and bounded, as AlpacaEval 2); "
    "LC win rate = logistic(b0), the prediction at zero length difference; 95% interval: Wald with "
    "robust (sandwich, HC0) standard errors on the logit scale"
)
WARNING_RULE = (
    "warn when the slope's robust Wald test gives p < 0.05 (length predicts the preference), or when "
    "the headline interval excludes 50% but the LC interval does not exclude it on the same side"
)
TOKENS_NOTE = f"estimated tokens = characters / {CHARS_PER_TOKEN} (no tokenizer; not measured)"


def _logistic(x: float | np.ndarray) -> Any:
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=np.float64)))


def answer_lengths(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per prompt: characters of model A's and model B's answers (`prompt_id`, `len_A`, `len_B`).

    A row sent as `BA` holds model B's answer in response_A, so it is swapped back. The two orders
    of one prompt carry the same two answers; the first row of each prompt is used.
    """
    first = prompts.drop_duplicates("prompt_id", keep="first")
    swapped = (first["order"] == "BA").to_numpy()
    len_a = first["response_A"].fillna("").astype(str).str.len().to_numpy(np.int64)
    len_b = first["response_B"].fillna("").astype(str).str.len().to_numpy(np.int64)
    return pd.DataFrame(
        {
            "prompt_id": first["prompt_id"].astype(str).to_numpy(),
            "len_A": np.where(swapped, len_b, len_a),
            "len_B": np.where(swapped, len_a, len_b),
        }
    )


def separated(x: np.ndarray, y: np.ndarray) -> bool:
    """True when the logistic fit of y on x (with intercept) has no finite maximum.

    The fractional likelihood is that of a row with label 1 (weight y) and one with label 0 (weight
    1 - y) per prompt. In one dimension the maximum is infinite exactly when a threshold splits the
    label-1 points from the label-0 points (ties on the threshold allowed): all x with y > 0 lie at
    or above all x with y < 1, or at or below them. No label on one side (every y = 0 or 1) is the
    extreme case.
    """
    ones, zeros = x[y > 0], x[y < 1]
    if len(ones) == 0 or len(zeros) == 0:
        return True
    return bool(zeros.max() <= ones.min() or ones.max() <= zeros.min())


def fit_fractional_logit(x: np.ndarray, y: np.ndarray, *, max_iter: int = 100) -> dict[str, Any]:
    """Maximum-likelihood logit of y in [0, 1] on [1, x] by Newton's method, with robust covariance.

    Returns intercept, slope, `cov` (2x2 sandwich HC0: H^-1 M H^-1 with H = X'WX, W = p(1-p),
    M = X' diag((y-p)^2) X), iterations and `converged`. The log-likelihood is concave, so Newton
    with step halving climbs to the unique maximum whenever one exists (call `separated` first).
    """
    X = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)

    def loglik(b: np.ndarray) -> float:
        eta = X @ b
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = loglik(beta)
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        p = _logistic(X @ beta)
        grad = X.T @ (y - p)
        hess = X.T @ (X * (p * (1 - p))[:, None])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        scale = 1.0
        while scale > 1e-8:
            trial = beta + scale * step
            value = loglik(trial)
            if value >= current - 1e-12:
                break
            scale /= 2
        beta, current = trial, value
        if np.max(np.abs(scale * step)) < 1e-10:
            converged = True
            break
    p = _logistic(X @ beta)
    hess = X.T @ (X * (p * (1 - p))[:, None])
    meat = X.T @ (X * ((y - p) ** 2)[:, None])
    try:
        bread = np.linalg.inv(hess)
        cov = bread @ meat @ bread
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.nan)
        converged = False
    return {"intercept": float(beta[0]), "slope": float(beta[1]), "cov": cov, "iterations": it,
            "converged": converged}  # fmt: skip


def length_bins(diff: np.ndarray, outcome: np.ndarray) -> list[dict[str, Any]]:
    """B's win rate by length difference: up to MAX_BINS bins of d with their prompt counts.

    Prompts sorted by d are cut into consecutive groups of about equal size (a cut whenever the
    running count reaches the next multiple of n / bins), only ever between two different values
    of d, so equal differences share a bin and a run with few distinct differences still gets one
    bin per value instead of merged quantiles. Each bin is reported by its smallest and largest d.
    """
    n = len(diff)
    if n == 0:
        return []
    k = max(1, min(MAX_BINS, n // PROMPTS_PER_BIN))
    values, counts = np.unique(diff, return_counts=True)
    groups: list[tuple[float, float]] = []
    start, running = 0, 0
    for i, count in enumerate(counts):
        running += int(count)
        if running >= (len(groups) + 1) * n / k and len(groups) < k - 1 and i < len(values) - 1:
            groups.append((values[start], values[i]))
            start = i + 1
    groups.append((values[start], values[-1]))
    bins = []
    for low, high in groups:
        inside = (diff >= low) & (diff <= high)
        values_in = outcome[inside]
        bins.append(
            {
                "diff_low": float(low),
                "diff_high": float(high),
                "prompts": int(inside.sum()),
                "mean_diff": float(diff[inside].mean()),
                "win_rate_b": float(values_in.mean()),
                "b_preferred": int((values_in > 0.5).sum()),
                "a_preferred": int((values_in < 0.5).sum()),
            }
        )
    return bins


def _mean_lengths(chars: np.ndarray) -> dict[str, float | None]:
    if len(chars) == 0:
        return {"mean_chars": None, "median_chars": None, "mean_tokens_est": None}
    return {
        "mean_chars": float(chars.mean()),
        "median_chars": float(np.median(chars)),
        "mean_tokens_est": float(chars.mean() / CHARS_PER_TOKEN),
    }


def _excludes(ci: Sequence[float | None]) -> str | None:
    """'B' / 'A' when the interval lies above / below 1/2, else None (also when there is none)."""
    lo, hi = ci
    if lo is None or hi is None:
        return None
    if lo > 0.5:
        return "B"
    if hi < 0.5:
        return "A"
    return None


def length_check(
    outcomes: pd.DataFrame,
    prompts: pd.DataFrame,
    *,
    min_prompts: int,
    raw_interval: Sequence[float | None] = (None, None),
) -> dict[str, Any]:
    """The `length` block of the summary.

    `outcomes` is the per-prompt table (`prompt_id`, `judged`, `outcome`) of the headline;
    `raw_interval` the headline's 95% interval, compared with the LC interval for the warning.
    Every degenerate case sets `status` and `reason` and leaves the fitted numbers None.
    """
    lengths = answer_lengths(prompts)
    valid = outcomes[outcomes["judged"] > 0][["prompt_id", "outcome"]].astype({"prompt_id": str})
    data = valid.merge(lengths, on="prompt_id", how="inner")
    len_a = data["len_A"].to_numpy(np.float64)
    len_b = data["len_B"].to_numpy(np.float64)
    y = data["outcome"].to_numpy(np.float64)
    d = len_b - len_a
    n = len(data)
    block: dict[str, Any] = {
        "unit": "prompt",
        "length_unit": "characters",
        "tokens_note": TOKENS_NOTE,
        "prompts": n,
        "A": _mean_lengths(len_a),
        "B": _mean_lengths(len_b),
        "diff_definition": "B's answer length minus A's, in characters (positive: B wrote more)",
        "mean_diff_chars": float(d.mean()) if n else None,
        "b_longer": int((d > 0).sum()),
        "a_longer": int((d < 0).sum()),
        "equal_length": int((d == 0).sum()),
        "raw_win_rate_b": float(y.mean()) if n else None,
        "bins": length_bins(d, y),
        "status": "fitted",
        "reason": None,
        "lc_win_rate_b": None,
        "lc_interval_95": [None, None],
        "intercept": None,
        "intercept_se": None,
        "slope": None,
        "slope_se": None,
        "slope_p": None,
        "diff_sd_chars": None,
        "iterations": None,
        "length_explains": False,
        "warnings": [],
        "method": METHOD,
        "warning_rule": WARNING_RULE,
    }

    def stop(status: str, reason: str) -> dict[str, Any]:
        return block | {"status": status, "reason": reason}

    if n == 0:
        return stop("no_prompts", "no prompt has a valid outcome")
    if not (len_a.any() or len_b.any()):
        return stop("no_texts", "the answers' texts are not in the judge output or the manifest")
    if n < min_prompts:
        return stop("too_few_prompts", f"too few prompts to fit ({n} < {min_prompts})")
    sd = float(np.std(d, ddof=1))
    if not sd > 0:
        return stop("no_length_variation", "the length difference is the same in every prompt; "
                    "its effect cannot be separated from the preference")  # fmt: skip
    if np.all(y == y[0]):
        return stop("same_outcome", f"every prompt has the same outcome ({y[0]:g}); there is no "
                    "preference for length to explain")  # fmt: skip
    x = np.tanh(d / sd)
    block["diff_sd_chars"] = sd
    if separated(x, y):
        return stop("separation", "the length difference separates the outcomes (every prompt "
                    "preferring B lies on one side of a length difference, every prompt preferring A "
                    "on the other): the logistic fit has no finite solution")  # fmt: skip
    fit = fit_fractional_logit(x, y)
    if not fit["converged"] or not np.all(np.isfinite(fit["cov"])):
        return stop("not_converged", f"the logistic fit did not converge in {fit['iterations']} steps")
    b0, b1, cov = fit["intercept"], fit["slope"], fit["cov"]
    se0, se1 = math.sqrt(max(cov[0, 0], 0.0)), math.sqrt(max(cov[1, 1], 0.0))
    p_slope = math.erfc(abs(b1 / se1) / math.sqrt(2.0)) if se1 > 0 else (1.0 if b1 == 0 else 0.0)
    lc_ci = [float(_logistic(b0 - Z95 * se0)), float(_logistic(b0 + Z95 * se0))]
    block |= {
        "lc_win_rate_b": float(_logistic(b0)),
        "lc_interval_95": lc_ci,
        "intercept": b0,
        "intercept_se": se0,
        "slope": b1,
        "slope_se": se1,
        "slope_p": p_slope,
        "iterations": fit["iterations"],
    }
    warnings: list[str] = []
    if p_slope < SLOPE_ALPHA:
        longer = "longer" if b1 > 0 else "shorter"
        warnings.append(
            f"length predicts the preference: the judge favours the {longer} answer "
            f"(slope {b1:+.3g} on tanh(d / sd), robust p = {p_slope:.3g})"
        )
    raw_side, lc_side = _excludes(raw_interval), _excludes(lc_ci)
    if raw_side is not None and lc_side != raw_side:
        warnings.append(
            f"the headline's preference for {raw_side} does not survive length control: the LC 95% "
            f"interval [{100 * lc_ci[0]:.1f}%, {100 * lc_ci[1]:.1f}%] does not exclude 50% on that side"
        )
    block["warnings"] = warnings
    block["length_explains"] = bool(warnings)
    return block


def length_sentence(block: dict[str, Any] | None) -> str:
    """One sentence for the headline: mean lengths, the LC win rate (or why none), any warning.

    Models are named A and B only: the headline's first sentence has already named them."""
    if not block or block.get("status") in ("no_prompts", "no_texts"):
        return ""
    a, b = block["A"], block["B"]
    lengths = (
        f"Length: A's answers average {a['mean_chars']:.0f} characters "
        f"(~{a['mean_tokens_est']:.0f} estimated tokens), B's {b['mean_chars']:.0f} "
        f"(~{b['mean_tokens_est']:.0f})"
    )
    if block["status"] != "fitted":
        return f"{lengths}; no length-controlled win rate: {block['reason']}."
    lo, hi = block["lc_interval_95"]
    text = (
        f"{lengths}; length-controlled win rate of B {100 * block['lc_win_rate_b']:.1f}% "
        f"(95% interval {100 * lo:.1f}%–{100 * hi:.1f}%, AlpacaEval 2 method)."
    )
    if block["warnings"]:
        text += " WARNING: " + "; ".join(block["warnings"]) + "."
    return text
