"""The length check (issue 11, item 8): lengths, win rate by length difference, LC win rate.

Expected values are computed here by hand (a two-group design, where the logistic fit reproduces
the two group means exactly) or with statsmodels (a GLM fitted independently of novajudge), never
by the code under test. End-to-end archives are written with pandas + tarfile.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from results_builders import judge_output

from novajudge.results.length import CHARS_PER_TOKEN, answer_lengths, length_check
from novajudge.results.numbers import MIN_PROMPTS, prompt_outcomes
from novajudge.results.summarize import summarize

LABEL = {"A": "A>B", "B": "B>A", "tie": "A=B"}


def table(rows: list[tuple[str, str, str, int, int]]) -> pd.DataFrame:
    """(prompt_id, order, model winner, chars of A's answer, chars of B's answer) as a prompts table.

    Rows sent as BA carry model B's answer in response_A and the mirrored label, as the judge saw them.
    """
    out = []
    for i, (pid, order, winner, len_a, len_b) in enumerate(rows):
        text_a, text_b = "a" * len_a, "b" * len_b
        position = {"A": "B", "B": "A"}.get(winner, winner) if order == "BA" else winner
        first, second = (text_a, text_b) if order == "AB" else (text_b, text_a)
        out.append({"row": i, "prompt_id": pid, "order": order, "response_A": first, "response_B": second,
                    "label": LABEL.get(position, "error"), "winner": winner})  # fmt: skip
    return pd.DataFrame(out)


def check(prompts: pd.DataFrame, raw_interval=(None, None)) -> dict:
    return length_check(prompt_outcomes(prompts), prompts, min_prompts=MIN_PROMPTS, raw_interval=raw_interval)


def two_groups(b_wins_longer: int, b_wins_shorter: int, *, swap_lengths: bool = False, order: str = "AB"):
    """20 prompts: 10 where B's answer is 100 chars longer (A 50, B 150), 10 where it is 100 shorter
    (A 400, B 300); in each group the first `b_wins_*` prompts prefer B, the rest A."""
    rows = []
    for i in range(10):
        la, lb = (50, 150) if not swap_lengths else (150, 50)
        rows.append((f"L{i}", order, "B" if i < b_wins_longer else "A", la, lb))
    for i in range(10):
        la, lb = (400, 300) if not swap_lengths else (300, 400)
        rows.append((f"S{i}", order, "B" if i < b_wins_shorter else "A", la, lb))
    return table(rows)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


# ----------------------------------------------------------------------------- hand-computable


def test_lengths_are_per_model_whatever_the_order_sent():
    # p0 sent AB, p1 sent BA only, p2 both orders: A's answer is always 10 chars, B's 30.
    prompts = table([("p0", "AB", "B", 10, 30), ("p1", "BA", "A", 10, 30),
                     ("p2", "AB", "B", 10, 30), ("p2", "BA", "B", 10, 30)])  # fmt: skip
    got = answer_lengths(prompts).set_index("prompt_id")
    assert got["len_A"].tolist() == [10, 10, 10] and got["len_B"].tolist() == [30, 30, 30]
    block = check(prompts)
    assert block["A"]["mean_chars"] == 10 and block["B"]["mean_chars"] == 30
    assert block["A"]["mean_tokens_est"] == pytest.approx(10 / 3.5) and CHARS_PER_TOKEN == 3.5
    assert block["mean_diff_chars"] == 20 and (block["b_longer"], block["a_longer"]) == (3, 0)
    assert block["status"] == "too_few_prompts" and block["lc_win_rate_b"] is None


def test_lc_win_rate_and_slope_by_hand_two_groups():
    # Two values of d (+100, -100): the maximum-likelihood logistic fit reproduces both group means,
    # 8/10 where B is longer and 4/10 where it is shorter. With x = tanh(d / sd), sd of twenty ±100
    # (ddof 1) = 100 * sqrt(20/19), so x = ±t with t = tanh(sqrt(19/20)):
    #   b0 = (logit 0.8 + logit 0.4) / 2 = ln(8/3) / 2,  b1 = (logit 0.8 - logit 0.4) / (2t) = ln 6 / (2t),
    # and LC = logistic(b0) = sqrt(8/3) / (1 + sqrt(8/3)) ≈ 62.0% against the raw 60%.
    block = check(two_groups(8, 4))
    t = math.tanh(math.sqrt(19 / 20))
    assert block["status"] == "fitted"
    assert block["diff_sd_chars"] == pytest.approx(100 * math.sqrt(20 / 19))
    assert block["intercept"] == pytest.approx(math.log(8 / 3) / 2, abs=1e-9)
    assert block["slope"] == pytest.approx(math.log(6) / (2 * t), abs=1e-9)
    assert block["lc_win_rate_b"] == pytest.approx(math.sqrt(8 / 3) / (1 + math.sqrt(8 / 3)), abs=1e-9)
    assert block["raw_win_rate_b"] == pytest.approx(0.6)
    assert block["A"]["mean_chars"] == 225 and block["B"]["mean_chars"] == 225
    lo, hi = block["lc_interval_95"]
    assert lo < block["lc_win_rate_b"] < hi


def test_swapping_a_and_b_in_the_length_difference_flips_the_slope():
    # The same preferences with the lengths given to the other model: the longer answer now loses,
    # so the slope must turn negative (and equal in size); LC, at d = 0, does not move.
    right, swapped = check(two_groups(8, 4)), check(two_groups(8, 4, swap_lengths=True))
    assert right["slope"] > 0 and swapped["slope"] < 0
    assert swapped["slope"] == pytest.approx(-right["slope"], abs=1e-9)
    assert swapped["lc_win_rate_b"] == pytest.approx(right["lc_win_rate_b"], abs=1e-9)
    assert right["mean_diff_chars"] == 0 and right["b_longer"] == 10
    # Sent swapped (every row BA), the answers are un-swapped first: same numbers as sent AB.
    as_ba = check(two_groups(8, 4, order="BA"))
    assert as_ba["slope"] == pytest.approx(right["slope"], abs=1e-9)
    assert as_ba["bins"] == right["bins"]


def test_bins_by_hand():
    # 20 prompts → up to 4 bins of ~5, but equal differences are never split: one bin per value,
    # d = -100 (the 10 shorter-B prompts, 4/10 for B) and d = +100 (the 10 longer-B, 8/10).
    bins = check(two_groups(8, 4))["bins"]
    assert [(b["diff_low"], b["diff_high"], b["prompts"]) for b in bins] == [(-100, -100, 10), (100, 100, 10)]
    assert [b["win_rate_b"] for b in bins] == [pytest.approx(0.4), pytest.approx(0.8)]
    assert [(b["b_preferred"], b["a_preferred"]) for b in bins] == [(4, 6), (8, 2)]


def test_bins_cut_at_equal_counts_by_hand():
    # 10 prompts, d = -40, -30, ..., +50 (B wins exactly the even ones) → 2 bins of 5, cut after the
    # 5th smallest: d -40..0 (B wins at -40, -20, 0: 3/5) and +10..+50 (B at +20, +40: 2/5).
    rows = [(f"p{i}", "AB", "B" if i % 2 == 0 else "A", 100, 60 + 10 * i) for i in range(10)]
    bins = check(table(rows))["bins"]
    assert [(b["diff_low"], b["diff_high"], b["prompts"]) for b in bins] == [(-40, 0, 5), (10, 50, 5)]
    assert [b["win_rate_b"] for b in bins] == [pytest.approx(3 / 5), pytest.approx(2 / 5)]
    assert [b["mean_diff"] for b in bins] == [pytest.approx(-20), pytest.approx(30)]


def test_fractional_outcomes_enter_as_means_of_orders_by_hand():
    # Both orders judged: in the longer-B group each prompt gets B then tie (outcome 3/4), in the
    # shorter-B group A then tie (1/4). Group means 0.75 and 0.25: b0 = 0 (LC exactly 50%),
    # b1 = (logit 0.75 - logit 0.25) / (2t) = ln 9 / (2t). A 0/1 fit would not see these outcomes.
    rows = []
    for i in range(6):
        rows += [(f"L{i}", "AB", "B", 50, 150), (f"L{i}", "BA", "tie", 50, 150)]
        rows += [(f"S{i}", "AB", "A", 400, 300), (f"S{i}", "BA", "tie", 400, 300)]
    block = check(table(rows))
    t = math.tanh(1 / math.sqrt(12 / 11))  # sd of twelve ±100 (ddof 1) = 100 * sqrt(12/11)
    assert block["raw_win_rate_b"] == pytest.approx(0.5)
    assert block["lc_win_rate_b"] == pytest.approx(0.5, abs=1e-9)
    assert block["slope"] == pytest.approx(math.log(9) / (2 * t), abs=1e-9)


# ----------------------------------------------------------------------------- the warning


def test_warning_when_length_explains_the_preference():
    # 9/10 B wins when B is longer, 1/10 when shorter: b0 = 0 → LC 50%; the slope is large.
    # Given a headline interval above 50%, both parts of the rule fire.
    block = check(two_groups(9, 1), raw_interval=(0.55, 0.75))
    assert block["lc_win_rate_b"] == pytest.approx(0.5, abs=1e-9)
    assert block["slope_p"] < 0.05 and block["length_explains"] is True
    assert len(block["warnings"]) == 2
    assert "longer answer" in block["warnings"][0]
    assert "does not survive length control" in block["warnings"][1]


def test_no_warning_when_length_does_not_matter():
    # 8/10 B wins in both groups: slope 0, LC = raw = 80%; its interval stays above 50%.
    block = check(two_groups(8, 8), raw_interval=(0.6, 0.95))
    assert block["slope"] == pytest.approx(0.0, abs=1e-9)
    assert block["lc_win_rate_b"] == pytest.approx(0.8, abs=1e-9)
    assert block["lc_interval_95"][0] > 0.5
    assert block["warnings"] == [] and block["length_explains"] is False


def test_warning_names_the_shorter_answer_when_the_judge_favours_it():
    block = check(two_groups(1, 9))
    assert block["slope"] < 0 and "shorter answer" in block["warnings"][0]


# ----------------------------------------------------------------------------- independent fit


def _random_run(seed: int, n: int) -> pd.DataFrame:
    """n prompts, both orders judged, lengths log-normal, P(B preferred) rising with B - A."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        la, lb = (int(v) for v in rng.lognormal(6.0, 0.6, size=2))
        p_b = 1 / (1 + math.exp(-(0.3 + 1.2 * math.tanh((lb - la) / 400))))
        for order in ("AB", "BA"):
            u = rng.random()
            winner = "B" if u < p_b * 0.85 else ("tie" if u < p_b * 0.85 + 0.15 else "A")
            rows.append((f"p{i}", order, winner, la, lb))
    return table(rows)


