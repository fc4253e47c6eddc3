"""Teardown: what `cdk destroy` stops before CloudFormation deletes the pipeline stack.

Per-run endpoints and judge training jobs are created at run time, outside CloudFormation, so
deleting the stack does not remove them: an endpoint a failed cleanup left behind would bill on
(about $7/h each) after the stack that could delete it is gone. The pipeline stack therefore holds a
custom resource (`stacks/constructs/teardown.py`) whose Delete event runs `sweep` below:

1. stop every RUNNING execution of this stack's state machine (so no state creates anything new),
2. delete every endpoint named like this deployment's per-run endpoints
   (`<prefix>-<32 hex>-a|b`, `novajudge.layout.run_endpoint_name`; the persistent endpoints
   `<prefix>-model-a|b` belong to the endpoints stack and never match),
3. stop every InProgress training job tagged `novajudge:stack=<this pipeline stack>`.

Runs create no EndpointConfigs or Models (both come from the endpoints stack), so there is nothing
else of theirs to delete. Every "already gone" answer counts as done: destroy must never fail
because a run cleaned up after itself first. SageMaker refuses `DeleteEndpoint` while an endpoint is
`Creating` or `Updating`, and a start_judge invocation in flight when its execution is stopped may
still start a job, so one sweep is not always the end: the Provider's isComplete handler sweeps
again every poll until a sweep finds nothing to do after the settle time, or gives up (reporting
what remains in its log) before the Provider's own timeout would fail the stack deletion.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from novajudge.layout import JUDGE_JOB_TAG
from novajudge.steps.environment import TeardownEnvironment

#: Endpoint states in which SageMaker refuses DeleteEndpoint: wait for them to end, then delete.
#: (Any other refusal, a ValidationException that is not "could not find", is waited for too.)
ENDPOINT_BUSY_STATES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
#: An endpoint already being deleted: nothing to do (it no longer bills).
ENDPOINT_DELETING_STATES = frozenset({"Deleting"})
#: Seconds of the invocation kept free: a sweep stops before the Lambda timeout would kill it.
CALL_MARGIN_SECONDS = 10.0
#: Error codes meaning "the thing is already gone" (or was never there): done, not a problem.
GONE_CODES = frozenset({"StateMachineDoesNotExist", "ExecutionDoesNotExist", "ResourceNotFound"})
#: The Data keys onEvent hands to isComplete (the Provider merges onEvent's result into its event).
GIVE_UP_AT_KEY = "TeardownGiveUpAt"
SETTLE_UNTIL_KEY = "TeardownSettleUntil"
#: What StopExecution records as the reason, visible in the execution's history.
STOP_ERROR = "StackDeleted"
STOP_CAUSE = "cdk destroy: the pipeline stack is being deleted"


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def _message(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"


def _gone(exc: Exception) -> bool:
    """SageMaker answers a missing endpoint or job with ValidationException "Could not find ..."."""
    return _code(exc) in GONE_CODES or "could not find" in _message(exc).lower()


def run_endpoint_pattern(prefix: str) -> re.Pattern[str]:
    """Names of this deployment's per-run endpoints, and nothing else (`layout.run_endpoint_name`)."""
    return re.compile(rf"^{re.escape(prefix)}-[0-9a-f]{{32}}-[ab]$")


@dataclass
class TeardownReport:
    """What one sweep found and did; logged by the handler."""

    stopped_executions: list[str] = field(default_factory=list)
    deleted_endpoints: list[str] = field(default_factory=list)
    stopped_jobs: list[str] = field(default_factory=list)
    #: Endpoints SageMaker will not delete yet (still starting or updating): `name (status)`.
    waiting: list[str] = field(default_factory=list)
    #: Things that vanished between listing and acting (another cleanup was faster): done.
    already_gone: list[str] = field(default_factory=list)
    #: Calls that failed for another reason (throttling, access): the next sweep tries again.
    errors: list[str] = field(default_factory=list)
    #: True when the invocation ran short of time before the sweep ended.
    out_of_time: bool = False
    #: isComplete only: the give-up time passed with something still left (listed above).
    gave_up: bool = False

    @property
    def acted(self) -> bool:
        return bool(self.stopped_executions or self.deleted_endpoints or self.stopped_jobs)

    @property
    def settled(self) -> bool:
        """Nothing was left to do and nothing is pending: the stack may go."""
        return not (self.acted or self.waiting or self.errors or self.out_of_time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stopped_executions": self.stopped_executions,
            "deleted_endpoints": self.deleted_endpoints,
            "stopped_jobs": self.stopped_jobs,
            "waiting": self.waiting,
            "already_gone": self.already_gone,
            "errors": self.errors,
            "out_of_time": self.out_of_time,
            "gave_up": self.gave_up,
            "settled": self.settled,
        }


