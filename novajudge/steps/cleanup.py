"""Cleanup: after an execution ends badly, stop what it left billing and record what was done.

Why a separate step: the state machine's Catch paths cover the failures it sees, but an execution
that is aborted (`StopExecution`, `novajudge stop`), times out, or fails in a state with no Catch
never runs another state. An EventBridge rule on the state machine's status changes (FAILED,
TIMED_OUT, ABORTED) invokes this step, and `novajudge stop` calls it directly, so every ending is
covered by the same code.

Idempotent by construction: every action is "make it so" (a job already Stopping, Stopped, Failed or
Completed is left alone; an endpoint already gone is fine), so a second delivery of the same event,
or `novajudge stop` after the rule already ran, changes nothing and records the same outcome.

Which resources belong to the run is decided from the run's own record (`request.json`, written by
generate), which names the execution that owns the run id, so a second execution that was refused
the same run id (RunExistsError) never stops the first execution's judge. The judge job is the one
the record's name implies (`novajudge.judge.job.judge_job_name`) plus any running job named like the
run, kept only if it writes under this run's prefix; stopping is granted only on jobs tagged with
this stack (`novajudge.layout.JUDGE_JOB_TAG`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from novajudge.judge.job import judge_job_name
from novajudge.layout import RunLayout
from novajudge.steps.environment import CleanupEnvironment

#: Training-job states in which the job still runs (and bills); anything else is an end state.
RUNNING_JOB_STATES = frozenset({"InProgress"})
#: Endpoint states after which DeleteEndpoint is pointless (it is being deleted already).
DELETING_ENDPOINT_STATES = frozenset({"Deleting"})


@dataclass
class CleanupReport:
    """What one cleanup found and did; written to `runs/<run_id>/cleanup.json`."""

    run_id: str
    execution_name: str | None
    reason: str
    #: Training jobs this cleanup asked SageMaker to stop.
    stopped_jobs: list[str] = field(default_factory=list)
    #: Jobs of the run that had already ended: name -> status (nothing to do).
    ended_jobs: dict[str, str] = field(default_factory=dict)
    #: Per-run endpoints this cleanup deleted.
    deleted_endpoints: list[str] = field(default_factory=list)
    #: What could not be stopped or deleted, each with SageMaker's reason.
    errors: list[str] = field(default_factory=list)
    #: Why nothing was touched, when that is the outcome (no record, another execution's run).
    note: str | None = None
    #: The S3 URI this report was written to (None when there was nothing of the run to record).
    record_uri: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "execution_name": self.execution_name,
            "reason": self.reason,
            "stopped_jobs": self.stopped_jobs,
            "ended_jobs": self.ended_jobs,
            "deleted_endpoints": self.deleted_endpoints,
            "errors": self.errors,
            "note": self.note,
            "record_uri": self.record_uri,
            "ok": self.ok,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def run_of_event(event: Any) -> tuple[str, str, str]:
    """(run_id, execution name, status) of a Step Functions "Execution Status Change" event.

    The run id is the execution input's `run_id`, else the execution name: the same rule as
    `novajudge.run_request.parse_run_request`.
    """
    if not isinstance(event, Mapping) or not isinstance(event.get("detail"), Mapping):
        raise ValueError("cleanup event has no 'detail' object: not an EventBridge status change")
    detail = event["detail"]
    name = str(detail.get("name") or "")
    raw = detail.get("input")
    try:
        given = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        given = {}
    run_id = given.get("run_id") if isinstance(given, Mapping) else None
    run_id = str(run_id or name)
    if not run_id:
        raise ValueError("cleanup event names no execution and no run_id")
    return run_id, name, str(detail.get("status") or "UNKNOWN")


def _code(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"


def _read_record(s3: Any, layout: RunLayout) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=layout.bucket, Key=layout.request_key)["Body"].read()
    except Exception:
        return None
    try:
        record = json.loads(body)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _describe(report: CleanupReport, what: str, call: Callable[[], Any], missing: tuple[str, ...]) -> Any:
    """SageMaker's answer about `what`, or None: not there (a refusal naming one of `missing`), or
    not described (the reason goes to the report's errors; EventBridge's retry tries again)."""
    try:
        return call()
    except Exception as exc:
        if not any(marker in _code(exc) for marker in missing):
            report.errors.append(f"{what}: could not describe: {_code(exc)}")
        return None


def _attempt(report: CleanupReport, what: str, verb: str, call: Callable[[], Any]) -> bool:
    """Make one SageMaker call; a refusal goes to the report's errors as `<what>: could not <verb>`."""
    try:
        call()
    except Exception as exc:
        report.errors.append(f"{what}: could not {verb}: {_code(exc)}")
        return False
    return True


