"""`novajudge start|status|runs|results|logs`: run and inspect evaluations of the deployed stack.

Thin adapters over `novajudge.ops`: parse options, call the domain functions, print with Rich, and
map errors to exit codes (2 for a bad request — nothing was started —, 1 for a failure).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from novajudge.cli.app import app
from novajudge.errors import NovaJudgeError
from novajudge.layout import RunLayout
from novajudge.ops import quotas
from novajudge.ops import runs as runs_mod
from novajudge.ops.aws import UsageProblem, error_code
from novajudge.ops.context import OpsContext
from novajudge.ops.follow import TERMINAL, expected_generations, follow, generation_progress
from novajudge.ops.logs import DEFAULT_LINES, diagnose, readable_cause
from novajudge.ops.stack_outputs import Deployment, load_deployment

# -- shared options and error handling (imported by the other operating command modules) ----------

PROFILE = typer.Option(None, "--profile", help="AWS profile (default: the environment's credentials).")
REGION = typer.Option(None, "--region", help="AWS region (default: the profile's or AWS_REGION).")
PREFIX = typer.Option(None, "--prefix", help="Stack prefix (default: stack_prefix in cdk.json).")


class Judge(enum.StrEnum):
    rubric = "rubric"
    binary = "binary"


JUDGE = typer.Option(None, "--judge", help="Judge variant (default: judge_variant in cdk.json).")
OUT_DIR = typer.Option(None, "--out", help="Folder to download into (default: results/<run id>).")


def out() -> Console:
    # Created per call so CliRunner's captured streams are used; wide so tables do not wrap in logs.
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """UsageProblem → exit 2 (a usage error: nothing was started); other known failures → exit 1.

    `typer.BadParameter` is Typer's public usage error (Typer 0.29 vendors Click, so a plain
    `click.UsageError` would not be recognised and would exit 1).
    """
    try:
        yield
    except UsageProblem as exc:
        raise typer.BadParameter(str(exc)) from None
    except NovaJudgeError as exc:
        err().print(f"error: {exc}")
        raise typer.Exit(1) from None
    except ClientError as exc:
        err().print(f"error: AWS refused the request: {exc}")
        raise typer.Exit(1) from None
    except BotoCoreError as exc:
        err().print(f"error: {exc}")
        raise typer.Exit(1) from None


def _deployment(ctx: OpsContext) -> Deployment:
    return load_deployment(ctx.aws.client("cloudformation"), ctx.settings)


@contextlib.contextmanager
def deployed(
    profile: str | None, region: str | None, prefix: str | None, run_id: str | None = None
) -> Iterator[tuple[Console, OpsContext, Deployment]]:
    """`handle_errors` around a command that reads the deployed stacks: yields its console, context
    and deployment. A malformed `run_id` is refused first, before any AWS call (exit 2)."""
    console = out()
    with handle_errors():
        if run_id is not None:
            runs_mod.check_run_id(run_id)
        ctx = OpsContext.create(profile, region, prefix)
        yield console, ctx, _deployment(ctx)


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _print_failure(console: Console, ctx: OpsContext, run: runs_mod.Run) -> None:
    failure = diagnose(
        ctx.aws.client("stepfunctions"), ctx.aws.client("logs"), ctx.aws.client("sagemaker"), run, lines=0
    )
    step = failure.failed_step or failure.fail_state or "?"
    console.print(f"Run {run.run_id} {run.status} in {step}: {failure.error or '-'}")
    cause, _ = readable_cause(failure.cause)
    if cause:
        console.print(f"cause: {cause}", markup=False)
    console.print(f"details: novajudge logs {run.run_id}")


# -- start ----------------------------------------------------------------------------------------


@app.command()
def start(
    questions: int | None = typer.Option(None, "--questions", "-n", help="Questions to evaluate (≥ 1)."),
    offset: int | None = typer.Option(None, "--offset", help="Skip this many dataset rows first."),
    dataset: str | None = typer.Option(
        None, "--dataset", help="squad | squad-sample | s3://bucket/key.jsonl (default: squad)."
    ),
    judge: Judge | None = JUDGE,
    run_id: str | None = typer.Option(
        None, "--run-id", help="Run id = execution name (default run-YYYYmmdd-HHMMSS-mmm, UTC)."
    ),
    poll_seconds: int | None = typer.Option(
        None, "--poll-seconds", help="How often the state machine polls the judge job (seconds)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the run live until it ends."),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="RUN_ID",
        help="Resume an existing run: keep the items both models answered, generate only the rest.",
    ),
    skip_quota_check: bool = typer.Option(
        False, "--skip-quota-check", help="Start without checking the account's SageMaker quotas first."
    ),
    refresh_seconds: float = typer.Option(
        5.0, "--refresh-seconds", min=0.0, help="How often --wait refreshes the view (seconds)."
    ),
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Start an evaluation run; everything is validated before anything is started.

    Prints the run id and the Step Functions console link; with --wait, follows the run and prints
    its headline (exit 0) or the failed state and cause (exit 1).
    """
    console = out()
    with handle_errors():
        ctx = OpsContext.create(profile, region, prefix)
        if resume is not None:
            deployment = _resume(console, ctx, resume)
            _follow_or_hint(console, ctx, deployment, resume, wait=wait, refresh_seconds=refresh_seconds)
            return
        run_id = run_id if run_id is not None else runs_mod.new_run_id()
        options = {
            "run_id": run_id,
            "questions": questions,
            "offset": offset,
            "dataset": dataset,
            "judge": judge.value if judge else None,
            "poll_seconds": poll_seconds,
        }
        runs_mod.build_input(ctx.settings, **options)  # what needs no deployment fails first
        deployment = _deployment(ctx)
        execution_input = runs_mod.build_input(ctx.settings, **options, bucket=deployment.bucket)
        s3 = ctx.aws.client("s3")
        sfn = ctx.aws.client("stepfunctions")
        if dataset and dataset.startswith("s3://"):
            runs_mod.check_dataset_readable(s3, dataset)
        if runs_mod.run_exists(sfn, s3, deployment.state_machine_arn, deployment.bucket, run_id):
            raise UsageProblem(f"run {run_id!r} already exists; choose another --run-id")
        if not skip_quota_check:
            _quota_preflight(ctx, judge.value if judge else ctx.settings.judge_variant)
        _judge_runtime_preflight(console, ctx, execution_input)
        arn = runs_mod.start_run(sfn, deployment.state_machine_arn, run_id, execution_input)
        console.print(f"Started run {run_id}")
        console.print(f"console: {runs_mod.console_url(ctx.aws.region_name, arn)}")
        if ctx.aws.endpoint_url:
            console.print(
                f"note: AWS_ENDPOINT_URL={ctx.aws.endpoint_url}: the run is there, not in the console"
            )
        _follow_or_hint(console, ctx, deployment, run_id, wait=wait, refresh_seconds=refresh_seconds)


