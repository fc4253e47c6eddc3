"""Re-weighting without re-judging: recompute the rubric judge's weighted scores under new weights.

The rubric judge scores every criterion for both responses, so "what if correctness counted double"
or "what if we ignore formatting" is arithmetic on the details table, not another judge job. The
judge's own verdict comes from its preference label, not from the scores; a re-weighted verdict has
to be derived from the margin instead, with a stated tie threshold, and the report says how many
verdicts that rule alone changes (`changed_vs_original_weights` vs `changed_vs_label`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from novajudge.errors import InvalidRunRequest, ResultsError
from novajudge.stats import proportion
from novajudge.trust.criteria import matching_keys, with_keys
from novajudge.trust.position import position_bias
from novajudge.verdicts import (
    ERROR,
    check_prompts,
    normalise_scores,
    normalise_synonyms,
    preference,
    to_model,
)

#: |margin| at or below this is a tie. 0.05 is one scale step (0.25 normalised) on a criterion
#: weighing 0.2: smaller differences are within the judge's scoring noise.
DEFAULT_THRESHOLD = 0.05
_EPS = 1e-9  # margins are sums of products of floats; 0.05 must still count as 0.05
CRITERIA_COLUMNS = ("row", "prompt_id", "order", "criterion", "type", "weight", "score_A", "score_B")
NO_CRITERIA = "no criteria left"


def parse_weight_option(text: str) -> tuple[str, float]:
    """`NAME=W` from the command line → (name, weight); W must be a finite number ≥ 0."""
    name, sep, value = text.rpartition("=")
    if not sep or not name.strip():
        raise InvalidRunRequest(f"--weight {text!r}: expected NAME=WEIGHT, e.g. correctness=2")
    try:
        weight = float(value)
    except ValueError:
        raise InvalidRunRequest(f"--weight {text!r}: {value!r} is not a number") from None
    if not math.isfinite(weight) or weight < 0:
        raise InvalidRunRequest(f"--weight {text!r}: the weight must be a finite number ≥ 0")
    return name.strip(), weight


def scored_criteria(criteria: pd.DataFrame, synonyms: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The criteria table checked, keyed (`key`) and with numeric `weight`, `norm_A`, `norm_B`.

    Normalised scores are recomputed from the raw scores (the source of truth, by the judge's rule
    in `novajudge.verdicts.normalise_scores`); a stored `norm_*` is used only where the raw score is
    missing.
    """
    missing = [c for c in CRITERIA_COLUMNS if c not in criteria.columns]
    if missing:
        raise ResultsError(f"criteria table: missing column(s) {', '.join(missing)} (see docs/design.md)")
    table = with_keys(criteria, synonyms).reset_index(drop=True)
    table["prompt_id"] = table["prompt_id"].astype(str)
    rows, names = table["row"].tolist(), table["criterion"].tolist()

    def where(i: int) -> str:
        return f"criteria table: row {rows[i]}, criterion {names[i]!r}"

    raw_weights = table["weight"].tolist()
    weights = pd.to_numeric(table["weight"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0)))
    if bad.size:
        i = int(bad[0])
        raise ResultsError(f"{where(i)}: field 'weight' is {raw_weights[i]!r}; expected a number ≥ 0")
    kinds = list(map(str, table["type"].tolist()))
    table["weight"] = weights
    for side in ("A", "B"):
        _, norm = normalise_scores(table[f"score_{side}"].tolist(), kinds,
                                   lambda i, s=side: f"{where(i)}, field 'score_{s}'")
        absent = np.isnan(norm)
        if absent.any():
            stored = (pd.to_numeric(table[f"norm_{side}"], errors="coerce").to_numpy(dtype=float)
                      if f"norm_{side}" in table.columns else np.full(len(table), np.nan))
            norm = np.where(absent, stored, norm)
            unset = np.flatnonzero(np.isnan(norm))
            if unset.size:
                raise ResultsError(f"{where(int(unset[0]))}: neither 'score_{side}' nor 'norm_{side}' is set")
        table[f"norm_{side}"] = norm
    return table


@dataclass(frozen=True)
class ReweightPlan:
    """Which canonical criteria are dropped and which get a new (relative) weight."""

    dropped: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)


