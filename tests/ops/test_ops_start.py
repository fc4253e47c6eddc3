"""`novajudge start`: validation before anything starts, and --wait through to the headline."""

from __future__ import annotations

import json
import re

import pytest
from ops_helpers import SUMMARY, Deployed
from typer.testing import CliRunner

from novajudge.cli.app import _register, app

_register()
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_start_wait_follows_to_headline(deployed: Deployed) -> None:
    deployed.put_results("r1", SUMMARY, ("details.parquet", "report.png", "report.html"))
    result = invoke("start", "--questions", "3", "--run-id", "r1", "--wait", "--refresh-seconds", "0.05")
    assert result.exit_code == 0, result.output
    assert "Started run r1" in result.output
    assert (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"
        f"{deployed.state_machine_arn.replace(':stateMachine:', ':execution:')}:r1" in result.output
    )
    assert "WaitForJudge" in result.output  # the follower saw the run in flight
    assert SUMMARY["headline"] in result.output
    (ex,) = deployed.executions()
    assert ex["name"] == "r1" and ex["status"] == "SUCCEEDED"
    sent = json.loads(
        deployed.client("stepfunctions").describe_execution(executionArn=ex["executionArn"])["input"]
    )
    assert sent == {"run_id": "r1", "questions": 3}


def test_start_without_wait_prints_id_and_link(deployed: Deployed) -> None:
    result = invoke("start", "--judge", "binary", "--dataset", "squad-sample", "--offset", "2", "-n", "5")
    assert result.exit_code == 0, result.output
    (ex,) = deployed.executions()
    assert ex["name"].startswith("run-2")
    assert f"Started run {ex['name']}" in result.output
    assert "#/v2/executions/details/arn:aws:states:us-east-1:" in result.output
    sent = json.loads(
        deployed.client("stepfunctions").describe_execution(executionArn=ex["executionArn"])["input"]
    )
    assert sent["judge"] == {"variant": "binary"}
    assert sent["dataset"] == {"source": "squad-sample"}
    assert (sent["offset"], sent["questions"]) == (2, 5)


def test_start_with_readable_s3_dataset(deployed: Deployed) -> None:
    deployed.client("s3").put_object(
        Bucket=deployed.bucket, Key="datasets/prompts.jsonl", Body=b'{"prompt": "x"}\n'
    )
    uri = f"s3://{deployed.bucket}/datasets/prompts.jsonl"
    result = invoke("start", "--dataset", uri, "--run-id", "withdata")
    assert result.exit_code == 0, result.output
    (ex,) = deployed.executions()
    sent = json.loads(
        deployed.client("stepfunctions").describe_execution(executionArn=ex["executionArn"])["input"]
    )
    assert sent["dataset"] == {"source": "s3", "uri": uri}


