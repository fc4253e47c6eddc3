"""The `novajudge` command: one Typer app; each command lives in its own module under cli/.

Exit codes: 0 success, 1 failure, 2 bad usage (Typer/Click's own convention for usage errors).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer

from novajudge import __version__

app = typer.Typer(
    name="novajudge",
    help="Compare two LLMs with the Amazon Nova LLM-as-a-judge: run, follow, read and tear down evaluations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"novajudge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Compare two LLMs with the Amazon Nova LLM-as-a-judge."""


# Commands register themselves on `app` when their module is imported (one module per command group).
# Keep this list sorted; each module defines its commands with `@app.command(...)`.
COMMAND_MODULES: tuple[str, ...] = (
    "calibrate_cmd",
    "demo_cmd",
    "endpoints_cmd",
    "estimate_cmd",
    "ops_cmd",
    "reweight_cmd",
    "stop_cmd",
    "summarize_cmd",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"novajudge.cli.{name}")


def describe_failure(exc: BaseException) -> str:
    """One line for an error no command handled itself (the message, never a traceback)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text (byte {exc.start + 1}): {exc.reason}"
    if isinstance(exc, RecursionError):
        return "a JSON value is nested too deeply to read"
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if exc.filename else ""
        return f"{name}{exc.strerror or exc}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__module__ != "novajudge.errors" else text


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Inside a command: a failure reading or writing files becomes `error: ...` and exit 1.

    Typer's own exits and usage errors pass through (usage stays exit 2).
    """
    from novajudge.errors import NovaJudgeError

    try:
        yield
    except (NovaJudgeError, OSError, UnicodeDecodeError, RecursionError) as exc:
        typer.echo(f"error: {describe_failure(exc)}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    """The console script: every failure is one line on stderr (exit 1), never a traceback.

    Commands handle the failures they expect; this is the net under everything else.
    """
    _register()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        typer.echo(f"error: {describe_failure(exc)}", err=True)
        sys.exit(1)