@pytest.mark.parametrize("seed", [3, 17])
def test_lc_win_rate_slope_and_robust_errors_match_statsmodels(seed):
    sm = pytest.importorskip("statsmodels.api")
    prompts = _random_run(seed, 240)
    block = check(prompts)
    # The independent fit: per-prompt mean of the orders, d = B - A from the texts, tanh(d / sd).
    sent_ab = prompts["order"] == "AB"
    first, second = prompts["response_A"].str.len(), prompts["response_B"].str.len()
    frame = (
        prompts.assign(
            score=prompts["winner"].map({"B": 1.0, "tie": 0.5, "A": 0.0}),
            len_a=np.where(sent_ab, first, second),
            len_b=np.where(sent_ab, second, first),
        )
        .groupby("prompt_id")
        .agg(y=("score", "mean"), la=("len_a", "first"), lb=("len_b", "first"))
    )
    d = (frame["lb"] - frame["la"]).to_numpy(float)
    x = np.tanh(d / d.std(ddof=1))
    fit = sm.GLM(frame["y"].to_numpy(), sm.add_constant(x), family=sm.families.Binomial()).fit(cov_type="HC0")
    b0, b1 = fit.params
    se0, se1 = fit.bse
    assert block["status"] == "fitted"
    assert block["intercept"] == pytest.approx(b0, abs=1e-7)
    assert block["slope"] == pytest.approx(b1, abs=1e-7)
    assert block["slope_se"] == pytest.approx(se1, rel=1e-6)
    assert block["slope_p"] == pytest.approx(fit.pvalues[1], rel=1e-6, abs=1e-12)
    expit = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert block["lc_win_rate_b"] == pytest.approx(expit(b0), abs=1e-8)
    z = 1.959963984540054
    assert block["lc_interval_95"][0] == pytest.approx(expit(b0 - z * se0), abs=1e-7)
    assert block["lc_interval_95"][1] == pytest.approx(expit(b0 + z * se0), abs=1e-7)
    assert b1 > 0  # the simulated judge favours the longer answer; the sign is B minus A


