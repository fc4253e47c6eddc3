"""`novajudge demo`: the whole evaluation on this machine, with no AWS account.

Why this shape: the demo runs what users deploy -- the synthesized templates, the real state
machine definition, the real handlers -- and replaces only what needs GPUs or an AWS account (the
two endpoints and the Nova judge job) with stand-ins that say so. Waits are shortened through the
execution input (`poll_seconds`) and the stand-in job duration, never by editing the definition.

Steps: synthesize -> start the emulator -> deploy -> register stand-ins -> start an execution ->
follow it state by state -> download the result files to `<out>/<run_id>/` on success, or report
the failed state, error and cause. The emulator is stopped in every case (success, failure,
exception, Ctrl-C). Run ids, following, history and downloads are the operating commands' own
(`novajudge.ops`), pointed at the emulator: the demo exercises the code users run against AWS.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from novajudge.layout import OUTPUT_BUCKET, OUTPUT_STATE_MACHINE, endpoint_output
from novajudge.local import moto_patches
from novajudge.local.deploy import Deployment, StackTemplate, deploy, synthesize
from novajudge.local.emulator import Emulator, local_aws
from novajudge.local.standins import EndpointFaults, JudgeFaults, LocalLLM, StandInEndpoints, StandInJudge
from novajudge.ops.follow import watch
from novajudge.ops.runs import Run, download_results, history, new_run_id, start_run

STAND_IN_BANNER = (
    "LOCAL STAND-IN RUN: nothing ran on AWS and no real model answered. The two endpoints and the "
    "Nova judge are deterministic stand-ins (novajudge.local.standins); the numbers below exercise "
    "the pipeline and say nothing about any real model or Amazon Nova."
)
#: Context the demo synthesizes with (under the user's -c overrides): the stand-ins are not Qwen, so
#: the model labels in manifests, summaries and the report must not say they are.
STAND_IN_CONTEXT: dict[str, str] = {
    "model_a_id": "novajudge-stand-in/baseline-a",
    "model_b_id": "novajudge-stand-in/challenger-b",
    # The stand-in judge ends within seconds: a short job limit lets runs poll every second within
    # the execution's history budget (`novajudge.config.history_budget_problem`).
    "judge_max_runtime_seconds": "600",
}
#: Environment of the local Lambda invocations: short retry backoff (the real defaults are seconds).
LOCAL_LAMBDA_ENV: dict[str, str] = {
    "NOVAJUDGE_RETRY_BASE_SECONDS": "0.05",
    "NOVAJUDGE_RETRY_MAX_SECONDS": "0.2",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


#: Questions of a demo run on the bundled sample when none are asked for.
DEFAULT_DEMO_QUESTIONS = 10


@dataclass
class DemoOptions:
    """What one demo run does; the CLI maps its options onto this."""

    #: None: 10 from the bundled sample, or every prompt of `dataset`.
    questions: int | None = None
    #: A local JSONL in the user dataset format: uploaded to the emulated bucket's datasets/.
    dataset: Path | None = None
    judge: Literal["rubric", "binary"] = "rubric"
    run_id: str | None = None
    out: Path = Path("results")
    fail_endpoint: Literal["A", "B"] | None = None
    fail_judge: bool = False
    corrupt_archive: bool = False
    poll_seconds: int = 1
    judge_seconds: float = 2.0  # how long the stand-in job reports InProgress (exercises the poll loop)
    timeout_seconds: float = 600.0
    seed: int = 0
    context: dict[str, Any] = field(default_factory=dict)  # CDK context overrides (-c key=value)
    log_file: Path | None = None  # handler and emulator output; default <out>/<run_id>/local-run.log


@dataclass
class DemoResult:
    """The outcome: status, where results went, what failed and how long each step took."""

    run_id: str
    status: str
    execution_arn: str | None = None
    output: dict[str, Any] | None = None
    failed_state: str | None = None
    error: str | None = None
    cause: str | None = None
    results_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # result files the run did not write
    timings: dict[str, float] = field(default_factory=dict)
    #: Seconds spent in each state of the execution (from its history), in the order entered.
    state_seconds: dict[str, float] = field(default_factory=dict)
    log_file: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


@dataclass(frozen=True)
class LocalDataset:
    """A user's JSONL checked on this machine, and where the demo uploads it."""

    path: Path
    prompts: int
    key: str