class _Clock:
    """Refuses to start a call when less than CALL_MARGIN_SECONDS of the invocation remain."""

    def __init__(self, seconds_left: Callable[[], float], report: TeardownReport) -> None:
        self.seconds_left = seconds_left
        self.report = report

    def ok(self) -> bool:
        if self.seconds_left() < CALL_MARGIN_SECONDS:
            self.report.out_of_time = True
        return not self.report.out_of_time


def _listed(pages: Iterable[Mapping[str, Any]], key: str, clock: _Clock) -> Iterator[dict[str, Any]]:
    """The items under `key` of every page, page by page while the invocation has time left (the
    caller checks the clock again before each call it makes)."""
    for page in pages:
        yield from page.get(key, [])
        if not clock.ok():
            return


def _stop_executions(sfn: Any, state_machine_arn: str, clock: _Clock, report: TeardownReport) -> None:
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    )
    try:
        for execution in _listed(pages, "executions", clock):
            if not clock.ok():
                return
            arn = execution["executionArn"]
            try:
                sfn.stop_execution(executionArn=arn, error=STOP_ERROR, cause=STOP_CAUSE)
            except Exception as exc:
                (report.already_gone if _gone(exc) else report.errors).append(
                    f"execution {arn}: {_message(exc)}"
                )
                continue
            report.stopped_executions.append(arn)
    except Exception as exc:
        if _gone(exc):
            report.already_gone.append(f"state machine {state_machine_arn}: {_message(exc)}")
        else:
            report.errors.append(f"executions of {state_machine_arn}: could not list: {_message(exc)}")


def _delete_endpoints(sagemaker: Any, prefix: str, clock: _Clock, report: TeardownReport) -> None:
    pattern = run_endpoint_pattern(prefix)
    pages = sagemaker.get_paginator("list_endpoints").paginate(NameContains=f"{prefix}-")
    try:
        for endpoint in _listed(pages, "Endpoints", clock):
            name, status = endpoint["EndpointName"], endpoint.get("EndpointStatus", "")
            if not pattern.match(name) or status in ENDPOINT_DELETING_STATES:
                continue
            if status in ENDPOINT_BUSY_STATES:
                report.waiting.append(f"endpoint {name} ({status})")
                continue
            if not clock.ok():
                return
            try:
                sagemaker.delete_endpoint(EndpointName=name)
            except Exception as exc:
                if _gone(exc):
                    report.already_gone.append(f"endpoint {name}")
                elif _code(exc) == "ValidationException":  # changed state since listed
                    report.waiting.append(f"endpoint {name} ({_message(exc)})")
                else:
                    report.errors.append(f"endpoint {name}: could not delete: {_message(exc)}")
                continue
            report.deleted_endpoints.append(name)
    except Exception as exc:
        report.errors.append(f"endpoints {prefix}-*: could not list: {_message(exc)}")


def _tagged(sagemaker: Any, arn: str, stack_tag: str) -> bool:
    for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
        for tag in page.get("Tags", []):
            if tag.get("Key") == JUDGE_JOB_TAG and tag.get("Value") == stack_tag:
                return True
    return False


def _stop_jobs(sagemaker: Any, stack_tag: str, clock: _Clock, report: TeardownReport) -> None:
    pages = sagemaker.get_paginator("list_training_jobs").paginate(StatusEquals="InProgress")
    try:
        for job in _listed(pages, "TrainingJobSummaries", clock):
            if not clock.ok():
                return
            name, arn = job["TrainingJobName"], job["TrainingJobArn"]
            try:
                if not _tagged(sagemaker, arn, stack_tag):
                    continue  # another deployment's (or nobody's) job: never touched
                sagemaker.stop_training_job(TrainingJobName=name)
            except Exception as exc:
                if _gone(exc) or _code(exc) == "ValidationException":  # ended since listed
                    report.already_gone.append(f"training job {name}: {_message(exc)}")
                else:
                    report.errors.append(f"training job {name}: could not stop: {_message(exc)}")
                continue
            report.stopped_jobs.append(name)
    except Exception as exc:
        report.errors.append(f"training jobs: could not list: {_message(exc)}")