def test_coefficients_match_a_direct_likelihood_maximisation():
    # A second oracle: scipy minimises the fractional (Bernoulli) negative log-likelihood itself.
    optimize = pytest.importorskip("scipy.optimize")
    prompts = _random_run(5, 150)
    block = check(prompts)
    per = prompt_outcomes(prompts).set_index("prompt_id")["outcome"]
    lengths = answer_lengths(prompts).set_index("prompt_id").loc[per.index]
    d = (lengths["len_B"] - lengths["len_A"]).to_numpy(float)
    x, y = np.tanh(d / d.std(ddof=1)), per.to_numpy(float)

    def nll(b):
        eta = b[0] + b[1] * x
        return float(np.sum(np.logaddexp(0, eta) - y * eta))

    res = optimize.minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10})
    assert block["intercept"] == pytest.approx(res.x[0], abs=1e-5)
    assert block["slope"] == pytest.approx(res.x[1], abs=1e-5)


# ----------------------------------------------------------------------------- degenerate cases


def test_all_ties_no_fit_no_traceback():
    block = check(table([(f"p{i}", "AB", "tie", 10 + i, 20) for i in range(12)]))
    assert block["status"] == "same_outcome" and block["lc_win_rate_b"] is None
    assert block["bins"] and sum(b["prompts"] for b in block["bins"]) == 12


