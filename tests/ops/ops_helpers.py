"""Builders for the operating-command tests: a fake deployment in moto (in-process).

A uniquely named module (not `conftest`), so test files can import it whatever other test
folders' conftest modules are loaded.

The three stacks' Outputs are registered with `register_stack_outputs`; the bucket and a small
state machine with the pipeline's state names are created directly. The state machine really
executes (moto's Step Functions interpreter), so `start --wait` follows a real execution.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from novajudge.config import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"
REPO = Path(__file__).resolve().parents[2]
ROLE = f"arn:aws:iam::{ACCOUNT}:role/states"
GENERATE_FN = "NovaJudge-generate"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint"

#: A summary.json in the shape `novajudge.results.summarize` writes (only the keys the CLI reads).
SUMMARY: dict[str, Any] = {
    "schema_version": 1,
    "headline": "B (Qwen/Qwen2.5-7B-Instruct) is preferred. B won 12, A won 6, 2 ties of 20.",
    "verdict": "B",
    "models": {"A": "Qwen/Qwen2.5-1.5B-Instruct", "B": "Qwen/Qwen2.5-7B-Instruct"},
    "ours": {"win_rate_b_decided": 0.6667},
    "judge": {"winrate": 0.61},
}

MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def definition(kind: str = "success", wait_seconds: int = 1) -> dict[str, Any]:
    """Tiny stand-ins of the pipeline: same state names, no real work.

    success: passes through the states (with a short Wait so a follower sees it running).
    lambda_failure: GenerateData invokes a Lambda that fails → GenerationFailed.
    judge_failure: DescribeJudgeJob asks SageMaker about a job the test marks Failed → JudgeJobFailed.
    """
    fail = {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"}
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": "{}"}]
    if kind == "success":
        return {
            "StartAt": "GenerateData",
            "States": {
                "GenerateData": {"Type": "Pass", "Next": "WaitForJudge"},
                "WaitForJudge": {"Type": "Wait", "Seconds": wait_seconds, "Next": "SummarizeResults"},
                "SummarizeResults": {"Type": "Pass", "Next": "Done"},
                "Done": {"Type": "Pass", "Result": {"headline": "from the execution output"}, "End": True},
            },
        }
    if kind == "lambda_failure":
        return {
            "StartAt": "GenerateData",
            "States": {
                "GenerateData": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {
                        "FunctionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{GENERATE_FN}",
                        "Payload": {"input.$": "$", "execution_name.$": "$$.Execution.Name"},
                    },
                    "Catch": [{**catch[0], "Next": "GenerationFailed"}],
                    "End": True,
                },
                "GenerationFailed": {**fail, "Error": "GenerationFailed", "ErrorPath": None},
            },
        }
    if kind == "judge_failure":
        return {
            "StartAt": "GenerateData",
            "States": {
                "GenerateData": {"Type": "Pass", "Next": "StartJudgeJob"},
                "StartJudgeJob": {
                    "Type": "Pass",
                    "Parameters": {"training_job_name.$": "States.Format('{}-judge', $$.Execution.Name)"},
                    "ResultPath": "$.judge",
                    "Next": "DescribeJudgeJob",
                },
                "DescribeJudgeJob": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
                    "Parameters": {"TrainingJobName.$": "$.judge.training_job_name"},
                    "ResultPath": "$.judge_status",
                    "Next": "JudgeFinished?",
                },
                "JudgeFinished?": {
                    "Type": "Choice",
                    "Choices": [
                        {
                            "Variable": "$.judge_status.TrainingJobStatus",
                            "StringEquals": "Completed",
                            "Next": "Done",
                        }
                    ],
                    "Default": "JudgeJobFailed",
                },
                "JudgeJobFailed": {
                    "Type": "Fail",
                    "Error": "JudgeJobFailed",
                    "CausePath": "$.judge_status.FailureReason",
                },
                "Done": {"Type": "Succeed"},
            },
        }
    raise ValueError(kind)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_clean(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


@dataclass
class Deployed:
    """Handles on the fake deployment for assertions."""

    settings: Settings
    bucket: str
    state_machine_arn: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> Any:
        if name not in self.clients:
            self.clients[name] = boto3.client(name, region_name=REGION)
        return self.clients[name]

    def executions(self) -> list[dict[str, Any]]:
        return self.client("stepfunctions").list_executions(stateMachineArn=self.state_machine_arn)[
            "executions"
        ]

    def use_definition(self, kind: str, **kwargs: Any) -> None:
        self.client("stepfunctions").update_state_machine(
            stateMachineArn=self.state_machine_arn, definition=json.dumps(_clean(definition(kind, **kwargs)))
        )

    def start_waiting(self, name: str, execution_input: str = "{}") -> str:
        """Start an execution; its ARN once it waits in WaitForJudge (see `until_waiting`)."""
        sfn = self.client("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=execution_input)
        return self.until_waiting(str(arn["executionArn"]))

    def until_waiting(self, arn: str, timeout: float = 20.0) -> str:
        """`arn` once its execution entered the Wait state: moto cannot stop an execution whose
        worker has not begun yet."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
            if any(e["type"] == "WaitStateEntered" for e in events):
                return arn
            time.sleep(0.02)
        raise AssertionError(f"execution {arn} did not reach its Wait state in {timeout}s")

    def put_results(self, run_id: str, summary: dict[str, Any], files: tuple[str, ...] = ()) -> None:
        s3 = self.client("s3")
        s3.put_object(
            Bucket=self.bucket, Key=f"runs/{run_id}/results/summary.json", Body=json.dumps(summary).encode()
        )
        for name in files:
            s3.put_object(Bucket=self.bucket, Key=f"runs/{run_id}/results/{name}", Body=f"<{name}>".encode())

    def wait_finished(self, run_id: str, timeout: float = 20.0) -> str:
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.client("stepfunctions").describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                return str(status)
            time.sleep(0.05)
        raise AssertionError(f"execution {run_id} still running after {timeout}s")


def make_failed_training_job(name: str, reason: str, log_lines: list[str]) -> None:
    """A judge training job that failed with `reason`, and its CloudWatch stream `<job>/algo-1-*`."""
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": "x.dkr.ecr.us-east-1.amazonaws.com/nova:1",
            "TrainingInputMode": "File",
        },
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/judge",
        OutputDataConfig={"S3OutputPath": "s3://novajudge-storage-bucket/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    from moto.sagemaker.models import sagemaker_backends

    job = sagemaker_backends[ACCOUNT][REGION].training_jobs[name]
    job.training_job_status = "Failed"
    job.failure_reason = reason
    if log_lines:
        put_log_lines("/aws/sagemaker/TrainingJobs", f"{name}/algo-1-1763890000", log_lines)


def put_log_lines(group: str, stream: str, lines: list[str]) -> None:
    logs = boto3.client("logs", region_name=REGION)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def register_stack_outputs(cfn: Any, stack_name: str, outputs: dict[str, str]) -> str:
    """Create a stack holding only literal `outputs`, so `describe_stacks` answers as after a deploy.

    The tests create resources directly in moto rather than through CloudFormation. moto ignores
    `AWS::CloudFormation::WaitConditionHandle` (one of its "null" resource types, with a UserWarning
    we silence), which makes it the cheapest placeholder a template must have. An existing stack of
    that name is replaced. Returns the stack id.
    """
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Outputs of {stack_name} registered by the operating-command tests",
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": str(value)} for key, value in outputs.items()},
    }
    with contextlib.suppress(ClientError):
        cfn.delete_stack(StackName=stack_name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*WaitConditionHandle.*")
        return str(cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))["StackId"])
