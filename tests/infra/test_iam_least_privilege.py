"""IAM least privilege, proven against what the handlers really call.

1. Each handler (`lambdas/<name>/handler.py`, imported as `lambdas.<name>.handler`) runs in moto
   with the environment the synthesized template gives its function (tokens resolved to placeholder
   values). Every boto3 call it makes is recorded through a botocore `before-parameter-build` hook
   registered on each client created inside the recording window (threads included), then mapped
   to the IAM action(s), resource ARN and condition keys AWS evaluates for it.
2. A small policy evaluator (actions with wildcards, resource ARN globs, StringEquals/StringLike/
   ArnLike conditions, explicit Deny) checks the function role's synthesized policy:
   (a) every recorded call is allowed;
   (b) nothing broader: every granted (action, resource) and every ListBucket prefix is used by
       some recorded call, and mutations of the recorded calls (another bucket, prefix, endpoint,
       account, region, role, service, a destructive action) are all denied.
The state machine role is checked the same way with the calls its definition makes.

Infrastructure grants no handler code makes (writing to the function's own log group, X-Ray
segments) are listed in `PLATFORM_ACTIONS` and excluded from (b) only.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from fake_aws import fake_credentials
from infra_helpers import as_list, evaluation_machines, of_type, resolve_intrinsics
from infra_synth import Synth
from moto import mock_aws

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
NAMES = ("prepare", "generate", "reduce", "start_judge", "summarize", "cleanup", "teardown")
BUCKET = "novajudge-evaluation-bucket"
EXECUTION = "c0ffee00-1234-4abc-9def-0123456789ab"
#: Granted for the Lambda platform, not called by handler code: excluded from "every grant is used".
PLATFORM_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
#: design.md: what each function must at least do (guards against a scenario that silently skips).
DESIGN_FLOOR = {
    "prepare": {
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/datasets/mine.jsonl"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/request.json"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/generation/plan.json"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/generation/chunks/{EXECUTION}/chunks.json"),
        ("servicequotas:ListServiceQuotas", "*"),
    },
    "generate": {
        ("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/novajudge-model-a"),
        ("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/novajudge-model-b"),
        (
            "s3:GetObject",
            f"arn:aws:s3:::{BUCKET}/runs/iam-squad/generation/chunks/{EXECUTION}/chunk-00000.json",
        ),
        (
            "s3:PutObject",
            f"arn:aws:s3:::{BUCKET}/runs/iam-squad/generation/outcomes/{EXECUTION}/chunk-00000.json",
        ),
    },
    "reduce": {
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/generation/plan.json"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/input/llm_judge.jsonl"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/generation/manifest.jsonl"),
    },
    "start_judge": {
        ("sagemaker:CreateTrainingJob", None),
        ("iam:PassRole", None),
        ("s3:PutObject", None),
    },
    "summarize": {
        ("s3:GetObject", None),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/results/summary.json"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/results/report.html"),
    },
    "cleanup": {
        ("sagemaker:StopTrainingJob", None),
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/request.json"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/iam-squad/cleanup.json"),
    },
    # The stack's delete-time sweep: the running execution and the tagged judge job are stopped.
    "teardown": {
        ("states:StopExecution", None),
        ("sagemaker:ListTags", None),
        ("sagemaker:StopTrainingJob", None),
    },
}
#: The tag every judge job carries (novajudge.layout.JUDGE_JOB_TAG) and this app's pipeline stack.
JOB_TAG = "novajudge:stack"
PIPELINE_STACK = "NovaJudge-Pipeline"
#: Tags of the training jobs created while recording: what AWS evaluates aws:ResourceTag against.
JOB_TAGS: dict[str, dict[str, str]] = {}


# -- the evaluator ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One authorization request: what IAM evaluates for one API call."""

    action: str
    resource: str
    #: (key, value) pairs; a multi-valued key (sagemaker:InstanceTypes) has a tuple of strings.
    context: tuple[tuple[str, Any], ...] = ()
    api: str = ""

    def ctx(self) -> dict[str, Any]:
        return dict(self.context)


