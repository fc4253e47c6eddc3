"""Small statistics the trust analyses need: proportions with a Wilson interval, and Cohen's kappa.

The Wilson interval (not the normal approximation) because trust figures are often proportions over
a few dozen prompts, some at exactly 0 or 1, where the normal interval collapses to a point or leaves
[0, 1]. The interval itself comes from `novajudge.results.stats` so the whole report uses one
implementation; this module only adds what the trust block needs on top (denominators, kappa).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from novajudge.results.stats import wilson_interval


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval, delegated to `novajudge.results.stats` so the report uses one method."""
    return wilson_interval(successes, n)


def proportion(successes: int, n: int) -> dict[str, object]:
    """A proportion with its Wilson 95 % interval as a JSON-ready dict; `rate` is None when n == 0.

    Every rate in the trust block goes through here so each one carries its denominator: a 100 %
    consistency over 2 prompts must not read like one over 200.
    """
    if n == 0:
        return {"successes": 0, "n": 0, "rate": None, "ci_low": None, "ci_high": None,
                "ci_method": "wilson"}
    low, high = wilson(successes, n)
    return {"successes": int(successes), "n": int(n), "rate": successes / n, "ci_low": low,
            "ci_high": high, "ci_method": "wilson"}


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
