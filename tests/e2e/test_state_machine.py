"""Execute the SYNTHESIZED state machine in moto with the real handlers and the stand-ins.

One emulator and one deployment for the module; each test starts its own execution (distinct run
ids) after configuring the stand-ins' faults. Waits are shortened through the execution input
(`poll_seconds`) and the stand-in job duration, never by editing the definition.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from emulated import Deployed, install_stand_ins

import novajudge
from novajudge.layout import RESULT_FILES
from novajudge.local import moto_patches
from novajudge.local.deploy import StackTemplate, deploy
from novajudge.local.emulator import local_aws
from novajudge.local.standins import (
    STAND_IN_JUDGE_TAG,
    EndpointFaults,
    JudgeFaults,
    StandInEndpoints,
    StandInJudge,
    judge_pair,
)

pytestmark = pytest.mark.e2e


@dataclass
class Env(Deployed):
    endpoints: StandInEndpoints
    judge: StandInJudge


@pytest.fixture(scope="module")
def env(synthesized: list[StackTemplate]) -> Iterator[Env]:
    with local_aws() as emu:
        deployment = deploy(emu, synthesized)
        a, b = deployment.output("EndpointAName"), deployment.output("EndpointBName")
        endpoints, judge = install_stand_ins(emu, {a: "A", b: "B"})
        yield Env(emu, deployment, endpoints, judge)


@pytest.fixture(autouse=True)
def _no_faults(env: Env) -> None:
    env.endpoints.faults.clear()
    env.judge.faults = JudgeFaults()


def _run(env: Env, run_id: str, **extra: Any) -> dict[str, Any]:
    sfn = env.emu.client("stepfunctions")
    payload = {
        "run_id": run_id,
        "questions": 2,
        "dataset": {"source": "squad-sample"},
        "poll_seconds": 1,
        **extra,
    }
    arn = sfn.start_execution(
        stateMachineArn=env.deployment.output("StateMachineArn"), name=run_id, input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            desc["states"] = [
                e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
            ]
            return desc
        time.sleep(0.2)
    pytest.fail(f"execution {run_id} still running after 90 s")


def _get(env: Env, key: str) -> bytes:
    return env.emu.client("s3").get_object(Bucket=env.bucket, Key=key)["Body"].read()


def test_deployment_is_complete(env: Env) -> None:
    assert not env.deployment.unknown_types
    assert len(env.deployment.functions) == 7
    assert {p.name for p in env.deployment.functions.values()} == {
        "prepare",
        "generate",
        "reduce",
        "start_judge",
        "summarize",
        "cleanup",
        "teardown",  # deployed, though only the (skipped) custom resource would invoke it
    }
    assert sorted(env.deployment.endpoints) == ["novajudge-model-a", "novajudge-model-b"]


def test_success_results_match_stand_in_judgements(env: Env) -> None:
    desc = _run(env, "e2e-ok", both_orders=True)  # the opt-in audit: both orders in the judge input
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert desc["states"][:6] == [
        "PrepareRun",
        "GenerateChunks",
        "ReduceGeneration",
        "RecordEndpointUse",
        "StartJudgeJob",
        "WaitForJudge",
    ]
    assert desc["states"][-2:] == ["SummarizeResults", "Done"]
    output = json.loads(desc["output"])
    assert output["run_id"] == "e2e-ok" and "STAND-IN" in output["headline"]

    keys = {
        o["Key"]
        for o in env.emu.client("s3").list_objects_v2(Bucket=env.bucket, Prefix="runs/e2e-ok/")["Contents"]
    }
    for name in RESULT_FILES:
        assert f"runs/e2e-ok/results/{name}" in keys
    summary = json.loads(_get(env, "runs/e2e-ok/results/summary.json"))
    assert summary["stand_in"] is True
    # What the run used, priced at list prices (pricing.json read here, not through the code).
    usage = summary["usage"]
    table = json.loads((Path(novajudge.__file__).parent / "pricing.json").read_text())["sagemaker"]
    judge = usage["judge"]
    assert judge["instances"] == 1 and judge["billable_seconds"] >= 1
    hourly = table["training"][judge["instance_type"]]["hourly"]
    assert judge["cost"] == pytest.approx(judge["billable_seconds"] * hourly / 3600, abs=1e-4)
    endpoints = usage["endpoints"]
    assert endpoints["mode"] == "persistent" and endpoints["instances"] == 2
    assert 0 < endpoints["seconds"] < desc["stopDate"].timestamp() - desc["startDate"].timestamp() + 1
    e_hourly = table["real_time_inference"][endpoints["instance_type"]]["hourly"]
    assert endpoints["cost"] == pytest.approx(2 * endpoints["seconds"] * e_hourly / 3600, abs=1e-4)
    assert usage["total_cost"] == pytest.approx(judge["cost"] + endpoints["cost"], abs=1e-4)

    # Recompute what the stand-in judge must have decided, un-swapping rows sent as BA.
    lines = [json.loads(x) for x in _get(env, "runs/e2e-ok/input/llm_judge.jsonl").decode().splitlines()]
    manifest = [
        json.loads(x) for x in _get(env, "runs/e2e-ok/generation/manifest.jsonl").decode().splitlines()
    ]
    orders = {m["row"]: m["order"] for m in manifest if m.get("row") is not None}
    assert all(m.get("stand_in") is True for m in manifest)
    wins: Counter[str] = Counter()
    for row, line in enumerate(lines):
        label = judge_pair(line["prompt"], line["response_A"], line["response_B"]).label
        winner = {"A>B": "A", "B>A": "B"}.get(label or "", "tie")
        if orders[row] == "BA" and winner in "AB":
            winner = "B" if winner == "A" else "A"
        wins[winner] += 1
    counts = summary["ours"]["counts"]
    assert counts["total"] == len(lines) == 4  # 2 questions x both orders
    assert (counts["a_wins"], counts["b_wins"]) == (wins["A"], wins["B"])
    assert counts["ties"] + counts["bothbad_ties"] == wins["tie"]
    assert summary["judge"]["a_scores"] + summary["judge"]["b_scores"] + summary["judge"]["ties"] == 4


def test_endpoint_failure_fails_through_generation_failed(env: Env) -> None:
    env.endpoints.faults["novajudge-model-b"] = EndpointFaults()
    desc = _run(env, "e2e-endpoint-down")
    assert desc["status"] == "FAILED"
    assert desc["states"][-1] == "GenerationFailed"
    assert desc["error"] == "GenerationFailed"  # novajudge.errors.GenerationFailed
    assert "ModelError" in desc["cause"] and "failed" in desc["cause"]


def test_judge_job_failure_fails_through_judge_job_failed(env: Env) -> None:
    env.judge.faults = JudgeFaults(fail_reason="GPU quota exhausted (injected)")
    desc = _run(env, "e2e-judge-failed")
    assert desc["status"] == "FAILED"
    assert desc["error"] == "JudgeJobFailed"
    assert desc["states"][-1] == "JudgeJobFailed"
    assert "GPU quota exhausted (injected)" in desc["cause"] and STAND_IN_JUDGE_TAG in desc["cause"]


def test_corrupt_archive_fails_through_summarize_failed(env: Env) -> None:
    env.judge.faults = JudgeFaults(corrupt_archive=True)
    desc = _run(env, "e2e-corrupt", poll_seconds=1)
    assert desc["status"] == "FAILED"
    assert desc["states"][-1] == "SummarizeFailed"  # the Fail state names the step ...
    assert desc["error"] == "ResultsError"  # ... its Error is the handler's typed exception
    assert "not a readable tar.gz archive" in desc["cause"]


def test_binary_judge_succeeds(env: Env) -> None:
    desc = _run(env, "e2e-binary", questions=1, judge={"variant": "binary"}, poll_seconds=1)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    summary = json.loads(_get(env, "runs/e2e-binary/results/summary.json"))
    assert summary["variant"] == "binary" and summary["stand_in"] is True


# -- nothing left billing after any ending (issue 13) -----------------------------------------------


def _jobs_in_progress(env: Env, run_id: str) -> list[str]:
    sm = env.emu.client("sagemaker")
    jobs = sm.list_training_jobs(NameContains=run_id, MaxResults=100)["TrainingJobSummaries"]
    return [
        j["TrainingJobName"]
        for j in jobs
        if sm.describe_training_job(TrainingJobName=j["TrainingJobName"])["TrainingJobStatus"] == "InProgress"
    ]


def _job_status(env: Env, run_id: str) -> dict[str, str]:
    sm = env.emu.client("sagemaker")
    jobs = sm.list_training_jobs(NameContains=run_id, MaxResults=100)["TrainingJobSummaries"]
    return {
        j["TrainingJobName"]: sm.describe_training_job(TrainingJobName=j["TrainingJobName"])[
            "TrainingJobStatus"
        ]
        for j in jobs
    }


def _end(env: Env, desc: dict[str, Any]) -> list[Any]:
    """What EventBridge would do at the end of the execution: run the cleanup rule's targets."""
    from novajudge.local.events import deliver_status_change

    return deliver_status_change(env.emu, env.deployment, desc["executionArn"])


