"""The archive writer reproduces the judge's documented layout and aggregate fields."""

from __future__ import annotations

import ast
import io
import json
import tarfile

import pandas as pd
import pytest
from results_builders import TIMESTAMP, rubric_case, simple

from novajudge.errors import ResultsError
from novajudge.local.judge_archive import Judgement, write_judge_archive


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_rubric_layout_matches_the_documented_paths(tmp_path):
    case = rubric_case(20)
    path = write_judge_archive(tmp_path, "rubric", case.judgements, "my-run", TIMESTAMP)
    assert path == tmp_path / "output.tar.gz"
    assert sorted(_members(path)) == sorted(
        [
            f"my-run/eval_results/results_{TIMESTAMP}.json",
            f"my-run/eval_results/details/rubric_judge_model/{TIMESTAMP}/"
            f"details_custom|rubric_llm_judge_judge|0_{TIMESTAMP}.parquet",
            f"my-run/tensorboard_results/eval/events.out.tfevents.{TIMESTAMP}",
        ]
    )


def test_rubric_results_and_details_are_computed_from_the_judgements(tmp_path):
    case = rubric_case(60)
    files = _members(write_judge_archive(tmp_path / "o.tar.gz", "rubric", case.judgements, "r", TIMESTAMP))
    doc = json.loads(files[f"r/eval_results/results_{TIMESTAMP}.json"])
    task = doc["results"]["custom|rubric_llm_judge_judge|0"]
    assert doc["results"]["all"] == task
    labels = [j.label for j in case.judgements]
    a, b = labels.count("A>B"), labels.count("B>A")
    t = labels.count("A=B") + labels.count("A=B (bothbad)")
    assert (task["a_scores"], task["b_scores"], task["ties"], task["inference_error"]) == (
        a,
        b,
        t,
        labels.count(None),
    )
    assert task["winrate"] == pytest.approx((b + t / 2) / (a + b + t))
    assert task["lower_rate"] <= task["winrate"] <= task["upper_rate"]
    valid = [j for j in case.judgements if j.label]
    wa = [
        sum(c.weight * ((c.score_A - 1) / 4 if c.type == "scale" else float(c.score_A)) for c in j.criteria)
        for j in valid
    ]
    wb = [
        sum(c.weight * ((c.score_B - 1) / 4 if c.type == "scale" else float(c.score_B)) for c in j.criteria)
        for j in valid
    ]
    assert task["weighted_score_A"] == pytest.approx(sum(wa) / len(wa))
    assert task["score_margin"] == pytest.approx((sum(wa) - sum(wb)) / len(wa))

    name = next(k for k in files if k.endswith(".parquet"))
    details = pd.read_parquet(io.BytesIO(files[name]))
    assert list(details.columns) == ["full_prompt", "gold", "predictions", "metrics"]
    assert len(details) == 60
    for j, (_, row) in zip(case.judgements, details.iterrows(), strict=True):
        assert j.prompt in row["full_prompt"]  # judge-input order
        metrics = ast.literal_eval(row["metrics"])
        if j.label is None:
            assert metrics["predictions"] is None
            continue
        assert metrics["predictions"] == f"[[{j.label}]]"
        assert set(metrics["criteria_breakdown"]) == {c.name for c in j.criteria}
        first = j.criteria[0]
        assert metrics["criteria_breakdown"][first.name]["score_A"] == first.score_A


def test_bootstrap_bounds_are_seeded(tmp_path):
    js = simple(["A>B"] * 10 + ["B>A"] * 14 + ["A=B"] * 3)
    docs = []
    for i, seed in enumerate((1, 1, 2)):
        files = _members(write_judge_archive(tmp_path / f"{i}.tar.gz", "rubric", js, "r", "ts", seed=seed))
        docs.append(json.loads(files["r/eval_results/results_ts.json"])["results"]["all"])
    assert docs[0]["lower_rate"] == docs[1]["lower_rate"]
    assert (docs[0]["lower_rate"], docs[0]["upper_rate"]) != (docs[2]["lower_rate"], docs[2]["upper_rate"])


def test_binary_counts_both_passes(tmp_path):
    js = simple(["A>B", "B>A", "A=B", None], criteria=False)
    # position-biased pair: "A" wins in both passes, i.e. once each model
    js.append(Judgement("p", "x", "y", "A=B", forward_output="[[A>B]]", backward_output="[[A>B]]"))
    files = _members(write_judge_archive(tmp_path, "binary", js, "b", "ts"))
    assert "b/eval_results/details/llm_judge_model/ts/details_custom|llm_judge_judge|0_ts.parquet" in files
    res = json.loads(files["b/eval_results/results_ts.json"])["results"]["all"]
    assert (res["a_scores"], res["b_scores"], res["ties"], res["inference_error"]) == (3, 3, 2, 1)
    assert "weighted_score_A" not in res
    details = pd.read_parquet(
        io.BytesIO(
            files["b/eval_results/details/llm_judge_model/ts/details_custom|llm_judge_judge|0_ts.parquet"]
        )
    )
    m = ast.literal_eval(details["metrics"][1])
    assert (m["forward_output"], m["backward_output"], m["b_scores"]) == ("[[B>A]]", "[[A>B]]", 2)


def test_rejects_unknown_labels_and_bad_names(tmp_path):
    with pytest.raises(ResultsError, match="label must be one of"):
        write_judge_archive(tmp_path, "rubric", simple(["A>>B"], criteria=False), "r", "ts")
    with pytest.raises(ResultsError, match="run_name"):
        write_judge_archive(tmp_path, "rubric", simple(["A>B"]), "a/b", "ts")
    with pytest.raises(ResultsError, match="variant"):
        write_judge_archive(tmp_path, "pairwise", simple(["A>B"]), "r", "ts")  # type: ignore[arg-type]