def make_plan(keys: Sequence[str], drop: Sequence[str] = (), weights: Mapping[str, float] | None = None,
              *, match: str = "exact", synonyms: Mapping[str, str] | None = None) -> ReweightPlan:
    """Resolve user patterns against the known criterion keys.

    A pattern matching nothing is a usage error (a typo must not pass as "no effect"), and so is a
    criterion that is both dropped and re-weighted or given two different weights.
    """
    known = sorted(set(keys))
    hint = ", ".join(known[:15]) + (" …" if len(known) > 15 else "")
    dropped: set[str] = set()
    for pattern in drop:
        hits = matching_keys(pattern, known, match, synonyms)
        if not hits:
            raise InvalidRunRequest(f"--drop {pattern!r} ({match}) matches no criterion; known: {hint}")
        dropped.update(hits)
    new_weights: dict[str, float] = {}
    source: dict[str, str] = {}
    for pattern, weight in (weights or {}).items():
        if not math.isfinite(weight) or weight < 0:
            raise InvalidRunRequest(f"--weight {pattern}={weight}: the weight must be a finite number ≥ 0")
        hits = matching_keys(pattern, known, match, synonyms)
        if not hits:
            raise InvalidRunRequest(f"--weight {pattern!r} ({match}) matches no criterion; known: {hint}")
        for key in hits:
            if key in dropped:
                raise InvalidRunRequest(f"criterion {key!r} is both dropped and re-weighted (by {pattern!r})")
            if key in new_weights and new_weights[key] != weight:
                raise InvalidRunRequest(f"criterion {key!r} gets two weights: {source[key]}="
                                        f"{new_weights[key]:g} and {pattern}={weight:g}")
            new_weights[key] = weight
            source[key] = pattern
    return ReweightPlan(dropped=tuple(sorted(dropped)), weights=new_weights)


def apply_plan(scored: pd.DataFrame, plan: ReweightPlan) -> pd.DataFrame:
    """Per-criterion `new_weight`: 0 when dropped, the override or the original, renormalised per row.

    Renormalising per judged row keeps every weighted score in [0, 1], comparable with the judge's
    own; a row whose remaining weights sum to 0 gets NaN (no criteria left).
    """
    out = scored.copy()
    raw = [0.0 if key in plan.dropped else plan.weights.get(key, w)
           for key, w in zip(out["key"], out["weight"], strict=True)]
    out["new_weight"] = raw
    totals = out.groupby("row")["new_weight"].transform("sum")
    out["new_weight"] = (out["new_weight"] / totals.where(totals > 0)).astype(float)
    return out


def weighted_scores(weighted: pd.DataFrame, weight_column: str) -> pd.DataFrame:
    """Per judged row: Σ w·norm for A and B (as sent), margin A − B, and how many criteria count.

    Rows whose weights are all 0 or missing get NaN scores (no criteria left), never 0 − 0 = tie.
    """
    w = weighted[weight_column]
    live = w.notna() & (w > 0)
    parts = pd.DataFrame({
        "row": weighted["row"],
        "score_A": (w * weighted["norm_A"]).where(live, 0.0),
        "score_B": (w * weighted["norm_B"]).where(live, 0.0),
        "criteria": live.astype(int),
    })
    sums = parts.groupby("row", sort=True).sum()
    empty = sums["criteria"] == 0
    sums.loc[empty, ["score_A", "score_B"]] = math.nan
    sums["margin"] = sums["score_A"] - sums["score_B"]
    return sums[["score_A", "score_B", "margin", "criteria"]]


def verdict_from_margin(margin: float, threshold: float) -> str:
    """Position verdict from a margin (A − B as sent): `tie` when |margin| ≤ threshold."""
    if margin is None or math.isnan(margin):
        return NO_CRITERIA
    if abs(margin) <= threshold + _EPS:
        return "tie"
    return "A" if margin > 0 else "B"


def _view(winners: Sequence[str]) -> dict[str, object]:
    keys = ("A", "B", "tie", "bothbad", NO_CRITERIA, ERROR)
    counts = {k: sum(1 for w in winners if w == k) for k in keys}
    return {"judgements": len(winners), "counts": counts,
            "b_win_rate": proportion(counts["B"], counts["A"] + counts["B"])}