def test_start_wait_reports_failure_with_exit_1(deployed: Deployed, failing_lambda: None) -> None:
    deployed.use_definition("lambda_failure")
    result = invoke("start", "--run-id", "bad1", "--wait", "--refresh-seconds", "0.05")
    assert result.exit_code == 1, result.output
    assert "Run bad1 FAILED in GenerateData: GenerationFailed" in result.output
    assert "cause: GenerationFailed: too many generations failed" in result.output
    assert "stackTrace" not in result.output
    assert "novajudge logs bad1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--questions", "0"), "questions"),
        (("--questions", "-3"), "questions"),
        (("--judge", "pairwise"), "'pairwise' is not one of"),
        (("--run-id", "bad_id!"), "run id 'bad_id!' is not allowed"),
        (("--run-id", "-leading"), "is not allowed"),
        (("--run-id", "x" * 65), "is not allowed"),
        (("--dataset", "hf://squad"), "expected one of squad, squad-sample"),
        (
            ("--dataset", "s3://novajudge-storage-bucket/datasets/missing.jsonl"),
            "cannot read it (no such object)",
        ),
        (("--dataset", "s3://no-such-bucket-here/datasets/x.jsonl"), "reads user datasets only from"),
        (("--dataset", "s3://novajudge-storage-bucket/in/x.jsonl"), "plain path under datasets/"),
        (
            ("--dataset", "s3://novajudge-storage-bucket/datasets/../runs/x.jsonl"),
            "plain path under datasets/",
        ),
        (("--poll-seconds", "0"), "poll_seconds=0"),
        (("--poll-seconds", "1"), "poll_seconds=1 with"),
        (("--dataset", "s3://bucket/not-jsonl.csv"), "expected s3://<bucket>/<key>.jsonl"),
        (("--dataset", "squad-sample", "--offset", "15", "-n", "10"), "the bundled sample has 20 rows"),
        (("--offset", "-1"), "offset"),
        (("--poll-seconds", "99999"), "poll_seconds"),
        (("--prefix", "bad-prefix!"), "--prefix"),
    ],
)
def test_start_bad_input_exits_2_and_starts_nothing(
    deployed: Deployed, args: tuple[str, ...], message: str
) -> None:
    result = invoke("start", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert deployed.executions() == []


def test_start_refuses_existing_run(deployed: Deployed) -> None:
    assert invoke("start", "--run-id", "dup").exit_code == 0
    deployed.wait_finished("dup")
    result = invoke("start", "--run-id", "dup")
    assert result.exit_code == 2
    assert "run 'dup' already exists" in result.output
    assert len(deployed.executions()) == 1


def test_start_refuses_run_whose_objects_exist(deployed: Deployed) -> None:
    deployed.client("s3").put_object(Bucket=deployed.bucket, Key="runs/old/request.json", Body=b"{}")
    result = invoke("start", "--run-id", "old")
    assert result.exit_code == 2 and "already exists" in result.output
    assert deployed.executions() == []


def test_start_without_deployment_fails_clearly(deployed: Deployed) -> None:
    result = invoke("start", "--prefix", "Elsewhere")
    assert result.exit_code == 1
    assert "stack 'Elsewhere-Storage' is not deployed" in result.output


def test_follow_on_a_terminal_uses_a_live_view(deployed: Deployed) -> None:
    import io

    from rich.console import Console

    from novajudge.ops.follow import follow

    deployed.use_definition("success", wait_seconds=0)
    assert invoke("start", "--run-id", "tty").exit_code == 0
    deployed.wait_finished("tty")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    s3, sfn = deployed.client("s3"), deployed.client("stepfunctions")
    run = follow(sfn, s3, deployed.bucket, deployed.state_machine_arn, "tty", defaults={}, console=console,
                 sleep=lambda _: None)  # fmt: skip
    assert run.status == "SUCCEEDED"
    text = buffer.getvalue()
    assert "SUCCEEDED" in text and "Done" in text


def test_start_refused_when_the_judge_quota_is_zero(deployed: Deployed) -> None:
    from novajudge.local import moto_patches

    judge_type = deployed.settings.resolved_judge_instance_type()
    name = f"{judge_type} for training job usage"
    moto_patches.registry.service_quotas["sagemaker"] = {name: 0.0}
    result = invoke("start", "--run-id", "quota0")
    assert result.exit_code == 1, result.output
    assert f"SageMaker quota '{name}' is 0 in us-east-1; this run needs 1" in result.output
    assert "request-service-quota-increase" in result.output and "--desired-value 1" in result.output
    assert "nothing was started" in result.output
    assert deployed.executions() == []


def test_start_proceeds_when_the_quota_is_enough(deployed: Deployed) -> None:
    from novajudge.local import moto_patches

    judge_type = deployed.settings.resolved_judge_instance_type()
    moto_patches.registry.service_quotas["sagemaker"] = {f"{judge_type} for training job usage": 2.0}
    result = invoke("start", "--run-id", "quota2")
    assert result.exit_code == 0, result.output
    assert "SageMaker quota" not in result.output and "warning" not in result.output
    assert [e["name"] for e in deployed.executions()] == ["quota2"]


def test_per_run_needs_both_endpoint_instances() -> None:
    from novajudge.config import Settings
    from novajudge.ops.quotas import run_needs

    persistent = run_needs(Settings(), "ml.p5.48xlarge")
    assert [(n.name, n.needed) for n in persistent] == [("ml.p5.48xlarge for training job usage", 1)]
    per_run = run_needs(Settings(endpoints_mode="per_run"), "ml.p5.48xlarge")
    assert [(n.name, n.needed) for n in per_run] == [
        ("ml.p5.48xlarge for training job usage", 1),
        ("ml.g5.12xlarge for endpoint usage", 2),
    ]


def test_resume_starts_a_new_execution_of_the_existing_run(deployed: Deployed) -> None:
    deployed.client("s3").put_object(Bucket=deployed.bucket, Key="runs/halfway/request.json", Body=b"{}")
    result = invoke("start", "--resume", "halfway")
    assert result.exit_code == 0, result.output
    assert "Resumed run halfway" in result.output
    (execution,) = deployed.executions()
    assert re.fullmatch(r"halfway-resume-\d{14}", execution["name"]), execution["name"]
    described = deployed.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"run_id": "halfway", "resume": True}


