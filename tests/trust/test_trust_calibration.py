"""Calibration against hand-labelled prompts, and the label-file errors a user will meet."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from trust_builders import crit_row, prompt_row, prompts_table, swap

from novajudge.errors import DatasetError
from novajudge.stats import cohen_kappa
from novajudge.trust.calibration import calibrate, labels_from_column, load_human_labels, reliability_png
from novajudge.trust.distributions import margin_distribution, score_distribution

# prompt: (human, judge AB winner, margin as sent, judge BA winner in model terms or None)
CASES = {
    "p0": ("A", "A", 0.6, "A"),      # credited both ways            bucket [.5, 1]
    "p1": ("A", "B", -0.05, "B"),    # consistent but wrong          bucket [0, .1)
    "p2": ("B", "B", -0.3, "A"),     # forward right, BA disagrees   bucket [.25, .5)
    "p3": ("B", "B", -0.2, None),    # no BA judgement               bucket [.1, .25)
    "p4": ("tie", "tie", 0.0, "tie"),  # credited                    bucket [0, .1)
    "p5": ("tie", "A", 0.12, None),  # wrong                         bucket [.1, .25)
}


def table(cases=CASES):
    rows, n = [], 0
    for pid, (_, ab, margin, ba) in cases.items():
        rows.append(prompt_row(n, pid, "AB", ab, margin))
        n += 1
        if ba is not None:
            rows.append(prompt_row(n, pid, "BA", swap(ba), -margin))
            n += 1
    return prompts_table(rows)


def labels(cases=CASES):
    return {pid: case[0] for pid, case in cases.items()}


def test_agreement_kappa_and_confusion():
    result = calibrate(table(), labels())
    assert result["forward_agreement"]["successes"] == 4
    assert result["forward_agreement"]["rate"] == pytest.approx(4 / 6)
    assert result["reconciled_agreement"]["successes"] == 2  # p0 and p4
    # Observed 4/6; chance (2·2 + 2·3 + 2·1)/36 = 1/3; kappa = (2/3 − 1/3)/(1 − 1/3) = 0.5.
    assert result["kappa"] == pytest.approx(0.5)
    assert result["confusion"]["A"] == {"A": 1, "B": 1, "tie": 0}
    assert result["confusion"]["tie"] == {"A": 1, "B": 0, "tie": 1}


def test_confidence_buckets_known_accuracies():
    cases = dict(CASES, p6=("A", "A", 1.0, "A"))  # margin exactly 1 belongs to the closed last bucket
    buckets = calibrate(table(cases), labels(cases))["by_confidence"]["buckets"]
    assert [(b["n"], b["correct"]) for b in buckets] == [(2, 1), (2, 1), (1, 1), (2, 2)]
    assert [b["accuracy"] for b in buckets] == [0.5, 0.5, 1.0, 1.0]


def test_kappa_hand_computed_and_undefined():
    # 2×2 example: observed 0.7; chance 0.5·0.6 + 0.5·0.4 = 0.5; kappa = 0.2/0.5 = 0.4.
    humans = ["A"] * 5 + ["B"] * 5
    judge = ["A"] * 4 + ["B"] + ["A"] * 2 + ["B"] * 3
    assert cohen_kappa(humans, judge, ("A", "B", "tie")) == pytest.approx(0.4)
    assert cohen_kappa(["A", "A"], ["A", "A"], ("A", "B", "tie")) is None
    assert cohen_kappa(["A", "B"], ["B", "A"], ("A", "B", "tie")) == pytest.approx(-1.0)


def test_reconciled_never_exceeds_forward():
    rng = random.Random(7)
    for _ in range(60):
        cases = {}
        for i in range(rng.randint(1, 12)):
            human = rng.choice(["A", "B", "tie"])
            ab = rng.choice(["A", "B", "tie", "bothbad", "error"])
            ba = rng.choice(["A", "B", "tie", "error", None])
            cases[f"p{i}"] = (human, ab, rng.uniform(-1, 1), ba)
        result = calibrate(table(cases), labels(cases))
        fwd, rec = result["forward_agreement"], result["reconciled_agreement"]
        if rec.get("measured"):
            assert rec["n"] == fwd["n"]
            assert rec["successes"] <= fwd["successes"]


def test_no_ba_rows_and_binary_margins_not_measured():
    rows = [prompt_row(0, "p0", "AB", "A"), prompt_row(1, "p1", "AB", "error")]
    result = calibrate(prompts_table(rows), {"p0": "A", "p1": "B", "p9": "tie"})
    assert result["reconciled_agreement"]["measured"] is False
    assert result["by_confidence"]["measured"] is False
    assert result["judge_errors"] == 1
    assert result["labels_without_judgement"] == 1
    assert result["forward_agreement"]["n"] == 1


def test_label_file_errors_name_line_and_field(tmp_path):
    path = tmp_path / "labels.jsonl"
    cases = [
        ('{"prompt_id": "p0", "preference": "C"}\n', "line 1: field 'preference' is 'C'"),
        ('{"prompt_id": "p0", "preference": "A"}\n\n{"preference": "B"}\n',
         "line 3: field 'prompt_id' is missing"),
        ('{"prompt_id": "p0"}\n', "line 1: field 'preference' is missing"),
        ('{"prompt_id": "p0", "preference": "A"}\n{oops\n', "line 2: not valid JSON"),
        ('["p0", "A"]\n', "line 1: expected a JSON object"),
        ('{"prompt_id": "p0", "preference": "A"}\n{"prompt_id": "p0", "preference": "B"}\n',
         "line 2: field 'prompt_id' 'p0' was already labelled 'A' on line 1"),
        ("\n", "no labels found"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(DatasetError, match=message):
            load_human_labels(path)
    path.write_text('{"prompt_id": 3, "preference": "b"}\n{"prompt_id": "x", "preference": "Tie"}\n')
    assert load_human_labels(path) == {"3": "B", "x": "tie"}
    with pytest.raises(DatasetError, match="cannot read"):
        load_human_labels(tmp_path / "absent.jsonl")


def test_labels_from_column():
    frame = pd.DataFrame({"prompt_id": ["p0", "p1", "p2"], "human": ["A", None, "x"]})
    with pytest.raises(DatasetError, match="row 2, column 'human'"):
        labels_from_column(frame, "human")
    assert labels_from_column(frame.iloc[:2], "human") == {"p0": "A"}


def test_reliability_png(tmp_path):
    result = calibrate(table(), labels())
    data = reliability_png(result, tmp_path / "rel.png")
    assert data.startswith(b"\x89PNG")
    assert (tmp_path / "rel.png").read_bytes() == data


def test_score_and_margin_distributions():
    criteria = pd.DataFrame([
        crit_row(0, "p0", "AB", "c", 0.5, 5, 4), crit_row(0, "p0", "AB", "d", 0.5, 5, 1),
        crit_row(1, "p1", "BA", "c", 1.0, 4, 4), crit_row(1, "p1", "BA", "s", 0.0, True, False, "binary"),
    ])
    dist = score_distribution(criteria)
    assert dist["scale"]["counts"] == {"1": 1, "2": 0, "3": 0, "4": 3, "5": 2}
    assert dist["scale"]["values_used"] == 3
    assert dist["scale"]["share_extremes"] == pytest.approx(3 / 6)
    assert dist["binary"] == {"n": 2, "share_true": 0.5}
    # Margins as sent 0.5 (AB) and 0.25 (BA → −0.25 in model terms), −0.04 (AB), None.
    prompts = prompts_table([prompt_row(0, "p0", "AB", "A", 0.5), prompt_row(1, "p1", "BA", "A", 0.25),
                             prompt_row(2, "p2", "AB", "tie", -0.04), prompt_row(3, "p3", "AB", "error")])
    margins = margin_distribution(prompts)
    assert margins["n"] == 3
    assert margins["quantiles"]["0.5"] == pytest.approx(-0.04)
    assert margins["quantiles"]["0"] == pytest.approx(-0.25)
    assert margins["share_near_tie"] == pytest.approx(1 / 3)
    assert sum(margins["histogram"]["counts"]) == 3
    assert margins["histogram"]["counts"][15] == 1  # 0.5 falls in [0.5, 0.6)