def _follow_or_hint(
    console: Console,
    ctx: OpsContext,
    deployment: Deployment,
    run_id: str,
    *,
    wait: bool,
    refresh_seconds: float,
) -> None:
    """With --wait, follow the run (its newest execution) to the end and print the outcome;
    without, say how to follow it."""
    if not wait:
        console.print(f"follow it with: novajudge status {run_id}")
        return
    try:
        run = follow(
            ctx.aws.client("stepfunctions"),
            ctx.aws.client("s3"),
            deployment.bucket,
            deployment.state_machine_arn,
            run_id,
            defaults=ctx.settings.run_defaults(),
            refresh_seconds=refresh_seconds,
            console=console,
        )
    except KeyboardInterrupt:
        console.print(f"stopped following; the run continues: novajudge status {run_id}")
        raise typer.Exit(130) from None
    _finish(console, ctx, deployment, run)


def _resume(console: Console, ctx: OpsContext, run_id: str) -> Deployment:
    """`start --resume RUN_ID`: a new execution of the run; the stored request decides everything
    (the other options do not apply) and the prepare step checks the quotas again."""
    deployment = _deployment(ctx)
    s3, sfn = ctx.aws.client("s3"), ctx.aws.client("stepfunctions")
    arn = runs_mod.resume_run(sfn, s3, deployment.state_machine_arn, deployment.bucket, run_id)
    console.print(f"Resumed run {run_id} (execution {arn.rsplit(':', 1)[-1]})")
    console.print(f"console: {runs_mod.console_url(ctx.aws.region_name, arn)}")
    return deployment


