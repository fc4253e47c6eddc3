"""`novajudge endpoints down|up`: the exact CDK command line, run through an injected runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from ops_helpers import REPO
from typer.testing import CliRunner

from novajudge.cli import endpoints_cmd
from novajudge.cli.app import _register, app
from novajudge.ops import endpoints_cdk

_register()
runner = CliRunner()


class Recorder:
    def __init__(self, code: int = 0) -> None:
        self.calls: list[tuple[list[str], Path, dict[str, str]]] = []
        self.code = code

    def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
        self.calls.append((list(argv), cwd, dict(env)))
        return self.code


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(endpoints_cmd, "RUNNER", rec)
    return rec


def test_down_runs_cdk_destroy_of_the_endpoints_stack_only(recorder: Recorder) -> None:
    result = runner.invoke(app, ["endpoints", "down"])
    assert result.exit_code == 0, result.output
    ((argv, cwd, env),) = recorder.calls
    assert argv == ["npx", "--no-install", "cdk", "destroy", "NovaJudge-Endpoints", "--force"]
    assert cwd == REPO
    assert env["CDK_DISABLE_CLI_TELEMETRY"] == "1"
    assert "no longer bill" in result.output


def test_up_runs_cdk_deploy(recorder: Recorder) -> None:
    result = runner.invoke(app, ["endpoints", "up"])
    assert result.exit_code == 0, result.output
    ((argv, _, _),) = recorder.calls
    assert argv == ["npx", "--no-install", "cdk", "deploy", "NovaJudge-Endpoints"]


def test_prefix_profile_region_are_passed_on(recorder: Recorder) -> None:
    args = ["endpoints", "down", "--prefix", "Team2", "--profile", "dev", "--region", "us-west-2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ((argv, _, env),) = recorder.calls
    assert argv == [
        "npx", "--no-install", "cdk", "destroy", "Team2-Endpoints", "--force",
        "-c", "stack_prefix=Team2", "--profile", "dev",
    ]  # fmt: skip
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-west-2"


def test_dry_run_prints_and_runs_nothing(recorder: Recorder) -> None:
    result = runner.invoke(app, ["endpoints", "up", "--dry-run"])
    assert result.exit_code == 0
    assert "would run: npx --no-install cdk deploy NovaJudge-Endpoints" in result.output
    assert recorder.calls == []


def test_cdk_failure_exits_1(recorder: Recorder) -> None:
    recorder.code = 3
    result = runner.invoke(app, ["endpoints", "down"])
    assert result.exit_code == 1
    assert "the CDK CLI exited with 3" in result.output


@pytest.mark.parametrize(
    "args", [["endpoints"], ["endpoints", "sideways"], ["endpoints", "down", "--prefix", "x-y"]]
)
def test_bad_usage_exits_2_and_runs_nothing(recorder: Recorder, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert recorder.calls == []


def test_missing_npx_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    monkeypatch.setattr(endpoints_cdk.shutil, "which", lambda name: None)
    monkeypatch.setattr(endpoints_cmd, "RUNNER", endpoints_cdk.subprocess_runner)
    result = runner.invoke(app, ["endpoints", "down"])
    assert result.exit_code == 1
    assert "'npx' not found" in result.output


def test_help_on_every_command() -> None:
    for args in (
        [], ["start"], ["status"], ["runs"], ["results"], ["logs"], ["estimate"], ["endpoints"],
        ["endpoints", "down"], ["endpoints", "up"],
    ):  # fmt: skip
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output
