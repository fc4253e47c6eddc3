"""Calibration and re-weighting read the renormalised margin; both bad → tie is no change (issue 11)."""

from __future__ import annotations

import pandas as pd
import pytest
from trust_builders import crit_row, prompt_row, prompts_table

from novajudge.trust.calibration import calibrate
from novajudge.trust.reweight import reweight


def test_calibration_with_weights_summing_to_2_2_buckets_the_renormalised_margin():
    # One judgement, weights 1.2 + 1.0 = 2.2; scores A 5,5 vs B 1,1 → the judge's raw margin is
    # 1.2 * 1 + 1.0 * 1 = 2.2 (outside [-1, 1]); renormalised: (1.2 + 1.0) / 2.2 = 1.0 → top bucket.
    prompts = prompts_table([prompt_row(0, "p0", "AB", "A", 2.2)])
    criteria = pd.DataFrame([crit_row(0, "p0", "AB", "accuracy", 1.2, 5, 1),
                             crit_row(0, "p0", "AB", "clarity", 1.0, 5, 1)])
    result = calibrate(prompts, {"p0": "A"}, criteria)
    buckets = result["by_confidence"]["buckets"]
    assert buckets[-1]["n"] == 1 and buckets[-1]["correct"] == 1 and buckets[-1]["closed"]
    assert sum(b["n"] for b in buckets) == 1
    # Without the criteria the raw 2.2 is not a margin: not measured, never a traceback.
    assert calibrate(prompts, {"p0": "A"})["by_confidence"]["measured"] is False


def test_reweight_with_a_both_bad_row_is_no_change():
    # p0 labelled both bad; its criteria are equal (margin 0 → tie): same preference, no change.
    # p1 labelled A, criteria favour A: no change. So 0 changed, no flips.
    prompts = prompts_table([prompt_row(0, "p0", "AB", "bothbad"), prompt_row(1, "p1", "AB", "A")])
    criteria = pd.DataFrame([crit_row(0, "p0", "AB", "accuracy", 1.2, 3, 3),
                             crit_row(0, "p0", "AB", "clarity", 1.0, 2, 2),
                             crit_row(1, "p1", "AB", "accuracy", 1.2, 5, 1),
                             crit_row(1, "p1", "AB", "clarity", 1.0, 5, 1)])
    result = reweight(prompts, criteria)
    assert result["changed_vs_label"] == 0
    assert result["label_vs_margin_rule_disagreements"] == 0
    assert result["flips"] == []
    assert result["no_criteria_left"] == []
    # Dropping clarity still leaves p0 a tie (3 vs 3) and p1 an A win: no change either.
    assert reweight(prompts, criteria, drop=["clarity"])["changed_vs_label"] == 0


@pytest.mark.parametrize("weight_sum", [0.5, 2.2])
def test_calibration_never_raises_for_any_weight_sum(weight_sum):
    prompts = prompts_table([prompt_row(0, "p0", "AB", "B", -weight_sum)])
    criteria = pd.DataFrame([crit_row(0, "p0", "AB", "accuracy", weight_sum, 1, 5)])
    result = calibrate(prompts, {"p0": "B"}, criteria)
    assert result["by_confidence"]["buckets"][-1]["n"] == 1  # |-1.0| after renormalising
