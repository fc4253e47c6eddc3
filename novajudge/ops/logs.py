"""Why a run failed, from the execution history and the logs of the step that failed.

The state machine turns every task error into a named Fail state (`GenerationFailed`,
`JudgeStartFailed`, `JudgeJobFailed`, `SummarizeFailed`) whose cause is the error's cause, so the
history already says *what* failed. The *why* lives elsewhere: a Lambda's CloudWatch log group
`/aws/lambda/<function>` or the judge training job's `FailureReason` and its stream
`<job>/algo-1-*` in `/aws/sagemaker/TrainingJobs`. This module follows those pointers so the user
does not have to click through three consoles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from novajudge.layout import TRAINING_LOG_GROUP
from novajudge.ops.aws import OpsError, error_code
from novajudge.ops.runs import Run, history

DEFAULT_LINES = 30


@dataclass
class Failure:
    """What the history says about a failed (or stopped) run, plus the logs it points at."""

    run_id: str
    status: str
    error: str | None = None
    cause: str | None = None
    failed_step: str | None = None
    fail_state: str | None = None
    task_error: str | None = None
    task_cause: str | None = None
    lambda_function: str | None = None
    training_job: str | None = None
    training_failure_reason: str | None = None
    log_source: str | None = None
    log_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def readable_cause(cause: str | None) -> tuple[str | None, list[str]]:
    """A Lambda error cause is JSON (`errorType`, `errorMessage`, `stackTrace`): show it as
    `Type: message` plus the trace lines, instead of one escaped blob. Other causes pass through."""
    if not cause:
        return cause, []
    try:
        value = json.loads(cause)
    except json.JSONDecodeError:
        return cause, []
    if not isinstance(value, dict) or "errorMessage" not in value:
        return cause, []
    message = str(value["errorMessage"])
    if value.get("errorType"):
        message = f"{value['errorType']}: {message}"
    trace = [line.rstrip() for line in value.get("stackTrace") or [] if isinstance(line, str)]
    return message, trace


def _params(event: dict[str, Any]) -> dict[str, Any]:
    raw = (event.get("taskScheduledEventDetails") or {}).get("parameters")
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def function_name(name_or_arn: str) -> str:
    """`arn:aws:lambda:r:a:function:NAME[:qualifier]` or `NAME[:qualifier]` → NAME."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    return name_or_arn.split(":", 1)[0]


_FAILED_TASK_TYPES = ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut")


def analyse_history(run: Run, events: list[dict[str, Any]]) -> Failure:
    """Read the failed step, its error and its pointers (function, training job) from `events`."""
    failure = Failure(run_id=run.run_id, status=run.status, error=run.error, cause=run.cause)
    entered: str | None = None
    scheduled: dict[str, Any] = {}
    for event in sorted(events, key=lambda e: e["id"]):
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entered = (event.get("stateEnteredEventDetails") or {}).get("name")
            if kind == "FailStateEntered":
                failure.fail_state = entered
        elif kind == "TaskScheduled":
            scheduled = _params(event)
            if "TrainingJobName" in scheduled:
                failure.training_job = str(scheduled["TrainingJobName"])
        elif kind in _FAILED_TASK_TYPES:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            failure.failed_step = entered
            failure.task_error = details.get("error")
            failure.task_cause = details.get("cause")
            fn = scheduled.get("FunctionName")
            failure.lambda_function = function_name(str(fn)) if fn else None
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            failure.error = details.get("error") or failure.error
            failure.cause = details.get("cause") or failure.cause
        # The judge job's name is also in the StartJudgeJob result (`$.judge.training_job_name`).
        exited = event.get("stateExitedEventDetails")
        if exited and not failure.training_job:
            output = _loads(exited.get("output"))
            job = (output.get("judge") or {}).get("training_job_name") if output else None
            if job:
                failure.training_job = str(job)
    if failure.failed_step is None:
        # A Choice routed to the Fail state (the judge job itself failed): blame the judge step.
        failure.failed_step = "judge training job" if failure.fail_state == "JudgeJobFailed" else entered
    if failure.error is None and run.status == "TIMED_OUT":
        failure.error = "States.Timeout"
    return failure


