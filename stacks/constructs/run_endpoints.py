"""The states of per-run endpoints (`endpoints_mode=per_run`), built for `EvaluationStateMachine`.

PrepareRun -> NameRunEndpoints -> CreateEndpointA -> CreateEndpointB -> WaitForEndpoints ->
DescribeEndpointA -> DescribeEndpointB -> CountEndpointPolls -> EndpointsInService? ->
(GenerateChunks | loop | Explain... -> DeleteEndpoint*OnStartFailure -> EndpointStartFailed).
After ReduceGeneration: DeleteEndpointA -> DeleteEndpointB -> StartJudgeJob, so the endpoints bill
only while they answer.

Native SDK integrations only (aws-sdk:sagemaker:createEndpoint/describeEndpoint/deleteEndpoint), no
Lambda waiting: a Lambda would bill its whole wait and hit its 15-minute limit on a slow start.
The poll loop is bounded by a counter (`$.polls.count`, at most `max_polls`), chosen from the
endpoints' start-up health-check timeout, so a start that never ends fails by name instead of
running until the execution's own timeout.

Endpoint names are `<prefix>-<md5(run_id)>-a|b` (`novajudge.layout.run_endpoint_name`): the prepare
function computes them into the run (`$.run.endpoint_a|b`) before anything is created, and the
chunk and cleanup functions use the same function, so one definition names them everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.constructs.retries import SAGEMAKER_CALL_RETRY

#: Where a failed delete's error goes: never over `$.error`, which the Fail state reports.
CLEANUP_ERROR_PATH = "$.cleanup_error"


@dataclass(frozen=True)
class RunEndpointsSpec:
    """What the per-run states need from the deployment."""

    name_prefix: str
    config_names: tuple[str, str]
    endpoint_arns: tuple[str, ...]
    config_arns: tuple[str, ...]
    poll_seconds: int
    max_polls: int


class RunEndpointStates:
    """Builds the per-run endpoint states inside `scope` (the state machine construct)."""

    def __init__(self, scope: Construct, spec: RunEndpointsSpec) -> None:
        self.scope = scope
        self.spec = spec

    # -- names ---------------------------------------------------------------------------------

    def _names(self) -> sfn.Pass:
        """`NameRunEndpoints`: the run's endpoint names, as prepare computed them
        (`novajudge.layout.run_endpoint_name`, from `RUN_ENDPOINT_PREFIX` and the run id)."""
        return sfn.Pass(
            self.scope,
            "NameRunEndpoints",
            parameters={
                "run": sfn.JsonPath.object_at("$.run"),
                "map": sfn.JsonPath.object_at("$.map"),
                "endpoints": {
                    "A": sfn.JsonPath.string_at("$.run.endpoint_a"),
                    "B": sfn.JsonPath.string_at("$.run.endpoint_b"),
                },
                "polls": {"count": 0},
            },
        )

    # -- SDK calls -------------------------------------------------------------------------------

    def _call(
        self,
        construct_id: str,
        action: str,
        parameters: dict[str, object],
        resources: list[str],
        *,
        result_selector: dict[str, object] | None = None,
        result_path: str = sfn.JsonPath.DISCARD,
    ) -> tasks.CallAwsService:
        """One `aws-sdk:sagemaker:<action>` task, granted on `resources` only, throttling retried."""
        task = tasks.CallAwsService(
            self.scope,
            construct_id,
            service="sagemaker",
            action=action,
            iam_action=f"sagemaker:{action[0].upper()}{action[1:]}",
            iam_resources=resources,
            parameters=parameters,
            result_selector=result_selector,
            result_path=result_path,
        )
        SAGEMAKER_CALL_RETRY.apply(task)
        return task

    @staticmethod
    def _both(
        make: Callable[[str], tasks.CallAwsService], on_error: sfn.IChainable
    ) -> tuple[tasks.CallAwsService, tasks.CallAwsService]:
        """The task of model A, then of model B, each going to `on_error` (with `$.error`) on failure."""
        a, b = make("A"), make("B")
        for task in (a, b):
            task.add_catch(on_error, errors=[sfn.Errors.ALL], result_path="$.error")
        return a, b

    def delete_both(self, suffix: str, paths: tuple[str, str], then: sfn.IChainable) -> sfn.IChainable:
        """DeleteEndpointA<suffix> -> DeleteEndpointB<suffix> -> `then`; a failed delete goes on
        (the cleanup function, run by the FAILED event, tries again) without hiding `$.error`."""
        deletes = []
        for which, path in zip("AB", paths, strict=True):
            task = self._call(
                f"DeleteEndpoint{which}{suffix}",
                "deleteEndpoint",
                {"EndpointName": sfn.JsonPath.string_at(path)},
                list(self.spec.endpoint_arns),
            )
            deletes.append(task)
        a, b = deletes
        a.add_catch(b, errors=[sfn.Errors.ALL], result_path=CLEANUP_ERROR_PATH)
        b.add_catch(then, errors=[sfn.Errors.ALL], result_path=CLEANUP_ERROR_PATH)
        a.next(b)
        b.next(then)
        return a

    def delete_after_generation(self, failed: sfn.Fail) -> list[tasks.CallAwsService]:
        """DeleteEndpointA -> DeleteEndpointB on the success path (names from `$.run`); a delete
        that keeps failing fails the run, whose FAILED event runs the cleanup: better than
        judging for hours beside two billing endpoints."""

        def delete(which: str) -> tasks.CallAwsService:
            return self._call(
                f"DeleteEndpoint{which}",
                "deleteEndpoint",
                {"EndpointName": sfn.JsonPath.string_at(f"$.run.endpoint_{which.lower()}")},
                list(self.spec.endpoint_arns),
            )

        a, b = self._both(delete, failed)
        a.next(b)
        return [a, b]

    def start(self, generate: sfn.IChainable, start_failed: sfn.Fail) -> sfn.IChainable:
        """The states between PrepareRun and the generation Map: name, create, wait until both
        are InService."""
        spec = self.spec
        on_start_failure = self.delete_both(
            "OnStartFailure", ("$.endpoints.A", "$.endpoints.B"), start_failed
        )
        configs = dict(zip("AB", spec.config_names, strict=True))

        def create(which: str) -> tasks.CallAwsService:
            return self._call(
                f"CreateEndpoint{which}",
                "createEndpoint",
                {
                    "EndpointName": sfn.JsonPath.string_at(f"$.endpoints.{which}"),
                    "EndpointConfigName": configs[which],
                },
                [*spec.endpoint_arns, *spec.config_arns],
            )

        def describe(which: str) -> tasks.CallAwsService:
            return self._call(
                f"DescribeEndpoint{which}",
                "describeEndpoint",
                {"EndpointName": sfn.JsonPath.string_at(f"$.endpoints.{which}")},
                list(spec.endpoint_arns),
                result_selector={
                    "EndpointStatus": sfn.JsonPath.string_at("$.EndpointStatus"),
                    "Response": sfn.JsonPath.entire_payload,
                },
                result_path=f"$.endpoint_status.{which}",
            )

        create_a, create_b = self._both(create, on_start_failure)
        describe_a, describe_b = self._both(describe, on_start_failure)
        wait = sfn.Wait(
            self.scope,
            "WaitForEndpoints",
            time=sfn.WaitTime.duration(cdk.Duration.seconds(spec.poll_seconds)),
        )
        count = sfn.Pass(
            self.scope,
            "CountEndpointPolls",
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)},
            result_path="$.polls",
        )

        def explain_failed(which: str) -> sfn.Pass:
            status = f"$.endpoint_status.{which}.Response"
            return sfn.Pass(
                self.scope,
                f"ExplainEndpoint{which}Failure",
                parameters={
                    "Error": "EndpointStartFailed",
                    "Cause": sfn.JsonPath.format(
                        "Endpoint {} of model " + which + " did not start ({}): {}",
                        sfn.JsonPath.string_at(f"$.endpoints.{which}"),
                        sfn.JsonPath.string_at(f"{status}.EndpointStatus"),
                        sfn.JsonPath.string_at(f"{status}.FailureReason"),
                    ),
                },
                result_path="$.error",
            ).next(on_start_failure)

        explain_timeout = sfn.Pass(
            self.scope,
            "ExplainEndpointsTimeout",
            parameters={
                "Error": "EndpointStartFailed",
                "Cause": sfn.JsonPath.format(
                    "Endpoints not InService after {} polls "
                    + f"{spec.poll_seconds} s apart "
                    + "(A {}: {}, B {}: {}); the bound covers instance provisioning plus the "
                    "container start-up health-check timeout",
                    sfn.JsonPath.string_at("$.polls.count"),
                    sfn.JsonPath.string_at("$.endpoints.A"),
                    sfn.JsonPath.string_at("$.endpoint_status.A.EndpointStatus"),
                    sfn.JsonPath.string_at("$.endpoints.B"),
                    sfn.JsonPath.string_at("$.endpoint_status.B.EndpointStatus"),
                ),
            },
            result_path="$.error",
        ).next(on_start_failure)

        a_status, b_status = "$.endpoint_status.A.EndpointStatus", "$.endpoint_status.B.EndpointStatus"
        ready = (
            sfn.Choice(self.scope, "EndpointsInService?")
            .when(sfn.Condition.string_equals(a_status, "Failed"), explain_failed("A"))
            .when(sfn.Condition.string_equals(b_status, "Failed"), explain_failed("B"))
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(a_status, "InService"),
                    sfn.Condition.string_equals(b_status, "InService"),
                ),
                generate,
            )
            .when(sfn.Condition.number_greater_than_equals("$.polls.count", spec.max_polls), explain_timeout)
            .otherwise(wait)
        )
        create_a.next(create_b).next(wait).next(describe_a).next(describe_b).next(count).next(ready)

        return self._names().next(create_a)