def _glob(pattern: str, *, case: bool) -> re.Pattern[str]:
    """IAM globbing: `*` any run of characters (including `/` and `:`), `?` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case else re.IGNORECASE)


def _condition_holds(conditions: dict[str, dict[str, Any]], context: dict[str, Any]) -> bool:
    for operator, tests in conditions.items():
        for key, wanted in tests.items():
            if operator == "Null":  # "false": the key must be in the request; "true": it must not
                if (key in context) != (str(wanted).lower() == "false"):
                    return False
                continue
            if operator == "ForAllValues:StringEquals":  # multi-valued key: every value allowed
                if key in context and not set(context[key]) <= set(as_list(wanted)):
                    return False
                continue  # an absent key passes ForAllValues (hence the Null test beside it)
            if key not in context:
                return False
            value = context[key]
            values = as_list(wanted)
            if operator in ("StringEquals", "ArnEquals"):
                ok = value in values
            elif operator in ("StringLike", "ArnLike"):
                ok = any(_glob(v, case=True).match(value) for v in values)
            else:
                raise AssertionError(f"evaluator does not know condition operator {operator}")
            if not ok:
                return False
    return True


def statement_matches(statement: dict[str, Any], call: Call) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise AssertionError("evaluator does not handle NotAction/NotResource")
    if not any(_glob(a, case=False).match(call.action) for a in as_list(statement["Action"])):
        return False
    if not any(_glob(r, case=True).match(call.resource) for r in as_list(statement["Resource"])):
        return False
    return _condition_holds(statement.get("Condition", {}), call.ctx())


def is_allowed(statements: list[dict[str, Any]], call: Call) -> bool:
    """Identity-policy evaluation: an explicit Deny wins, else some Allow must match."""
    matching = [s for s in statements if statement_matches(s, call)]
    return bool(matching) and all(s["Effect"] == "Allow" for s in matching)


def test_evaluator_semantics() -> None:
    """The evaluator itself can say no: wildcards, ARNs, conditions, Deny."""
    st = {
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:List*"],
        "Resource": ["arn:aws:s3:::b/runs/*", "arn:aws:s3:::b"],
        "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}},
    }
    assert is_allowed([st], Call("s3:GetObject", "arn:aws:s3:::b/runs/x", (("s3:prefix", "runs/x"),)))
    assert not is_allowed([st], Call("s3:GetObject", "arn:aws:s3:::b/runs/x"))  # condition key absent
    assert is_allowed([st], Call("S3:listbucket", "arn:aws:s3:::b", (("s3:prefix", "runs/"),)))
    assert not is_allowed([st], Call("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", "other/"),)))
    assert not is_allowed([st], Call("s3:PutObject", "arn:aws:s3:::b/runs/x", (("s3:prefix", "runs/"),)))
    assert not is_allowed([st], Call("s3:GetObject", "arn:aws:s3:::bb/runs/x", (("s3:prefix", "runs/"),)))
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert not is_allowed(
        [st, deny], Call("s3:GetObject", "arn:aws:s3:::b/runs/x", (("s3:prefix", "runs/"),))
    )
    assert _glob("arn:aws:sagemaker:r:a:training-job/*", case=True).match(
        "arn:aws:sagemaker:r:a:training-job/x"
    )
    assert not _glob("arn:aws:sagemaker:r:a:endpoint/a", case=True).match("arn:aws:sagemaker:r:a:endpoint/ab")
    typed = {
        "Effect": "Allow",
        "Action": "sagemaker:CreateTrainingJob",
        "Resource": "*",
        "Condition": {
            "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.g5.12xlarge", "ml.p5.48xlarge"]},
            "Null": {"sagemaker:InstanceTypes": "false"},
        },
    }
    key = "sagemaker:InstanceTypes"
    assert is_allowed([typed], Call("sagemaker:CreateTrainingJob", "j", ((key, ("ml.p5.48xlarge",)),)))
    assert not is_allowed(
        [typed], Call("sagemaker:CreateTrainingJob", "j", ((key, ("ml.p5.48xlarge", "ml.m5.large")),))
    )
    assert not is_allowed([typed], Call("sagemaker:CreateTrainingJob", "j"))  # Null: the key must be there
    without_null = {
        **typed,
        "Condition": {"ForAllValues:StringEquals": typed["Condition"]["ForAllValues:StringEquals"]},
    }
    assert is_allowed([without_null], Call("sagemaker:CreateTrainingJob", "j"))  # IAM: absent key passes


# -- from the synthesized template -------------------------------------------------------------------------


class Resolver:
    """Turns template values into the concrete strings of this test's fake account."""

    def __init__(self, templates: dict[str, dict[str, Any]]) -> None:
        self.templates = templates
        storage = templates["storage"]
        self.exports = {
            out["Export"]["Name"]: out["Value"]
            for out in storage.get("Outputs", {}).values()
            if "Export" in out
        }
        self.storage_resources = storage["Resources"]

    def __call__(self, value: Any, stack: str = "pipeline") -> str:
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        return resolve_intrinsics(
            value,
            ref=lambda name: pseudo[name] if name in pseudo else self._physical(name, stack, "Ref"),
            get_att=lambda attr: self._physical(attr[0], stack, attr[1]),
            import_value=lambda arg: self(self.exports[self(arg)], "storage"),
        )

    def _physical(self, logical: str, stack: str, attribute: str) -> str:
        kind = self.templates[stack]["Resources"][logical]["Type"]
        if kind == "AWS::S3::Bucket":
            assert logical.startswith("Evaluation"), logical
            return BUCKET if attribute == "Ref" else f"arn:aws:s3:::{BUCKET}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{logical}"
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*"
        if kind == "AWS::StepFunctions::StateMachine":  # named like its logical id in moto
            return (
                logical
                if attribute == "Name"
                else f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical}"
            )
        raise AssertionError(f"no placeholder for {kind} {logical}.{attribute}")


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        v["Metadata"]["novajudge:source"].removeprefix("lambdas/"): v
        for v in of_type(template, "AWS::Lambda::Function").values()
        if "novajudge:source" in v.get("Metadata", {})
    }


