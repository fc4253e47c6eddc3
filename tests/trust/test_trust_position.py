"""Position bias on constructed judges whose figures can be computed by hand."""

from __future__ import annotations

import pytest
from trust_builders import prompt_row, prompts_table

from novajudge.errors import ResultsError
from novajudge.trust.position import position_bias, position_bias_binary


def _both_orders(verdicts_ab: list[str], verdicts_ba: list[str]):
    """Prompt i judged AB with verdicts_ab[i] and BA with verdicts_ba[i] (both *as sent*)."""
    rows = []
    for i, (ab, ba) in enumerate(zip(verdicts_ab, verdicts_ba, strict=True)):
        rows.append(prompt_row(2 * i, f"p{i}", "AB", ab))
        rows.append(prompt_row(2 * i + 1, f"p{i}", "BA", ba))
    return prompts_table(rows)


def test_judge_always_preferring_position_a():
    result = position_bias(_both_orders(["A"] * 5, ["A"] * 5))
    # AB: model A wins 5; BA: position A is model B, so the two orders always disagree.
    assert result["plain"]["counts"]["A"] == 5
    assert result["plain"]["b_win_rate"]["rate"] == 0.0
    assert result["consistency"]["rate"] == 0.0
    assert result["reconciled"]["counts"]["inconsistent"] == 5
    assert result["reconciled"]["counts"]["A"] == result["reconciled"]["counts"]["B"] == 0
    # MT-Bench: an order-inconsistent prompt is a tie (1/2), never dropped: 5 ties of 5 → 0.5.
    assert result["reconciled"]["b_win_rate"]["rate"] == 0.5
    assert result["reconciled"]["b_win_rate"]["n"] == 5
    # Every inconsistent prompt leaned to the first-shown position (A>B in both orders).
    assert result["consistency"]["leaned_first"] == 5 and result["consistency"]["leaned_second"] == 0
    assert result["first_position_preference"]["rate"] == 1.0
    assert result["first_position_preference"]["n"] == 10
    assert len(result["flips"]) == 5 and result["flips_total"] == 5


def test_perfectly_consistent_judge_reconciled_equals_plain():
    # Model B wins p0, p1, p2, model A wins p3, p4 ties. As sent in BA, a model-B win is label A>B.
    result = position_bias(_both_orders(["B", "B", "B", "A", "tie"], ["A", "A", "A", "B", "tie"]))
    assert result["consistency"]["rate"] == 1.0
    assert result["consistency"]["n"] == 5
    rec, plain = result["reconciled"]["counts"], result["plain"]["counts"]
    assert (rec["A"], rec["B"], rec["tie"], rec["inconsistent"]) == (plain["A"], plain["B"], plain["tie"], 0)
    # Reconciled, ties as 1/2 over all 5 prompts: (3 + 0.5) / 5; plain is over decided AB verdicts.
    assert result["reconciled"]["b_win_rate"]["rate"] == pytest.approx(3.5 / 5)
    assert result["plain"]["b_win_rate"]["rate"] == pytest.approx(3 / 4)
    # Decided judgements: 8; first position (label A>B) chosen in AB p3 and BA p0,p1,p2 → 4/8.
    assert result["first_position_preference"]["rate"] == pytest.approx(0.5)
    assert result["flips"] == []


def test_mixed_judge_hand_computed():
    # p0 consistent B, p1 consistent A, p2 inconsistent (position A both times), p3 tie vs B.
    result = position_bias(_both_orders(["B", "A", "A", "tie"], ["A", "B", "A", "A"]))
    rec = result["reconciled"]["counts"]
    assert (rec["A"], rec["B"], rec["inconsistent"]) == (1, 1, 2)
    assert result["consistency"]["successes"] == 2
    assert result["consistency"]["rate"] == pytest.approx(0.5)
    # Decided: AB B,A,A ; BA A,B,A,A → 7 decided, label A>B in 5.
    assert result["first_position_preference"]["successes"] == 5
    assert result["first_position_preference"]["n"] == 7
    assert result["plain"]["b_win_rate"]["rate"] == pytest.approx(1 / 3)
    low, high = result["plain"]["b_win_rate"]["ci_low"], result["plain"]["b_win_rate"]["ci_high"]
    assert 0 < low < 1 / 3 < high < 1


def test_wilson_interval_value():
    # 3 B wins of 4 decided: Wilson 95 % = [0.3006, 0.9544] (standard tables).
    result = position_bias(_both_orders(["B", "B", "B", "A"], ["A", "A", "A", "B"]))
    ci = result["plain"]["b_win_rate"]
    assert ci["ci_low"] == pytest.approx(0.3006, abs=1e-3)
    assert ci["ci_high"] == pytest.approx(0.9544, abs=1e-3)


def test_no_ba_rows_is_not_measured():
    table = prompts_table([prompt_row(i, f"p{i}", "AB", v) for i, v in enumerate(["A", "B", "B"])])
    result = position_bias(table)
    assert result["reconciled"] == {"measured": False, "reason": result["reconciled"]["reason"]}
    assert "no pair was judged in the swapped" in result["reconciled"]["reason"]
    assert result["consistency"]["measured"] is False
    assert result["first_position_preference"]["confounded"] is True
    assert result["missing_order"]["only_ab"] == 3
    assert result["plain"]["b_win_rate"]["rate"] == pytest.approx(2 / 3)


def test_all_ties():
    result = position_bias(_both_orders(["tie"] * 3, ["tie", "bothbad", "tie"]))
    assert result["consistency"]["rate"] == 1.0
    assert result["reconciled"]["counts"]["tie"] == 3
    assert result["plain"]["b_win_rate"]["rate"] is None
    assert result["first_position_preference"]["n"] == 0
    assert result["first_position_preference"]["rate"] is None