def check_local_dataset(path: Path) -> LocalDataset:
    """Validate `path` as the pipeline will (same reader: every bad line named with its field)
    before anything starts; the upload key is `datasets/<file name>`."""
    from novajudge.errors import DatasetError
    from novajudge.generation.datasets import DATASET_LIMITS, parse_user_jsonl
    from novajudge.jsonl import raw_lines
    from novajudge.layout import DATASETS_PREFIX

    if path.suffix != ".jsonl":
        raise DatasetError(f"{path}: the dataset must be a .jsonl file")
    try:
        with path.open("rb") as handle:
            items = parse_user_jsonl(
                raw_lines(handle, str(path), error=DatasetError, limits=DATASET_LIMITS), str(path)
            )
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return LocalDataset(path=path, prompts=len(items), key=f"{DATASETS_PREFIX}{path.name}")


def execution_input(
    options: DemoOptions, run_id: str, *, dataset: LocalDataset | None = None, bucket: str | None = None
) -> dict[str, Any]:
    """The execution input of a demo run (design.md "Execution input")."""
    if dataset is not None:
        return {
            "run_id": run_id,
            "questions": options.questions or dataset.prompts,
            "dataset": {"source": "s3", "uri": f"s3://{bucket}/{dataset.key}"},
            "judge": {"variant": options.judge},
            "poll_seconds": options.poll_seconds,
        }
    return {
        "run_id": run_id,
        "questions": options.questions or DEFAULT_DEMO_QUESTIONS,
        "dataset": {"source": "squad-sample"},
        "judge": {"variant": options.judge},
        "poll_seconds": options.poll_seconds,
    }


# -- background output ------------------------------------------------------------------------------


class _ThreadRouter(io.TextIOBase):
    """sys.stdout/err stand-in: the main thread keeps the terminal, other threads write to the log.

    Handlers, moto and the interpreter run in server threads; their logs would tear through the
    live progress display, so they go to the run's log file instead.
    """

    def __init__(self, original: TextIO, log: TextIO) -> None:
        self._original = original
        self._log = log
        self._main = threading.main_thread()

    def _target(self) -> TextIO:
        return self._original if threading.current_thread() is self._main else self._log

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")