def role_policy(
    templates: dict[str, dict[str, Any]], role_id: str, resolve: Resolver
) -> list[dict[str, Any]]:
    """The role's statements with every value resolved (inline and AWS::IAM::Policy)."""
    template = templates["pipeline"]
    raw: list[dict[str, Any]] = []
    for policy in template["Resources"][role_id]["Properties"].get("Policies", []):
        raw += as_list(policy["PolicyDocument"]["Statement"])
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            raw += as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    return [{**st, "Resource": [resolve(r) for r in as_list(st["Resource"])]} for st in raw]


# -- recording boto3 calls ------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Collects (service, operation, params) of every API call while `active`."""

    active: bool = False
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.active:
            with self.lock:
                self.calls.append((model.service_model.service_name, model.name, dict(params)))

    def window(self) -> _Window:
        return _Window(self)


class _Window:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def __enter__(self) -> list[tuple[str, str, dict[str, Any]]]:
        self.recorder.calls = []
        self.recorder.active = True
        return self.recorder.calls

    def __exit__(self, *_: Any) -> None:
        self.recorder.active = False


def to_iam(service: str, operation: str, params: dict[str, Any]) -> list[Call]:
    """The authorization requests AWS makes for one API call (service authorization reference)."""
    api = f"{service}:{operation}"
    if service == "s3":
        bucket = params["Bucket"]
        if operation in ("ListObjectsV2", "ListObjects"):
            return [
                Call(
                    "s3:ListBucket", f"arn:aws:s3:::{bucket}", (("s3:prefix", params.get("Prefix", "")),), api
                )
            ]
        obj = f"arn:aws:s3:::{bucket}/{params['Key']}"
        if operation in ("GetObject", "HeadObject"):
            return [Call("s3:GetObject", obj, (), api)]
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [Call("s3:PutObject", obj, (), api)]
    if service == "sagemaker-runtime" and operation == "InvokeEndpoint":
        name = params["EndpointName"].lower()  # SageMaker lower-cases resource names in ARNs
        return [
            Call("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}", (), api)
        ]
    if service == "service-quotas" and operation == "ListServiceQuotas":
        return [Call("servicequotas:ListServiceQuotas", "*", (), api)]  # no resource-level permissions
    if service == "sagemaker" and operation in ("ListTrainingJobs", "ListEndpoints"):
        return [Call(f"sagemaker:{operation}", "*", (), api)]  # no resource-level permissions
    if service == "sagemaker" and operation == "ListTags":
        arn = params["ResourceArn"]
        return [Call("sagemaker:ListTags", arn[: arn.index("/") + 1] + arn.split("/", 1)[1].lower(), (), api)]
    if service == "sagemaker" and operation == "DeleteEndpoint":
        name = params["EndpointName"].lower()
        return [
            Call("sagemaker:DeleteEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}", (), api)
        ]
    if service == "stepfunctions" and operation == "ListExecutions":
        return [Call("states:ListExecutions", params["stateMachineArn"], (), api)]
    if service == "stepfunctions" and operation == "StopExecution":
        return [Call("states:StopExecution", params["executionArn"], (), api)]
    if service == "sagemaker" and operation == "StopTrainingJob":
        job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{params['TrainingJobName'].lower()}"
        tags = JOB_TAGS.get(params["TrainingJobName"], {})
        context = tuple((f"aws:ResourceTag/{k}", v) for k, v in sorted(tags.items()))
        return [Call("sagemaker:StopTrainingJob", job, context, api)]
    if service == "sagemaker" and operation in ("CreateTrainingJob", "DescribeTrainingJob"):
        job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{params['TrainingJobName'].lower()}"
        context: tuple[tuple[str, Any], ...] = ()
        if operation == "CreateTrainingJob":
            # sagemaker:InstanceTypes: the instance types the request asks for (ResourceConfig).
            context = (("sagemaker:InstanceTypes", (params["ResourceConfig"]["InstanceType"],)),)
        calls = [Call(f"sagemaker:{operation}", job, context, api)]
        if operation == "CreateTrainingJob":
            calls.append(
                Call(
                    "iam:PassRole",
                    params["RoleArn"],
                    (("iam:PassedToService", "sagemaker.amazonaws.com"),),
                    api,
                )
            )
            if params.get("Tags"):
                tags = {t["Key"]: t["Value"] for t in params["Tags"]}
                JOB_TAGS[params["TrainingJobName"]] = tags
                context = tuple((f"aws:RequestTag/{k}", v) for k, v in sorted(tags.items()))
                calls.append(Call("sagemaker:AddTags", job, context, api))
        return calls
    raise AssertionError(f"no IAM mapping for {api}: add one deliberately")


