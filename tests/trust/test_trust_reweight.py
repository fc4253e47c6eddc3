"""Re-weighting on hand-built rubrics: which verdicts flip, and what the new weights are."""

from __future__ import annotations

import pandas as pd
import pytest
from trust_builders import crit_row, prompt_row, prompts_table

from novajudge.errors import InvalidRunRequest, ResultsError
from novajudge.trust.criteria import load_synonyms, most_common_criteria
from novajudge.trust.reweight import (
    NO_CRITERIA,
    apply_plan,
    make_plan,
    parse_weight_option,
    reweight,
    scored_criteria,
)
from novajudge.verdicts import criterion_key, normalise_synonyms

# (prompt, correctness A/B, style A/B, judge label as sent). Weights 0.6 / 0.4.
#  p0: A = .6·1 + .4·0 = .60, B = .6·.75 + .4·1 = .85 → −.25 → B ; without style: 1 vs .75 → +.25 → A
#  p1: A = .6·.25 + .4·1 = .55, B = .6·.75 = .45 → +.10 → A ; without style: .25 vs .75 → −.5 → B
#  p2: A = 1, B = 0 → A either way ;  p3: all equal → tie either way
CASES = [("p0", (5, 4), (1, 5), "B"), ("p1", (2, 4), (5, 1), "A"),
         ("p2", (5, 1), (5, 1), "A"), ("p3", (3, 3), (4, 4), "tie")]
MARGINS = {"p0": -0.25, "p1": 0.10, "p2": 1.0, "p3": 0.0}


def four_prompts():
    prompts, criteria = [], []
    for row, (pid, corr, style, verdict) in enumerate(CASES):
        prompts.append(prompt_row(row, pid, "AB", verdict, MARGINS[pid]))
        criteria.append(crit_row(row, pid, "AB", "Correctness", 0.6, *corr))
        criteria.append(crit_row(row, pid, "AB", "style", 0.4, *style))
    return prompts_table(prompts), pd.DataFrame(criteria)


def test_dropping_style_flips_exactly_two_prompts():
    prompts, criteria = four_prompts()
    result = reweight(prompts, criteria, drop=["Style"])
    assert result["dropped_criteria"] == ["style"]
    flips = {f["prompt_id"]: f for f in result["flips"]}
    assert sorted(flips) == ["p0", "p1"]
    assert (flips["p0"]["old"], flips["p0"]["new"]) == ("B", "A")
    assert flips["p0"]["old_margin"] == pytest.approx(-0.25)
    assert flips["p0"]["new_margin"] == pytest.approx(0.25)
    assert (flips["p1"]["old"], flips["p1"]["new"]) == ("A", "B")
    assert flips["p1"]["new_margin"] == pytest.approx(-0.5)
    assert result["changed_vs_label"] == 2
    assert result["changed_vs_original_weights"] == 2
    assert result["label_vs_margin_rule_disagreements"] == 0
    orig = result["original"]["counts"]
    assert (orig["A"], orig["B"], orig["tie"]) == (2, 1, 1)
    new = result["new"]["counts"]
    assert (new["A"], new["B"], new["tie"]) == (2, 1, 1)
    assert result["new"]["b_win_rate"]["rate"] == pytest.approx(1 / 3)
    assert result["reconciled"]["measured"] is False


def test_no_change_without_drop_and_threshold_boundary():
    prompts, criteria = four_prompts()
    result = reweight(prompts, criteria)
    assert result["flips"] == [] and result["changed_vs_label"] == 0
    # p1's margin is exactly 0.10: a threshold of 0.1 makes it a tie (|margin| ≤ threshold).
    result = reweight(prompts, criteria, threshold=0.1)
    assert [f["prompt_id"] for f in result["flips"]] == ["p1"]
    assert result["flips"][0]["new"] == "tie"
    with pytest.raises(InvalidRunRequest, match="threshold"):
        reweight(prompts, criteria, threshold=-0.1)


