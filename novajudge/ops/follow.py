"""Follow a run live until it ends: state, elapsed time and generation progress.

Polling is the only option (Step Functions has no push API for a CLI). The refresh interval, the
sleep and the clock are parameters so tests follow a run in milliseconds. On a terminal the view is
a Rich Live panel; elsewhere (CI logs, pipes) one line is printed per change, because a Live
display there would print nothing until the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from novajudge.config import Settings
from novajudge.jsonl import raw_lines
from novajudge.layout import RunLayout
from novajudge.ops.aws import OpsError, error_code
from novajudge.ops.runs import Run, current_state, describe_run

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
#: The states of generation (prepare, the Map of chunks, reduce): the manifest may appear then.
GENERATION_STATES = frozenset({"PrepareRun", "GenerateChunks", "ReduceGeneration"})


@dataclass(frozen=True)
class Snapshot:
    """What the follow view shows at one poll."""

    run: Run
    state: str | None
    elapsed: float
    generated: int | None = None
    expected: int | None = None

    def line(self) -> str:
        parts = [f"{self.run.run_id}", self.run.status, f"state {self.state or '-'}", _hms(self.elapsed)]
        if self.generated is not None:
            total = f"/{self.expected}" if self.expected else ""
            parts.append(f"generation {self.generated}{total}")
        return " | ".join(parts)


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def expected_generations(execution_input: dict[str, Any] | None, defaults: dict[str, Any]) -> int | None:
    """Judge-input lines a run should produce: questions × 2 when both orders are judged."""
    values = {**defaults, **(execution_input or {})}
    questions = values.get("questions")
    if not isinstance(questions, int):
        return None
    both = values.get("both_orders", Settings.model_fields["both_orders"].default)
    return questions * (2 if both else 1)


def generation_progress(s3: Any, bucket: str, run_id: str) -> int | None:
    """Lines in `runs/<run_id>/generation/manifest.jsonl`, or None while it does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=RunLayout(bucket, run_id).manifest_key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "AccessDenied"):
            return None
        raise
    where = RunLayout(bucket, run_id).manifest_key
    return sum(1 for line in raw_lines(body, where, error=OpsError) if line.strip())


def render(snap: Snapshot) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("run", snap.run.run_id)
    table.add_row("status", snap.run.status)
    table.add_row("state", snap.state or "-")
    table.add_row("elapsed", _hms(snap.elapsed))
    if snap.generated is not None:
        table.add_row("generation", f"{snap.generated}" + (f" / {snap.expected}" if snap.expected else ""))
    return table


def watch(
    sfn: Any,
    state_machine_arn: str,
    run_id: str,
    *,
    on_poll: Callable[[Run], None],
    refresh_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Run:
    """Describe the run every `refresh_seconds` and hand it to `on_poll` until it ends.

    Returns the last `Run`: terminal, or still running when `max_polls` polls or the `clock()`
    instant `deadline` came first (the caller decides whether to stop the execution then).
    """
    polls = 0
    while True:
        run = describe_run(sfn, state_machine_arn, run_id)
        on_poll(run)
        if run.status in TERMINAL:
            return run
        polls += 1
        if (max_polls is not None and polls >= max_polls) or (deadline is not None and clock() > deadline):
            return run
        sleep(refresh_seconds)


def follow(
    sfn: Any,
    s3: Any,
    bucket: str,
    state_machine_arn: str,
    run_id: str,
    *,
    defaults: dict[str, Any],
    refresh_seconds: float = 5.0,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_polls: int | None = None,
) -> Run:
    """Poll the run until it reaches a terminal status; returns the final `Run`."""
    console = console or Console()
    live = Live(console=console, refresh_per_second=4, transient=False) if console.is_terminal else None
    last_line = ""

    def show(run: Run) -> None:
        nonlocal last_line
        state = current_state(sfn, run.execution_arn)
        generated = expected = None
        if state in GENERATION_STATES or run.status in TERMINAL:
            generated = generation_progress(s3, bucket, run_id)
            expected = expected_generations(run.input, defaults) if generated is not None else None
        snap = Snapshot(run, state, run.duration_seconds(now()), generated, expected)
        if live:
            live.update(render(snap))
            return
        line = snap.line()
        # Elapsed time changes every poll; print only when something else changed.
        key = line.replace(_hms(snap.elapsed), "")
        if key != last_line:
            console.print(line, highlight=False)
            last_line = key

    try:
        if live:
            live.start()
        return watch(
            sfn,
            state_machine_arn,
            run_id,
            on_poll=show,
            refresh_seconds=refresh_seconds,
            sleep=sleep,
            max_polls=max_polls,
        )
    finally:
        if live:
            live.stop()