# -- running the handlers --------------------------------------------------------------------------------


@dataclass
class Context:
    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"
    aws_request_id: str = "8f5d1f4e-3c2b-4a1d-9e8f-7a6b5c4d3e2f"

    def get_remaining_time_in_millis(self) -> int:
        """As the Lambda context does: a fresh 15-minute invocation (the generate timeout)."""
        return 900_000


def _fake_tgi_response(request: Any, **_: Any) -> Any:
    """A TGI chat completion for any InvokeEndpoint (the body the handler parses)."""
    from botocore.awsrequest import AWSResponse

    endpoint = request.url.split("/endpoints/")[1].split("/")[0]
    body = json.dumps(
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"[{endpoint}] an answer"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        }
    ).encode()

    class Raw:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.data

        def read(self, *_: Any) -> bytes:
            return self.data

    return AWSResponse(
        request.url, 200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, Raw(body)
    )


def _unique_job_names(request: Any, **_: Any) -> Any:
    """SageMaker refuses a second job of the same name; moto 5.2.5 does not, so answer as AWS does."""
    from botocore.awsrequest import AWSResponse
    from moto.sagemaker.models import sagemaker_backends

    name = json.loads(request.body)["TrainingJobName"]
    if name not in sagemaker_backends[ACCOUNT][REGION].training_jobs:
        return None  # let moto create it
    body = json.dumps(
        {
            "__type": "ValidationException",
            "message": "Training job names must be unique within an AWS account and region, and a "
            f"training job with this name already exists ({name})",
        }
    ).encode()

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    headers = {"x-amzn-ErrorType": "ValidationException", "Content-Type": "application/x-amz-json-1.1"}
    return AWSResponse(request.url, 400, {**headers, "Content-Length": str(len(body))}, Raw())


@dataclass
class Recorded:
    by_function: dict[str, list[Call]]
    raw: dict[str, list[tuple[str, str, dict[str, Any]]]]
    job_names: list[str]


