"""start_judge: the create_training_job request, checked against the documented contract.

The expected request is written out by hand from the public sources on Nova LLM-as-a-judge
(https://docs.aws.amazon.com/sagemaker/latest/dg/nova-judge-evaluation.html, the recipes of
https://github.com/aws/sagemaker-hyperpod-recipes), not derived from the code under test.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from conformance.official_sources import OFFICIAL_RECIPES
from pipeline_fakes import BUCKET, EXECUTION_NAME, MODEL_A, MODEL_B, REGION, ROLE_ARN, RawBody

from novajudge.errors import InvalidRunRequest, JudgeConfigError
from novajudge.judge.job import judge_job_name
from novajudge.steps.environment import StartJudgeEnvironment
from novajudge.steps.start_judge import start_judge

JOB_NAME_RE = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"


def _state(run_id: str = "exp-042", **judge: Any) -> dict[str, Any]:
    """The state after GenerateData, as the state machine passes it on."""
    return {
        "run": {
            "run_id": run_id,
            "questions": 20,
            "offset": 0,
            "dataset": {"source": "squad", "uri": None},
            "generation": {
                "max_new_tokens": 500,
                "temperature": 0.9,
                "concurrency_a": 64,
                "concurrency_b": 64,
                "max_failure_rate": 0.2,
            },
            "judge": {"variant": "rubric", "instance_type": None, "recipe_overrides": {}, **judge},
            "both_orders": True,
            "poll_seconds": 60,
            "bucket": BUCKET,
            "execution_name": EXECUTION_NAME,
            "created_at": "2026-11-23T09:58:12Z",
            "model_a": MODEL_A,
            "model_b": MODEL_B,
            "endpoint_a": "novajudge-model-a",
            "endpoint_b": "novajudge-model-b",
            "stand_in": False,
        },
        "generation": {"status": "ok", "judge_input_lines": 40, "pairs_to_judge": 20},
    }


@pytest.fixture
def sagemaker(aws: dict[str, Any]) -> Any:
    """A moto SageMaker client that also records the exact create_training_job arguments."""
    client = boto3.client("sagemaker", region_name=REGION)
    client.sent = []  # type: ignore[attr-defined]

    def record(params: dict[str, Any], **_: Any) -> None:
        client.sent.append(json.loads(json.dumps(params)))  # type: ignore[attr-defined]

    client.meta.events.register("provide-client-params.sagemaker.CreateTrainingJob", record)
    return client


@pytest.fixture
def judge_input(aws: dict[str, Any]) -> None:
    for run_id in ("exp-042",):
        aws["s3"].put_object(
            Bucket=BUCKET,
            Key=f"runs/{run_id}/input/llm_judge.jsonl",
            Body=b'{"prompt": "p", "response_A": "a", "response_B": "b"}\n',
        )


def _start(state: dict[str, Any], aws: dict[str, Any], sagemaker: Any) -> dict[str, Any]:
    """The start_judge step with the environment its handler would read now."""
    env = StartJudgeEnvironment.from_environ(os.environ)
    return start_judge(state, env, s3=aws["s3"], sagemaker=sagemaker)


def test_rubric_request_matches_the_documented_contract(aws, sagemaker, judge_input) -> None:
    judge = _start(_state(), aws, sagemaker)

    job = judge["training_job_name"]
    assert job == judge_job_name("exp-042", "rubric", "2026-11-23T09:58:12Z")
    prefix = f"s3://{BUCKET}/runs/exp-042"
    # Built from the public docs alone: image account for us-east-1, tag of the rubric judge, channels...
    expected = {
        "TrainingJobName": job,
        "RoleArn": ROLE_ARN,
        "AlgorithmSpecification": {
            "TrainingImage": "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-evaluation-repo"
            ":SM-TJ-Eval-V2-latest",
            "TrainingInputMode": "File",
        },
        "HyperParameters": {
            "model_type": "amazon.nova-2-lite-v1:0:256k",
            "base_model": "nova-lite-2/prod",
            "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/rubric_judge.yaml",
        },
        "InputDataConfig": [
            {
                "ChannelName": "recipe",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"{prefix}/recipe/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            },
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"{prefix}/input/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            },
        ],
        "OutputDataConfig": {"S3OutputPath": f"{prefix}/judge-output/"},
        "ResourceConfig": {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 14400},
        "ProfilerConfig": {"DisableProfiler": True},
        "RemoteDebugConfig": {"EnableRemoteDebug": False},
    }
    assert sagemaker.sent == [expected]
    assert len(job) <= 63
    assert __import__("re").match(JOB_NAME_RE, job)
    assert judge == {
        "training_job_name": job,
        "output_path": f"{prefix}/judge-output/{job}/output/output.tar.gz",
        "recipe_uri": f"{prefix}/recipe/rubric_judge.yaml",
        "instance_type": "ml.p5.48xlarge",
        "variant": "rubric",
        "judge_model": "nova-lite-2",
    }
    recipe = yaml.safe_load(
        aws["s3"].get_object(Bucket=BUCKET, Key="runs/exp-042/recipe/rubric_judge.yaml")["Body"].read()
    )
    # The official rubric recipe (tests/conformance/official_sources.py), named after the job.
    _, official = OFFICIAL_RECIPES[("rubric", "nova-lite-2")]
    assert recipe == {**official, "run": {**official["run"], "name": job}}
    described = sagemaker.describe_training_job(TrainingJobName=job)  # moto accepted and stored it
    assert (
        described["AlgorithmSpecification"]["TrainingImage"]
        == expected["AlgorithmSpecification"]["TrainingImage"]
    )


def test_binary_judge_with_overrides(aws, sagemaker, judge_input, monkeypatch) -> None:
    monkeypatch.setenv("BINARY_JUDGE_MODEL", "nova-lite")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    sagemaker = boto3.client("sagemaker", region_name="us-west-2")
    sent: list[dict[str, Any]] = []
    sagemaker.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(dict(params))
    )
    state = _state(
        variant="binary",
        instance_type="ml.g6.48xlarge",
        recipe_overrides={"inference.max_new_tokens": 4096, "run.replicas": 1},
    )
    judge = _start(state, aws, sagemaker)
    request = sent[0]
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-latest"
    )
    assert request["HyperParameters"] == {
        "model_type": "amazon.nova-lite-v1:0:300k",
        "base_model": "nova-lite/prod",
        "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/binary_judge.yaml",
    }
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.g6.48xlarge",
        "InstanceCount": 1,  # replicas is fixed at 1 (multi-node is not supported)
        "VolumeSizeInGB": 30,
    }
    assert judge["variant"] == "binary" and judge["judge_model"] == "nova-lite"
    body = aws["s3"].get_object(Bucket=BUCKET, Key="runs/exp-042/recipe/binary_judge.yaml")["Body"].read()
    recipe = yaml.safe_load(body)
    assert recipe["evaluation"]["task"] == "llm_judge"
    assert recipe["inference"]["max_new_tokens"] == 4096 and recipe["run"]["replicas"] == 1


def _nothing_started(aws: dict[str, Any], sagemaker: Any) -> None:
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    assert sagemaker.sent == []
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="runs/exp-042/recipe/")


def test_unknown_region_fails_before_any_call(aws, sagemaker, judge_input, monkeypatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    with pytest.raises(JudgeConfigError, match="not documented for region 'eu-central-1'"):
        _start(_state(), aws, sagemaker)
    _nothing_started(aws, sagemaker)


def test_instance_type_not_allowed_fails_before_any_call(aws, sagemaker, judge_input, monkeypatch) -> None:
    monkeypatch.setenv(
        "JUDGE_INSTANCE_TYPE_RUBRIC", "ml.g5.12xlarge"
    )  # a deployment default the judge refuses
    with pytest.raises(
        JudgeConfigError, match=r"instance type 'ml.g5.12xlarge' is not supported by the rubric judge"
    ):
        _start(_state(), aws, sagemaker)
    _nothing_started(aws, sagemaker)


def test_instance_type_in_the_state_is_checked_too(aws, sagemaker, judge_input) -> None:
    with pytest.raises(InvalidRunRequest, match=r"judge.instance_type='ml.g5.12xlarge' is not supported"):
        _start(_state(instance_type="ml.g5.12xlarge"), aws, sagemaker)
    _nothing_started(aws, sagemaker)


def test_binary_model_narrows_instance_types(aws, sagemaker, judge_input, monkeypatch) -> None:
    monkeypatch.setenv("BINARY_JUDGE_MODEL", "nova-pro")  # Nova Pro runs only on ml.p5.48xlarge
    with pytest.raises(JudgeConfigError, match="nova-pro"):
        _start(_state(variant="binary", instance_type="ml.g5.12xlarge"), aws, sagemaker)
    _nothing_started(aws, sagemaker)


def test_missing_judge_input_starts_nothing(aws, sagemaker) -> None:
    with pytest.raises(JudgeConfigError, match=r"llm_judge\.jsonl is missing"):
        _start(_state(), aws, sagemaker)
    _nothing_started(aws, sagemaker)


def test_bad_state_is_refused(aws, sagemaker) -> None:
    state = _state()
    del state["run"]["bucket"]
    with pytest.raises(InvalidRunRequest, match="bucket"):
        _start(state, aws, sagemaker)


def _refuse_duplicate_names(sagemaker: Any) -> list[str]:
    """SageMaker refuses a second job of the same name (moto silently replaces it): answer like AWS.

    `before-call` short-circuits the request, so moto never sees the refused call.
    """
    created: list[str] = []

    def before_call(params: dict[str, Any], **_: Any) -> Any:
        name = json.loads(params["body"])["TrainingJobName"]  # the serialized request
        if name not in created:
            created.append(name)
            return None  # let moto create it
        error = {"Code": "ResourceInUse", "Message": f"Training job {name} already exists"}
        http = AWSResponse("https://api.sagemaker.us-east-1.amazonaws.com/", 400, {}, RawBody(b""))
        return http, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    sagemaker.meta.events.register_first("before-call.sagemaker.CreateTrainingJob", before_call)
    return created


def test_retried_start_returns_the_same_job(aws, sagemaker, judge_input) -> None:
    created = _refuse_duplicate_names(sagemaker)
    first = _start(_state(), aws, sagemaker)
    second = _start(_state(), aws, sagemaker)  # a Step Functions retry after a lost reply
    assert first == second and len(sagemaker.sent) == 2 and len(created) == 1
    assert len(sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 1


def test_name_clash_with_another_job_is_a_clear_error(aws, sagemaker, judge_input) -> None:
    _refuse_duplicate_names(sagemaker)
    _start(_state(), aws, sagemaker)
    other_bucket_state = _state()
    other_bucket_state["run"]["bucket"] = "another-bucket"  # same name, different run: not ours
    aws["s3"].create_bucket(Bucket="another-bucket")
    aws["s3"].put_object(Bucket="another-bucket", Key="runs/exp-042/input/llm_judge.jsonl", Body=b"{}\n")
    with pytest.raises(JudgeConfigError, match="ResourceInUse"):
        _start(other_bucket_state, aws, sagemaker)


def test_job_name_is_valid_and_unique_per_run() -> None:
    long_id = "a" * 40 + "-" * 3 + "b" * 21  # 64 characters, the longest run id
    names = {
        judge_job_name(long_id, v, t) for v in ("rubric", "binary") for t in ("2026-01-01T00:00:00Z", "x")
    }
    assert len(names) == 4
    for name in names:
        assert len(name) <= 63 and __import__("re").match(JOB_NAME_RE, name)
    assert judge_job_name("r", "rubric", "t") == judge_job_name("r", "rubric", "t")