def _judge_runtime_preflight(console: Console, ctx: OpsContext, execution_input: dict[str, Any]) -> None:
    """Warn (the run still starts: the judge's speed is an assumption) when the judge job would hit
    judge_max_runtime_seconds before judging every line (`novajudge estimate` shows the sums)."""
    from novajudge.ops.estimate import judge_runtime_warning

    problem = judge_runtime_warning(
        ctx.settings,
        questions=int(execution_input.get("questions") or ctx.settings.default_questions),
        variant=str((execution_input.get("judge") or {}).get("variant") or ctx.settings.judge_variant),
        both_orders=bool(execution_input.get("both_orders", ctx.settings.both_orders)),
    )
    if problem:
        console.print(f"WARNING: {problem} (assumed judge speed; see novajudge estimate)", soft_wrap=True)


def _quota_preflight(ctx: OpsContext, variant: str) -> None:
    """Refuse (exit 1, nothing started) when a SageMaker quota the run needs is too low."""
    needs = quotas.run_needs(ctx.settings, ctx.settings.resolved_judge_instance_type(variant))
    try:
        checks = quotas.check(ctx.aws.client("service-quotas"), needs)
    except ClientError as exc:
        err().print(f"warning: quotas not checked ({error_code(exc)}); use --skip-quota-check to silence")
        return
    for unlisted in (c for c in checks if c.value is None):
        err().print(f"warning: quota '{unlisted.need.name}' is not listed for this account; not checked")
    short = [c for c in checks if c.short]
    for check in short:
        err().print(f"error: {check.refusal(ctx.aws.region_name)}", markup=False)
    if short:
        err().print("nothing was started")
        raise typer.Exit(1)


def _finish(console: Console, ctx: OpsContext, deployment: Deployment, run: runs_mod.Run) -> None:
    """Print the outcome of a finished run; exit 1 unless it succeeded with a headline."""
    if run.status != "SUCCEEDED":
        _print_failure(console, ctx, run)
        raise typer.Exit(1)
    layout = RunLayout(deployment.bucket, run.run_id)
    summary = runs_mod.read_summary(ctx.aws.client("s3"), deployment.bucket, run.run_id)
    line = runs_mod.headline(summary) or runs_mod.headline(run.output)
    if not line:
        err().print(
            f"error: run {run.run_id} succeeded but "
            f"{layout.uri(layout.results_key('summary.json'))} has no headline"
        )
        raise typer.Exit(1)
    console.print(line)
    console.print(f"results: novajudge results {run.run_id} --out results/{run.run_id}")


# -- status ---------------------------------------------------------------------------------------


