"""Every number `summarize` reports, checked against calculations written here from the judgements."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from results_builders import TIMESTAMP, rubric_case, simple

from novajudge.local.judge_archive import Criterion, Judgement, write_judge_archive
from novajudge.results.summarize import summarize

Z = 1.959963984540054


def wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """Wilson bounds as the roots of (k/n - p)^2 = z^2 p (1 - p) / n (a different route from stats.py)."""
    ph, z2 = k / n, Z * Z
    a, b, c = 1 + z2 / n, -(2 * ph + z2 / n), ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


def sign_test_by_enumeration(k: int, n: int) -> float:
    """Two-sided exact binomial p: total probability of outcomes no more likely than the observed one."""
    pmf = [math.comb(n, i) for i in range(n + 1)]
    return min(1.0, sum(p for p in pmf if p <= pmf[k]) / 2**n)


def model_outcomes(case):
    """Winner per judgement in terms of the models, from the labels and the manifest."""
    out = []
    for j, m in zip(case.judgements, case.manifest, strict=True):
        if j.label is None:
            out.append("error")
            continue
        w = {"A>B": "A", "B>A": "B", "A=B": "tie", "A=B (bothbad)": "bothbad"}[j.label]
        if m["order"] == "BA" and w in ("A", "B"):
            w = "B" if w == "A" else "A"
        out.append(w)
    return out


def norm(c: Criterion, score) -> float:
    return float(bool(score)) if c.type == "binary" else (score - 1) / 4


def model_weighted(case) -> tuple[list[float], list[float]]:
    """Weighted score per valid judgement for model A and model B, weights divided by their sum."""
    wa, wb = [], []
    for j, m in zip(case.judgements, case.manifest, strict=True):
        if j.label is None:
            continue
        total = sum(c.weight for c in j.criteria)
        sent_a = sum(c.weight * norm(c, c.score_A) for c in j.criteria) / total
        sent_b = sum(c.weight * norm(c, c.score_B) for c in j.criteria) / total
        a, b = (sent_b, sent_a) if m["order"] == "BA" else (sent_a, sent_b)
        wa.append(a)
        wb.append(b)
    return wa, wb


@pytest.fixture(scope="module")
def rubric_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rubric")
    case = rubric_case(120, seed=11)
    archive = write_judge_archive(tmp, "rubric", case.judgements, "run", TIMESTAMP)
    summary = summarize(archive, tmp / "out", "Qwen2.5-1.5B", "Qwen2.5-7B", manifest=case.manifest)
    return case, summary, tmp / "out"


def test_counts_rates_interval_and_test_match_independent_calculations(rubric_run):
    case, s, _ = rubric_run
    outcomes = model_outcomes(case)
    a, b = outcomes.count("A"), outcomes.count("B")
    ties, bad, err = outcomes.count("tie"), outcomes.count("bothbad"), outcomes.count("error")
    valid = len(outcomes) - err
    c = s["ours"]["counts"]
    assert c == {
        "total": 120,
        "valid": valid,
        "decided": a + b,
        "a_wins": a,
        "b_wins": b,
        "ties": ties,
        "bothbad_ties": bad,
        "inference_errors": err,
    }
    assert min(a, b, ties, bad, err) > 0, "the fixture must exercise every outcome"
    assert s["ours"]["error_rate"] == pytest.approx(err / 120)
    assert s["ours"]["win_rate_b_decided"] == pytest.approx(b / (a + b))
    assert s["ours"]["win_rate_b_ties_half"] == pytest.approx((b + (ties + bad) / 2) / valid)
    assert s["ours"]["wilson_95"] == pytest.approx(wilson_by_quadratic(b, a + b), abs=1e-12)
    assert s["ours"]["sign_test_p"] == pytest.approx(sign_test_by_enumeration(b, a + b), rel=1e-9)


def test_bootstrap_is_seeded_stated_and_plausible(rubric_run, tmp_path):
    case, s, _ = rubric_run
    boot = s["methods"]["bootstrap_95"]
    assert boot["seed"] == 20260101 and boot["resamples"] == 2000 and "bootstrap" in boot["method"]
    lo, hi = s["ours"]["bootstrap_95"]
    rate = s["ours"]["win_rate_b_ties_half"]
    assert lo < rate < hi
    # close to the normal-theory interval of a mean of 0 / 0.5 / 1 outcomes
    values = [{"A": 0.0, "B": 1.0}.get(o, 0.5) for o in model_outcomes(case) if o != "error"]
    half = Z * statistics.stdev(values) / math.sqrt(len(values))
    assert lo == pytest.approx(rate - half, abs=0.03) and hi == pytest.approx(rate + half, abs=0.03)
    archive = write_judge_archive(tmp_path, "rubric", case.judgements, "run", TIMESTAMP)
    again = summarize(archive, tmp_path / "a", "A", "B", manifest=case.manifest)
    other = summarize(archive, tmp_path / "b", "A", "B", manifest=case.manifest, seed=5)
    assert again["ours"]["bootstrap_95"] == [lo, hi]
    assert other["ours"]["bootstrap_95"] != [lo, hi]
    assert other["methods"]["bootstrap_95"]["seed"] == 5


def test_judges_own_numbers_are_reported_as_the_judges(rubric_run):
    case, s, out = rubric_run
    labels = [j.label for j in case.judgements]  # as sent: the judge does not know about swapping
    a, b = labels.count("A>B"), labels.count("B>A")
    t = labels.count("A=B") + labels.count("A=B (bothbad)")
    judge = s["judge"]
    assert (judge["a_scores"], judge["b_scores"], judge["ties"]) == (a, b, t)
    assert judge["winrate"] == pytest.approx((b + t / 2) / (a + b + t))
    assert judge["lower_rate"] < judge["winrate"] < judge["upper_rate"]
    assert any("sent swapped" in n for n in s["notes"])
    assert json.loads((out / "summary.json").read_text()) == s


def test_rubric_scores_margin_and_criteria(rubric_run):
    case, s, _ = rubric_run
    r = s["rubric"]
    wa, wb = model_weighted(case)
    margins = sorted(x - y for x, y in zip(wa, wb, strict=True))
    assert r["rows_with_criteria"] == len(wa)
    assert r["weighted_score_A_mean"] == pytest.approx(statistics.fmean(wa))
    assert r["weighted_score_B_mean"] == pytest.approx(statistics.fmean(wb))
    assert r["margin"]["mean"] == pytest.approx(statistics.fmean(margins))
    assert r["margin"]["median"] == pytest.approx(statistics.median(margins))
    assert r["margin"]["q25"] == pytest.approx(statistics.quantiles(margins, n=4, method="inclusive")[0])
    assert (r["margin"]["min"], r["margin"]["max"]) == pytest.approx((margins[0], margins[-1]))
    assert r["judge_vs_ours_max_abs_diff"] == pytest.approx(0.0, abs=1e-12)
    assert r["weights_renormalised_rows"] == 0

    # per criterion, merged across spellings, in model terms
    per: dict[str, dict[str, list]] = {}
    for j, m in zip(case.judgements, case.manifest, strict=True):
        for c in j.criteria:
            key = c.name.lower().replace(" ", "_")
            na, nb = norm(c, c.score_A), norm(c, c.score_B)
            if m["order"] == "BA":
                na, nb = nb, na
            d = per.setdefault(key, {"a": [], "b": [], "rows": []})
            d["a"].append(na)
            d["b"].append(nb)
    by_key = {row["criterion_key"]: row for row in r["criteria"]}
    assert set(by_key) == set(per)
    for key, d in per.items():
        row = by_key[key]
        assert row["judgements"] == len(d["a"])
        assert row["mean_norm_A"] == pytest.approx(statistics.fmean(d["a"]))
        assert row["mean_norm_B"] == pytest.approx(statistics.fmean(d["b"]))
        assert row["a_wins"] == sum(x > y for x, y in zip(d["a"], d["b"], strict=True))
        assert row["b_wins"] == sum(y > x for x, y in zip(d["a"], d["b"], strict=True))
    most = sorted(per, key=lambda k: (-len(per[k]["a"]), k))
    assert [by_key[k]["name"] for k in most] == r["most_frequent_criteria"][: len(most)]
    assert by_key["cites_the_passage"]["type"] == "binary"


def test_weights_not_summing_to_one_are_renormalised_and_said(tmp_path):
    case = rubric_case(30, seed=3, weights_sum_to_one=False)
    archive = write_judge_archive(tmp_path, "rubric", case.judgements, "run", TIMESTAMP)
    s = summarize(archive, tmp_path / "out", "A", "B", manifest=case.manifest)
    r = s["rubric"]
    valid = [j for j in case.judgements if j.label]
    assert r["weights_renormalised_rows"] == len(valid)
    assert "did not sum to 1" in r["weights_note"] and any("did not sum to 1" in n for n in s["notes"])
    wa, _ = model_weighted(case)
    assert r["weighted_score_A_mean"] == pytest.approx(statistics.fmean(wa))
    # the judge's scores use the raw weights (sum 1.25): they differ from ours and we say by how much
    raw = [sum(c.weight * norm(c, c.score_A) for c in j.criteria) for j in valid]
    ours = [x / sum(c.weight for c in j.criteria) for x, j in zip(raw, valid, strict=True)]
    raw_b = [sum(c.weight * norm(c, c.score_B) for c in j.criteria) for j in valid]
    ours_b = [x / sum(c.weight for c in j.criteria) for x, j in zip(raw_b, valid, strict=True)]
    expected = max(abs(x - y) for x, y in zip(raw + raw_b, ours + ours_b, strict=True))
    assert r["judge_vs_ours_max_abs_diff"] == pytest.approx(expected)


def test_judge_scores_disagreeing_with_its_breakdown_are_flagged(tmp_path):
    js = simple(["A>B", "B>A"])
    js[0].weighted_score_A, js[0].weighted_score_B = 0.9, 0.25  # breakdown says 1.0 / 0.25
    s = summarize(write_judge_archive(tmp_path, "rubric", js, "r", "ts"), tmp_path / "o", "A", "B")
    assert s["rubric"]["judge_vs_ours_max_abs_diff"] == pytest.approx(0.1)
    assert s["rubric"]["judge_vs_ours_rows_differing"] == 1
    assert any("differ from those recomputed" in n for n in s["notes"])


SIG = "is preferred, significant at 5% (sign test over prompts)"


@pytest.mark.parametrize(
    ("labels", "verdict", "words", "prompt_verdict", "prompt_words"),
    [
        (["B>A"] * 30 + ["A>B"] * 5, "B", "B is preferred, significant at 5%", "B", f"B {SIG}"),
        (["A>B"] * 30 + ["B>A"] * 6 + [None] * 3, "A", "A is preferred, significant at 5%", "A", f"A {SIG}"),
        (
            ["A>B"] * 10 + ["B>A"] * 12 + ["A=B"] * 4,
            "inconclusive",
            "inconclusive: the interval includes 0.5",
            "inconclusive",
            # 12 of 22 prompts with a net preference: p = 2 * P(X >= 12 | 22) by hand below
            f"inconclusive: the sign test over prompts gives p = {sign_test_by_enumeration(12, 22):.3g}",
        ),
        (
            ["A=B"] * 5 + ["A=B (bothbad)"] * 2,
            "inconclusive",
            "inconclusive: all 7 valid judgements are ties",
            "inconclusive",
            "too few prompts to conclude (7 < 10)",
        ),
        ([None] * 4, "none", "no valid judgements", "none", "no prompt has a valid judgement"),
        (["B>A"], "inconclusive", "inconclusive: the interval includes 0.5", "inconclusive",
         "too few prompts to conclude (1 < 10)"),
    ],
)
def test_verdicts(tmp_path, labels, verdict, words, prompt_verdict, prompt_words):
    # One order, no manifest: every judgement is its own prompt, so both views count the same units.
    s = summarize(
        write_judge_archive(tmp_path, "rubric", simple(labels), "r", "ts"), tmp_path / "o", "m1", "m2"
    )
    assert s["ours"]["verdict"] == verdict and s["ours"]["verdict_text"] == words
    assert s["verdict"] == prompt_verdict and s["verdict_text"] == prompt_words
    assert prompt_words.replace("B is", "B (m2) is").replace("A is", "A (m1) is") in s["headline"]
    a, b = labels.count("A>B"), labels.count("B>A")
    if a + b:
        assert s["ours"]["sign_test_p"] == pytest.approx(sign_test_by_enumeration(b, a + b))
        lo, hi = wilson_by_quadratic(b, a + b)
        assert s["ours"]["wilson_95"] == pytest.approx([lo, hi])
        assert (lo > 0.5 or hi < 0.5) == (verdict in ("A", "B"))
    else:
        assert s["ours"]["win_rate_b_decided"] is None and s["ours"]["wilson_95"] == [None, None]


def test_zero_valid_judgements_give_nulls_not_nan(tmp_path):
    s = summarize(
        write_judge_archive(tmp_path, "rubric", simple([None, None]), "r", "ts"), tmp_path / "o", "A", "B"
    )
    text = (tmp_path / "o" / "summary.json").read_text()
    assert "NaN" not in text
    assert s["ours"]["win_rate_b_ties_half"] is None and s["ours"]["bootstrap_95"] == [None, None]
    assert s["rubric"]["margin"]["n"] == 0 and s["rubric"]["weighted_score_A_mean"] is None
    assert s["judge"]["winrate"] is None
    assert s["ours"]["error_rate"] == 1.0


def test_one_prompt_with_binary_criteria_only(tmp_path):
    j = Judgement(
        "p",
        "a",
        "b",
        "B>A",
        [
            Criterion("Grounded", "d", "binary", 0.5, False, True),
            Criterion("Safe", "d", "binary", 0.5, True, True),
        ],
    )
    s = summarize(write_judge_archive(tmp_path, "rubric", [j], "r", "ts"), tmp_path / "o", "A", "B")
    assert s["ours"]["counts"]["b_wins"] == 1
    assert s["rubric"]["weighted_score_A_mean"] == pytest.approx(0.5)
    assert s["rubric"]["weighted_score_B_mean"] == pytest.approx(1.0)
    assert s["rubric"]["margin"]["median"] == pytest.approx(-0.5)
    assert {c["criterion_key"]: (c["a_wins"], c["b_wins"], c["ties"]) for c in s["rubric"]["criteria"]} == {
        "grounded": (0, 1, 0),
        "safe": (0, 0, 1),
    }


def test_binary_judge_summary(tmp_path):
    labels = ["B>A"] * 9 + ["A>B"] * 4 + ["A=B"] * 2 + [None]
    manifest = [{"row": i, "prompt_id": str(i), "order": "BA" if i < 3 else "AB"} for i in range(len(labels))]
    archive = write_judge_archive(tmp_path, "binary", simple(labels, criteria=False), "b", "ts")
    s = summarize(archive, tmp_path / "o", "A", "B", manifest=manifest)
    # the first three (B>A as sent) were sent swapped: they are A wins
    assert (s["ours"]["counts"]["a_wins"], s["ours"]["counts"]["b_wins"]) == (4 + 3, 9 - 3)
    assert s["rubric"] is None and s["variant"] == "binary"
    assert s["judge"]["b_scores"] == 18 and s["judge"]["a_scores"] == 8  # both passes
    assert any("both passes" in n for n in s["notes"])