def _loads(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def lambda_log_tail(
    logs: Any, function: str, start: datetime, end: datetime | None, lines: int = DEFAULT_LINES
) -> list[str]:
    """The last `lines` messages of `/aws/lambda/<function>` during the run's time window."""
    group = f"/aws/lambda/{function}"
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "startTime": int((start - timedelta(minutes=1)).timestamp() * 1000),
    }
    if end is not None:
        kwargs["endTime"] = int((end + timedelta(minutes=5)).timestamp() * 1000)
    messages: list[str] = []
    while True:
        try:
            page = logs.filter_log_events(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise LogsMissing(
                    f"no log group {group} (the function never logged, or its logs expired)"
                ) from None
            raise OpsError(f"cannot read {group}: {exc}") from None
        messages.extend(e["message"].rstrip("\n") for e in sorted(page.get("events", []), key=_ts))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    return messages[-lines:]


def training_log_tail(logs: Any, job: str, lines: int = DEFAULT_LINES) -> list[str]:
    """The last `lines` messages of the judge job's `<job>/algo-1-*` stream(s)."""
    try:
        streams = logs.describe_log_streams(
            logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job}/algo-1-"
        ).get("logStreams", [])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise LogsMissing(f"no log group {TRAINING_LOG_GROUP} in this region") from None
        raise OpsError(f"cannot list streams of {TRAINING_LOG_GROUP}: {exc}") from None
    if not streams:
        raise LogsMissing(
            f"no log stream {job}/algo-1-* in {TRAINING_LOG_GROUP} (the job may not have started)"
        )
    events: list[dict[str, Any]] = []
    for stream in streams:
        try:
            page = logs.get_log_events(
                logGroupName=TRAINING_LOG_GROUP,
                logStreamName=stream["logStreamName"],
                startFromHead=False,
                limit=lines,
            )
        except ClientError as exc:
            raise OpsError(f"cannot read {stream['logStreamName']}: {exc}") from None
        events.extend(page.get("events", []))
    events.sort(key=_ts)
    return [e["message"].rstrip("\n") for e in events][-lines:]


def _ts(event: dict[str, Any]) -> int:
    return int(event.get("timestamp", 0))


class LogsMissing(OpsError):
    """The log group or stream a failure points at does not exist (reported, not fatal)."""


def training_failure_reason(sagemaker: Any, job: str) -> str | None:
    try:
        return sagemaker.describe_training_job(TrainingJobName=job).get("FailureReason") or None
    except ClientError as exc:
        raise LogsMissing(f"cannot describe training job {job}: {exc}") from None


def diagnose(sfn: Any, logs: Any, sagemaker: Any, run: Run, lines: int = DEFAULT_LINES) -> Failure:
    """Everything `novajudge logs` prints for one run."""
    failure = analyse_history(run, history(sfn, run.execution_arn))
    if run.status in ("RUNNING", "SUCCEEDED"):
        return failure
    is_judge = failure.fail_state == "JudgeJobFailed" or (
        failure.training_job is not None and failure.lambda_function is None
    )
    if failure.lambda_function and not is_judge:
        failure.log_source = f"/aws/lambda/{failure.lambda_function}"
        try:
            failure.log_lines = lambda_log_tail(
                logs, failure.lambda_function, run.started, run.stopped, lines
            )
        except LogsMissing as exc:
            failure.notes.append(str(exc))
    elif failure.training_job:
        try:
            failure.training_failure_reason = training_failure_reason(sagemaker, failure.training_job)
        except LogsMissing as exc:
            failure.notes.append(str(exc))
        failure.log_source = f"{TRAINING_LOG_GROUP} {failure.training_job}/algo-1-*"
        try:
            failure.log_lines = training_log_tail(logs, failure.training_job, lines)
        except LogsMissing as exc:
            failure.notes.append(str(exc))
    return failure
