"""The evaluation pipeline: four Lambda functions, the state machine, and the rule that cleans up after it.

Reads like the architecture diagram: `generate` (asks models A and B), `start_judge` (starts the
Nova judge training job), `summarize` (turns the judge's archive into a report), the state
machine between them, and `cleanup` (stops what a failed, timed-out or aborted run left billing,
invoked by the `RunEnded` EventBridge rule). Every permission is granted in `_wire_permissions`,
one statement per thing a function touches, so a reviewer sees the whole access story in one method.

The stack never imports from the endpoints stack (docs/design.md): endpoint names come from the
configuration and their ARNs are built here, so the endpoints can be destroyed on their own.

Datasets: an execution may read a user's JSONL from S3 (`{"source": "s3", "uri": ...}`). The
generate function may only read objects under `datasets/` of the evaluation bucket (the stack's
`BucketName` output): users upload their file to `s3://<BucketName>/datasets/<name>.jsonl`. A grant
on any bucket would let an execution input read whatever the function's role can reach.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from novajudge.config import Settings
from novajudge.layout import CHUNKS_SEGMENT, DATASETS_PREFIX, JUDGE_JOB_TAG, OUTPUT_STATE_MACHINE, RUNS_PREFIX
from stacks.constructs import nag
from stacks.constructs.python_function import PythonFunction
from stacks.constructs.run_endpoints import RunEndpointsSpec
from stacks.constructs.state_machine import EvaluationStateMachine
from stacks.constructs.teardown import StackTeardown, TeardownSpec

#: The Python whose interpreter the tests import every bundle with (python_function.IMPORT_TESTED_PYTHON,
#: tests/infra/test_bundle_size.py); every pinned package has cp313 manylinux x86_64 wheels.
RUNTIME = lambda_.Runtime.PYTHON_3_13

GENERATE_TIMEOUT = cdk.Duration.minutes(15)  # one chunk; chunks are sized to end well before it
PREPARE_TIMEOUT = cdk.Duration.minutes(5)
REDUCE_TIMEOUT = cdk.Duration.minutes(5)
#: The longest generation the state machine waits for (the Map of every chunk): 10,000 prompts at
#: 500-token answers take hours (`novajudge estimate`), and a resume can continue a run past it.
GENERATION_BOUND = cdk.Duration.hours(24)
START_JUDGE_TIMEOUT = cdk.Duration.minutes(2)
SUMMARIZE_TIMEOUT = cdk.Duration.minutes(10)
CLEANUP_TIMEOUT = cdk.Duration.minutes(1)
#: One teardown sweep (list, stop, delete; many InProgress jobs of the account mean many ListTags).
TEARDOWN_TIMEOUT = cdk.Duration.minutes(3)
#: After `cdk destroy` stopped executions, a start_judge invocation in flight may still start a job
#: until its own timeout: the teardown sweeps again until then (plus a margin).
TEARDOWN_SETTLE = START_JUDGE_TIMEOUT.plus(cdk.Duration.seconds(30))
#: The status changes after which the cleanup function runs: every ending but SUCCEEDED.
CLEANUP_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
#: Above the judge's own MaxRuntimeInSeconds: instance provisioning and image download are not
#: counted in it, and a poll interval may overshoot the end of the job.
JUDGE_PROVISIONING_MARGIN = cdk.Duration.hours(2)


class PipelineStack(cdk.Stack):
    """Functions `generate`, `start_judge`, `summarize`, `cleanup`, the state machine and the
    rule that cleans up after it; output `StateMachineArn`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        bucket: s3.IBucket,
        judge_role: iam.IRole,
        **kwargs: object,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Nova Judge Stack: generate, judge and summarize functions and the state machine",
            **kwargs,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.bucket = bucket
        self.judge_role = judge_role

        # Each function gets the variables its `novajudge.steps.environment` class reads, no more
        # (docs/design.md, "Lambda environment"): later steps take bucket and models from the run.
        # Persistent endpoints have fixed names; per-run ones are named from the run id.
        run_endpoint_prefix = settings.run_endpoint_prefix()
        endpoints_env = (
            {"RUN_ENDPOINT_PREFIX": run_endpoint_prefix}
            if run_endpoint_prefix
            else {
                "ENDPOINT_A_NAME": settings.endpoint_name("A"),
                "ENDPOINT_B_NAME": settings.endpoint_name("B"),
            }
        )
        self.prepare = self._function(
            "Prepare",
            "prepare",
            "Validates the run, checks SageMaker quotas and writes the run's items in chunks for the Map",
            memory_size=1024,
            timeout=PREPARE_TIMEOUT,
            environment={
                "BUCKET_NAME": bucket.bucket_name,
                **endpoints_env,
                "MODEL_A_ID": settings.model_id("A"),
                "MODEL_B_ID": settings.model_id("B"),
                "RUN_DEFAULTS": json.dumps(settings.run_defaults(), sort_keys=True),
                # Prompts over the endpoints' limit are not sent; poll_seconds is checked against it.
                "MAX_INPUT_TOKENS": str(settings.max_input_tokens),
                "JUDGE_MAX_RUNTIME_SECONDS": str(settings.judge_max_runtime_seconds),
                # The quota pre-flight: the judge's instance type per variant, and the endpoints'
                # when the run creates its own.
                "JUDGE_INSTANCE_TYPE_RUBRIC": settings.resolved_judge_instance_type("rubric"),
                "JUDGE_INSTANCE_TYPE_BINARY": settings.resolved_judge_instance_type("binary"),
                **(
                    {"ENDPOINT_INSTANCE_TYPE": settings.endpoint_instance_type} if run_endpoint_prefix else {}
                ),
                # Chunks are sized to finish well inside the chunk function's timeout.
                "CHUNK_TIMEOUT_SECONDS": str(int(GENERATE_TIMEOUT.to_seconds())),
                # Chunks asking the endpoints at once: each takes its part of the in-flight budget.
                "MAP_MAX_CONCURRENCY": str(settings.map_max_concurrency),
            },
        )
        self.generate = self._function(
            "Generate",
            "generate",
            "Asks models A and B about one chunk of the run's items (a child of the generation Map)",
            memory_size=1024,
            timeout=GENERATE_TIMEOUT,
            environment={},
        )
        self.reduce = self._function(
            "Reduce",
            "reduce",
            "Builds the Nova judge input, manifest and generation summary from every chunk's outcomes",
            memory_size=2048,
            timeout=REDUCE_TIMEOUT,
            environment={},
        )
        self.start_judge = self._function(
            "StartJudge",
            "start_judge",
            "Renders the judge recipe and starts the Nova LLM-as-a-judge training job",
            memory_size=512,
            timeout=START_JUDGE_TIMEOUT,
            environment={
                "JUDGE_ROLE_ARN": judge_role.role_arn,
                "JUDGE_INSTANCE_TYPE_RUBRIC": settings.resolved_judge_instance_type("rubric"),
                "JUDGE_INSTANCE_TYPE_BINARY": settings.resolved_judge_instance_type("binary"),
                "BINARY_JUDGE_MODEL": settings.binary_judge_model,
                "BINARY_JUDGE_IMAGE_TAG": settings.binary_judge_image_tag,
                "JUDGE_MAX_RUNTIME_SECONDS": str(settings.judge_max_runtime_seconds),
                "JUDGE_JOB_STACK_TAG": self.stack_name,
            },
        )
        self.summarize = self._function(
            "Summarize",
            "summarize",
            "Reads the judge's archive and writes summary, details, figure and report",
            memory_size=2048,
            timeout=SUMMARIZE_TIMEOUT,
            ephemeral_storage_size=cdk.Size.gibibytes(2),
            environment={
                # Lambda's home is read-only: matplotlib needs a writable cache, and no display.
                "MPLCONFIGDIR": "/tmp/matplotlib",
                "MPLBACKEND": "Agg",
            },
        )

        self.cleanup = self._function(
            "Cleanup",
            "cleanup",
            "Stops what a failed, timed-out or aborted run left billing and records it under the run",
            memory_size=256,
            timeout=CLEANUP_TIMEOUT,
            environment={
                "BUCKET_NAME": bucket.bucket_name,
                **({"RUN_ENDPOINT_PREFIX": run_endpoint_prefix} if run_endpoint_prefix else {}),
            },
        )

        self.state_machine = EvaluationStateMachine(
            self,
            "Evaluation",
            prepare=self.prepare.function,
            generate=self.generate.function,
            reduce=self.reduce.function,
            start_judge=self.start_judge.function,
            summarize=self.summarize.function,
            training_job_arns=[self.training_job_arns()],
            timeout=self.state_machine_timeout(settings),
            run_endpoints=self.run_endpoints_spec() if run_endpoint_prefix else None,
            endpoint_instance_type=settings.endpoint_instance_type,
            map_max_concurrency=settings.map_max_concurrency,
            state_machine_name=self.state_machine_name(),
        )
        self.run_ended_rule = self._run_ended_rule()
        self._wire_permissions()
        self._acknowledge_findings()
        self.teardown = self._teardown(run_endpoint_prefix)

        cdk.CfnOutput(
            self,
            OUTPUT_STATE_MACHINE,
            value=self.state_machine.state_machine.state_machine_arn,
            description="Evaluation state machine (start an execution with `novajudge start`)",
        )

    # -- construction helpers -----------------------------------------------------------------------

    def _function(
        self,
        construct_id: str,
        name: str,
        description: str,
        *,
        environment: dict[str, str],
        **sizing: object,
    ) -> PythonFunction:
        """A pipeline function: Powertools' environment plus its own."""
        common = {
            "POWERTOOLS_SERVICE_NAME": f"novajudge-{name.replace('_', '-')}",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        return PythonFunction(
            self,
            construct_id,
            name=name,
            description=description,
            runtime=RUNTIME,
            environment={**common, **environment},
            **sizing,  # type: ignore[arg-type]
        )

    def _run_ended_rule(self) -> events.Rule:
        """Invoke cleanup when an execution of this state machine ends in anything but success.

        The state machine's Catch paths cannot run after an abort or a timeout; this rule can.
        EventBridge retries the (idempotent) cleanup for up to two hours if it fails.
        """
        rule = events.Rule(
            self,
            "RunEnded",
            description="Runs the cleanup function when an evaluation fails, times out or is aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": list(CLEANUP_STATUSES),
                    "stateMachineArn": [self.state_machine.state_machine.state_machine_arn],
                },
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.cleanup.function, retry_attempts=8, max_event_age=cdk.Duration.hours(2)
            )
        )
        return rule

    def _teardown(self, run_endpoint_prefix: str | None) -> StackTeardown:
        """What `cdk destroy` stops first: executions, per-run endpoints, tagged judge jobs."""
        settle, give_up = self.teardown_seconds(self.settings)
        function = self._function(
            "Teardown",
            "teardown",
            "On stack deletion stops running executions, per-run endpoints and this stack's judge jobs",
            memory_size=256,
            timeout=TEARDOWN_TIMEOUT,
            environment={
                "STATE_MACHINE_ARN": self.state_machine.state_machine.state_machine_arn,
                "JUDGE_JOB_STACK_TAG": self.stack_name,
                **({"RUN_ENDPOINT_PREFIX": run_endpoint_prefix} if run_endpoint_prefix else {}),
                "TEARDOWN_SETTLE_SECONDS": str(settle),
                "TEARDOWN_GIVE_UP_SECONDS": str(give_up),
            },
        )
        return StackTeardown(
            self,
            "StackTeardown",
            function=function,
            state_machine=self.state_machine.state_machine,
            spec=TeardownSpec(
                endpoint_arns=tuple(self.endpoint_arns()) if run_endpoint_prefix else (),
                training_job_arns=self.training_job_arns(),
                stop_jobs=self.stop_own_judge_jobs("StopOwnJudgeTrainingJobs"),
                settle_seconds=settle,
                give_up_seconds=give_up,
            ),
        )

    @classmethod
    def teardown_seconds(cls, settings: Settings) -> tuple[int, int]:
        """(settle, give up) of the teardown: per-run endpoints a stopped run left `Creating` can
        only be deleted once started or failed, so in per-run mode it waits out their start bound."""
        settle = int(TEARDOWN_SETTLE.to_seconds())
        starting = cls.endpoint_start_seconds(settings) if settings.endpoints_mode == "per_run" else 0
        return settle, settle + starting + settings.endpoint_poll_seconds

    def run_endpoints_spec(self) -> RunEndpointsSpec:
        s = self.settings
        prefix = s.run_endpoint_prefix()
        assert prefix is not None
        return RunEndpointsSpec(
            name_prefix=prefix,
            config_names=(s.endpoint_config_name("A"), s.endpoint_config_name("B")),
            endpoint_arns=tuple(self.endpoint_arns()),
            config_arns=tuple(
                self.format_arn(
                    service="sagemaker", resource="endpoint-config", resource_name=s.endpoint_config_name(w)
                )
                for w in ("A", "B")
            ),
            poll_seconds=s.endpoint_poll_seconds,
            max_polls=self.endpoint_max_polls(s),
        )

    @staticmethod
    def endpoint_start_seconds(settings: Settings) -> int:
        return settings.endpoint_start_seconds()

    @staticmethod
    def endpoint_max_polls(settings: Settings) -> int:
        return settings.endpoint_max_polls()

    @classmethod
    def state_machine_timeout(cls, settings: Settings) -> cdk.Duration:
        """Generation + start + the judge's own limit + provisioning margin + summary (+ the
        endpoints' start in per-run mode)."""
        per_run = settings.endpoints_mode == "per_run"
        seconds = (
            (cls.endpoint_start_seconds(settings) + settings.endpoint_poll_seconds if per_run else 0)
            + PREPARE_TIMEOUT.to_seconds()
            + GENERATION_BOUND.to_seconds()
            + REDUCE_TIMEOUT.to_seconds()
            + START_JUDGE_TIMEOUT.to_seconds()
            + settings.judge_max_runtime_seconds
            + JUDGE_PROVISIONING_MARGIN.to_seconds()
            + SUMMARIZE_TIMEOUT.to_seconds()
        )
        return cdk.Duration.seconds(seconds)

    # -- ARNs ----------------------------------------------------------------------------------------

    def endpoint_arns(self) -> list[str]:
        """The two candidate endpoints, from the configured (already lower-case) names; in per-run
        mode every per-run name of this deployment (`Settings.endpoint_name_pattern`)."""
        return [
            self.format_arn(
                service="sagemaker", resource="endpoint", resource_name=self.settings.endpoint_name_pattern(w)
            )
            for w in ("A", "B")
        ]

    def state_machine_name(self) -> str:
        """A fixed name, so the Map's grants (start its own child executions) can name the state
        machine without a reference to it (which would be a dependency cycle through its role)."""
        return f"{self.stack_name}-Evaluation"

    def state_machine_arn(self) -> str:
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name(),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def own_executions_arn(self) -> str:
        """The Distributed Map's child executions of this state machine
        (`execution:<machine>/<map run label>:<id>`, as the Step Functions IAM page for
        Distributed Map grants them)."""
        return self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name()}/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def training_job_arns(self) -> str:
        """Training jobs of this account and region: job names are chosen per run."""
        return self.format_arn(service="sagemaker", resource="training-job", resource_name="*")

    def stop_own_judge_jobs(self, sid: str) -> iam.PolicyStatement:
        """StopTrainingJob on training jobs tagged with this stack's name only."""
        return iam.PolicyStatement(
            sid=sid,
            actions=["sagemaker:StopTrainingJob"],
            resources=[self.training_job_arns()],
            conditions={"StringEquals": {f"aws:ResourceTag/{JUDGE_JOB_TAG}": self.stack_name}},
        )

    # -- permissions ---------------------------------------------------------------------------------

    def _wire_permissions(self) -> None:
        """Every grant of the pipeline, by function. The state machine's Lambda invoke and
        DescribeTrainingJob grants come from its tasks (`EvaluationStateMachine`)."""
        runs_objects = self.bucket.arn_for_objects(f"{RUNS_PREFIX}*")
        datasets_objects = self.bucket.arn_for_objects(f"{DATASETS_PREFIX}*")

        def list_prefixes(*prefixes: str) -> iam.PolicyStatement:
            # Only for functions that list: generate ("does this run exist?"), summarize (find the
            # judge archive). start_judge only heads one key and treats any error as "missing".
            return iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            )

        def read_write_runs() -> iam.PolicyStatement:
            return iam.PolicyStatement(
                sid="ReadWriteRuns", actions=["s3:GetObject", "s3:PutObject"], resources=[runs_objects]
            )

        prepare = self.prepare.role
        prepare.add_to_policy(read_write_runs())
        prepare.add_to_policy(
            iam.PolicyStatement(
                sid="ReadUserDatasets", actions=["s3:GetObject"], resources=[datasets_objects]
            )
        )
        # No ListBucket on datasets/: the handler only reads the one key it is given (a missing
        # file then surfaces as AccessDenied rather than NoSuchKey; tests/infra/test_iam_* checks).
        prepare.add_to_policy(list_prefixes(RUNS_PREFIX))
        prepare.add_to_policy(
            iam.PolicyStatement(
                sid="QuotaPreflight",
                # Service Quotas has no resource-level permissions for listing; it only reads.
                actions=["servicequotas:ListServiceQuotas"],
                resources=["*"],
            )
        )

        generate = self.generate.role
        generate.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeCandidateEndpoints",
                actions=["sagemaker:InvokeEndpoint"],
                resources=self.endpoint_arns(),
            )
        )
        generate.add_to_policy(read_write_runs())

        reduce = self.reduce.role
        reduce.add_to_policy(read_write_runs())
        reduce.add_to_policy(list_prefixes(RUNS_PREFIX))

        start_judge = self.start_judge.role
        start_judge.add_to_policy(
            iam.PolicyStatement(
                sid="StartJudgeTrainingJob",
                # Describe: a retried start finds its own job already created (novajudge.judge.job).
                # No AddTags: the CreateTrainingJob request carries no Tags.
                actions=["sagemaker:CreateTrainingJob"],
                resources=[self.training_job_arns()],
                # Only on the judge instance types this configuration permits (a stray request
                # cannot start, say, sixteen p5 instances); Null: the key must be in the request.
                conditions={
                    "ForAllValues:StringEquals": {
                        "sagemaker:InstanceTypes": self.settings.permitted_judge_instance_types()
                    },
                    "Null": {"sagemaker:InstanceTypes": "false"},
                },
            )
        )
        start_judge.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeJudgeTrainingJob",
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[self.training_job_arns()],
            )
        )
        start_judge.add_to_policy(
            iam.PolicyStatement(
                sid="TagJudgeTrainingJob",
                # The tag the stop grants are conditioned on; only with this stack's name as value.
                actions=["sagemaker:AddTags"],
                resources=[self.training_job_arns()],
                conditions={"StringEquals": {f"aws:RequestTag/{JUDGE_JOB_TAG}": self.stack_name}},
            )
        )
        start_judge.add_to_policy(
            iam.PolicyStatement(
                sid="PassJudgeRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[self.judge_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        start_judge.add_to_policy(read_write_runs())

        summarize = self.summarize.role
        summarize.add_to_policy(read_write_runs())
        summarize.add_to_policy(list_prefixes(RUNS_PREFIX))

        cleanup = self.cleanup.role
        cleanup.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeJudgeTrainingJob",
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[self.training_job_arns()],
            )
        )
        cleanup.add_to_policy(
            iam.PolicyStatement(
                sid="FindRunningJudgeJobs",
                # ListTrainingJobs has no resource-level permissions; it lists, it cannot stop.
                actions=["sagemaker:ListTrainingJobs"],
                resources=["*"],
            )
        )
        cleanup.add_to_policy(self.stop_own_judge_jobs("StopOwnJudgeTrainingJobs"))
        cleanup.add_to_policy(read_write_runs())
        if self.settings.endpoints_mode == "per_run":
            cleanup.add_to_policy(
                iam.PolicyStatement(
                    sid="DeleteRunEndpoints",
                    actions=["sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint"],
                    resources=self.endpoint_arns(),
                )
            )

        self.state_machine.state_machine.add_to_role_policy(self.stop_own_judge_jobs("StopOwnJudgeJobs"))
        machine = self.state_machine.state_machine
        # The generation Map (a Distributed Map): read the chunk list prepare wrote, start and
        # watch its child executions (of this state machine only), invoke the chunk function.
        machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadChunkLists",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{RUNS_PREFIX}*/{CHUNKS_SEGMENT}*")],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="StartMapChildren",
                actions=["states:StartExecution"],
                resources=[self.state_machine_arn()],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="WatchMapChildren",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[self.own_executions_arn()],
            )
        )
        self.generate.function.grant_invoke(machine)

    # -- cdk-nag -------------------------------------------------------------------------------------

    def _acknowledge_findings(self) -> None:
        """Each wildcard that remains is one AWS cannot narrow further; each says why."""
        bucket_arn = self._nag_name(self.bucket.bucket_arn)
        runs = f"Resource::{bucket_arn}/{RUNS_PREFIX}*"
        datasets = f"Resource::{bucket_arn}/{DATASETS_PREFIX}*"
        training_jobs = (
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*"
        )
        xray = (
            "X-Ray tracing (Lambda active tracing, state machine tracing): xray:PutTraceSegments and "
            "xray:PutTelemetryRecords have no resource-level permissions, AWS requires Resource *."
        )
        run_objects = (
            f"Each execution writes and reads only under {RUNS_PREFIX}<run_id>/, and run ids are chosen "
            f"per execution, so the grant is the {RUNS_PREFIX} prefix of the evaluation bucket, not one key."
        )
        for fn in (self.generate, self.reduce, self.start_judge, self.summarize):
            nag.acknowledge(fn.role, "IAM5", xray, findings=["Resource::*"])
        nag.acknowledge(
            self.prepare.role,
            "IAM5",
            xray + " servicequotas:ListServiceQuotas (the quota pre-flight) has no resource-level "
            "permissions either; it only reads the account's quota values.",
            findings=["Resource::*"],
        )
        nag.acknowledge(
            self.cleanup.role,
            "IAM5",
            xray + " sagemaker:ListTrainingJobs (finding the run's running judge job) has no "
            "resource-level permissions either; it only lists, stopping is tag-conditioned.",
            findings=["Resource::*"],
        )
        for fn in (self.prepare, self.generate, self.reduce, self.start_judge, self.summarize, self.cleanup):
            nag.acknowledge(fn.role, "IAM5", run_objects, findings=[runs])
        nag.acknowledge(
            self.cleanup.role,
            "IAM5",
            "The judge training job's name is chosen per run; describing is limited to training jobs "
            f"of this account and region, stopping further to jobs tagged {JUDGE_JOB_TAG}=<this stack>.",
            findings=[training_jobs],
        )
        nag.acknowledge(
            self.prepare.role,
            "IAM5",
            f"Users upload their own JSONL datasets to s3://<BucketName>/{DATASETS_PREFIX} and name one "
            "per execution; reads are limited to that prefix of the stack's own bucket.",
            findings=[datasets],
        )
        nag.acknowledge(
            self.start_judge.role,
            "IAM5",
            "The judge training job's name is chosen per run (it embeds the run id), so it cannot be "
            "known at deploy time; the grant is limited to training jobs of this account and region.",
            findings=[training_jobs],
        )
        machine = self.state_machine.state_machine
        nag.acknowledge(
            machine.role,
            "IAM5",
            "CloudWatch Logs delivery actions (logs:CreateLogDelivery, logs:PutResourcePolicy, ...) "
            "and X-Ray actions that Step Functions logging/tracing need have no resource-level "
            "permissions; AWS requires Resource *.",
            findings=["Resource::*"],
        )
        nag.acknowledge(
            machine.role,
            "IAM5",
            "The DescribeJudgeJob poll reads the per-run judge training job, whose name is only "
            "known at run time; limited to training jobs of this account and region (StopJudgeJob "
            f"further to jobs tagged {JUDGE_JOB_TAG}=<this stack>).",
            findings=[training_jobs],
        )
        nag.acknowledge(
            machine.role,
            "IAM5",
            "CDK's lambda:invoke task grants the function ARN and its qualified ARNs (<arn>:*, "
            "versions and aliases) of exactly the five pipeline functions the machine invokes.",
            findings=[
                f"Resource::<{self.get_logical_id(fn.function.node.default_child)}.Arn>:*"  # type: ignore[arg-type]
                for fn in (self.prepare, self.generate, self.reduce, self.start_judge, self.summarize)
            ],
        )
        nag.acknowledge(
            machine.role,
            "IAM5",
            "The generation Map reads the chunk list its prepare step wrote under "
            f"{RUNS_PREFIX}<run_id>/{CHUNKS_SEGMENT} (run ids are chosen per execution), and watches or "
            "stops its own child executions, whose names Step Functions chooses; both are limited "
            "to this state machine's run prefix and executions.",
            findings=[
                f"Resource::{bucket_arn}/{RUNS_PREFIX}*/{CHUNKS_SEGMENT}*",
                "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                f"{self.state_machine_name()}/*",
            ],
        )

    def _nag_name(self, value: str) -> str:
        """How cdk-nag prints a token in a finding: an import by its export name, else `<Id.Attr>`."""
        producer = cdk.Stack.of(self.bucket)
        if producer is not self:
            # The import token CDK itself would use for this reference (export_value is idempotent
            # and creates the same export the cross-stack reference creates).
            value = producer.export_value(value)
        resolved = self.resolve(value)
        if isinstance(resolved, dict) and "Fn::ImportValue" in resolved:
            return str(resolved["Fn::ImportValue"])
        if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
            logical_id, attribute = resolved["Fn::GetAtt"]
            return f"<{logical_id}.{attribute}>"
        if isinstance(resolved, str):
            return resolved
        raise ValueError(f"cannot name {resolved!r} as cdk-nag prints it")