def _start(env: Env, run_id: str, machine: str | None = None, **extra: Any) -> str:
    payload = {"run_id": run_id, "questions": 1, "dataset": {"source": "squad-sample"}, "poll_seconds": 1}
    return env.emu.client("stepfunctions").start_execution(
        stateMachineArn=machine or env.deployment.output("StateMachineArn"),
        name=run_id,
        input=json.dumps({**payload, **extra}),
    )["executionArn"]


def _wait_for_state(env: Env, arn: str, state: str, timeout: float = 60) -> None:
    sfn = env.emu.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return
        time.sleep(0.2)
    pytest.fail(f"{arn} never entered {state}")


def _wait_for_end(env: Env, arn: str, timeout: float = 60) -> dict[str, Any]:
    sfn = env.emu.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            return desc
        time.sleep(0.2)
    pytest.fail(f"{arn} still running after {timeout} s")


@pytest.fixture
def slow_judge(env: Env) -> Iterator[None]:
    """A stand-in judge that stays InProgress until stopped: caught running however slow the machine."""
    saved = moto_patches.registry.training_job_seconds
    moto_patches.registry.training_job_seconds = math.inf
    yield
    moto_patches.registry.training_job_seconds = saved


def test_the_rule_cleans_up_only_unsuccessful_endings(env: Env) -> None:
    ((_, pattern, targets),) = env.deployment.rules
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"] == [env.deployment.output("StateMachineArn")]
    assert len(targets) == 1 and targets[0].endswith(":function:" + _cleanup_function(env))