def test_no_length_variation():
    rows = [(f"p{i}", "AB", "B" if i % 3 else "A", 100, 120) for i in range(12)]
    block = check(table(rows))
    assert block["status"] == "no_length_variation" and block["slope"] is None
    assert len(block["bins"]) == 1 and block["bins"][0]["prompts"] == 12


def test_separation_is_reported_not_fitted():
    # B wins exactly when its answer is longer: no finite maximum-likelihood slope.
    rows = [(f"p{i}", "AB", "B", 100, 101 + i) for i in range(6)]
    rows += [(f"q{i}", "AB", "A", 100, 99 - i) for i in range(6)]
    block = check(table(rows))
    assert block["status"] == "separation" and block["lc_win_rate_b"] is None
    # A tie at the boundary keeps it quasi-separated.
    rows.append(("t", "AB", "tie", 100, 100))
    assert check(table(rows))["status"] == "separation"


def test_fewer_than_min_prompts():
    block = check(two_groups(8, 4).iloc[: MIN_PROMPTS - 1])
    assert block["status"] == "too_few_prompts" and str(MIN_PROMPTS) in block["reason"]


def test_no_texts():
    prompts = table([(f"p{i}", "AB", "B" if i % 2 else "A", 0, 0) for i in range(12)])
    assert check(prompts)["status"] == "no_texts"


