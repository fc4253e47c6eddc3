"""The stack teardown (the delete-time custom resource) against moto, through the Lambda handler.

What a failed run could leave billing when `cdk destroy` starts: a running execution, per-run
endpoints, a judge job in progress. The sweep must remove exactly this deployment's leftovers
(another stack's endpoint and judge job, the persistent endpoints and untagged jobs are untouched),
tolerate what vanished meanwhile, and never fail the stack deletion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pipeline_fakes import ACCOUNT, REGION, LambdaContext

from novajudge.local import moto_patches
from novajudge.steps import teardown
from novajudge.steps.environment import TeardownEnvironment

STACK = "NovaJudge-Pipeline"
PREFIX = "novajudge"
TAG = "novajudge:stack"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/x"


def md5_name(prefix: str, run_id: str, which: str) -> str:
    """The per-run endpoint name, written out independently of `layout.run_endpoint_name`."""
    return f"{prefix}-{hashlib.md5(run_id.encode()).hexdigest()}-{which}"


@dataclass
class World:
    sfn: Any
    sm: Any
    machine: str
    other_machine: str

    def backend(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION]

    def endpoint(self, name: str, status: str = "InService") -> None:
        """An endpoint in `status`; `Creating` lasts until `finish_start` (moto_patches' timing)."""
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName="cfg")
        endpoint = self.backend().endpoints[name]
        starting = status == "Creating"
        endpoint._novajudge_final = ("InService" if starting else status, None)
        endpoint._novajudge_created_at = float("inf") if starting else float("-inf")
        endpoint.endpoint_status = status

    def finish_start(self, name: str) -> None:
        self.backend().endpoints[name]._novajudge_created_at = float("-inf")

    def endpoints(self) -> dict[str, str]:
        return {e["EndpointName"]: e["EndpointStatus"] for e in self.sm.list_endpoints()["Endpoints"]}

    def job(self, name: str, tag: str | None, status: str = "InProgress") -> None:
        self.sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": "img:1", "TrainingInputMode": "File"},
            RoleArn=ROLE,
            OutputDataConfig={"S3OutputPath": "s3://b/runs/x/judge-output/"},
            ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
            **({"Tags": [{"Key": TAG, "Value": tag}]} if tag else {}),
        )
        self.backend().training_jobs[name].training_job_status = status

    def job_status(self, name: str) -> str:
        return self.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]

    def execution(self, machine: str, name: str) -> str:
        return self.sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]

    def status(self, execution_arn: str) -> str:
        return self.sfn.describe_execution(executionArn=execution_arn)["status"]