@contextlib.contextmanager
def _background_output_to(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _ThreadRouter(saved[0], log), _ThreadRouter(saved[1], log)  # type: ignore[assignment]
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


# -- following an execution -------------------------------------------------------------------------


def main_path(definition: dict[str, Any]) -> list[str]:
    """The states of the happy path, in order (first Choice branch), for the progress table."""
    states = definition.get("States", {})
    order: list[str] = []
    name = definition.get("StartAt")
    while name and name in states and name not in order:
        order.append(name)
        state = states[name]
        if state.get("Type") == "Choice":
            name = (state.get("Choices") or [{}])[0].get("Next") or state.get("Default")
        else:
            name = None if state.get("End") else state.get("Next")
    return order


@dataclass
class _StateRow:
    status: str = "pending"
    visits: int = 0
    started: float | None = None
    seconds: float = 0.0
    note: str = ""
    errored: bool = False


class ExecutionView:
    """Turns get_execution_history events into a per-state table (status, visits, time)."""

    def __init__(self, planned: list[str]) -> None:
        self.rows: dict[str, _StateRow] = {name: _StateRow() for name in planned}
        self.failed_state: str | None = None
        self._seen = 0
        self._current: str | None = None

    def update(self, events: list[dict[str, Any]]) -> None:
        for event in events[self._seen :]:
            kind = event["type"]
            stamp = (
                event["timestamp"].timestamp()
                if hasattr(event.get("timestamp"), "timestamp")
                else time.time()
            )
            if kind.endswith("StateEntered"):
                name = event["stateEnteredEventDetails"]["name"]
                row = self.rows.setdefault(name, _StateRow())
                row.status, row.started, row.visits = "running", stamp, row.visits + 1
                row.errored = False
                self._current = name
                if kind == "FailStateEntered":
                    row.status, self.failed_state = "failed", name
            elif kind.endswith("StateExited"):
                name = event["stateExitedEventDetails"]["name"]
                row = self.rows.setdefault(name, _StateRow())
                if row.started is not None:
                    row.seconds += max(0.0, stamp - row.started)
                row.status, row.started = ("error caught" if row.errored else "done"), None
            elif kind in ("TaskFailed", "LambdaFunctionFailed") and self._current:
                details = (
                    event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
                )
                self.rows[self._current].note = str(details.get("error", ""))
                self.rows[self._current].errored = True
        self._seen = len(events)

    def table(self, title: str) -> Table:
        table = Table(title=title, title_justify="left")
        table.add_column("state")
        table.add_column("status")
        table.add_column("visits", justify="right")
        table.add_column("seconds", justify="right")
        table.add_column("note")
        marks = {
            "pending": "[dim]pending[/]",
            "running": "[yellow]running[/]",
            "done": "[green]done[/]",
            "failed": "[bold red]FAILED[/]",
            "error caught": "[red]error caught[/]",
        }
        for name, row in self.rows.items():
            seconds = row.seconds + (time.time() - row.started if row.started else 0.0)
            table.add_row(
                name,
                marks.get(row.status, row.status),
                str(row.visits or ""),
                f"{seconds:.1f}" if row.visits else "",
                row.note,
            )
        return table


def follow_execution(
    emu: Emulator,
    state_machine_arn: str,
    run_id: str,
    view: ExecutionView,
    *,
    timeout_seconds: float,
    on_update: Callable[[], None] | None = None,
    interval: float = 0.3,
) -> Run:
    """Poll until the execution ends (or times out: then stop it); returns the final run."""
    sfn = emu.client("stepfunctions")

    def show(run: Run) -> None:
        view.update(history(sfn, run.execution_arn))
        if on_update:
            on_update()

    run = watch(
        sfn,
        state_machine_arn,
        run_id,
        on_poll=show,
        refresh_seconds=interval,
        deadline=time.monotonic() + timeout_seconds,
    )
    if run.status != "RUNNING":
        return run
    sfn.stop_execution(
        executionArn=run.execution_arn,
        error="NovaJudge.DemoTimeout",
        cause=f"the demo gave up after {timeout_seconds:.0f} s",
    )
    return watch(sfn, state_machine_arn, run_id, on_poll=show, max_polls=1)


# -- the demo -----------------------------------------------------------------------------------------


def register_standins(emu: Emulator, deployment: Deployment, options: DemoOptions) -> None:
    """Endpoints answer per deployed name (A baseline, B challenger); the judge writes real archives."""
    names = {which: deployment.output(endpoint_output(which, "Name")) for which in ("A", "B")}
    faults = {}
    if options.fail_endpoint:
        faults[names[options.fail_endpoint]] = EndpointFaults()
    moto_patches.registry.endpoint_handler = StandInEndpoints(
        profiles={names["A"]: "A", names["B"]: "B"},
        seed=options.seed,
        faults=faults,
        local_llm=LocalLLM.from_environ(os.environ),
    )
    moto_patches.registry.training_job_hook = StandInJudge(
        s3_factory=lambda: emu.client("s3"),
        faults=JudgeFaults(
            fail_reason="injected judge failure (novajudge demo --fail-judge)"
            if options.fail_judge
            else None,
            corrupt_archive=options.corrupt_archive,
        ),
        seed=options.seed,
    )
    moto_patches.registry.training_job_seconds = options.judge_seconds
    moto_patches.registry.extra_env.update(LOCAL_LAMBDA_ENV)


def run_demo(
    options: DemoOptions,
    console: Console | None = None,
    *,
    stacks: list[StackTemplate] | None = None,
) -> DemoResult:
    """Run one local evaluation end to end; `stacks` skips synthesis (tests reuse one synth)."""
    console = console or Console()
    run_id = options.run_id or new_run_id(prefix="demo")
    result = DemoResult(run_id=run_id, status="NOT_STARTED")
    run_dir = options.out / run_id
    result.log_file = options.log_file or run_dir / "local-run.log"
    console.print(Panel(STAND_IN_BANNER, title="novajudge demo", border_style="bold yellow"))
    local_dataset = check_local_dataset(options.dataset) if options.dataset else None

    started = time.monotonic()
    if stacks is None:
        with console.status("Synthesizing the CDK app (bundling skipped: handlers run from source)..."):
            stacks = synthesize({**STAND_IN_CONTEXT, **options.context})
    result.timings["synth"] = time.monotonic() - started
    console.print(f"Synthesized {', '.join(s.name for s in stacks)} in {result.timings['synth']:.1f} s")

    with _background_output_to(result.log_file), local_aws() as emu:
        t0 = time.monotonic()
        with console.status("Deploying the templates into the local emulator..."):
            deployment = deploy(emu, stacks)
        result.timings["deploy"] = time.monotonic() - t0
        console.print(
            f"Deployed {len(deployment.created)} resources into moto at {emu.endpoint_url} in "
            f"{result.timings['deploy']:.1f} s; skipped {len(deployment.skipped)} with no local meaning"
        )
        if deployment.unknown_types:
            console.print(f"[yellow]Not emulated (unknown types): {', '.join(deployment.unknown_types)}[/]")
        register_standins(emu, deployment, options)
        bucket = deployment.output(OUTPUT_BUCKET)
        if local_dataset is not None:
            t0 = time.monotonic()
            emu.client("s3").upload_file(str(local_dataset.path), bucket, local_dataset.key)
            result.timings["upload"] = time.monotonic() - t0
            console.print(f"Uploaded {local_dataset.prompts} prompts to s3://{bucket}/{local_dataset.key}")

        sfn = emu.client("stepfunctions")
        machine = deployment.output(OUTPUT_STATE_MACHINE)
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])
        view = ExecutionView(main_path(definition))
        t0 = time.monotonic()
        result.execution_arn = start_run(
            sfn, machine, run_id, execution_input(options, run_id, dataset=local_dataset, bucket=bucket)
        )
        title = f"Execution {run_id} (LOCAL STAND-IN)"
        try:
            with Live(view.table(title), console=console, refresh_per_second=4, transient=False) as live:
                run = follow_execution(
                    emu,
                    machine,
                    run_id,
                    view,
                    timeout_seconds=options.timeout_seconds,
                    on_update=lambda: live.update(view.table(title)),
                )
                live.update(view.table(title))
            console.print()
        except KeyboardInterrupt:
            console.print()
            with contextlib.suppress(Exception):
                sfn.stop_execution(
                    executionArn=result.execution_arn,
                    error="NovaJudge.Interrupted",
                    cause="Ctrl-C in novajudge demo",
                )
            raise
        result.timings["execution"] = time.monotonic() - t0
        result.state_seconds = {name: row.seconds for name, row in view.rows.items() if row.visits}
        result.status = run.status
        if result.ok:
            result.output = run.output or {}
            t0 = time.monotonic()
            result.files, result.missing = download_results(
                emu.client("s3"), deployment.output(OUTPUT_BUCKET), run_id, run_dir
            )
            result.results_dir = run_dir
            result.timings["download"] = time.monotonic() - t0
        else:
            result.failed_state, result.error, result.cause = view.failed_state, run.error, run.cause
    result.timings["total"] = time.monotonic() - started
    _write_record(result, options)
    _print_outcome(console, result)
    return result