# ----------------------------------------------------------------------------- end to end


def binary_archive(tmp_path: Path, outcomes: list[tuple[str, int, int]]) -> tuple[Path, list[dict]]:
    """Binary rows judged forward and backward, all sent AB; (model winner, len A, len B) per prompt."""
    fwd = {"A": "[[A>B]]", "B": "[[B>A]]", "tie": "[[A=B]]"}
    bwd = {"A": "[[B>A]]", "B": "[[A>B]]", "tie": "[[A=B]]"}  # the backward pass sees B first
    rows, manifest = [], []
    for i, (w, la, lb) in enumerate(outcomes):
        metrics = {"forward_output": fwd[w], "backward_output": bwd[w]}
        rows.append({"predictions": fwd[w], "gold": "", "metrics": repr(metrics)})
        manifest.append({"row": i, "prompt_id": f"q{i}", "order": "AB", "prompt": f"question {i}",
                         "response_A": "x" * la, "response_B": "y" * lb})  # fmt: skip
    path = judge_output(tmp_path / "output.tar.gz", pd.DataFrame(rows), {"a_scores": 0, "b_scores": 0})
    return path, manifest


def test_summary_report_and_headline_carry_the_length_check(tmp_path):
    # 30 prompts: B 300 chars longer in 15 (14 B wins), 300 shorter in 15 (6 B wins). Headline 20/30.
    outcomes = [("B" if i < 14 else "A", 100, 400) for i in range(15)]
    outcomes += [("B" if i < 6 else "A", 500, 200) for i in range(15)]
    path, manifest = binary_archive(tmp_path, outcomes)
    s = summarize(path, tmp_path / "out", "small", "large", manifest=manifest)
    block = s["length"]
    t = math.tanh(1 / math.sqrt(30 / 29))  # sd of thirty ±300 (ddof 1) = 300 * sqrt(30/29)
    assert block["A"]["mean_chars"] == 300 and block["B"]["mean_chars"] == 300
    assert block["raw_win_rate_b"] == pytest.approx(20 / 30) == pytest.approx(s["prompt_level"]["win_rate_b"])
    assert block["intercept"] == pytest.approx((logit(14 / 15) + logit(6 / 15)) / 2, abs=1e-9)
    assert block["slope"] == pytest.approx((logit(14 / 15) - logit(6 / 15)) / (2 * t), abs=1e-9)
    assert block["length_explains"] is True
    assert "length-controlled win rate of B" in s["headline"] and "WARNING" in s["headline"]
    assert s["methods"]["length"]["lc_win_rate"].startswith("AlpacaEval 2")
    json.loads((tmp_path / "out" / "summary.json").read_text())  # strict JSON, no NaN
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Length check" in page and "Length warning" in page
    assert f"{100 * block['lc_win_rate_b']:.1f}%" in page


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([("tie", 10 + i, 30) for i in range(12)], "same_outcome"),
        ([("B" if i % 2 else "A", 40, 40) for i in range(12)], "no_length_variation"),
        ([("B", 10, 20 + i) for i in range(6)] + [("A", 20 + i, 10) for i in range(6)], "separation"),
        ([("B", 10, 20), ("A", 30, 10), ("B", 5, 6)], "too_few_prompts"),
    ],
)
def test_degenerate_runs_summarise_without_a_traceback(tmp_path, outcomes, status):
    path, manifest = binary_archive(tmp_path, outcomes)
    s = summarize(path, tmp_path / "out", "m1", "m2", manifest=manifest)
    assert s["length"]["status"] == status and s["length"]["lc_win_rate_b"] is None
    assert "no length-controlled win rate" in s["headline"]
    assert (tmp_path / "out" / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "not estimated" in (tmp_path / "out" / "report.html").read_text()
