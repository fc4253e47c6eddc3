"""`novajudge demo` end to end through the command line (CliRunner), results into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novajudge.cli.app import _register, app
from novajudge.local import demo as demo_module
from novajudge.local.deploy import StackTemplate

pytestmark = pytest.mark.e2e

FAST = ["--questions", "2", "--poll-seconds", "1", "--judge-seconds", "0"]


@pytest.fixture(autouse=True)
def _reuse_synth(monkeypatch: pytest.MonkeyPatch, synthesized: list[StackTemplate]) -> None:
    """The session's synthesis stands in for the demo's own (same code path, ~7 s saved per run)."""
    monkeypatch.setattr(demo_module, "synthesize", lambda context=None: synthesized)
    _register()


def test_demo_writes_results_and_says_stand_in(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", *FAST, "--run-id", "cli-ok", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "cli-ok"
    for name in ("summary.json", "details.parquet", "report.png", "report.html", "local-run.json"):
        assert (run_dir / name).is_file(), name
    assert "LOCAL STAND-IN RUN" in result.output
    assert "SummarizeResults" in result.output and "report.html" in result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stand_in"] is True and "STAND-IN" in summary["headline"]
    assert "Qwen" not in summary["headline"] and "novajudge-stand-in/challenger-b" in summary["headline"]
    record = json.loads((run_dir / "local-run.json").read_text())
    assert record["stand_in"] is True and record["status"] == "SUCCEEDED"
    assert (run_dir / "local-run.log").stat().st_size > 0  # handler logs went to the file


def test_two_runs_side_by_side_get_distinct_ids(tmp_path: Path) -> None:
    for _ in range(2):
        assert CliRunner().invoke(app, ["demo", *FAST, "--out", str(tmp_path)]).exit_code == 0
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert len(runs) == 2 and all(r.startswith("demo-") for r in runs)
    assert all((tmp_path / r / "report.html").is_file() for r in runs)


def test_demo_endpoint_failure_exits_non_zero_with_cause(tmp_path: Path) -> None:
    args = ["demo", *FAST, "--run-id", "cli-fail", "--out", str(tmp_path), "--fail-endpoint", "A"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "GenerationFailed" in result.output and "ModelError" in result.output
    assert not (tmp_path / "cli-fail" / "summary.json").exists()
    assert json.loads((tmp_path / "cli-fail" / "local-run.json").read_text())["status"] == "FAILED"


def _write_dataset(path: Path, n: int) -> Path:
    rows = [{"id": f"q{i}", "prompt": f"Question {i}: what is {i} plus {i}?"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_demo_with_a_local_dataset_beyond_the_bundled_20(tmp_path: Path) -> None:
    """`--dataset`: no cap of 20; the generation goes through the Map (cdk.json: 44 items a
    chunk, so two chunks here; tests/e2e/test_generation_map.py runs 300 prompts)."""
    dataset = _write_dataset(tmp_path / "mine.jsonl", 60)
    args = ["demo", "--poll-seconds", "1", "--judge-seconds", "0", "--run-id", "cli-dataset"]
    result = CliRunner().invoke(app, [*args, "--dataset", str(dataset), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # Rich wraps long lines
    assert "Uploaded 60 prompts to s3://" in text and "/datasets/mine.jsonl" in text
    assert "GenerateChunks" in text and "ReduceGeneration" in text
    summary = json.loads((tmp_path / "out" / "cli-dataset" / "summary.json").read_text())
    assert summary["ours"]["counts"]["total"] == 60  # one judge-input line per prompt
    record = json.loads((tmp_path / "out" / "cli-dataset" / "local-run.json").read_text())
    assert record["options"]["dataset"] == str(dataset) and record["status"] == "SUCCEEDED"


def test_demo_refuses_a_bad_dataset_line_naming_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "fine"}\n{"id": "b", "text": "no prompt"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--dataset", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    # The panel wraps a long path anywhere (even inside a name): compare without any whitespace.
    expected = f"{bad} line 2: field 'prompt' is missing"
    assert "".join(expected.split()) in "".join(result.output.split())


def test_demo_without_a_dataset_keeps_to_the_bundled_sample(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--questions", "21", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "the bundled sample has 20 rows; use --dataset PATH.jsonl for 21 questions" in text