def _stop_job(sagemaker: Any, name: str, layout: RunLayout, report: CleanupReport) -> None:
    what = f"training job {name}"
    job = _describe(
        report,
        what,
        lambda: sagemaker.describe_training_job(TrainingJobName=name),
        ("ValidationException", "ResourceNotFound"),
    )
    if job is None:
        return  # never created (start_judge did not get that far), or not described (recorded)
    if job.get("OutputDataConfig", {}).get("S3OutputPath") != layout.uri(layout.judge_output_prefix):
        return  # another run's job whose name merely contains this run id
    status = job["TrainingJobStatus"]
    if status not in RUNNING_JOB_STATES:
        report.ended_jobs[name] = status
        return
    if _attempt(report, what, "stop", lambda: sagemaker.stop_training_job(TrainingJobName=name)):
        report.stopped_jobs.append(name)


def _run_jobs(sagemaker: Any, run_id: str, record: Mapping[str, Any], report: CleanupReport) -> list[str]:
    """The run's judge job names: the one its record implies, and any still running whose name
    starts like the run's (a generate retry rewrites `created_at`, so the record may be a step
    behind the job start_judge started). `_stop_job` keeps only jobs writing under this run."""
    names = []
    variant = (record.get("judge") or {}).get("variant", "rubric")
    created_at = record.get("created_at")
    if created_at:
        names.append(judge_job_name(run_id, variant, created_at))
    head = judge_job_name(run_id, variant, "-").rsplit(f"-{variant}-", 1)[0]
    try:
        listing = sagemaker.list_training_jobs(NameContains=head, StatusEquals="InProgress", MaxResults=100)
    except Exception as exc:
        report.errors.append(f"training jobs of run {run_id}: could not list: {_code(exc)}")
        return names
    for job in listing.get("TrainingJobSummaries", []):
        if job["TrainingJobName"] not in names:
            names.append(job["TrainingJobName"])
    return names


def _delete_endpoint(sagemaker: Any, name: str, report: CleanupReport) -> None:
    what = f"endpoint {name}"
    status = _describe(
        report,
        what,
        lambda: sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"],
        ("ValidationException", "Could not find"),
    )
    if status is None:
        return  # not there (never created, or already deleted), or not described (recorded)
    if status in DELETING_ENDPOINT_STATES or _attempt(
        report, what, "delete", lambda: sagemaker.delete_endpoint(EndpointName=name)
    ):
        report.deleted_endpoints.append(name)


def cleanup_run(
    run_id: str,
    env: CleanupEnvironment,
    *,
    s3: Any,
    sagemaker: Any,
    execution_name: str | None,
    reason: str,
    endpoints: tuple[str, ...] = (),
) -> CleanupReport:
    """Stop the run's judge job and delete `endpoints` (the run's own, per-run mode); record it.

    `execution_name`, when given, must be the one that owns the run (`request.json`), else the run
    belongs to another execution and nothing is touched.
    """
    layout = RunLayout(env.bucket, run_id)
    report = CleanupReport(run_id=run_id, execution_name=execution_name, reason=reason)
    record = _read_record(s3, layout)
    if record is not None and execution_name and record.get("execution_name") not in (None, execution_name):
        report.note = (
            f"run {run_id!r} belongs to execution {record.get('execution_name')!r}, not {execution_name!r}: "
            "nothing touched"
        )
        return report  # not written either: the run's prefix is the other execution's
    for name in endpoints:
        _delete_endpoint(sagemaker, name, report)
    if record is None:
        report.note = "no request.json: generation never claimed the run, so no judge job was started"
    else:
        for name in _run_jobs(sagemaker, run_id, record, report):
            _stop_job(sagemaker, name, layout, report)
    if record is not None or report.deleted_endpoints or report.errors:
        report.record_uri = layout.uri(layout.cleanup_key)
        s3.put_object(
            Bucket=layout.bucket,
            Key=layout.cleanup_key,
            Body=json.dumps(report.as_dict(), indent=2).encode(),
            ContentType="application/json",
        )
    return report


def cleanup_from_event(
    event: Any, env: CleanupEnvironment, *, s3: Any, sagemaker: Any, endpoints_for: Any = None
) -> dict[str, Any]:
    """The EventBridge entry point: the run of the event, cleaned up; returns the report."""
    run_id, execution_name, status = run_of_event(event)
    endpoints = tuple(endpoints_for(run_id)) if endpoints_for else ()
    report = cleanup_run(
        run_id,
        env,
        s3=s3,
        sagemaker=sagemaker,
        execution_name=execution_name or None,
        reason=f"execution {execution_name or run_id} ended {status}",
        endpoints=endpoints,
    )
    return report.as_dict()