def _num(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _changed(before: str, after: str) -> bool:
    """A verdict change in preference terms: errors and rows without criteria never count, and
    `bothbad` equals `tie` (no preference either way)."""
    if ERROR in (before, after) or NO_CRITERIA in (before, after):
        return False
    return preference(before) != preference(after)


def reweight(prompts: pd.DataFrame, criteria: pd.DataFrame, *, drop: Sequence[str] = (),
             weights: Mapping[str, float] | None = None, match: str = "exact",
             synonyms: Mapping[str, str] | None = None,
             threshold: float = DEFAULT_THRESHOLD) -> dict[str, object]:
    """Drop and/or re-weight criteria by name and report what happens to the verdicts.

    Verdicts are compared per judged row in model terms (a BA row's margin is negated). Rows the
    judge could not judge (`winner` = error) stay errors and never count as changed. Margins in the
    output are model A − model B, so a positive number always favours model A.
    """
    if not 0 <= threshold < 1:
        raise InvalidRunRequest(f"--threshold {threshold}: expected a number in [0, 1)")
    syn = normalise_synonyms(synonyms)
    table = check_prompts(prompts).sort_values("row", kind="stable").reset_index(drop=True)
    scored = scored_criteria(criteria, syn)
    plan = make_plan(list(scored["key"]), drop, weights, match=match, synonyms=syn)
    weighted = apply_plan(scored, plan)
    weighted["orig_weight"] = weighted["weight"] / weighted.groupby("row")["weight"].transform("sum")
    new = weighted_scores(weighted, "new_weight")
    old = weighted_scores(weighted, "orig_weight")

    flips, left, rows = [], [], []
    for rec in table.to_dict("records"):
        row, order, label_winner = rec["row"], rec["order"], rec["winner"]
        sign = -1.0 if order == "BA" else 1.0
        if label_winner == ERROR:
            new_w = rule_w = ERROR
            new_m = old_m = None
        else:
            new_m = _num(new["margin"].get(row)) if row in new.index else None
            old_m = _num(old["margin"].get(row)) if row in old.index else None
            new_w = to_model(verdict_from_margin(math.nan if new_m is None else new_m, threshold), order)
            rule_w = to_model(verdict_from_margin(math.nan if old_m is None else old_m, threshold), order)
            if new_w == NO_CRITERIA:
                left.append({"prompt_id": rec["prompt_id"], "row": int(row), "order": order,
                             "old": label_winner})
        old_model = old_m  # renormalised, like new_m (never the judge's raw margin)
        entry = {
            "prompt_id": rec["prompt_id"], "row": int(row), "order": order, "old": label_winner,
            "new": new_w, "old_margin": None if old_model is None else sign * old_model,
            "new_margin": None if new_m is None else sign * new_m,
        }
        rows.append((label_winner, rule_w, new_w))
        if _changed(label_winner, new_w):
            flips.append(entry)

    old_winners = [r[0] for r in rows]
    new_winners = [r[2] for r in rows]
    result: dict[str, object] = {
        "settings": {"drop": list(drop), "weights": dict(weights or {}), "match": match,
                     "threshold": threshold, "synonyms": len(syn)},
        "dropped_criteria": list(plan.dropped),
        "reweighted_criteria": dict(sorted(plan.weights.items())),
        "rule": (f"verdict from the re-weighted margin (model A − model B): |margin| ≤ {threshold:g} is a "
                 "tie, otherwise the model with the higher weighted score wins; weights are "
                 "renormalised to sum to 1 within each judgement"),
        "original": _view(old_winners),
        "new": _view(new_winners),
        # Rows left without criteria are listed in `no_criteria_left`, not counted as changed.
        # A margin rule cannot say "both bad", so both bad → tie is no change.
        "changed_vs_label": sum(_changed(o, n) for o, _, n in rows),
        "changed_vs_original_weights": sum(_changed(r, n) for _, r, n in rows),
        "label_vs_margin_rule_disagreements": sum(_changed(o, r) for o, r, _ in rows),
        "flips": flips,
        "no_criteria_left": left,
    }
    reconcilable = table.assign(winner=[n if n != NO_CRITERIA else ERROR for n in new_winners])
    rec_view = position_bias(reconcilable)
    result["reconciled"] = rec_view["reconciled"]
    return result