def _write_record(result: DemoResult, options: DemoOptions) -> None:
    """`<out>/<run_id>/local-run.json`: what ran, how it ended, and that it was a stand-in run."""
    record = {
        "stand_in": True,
        "note": STAND_IN_BANNER,
        "run_id": result.run_id,
        "status": result.status,
        "failed_state": result.failed_state,
        "error": result.error,
        "cause": result.cause,
        "output": result.output,
        "timings_seconds": {k: round(v, 2) for k, v in result.timings.items()},
        "options": {
            "questions": options.questions,
            "dataset": str(options.dataset) if options.dataset else None,
            "judge": options.judge,
            "fail_endpoint": options.fail_endpoint,
            "fail_judge": options.fail_judge,
            "poll_seconds": options.poll_seconds,
            "seed": options.seed,
        },
    }
    path = options.out / result.run_id / "local-run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _print_outcome(console: Console, result: DemoResult) -> None:
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    if result.ok:
        headline = (result.output or {}).get("headline", "")
        report = next((f for f in result.files if f.name == "report.html"), None)
        body = Group(
            f"[bold]{headline}[/]",
            "",
            f"Results: {result.results_dir}  ({', '.join(f.name for f in result.files)})",
            *([f"[red]Missing: {', '.join(result.missing)}[/]"] if result.missing else []),
            f"Report:  {report}" if report else "Report:  (missing)",
            f"Handler logs: {result.log_file}",
            f"Timings: {timings}",
        )
        console.print(Panel(body, title="LOCAL STAND-IN RUN succeeded", border_style="bold yellow"))
    else:
        cause = result.cause or ""
        with contextlib.suppress(ValueError, TypeError):
            parsed = json.loads(cause)
            if isinstance(parsed, dict) and "errorMessage" in parsed:
                cause = f"{parsed.get('errorType')}: {parsed['errorMessage']}"
        body = Group(
            f"Failed state: [bold]{result.failed_state or '?'}[/]",
            f"Error: [bold]{result.error or '?'}[/]",
            f"Cause: {cause}",
            f"Handler logs: {result.log_file}",
            f"Timings: {timings}",
        )
        console.print(Panel(body, title=f"LOCAL STAND-IN RUN {result.status}", border_style="bold red"))
