"""`novajudge stop RUN_ID`: stop a run and everything of it that still bills (`novajudge.ops.stop`).

Exit 0 when the execution is stopped (or had ended) and nothing of the run is left running; exit 1
naming what could not be stopped and SageMaker's or Step Functions' reason.
"""

from __future__ import annotations

import typer

from novajudge.cli.app import app
from novajudge.cli.ops_cmd import PREFIX, PROFILE, REGION, deployed, err
from novajudge.ops.stop import stop_run


@app.command()
def stop(
    run_id: str = typer.Argument(..., help="Run id (the execution name)."),
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Stop a run: its execution, its judge training job and (per-run mode) its endpoints."""
    with deployed(profile, region, prefix, run_id) as (console, ctx, deployment):
        outcome = stop_run(
            sfn=ctx.aws.client("stepfunctions"),
            s3=ctx.aws.client("s3"),
            sagemaker=ctx.aws.client("sagemaker"),
            deployment=deployment,
            settings=ctx.settings,
            region=ctx.aws.region_name,
            run_id=run_id,
        )
        report = outcome.cleanup
        if outcome.execution_stopped:
            console.print(f"execution {run_id}: stopped (was RUNNING)")
        else:
            console.print(f"execution {run_id}: already {outcome.status_before}")
        for job in report.stopped_jobs:
            console.print(f"judge training job {job}: stopped")
        for job, status in report.ended_jobs.items():
            console.print(f"judge training job {job}: already {status}")
        for name in report.deleted_endpoints:
            console.print(f"endpoint {name}: deleted")
        if report.note:
            console.print(report.note, markup=False)
        if not (report.stopped_jobs or report.deleted_endpoints or outcome.execution_stopped):
            console.print("nothing of this run was still running")
        if report.record_uri:
            console.print(f"recorded in {report.record_uri}")
        if not outcome.ok:
            for problem in outcome.problems():
                err().print(f"error: not stopped: {problem}", markup=False)
            raise typer.Exit(1)