def test_swapped_order_reported_in_model_terms():
    # p0 sent swapped: model B is response_A, so the criteria as sent are mirrored.
    prompts = prompts_table([prompt_row(0, "p0", "AB", "B", -0.25), prompt_row(1, "p0", "BA", "A", 0.25)])
    criteria = pd.DataFrame([
        crit_row(0, "p0", "AB", "correctness", 0.6, 5, 4), crit_row(0, "p0", "AB", "style", 0.4, 1, 5),
        crit_row(1, "p0", "BA", "correctness", 0.6, 4, 5), crit_row(1, "p0", "BA", "style", 0.4, 5, 1),
    ])
    result = reweight(prompts, criteria, drop=["style"])
    assert [(f["order"], f["old"], f["new"]) for f in result["flips"]] == [("AB", "B", "A"), ("BA", "B", "A")]
    assert [f["new_margin"] for f in result["flips"]] == pytest.approx([0.25, 0.25])
    assert result["flips"][1]["old_margin"] == pytest.approx(-0.25)
    assert result["reconciled"]["counts"]["A"] == 1


def test_weights_renormalised_per_judgement():
    criteria = pd.DataFrame([
        crit_row(0, "p0", "AB", "correctness", 0.5, 5, 1), crit_row(0, "p0", "AB", "style", 0.3, 1, 5),
        crit_row(0, "p0", "AB", "brevity", 0.2, 1, 1),
        crit_row(1, "p1", "AB", "correctness", 0.4, 5, 1), crit_row(1, "p1", "AB", "style", 0.6, 1, 5),
    ])
    scored = scored_criteria(criteria)
    plan = make_plan(list(scored["key"]), drop=["brevity"], weights={"correctness": 2.0})
    weights = apply_plan(scored, plan).set_index(["row", "key"])["new_weight"]
    # Row 0: correctness 2, style 0.3 → 2/2.3, 0.3/2.3; row 1: correctness 2, style 0.6 → 2/2.6, 0.6/2.6.
    assert weights[(0, "correctness")] == pytest.approx(2 / 2.3)
    assert weights[(0, "style")] == pytest.approx(0.3 / 2.3)
    assert weights[(0, "brevity")] == 0
    assert weights[(1, "style")] == pytest.approx(0.6 / 2.6)
    assert weights.groupby(level="row").sum().tolist() == pytest.approx([1.0, 1.0])


def test_binary_criteria_and_all_dropped_prompt():
    prompts = prompts_table([prompt_row(0, "p0", "AB", "A", 0.5), prompt_row(1, "p1", "AB", "B", -1.0),
                             prompt_row(2, "p2", "AB", "error")])
    criteria = pd.DataFrame([
        crit_row(0, "p0", "AB", "safe", 0.5, True, False, kind="binary"),
        crit_row(0, "p0", "AB", "style", 0.5, 3, 3),
        crit_row(1, "p1", "AB", "safe", 1.0, "false", "true", kind="binary"),
    ])
    result = reweight(prompts, criteria, drop=["safe"])
    # p0: only style (equal) remains → tie; p1 had only "safe" → no criteria left; p2 stays an error.
    assert [(f["prompt_id"], f["new"]) for f in result["flips"]] == [("p0", "tie")]
    assert result["no_criteria_left"] == [{"prompt_id": "p1", "row": 1, "order": "AB", "old": "B"}]
    assert result["new"]["counts"][NO_CRITERIA] == 1
    assert result["new"]["counts"]["error"] == 1
    assert result["changed_vs_label"] == 1


