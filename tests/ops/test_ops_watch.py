"""`watch`, the poll loop shared by `novajudge start --wait`/`status --follow` and the local demo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from novajudge.ops.follow import watch
from novajudge.ops.runs import Run

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:NovaJudge-Pipeline"


class ScriptedSfn:
    """describe_execution answers the scripted statuses in order, then repeats the last."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.described = 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        status = self.statuses[min(self.described, len(self.statuses) - 1)]
        self.described += 1
        return {
            "name": executionArn.rsplit(":", 1)[1],
            "executionArn": executionArn,
            "status": status,
            "startDate": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        }

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        """The run's own execution only: it was never resumed (asked once the run has ended)."""
        arn = f"{MACHINE.replace(':stateMachine:', ':execution:')}:run-1"
        started = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        return {"executions": [{"name": "run-1", "executionArn": arn, "startDate": started}]}


def test_watch_polls_until_the_run_ends() -> None:
    sfn = ScriptedSfn(["RUNNING", "RUNNING", "FAILED", "SUCCEEDED"])
    seen: list[str] = []
    slept: list[float] = []
    run = watch(
        sfn,
        MACHINE,
        "run-1",
        on_poll=lambda r: seen.append(r.status),
        refresh_seconds=2.5,
        sleep=slept.append,
    )
    assert isinstance(run, Run) and run.status == "FAILED" and run.run_id == "run-1"
    assert run.execution_arn == "arn:aws:states:us-east-1:123456789012:execution:NovaJudge-Pipeline:run-1"
    assert seen == ["RUNNING", "RUNNING", "FAILED"] and slept == [2.5, 2.5]


def test_watch_stops_after_max_polls_without_a_last_sleep() -> None:
    sfn = ScriptedSfn(["RUNNING"])
    slept: list[float] = []
    run = watch(sfn, MACHINE, "run-2", on_poll=lambda r: None, sleep=slept.append, max_polls=3)
    assert run.status == "RUNNING" and sfn.described == 3 and len(slept) == 2


def test_watch_stops_at_the_deadline() -> None:
    sfn = ScriptedSfn(["RUNNING"])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    run = watch(
        sfn,
        MACHINE,
        "run-3",
        on_poll=lambda r: None,
        refresh_seconds=1.0,
        sleep=sleep,
        deadline=2.5,
        clock=lambda: now[0],
    )
    # polls at t=0, 1, 2 and 3; at t=3 the deadline (2.5) has passed: no further poll
    assert run.status == "RUNNING" and sfn.described == 4 and now[0] == 3.0