@pytest.fixture(scope="module")
def recorded(app_synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Run generate -> start_judge -> summarize (plus retries and a user dataset) under moto."""
    mp = pytest.MonkeyPatch()
    resolve = Resolver(app_synth.templates)
    envs = {
        name: {k: resolve(v) for k, v in fn["Properties"]["Environment"]["Variables"].items()}
        for name, fn in _functions(app_synth.templates["pipeline"]).items()
    }
    for key, value in {
        **fake_credentials(REGION),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "NOVAJUDGE_RETRY_BASE_SECONDS": "0.001",
        "NOVAJUDGE_RETRY_MAX_SECONDS": "0.002",
        "NOVAJUDGE_SQUAD_ROWS_URL": "http://127.0.0.1:9/rows",
        "MOTO_ALLOW_NONEXISTENT_REGION": "true",
    }.items():
        mp.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "NOVAJUDGE_STAND_IN"):
        mp.delenv(key, raising=False)

    recorder = Recorder()
    original_create = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original_create(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", recorder.hook)
        if client.meta.service_model.service_name == "sagemaker":
            client.meta.events.register_first("before-send.sagemaker.CreateTrainingJob", _unique_job_names)
        if client.meta.service_model.service_name == "sagemaker-runtime":
            client.meta.events.register_first(
                "before-send.sagemaker-runtime.InvokeEndpoint", _fake_tgi_response
            )
        return client

    mp.setattr(botocore.session.Session, "create_client", create_client)

    def run(name: str, event: dict[str, Any]) -> tuple[Any, list[tuple[str, str, dict[str, Any]]]]:
        handler = importlib.import_module(f"lambdas.{name}.handler")
        with mp.context() as local:
            for key, value in envs[name].items():
                local.setenv(key, value)
            with recorder.window() as calls:
                try:
                    result = handler.handler(event, Context(function_name=name))
                except Exception as exc:  # recorded calls still count; the scenario decides
                    result = exc
            return result, list(calls)

    raw: dict[str, list[tuple[str, str, dict[str, Any]]]] = {n: [] for n in NAMES}
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(
                Bucket=BUCKET,
                Key="datasets/mine.jsonl",
                Body=b'{"id": "q1", "prompt": "Name a prime number."}\n{"id": "q2", "prompt": "Say hi."}\n',
            )

            def generation(event: dict[str, Any]) -> dict[str, Any]:
                """prepare -> every chunk (the Map's children) -> reduce, as the state machine runs them."""
                prepared, calls = run("prepare", event)
                assert isinstance(prepared, dict), prepared
                raw["prepare"] += calls
                listed = s3.get_object(Bucket=BUCKET, Key=prepared["map"]["key"])["Body"].read()
                for chunk in json.loads(listed):
                    counts, calls = run("generate", {"run": prepared["run"], "chunk": chunk})
                    assert isinstance(counts, dict), counts
                    raw["generate"] += calls
                reduced, calls = run("reduce", {**prepared, "map_result": {"done": True}})
                assert isinstance(reduced, dict), reduced
                raw["reduce"] += calls
                return reduced

            squad = {"input": {"run_id": "iam-squad", "questions": 2}, "execution_name": EXECUTION}
            state = generation(squad)
            generation(squad)  # the state machine's retry of the same execution
            user = {
                "input": {
                    "run_id": "iam-user",
                    "dataset": {"source": "s3", "uri": f"s3://{BUCKET}/datasets/mine.jsonl"},
                },
                "execution_name": "user-execution",
            }
            generation(user)
            resumed = {"input": {"run_id": "iam-user", "resume": True}, "execution_name": "user-resume"}
            generation(resumed)  # lists the outcomes written so far, regenerates nothing

            judge, calls = run("start_judge", state)
            assert isinstance(judge, dict), judge
            raw["start_judge"] += calls
            retried, calls = run("start_judge", state)  # a retried start finds its own job
            assert retried == judge, retried
            raw["start_judge"] += calls

            from novajudge.local.judge_archive import Judgement, write_judge_archive

            body = s3.get_object(Bucket=BUCKET, Key="runs/iam-squad/input/llm_judge.jsonl")["Body"].read()
            judgements = [
                Judgement(
                    prompt=r["prompt"], response_A=r["response_A"], response_B=r["response_B"], label="B>A"
                )
                for r in map(json.loads, body.decode().splitlines())
            ]
            archive = write_judge_archive(
                tmp_path_factory.mktemp("judge"),
                "rubric",
                judgements,
                judge["training_job_name"],
                "20261123_101500",
            )
            key = f"runs/iam-squad/judge-output/{judge['training_job_name']}/output/output.tar.gz"
            s3.upload_file(str(archive), BUCKET, key)
            summary_state = {**state, "judge": judge, "judge_status": {"TrainingJobStatus": "Completed"}}
            results, calls = run("summarize", summary_state)
            assert isinstance(results, dict), results
            raw["summarize"] += calls

            # An abort while the judge runs: the cleanup stops the job (moto finishes jobs at once,
            # so the job is put back InProgress; moto_patches adds StopTrainingJob).
            from moto.sagemaker.models import sagemaker_backends

            from novajudge.local import moto_patches

            moto_patches.install()
            job = sagemaker_backends[ACCOUNT][REGION].training_jobs[judge["training_job_name"]]
            job.training_job_status = "InProgress"
            aborted = {
                "detail-type": "Step Functions Execution Status Change",
                "source": "aws.states",
                "detail": {
                    "name": EXECUTION,
                    "status": "ABORTED",
                    "input": json.dumps(squad["input"]),
                },
            }
            report, calls = run("cleanup", aborted)
            assert isinstance(report, dict) and report["stopped_jobs"] == [judge["training_job_name"]], report
            raw["cleanup"] += calls
            again, calls = run("cleanup", aborted)  # EventBridge may deliver twice: nothing more
            assert isinstance(again, dict) and again["stopped_jobs"] == [], again
            raw["cleanup"] += calls

            # `cdk destroy` while a run is judging: the teardown stops the execution and the job.
            machine_arn = envs["teardown"]["STATE_MACHINE_ARN"]
            sfn = boto3.client("stepfunctions", region_name=REGION)
            sfn.create_state_machine(
                name=machine_arn.rsplit(":", 1)[1],
                definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/machine",
            )
            sfn.start_execution(stateMachineArn=machine_arn, name=EXECUTION, input="{}")
            job.training_job_status = "InProgress"
            envs["teardown"]["TEARDOWN_SETTLE_SECONDS"] = "0"  # isComplete may answer at once here
            response, calls = run("teardown", teardown_event("Delete"))
            assert isinstance(response, dict) and "Data" in response, response
            raw["teardown"] += calls
            done, calls = run("teardown", {**teardown_event("Delete"), **response})
            assert done == {"IsComplete": True}, done
            raw["teardown"] += calls
            stopped = [p for s_, o, p in raw["teardown"] if o in ("StopExecution", "StopTrainingJob")]
            assert len(stopped) == 2, stopped
    finally:
        mp.undo()
    by_function = {name: [c for call in calls for c in to_iam(*call)] for name, calls in raw.items()}
    jobs = [p["TrainingJobName"] for s, o, p in raw["start_judge"] if o == "CreateTrainingJob"]
    yield Recorded(by_function, raw, jobs)


def teardown_event(request_type: str) -> dict[str, Any]:
    """A CloudFormation custom-resource request as the Provider framework hands it to the teardown."""
    return {
        "RequestType": request_type,
        "RequestId": "req-1",
        "ResponseURL": "...",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{PIPELINE_STACK}/1",
        "LogicalResourceId": "StackTeardownResource",
        "ResourceType": "Custom::NovaJudgeTeardown",
        "ResourceProperties": {},
        "PhysicalResourceId": f"{PIPELINE_STACK}-teardown",
    }


def _role_of(app_synth: Synth, name: str) -> str:
    return _functions(app_synth.templates["pipeline"])[name]["Properties"]["Role"]["Fn::GetAtt"][0]


@pytest.mark.parametrize("name", NAMES)
def test_scenarios_cover_the_design(name: str, recorded: Recorded) -> None:
    calls = {(c.action, c.resource) for c in recorded.by_function[name]}
    for action, resource in DESIGN_FLOOR[name]:
        assert any(a == action and (resource is None or r == resource) for a, r in calls), (action, resource)


@pytest.mark.parametrize("name", NAMES)
def test_every_call_is_allowed(name: str, recorded: Recorded, app_synth: Synth) -> None:
    policy = role_policy(app_synth.templates, _role_of(app_synth, name), Resolver(app_synth.templates))
    denied = sorted(
        {(c.api, c.action, c.resource) for c in recorded.by_function[name] if not is_allowed(policy, c)}
    )
    assert not denied, f"{name} would get AccessDenied for: {denied}"


@pytest.mark.parametrize("name", NAMES)
def test_every_grant_is_used(name: str, recorded: Recorded, app_synth: Synth) -> None:
    policy = role_policy(app_synth.templates, _role_of(app_synth, name), Resolver(app_synth.templates))
    calls = recorded.by_function[name]
    unused = []
    for st in policy:
        for action in as_list(st["Action"]):
            if action in PLATFORM_ACTIONS:
                continue
            for resource in st["Resource"]:
                single = {**st, "Action": [action], "Resource": [resource]}
                if not any(statement_matches(single, c) for c in calls):
                    unused.append((action, resource))
        for prefix in as_list(st.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [])):
            narrowed = {**st, "Condition": {"StringLike": {"s3:prefix": [prefix]}}}
            if not any(statement_matches(narrowed, c) for c in calls):
                unused.append(("s3:ListBucket prefix", prefix))
    assert not unused, f"{name} is granted more than it uses: {unused}"


def _mutations(call: Call) -> Iterator[tuple[str, Call]]:
    """Calls one step away from a recorded one; each must be denied."""
    r = call.resource
    yield "other account", Call(call.action, r.replace(f":{ACCOUNT}:", ":999999999999:"), call.context)
    yield "other region", Call(call.action, r.replace(f":{REGION}:", ":eu-central-1:"), call.context)
    if call.action.startswith("s3:"):
        yield "other bucket", Call(call.action, r.replace(BUCKET, "someone-elses-bucket"), call.context)
        if call.action != "s3:ListBucket":
            key = r.split(f"{BUCKET}/", 1)[1]
            yield "other prefix", Call(call.action, f"arn:aws:s3:::{BUCKET}/private/{key}", call.context)
            yield "delete", Call("s3:DeleteObject", r, call.context)
        else:
            yield "other prefix", Call(call.action, r, (("s3:prefix", "private/"),))
            yield "no prefix", Call(call.action, r, ())
    if call.action in ("sagemaker:InvokeEndpoint", "sagemaker:DeleteEndpoint"):
        yield "other endpoint", Call(call.action, r + "-x", call.context)
        yield (
            "other stack's endpoint",
            Call(call.action, r.replace(":endpoint/novajudge", ":endpoint/other"), call.context),
        )
    if call.action == "sagemaker:DeleteEndpoint":
        yield (
            "persistent endpoint",
            Call(call.action, r.rsplit("/", 1)[0] + "/novajudge-model-a", call.context),
        )
    if call.action in ("states:StopExecution", "states:ListExecutions"):
        other = re.sub(r":(stateMachine|execution):[^:]+", r":\1:OtherStateMachine", r)
        yield "other state machine", Call(call.action, other, call.context)
        if call.action == "states:StopExecution":
            yield "delete state machine", Call("states:DeleteStateMachine", r, call.context)
    if call.action == "iam:PassRole":
        yield "other role", Call(call.action, r.rsplit("/", 1)[0] + "/AdminRole", call.context)
        yield "other service", Call(call.action, r, (("iam:PassedToService", "ec2.amazonaws.com"),))
        yield "no service", Call(call.action, r, ())
    if call.action == "sagemaker:StopTrainingJob":
        yield "other stack's job", Call(call.action, r, ((f"aws:ResourceTag/{JOB_TAG}", "OtherStack"),))
        yield "untagged job", Call(call.action, r, ())
    if call.action == "sagemaker:AddTags":
        yield "other tag value", Call(call.action, r, ((f"aws:RequestTag/{JOB_TAG}", "OtherStack"),))
    if call.action == "sagemaker:CreateTrainingJob":
        yield (
            "other instance type",
            Call(call.action, r, (("sagemaker:InstanceTypes", ("ml.p4de.24xlarge",)),)),
        )
        yield "no instance type", Call(call.action, r, ())
    if call.action.startswith("sagemaker:") and "training-job/" in r:
        yield "stop job", Call("sagemaker:StopTrainingJob", r, call.context)
        yield "other kind", Call(call.action, r.replace(":training-job/", ":processing-job/"), call.context)


@pytest.mark.parametrize("name", NAMES)
def test_one_step_beyond_every_call_is_denied(name: str, recorded: Recorded, app_synth: Synth) -> None:
    policy = role_policy(app_synth.templates, _role_of(app_synth, name), Resolver(app_synth.templates))
    allowed = []
    for call in set(recorded.by_function[name]):
        for why, mutant in _mutations(call):
            if (
                mutant.resource == call.resource
                and mutant.context == call.context
                and mutant.action == call.action
            ):
                continue  # the mutation does not apply to this ARN (e.g. S3 ARNs have no region)
            if is_allowed(policy, mutant):
                allowed.append((why, mutant.action, mutant.resource))
    assert not allowed, f"{name} allows more than its calls need: {sorted(set(allowed))}"


def test_datasets_are_readable_only_by_prepare(recorded: Recorded, app_synth: Synth) -> None:
    resolve = Resolver(app_synth.templates)
    call = Call("s3:GetObject", f"arn:aws:s3:::{BUCKET}/datasets/mine.jsonl")
    for name in NAMES:
        policy = role_policy(app_synth.templates, _role_of(app_synth, name), resolve)
        assert is_allowed(policy, call) == (name == "prepare"), name


# -- the state machine -------------------------------------------------------------------------------------


def _states(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state, those inside a Map's ItemProcessor included."""
    for state in states.values():
        yield state
        if state["Type"] == "Map":
            yield from _states(state["ItemProcessor"]["States"])


def _machine_calls(app_synth: Synth, resolve: Resolver, job: str) -> list[Call]:
    """What the definition's states call: each Lambda, describeTrainingJob of the run's job, and the
    generation Map's calls (its item reader, and starting, describing, stopping its children)."""
    (machine,) = evaluation_machines(app_synth.templates["pipeline"]).values()
    definition = json.loads(resolve(machine["Properties"]["DefinitionString"]))
    name = machine["Properties"]["StateMachineName"]
    calls = []
    for state in _states(definition["States"]):
        if state["Type"] == "Map":
            reader = state["ItemReader"]
            assert reader["Resource"] == "arn:aws:states:::s3:getObject"
            key = f"runs/iam-squad/generation/chunks/{EXECUTION}/chunks.json"
            calls.append(Call("s3:GetObject", f"arn:aws:s3:::{BUCKET}/{key}"))
            calls.append(
                Call("states:StartExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
            )
            child = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}/GenerateChunk:{EXECUTION}"
            calls += [Call("states:DescribeExecution", child), Call("states:StopExecution", child)]
            continue
        if state["Type"] != "Task":
            continue
        resource = state["Resource"]
        if resource.startswith("arn:aws:lambda:"):
            calls.append(Call("lambda:InvokeFunction", resource))
        elif resource == "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob":
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job.lower()}"
            calls.append(Call("sagemaker:DescribeTrainingJob", arn))
        elif resource == "arn:aws:states:::aws-sdk:sagemaker:stopTrainingJob":
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job.lower()}"
            calls.append(
                Call("sagemaker:StopTrainingJob", arn, ((f"aws:ResourceTag/{JOB_TAG}", PIPELINE_STACK),))
            )
        else:
            raise AssertionError(f"no IAM mapping for task resource {resource}")
    return calls


