"""`novajudge status|runs|results|logs` against runs executed in moto."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_helpers import GENERATE_FN, SUMMARY, Deployed, make_failed_training_job, put_log_lines
from typer.testing import CliRunner

from novajudge.cli.app import _register, app

_register()
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _run(deployed: Deployed, run_id: str, *extra: str) -> None:
    result = invoke("start", "--run-id", run_id, *extra)
    assert result.exit_code == 0, result.output
    deployed.wait_finished(run_id)


@pytest.fixture
def two_runs(deployed: Deployed, failing_lambda: None) -> Deployed:
    """`good` succeeded with results; `bad` failed in GenerateData with Lambda logs."""
    deployed.use_definition("success", wait_seconds=0)
    deployed.put_results("good", SUMMARY, ("details.parquet", "report.png", "report.html"))
    _run(deployed, "good")
    deployed.use_definition("lambda_failure")
    put_log_lines(
        f"/aws/lambda/{GENERATE_FN}",
        "2026/11/23/[$LATEST]abc",
        ["START RequestId: 1", "generation failed for item 3: ModelError 424", "END RequestId: 1"],
    )
    _run(deployed, "bad")
    return deployed


def test_runs_table(two_runs: Deployed) -> None:
    result = invoke("runs", "--limit", "5")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "good" in line or "bad" in line]
    assert len(lines) == 2
    assert "bad" in lines[0] and "FAILED" in lines[0]  # newest first
    good = lines[1]
    assert "SUCCEEDED" in good and "B (Qwen/Qwen2.5-7B-Instruct)" in good and "66.7%" in good


def test_runs_limit(two_runs: Deployed) -> None:
    result = invoke("runs", "--limit", "1")
    assert result.exit_code == 0
    assert "bad" in result.output and "good" not in result.output


def test_runs_empty(deployed: Deployed) -> None:
    result = invoke("runs")
    assert result.exit_code == 0 and "no runs yet" in result.output


def test_status_latest_is_the_failed_run(two_runs: Deployed) -> None:
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "bad" in result.output and "FAILED" in result.output
    assert "Run bad FAILED in GenerateData: GenerationFailed" in result.output
    assert "too many generations failed" in result.output


def test_status_of_succeeded_run_shows_headline(two_runs: Deployed) -> None:
    result = invoke("status", "good")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output and SUMMARY["headline"] in result.output
    assert "#/v2/executions/details/" in result.output


def test_results_download(two_runs: Deployed, tmp_path: Path) -> None:
    out = tmp_path / "dl"
    result = invoke("results", "good", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "details.parquet",
        "report.html",
        "report.png",
        "summary.json",
    ]
    assert (out / "report.png").read_bytes() == b"<report.png>"
    assert SUMMARY["headline"] in result.output


def test_results_of_failed_run_exit_1(two_runs: Deployed, tmp_path: Path) -> None:
    result = invoke("results", "bad", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "has no results yet (the run is FAILED; see `novajudge logs bad`)" in result.output


def test_logs_of_lambda_failure(two_runs: Deployed) -> None:
    result = invoke("logs", "bad")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "failed step: GenerateData" in out
    assert "fail state: GenerationFailed" in out
    assert "error: GenerationFailed" in out
    assert "cause: GenerationFailed: too many generations failed: 9 of 10 (limit 0.2)" in out
    assert 'stack trace:\n  File "/var/task/handler.py", line 88, in handler' in out
    assert f"lambda: {GENERATE_FN}" in out
    assert f"last 3 lines of /aws/lambda/{GENERATE_FN}" in out
    assert "generation failed for item 3: ModelError 424" in out


def test_logs_lines_option(two_runs: Deployed) -> None:
    result = invoke("logs", "bad", "--lines", "1")
    assert result.exit_code == 0
    assert "END RequestId: 1" in result.output and "ModelError 424" not in result.output


def test_logs_of_judge_job_failure(deployed: Deployed) -> None:
    deployed.use_definition("judge_failure")
    reason = "ClientError: the judge input exceeds the context limit on line 7"
    make_failed_training_job("jf-judge", reason, ["loading recipe", "Traceback: context too long"])
    _run(deployed, "jf")
    result = invoke("logs", "jf")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "error: JudgeJobFailed" in out
    assert "training job: jf-judge" in out
    assert f"failure reason: {reason}" in out
    assert "/aws/sagemaker/TrainingJobs jf-judge/algo-1-*" in out
    assert "Traceback: context too long" in out


def test_logs_of_succeeded_run(two_runs: Deployed) -> None:
    result = invoke("logs", "good")
    assert result.exit_code == 0 and "nothing failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", "no-such-run"), "no run 'no-such-run'"),
        (("status", "bad id"), "is not allowed"),
        (("results", "nope", "--out", "x"), "no run 'nope'"),
        (("results", "a/b"), "is not allowed"),
        (("logs", "nope"), "no run 'nope'"),
        (("logs", "any", "--lines", "0"), "--lines"),
        (("runs", "--limit", "0"), "--limit"),
        (("status", "--prefix", "9bad"), "--prefix"),
    ],
)
def test_inspect_bad_input_exit_2(deployed: Deployed, args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert deployed.executions() == []


def test_status_with_no_runs_is_usage_error(deployed: Deployed) -> None:
    result = invoke("status")
    assert result.exit_code == 2 and "no runs yet" in result.output