def test_synonyms_merge_names():
    prompts = prompts_table([prompt_row(0, "p0", "AB", "A"), prompt_row(1, "p1", "AB", "B")])
    criteria = pd.DataFrame([
        crit_row(0, "p0", "AB", "Accuracy.", 0.7, 5, 1), crit_row(0, "p0", "AB", "Clarity", 0.3, 1, 1),
        crit_row(1, "p1", "AB", "factual_correctness", 0.2, 1, 5),
        crit_row(1, "p1", "AB", "clarity", 0.8, 1, 5),
    ])
    synonyms = {"accuracy": "Correctness", "Factual Correctness": "accuracy"}  # a chain
    common = most_common_criteria(criteria, synonyms=normalise_synonyms(synonyms))
    by_name = {c["criterion"]: c for c in common}
    assert by_name["correctness"]["judgements"] == 2
    assert by_name["correctness"]["spellings"] == ["Accuracy.", "factual_correctness"]
    assert by_name["correctness"]["mean_weight"] == pytest.approx(0.45)
    assert by_name["clarity"]["mean_weight"] == pytest.approx(0.55)
    # Dropping "correctness" removes both spellings: p0 becomes a tie (clarity equal), p1 stays B.
    result = reweight(prompts, criteria, drop=["correctness"], synonyms=synonyms)
    assert [(f["prompt_id"], f["new"]) for f in result["flips"]] == [("p0", "tie")]
    # Without the map no criterion is called "correctness": a usage error, not a silent no-op.
    with pytest.raises(InvalidRunRequest, match="matches no criterion"):
        reweight(prompts, criteria, drop=["correctness"])


def test_match_modes():
    prompts, criteria = four_prompts()
    assert reweight(prompts, criteria, drop=["sty"], match="substring")["dropped_criteria"] == ["style"]
    assert reweight(prompts, criteria, drop=["^s.*e$"], match="regex")["dropped_criteria"] == ["style"]
    with pytest.raises(InvalidRunRequest, match="invalid regular expression"):
        reweight(prompts, criteria, drop=["("], match="regex")
    with pytest.raises(InvalidRunRequest, match="unknown match mode"):
        reweight(prompts, criteria, drop=["style"], match="fuzzy")
    with pytest.raises(InvalidRunRequest, match="both dropped and re-weighted"):
        reweight(prompts, criteria, drop=["style"], weights={"style": 1.0})


def test_names_normalise():
    assert criterion_key(" Factual_Accuracy! ") == "factual_accuracy"
    assert criterion_key("Factual-accuracy") == "factual_accuracy"
    assert criterion_key("Précision") == "precision"


def test_weight_option_parsing():
    assert parse_weight_option("correctness=2") == ("correctness", 2.0)
    assert parse_weight_option("a=b=0.5") == ("a=b", 0.5)
    for bad, message in (("foo", "expected NAME=WEIGHT"), ("foo=-1", "≥ 0"), ("foo=x", "not a number"),
                         ("=1", "expected NAME=WEIGHT"), ("foo=nan", "≥ 0")):
        with pytest.raises(InvalidRunRequest, match=message):
            parse_weight_option(bad)


def test_malformed_scores_name_row_and_criterion():
    prompts = prompts_table([prompt_row(4, "p0", "AB", "A")])
    criteria = pd.DataFrame([crit_row(4, "p0", "AB", "style", 1.0, 7, 1)])
    expected = r"row 4, criterion 'style', field 'score_A': expected a 1-5 scale score, got 7"
    with pytest.raises(ResultsError, match=expected):
        reweight(prompts, criteria)
    criteria = pd.DataFrame([crit_row(4, "p0", "AB", "safe", 1.0, "maybe", True, kind="binary")])
    with pytest.raises(ResultsError, match=r"binary score \(true/false\), got 'maybe'"):
        reweight(prompts, criteria)
    criteria = pd.DataFrame([crit_row(4, "p0", "AB", "style", -1, 3, 1)])
    with pytest.raises(ResultsError, match="field 'weight'"):
        reweight(prompts, criteria)


def test_synonym_file_errors(tmp_path):
    bad = tmp_path / "syn.json"
    bad.write_text('{"a": "b",\n "c": }')
    with pytest.raises(InvalidRunRequest, match=r"syn.json: line 2"):
        load_synonyms(bad)
    bad.write_text('{"a": 3}')
    with pytest.raises(InvalidRunRequest, match="entry 'a'"):
        load_synonyms(bad)
    bad.write_text('{"a": "b", "b": "a"}')
    with pytest.raises(InvalidRunRequest, match="cycle"):
        load_synonyms(bad)
