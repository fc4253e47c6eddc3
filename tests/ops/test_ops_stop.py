"""`novajudge stop RUN_ID`: what it prints and its exit codes (the phases: tests/e2e/test_per_run.py)."""

from __future__ import annotations

import json

import boto3
from ops_helpers import ACCOUNT, REGION, Deployed
from typer.testing import CliRunner

from novajudge.cli.app import _register, app
from novajudge.local import moto_patches

_register()
runner = CliRunner()


def _finished_run(deployed: Deployed, run_id: str) -> None:
    deployed.use_definition("success", wait_seconds=0)
    result = runner.invoke(app, ["start", "--run-id", run_id])
    assert result.exit_code == 0, result.output
    deployed.wait_finished(run_id)


def _running_judge(deployed: Deployed, run_id: str) -> str:
    """The run's record and an InProgress judge job writing under the run, as start_judge leaves them."""
    record = {"run_id": run_id, "execution_name": run_id, "created_at": "2026-11-30T10:00:00Z",
              "judge": {"variant": "rubric"}}  # fmt: skip
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=deployed.bucket, Key=f"runs/{run_id}/request.json", Body=json.dumps(record).encode())
    from novajudge.judge.job import judge_job_name

    name = judge_job_name(run_id, "rubric", record["created_at"])  # the name start_judge gives it
    boto3.client("sagemaker", region_name=REGION).create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": "x.dkr.ecr.us-east-1.amazonaws.com/nova:1",
            "TrainingInputMode": "File",
        },
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/judge",
        OutputDataConfig={"S3OutputPath": f"s3://{deployed.bucket}/runs/{run_id}/judge-output/"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[ACCOUNT][REGION].training_jobs[name].training_job_status = "InProgress"
    return name


def test_stop_unknown_run_is_a_usage_error(deployed: Deployed) -> None:
    result = runner.invoke(app, ["stop", "never-ran"])
    assert result.exit_code == 2, result.output
    assert "no run 'never-ran'" in result.output


def test_stop_a_finished_run_stops_its_running_judge_and_says_so(deployed: Deployed) -> None:
    _finished_run(deployed, "s-done")
    job = _running_judge(deployed, "s-done")
    result = runner.invoke(app, ["stop", "s-done"])
    assert result.exit_code == 0, result.output
    assert "execution s-done: already SUCCEEDED" in result.output
    assert f"judge training job {job}: stopped" in result.output
    assert f"recorded in s3://{deployed.bucket}/runs/s-done/cleanup.json" in result.output
    status = boto3.client("sagemaker", region_name=REGION).describe_training_job(TrainingJobName=job)
    assert status["TrainingJobStatus"] == "Stopped"
    again = runner.invoke(app, ["stop", "s-done"])  # idempotent
    assert again.exit_code == 0 and f"judge training job {job}: already Stopped" in again.output


def test_stop_exits_1_naming_what_could_not_be_stopped(deployed: Deployed) -> None:
    _finished_run(deployed, "s-denied")
    job = _running_judge(deployed, "s-denied")
    moto_patches.registry.describe_job_denied.add("s-denied")
    try:
        result = runner.invoke(app, ["stop", "s-denied"])
    finally:
        moto_patches.registry.describe_job_denied.discard("s-denied")
    assert result.exit_code == 1, result.output
    assert (
        f"error: not stopped: training job {job}: could not describe: AccessDeniedException" in result.output
    )