def test_missing_orders_and_errors_counted():
    rows = [prompt_row(0, "p0", "AB", "A"), prompt_row(1, "p0", "BA", "error"),
            prompt_row(2, "p1", "AB", "B"), prompt_row(3, "p2", "BA", "A"),
            prompt_row(4, "p3", "AB", "A"), prompt_row(5, "p3", "BA", "B")]
    result = position_bias(prompts_table(rows))
    assert result["missing_order"]["only_ab_ids"] == ["p1"]
    assert result["missing_order"]["only_ba_ids"] == ["p2"]
    assert result["reconciled"]["prompts"] == 2
    assert result["reconciled"]["counts"]["error"] == 1
    assert result["consistency"]["n"] == 1  # the error prompt is not judged for consistency
    assert result["consistency"]["rate"] == 1.0


def test_bad_table_names_row_and_field():
    rows = [prompt_row(0, "p0", "AB", "A"), prompt_row(7, "p1", "AB", "A")]
    rows[1]["order"] = "XY"
    with pytest.raises(ResultsError, match=r"row 7: field 'order' is 'XY'"):
        position_bias(prompts_table(rows))
    dup = [prompt_row(0, "p0", "AB", "A"), prompt_row(1, "p0", "AB", "B")]
    with pytest.raises(ResultsError, match=r"'p0' has more than one AB judgement \(rows 0, 1\)"):
        position_bias(prompts_table(dup))


def test_binary_forward_backward_always_first():
    # Raw outputs with brackets; backward names positions as shown (swapped pair).
    result = position_bias_binary(["[[A>B]]"] * 4, ["[[A>B]]"] * 4)
    assert result["consistency"]["rate"] == 0.0
    assert result["reconciled"]["counts"]["inconsistent"] == 4
    assert result["first_position_preference"]["rate"] == 1.0


def test_binary_consistent_and_unreadable_output():
    # B wins both orders in p0 (backward A>B = first shown = model B), A wins p1, p2 unreadable.
    result = position_bias_binary(["B>A", "A>B", "A>B"], ["A>B", "B>A", "garbled"], ["x", "y", "z"])
    assert result["reconciled"]["counts"]["A"] == 1
    assert result["reconciled"]["counts"]["B"] == 1
    assert result["reconciled"]["counts"]["error"] == 1
    assert result["consistency"]["rate"] == 1.0
    # Backward already in model terms: the same inputs now disagree on p0 and p1.
    flipped = position_bias_binary(["B>A", "A>B"], ["A>B", "B>A"], backward_as_shown=False)
    assert flipped["consistency"]["rate"] == 0.0


def test_binary_rows_sent_swapped():
    # Row 0 sent AB, row 1 sent BA (model B as response_A), same prompt.
    # Always-first judge: forward A>B and backward A>B on both rows → never consistent.
    biased = position_bias_binary(["A>B", "A>B"], ["A>B", "A>B"], ["p0", "p0"], orders=["AB", "BA"])
    assert biased["consistency"]["rate"] == 0.0
    assert biased["reconciled"]["prompts"] == 2  # each judged pair is its own prompt ("p0/AB", "p0/BA")
    # Judge that prefers model B: on the BA row model B is shown first in the forward pass (A>B) and
    # second in the backward pass (B>A as shown) → B both times; on the AB row B>A then A>B.
    fair = position_bias_binary(["B>A", "A>B"], ["A>B", "B>A"], ["p0", "p0"], orders=["AB", "BA"])
    assert fair["consistency"]["rate"] == 1.0
    assert fair["reconciled"]["counts"]["B"] == 2
    assert fair["first_position_preference"]["rate"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="order 'XY'"):
        position_bias_binary(["A>B"], ["A>B"], orders=["XY"])


def test_binary_outputs_from_details():
    import pandas as pd

    from novajudge.trust.binary import binary_outputs_from_details

    columns = pd.DataFrame({"forward_output": ["A>B"], "backward_output": ["B>A"]})
    assert binary_outputs_from_details(columns) == {"forward": ["A>B"], "backward": ["B>A"],
                                                    "prompt_ids": None, "orders": None}
    metrics = pd.DataFrame({"metrics": ["{'forward_output': '[[A>B]]', 'backward_output': '[[A>B]]'}", ""]})
    prompts = pd.DataFrame({"row": [1, 0], "prompt_id": ["y", "x"], "order": ["BA", "AB"]})
    out = binary_outputs_from_details(metrics, prompts)
    assert out == {"forward": ["[[A>B]]", None], "backward": ["[[A>B]]", None],
                   "prompt_ids": ["x", "y"], "orders": ["AB", "BA"]}
    rubric = pd.DataFrame({"metrics": ["{'predictions': '[[A>B]]'}"]})
    assert binary_outputs_from_details(rubric) is None
    with pytest.raises(ResultsError, match="details row 0: field 'metrics' is not a Python dict literal"):
        binary_outputs_from_details(pd.DataFrame({"metrics": ["{oops"]}))


def test_a_large_run_lists_the_first_hundred_flips_and_counts_them_all():
    # 150 prompts, all inconsistent (position A chosen in both orders); p0..p149 sort as strings.
    result = position_bias(_both_orders(["A"] * 150, ["A"] * 150))
    assert result["flips_total"] == 150 and len(result["flips"]) == 100
    expected_ids = sorted(f"p{i}" for i in range(150))[:100]
    assert [f["prompt_id"] for f in result["flips"]] == expected_ids
    assert result["flips"][0] == {"prompt_id": "p0", "ab": "A", "ba": "B"}  # BA's A>B is model B