def test_state_machine_role(recorded: Recorded, app_synth: Synth) -> None:
    resolve = Resolver(app_synth.templates)
    (machine,) = evaluation_machines(app_synth.templates["pipeline"]).values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    policy = role_policy(app_synth.templates, role_id, resolve)
    assert recorded.job_names
    calls = _machine_calls(app_synth, resolve, recorded.job_names[0])
    assert len(calls) == 11  # 5 functions, describe, stop, the Map's reader, start, describe, stop
    assert all(is_allowed(policy, c) for c in calls)
    for call in calls:
        for why, mutant in _mutations(call):
            if mutant != call:
                assert not is_allowed(policy, mutant), (why, mutant)
    other_function = Call(
        "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:SomethingElse"
    )
    assert not is_allowed(policy, other_function)
    # Every non-platform grant is used, except CDK's qualified-ARN twin (<function arn>:*) of each
    # invoke grant and the logging/X-Ray delivery actions that have no resource (Resource "*").
    for st in policy:
        for action in as_list(st["Action"]):
            for resource in st["Resource"]:
                if resource == "*" or (action == "lambda:InvokeFunction" and resource.endswith(":*")):
                    continue
                single = {**st, "Action": [action], "Resource": [resource]}
                assert any(statement_matches(single, c) for c in calls), (action, resource)


