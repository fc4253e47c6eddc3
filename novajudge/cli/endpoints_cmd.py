"""`novajudge endpoints down|up`: destroy or redeploy only the endpoints stack (the hourly cost)."""

from __future__ import annotations

import typer

from novajudge.cli.app import app
from novajudge.cli.ops_cmd import PREFIX, PROFILE, REGION, err, handle_errors, out
from novajudge.ops import endpoints_cdk
from novajudge.ops.context import load_settings, repo_root

endpoints_app = typer.Typer(
    help="Stop (down) or restart (up) the two candidate endpoints; results and the pipeline stay.",
    no_args_is_help=True,
)
app.add_typer(endpoints_app, name="endpoints")

#: The process runner; tests replace it to check the command line without running the CDK CLI.
RUNNER: endpoints_cdk.Runner = endpoints_cdk.subprocess_runner

DRY_RUN = typer.Option(False, "--dry-run", help="Print the CDK command instead of running it.")


def _run(action: endpoints_cdk.Action, dry_run: bool, profile: str | None, region: str | None,
         prefix: str | None) -> None:  # fmt: skip
    console = out()
    with handle_errors():
        settings = load_settings(prefix)
        stack = settings.stack_names()["endpoints"]
        invocation = endpoints_cdk.cdk_invocation(
            action, stack, repo_root(), prefix=prefix, profile=profile, region=region
        )
        console.print(f"{'would run' if dry_run else 'running'}: {invocation.shell()}  (in {invocation.cwd})")
        if dry_run:
            return
        code = endpoints_cdk.run(invocation, RUNNER)
    if code != 0:
        err().print(f"error: the CDK CLI exited with {code}")
        raise typer.Exit(1)
    if action == "down":
        console.print(
            f"{stack} destroyed: the endpoints no longer bill. Bring them back with `novajudge endpoints up`."
        )
    else:
        console.print(f"{stack} deployed: the endpoints bill every hour until `novajudge endpoints down`.")


@endpoints_app.command()
def down(
    dry_run: bool = DRY_RUN,
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Destroy the endpoints stack (`cdk destroy <prefix>-Endpoints --force`); results stay in S3.

    Runs in progress that still need the endpoints (GenerateChunks) will fail; later ones will not.
    """
    _run("down", dry_run, profile, region, prefix)


@endpoints_app.command()
def up(
    dry_run: bool = DRY_RUN,
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Deploy the endpoints stack again (`cdk deploy <prefix>-Endpoints`); it bills hourly."""
    _run("up", dry_run, profile, region, prefix)