def sweep(
    env: TeardownEnvironment, *, sfn: Any, sagemaker: Any, seconds_left: Callable[[], float]
) -> TeardownReport:
    """Stop executions, then delete per-run endpoints, then stop tagged judge jobs; never raises.

    Executions first, so no state creates an endpoint or starts a job after it was looked for.
    """
    report = TeardownReport()
    clock = _Clock(seconds_left, report)
    for step in (
        lambda: _stop_executions(sfn, env.state_machine_arn, clock, report),
        lambda: (
            _delete_endpoints(sagemaker, env.run_endpoint_prefix, clock, report)
            if env.run_endpoint_prefix
            else None
        ),
        lambda: _stop_jobs(sagemaker, env.stack_tag, clock, report),
    ):
        if not clock.ok():
            break
        try:
            step()
        except Exception as exc:  # a bug or an unexpected answer must not fail the stack deletion
            report.errors.append(f"sweep step failed: {type(exc).__name__}: {exc}")
    return report


# -- the custom resource's two handlers (aws-cdk-lib custom_resources.Provider) ----------------------------


def physical_id(event: Mapping[str, Any], env: TeardownEnvironment) -> str:
    """Stable across updates, so an Update never makes CloudFormation delete (and sweep) the old one."""
    return str(event.get("PhysicalResourceId") or f"{env.stack_tag}-teardown")


@dataclass(frozen=True)
class Invocation:
    """What one invocation of either handler works with: the environment, the clients, the time the
    invocation has left and the wall clock (the settle and give-up times)."""

    env: TeardownEnvironment
    sfn: Any
    sagemaker: Any
    seconds_left: Callable[[], float]
    now: Callable[[], float] = time.time

    def sweep(self) -> TeardownReport:
        return sweep(self.env, sfn=self.sfn, sagemaker=self.sagemaker, seconds_left=self.seconds_left)


def on_event(event: Mapping[str, Any], call: Invocation) -> tuple[dict[str, Any], TeardownReport | None]:
    """The Provider's onEvent: Create and Update do nothing; Delete sweeps once.

    Returns the Provider response and the sweep's report (None when nothing was swept). The
    response's Data tells isComplete when to stop waiting: after the settle time if executions were
    stopped (a start_judge invocation in flight may still start a job), and at the give-up time.
    """
    started = call.now()
    report = None
    settle = started
    if event.get("RequestType") == "Delete":
        report = call.sweep()
        if report.stopped_executions:
            settle += call.env.settle_seconds
    # Data on every request type: it is how the shared handler tells isComplete events apart.
    data = {GIVE_UP_AT_KEY: started + call.env.give_up_seconds, SETTLE_UNTIL_KEY: settle}
    return {"PhysicalResourceId": physical_id(event, call.env), "Data": data}, report


def is_complete(event: Mapping[str, Any], call: Invocation) -> tuple[dict[str, Any], TeardownReport | None]:
    """The Provider's isComplete: sweep again; complete once a sweep after the settle time found
    nothing to do, or at the give-up time whatever remains (never failing the deletion)."""
    if event.get("RequestType") != "Delete":
        return {"IsComplete": True}, None
    data = event.get("Data") or {}
    report = call.sweep()
    at = call.now()
    settled = report.settled and at >= float(data.get(SETTLE_UNTIL_KEY, 0))
    report.gave_up = not settled and at >= float(data.get(GIVE_UP_AT_KEY, 0))
    # No Data in the answer: the Provider refuses Data while IsComplete is false.
    return {"IsComplete": settled or report.gave_up}, report


def is_complete_event(event: Mapping[str, Any]) -> bool:
    """isComplete events carry the Data onEvent returned (the Provider merges it into the event);
    CloudFormation's own requests never carry Data."""
    data = event.get("Data")
    return isinstance(data, Mapping) and GIVE_UP_AT_KEY in data