def test_recorded_calls_are_printed(recorded: Recorded, capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion of behaviour: shows reviewers what was recorded (run with -s or -rA)."""
    summary = {name: sorted({c.api for c in calls}) for name, calls in recorded.by_function.items()}
    with capsys.disabled():
        print("\nrecorded API calls per function:", json.dumps(summary))
    assert all(summary.values())


# -- the teardown in per-run mode (it deletes this deployment's per-run endpoints) -------------------------


def test_per_run_teardown_is_least_privilege(per_run_synth: Synth) -> None:
    """Run the teardown's Delete against a per-run deployment's leftovers; check its role as above."""
    import hashlib

    templates = per_run_synth.templates
    resolve = Resolver(templates)
    fn = _functions(templates["pipeline"])["teardown"]
    env = {k: resolve(v) for k, v in fn["Properties"]["Environment"]["Variables"].items()}
    env["TEARDOWN_SETTLE_SECONDS"] = "0"
    ours = [f"novajudge-{hashlib.md5(b'iam-run').hexdigest()}-{w}" for w in "ab"]
    theirs = f"other-{hashlib.md5(b'iam-run').hexdigest()}-a"
    recorder = Recorder()
    original_create = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original_create(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", recorder.hook)
        return client

    mp = pytest.MonkeyPatch()
    try:
        for key, value in {
            **env,
            **fake_credentials(REGION),
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            mp.setenv(key, value)
        mp.setattr(botocore.session.Session, "create_client", create_client)
        with mock_aws():
            sm = boto3.client("sagemaker", region_name=REGION)
            role = f"arn:aws:iam::{ACCOUNT}:role/x"
            sm.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": "img"})
            variant = {
                "VariantName": "v",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
            sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
            for name in (*ours, theirs, "novajudge-model-a"):
                sm.create_endpoint(EndpointName=name, EndpointConfigName="c")
            sfn = boto3.client("stepfunctions", region_name=REGION)
            sfn.create_state_machine(
                name=env["STATE_MACHINE_ARN"].rsplit(":", 1)[1],
                definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
                roleArn=role,
            )
            sfn.start_execution(stateMachineArn=env["STATE_MACHINE_ARN"], name="iam-run", input="{}")
            handler = importlib.import_module("lambdas.teardown.handler")
            with recorder.window() as calls:
                response = handler.handler(teardown_event("Delete"), Context(function_name="teardown"))
                handler.handler({**teardown_event("Delete"), **response}, Context(function_name="teardown"))
                recorded = list(calls)
            left = {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
    finally:
        mp.undo()
    assert left == {theirs, "novajudge-model-a"}
    by_iam = [c for call in recorded for c in to_iam(*call)]
    deleted = {c.resource for c in by_iam if c.action == "sagemaker:DeleteEndpoint"}
    assert deleted == {f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}" for name in ours}
    assert any(c.action == "states:StopExecution" for c in by_iam)
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    policy = role_policy(templates, role_id, resolve)
    assert all(is_allowed(policy, c) for c in by_iam), [c for c in by_iam if not is_allowed(policy, c)]
    beyond = [
        (why, m.action, m.resource)
        for c in set(by_iam)
        for why, m in _mutations(c)
        if (m.action, m.resource, m.context) != (c.action, c.resource, c.context) and is_allowed(policy, m)
    ]
    assert not beyond, beyond
    # Every grant is used (no judge job runs here: ListTags and StopTrainingJob are proven by the
    # recorded scenario of the default app).
    for st in policy:
        for action in as_list(st["Action"]):
            if action in PLATFORM_ACTIONS or action in ("sagemaker:ListTags", "sagemaker:StopTrainingJob"):
                continue
            for resource in st["Resource"]:
                single = {**st, "Action": [action], "Resource": [resource]}
                assert any(statement_matches(single, c) for c in by_iam), (action, resource)
