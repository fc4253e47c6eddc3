"""The operating commands against the real stacks deployed into the local emulator (as `make demo`).

`novajudge.local.deploy` creates the synthesized stacks' resources directly in moto (server mode),
not through CloudFormation, so the test registers each stack's resolved Outputs with
`register_stack_outputs`; from then on the CLI finds everything exactly as after `cdk deploy`:
`describe_stacks` → bucket and state machine, real handlers in-process, stand-in endpoints and
judge. `AWS_ENDPOINT_URL` (set by the emulator) is the only thing pointing boto3 at it.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ops_helpers import REPO, register_stack_outputs
from typer.testing import CliRunner

from novajudge.cli.app import _register, app
from novajudge.local import moto_patches
from novajudge.ops.follow import follow

pytestmark = pytest.mark.e2e

local_demo = pytest.importorskip("novajudge.local.demo")
local_deploy = pytest.importorskip("novajudge.local.deploy")
local_emulator = pytest.importorskip("novajudge.local.emulator")

_register()
runner = CliRunner()


@pytest.fixture(scope="module")
def stacks() -> list[Any]:
    return local_deploy.synthesize(local_demo.STAND_IN_CONTEXT)


@pytest.fixture
def emulated(stacks: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    # The CLI reads the configuration the stacks were built with: cdk.json plus the stand-in context.
    cdk_json = json.loads((REPO / "cdk.json").read_text())
    cdk_json["context"].update(local_demo.STAND_IN_CONTEXT)
    (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    monkeypatch.setenv("NOVAJUDGE_CDK_JSON", str(tmp_path / "cdk.json"))
    monkeypatch.setenv("COLUMNS", "200")
    with local_emulator.local_aws() as emu:
        deployment = local_deploy.deploy(emu, stacks)
        cfn = emu.client("cloudformation")
        for stack in stacks:
            register_stack_outputs(cfn, stack.name, deployment.outputs.get(stack.name, {}))
        yield emu, deployment


def _standins(emu: Any, deployment: Any, **options: Any) -> None:
    opts = local_demo.DemoOptions(poll_seconds=1, judge_seconds=0.5, **options)
    local_demo.register_standins(emu, deployment, opts)


def _held_until_followed(emu: Any, deployment: Any, run_id: str, state: str) -> Callable[[float], None]:
    """A `sleep` for the follower that releases the stand-in endpoints' `answer_gate` only once a
    poll ran while the execution was held in `state`: the follower sees it however slow the machine.

    At each sleep: if `state` had been entered at the previous sleep, the poll in between saw it
    (the answers were still held), so the gate opens."""
    gate = threading.Event()
    moto_patches.registry.endpoint_handler.answer_gate = gate  # type: ignore[union-attr]
    machine = str(deployment.output("StateMachineArn"))
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}"
    entered_before = False

    def sleep(seconds: float) -> None:
        nonlocal entered_before
        if entered_before:
            gate.set()
        elif not gate.is_set():
            events = emu.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
            entered_before = any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events)
        time.sleep(seconds)

    return sleep


def test_start_wait_then_status_runs_results(
    emulated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, deployment = emulated
    _standins(emu, deployment)
    sleep = _held_until_followed(emu, deployment, "ops-e2e", "GenerateChunks")
    monkeypatch.setattr("novajudge.cli.ops_cmd.follow", functools.partial(follow, sleep=sleep))
    args = ["start", "-n", "2", "--dataset", "squad-sample", "--poll-seconds", "1", "--judge", "rubric",
            "--run-id", "ops-e2e", "--wait", "--refresh-seconds", "0.2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Started run ops-e2e" in result.output
    # followed live through the states: generation is held until the follower has seen it
    assert "GenerateChunks" in result.output
    assert "STAND-IN" in result.output  # the headline says it came from stand-ins

    status = runner.invoke(app, ["status", "ops-e2e"])
    assert status.exit_code == 0, status.output
    assert "SUCCEEDED" in status.output and "generation" in status.output

    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and "ops-e2e" in listed.output and "SUCCEEDED" in listed.output

    out = tmp_path / "res"
    got = runner.invoke(app, ["results", "ops-e2e", "--out", str(out)])
    assert got.exit_code == 0, got.output
    assert {p.name for p in out.iterdir()} == {"summary.json", "details.parquet", "report.png", "report.html"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stand_in"] is True and summary["headline"] in got.output


def test_failed_run_logs_and_bad_input(emulated: Any) -> None:
    emu, deployment = emulated
    _standins(emu, deployment, fail_endpoint="A")
    result = runner.invoke(app, ["start", "-n", "2", "--dataset", "squad-sample", "--run-id", "ops-fail",
                                 "--poll-seconds", "1", "--wait", "--refresh-seconds", "0.2"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "GenerationFailed" in result.output

    logs = runner.invoke(app, ["logs", "ops-fail"])
    assert logs.exit_code == 0, logs.output
    assert "failed step: ReduceGeneration" in logs.output and "error: GenerationFailed" in logs.output

    bucket = deployment.output("BucketName")
    missing = f"s3://{bucket}/datasets/nope.jsonl"
    bad = runner.invoke(app, ["start", "--dataset", missing, "--run-id", "never"])
    assert bad.exit_code == 2 and "cannot read it" in bad.output
    sfn = emu.client("stepfunctions")
    names = [
        e["name"]
        for e in sfn.list_executions(stateMachineArn=deployment.output("StateMachineArn"))["executions"]
    ]
    assert names == ["ops-fail"]


def test_judge_job_failure_logs(emulated: Any) -> None:
    emu, deployment = emulated
    _standins(emu, deployment, fail_judge=True)
    args = ["start", "-n", "2", "--dataset", "squad-sample", "--run-id", "ops-judge-fail",
            "--poll-seconds", "1", "--wait", "--refresh-seconds", "0.2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "JudgeJobFailed" in result.output

    logs = runner.invoke(app, ["logs", "ops-judge-fail"])
    assert logs.exit_code == 0, logs.output
    assert "error: JudgeJobFailed" in logs.output
    assert "training job: ops-judge-fail-rubric-" in logs.output
    assert "failure reason: AlgorithmError: [LOCAL STAND-IN JUDGE] injected judge failure" in logs.output
    # The stand-in judge writes no CloudWatch stream; the command says so instead of failing.
    assert "note: no log group /aws/sagemaker/TrainingJobs" in logs.output
