"""`novajudge reweight` end to end on a details.parquet laid out as docs/design.md describes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from trust_builders import crit_row, prompt_row
from typer.testing import CliRunner

import novajudge.cli.reweight_cmd  # noqa: F401  (registers the command on the shared app)
from novajudge.cli.app import app
from novajudge.verdicts import CRITERION_COLUMNS, PROMPT_COLUMNS

# Same four prompts as test_trust_reweight: dropping "style" flips p0 (B→A) and p1 (A→B).
CASES = [("p0", (5, 4), (1, 5), "B", -0.25), ("p1", (2, 4), (5, 1), "A", 0.10),
         ("p2", (5, 1), (5, 1), "A", 1.0), ("p3", (3, 3), (4, 4), "tie", 0.0)]


def stacked() -> pd.DataFrame:
    """Prompt and criterion rows in one frame with `kind`, columns typed as the writer types them."""
    prompts, criteria = [], []
    for row, (pid, corr, style, verdict, margin) in enumerate(CASES):
        prompts.append(prompt_row(row, pid, "AB", verdict, margin))
        criteria.append(crit_row(row, pid, "AB", "Correctness", 0.6, *corr))
        criteria.append(crit_row(row, pid, "AB", "Style!", 0.4, *style))
    p = pd.DataFrame(prompts).assign(kind="prompt")
    c = pd.DataFrame(criteria).assign(kind="criterion")
    frame = pd.concat([p, c], ignore_index=True)
    columns = ["kind", *dict.fromkeys([*PROMPT_COLUMNS, *CRITERION_COLUMNS])]
    frame = frame[columns]
    for name in ("weighted_score_A", "weighted_score_B", "score_margin", "weight", "score_A", "score_B",
                 "norm_A", "norm_B"):
        frame[name] = frame[name].astype(np.float64)
    for name in columns:
        if frame[name].dtype == object:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


@pytest.fixture(params=["pyarrow", "fastparquet"])
def results_dir(request, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stacked().to_parquet(tmp_path / "details.parquet", engine=request.param, index=False)
    (tmp_path / "summary.json").write_text(json.dumps({"variant": "rubric"}))
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(app, ["reweight", *map(str, args)])


def test_drop_flips_two_and_writes_json(results_dir):
    out = results_dir / "reweight.json"
    result = run(results_dir, "--drop", "style", "--out", out)
    assert result.exit_code == 0, result.output
    assert "correctness" in result.output and "Style!" in result.output
    payload = json.loads(out.read_text())
    assert sorted(f["prompt_id"] for f in payload["reweight"]["flips"]) == ["p0", "p1"]
    assert payload["reweight"]["changed_vs_label"] == 2
    assert payload["most_common_criteria"][0]["judgements"] == 4


def test_weight_synonyms_and_regex(results_dir):
    synonyms = results_dir / "syn.json"
    synonyms.write_text(json.dumps({"looks": "style"}))
    # Style weighted 0 with correctness 1 is the same as dropping style.
    result = run(results_dir, "--weight", "looks=0", "--weight", "correctness=1", "--synonyms", synonyms,
                 "--out", results_dir / "w.json")
    assert result.exit_code == 0, result.output
    flips = json.loads((results_dir / "w.json").read_text())["reweight"]["flips"]
    assert [f["prompt_id"] for f in flips] == ["p0", "p1"]
    assert run(results_dir, "--drop", "^sty", "--match", "regex").exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--weight", "foo"], "expected NAME=WEIGHT"),
    (["--weight", "style=-1"], "≥ 0"),
    (["--drop", "tone"], "matches no criterion"),
    (["--match", "fuzzy"], "allowed: exact, substring, regex"),
    (["--threshold", "2"], "[0, 1)"),
    (["--drop", "(", "--match", "regex"], "invalid regular expression"),
])
def test_bad_usage_exits_2(results_dir, args, message):
    result = run(results_dir, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unreadable_files_exit_1(tmp_path, results_dir):
    result = run(tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "nowhere: no such folder" in result.output
    (tmp_path / "empty").mkdir()
    result = run(tmp_path / "empty")
    assert result.exit_code == 1 and "empty/details.parquet: not found" in result.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "details.parquet").write_bytes(b"not parquet")
    result = run(tmp_path / "bad")
    assert result.exit_code == 1 and "not a readable parquet file" in result.output
    result = run(results_dir, "--synonyms", tmp_path / "missing.json")
    assert result.exit_code == 1 and "cannot read the synonym file" in result.output


def test_binary_run_has_nothing_to_reweight(tmp_path):
    frame = stacked()
    frame = frame[frame["kind"] == "prompt"]
    frame.to_parquet(tmp_path / "details.parquet", index=False)
    result = run(tmp_path)
    assert result.exit_code == 1 and "no criterion rows" in result.output


def test_reads_what_summarize_writes(tmp_path):
    from novajudge.results.details import details_parquet

    frame = stacked()
    prompts = frame[frame["kind"] == "prompt"][list(PROMPT_COLUMNS)]
    criteria = frame[frame["kind"] == "criterion"][list(CRITERION_COLUMNS)]
    parquet = details_parquet(prompts.reset_index(drop=True), criteria.reset_index(drop=True))
    (tmp_path / "details.parquet").write_bytes(parquet)
    result = run(tmp_path, "--drop", "style", "--out", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["reweight"]["changed_vs_label"] == 2


def test_calibrate_command(results_dir):
    import novajudge.cli.calibrate_cmd  # noqa: F401

    labels = results_dir / "labels.jsonl"
    labels.write_text('{"prompt_id": "p0", "preference": "B"}\n{"prompt_id": "p1", "preference": "B"}\n')
    out, figure = results_dir / "trust.json", results_dir / "trust.png"
    result = CliRunner().invoke(app, ["calibrate", str(results_dir), "--labels", str(labels),
                                      "--out", str(out), "--figure", str(figure)])
    assert result.exit_code == 0, result.output
    block = json.loads(out.read_text())
    assert block["calibration"]["forward_agreement"]["successes"] == 1  # p0 right (B), p1 wrong (A)
    assert block["position"]["consistency"]["measured"] is False
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert "Positional consistency: not measured" in result.output
    labels.write_text('{"prompt_id": "p0", "preference": "maybe"}\n')
    result = CliRunner().invoke(app, ["calibrate", str(results_dir), "--labels", str(labels)])
    assert result.exit_code == 1
    assert "line 1: field 'preference' is 'maybe'" in result.output
