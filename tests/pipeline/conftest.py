"""Fixtures of the pipeline tests: moto-backed AWS, fake credentials, the Lambda environment.

Nothing here reaches AWS or the internet: credentials are fake, every client is created inside
`mock_aws`, and the SQuAD URL points at a closed local port so an accidental online fetch fails
fast into the bundled fallback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from fake_aws import fake_credentials
from moto import mock_aws
from pipeline_fakes import (
    BUCKET,
    ENDPOINT_A,
    ENDPOINT_B,
    MODEL_A,
    MODEL_B,
    REGION,
    ROLE_ARN,
    FakeTGI,
    LambdaContext,
)

from novajudge.config import Settings
from novajudge.generation.endpoints import runtime_client
from novajudge.steps.environment import GenerateEnvironment
from novajudge.steps.generate import build_run, generate


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, one region, the Lambda environment of design.md, retries without waiting."""
    for name, value in {
        **fake_credentials(REGION),
        "POWERTOOLS_SERVICE_NAME": "novajudge-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "BUCKET_NAME": BUCKET,
        "ENDPOINT_A_NAME": ENDPOINT_A,
        "ENDPOINT_B_NAME": ENDPOINT_B,
        "MODEL_A_ID": MODEL_A,
        "MODEL_B_ID": MODEL_B,
        "RUN_DEFAULTS": json.dumps(Settings().run_defaults()),
        "JUDGE_ROLE_ARN": ROLE_ARN,
        "JUDGE_INSTANCE_TYPE_RUBRIC": "ml.p5.48xlarge",
        "JUDGE_INSTANCE_TYPE_BINARY": "ml.g5.12xlarge",
        "BINARY_JUDGE_MODEL": "nova-micro",
        "JUDGE_MAX_RUNTIME_SECONDS": "14400",
        "NOVAJUDGE_RETRY_BASE_SECONDS": "0.001",
        "NOVAJUDGE_RETRY_MAX_SECONDS": "0.002",
        "NOVAJUDGE_RETRY_SEED": "7",
        "NOVAJUDGE_SQUAD_ROWS_URL": "http://127.0.0.1:9/rows",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "NOVAJUDGE_STAND_IN", "NOVAJUDGE_RECIPES_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[dict[str, Any]]:
    """moto for S3 and SageMaker, with the evaluation bucket created."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield {"s3": s3, "sagemaker": boto3.client("sagemaker", region_name=REGION)}


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def tgi(aws: dict[str, Any]) -> FakeTGI:
    """A scripted TGI endpoint behind both candidate endpoints (attached by `generate_step`)."""
    return FakeTGI()


GenerateStep = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


@pytest.fixture
def generate_step(aws: dict[str, Any], tgi: FakeTGI) -> GenerateStep:
    """The generate step as its handler runs it: environment read at the call, the Lambda's
    remaining time from the context, a sagemaker-runtime client with our timeouts behind `tgi`."""

    def run(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        env = GenerateEnvironment.from_environ(os.environ)
        runtime = tgi.attach(runtime_client(REGION, read_timeout=env.read_timeout_seconds))
        return generate(
            build_run(event, env),
            env,
            s3=aws["s3"],
            runtime=runtime,
            remaining_ms=context.get_remaining_time_in_millis(),
        )

    return run
