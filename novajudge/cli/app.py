"""The `novajudge` command: one Typer app; each command lives in its own module under cli/.

Exit codes: 0 success, 1 failure, 2 bad usage (Typer/Click's own convention for usage errors).
"""

from __future__ import annotations

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


def main() -> None:
    _register()
    app()
