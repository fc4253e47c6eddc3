"""`novajudge stop RUN_ID`: stop the execution and everything of the run that still bills.

The same cleanup as the EventBridge rule's function (`novajudge.steps.cleanup`), run from the
command line with the caller's credentials, so a user sees at once what was stopped instead of
waiting for the rule. Idempotent: stopping a run that already ended only cleans up after it.

Known limit: when the execution is stopped while the start_judge Lambda is in flight, that
invocation still completes and may start the judge after this cleanup looked; the state machine's
ABORTED event runs the cleanup again (EventBridge), and `novajudge stop` may be repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from novajudge.config import Settings
from novajudge.ops.aws import OpsError, error_code
from novajudge.ops.runs import describe_run
from novajudge.ops.stack_outputs import Deployment
from novajudge.steps.cleanup import CleanupReport, cleanup_run
from novajudge.steps.environment import CleanupEnvironment


@dataclass(frozen=True)
class StopOutcome:
    """What `novajudge stop` did: the execution's fate and the cleanup's report."""

    run_id: str
    status_before: str
    execution_stopped: bool
    cleanup: CleanupReport
    execution_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.execution_error is None and self.cleanup.ok

    def problems(self) -> list[str]:
        return ([self.execution_error] if self.execution_error else []) + self.cleanup.errors


def stop_run(
    *, sfn: Any, s3: Any, sagemaker: Any, deployment: Deployment, settings: Settings, region: str, run_id: str
) -> StopOutcome:
    """Stop the run's newest execution (a resumed run: the resume) if it runs, then clean up the
    run's judge job and per-run endpoints."""
    run = describe_run(sfn, deployment.state_machine_arn, run_id)  # UsageProblem when unknown
    stopped, problem = False, None
    if run.status == "RUNNING":
        try:
            sfn.stop_execution(executionArn=run.execution_arn, error="StoppedByUser", cause="novajudge stop")
            stopped = True
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                problem = f"execution {run.execution_name}: could not stop: {exc}"
    env = CleanupEnvironment(
        bucket=deployment.bucket, region=region, run_endpoint_prefix=settings.run_endpoint_prefix()
    )
    run_of_input = (run.input or {}).get("run_id") or run.run_id
    report = cleanup_run(
        str(run_of_input),
        env,
        s3=s3,
        sagemaker=sagemaker,
        execution_name=run.execution_name,
        reason=f"novajudge stop (execution was {run.status})",
        endpoints=env.run_endpoints(str(run_of_input)),
    )
    return StopOutcome(run.run_id, run.status, stopped, report, problem)


__all__ = ["OpsError", "StopOutcome", "stop_run"]
