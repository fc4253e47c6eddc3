"""Fixtures of the pipeline tests: moto-backed AWS, fake credentials, the Lambda environment.

Nothing here reaches AWS or the internet: credentials are fake, every client is created inside
`mock_aws`, and the SQuAD URL points at a closed local port so an accidental online fetch fails
fast into the bundled fallback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pipeline_fakes import (  # noqa: E402
    BUCKET,
    ENDPOINT_A,
    ENDPOINT_B,
    MODEL_A,
    MODEL_B,
    REGION,
    ROLE_ARN,
    FakeTGI,
    load_handler,
)

from novajudge.config import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, one region, the Lambda environment of design.md, retries without waiting."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
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


@dataclass
class LambdaContext:
    """The attributes Powertools reads from the real Lambda context."""

    function_name: str = "NovaJudge-Pipeline-Generate"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:NovaJudge-Pipeline-Generate"
    aws_request_id: str = "8f5d1f4e-3c2b-4a1d-9e8f-7a6b5c4d3e2f"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def tgi(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> FakeTGI:
    """A FakeTGI attached to every sagemaker-runtime client the code under test creates."""
    from novajudge.generation import endpoints

    fake = FakeTGI()
    original = endpoints.runtime_client
    # Import the handler before patching: a first import inside the patch would bind `patched` as
    # the handler's own `runtime_client`, and monkeypatch would "restore" it to the patch.
    gen_handler = load_handler("generate")

    def patched(*args: Any, **kwargs: Any) -> Any:
        return fake.attach(original(*args, **kwargs))

    monkeypatch.setattr(endpoints, "runtime_client", patched)
    monkeypatch.setattr(gen_handler, "runtime_client", patched)
    return fake
