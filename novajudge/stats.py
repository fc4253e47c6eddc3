"""The statistics every report uses: intervals, the sign test, the bootstrap, kappa, JSON-safe numbers.

One implementation each, so the summary's headline and the trust block can never disagree on how
a rate's interval is computed. Only numpy and the standard library: the summarize Lambda bundle
has no scipy.

* Wilson score interval, not the normal approximation: trust figures are often proportions over a
  few dozen prompts, some at exactly 0 or 1, where the normal interval collapses to a point or
  leaves [0, 1].
* Exact two-sided sign test (binomial, p = 1/2), in log space so it stays exact and fast for n in
  the hundreds of thousands.
* A seeded percentile bootstrap, drawn as multinomial counts (O(1) per resample whatever n is).
* Cohen's kappa, None where it is undefined rather than a made-up 0 or 1.
* `jsonable`: NaN -> None and numpy scalars -> Python, so `json.dumps(allow_nan=False)` succeeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal
DEFAULT_SEED = 20260101
DEFAULT_RESAMPLES = 2000


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n == 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is exactly 0 or 1; floating point would land a hair inside,
    # leaving the point estimate outside its own interval.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def proportion(successes: int, n: int) -> dict[str, object]:
    """A proportion with its Wilson 95 % interval as a JSON-ready dict; `rate` is None when n == 0.

    Every rate in the trust block goes through here so each one carries its denominator: a 100 %
    consistency over 2 prompts must not read like one over 200.
    """
    if n == 0:
        return {"successes": 0, "n": 0, "rate": None, "ci_low": None, "ci_high": None, "ci_method": "wilson"}
    low, high = wilson_interval(successes, n)
    return {"successes": int(successes), "n": int(n), "rate": successes / n, "ci_low": low, "ci_high": high,
            "ci_method": "wilson"}  # fmt: skip


def sign_test_p(k: int, n: int) -> float:
    """Exact two-sided binomial test of p = 1/2 (the sign test): k successes out of n; 1.0 when n == 0.

    For p = 1/2 the two-sided p-value is twice the smaller tail, capped at 1.
    """
    if n <= 0:
        return 1.0
    i = np.arange(n + 1, dtype=np.float64)
    lgam = np.vectorize(math.lgamma, otypes=[np.float64])
    log_pmf = math.lgamma(n + 1) - lgam(i + 1) - lgam(n - i + 1) - n * math.log(2.0)
    pmf = np.exp(log_pmf)
    lower = float(pmf[: k + 1].sum())
    upper = float(pmf[k:].sum())
    return min(1.0, 2.0 * min(lower, upper))


def bootstrap_interval(
    b_wins: int, ties: int, n: int, *, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the ties-as-half win rate, resampling judgements.

    Each valid judgement's outcome is 1 (B won), 1/2 (tie) or 0 (A won). Resampling n outcomes with
    replacement from three kinds is the same as drawing the kinds' counts from a multinomial with
    the observed proportions, so we draw the counts directly: identical distribution.
    """
    if n <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    probs = np.array([b_wins, ties, n - b_wins - ties], dtype=np.float64) / n
    draws = rng.multinomial(n, probs, size=resamples)
    rates = (draws[:, 0] + 0.5 * draws[:, 1]) / n
    lo, hi = np.percentile(rates, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_mean_interval(
    values: Sequence[float] | np.ndarray, *, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> tuple[float, float]:
    """95% percentile bootstrap interval of a mean, resampling the units (here: prompts).

    Per-prompt outcomes take few distinct values (multiples of 1/2 or 1/4), so resampling n units
    with replacement is drawn as multinomial counts over the distinct values: the same
    distribution, O(distinct values) per resample whatever n is. (nan, nan) when there are none.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan")
    kinds, counts = np.unique(v, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=resamples)
    means = draws @ kinds / n
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def mean_with_interval(
    values: Sequence[float] | np.ndarray, *, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, object]:
    """Mean of per-unit outcomes in [0, 1] with a 95% interval that is never a zero-width point.

    The percentile bootstrap over units; when every unit has the same outcome the bootstrap
    collapses to a point, and the Wilson score interval of that share is given instead (it stays
    honest at 0, 1/2 and 1). JSON-ready; `rate` is None when there are no units.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return {"n": 0, "rate": None, "ci_low": None, "ci_high": None, "ci_method": None}
    lo, hi = bootstrap_mean_interval(v, seed=seed, resamples=resamples)
    method = "percentile bootstrap over prompts"
    if hi - lo <= 0.0:
        lo, hi = wilson_interval(float(v.sum()), n)
        method = "Wilson score interval (every prompt had the same outcome; the bootstrap collapses)"
    return {"n": int(n), "rate": float(v.mean()), "ci_low": lo, "ci_high": hi, "ci_method": method}


def cohen_kappa(first: Sequence[str], second: Sequence[str], classes: Sequence[str]) -> float | None:
    """Cohen's kappa between two raters over `classes`; None when kappa is undefined.

    Undefined means no items, or chance agreement of exactly 1 (both raters used one and the same
    class for everything): kappa is then 0/0, and reporting 0 or 1 would both be a claim we cannot
    make.
    """
    first, second = list(first), list(second)
    if len(first) != len(second):
        raise ValueError("both raters must rate the same items")
    n = len(first)
    if n == 0:
        return None
    unknown = (set(first) | set(second)) - set(classes)
    if unknown:
        raise ValueError(f"ratings outside the classes {list(classes)}: {sorted(unknown)}")
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    expected = sum((first.count(c) / n) * (second.count(c) / n) for c in classes)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


def jsonable(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists, keys -> str: ready for
    `json.dumps(..., allow_nan=False)`, which the summary and the CLI's `--out` files use."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most leaves: nothing to do
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    return value
