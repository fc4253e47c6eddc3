"""The pipeline stack's delete-time sweep: `cdk destroy` stops what runs created outside CloudFormation.

Per-run endpoints and judge training jobs are created by executions, not by CloudFormation, so
deleting the stack would leave them billing if a run's own cleanup failed. This construct is a
custom resource (`Custom::NovaJudgeTeardown`) served by aws-cdk-lib's `custom_resources.Provider`
with the `teardown` function as both onEvent and isComplete handler (`novajudge.steps.teardown`):
Create and Update do nothing; Delete stops the state machine's running executions, deletes this
deployment's per-run endpoints and stops its tagged judge jobs, then polls (isComplete, every
`QUERY_INTERVAL`) until nothing is left or its give-up time passes, which is below the Provider's
total timeout so the deletion itself never fails on it.

Order: the resource depends on the state machine and on the function (its role and policy), so
CloudFormation deletes it, and runs the sweep, before any of them is deleted. The Provider's own
functions, role and waiter state machine are referenced through its service token and so outlive
it too. Grants are here, next to what uses them (the pipeline's functions' grants stay in
`PipelineStack._wire_permissions`): each is narrowed to this deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.constructs import nag
from stacks.constructs.python_function import PythonFunction

#: How often the Provider's waiter asks isComplete again while endpoints start or a job may appear.
QUERY_INTERVAL = cdk.Duration.seconds(30)
#: Polls kept between the function's give-up time and the Provider's total timeout (which fails
#: the deletion), on top of one invocation of the function (its timeout).
GIVE_UP_MARGIN_POLLS = 2
#: The Provider's waiter runs for at most two hours (a CloudFormation custom resource limit).
PROVIDER_TIMEOUT_MAX = cdk.Duration.hours(2)
#: Custom resource type: names what it is in the console and in `cdk diff`.
RESOURCE_TYPE = "Custom::NovaJudgeTeardown"


@dataclass(frozen=True)
class TeardownSpec:
    """What the sweep may touch, as the pipeline stack knows it."""

    #: Per-run endpoint ARNs (IAM globs on this deployment's names); empty with persistent endpoints.
    endpoint_arns: tuple[str, ...]
    #: Training jobs of this account and region (names are chosen per run).
    training_job_arns: str
    #: StopTrainingJob conditioned on the stack's tag (`PipelineStack.stop_own_judge_jobs`).
    stop_jobs: iam.PolicyStatement
    #: Seconds after stopping executions during which an in-flight start_judge may still start a job.
    settle_seconds: int
    #: Seconds after which isComplete stops waiting (per-run endpoints may still be starting).
    give_up_seconds: int


class StackTeardown(Construct):
    """The custom resource, its Provider and the teardown function's grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: PythonFunction,
        state_machine: sfn.StateMachine,
        spec: TeardownSpec,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = function
        timeout = function.function.timeout
        assert timeout is not None
        total = self.total_timeout(spec.give_up_seconds, int(timeout.to_seconds()))
        if total.to_seconds() > PROVIDER_TIMEOUT_MAX.to_seconds():
            raise ValueError(
                f"teardown would wait {total.to_seconds()} s, over the Provider's "
                f"{PROVIDER_TIMEOUT_MAX.to_seconds()} s: shorten the per-run endpoints' start-up bound"
            )
        self._grant(function.role, state_machine, spec)

        self.log_group = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # The Provider's framework functions get roles with no AWS managed policy, only writing to
        # their log group; the Provider adds invoking the teardown function (both) and starting its
        # waiter (onEvent). Two roles, as the Provider asks: one shared role would be a dependency
        # cycle (waiter -> isComplete function -> role policy -> waiter).
        self.on_event_role = self._framework_role("OnEventRole", "onEvent")
        self.complete_role = self._framework_role("CompleteRole", "isComplete and onTimeout")
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=function.function,
            is_complete_handler=function.function,
            query_interval=QUERY_INTERVAL,
            total_timeout=total,
            framework_on_event_role=self.on_event_role,
            framework_complete_and_timeout_role=self.complete_role,
            log_group=self.log_group,
            # No waiter logging: it would need CloudWatch Logs delivery actions on Resource *, and
            # every isComplete answer is already in the teardown function's log.
            disable_waiter_state_machine_logging=True,
        )
        # The local emulator skips this deploy-time helper (novajudge.local.deploy.HELPER_MARKER).
        waiter = self.provider.node.find_child("waiter-state-machine").node.default_child
        assert isinstance(waiter, cdk.CfnResource)
        waiter.add_metadata("novajudge:helper", "the teardown Provider's waiter, runs only on stack deletion")
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            # The state machine it stops; a Ref, so the order is also visible in the properties.
            properties={"StateMachineArn": state_machine.state_machine_arn},
        )
        self.resource.node.add_dependency(state_machine)
        self.resource.node.add_dependency(function)
        self._acknowledge_findings(state_machine)

    def _framework_role(self, construct_id: str, what: str) -> iam.Role:
        role = iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Custom resource provider framework ({what}) of the stack teardown",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        return role

    @staticmethod
    def total_timeout(give_up_seconds: int, function_timeout_seconds: int) -> cdk.Duration:
        """The Provider's total timeout: the give-up time, one invocation and GIVE_UP_MARGIN_POLLS
        polls, rounded up to whole polls (the Provider requires a multiple of the interval)."""
        interval = int(QUERY_INTERVAL.to_seconds())
        seconds = give_up_seconds + function_timeout_seconds + GIVE_UP_MARGIN_POLLS * interval
        return cdk.Duration.seconds(-(-seconds // interval) * interval)

    def _grant(self, role: iam.IRole, state_machine: sfn.StateMachine, spec: TeardownSpec) -> None:
        def allow(sid: str, action: str, resources: list[str]) -> None:
            role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=[action], resources=resources))

        allow("ListRunningExecutions", "states:ListExecutions", [state_machine.state_machine_arn])
        allow("StopOwnExecutions", "states:StopExecution", [self._executions_arn(state_machine)])
        if spec.endpoint_arns:
            # ListEndpoints has no resource-level permissions; it lists, it cannot delete.
            allow("FindRunEndpoints", "sagemaker:ListEndpoints", ["*"])
            allow("DeleteRunEndpoints", "sagemaker:DeleteEndpoint", list(spec.endpoint_arns))
        # ListTrainingJobs has no resource-level permissions; it lists, it cannot stop.
        allow("FindRunningJudgeJobs", "sagemaker:ListTrainingJobs", ["*"])
        allow("ReadJudgeJobTags", "sagemaker:ListTags", [spec.training_job_arns])
        role.add_to_principal_policy(spec.stop_jobs)

    @staticmethod
    def _executions_arn(state_machine: sfn.StateMachine) -> str:
        """`arn:...:execution:<state machine name>:*`: executions of this state machine only."""
        stack = cdk.Stack.of(state_machine)
        return stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _acknowledge_findings(self, state_machine: sfn.StateMachine) -> None:
        stack = cdk.Stack.of(self)

        def arn_finding(function: Construct) -> str:
            return f"Resource::<{stack.get_logical_id(function.node.default_child)}.Arn>:*"  # type: ignore[arg-type]

        qualified = (
            "CDK's lambda invoke grant covers the function ARN and its qualified ARNs (<arn>:*, versions "
            "and aliases) of exactly one function: {what}."
        )
        for role in (self.on_event_role, self.complete_role):
            nag.acknowledge(
                role,
                "IAM5",
                qualified.format(what="the teardown function this Provider serves"),
                findings=[arn_finding(self.function.function)],
            )
        framework = [self.provider.node.find_child(f"framework-{n}") for n in ("isComplete", "onTimeout")]
        nag.acknowledge(
            self.provider,
            "IAM5",
            qualified.format(
                what="the Provider's own isComplete and onTimeout functions (its waiter's tasks)"
            ),
            findings=[arn_finding(fn) for fn in framework],
        )
        nag.acknowledge(
            self.provider,
            "SF1",
            "The Provider's waiter state machine only re-invokes the teardown function every 30 s; each "
            "answer and what the sweep did is in that function's own log group, and the framework "
            "functions log to the Provider's; waiter logging would add Resource * log-delivery grants.",
        )
        nag.acknowledge(
            self.provider,
            "SF2",
            "aws-cdk-lib's Provider offers no tracing option for its waiter state machine; the waiter "
            "only re-invokes the teardown function every 30 s, and that function is traced (active X-Ray).",
        )
        role = self.function.role
        nag.acknowledge(
            role,
            "IAM5",
            "X-Ray tracing: xray:PutTraceSegments/PutTelemetryRecords have no resource-level permissions; "
            "sagemaker:ListTrainingJobs and sagemaker:ListEndpoints (finding this stack's leftovers at "
            "destroy) have none either; they only list, deleting and stopping are narrowed by name and tag.",
            findings=["Resource::*"],
        )
        nag.acknowledge(
            role,
            "IAM5",
            "Judge training-job names are chosen per run; reading their tags is limited to training jobs of "
            "this account and region, stopping further to jobs tagged with this stack's name.",
            findings=[
                "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*"
            ],
        )
        machine_name = stack.get_logical_id(state_machine.node.default_child)  # type: ignore[arg-type]
        nag.acknowledge(
            role,
            "IAM5",
            "Execution names are chosen per run; StopExecution is limited to executions of this stack's "
            "state machine (arn:...:execution:<its name>:*).",
            findings=[
                "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                f"<{machine_name}.Name>:*"
            ],
        )
