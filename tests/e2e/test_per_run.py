"""`endpoints_mode=per_run` end to end in the emulator: the SYNTHESIZED per-run state machine.

The endpoints stack defines only Models and EndpointConfigs; each execution creates its two
endpoints (named `<prefix>-<md5(run id)>-a|b`), waits for InService, generates, deletes them before
the judge, and deletes them on every failure. Each test lists what is left afterwards. Stand-in
timings (endpoint start-up, poll interval) are shortened through the configuration
(`endpoint_poll_seconds=3`) and `moto_patches.registry`, never by editing the deployed definition;
the one test that needs the start-up loop's bound reached deploys a copy with only that bound lowered.
A test that must catch a run in a state holds it there (a start-up or judge job of `math.inf`
seconds, the stand-in endpoints' `answer_gate`) and releases it itself: no assertion races a timer.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from emulated import Deployed, install_stand_ins

from novajudge.config import Settings
from novajudge.local import moto_patches
from novajudge.local.demo import STAND_IN_CONTEXT
from novajudge.local.deploy import deploy, synthesize
from novajudge.local.emulator import local_aws
from novajudge.local.events import deliver_status_change
from novajudge.local.standins import EndpointFaults, JudgeFaults, StandInEndpoints, StandInJudge
from novajudge.ops.stack_outputs import Deployment as OpsDeployment
from novajudge.ops.stop import stop_run

pytestmark = pytest.mark.e2e

#: 3 s: the shortest endpoint poll whose wait loop fits the execution's history budget with the
#: stand-in models' start bound (900 s + an 1800 s health check for a model id without a size:
#: 900 polls × 16 events; 1 s would be 2,700 polls, 43,200 events, refused at synth).
CONTEXT = {**STAND_IN_CONTEXT, "endpoints_mode": "per_run", "endpoint_poll_seconds": "3"}


def names_of(run_id: str) -> tuple[str, str]:
    """Computed here, independently of novajudge.layout: what the endpoints must be called."""
    digest = hashlib.md5(run_id.encode()).hexdigest()
    return f"novajudge-{digest}-a", f"novajudge-{digest}-b"


@dataclass
class Env(Deployed):
    endpoints: StandInEndpoints
    judge: StandInJudge
    settings: Settings

    def endpoints_left(self) -> list[str]:
        return sorted(e["EndpointName"] for e in self.emu.client("sagemaker").list_endpoints()["Endpoints"])

    def jobs_in_progress(self, run_id: str) -> list[str]:
        sm = self.emu.client("sagemaker")
        names = [
            j["TrainingJobName"] for j in sm.list_training_jobs(NameContains=run_id)["TrainingJobSummaries"]
        ]
        return [
            n
            for n in names
            if sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"] == "InProgress"
        ]


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    stacks = synthesize(CONTEXT)
    with local_aws() as emu:
        deployment = deploy(emu, stacks)
        endpoints, judge = install_stand_ins(emu, {})
        yield Env(emu, deployment, endpoints, judge, Settings(**CONTEXT))


@pytest.fixture(autouse=True)
def _reset(env: Env) -> Iterator[None]:
    env.endpoints.faults.clear()
    env.endpoints.answer_gate = None
    env.judge.faults = JudgeFaults()
    moto_patches.registry.endpoint_start_seconds = 1.5
    moto_patches.registry.endpoint_creating_describes = 0
    moto_patches.registry.endpoint_start_hook = None
    yield
    assert env.endpoints_left() == [], "a test left endpoints behind"


def _start(env: Env, run_id: str, machine: str | None = None) -> str:
    payload = {"run_id": run_id, "questions": 1, "dataset": {"source": "squad-sample"}, "poll_seconds": 1}
    return env.emu.client("stepfunctions").start_execution(
        stateMachineArn=machine or env.machine, name=run_id, input=json.dumps(payload)
    )["executionArn"]


def _states(env: Env, arn: str) -> list[str]:
    events = env.emu.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)[
        "events"
    ]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _wait(env: Env, arn: str, *, state: str | None = None, timeout: float = 60) -> dict[str, Any]:
    sfn = env.emu.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if (state is None and desc["status"] != "RUNNING") or (
            state is not None and state in _states(env, arn)
        ):
            return desc
        time.sleep(0.2)
    pytest.fail(f"{arn}: {'end' if state is None else state} not reached in {timeout} s")


def test_deploy_creates_no_endpoints(env: Env) -> None:
    assert env.deployment.endpoints == [] and env.endpoints_left() == []
    configs = env.emu.client("sagemaker").list_endpoint_configs()["EndpointConfigs"]
    assert sorted(c["EndpointConfigName"] for c in configs) == sorted(
        env.settings.endpoint_config_name(w) for w in ("A", "B")
    )


def test_success_creates_uses_and_deletes_the_runs_endpoints(env: Env) -> None:
    created: list[str] = []
    moto_patches.registry.endpoint_start_hook = lambda name: created.append(name)  # type: ignore[func-returns-value]
    # The first poll sees Creating, however slow the machine.
    moto_patches.registry.endpoint_creating_describes = 1
    arn = _start(env, "pr-ok")
    desc = _wait(env, arn)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert created == list(names_of("pr-ok"))
    states = _states(env, arn)
    # Prepare (validation, quotas) runs before anything is created, generation between start and delete.
    assert states[:3] == ["PrepareRun", "NameRunEndpoints", "CreateEndpointA"]
    assert (
        states.index("EndpointsInService?") < states.index("GenerateChunks") < states.index("DeleteEndpointA")
    )
    assert states.index("DeleteEndpointB") < states.index("StartJudgeJob")
    assert states.count("WaitForEndpoints") >= 2  # the first describe answered Creating
    request = json.loads(
        env.emu.client("s3").get_object(Bucket=env.bucket, Key="runs/pr-ok/request.json")["Body"].read()
    )
    assert (request["endpoint_a"], request["endpoint_b"]) == names_of("pr-ok")
    assert set(env.endpoints.calls) >= set(names_of("pr-ok"))
    summary = json.loads(
        env.emu.client("s3")
        .get_object(Bucket=env.bucket, Key="runs/pr-ok/results/summary.json")["Body"]
        .read()
    )
    endpoints = summary["usage"]["endpoints"]
    # Billed from the execution's start to the deletion: at least the two 3 s waits of the start-up.
    assert endpoints["mode"] == "per_run" and endpoints["seconds"] >= 6
    assert endpoints["instance_seconds"] == pytest.approx(2 * endpoints["seconds"])


def test_endpoint_failing_to_start_fails_by_name_with_sagemakers_reason(env: Env) -> None:
    reason = "Unable to provision requested ML compute capacity (injected)"
    moto_patches.registry.endpoint_start_hook = lambda name: reason if name.endswith("-b") else None
    arn = _start(env, "pr-capacity")
    desc = _wait(env, arn)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "EndpointStartFailed" and reason in desc["cause"]
    assert names_of("pr-capacity")[1] in desc["cause"]
    states = _states(env, arn)
    assert states[-3:] == [
        "DeleteEndpointAOnStartFailure",
        "DeleteEndpointBOnStartFailure",
        "EndpointStartFailed",
    ]
    assert "GenerateChunks" not in states and env.endpoints_left() == []


def test_short_endpoint_quota_fails_in_prepare_before_any_endpoint_exists(env: Env) -> None:
    created: list[str] = []
    moto_patches.registry.endpoint_start_hook = lambda name: created.append(name)  # type: ignore[func-returns-value]
    quota = f"{env.settings.endpoint_instance_type} for endpoint usage"
    moto_patches.registry.service_quotas["sagemaker"] = {quota: 1.0}  # the run needs 2
    try:
        arn = _start(env, "pr-quota")
        desc = _wait(env, arn)
    finally:
        moto_patches.registry.service_quotas.clear()
    assert desc["status"] == "FAILED" and desc["error"] == "QuotaExceeded", desc
    assert f"SageMaker quota '{quota}' is 1 in us-east-1; this run needs 2" in desc["cause"]
    assert _states(env, arn) == ["PrepareRun", "GenerationFailed"]
    assert created == [] and env.endpoints_left() == []


def test_endpoint_never_in_service_fails_after_the_bounded_poll(env: Env) -> None:
    """A copy of the deployed definition with only the poll bound lowered (minutes in the stack)."""
    sfn = env.emu.client("stepfunctions")
    deployed = sfn.describe_state_machine(stateMachineArn=env.machine)
    definition = json.loads(deployed["definition"])
    choice = definition["States"]["EndpointsInService?"]
    (bound,) = [c for c in choice["Choices"] if "NumericGreaterThanEquals" in c]
    assert bound["NumericGreaterThanEquals"] > 60
    bound["NumericGreaterThanEquals"] = 2
    short = sfn.create_state_machine(
        name="pr-short-bound", definition=json.dumps(definition), roleArn=deployed["roleArn"]
    )["stateMachineArn"]
    moto_patches.registry.endpoint_start_seconds = math.inf  # never InService
    arn = _start(env, "pr-never", machine=short)
    desc = _wait(env, arn)
    assert desc["error"] == "EndpointStartFailed"
    assert "not InService after 2 polls" in desc["cause"] and "Creating" in desc["cause"]
    assert env.endpoints_left() == []


def test_generation_failure_deletes_the_endpoints(env: Env) -> None:
    env.endpoints.faults[names_of("pr-genfail")[0]] = EndpointFaults()
    arn = _start(env, "pr-genfail")
    desc = _wait(env, arn)
    assert desc["error"] == "GenerationFailed"
    assert _states(env, arn)[-2:] == ["DeleteEndpointBOnGenerationFailure", "GenerationFailed"]
    assert env.endpoints_left() == []


def test_judge_failure_leaves_nothing(env: Env) -> None:
    env.judge.faults = JudgeFaults(fail_reason="injected")
    arn = _start(env, "pr-judgefail")
    desc = _wait(env, arn)
    assert desc["error"] == "JudgeJobFailed"
    assert env.endpoints_left() == [] and env.jobs_in_progress("pr-judgefail") == []


def _stop(env: Env, run_id: str) -> Any:
    deployment = OpsDeployment(bucket=env.bucket, state_machine_arn=env.machine)
    clients = {s: env.emu.client(s) for s in ("stepfunctions", "s3", "sagemaker")}
    return stop_run(
        sfn=clients["stepfunctions"],
        s3=clients["s3"],
        sagemaker=clients["sagemaker"],
        deployment=deployment,
        settings=env.settings,
        region=env.emu.region,
        run_id=run_id,
    )


def test_stop_while_endpoints_start(env: Env) -> None:
    moto_patches.registry.endpoint_start_seconds = math.inf  # Creating until deleted
    arn = _start(env, "pr-stop-creating")
    _wait(env, arn, state="WaitForEndpoints")
    assert env.endpoints_left() == sorted(names_of("pr-stop-creating"))
    outcome = _stop(env, "pr-stop-creating")
    assert outcome.ok and outcome.execution_stopped
    assert sorted(outcome.cleanup.deleted_endpoints) == sorted(names_of("pr-stop-creating"))
    assert _wait(env, arn)["status"] == "ABORTED"
    assert env.endpoints_left() == []


def test_stop_while_generating(env: Env) -> None:
    gate = threading.Event()
    env.endpoints.answer_gate = gate  # no answer until the run is stopped: it cannot finish first
    try:
        arn = _start(env, "pr-stop-generating")
        _wait(env, arn, state="GenerateChunks")
        outcome = _stop(env, "pr-stop-generating")
    finally:
        gate.set()
    assert outcome.ok and outcome.execution_stopped and outcome.status_before == "RUNNING"
    assert sorted(outcome.cleanup.deleted_endpoints) == sorted(names_of("pr-stop-generating"))
    assert _wait(env, arn)["status"] == "ABORTED"
    assert env.endpoints_left() == []


def test_stop_while_judging_and_again_after(env: Env) -> None:
    saved = moto_patches.registry.training_job_seconds
    moto_patches.registry.training_job_seconds = math.inf  # the judge runs until stopped
    try:
        arn = _start(env, "pr-stop-judging")
        _wait(env, arn, state="WaitForJudge")
        assert env.endpoints_left() == []  # deleted before the judge started
        outcome = _stop(env, "pr-stop-judging")
        assert outcome.ok and len(outcome.cleanup.stopped_jobs) == 1
        assert env.jobs_in_progress("pr-stop-judging") == []
        again = _stop(env, "pr-stop-judging")  # idempotent, and the rule's delivery too
        assert again.ok and not again.execution_stopped and again.cleanup.stopped_jobs == []
        (answer,) = deliver_status_change(env.emu, env.deployment, arn)
        assert answer["function_error"] is None and answer["payload"]["stopped_jobs"] == []
    finally:
        moto_patches.registry.training_job_seconds = saved


def test_stack_teardown_removes_what_a_run_left(env: Env) -> None:
    """`cdk destroy` in the emulator: the DEPLOYED teardown function, invoked as the Provider does.

    The run is caught while its endpoints are still `Creating` (SageMaker refuses to delete them
    then) and nothing else cleans up (moto emits no status-change event): the Delete stops the
    execution, isComplete polls until the endpoints can be deleted, deletes them, then completes.
    """
    moto_patches.registry.endpoint_start_seconds = math.inf  # Creating until the test ends it
    moto_patches.registry.extra_env["TEARDOWN_SETTLE_SECONDS"] = "0"  # no start_judge can be in flight
    try:
        arn = _start(env, "pr-teardown")
        _wait(env, arn, state="WaitForEndpoints")
        lam = env.emu.client("lambda")
        (name,) = [n for n, source in env.deployment.functions.items() if source.name == "teardown"]

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
            assert "FunctionError" not in answer, answer["Payload"].read()
            return json.loads(answer["Payload"].read())

        delete = {
            "RequestType": "Delete",
            "RequestId": "r1",
            "ResponseURL": "...",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/NovaJudge-Pipeline/1",
            "LogicalResourceId": "StackTeardownResource",
            "PhysicalResourceId": "NovaJudge-Pipeline-teardown",
            "ResourceType": "Custom::NovaJudgeTeardown",
            "ResourceProperties": {},
        }
        response = invoke(delete)
        assert _wait(env, arn)["status"] == "ABORTED"
        assert env.endpoints_left() == sorted(names_of("pr-teardown"))  # still Creating: not deletable yet
        assert not invoke({**delete, **response})["IsComplete"]  # still Creating: it waits
        moto_patches.registry.endpoint_start_seconds = 0  # the start-up ends
        polls = 0
        while not invoke({**delete, **response})["IsComplete"]:
            polls += 1
            assert polls < 30, "teardown never completed"
            time.sleep(0.5)
        assert env.endpoints_left() == []
    finally:
        moto_patches.registry.extra_env.pop("TEARDOWN_SETTLE_SECONDS", None)