@app.command()
def status(
    run_id: str | None = typer.Argument(None, help="Run id (default: the latest run)."),
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Show one run: status, timing, current state, progress, and its headline or failure."""
    with deployed(profile, region, prefix, run_id) as (console, ctx, deployment):
        sfn, s3 = ctx.aws.client("stepfunctions"), ctx.aws.client("s3")
        if run_id is None:
            run = runs_mod.latest_run(sfn, deployment.state_machine_arn)
        else:
            run = runs_mod.describe_run(sfn, deployment.state_machine_arn, run_id)
        table = Table(show_header=False, box=None)
        table.add_row("run", run.run_id)
        table.add_row("status", run.status)
        table.add_row("started", _when(run.started))
        table.add_row("duration" if run.stopped else "elapsed", _duration(run.duration_seconds()))
        if run.status == "RUNNING":
            table.add_row("state", runs_mod.current_state(sfn, run.execution_arn) or "-")
        generated = generation_progress(s3, deployment.bucket, run.run_id)
        if generated is not None:
            expected = expected_generations(run.input, ctx.settings.run_defaults())
            table.add_row("generation", f"{generated}" + (f" / {expected}" if expected else ""))
        if run.status == "SUCCEEDED":
            summary = runs_mod.read_summary(s3, deployment.bucket, run.run_id)
            table.add_row("headline", runs_mod.headline(summary) or runs_mod.headline(run.output) or "-")
        table.add_row("console", runs_mod.console_url(ctx.aws.region_name, run.execution_arn))
        console.print(table)
        if run.status in TERMINAL and run.status != "SUCCEEDED":
            _print_failure(console, ctx, run)


# -- runs -----------------------------------------------------------------------------------------


@app.command("runs")
def runs_cmd(
    limit: int = typer.Option(10, "--limit", min=1, max=1000, help="How many runs, newest first."),
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """List recent runs: id, status, start, duration, and winner and win rate when succeeded."""
    with deployed(profile, region, prefix) as (console, ctx, deployment):
        sfn, s3 = ctx.aws.client("stepfunctions"), ctx.aws.client("s3")
        found = runs_mod.list_runs(sfn, deployment.state_machine_arn, limit)
        if not found:
            console.print("no runs yet; start one with `novajudge start`")
            return
        table = Table("run id", "status", "started", "duration", "winner", "B win rate (decided)")
        for run in found:
            winner, rate = None, None
            if run.status == "SUCCEEDED":
                summary = runs_mod.read_summary(s3, deployment.bucket, run.run_id)
                winner, rate = runs_mod.winner_and_rate(summary)
            table.add_row(
                run.run_id,
                run.status,
                _when(run.started),
                _duration(run.duration_seconds()),
                winner or "-",
                f"{rate:.1%}" if rate is not None else "-",
            )
        console.print(table)


# -- results --------------------------------------------------------------------------------------


@app.command()
def results(
    run_id: str = typer.Argument(..., help="Run id."),
    out_dir: Path | None = OUT_DIR,
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Download a run's summary.json, details.parquet, report.png and report.html; print the headline."""
    with deployed(profile, region, prefix, run_id) as (console, ctx, deployment):
        sfn, s3 = ctx.aws.client("stepfunctions"), ctx.aws.client("s3")
        run = runs_mod.describe_run(sfn, deployment.state_machine_arn, run_id)
        target = out_dir or Path("results") / run_id
        written, missing = runs_mod.download_results(s3, deployment.bucket, run_id, target)
        layout = RunLayout(deployment.bucket, run_id)
        if "summary.json" in missing:
            failed = run.status in TERMINAL and run.status != "SUCCEEDED"
            hint = f"the run is {run.status}" + (f"; see `novajudge logs {run_id}`" if failed else "")
            err().print(f"error: run {run_id} has no results yet ({hint})")
            raise typer.Exit(1)
        for path in written:
            console.print(f"wrote {path}")
        for name in missing:
            console.print(f"missing {layout.uri(layout.results_key(name))}")
        summary = runs_mod.read_summary(s3, deployment.bucket, run_id)
        console.print(runs_mod.headline(summary) or "(summary.json has no headline)")
        if missing:
            raise typer.Exit(1)


# -- logs -----------------------------------------------------------------------------------------


@app.command()
def logs(
    run_id: str = typer.Argument(..., help="Run id."),
    lines: int = typer.Option(DEFAULT_LINES, "--lines", min=1, max=10000, help="Log lines to show."),
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Why a run failed: the failing step's error and cause, and the last lines of its logs."""
    with deployed(profile, region, prefix, run_id) as (console, ctx, deployment):
        run = runs_mod.describe_run(ctx.aws.client("stepfunctions"), deployment.state_machine_arn, run_id)
        if run.status in ("RUNNING", "SUCCEEDED"):
            console.print(f"run {run_id} is {run.status}: nothing failed")
            return
        failure = diagnose(
            ctx.aws.client("stepfunctions"), ctx.aws.client("logs"), ctx.aws.client("sagemaker"), run, lines
        )
        cause, trace = readable_cause(failure.cause)
        rows: list[tuple[str, Any]] = [
            ("run", run_id),
            ("status", run.status),
            ("failed step", failure.failed_step),
            ("fail state", failure.fail_state),
            ("error", failure.error),
            ("cause", cause),
        ]
        if failure.task_error and (failure.task_error, failure.task_cause) != (failure.error, failure.cause):
            rows += [
                ("task error", failure.task_error),
                ("task cause", readable_cause(failure.task_cause)[0]),
            ]
        rows += [
            ("lambda", failure.lambda_function),
            ("training job", failure.training_job),
            ("failure reason", failure.training_failure_reason),
        ]
        for label, value in rows:
            if value:
                console.print(f"{label}: {value}", markup=False)
        if trace:
            console.print("stack trace:")
            for line in trace:
                console.print(line, markup=False)
        for note in failure.notes:
            console.print(f"note: {note}")
        if failure.log_lines:
            console.print(f"--- last {len(failure.log_lines)} lines of {failure.log_source} ---")
            for line in failure.log_lines:
                console.print(line, markup=False)
