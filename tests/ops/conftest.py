"""Fixtures: a deployed Nova Judge stack in moto (in-process), as the operating commands see it.

The three stacks' Outputs are registered with `register_stack_outputs`; the bucket and a small
state machine with the pipeline's state names are created directly (see `ops_helpers`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fake_aws import fake_credentials
from moto import mock_aws
from ops_helpers import (
    ACCOUNT,
    ENDPOINT_ARN,
    MOTO_CONFIG,
    REGION,
    REPO,
    ROLE,
    Deployed,
    _clean,
    definition,
    register_stack_outputs,
)

from novajudge.config import Settings
from novajudge.local import moto_patches


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, a region, no custom endpoint, and the repository's cdk.json."""
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in fake_credentials(REGION).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NOVAJUDGE_CDK_JSON", str(REPO / "cdk.json"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def deployed(aws_env: None) -> Iterator[Deployed]:
    settings = Settings.from_cdk_json(REPO / "cdk.json")
    names = settings.stack_names()
    moto_patches.install()  # ListServiceQuotas (the start command's quota pre-flight)
    judge_type = settings.resolved_judge_instance_type()
    moto_patches.registry.service_quotas["sagemaker"] = {f"{judge_type} for training job usage": 1.0}
    with mock_aws(config=MOTO_CONFIG):
        bucket = "novajudge-storage-bucket"
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name=f"{settings.stack_prefix}-Pipeline-StateMachine",
            definition=json.dumps(_clean(definition("success"))),
            roleArn=ROLE,
        )["stateMachineArn"]
        cfn = boto3.client("cloudformation", region_name=REGION)
        register_stack_outputs(
            cfn,
            names["storage"],
            {"BucketName": bucket, "JudgeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/judge"},
        )
        register_stack_outputs(
            cfn,
            names["endpoints"],
            {
                "EndpointAName": settings.endpoint_name("A"),
                "EndpointBName": settings.endpoint_name("B"),
                "EndpointAArn": f"{ENDPOINT_ARN}/{settings.endpoint_name('A')}",
                "EndpointBArn": f"{ENDPOINT_ARN}/{settings.endpoint_name('B')}",
            },
        )
        register_stack_outputs(cfn, names["pipeline"], {"StateMachineArn": arn})
        yield Deployed(settings=settings, bucket=bucket, state_machine_arn=arn)
    moto_patches.registry.service_quotas.clear()


@pytest.fixture
def failing_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's docker-less Lambda fail like a handler raising `GenerationFailed`.

    moto's simple Lambda always succeeds; the real service marks a handler exception with the
    `X-Amz-Function-Error: Unhandled` header and an `errorType`/`errorMessage` body, which is what
    Step Functions turns into a TaskFailed with that error name.
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any):
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": "GenerationFailed",
                "errorMessage": "too many generations failed: 9 of 10 (limit 0.2)",
                "stackTrace": ['  File "/var/task/handler.py", line 88, in handler'],
            }
        ).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