@pytest.fixture
def world() -> Iterator[World]:
    moto_patches.install()  # StopTrainingJob, absent from moto's SageMaker
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sm = boto3.client("sagemaker", region_name=REGION)
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        machine = sfn.create_state_machine(name="Evaluation", definition=definition, roleArn=ROLE)
        other = sfn.create_state_machine(name="OtherEvaluation", definition=definition, roleArn=ROLE)
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
        sm.create_endpoint_config(
            EndpointConfigName="cfg",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        yield World(sfn, sm, machine["stateMachineArn"], other["stateMachineArn"])


@pytest.fixture
def lambda_env(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "STATE_MACHINE_ARN": world.machine,
        "JUDGE_JOB_STACK_TAG": STACK,
        "RUN_ENDPOINT_PREFIX": PREFIX,
        "TEARDOWN_SETTLE_SECONDS": "0",
        "TEARDOWN_GIVE_UP_SECONDS": "600",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def cfn_event(request_type: str, **extra: Any) -> dict[str, Any]:
    """A CloudFormation custom-resource request as the Provider framework hands it on."""
    event = {
        "RequestType": request_type,
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:framework-onEvent",
        "ResponseURL": "...",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/1",
        "RequestId": "req-1",
        "LogicalResourceId": "StackTeardownResource",
        "ResourceType": "Custom::NovaJudgeTeardown",
        "ResourceProperties": {"StateMachineArn": "x"},
        **extra,
    }
    if request_type != "Create":
        event.setdefault("PhysicalResourceId", f"{STACK}-teardown")
    return event


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from lambdas.teardown import handler

    return handler.handler(event, LambdaContext("teardown", memory_limit_in_mb=256, remaining_ms=180_000))


def leftovers(world: World) -> dict[str, Any]:
    """A failed run of this stack, one of another stack, persistent endpoints and stray jobs."""
    ours_a, ours_b = md5_name(PREFIX, "run-1", "a"), md5_name(PREFIX, "run-1", "b")
    theirs = md5_name("other", "run-1", "a")
    longer = md5_name(PREFIX + "x", "run-1", "a")  # a stack prefix that merely starts like ours
    world.endpoint(ours_a, "InService")
    world.endpoint(ours_b, "Failed")  # a failed start bills nothing but must still go
    world.endpoint(theirs)
    world.endpoint(longer)
    world.endpoint(f"{PREFIX}-model-a")  # the persistent endpoint: the endpoints stack's, not ours
    world.job("run-1-rubric-aaaa1111", STACK)
    world.job("run-0-rubric-bbbb2222", STACK, status="Completed")
    world.job("other-rubric-cccc3333", "Other-Pipeline")
    world.job("untagged-job", None)
    return {
        "ours": (ours_a, ours_b),
        "kept": (theirs, longer, f"{PREFIX}-model-a"),
        "ours_running": world.execution(world.machine, "run-1"),
        "other_running": world.execution(world.other_machine, "run-9"),
    }


def test_delete_stops_this_stacks_leftovers_and_nothing_else(
    world: World, lambda_env: dict[str, str]
) -> None:
    left = leftovers(world)
    response = invoke(cfn_event("Delete"))

    assert response["PhysicalResourceId"] == f"{STACK}-teardown"  # never changed on Delete
    assert world.status(left["ours_running"]) == "ABORTED"
    assert world.status(left["other_running"]) == "RUNNING"
    remaining = world.endpoints()
    assert not set(left["ours"]) & set(remaining)
    assert set(left["kept"]) <= set(remaining)
    assert world.job_status("run-1-rubric-aaaa1111") == "Stopped"
    assert world.job_status("run-0-rubric-bbbb2222") == "Completed"
    assert world.job_status("other-rubric-cccc3333") == "InProgress"
    assert world.job_status("untagged-job") == "InProgress"
    # An execution was stopped: isComplete must sweep again after the settle time (0 here).
    data = response["Data"]
    assert data[teardown.SETTLE_UNTIL_KEY] <= data[teardown.GIVE_UP_AT_KEY]


def test_delete_report_is_logged(
    world: World, lambda_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from lambdas.teardown import handler

    leftovers(world)
    level = handler.logger.log_level
    handler.logger.setLevel("INFO")  # the fixtures quieten Powertools to WARNING
    try:
        invoke(cfn_event("Delete"))
    finally:
        handler.logger.setLevel(level)
    report = next(r.teardown for r in caplog.records if hasattr(r, "teardown"))
    assert sorted(report["deleted_endpoints"]) == sorted([md5_name(PREFIX, "run-1", w) for w in "ab"])
    assert report["stopped_jobs"] == ["run-1-rubric-aaaa1111"]
    assert len(report["stopped_executions"]) == 1 and report["stopped_executions"][0].endswith(":run-1")


def test_a_second_delete_and_is_complete_find_nothing_and_complete(
    world: World, lambda_env: dict[str, str]
) -> None:
    leftovers(world)
    first = invoke(cfn_event("Delete"))
    again = invoke(cfn_event("Delete"))  # CloudFormation may retry a Delete: nothing more to do
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    done = invoke({**cfn_event("Delete"), "Data": first["Data"]})
    assert done == {"IsComplete": True}


def test_nothing_left_is_fine_even_without_the_state_machine(
    world: World, lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack whose creation rolled back, or a second destroy: everything is already gone."""
    world.sfn.delete_state_machine(stateMachineArn=world.machine)
    response = invoke(cfn_event("Delete"))
    assert response["PhysicalResourceId"] == f"{STACK}-teardown"
    assert invoke({**cfn_event("Delete"), "Data": response["Data"]}) == {"IsComplete": True}


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_touch_nothing(world: World, lambda_env: dict[str, str], request_type: str) -> None:
    left = leftovers(world)
    response = invoke(cfn_event(request_type))
    assert world.status(left["ours_running"]) == "RUNNING"
    assert set(left["ours"]) <= set(world.endpoints())
    assert world.job_status("run-1-rubric-aaaa1111") == "InProgress"
    # isComplete of a Create/Update answers at once (the Provider would otherwise wait and fail).
    assert invoke({**cfn_event(request_type), **response}) == {"IsComplete": True}
    if request_type == "Update":
        assert response["PhysicalResourceId"] == f"{STACK}-teardown"  # unchanged: no Delete of the old one


# -- the sweep's edge cases, with a controllable clock ---------------------------------------------------


def env(**overrides: Any) -> TeardownEnvironment:
    values: dict[str, Any] = {
        "state_machine_arn": "",
        "stack_tag": STACK,
        "run_endpoint_prefix": PREFIX,
        "settle_seconds": 150,
        "give_up_seconds": 3600,
        **overrides,
    }
    return TeardownEnvironment(**values)


def test_an_endpoint_still_creating_is_waited_for_then_deleted(world: World) -> None:
    name = md5_name(PREFIX, "run-2", "a")
    world.endpoint(name, "Creating")
    e = env(state_machine_arn=world.machine)
    clock = {"now": 1000.0}
    call = teardown.Invocation(e, world.sfn, world.sm, seconds_left=lambda: 100.0, now=lambda: clock["now"])
    response, report = teardown.on_event(cfn_event("Delete"), call)
    assert (
        report is not None
        and report.waiting == [f"endpoint {name} (Creating)"]
        and not report.deleted_endpoints
    )
    assert response["Data"] == {teardown.GIVE_UP_AT_KEY: 4600.0, teardown.SETTLE_UNTIL_KEY: 1000.0}
    event = {**cfn_event("Delete"), **response}
    clock["now"] = 1030.0
    assert teardown.is_complete(event, call)[0] == {"IsComplete": False}  # still Creating
    world.finish_start(name)  # its start-up ended: InService
    done, report = teardown.is_complete(event, call)
    assert done == {"IsComplete": False} and report is not None and report.deleted_endpoints == [name]
    assert name not in world.endpoints()
    assert teardown.is_complete(event, call)[0] == {"IsComplete": True}


def test_settle_time_after_stopping_executions_then_give_up(world: World) -> None:
    world.execution(world.machine, "run-3")
    e = env(state_machine_arn=world.machine)
    clock = {"now": 0.0}
    call = teardown.Invocation(e, world.sfn, world.sm, seconds_left=lambda: 100.0, now=lambda: clock["now"])
    response, _ = teardown.on_event(cfn_event("Delete"), call)
    assert (
        response["Data"][teardown.SETTLE_UNTIL_KEY] == 150.0
    )  # a start_judge in flight may still start a job
    event = {**cfn_event("Delete"), **response}
    clock["now"] = 149.0
    assert teardown.is_complete(event, call)[0] == {"IsComplete": False}
    # The in-flight start_judge did start a job: the next sweep stops it.
    world.job("run-3-rubric-dddd4444", STACK)
    clock["now"] = 150.0
    done, report = teardown.is_complete(event, call)
    assert (
        done == {"IsComplete": False}
        and report is not None
        and report.stopped_jobs == ["run-3-rubric-dddd4444"]
    )
    assert teardown.is_complete(event, call)[0] == {"IsComplete": True}
    # An endpoint that never leaves Creating: at the give-up time the deletion goes on anyway.
    world.endpoint(md5_name(PREFIX, "run-3", "a"), "Creating")
    clock["now"] = 3599.0
    assert teardown.is_complete(event, call)[0] == {"IsComplete": False}
    clock["now"] = 3600.0
    done, report = teardown.is_complete(event, call)
    assert done == {"IsComplete": True} and report is not None and report.gave_up and report.waiting


class Vanishing:
    """A SageMaker client whose delete/stop find the thing gone: another cleanup was faster."""

    def __init__(self, real: Any, code: str, message: str) -> None:
        self.real, self.code, self.message = real, code, message

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _error(self, operation: str) -> Exception:
        from botocore.exceptions import ClientError

        return ClientError({"Error": {"Code": self.code, "Message": self.message}}, operation)

    def delete_endpoint(self, **_: Any) -> None:
        raise self._error("DeleteEndpoint")

    def stop_training_job(self, **_: Any) -> None:
        raise self._error("StopTrainingJob")


def test_things_gone_between_listing_and_acting_are_tolerated(world: World) -> None:
    world.endpoint(md5_name(PREFIX, "run-4", "a"))
    world.job("run-4-rubric-eeee5555", STACK)
    gone = Vanishing(world.sm, "ValidationException", "Could not find endpoint / job")
    report = teardown.sweep(
        env(state_machine_arn=world.machine), sfn=world.sfn, sagemaker=gone, seconds_left=lambda: 100.0
    )
    assert report.errors == [] and len(report.already_gone) == 2
    assert not report.deleted_endpoints and not report.stopped_jobs
    assert report.settled


def test_other_failures_are_reported_and_retried_not_raised(world: World) -> None:
    world.endpoint(md5_name(PREFIX, "run-5", "a"))
    denied = Vanishing(world.sm, "AccessDeniedException", "not authorized")
    report = teardown.sweep(
        env(state_machine_arn=world.machine), sfn=world.sfn, sagemaker=denied, seconds_left=lambda: 100.0
    )
    assert len(report.errors) == 1 and "AccessDeniedException" in report.errors[0]
    assert not report.settled  # isComplete keeps trying until the give-up time


def test_a_sweep_short_of_time_stops_before_calling(world: World) -> None:
    left = leftovers(world)
    report = teardown.sweep(
        env(state_machine_arn=world.machine), sfn=world.sfn, sagemaker=world.sm, seconds_left=lambda: 5.0
    )
    assert report.out_of_time and not report.acted and not report.settled
    assert world.status(left["ours_running"]) == "RUNNING"


def test_persistent_mode_deletes_no_endpoint(world: World) -> None:
    left = leftovers(world)
    report = teardown.sweep(
        env(state_machine_arn=world.machine, run_endpoint_prefix=None),
        sfn=world.sfn,
        sagemaker=world.sm,
        seconds_left=lambda: 100.0,
    )
    assert report.deleted_endpoints == [] and set(left["ours"]) <= set(world.endpoints())
    assert report.stopped_jobs == ["run-1-rubric-aaaa1111"]


def test_environment_names_what_is_missing() -> None:
    from novajudge.errors import ConfigError

    with pytest.raises(ConfigError, match="STATE_MACHINE_ARN, JUDGE_JOB_STACK_TAG"):
        TeardownEnvironment.from_environ({})
    parsed = TeardownEnvironment.from_environ(
        {"STATE_MACHINE_ARN": "arn:sm", "JUDGE_JOB_STACK_TAG": STACK, "TEARDOWN_SETTLE_SECONDS": "9"}
    )
    assert (parsed.run_endpoint_prefix, parsed.settle_seconds, parsed.give_up_seconds) == (None, 9, 3600)
    with pytest.raises(ConfigError, match="TEARDOWN_GIVE_UP_SECONDS='0' must be at least 1"):
        TeardownEnvironment.from_environ(
            {"STATE_MACHINE_ARN": "a", "JUDGE_JOB_STACK_TAG": "s", "TEARDOWN_GIVE_UP_SECONDS": "0"}
        )


def test_a_delete_refused_because_the_endpoint_changed_state_is_waited_for(world: World) -> None:
    name = md5_name(PREFIX, "run-6", "a")
    world.endpoint(name)  # listed InService, then an update started before DeleteEndpoint arrived
    busy = Vanishing(world.sm, "ValidationException", "Cannot delete endpoint in Updating status")
    report = teardown.sweep(
        env(state_machine_arn=world.machine), sfn=world.sfn, sagemaker=busy, seconds_left=lambda: 100.0
    )
    assert report.errors == [] and report.waiting and name in report.waiting[0]
    assert not report.settled  # isComplete tries again on its next poll