def _cleanup_function(env: Env) -> str:
    (name,) = [n for n, p in env.deployment.functions.items() if p.name == "cleanup"]
    return name


def test_success_leaves_nothing_running_and_is_not_cleaned(env: Env) -> None:
    desc = _run(env, "e2e-end-ok", questions=1, poll_seconds=1)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert _end(env, desc) == []  # the rule does not match SUCCEEDED
    assert list(_job_status(env, "e2e-end-ok").values()) == ["Completed"]


def test_generation_failed_leaves_nothing_and_cleanup_records_why(env: Env) -> None:
    env.endpoints.faults["novajudge-model-a"] = EndpointFaults()
    desc = _run(env, "e2e-end-genfail", questions=1)
    assert desc["error"] == "GenerationFailed"
    ((answer,),) = [_end(env, desc)]
    assert answer["function_error"] is None and answer["payload"]["ok"] is True
    assert answer["payload"]["stopped_jobs"] == [] and _job_status(env, "e2e-end-genfail") == {}
    # generate claimed the run before failing, so the cleanup's record is under the run
    record = json.loads(_get(env, "runs/e2e-end-genfail/cleanup.json"))
    assert record["reason"] == "execution e2e-end-genfail ended FAILED"


def test_judge_job_failed_leaves_no_job_running(env: Env) -> None:
    env.judge.faults = JudgeFaults(fail_reason="injected")
    desc = _run(env, "e2e-end-judgefail", questions=1)
    assert desc["error"] == "JudgeJobFailed"
    ((answer,),) = [_end(env, desc)]
    assert answer["payload"]["stopped_jobs"] == []
    assert list(answer["payload"]["ended_jobs"].values()) == ["Failed"]
    assert _jobs_in_progress(env, "e2e-end-judgefail") == []


def test_summarize_failed_leaves_no_job_running(env: Env) -> None:
    env.judge.faults = JudgeFaults(corrupt_archive=True)
    desc = _run(env, "e2e-end-sumfail", questions=1, poll_seconds=1)
    assert desc["states"][-1] == "SummarizeFailed"
    ((answer,),) = [_end(env, desc)]
    assert list(answer["payload"]["ended_jobs"].values()) == ["Completed"]
    assert _jobs_in_progress(env, "e2e-end-sumfail") == []