def test_resume_refuses_a_run_that_does_not_exist(deployed: Deployed) -> None:
    result = invoke("start", "--resume", "never-started")
    assert result.exit_code == 2, result.output
    assert "run 'never-started' has nothing to resume" in " ".join(result.output.split())
    assert deployed.executions() == []


def test_start_warns_when_the_judge_cannot_finish(deployed: Deployed) -> None:
    # 2,000 questions, one order, rubric on ml.p5.48xlarge (assumed 6 lines/min, 15 start-up min):
    # 15 + 2000 / 6 = 348 min, over judge_max_runtime_seconds 14,400 s (240 min); (240 − 15) × 6 =
    # 1,350 lines fit. A warning (the judge's speed is assumed), the run still starts.
    result = invoke("start", "-n", "2000", "--judge", "rubric", "--run-id", "big")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "WARNING: the judge job cannot finish: 2000 lines at 6 lines/min" in out
    assert "take 348 min" in out and "use at most 1350 questions" in out
    assert out.index("WARNING") < out.index("Started run big")
    small = invoke("start", "-n", "20", "--judge", "rubric", "--run-id", "small")
    assert small.exit_code == 0 and "WARNING" not in small.output


def test_a_resumed_run_is_followed_stopped_and_shown_by_its_newest_execution(deployed: Deployed) -> None:
    """After `start --resume`, the run's commands act on the resume, not the first execution."""
    from novajudge.ops import runs

    sfn, s3, machine = deployed.client("stepfunctions"), deployed.client("s3"), deployed.state_machine_arn
    # Executions stay RUNNING until stopped (an hour's Wait), so which one `stop` hits is visible.
    deployed.use_definition("success", wait_seconds=3600)
    s3.put_object(Bucket=deployed.bucket, Key="runs/again/request.json", Body=b"{}")
    first = deployed.start_waiting("again", json.dumps({"run_id": "again", "questions": 7}))
    sfn.stop_execution(executionArn=first, error="StoppedByUser")
    assert deployed.wait_finished("again") == "ABORTED"
    # Another run started after it, whose name only starts like this one's.
    other = deployed.start_waiting("again-other")
    resumed = deployed.until_waiting(runs.resume_run(sfn, s3, machine, deployed.bucket, "again"))

    run = runs.describe_run(sfn, deployed.state_machine_arn, "again")
    assert run.run_id == "again" and run.execution_arn == resumed and run.status == "RUNNING"
    assert run.execution_name.startswith("again-resume-")
    assert run.input == {"run_id": "again", "questions": 7}  # the request the run was started with
    assert runs.run_of_execution(run.execution_name) == "again"
    assert runs.run_of_execution("again-other") == "again-other"

    stopped = invoke("stop", "again")
    assert stopped.exit_code == 0, stopped.output
    assert deployed.wait_finished(run.execution_name) == "ABORTED"  # the resume was stopped
    statuses = {e["name"]: e["status"] for e in deployed.executions()}
    assert statuses["again-other"] == "RUNNING"  # nothing else was
    sfn.stop_execution(executionArn=other)


def test_resume_wait_follows_the_resumed_execution_to_its_headline(deployed: Deployed) -> None:
    sfn = deployed.client("stepfunctions")
    deployed.use_definition("success", wait_seconds=3600)
    sfn.stop_execution(executionArn=deployed.start_waiting("r2"), error="StoppedByUser")
    assert deployed.wait_finished("r2") == "ABORTED"
    deployed.use_definition("success")  # the resume passes through (a one-second Wait)
    deployed.client("s3").put_object(Bucket=deployed.bucket, Key="runs/r2/request.json", Body=b"{}")
    deployed.put_results("r2", SUMMARY, ("details.parquet", "report.png", "report.html"))
    result = invoke("start", "--resume", "r2", "--wait", "--refresh-seconds", "0.05")
    assert result.exit_code == 0, result.output
    assert "Resumed run r2" in result.output and SUMMARY["headline"] in result.output
    statuses = {e["name"]: e["status"] for e in deployed.executions()}
    (resume,) = [n for n in statuses if n.startswith("r2-resume-")]
    assert statuses == {"r2": "ABORTED", resume: "SUCCEEDED"}
