"""Smoke tests of the moto patches: if moto changes under us, these fail first and say where."""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from novajudge.local import moto_patches
from novajudge.local.emulator import Emulator, local_aws
from novajudge.local.moto_patches import EndpointFailure, LambdaSource, TrainingJobRequest

HANDLER = """
import os


class StandInBoom(Exception):
    pass


def handler(event, context):
    if event.get("fail"):
        raise StandInBoom("asked to fail: " + os.environ["GREETING"])
    return {"greeting": os.environ["GREETING"], "name": context.function_name, "echo": event}
"""

ROLE_DOC = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.txt", "code runs from source")
    return buf.getvalue()


@pytest.fixture()
def emu() -> Emulator:
    with local_aws() as emulator:
        yield emulator


def _function(emu: Emulator, tmp_path: Path) -> str:
    (tmp_path / "handler.py").write_text(HANDLER)
    role = emu.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=ROLE_DOC)["Role"]["Arn"]
    arn = emu.client("lambda").create_function(
        FunctionName="fn",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Environment={"Variables": {"GREETING": "hello"}},
    )["FunctionArn"]
    moto_patches.registry.functions["fn"] = LambdaSource(tmp_path, "handler.handler")
    return arn


def test_version_is_pinned() -> None:
    import moto

    assert moto.__version__ == moto_patches.MOTO_VERSION


def test_lambda_runs_real_handler_with_its_environment(emu: Emulator, tmp_path: Path) -> None:
    _function(emu, tmp_path)
    resp = emu.client("lambda").invoke(FunctionName="fn", Payload=json.dumps({"x": 1}))
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"greeting": "hello", "name": "fn", "echo": {"x": 1}}
    resp = emu.client("lambda").invoke(FunctionName="fn", Payload=json.dumps({"fail": True}))
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "StandInBoom" and "hello" in err["errorMessage"] and err["stackTrace"]


def test_state_machine_catch_matches_exception_name(emu: Emulator, tmp_path: Path) -> None:
    arn = _function(emu, tmp_path)
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "ResultSelector": {"r.$": "$.Payload"},
                "Catch": [{"ErrorEquals": ["StandInBoom"], "Next": "Boom"}],
                "End": True,
            },
            "Boom": {"Type": "Fail", "Error": "Boomed", "CausePath": "$.Cause"},
        },
    }
    sfn = emu.client("stepfunctions")
    role = emu.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument=ROLE_DOC)["Role"]["Arn"]
    sm = sfn.create_state_machine(name="sm", definition=json.dumps(definition), roleArn=role)
    results = {}
    for name, payload in (("ok", {"a": 1}), ("bad", {"fail": True})):
        ex = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name=name, input=json.dumps(payload))
        for _ in range(100):
            desc = sfn.describe_execution(executionArn=ex["executionArn"])
            if desc["status"] != "RUNNING":
                break
            time.sleep(0.1)
        results[name] = desc
    assert results["ok"]["status"] == "SUCCEEDED"
    assert json.loads(results["ok"]["output"])["r"]["greeting"] == "hello"
    assert results["bad"]["status"] == "FAILED"
    assert results["bad"]["error"] == "Boomed"
    assert json.loads(results["bad"]["cause"])["errorType"] == "StandInBoom"


def test_endpoint_handler_and_model_error(emu: Emulator) -> None:
    sm = emu.client("sagemaker")
    sm.create_model(
        ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/x", PrimaryContainer={"Image": "img"}
    )
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.12xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName="ep-a", EndpointConfigName="c")

    def handler(name: str, body: bytes, ctype: str) -> tuple[bytes, str]:
        if json.loads(body).get("fail"):
            raise EndpointFailure()
        return json.dumps({"endpoint": name}).encode(), "application/json"

    moto_patches.registry.endpoint_handler = handler
    rt = emu.client("sagemaker-runtime")
    out = rt.invoke_endpoint(EndpointName="ep-a", Body=json.dumps({}), ContentType="application/json")
    assert json.loads(out["Body"].read()) == {"endpoint": "ep-a"}
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName="ep-a", Body=json.dumps({"fail": 1}), ContentType="application/json")
    assert err.value.response["Error"]["Code"] == "ModelError"
    assert err.value.response["OriginalStatusCode"] == 500
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_training_job_hook_and_failure(emu: Emulator) -> None:
    seen: list[TrainingJobRequest] = []

    def hook(req: TrainingJobRequest) -> str | None:
        seen.append(req)
        return "stand-in judge asked to fail" if req.name.endswith("bad") else None

    moto_patches.registry.training_job_hook = hook
    moto_patches.registry.training_job_seconds = math.inf  # held InProgress until the test ends it
    sm = emu.client("sagemaker")
    common = dict(
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/x",
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://b/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    sm.create_training_job(TrainingJobName="job-ok", **common)
    sm.create_training_job(TrainingJobName="job-bad", **common)
    assert [r.name for r in seen] == ["job-ok", "job-bad"]
    assert seen[0].input_data_config[0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://b/in/"
    assert sm.describe_training_job(TrainingJobName="job-ok")["TrainingJobStatus"] == "InProgress"
    assert sm.describe_training_job(TrainingJobName="job-ok")["TrainingJobStatus"] == "InProgress"  # still
    moto_patches.registry.training_job_seconds = 0.0  # the job's time is up
    assert sm.describe_training_job(TrainingJobName="job-ok")["TrainingJobStatus"] == "Completed"
    bad = sm.describe_training_job(TrainingJobName="job-bad")
    assert bad["TrainingJobStatus"] == "Failed" and bad["FailureReason"] == "stand-in judge asked to fail"


def test_emulator_restores_environment_on_error() -> None:
    import os

    before = os.environ.get("AWS_ENDPOINT_URL")
    with pytest.raises(RuntimeError), local_aws():
        assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        raise RuntimeError("boom")
    assert os.environ.get("AWS_ENDPOINT_URL") == before
    assert not moto_patches.registry.functions
