"""The evaluation state machine, state by state as docs/design.md describes it (JSONPath).

GenerateData -> StartJudgeJob -> WaitForJudge -> DescribeJudgeJob -> JudgeFinished? -> (loop |
SummarizeResults -> Done). Written only with what the moto Step Functions interpreter (the local
emulator) also runs: Lambda invocations, an `aws-sdk:sagemaker:describeTrainingJob` poll loop
instead of the `.sync` SageMaker integration, Retry/Catch, `ErrorPath`/`CausePath`, `States.Format`.
No JSONata.

The Lambda tasks invoke the function ARN directly (the request-response Lambda invocation, CDK's
`payload_response_only`): its result is the handler's return value itself. With the
`arn:aws:states:::lambda:invoke` resource the value sits under `Payload` and, in JSONPath, could
only reach `$.judge` / `$.results` through a ResultSelector that enumerates fields, silently
dropping anything a handler adds later (start_judge already returns `judge_model`, summarize
`archive_uri`). Retry error names (`Lambda.ServiceException`, ...) are the same for both forms.

Data flow (what each Lambda returns is a contract with the handlers, docs/design.md):
- GenerateData: the result replaces the state: `{"run": {...}, "generation": {...}}`.
- StartJudgeJob: result -> `$.judge` (`training_job_name`, `output_path`, ...).
- DescribeJudgeJob: `$.judge_status` = the DescribeTrainingJob response.
- SummarizeResults: result -> `$.results` (`summary_uri`, ..., `headline`).
- Done: `{run_id, results, headline}`.

Failures keep both halves of the story: the Fail state's name says which step failed
(GenerationFailed, JudgeStartFailed, JudgeJobFailed, SummarizeFailed), its Error is the handler's
typed exception name (`novajudge.errors`, e.g. `InvalidRunRequest`) and its Cause the caught
error's cause. A judge job that ends Failed/Stopped is first explained into `$.error` by a Pass
(`ExplainJudgeFailure`, or `ExplainJudgeStop` when SageMaker gives no FailureReason), so
JudgeJobFailed reads the same shape as a caught error.

Nothing left billing: an error of the DescribeJudgeJob poll goes through `StopJudgeJob` (the job
may still run) before JudgeJobFailed. Endings the machine cannot catch (abort, timeout, a failure
before the job's name is in the state) are cleaned up by the cleanup function, which an EventBridge
rule on the execution's status change invokes (stacks/pipeline_stack.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.constructs.retries import LAMBDA_RETRY, SAGEMAKER_TRANSIENT_ERRORS, Backoff
from stacks.constructs.run_endpoints import RunEndpointsSpec, RunEndpointStates

#: DescribeTrainingJob only reads, so retrying it cannot start or pay for anything twice: after the
#: named transient errors, every other error (`States.ALL`: "a wildcard that matches any known error
#: name", alone in its retrier and last; it does not match States.DataLimitExceeded or States.Runtime,
#: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html) is retried a
#: few times too, so a throttling code under a name no document pins down still gets a second chance.
POLL_ANY_ERROR_ATTEMPTS = 3
#: The judge poll (DescribeTrainingJob): SageMaker's transient errors, then any error a few times.
JUDGE_POLL_RETRIES = (
    Backoff(SAGEMAKER_TRANSIENT_ERRORS, interval_seconds=5, max_attempts=8, max_delay_seconds=120),
    Backoff((sfn.Errors.ALL,), interval_seconds=10, max_attempts=POLL_ANY_ERROR_ATTEMPTS),
)
#: StopJudgeJob (a raw state): SageMaker's transient errors, without jitter.
STOP_JOB_RETRY = Backoff(SAGEMAKER_TRANSIENT_ERRORS, interval_seconds=5, max_attempts=4, jitter=False)

#: Where the Map's (constant) result goes: its children's outcomes are in S3, not in the state.
MAP_RESULT_PATH = "$.map_result"
#: Where a failed Map's error goes: reduce reads it to explain the items no chunk reported.
MAP_ERROR_PATH = "$.map_error"
#: Where a caught error goes in the state, read by the Fail states.
ERROR_PATH = "$.error"
#: Where a failed clean-up call's error goes, so it never hides the error the run failed with.
STOP_ERROR_PATH = "$.stop_error"
#: StopTrainingJob answers `{}`; kept apart so the state (and `$.error`) survives the call.
STOP_RESULT_PATH = "$.stop_result"


class EvaluationStateMachine(Construct):
    """The Standard state machine with ALL-level logging (destroyed with the stack) and X-Ray.

    The caller hands in the three functions and the training-job ARN pattern the describe call
    may read; the Lambda invoke permissions follow from the tasks (CDK grants each task's function).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prepare: lambda_.IFunction,
        generate: lambda_.IFunction,
        reduce: lambda_.IFunction,
        start_judge: lambda_.IFunction,
        summarize: lambda_.IFunction,
        training_job_arns: Sequence[str],
        timeout: cdk.Duration,
        run_endpoints: RunEndpointsSpec | None = None,
        endpoint_instance_type: str = "",
        map_max_concurrency: int = 4,
        state_machine_name: str | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        per_run = RunEndpointStates(self, run_endpoints) if run_endpoints else None

        generation_failed = self._failed_step("GenerationFailed")
        judge_start_failed = self._failed_step("JudgeStartFailed")
        judge_job_failed = self._failed_step("JudgeJobFailed")
        # A judge whose describe call keeps failing may still be running (and billing, ~$63/h on
        # ml.p5.48xlarge): stop it before failing. Idempotent: stopping a job that already ended is
        # refused by SageMaker, caught here, and the run fails as it would have.
        stop_judge_job = self._stop_judge_job(judge_job_failed)
        summarize_failed = self._failed_step("SummarizeFailed")
        # A job that ended badly is explained into $.error like a caught error, so JudgeJobFailed
        # reads one shape whether the job failed or the describe call itself kept failing.
        explain_failure = self._explain_judge_end(
            "ExplainJudgeFailure",
            "Judge job {} ended {} ({}): {}",
            "$.judge_status.FailureReason",
        ).next(judge_job_failed)
        # SageMaker gives no FailureReason when a job is stopped (by a user or MaxRuntimeInSeconds).
        explain_stop = self._explain_judge_end(
            "ExplainJudgeStop",
            "Judge job {} ended {} ({}) without a failure reason: stopped by a user, or it "
            "reached its MaxRuntimeInSeconds (judge_max_runtime_seconds)",
        ).next(judge_job_failed)

        prepare_run = tasks.LambdaInvoke(
            self,
            "PrepareRun",
            lambda_function=prepare,
            payload=sfn.TaskInput.from_object(
                {"input": sfn.JsonPath.entire_payload, "execution_name": sfn.JsonPath.execution_name}
            ),
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        generate_chunks = self._generate_chunks(generate, map_max_concurrency)
        reduce_generation = tasks.LambdaInvoke(
            self,
            "ReduceGeneration",
            lambda_function=reduce,
            # No payload: the whole state (`{run, map}`, plus `map_error` after a failed Map).
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        start_judge_job = tasks.LambdaInvoke(
            self,
            "StartJudgeJob",
            lambda_function=start_judge,
            # No payload: a direct invocation passes the whole state (`$`) as the event.
            payload_response_only=True,
            result_path="$.judge",
            retry_on_service_exceptions=False,
        )
        wait_for_judge = sfn.Wait(self, "WaitForJudge", time=sfn.WaitTime.seconds_path("$.run.poll_seconds"))
        describe_judge_job = tasks.CallAwsService(
            self,
            "DescribeJudgeJob",
            service="sagemaker",
            action="describeTrainingJob",
            iam_action="sagemaker:DescribeTrainingJob",
            iam_resources=list(training_job_arns),
            parameters={"TrainingJobName": sfn.JsonPath.string_at("$.judge.training_job_name")},
            result_path="$.judge_status",
        )
        summarize_results = tasks.LambdaInvoke(
            self,
            "SummarizeResults",
            lambda_function=summarize,
            # No payload: a direct invocation passes the whole state (`$`) as the event.
            payload_response_only=True,
            result_path="$.results",
            retry_on_service_exceptions=False,
        )
        done = sfn.Pass(
            self,
            "Done",
            parameters={
                "run_id": sfn.JsonPath.string_at("$.run.run_id"),
                "results": sfn.JsonPath.object_at("$.results"),
                "headline": sfn.JsonPath.string_at("$.results.headline"),
            },
        )

        generation_catch: sfn.IChainable = generation_failed
        if per_run:
            generation_catch = per_run.delete_both(
                "OnGenerationFailure", ("$.run.endpoint_a", "$.run.endpoint_b"), generation_failed
            )
        for task, failed in (
            (prepare_run, generation_failed),  # before any endpoint exists: nothing to delete
            (reduce_generation, generation_catch),
            (start_judge_job, judge_start_failed),
            (summarize_results, summarize_failed),
        ):
            LAMBDA_RETRY.apply(task)
            task.add_catch(failed, errors=[sfn.Errors.ALL], result_path=ERROR_PATH)
        for retry in JUDGE_POLL_RETRIES:
            retry.apply(describe_judge_job)
        describe_judge_job.add_catch(stop_judge_job, errors=[sfn.Errors.ALL], result_path=ERROR_PATH)

        status = "$.judge_status.TrainingJobStatus"
        ended_badly = sfn.Condition.or_(
            sfn.Condition.string_equals(status, "Failed"), sfn.Condition.string_equals(status, "Stopped")
        )
        judge_finished = (
            sfn.Choice(self, "JudgeFinished?")
            .when(sfn.Condition.string_equals(status, "Completed"), summarize_results.next(done))
            .when(
                sfn.Condition.and_(ended_badly, sfn.Condition.is_present("$.judge_status.FailureReason")),
                explain_failure,
            )
            .when(ended_badly, explain_stop)
            .otherwise(wait_for_judge)
        )
        # What the run's endpoints cost it (summarize prices it into summary.json "usage"):
        # per-run endpoints bill from the execution's start to their deletion (entering this state);
        # persistent ones bill anyway, and this run used them from its start to the end of generation.
        record_use = sfn.Pass(
            self,
            "RecordEndpointUse",
            parameters={
                "mode": "per_run" if per_run else "persistent",
                "instance_type": endpoint_instance_type,
                "instances": 2,
                "from": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                "until": sfn.JsonPath.string_at("$$.State.EnteredTime"),
            },
            result_path="$.endpoint_use",
        )
        judging = (
            record_use.next(start_judge_job)
            .next(wait_for_judge)
            .next(describe_judge_job)
            .next(judge_finished)
        )
        # A failed Map (too many failed children, an unreadable chunk list) still goes through
        # reduce, which writes the manifest and summary and fails by name (GenerationFailed).
        generate_chunks.add_catch(reduce_generation, errors=[sfn.Errors.ALL], result_path=MAP_ERROR_PATH)
        generation = generate_chunks.next(reduce_generation)
        if per_run:
            # The endpoints are deleted as soon as generation ends, before the (long) judge.
            delete_failed = self._failed_step("EndpointDeleteFailed")
            deletes = per_run.delete_after_generation(delete_failed)
            reduce_generation.next(deletes[0])
            deletes[-1].next(judging)
            # Prepare (validation, quotas) runs before the endpoints are created and billed.
            definition: sfn.IChainable = prepare_run.next(
                per_run.start(generate_chunks, self._failed_step("EndpointStartFailed"))
            )
        else:
            definition = prepare_run.next(generation)
            reduce_generation.next(judging)

        # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's CloudWatch Logs
        # resource policy (5 KB, shared by every log group) on each deployment.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{cdk.Stack.of(self).stack_name}-{construct_id}",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "Resource",
            state_machine_name=state_machine_name,
            comment="Nova Judge: answers from models A and B, judged by Amazon Nova, summarized",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )

    def _generate_chunks(self, generate: lambda_.IFunction, max_concurrency: int) -> sfn.CustomState:
        """`GenerateChunks`: a Distributed Map, one child execution per chunk that prepare wrote.

        Raw ASL (a CustomState) rather than CDK's DistributedMap, for two reasons: CDK's S3 item
        reader with a key from the state grants s3:GetObject on the whole bucket, where the stack
        grants only the chunk lists under runs/; and the result must stay out of the state. Each
        child returns a few counts; the `ResultSelector` keeps none of them (the outcomes are in
        S3), so the state after the Map is as small as before it at any run size.

        - ItemReader: `s3:getObject` of the chunk list (`$.map.key`), a JSON array of
          `{index, key, items}` (moto's interpreter, like Step Functions, reads JSON or CSV).
        - ItemSelector: each child gets the run and its chunk descriptor.
        - MaxConcurrency: the deployment's `map_max_concurrency` (children at once; each has
          `generation.concurrency` requests in flight per endpoint).
        - ToleratedFailurePercentagePath: `$.map.tolerated_failure_percentage` (prepare sets it
          from the request's max_failure_rate): past it the run cannot pass anyway.
        - The child task retries Lambda's transient errors only, like every other task.
        """
        child = {
            "Type": "Task",
            "Resource": generate.function_arn,
            "Retry": [LAMBDA_RETRY.asl()],
            "End": True,
        }
        return sfn.CustomState(
            self,
            "GenerateChunks",
            state_json={
                "Type": "Map",
                "ItemReader": {
                    "Resource": f"arn:{cdk.Aws.PARTITION}:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.map.bucket", "Key.$": "$.map.key"},
                },
                "ItemSelector": {"run.$": "$.run", "chunk.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "GenerateChunk",
                    "States": {"GenerateChunk": child},
                },
                "MaxConcurrency": max_concurrency,
                "ToleratedFailurePercentagePath": "$.map.tolerated_failure_percentage",
                "Label": "GenerateChunk",
                "ResultSelector": {"done": True},
                "ResultPath": MAP_RESULT_PATH,
            },
        )

    def _stop_judge_job(self, failed: sfn.Fail) -> sfn.CustomState:
        """`StopJudgeJob`: aws-sdk `sagemaker:stopTrainingJob` of the run's job, then `failed`.

        A CustomState, not CDK's CallAwsService: CallAwsService would grant StopTrainingJob on
        every training job; the stack grants it with a tag condition instead (only this
        deployment's judge jobs, `novajudge.layout.JUDGE_JOB_TAG`). Its (empty) result goes to
        `$.stop_result` and its own error to `$.stop_error` (a CustomState cannot write
        `"ResultPath": null`: CDK drops null values), so the Fail state reads the original `$.error`.
        """
        state = sfn.CustomState(
            self,
            "StopJudgeJob",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{cdk.Aws.PARTITION}:states:::aws-sdk:sagemaker:stopTrainingJob",
                "Parameters": {"TrainingJobName.$": "$.judge.training_job_name"},
                "ResultPath": STOP_RESULT_PATH,
                "Retry": [STOP_JOB_RETRY.asl()],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": STOP_ERROR_PATH, "Next": failed.state_id}
                ],
            },
        )
        state.next(failed)
        return state

    def _failed_step(self, name: str) -> sfn.Fail:
        """A Fail state named after the failed step, carrying the caught Error and Cause."""
        return sfn.Fail(self, name, error_path=f"{ERROR_PATH}.Error", cause_path=f"{ERROR_PATH}.Cause")

    def _explain_judge_end(self, name: str, template: str, *extra_paths: str) -> sfn.Pass:
        """A Pass writing `{"Error": "JudgeJobFailed", "Cause": <formatted>}` to `$.error`."""
        paths = (
            "$.judge.training_job_name",
            "$.judge_status.TrainingJobStatus",
            "$.judge_status.SecondaryStatus",
            *extra_paths,
        )
        return sfn.Pass(
            self,
            name,
            parameters={
                "Error": "JudgeJobFailed",
                "Cause": sfn.JsonPath.format(template, *(sfn.JsonPath.string_at(p) for p in paths)),
            },
            result_path=ERROR_PATH,
        )