def test_abort_while_judging_stops_the_judge(env: Env, slow_judge: None) -> None:
    arn = _start(env, "e2e-end-abort")
    _wait_for_state(env, arn, "WaitForJudge")
    assert len(_jobs_in_progress(env, "e2e-end-abort")) == 1  # the judge really runs
    env.emu.client("stepfunctions").stop_execution(executionArn=arn, error="Test", cause="abort")
    desc = _wait_for_end(env, arn)
    assert desc["status"] == "ABORTED"
    ((answer,),) = [_end(env, desc)]
    (job,) = answer["payload"]["stopped_jobs"]
    assert _job_status(env, "e2e-end-abort") == {job: "Stopped"}
    record = json.loads(_get(env, "runs/e2e-end-abort/cleanup.json"))
    assert record["stopped_jobs"] == [job] and record["reason"].endswith("ended ABORTED")
    # idempotent: a second delivery changes nothing and still succeeds
    ((again,),) = [_end(env, desc)]
    assert again["payload"]["stopped_jobs"] == [] and again["payload"]["ended_jobs"] == {job: "Stopped"}


def test_execution_timeout_stops_the_judge(env: Env, slow_judge: None) -> None:
    """The deployed definition with only TimeoutSeconds shortened (hours in the stack)."""
    sfn = env.emu.client("stepfunctions")
    deployed = sfn.describe_state_machine(stateMachineArn=env.deployment.output("StateMachineArn"))
    definition = json.loads(deployed["definition"])
    assert definition["TimeoutSeconds"] > 3600
    # Long enough for prepare, the generation Map and reduce to reach the judge (the stand-in
    # judge stays InProgress for 60 s), short enough for a test.
    definition["TimeoutSeconds"] = 15
    short = sfn.create_state_machine(
        name="e2e-short-timeout", definition=json.dumps(definition), roleArn=deployed["roleArn"]
    )["stateMachineArn"]
    arn = _start(env, "e2e-end-timeout", machine=short)
    desc = _wait_for_end(env, arn)
    assert desc["status"] == "TIMED_OUT"
    assert len(_jobs_in_progress(env, "e2e-end-timeout")) == 1  # left running by the timeout ...
    # ... the deployed rule matches only its own state machine, so deliver as it would for ours
    from novajudge.local.events import matches, status_change_event

    event = status_change_event(env.emu, desc)
    event["detail"]["stateMachineArn"] = env.deployment.output("StateMachineArn")
    ((_, pattern, (target,)),) = env.deployment.rules
    assert matches(pattern, event)
    response = env.emu.client("lambda").invoke(FunctionName=target, Payload=json.dumps(event).encode())
    report = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, report
    (job,) = report["stopped_jobs"]
    assert _job_status(env, "e2e-end-timeout") == {job: "Stopped"}


def test_failing_judge_poll_stops_the_judge_and_keeps_the_error(env: Env, slow_judge: None) -> None:
    """DescribeJudgeJob keeps failing (here: AccessDenied) while the judge runs: StopJudgeJob.

    Run on a copy of the deployed definition whose only change is DescribeJudgeJob's last, catch-all
    retrier removed (3 attempts, 10-40 s apart in the stack: minutes of test time for nothing).
    """
    sfn = env.emu.client("stepfunctions")
    deployed = sfn.describe_state_machine(stateMachineArn=env.deployment.output("StateMachineArn"))
    definition = json.loads(deployed["definition"])
    retriers = definition["States"]["DescribeJudgeJob"]["Retry"]
    assert retriers[-1]["ErrorEquals"] == ["States.ALL"]
    definition["States"]["DescribeJudgeJob"]["Retry"] = retriers[:-1]
    quick = sfn.create_state_machine(
        name="e2e-no-catch-all-retry", definition=json.dumps(definition), roleArn=deployed["roleArn"]
    )["stateMachineArn"]
    moto_patches.registry.describe_job_denied.add("e2e-end-pollfail")
    try:
        arn = _start(env, "e2e-end-pollfail", machine=quick)
        desc = _wait_for_end(env, arn)
    finally:
        moto_patches.registry.describe_job_denied.discard("e2e-end-pollfail")
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    states = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert desc["status"] == "FAILED"
    assert states[-3:] == ["DescribeJudgeJob", "StopJudgeJob", "JudgeJobFailed"]
    # The Fail state names the step; Error and Cause are the poll's own (not the stop's).
    assert desc["error"].lower().startswith("sagemaker.") and "denied (stand-in)" in desc["cause"]
    assert list(_job_status(env, "e2e-end-pollfail").values()) == ["Stopped"]
