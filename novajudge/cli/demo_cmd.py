"""`novajudge demo`: run the whole evaluation locally (moto emulator, real handlers, stand-ins).

Exit codes: 0 the execution succeeded and its results were downloaded; 1 the execution failed (the
failed state, error and cause are printed), or the templates could not be deployed locally;
2 bad usage.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from novajudge.cli.app import app
from novajudge.run_request import BUNDLED_SAMPLE_ROWS


class JudgeVariantChoice(StrEnum):
    rubric = "rubric"
    binary = "binary"


class ModelChoice(StrEnum):
    A = "A"
    B = "B"


def _context(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="-c/--context")
        out[key] = value
    return out


@app.command("demo")
def demo_command(
    questions: Annotated[
        int | None,
        typer.Option(
            "--questions",
            min=1,
            help="Questions to evaluate (default: 10 of the bundled 20-row SQuAD sample; every prompt "
            "of --dataset).",
        ),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            help='A local JSONL in the user dataset format ({"id", "prompt"} per line), uploaded to '
            "the emulated bucket's datasets/; no size cap.",
        ),
    ] = None,
    judge: Annotated[
        JudgeVariantChoice, typer.Option("--judge", help="Judge variant.")
    ] = JudgeVariantChoice.rubric,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id (default: demo-<UTC time>).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Results go to OUT/<run_id>/.")] = Path("results"),
    fail_endpoint: Annotated[
        ModelChoice | None,
        typer.Option(
            "--fail-endpoint", help="Make this stand-in endpoint answer ModelError (to see a failed run)."
        ),
    ] = None,
    fail_judge: Annotated[
        bool, typer.Option("--fail-judge", help="Make the stand-in judge job fail.")
    ] = False,
    poll_seconds: Annotated[
        int, typer.Option("--poll-seconds", min=1, help="Judge poll interval (seconds).")
    ] = 1,
    judge_seconds: Annotated[
        float,
        typer.Option("--judge-seconds", min=0, help="How long the stand-in judge job stays InProgress."),
    ] = 2.0,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Give up (and stop the execution) after this many seconds."),
    ] = 600.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stand-ins.")] = 0,
    context: Annotated[
        list[str] | None,
        typer.Option("-c", "--context", help="CDK context override key=value (as for cdk synth)."),
    ] = None,
) -> None:
    """Run the whole evaluation on this machine: no AWS account, stand-in endpoints and judge."""
    from novajudge.errors import NovaJudgeError
    from novajudge.local.demo import DemoOptions, run_demo
    from novajudge.local.deploy import DeployError
    from novajudge.local.emulator import EmulatorError

    if dataset is None and questions is not None and questions > BUNDLED_SAMPLE_ROWS:
        Console().print(
            f"[bold red]novajudge demo: the bundled sample has {BUNDLED_SAMPLE_ROWS} rows; "
            f"use --dataset PATH.jsonl for {questions} questions[/]"
        )
        raise typer.Exit(2)
    options = DemoOptions(
        questions=questions,
        dataset=dataset,
        judge=judge.value,  # type: ignore[arg-type]
        run_id=run_id,
        out=out,
        fail_endpoint=fail_endpoint.value if fail_endpoint else None,  # type: ignore[arg-type]
        fail_judge=fail_judge,
        poll_seconds=poll_seconds,
        judge_seconds=judge_seconds,
        timeout_seconds=timeout,
        seed=seed,
        context=_context(context),
    )
    console = Console()
    try:
        result = run_demo(options, console)
    except (DeployError, EmulatorError, NovaJudgeError) as exc:
        console.print(f"[bold red]novajudge demo: {type(exc).__name__}: {exc}[/]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print(
            "[bold red]novajudge demo: interrupted; the execution was stopped and the emulator shut down[/]"
        )
        raise typer.Exit(130) from None
    raise typer.Exit(0 if result.ok else 1)
