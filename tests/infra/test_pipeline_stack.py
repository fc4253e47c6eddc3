"""The pipeline stack as synthesized: functions, environment, state machine, grants, lint, nag.

Uses the session-wide synthesized app of `conftest.py` (bundling skipped); tests that need another
configuration synthesize their own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from design_doc import lambda_environment
from infra_helpers import as_list, evaluation_machines, nag_violations, of_type, resolve_intrinsics
from infra_synth import ROOT, Synth, synth_app

from novajudge.config import EVENTS_PER_ENDPOINT_POLL, EVENTS_PER_POLL, EVENTS_PER_STATE_TYPE
from stacks import pipeline_stack
from stacks.constructs.python_function import IMPORT_TESTED_PYTHON, python_version

FUNCTIONS = {
    "Prepare": "prepare",
    "Generate": "generate",
    "Reduce": "reduce",
    "StartJudge": "start_judge",
    "Summarize": "summarize",
    "Cleanup": "cleanup",
    "Teardown": "teardown",
}
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
FAIL_STATES = {"GenerationFailed", "JudgeStartFailed", "JudgeJobFailed", "SummarizeFailed"}
COMMON_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
MODEL_ENV = {"ENDPOINT_A_NAME", "ENDPOINT_B_NAME", "MODEL_A_ID", "MODEL_B_ID"}
#: docs/design.md "Lambda environment", per function (summarize adds matplotlib's two); the later
#: steps take bucket, models and endpoints from the run, so only prepare is told them.
EXPECTED_ENV = {
    "prepare": COMMON_ENV
    | MODEL_ENV
    | {
        "BUCKET_NAME",
        "RUN_DEFAULTS",
        "MAX_INPUT_TOKENS",
        "JUDGE_MAX_RUNTIME_SECONDS",
        "JUDGE_INSTANCE_TYPE_RUBRIC",
        "JUDGE_INSTANCE_TYPE_BINARY",
        "CHUNK_TIMEOUT_SECONDS",
        "MAP_MAX_CONCURRENCY",
    },
    # One chunk of the Map: bucket, models and endpoints come with the run in the event.
    "generate": COMMON_ENV,
    "reduce": COMMON_ENV,
    "start_judge": COMMON_ENV
    | {
        "JUDGE_ROLE_ARN",
        "JUDGE_INSTANCE_TYPE_RUBRIC",
        "JUDGE_INSTANCE_TYPE_BINARY",
        "BINARY_JUDGE_MODEL",
        "BINARY_JUDGE_IMAGE_TAG",
        "JUDGE_MAX_RUNTIME_SECONDS",
        "JUDGE_JOB_STACK_TAG",
    },
    "summarize": COMMON_ENV | {"MPLCONFIGDIR", "MPLBACKEND"},
    "cleanup": COMMON_ENV | {"BUCKET_NAME"},
    "teardown": COMMON_ENV
    | {"STATE_MACHINE_ARN", "JUDGE_JOB_STACK_TAG", "TEARDOWN_SETTLE_SECONDS", "TEARDOWN_GIVE_UP_SECONDS"},
}


# -- readers ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["pipeline"]


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Lambda functions by source name (`generate`, ...), found through their Metadata."""
    found = {
        v["Metadata"]["novajudge:source"].removeprefix("lambdas/"): v
        for v in of_type(template, "AWS::Lambda::Function").values()
        if "novajudge:source" in v.get("Metadata", {})
    }
    return found


def render(value: Any) -> str:
    """A template value as text; intrinsics become readable placeholders (`<Logical.Attr>`)."""
    return resolve_intrinsics(
        value,
        ref=lambda name: f"<{name}>",
        get_att=lambda attr: f"<{'.'.join(attr)}>",
        import_value=lambda arg: f"<import:{render(arg)}>",
    )


def definition(template: dict[str, Any]) -> dict[str, Any]:
    (machine,) = evaluation_machines(template).values()
    return json.loads(render(machine["Properties"]["DefinitionString"]))


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """All Allow/Deny statements attached to `role_id` (inline policies and AWS::IAM::Policy)."""
    found: list[dict[str, Any]] = []
    role = template["Resources"][role_id]["Properties"]
    for policy in role.get("Policies", []):
        found += as_list(policy["PolicyDocument"]["Statement"])
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            found += as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def grants(template: dict[str, Any], role_id: str) -> set[tuple[str, str]]:
    """(action, resource) pairs a role is allowed, resources rendered as text."""
    return {
        (action, render(resource))
        for st in role_statements(template, role_id)
        if st["Effect"] == "Allow"
        for action in as_list(st["Action"])
        for resource in as_list(st["Resource"])
    }


def function_role(template: dict[str, Any], name: str) -> str:
    return functions(template)[name]["Properties"]["Role"]["Fn::GetAtt"][0]


# -- functions ------------------------------------------------------------------------------------------


def test_four_functions_on_the_import_tested_python_runtime(pipeline: dict[str, Any]) -> None:
    fns = functions(pipeline)
    assert set(fns) == set(FUNCTIONS.values())
    assert python_version(pipeline_stack.RUNTIME) == IMPORT_TESTED_PYTHON
    for name, fn in fns.items():
        props = fn["Properties"]
        assert props["Runtime"] == f"python{IMPORT_TESTED_PYTHON}", name
        assert props["Architectures"] == ["x86_64"], name
        assert props["Handler"] == "handler.handler", name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert fn["Metadata"]["novajudge:source"] == f"lambdas/{name}"
        assert (ROOT / "lambdas" / name / "requirements.txt").is_file()


def test_sizing_fits_the_work(pipeline: dict[str, Any]) -> None:
    fns = {name: fn["Properties"] for name, fn in functions(pipeline).items()}
    # One chunk per invocation, sized to end well inside Lambda's maximum (chunks.chunk_size).
    assert fns["generate"]["Timeout"] == 900
    assert fns["prepare"]["Environment"]["Variables"]["CHUNK_TIMEOUT_SECONDS"] == "900"
    assert fns["prepare"]["Timeout"] <= 300 and fns["reduce"]["Timeout"] <= 300
    assert 1024 <= fns["summarize"]["MemorySize"] <= 3072
    assert fns["summarize"]["EphemeralStorage"]["Size"] >= 1024
    assert fns["start_judge"]["Timeout"] <= 300


def test_each_function_logs_to_its_own_destroyed_log_group_with_retention(pipeline: dict[str, Any]) -> None:
    groups = of_type(pipeline, "AWS::Logs::LogGroup")
    used = set()
    for name, fn in functions(pipeline).items():
        group_id = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = groups[group_id]
        assert group["DeletionPolicy"] == "Delete", name
        assert group["Properties"]["RetentionInDays"] > 0, name
        used.add(group_id)
    assert len(used) == 7


def test_environment_is_the_design_contract(pipeline: dict[str, Any], app_synth: Synth) -> None:
    settings = app_synth.settings
    envs = {n: fn["Properties"]["Environment"]["Variables"] for n, fn in functions(pipeline).items()}
    for name, env in envs.items():
        assert set(env) == EXPECTED_ENV[name], name
        assert "NOVAJUDGE_STAND_IN" not in env  # only the local emulator sets it
    assert render(envs["prepare"]["BUCKET_NAME"]).startswith("<import:")
    assert json.loads(envs["prepare"]["RUN_DEFAULTS"]) == settings.run_defaults()
    generate = envs["prepare"]
    assert generate["JUDGE_INSTANCE_TYPE_RUBRIC"] == settings.resolved_judge_instance_type("rubric")
    assert generate["JUDGE_INSTANCE_TYPE_BINARY"] == settings.resolved_judge_instance_type("binary")
    assert generate["ENDPOINT_A_NAME"] == settings.endpoint_name("A") == "novajudge-model-a"
    assert generate["ENDPOINT_B_NAME"] == settings.endpoint_name("B")
    assert generate["MODEL_A_ID"] == settings.model_a_id
    assert generate["MODEL_B_ID"] == settings.model_b_id
    assert generate["MAX_INPUT_TOKENS"] == str(settings.max_input_tokens)
    assert generate["JUDGE_MAX_RUNTIME_SECONDS"] == str(settings.judge_max_runtime_seconds)
    judge = envs["start_judge"]
    assert judge["JUDGE_INSTANCE_TYPE_RUBRIC"] == settings.resolved_judge_instance_type("rubric")
    assert judge["JUDGE_INSTANCE_TYPE_BINARY"] == settings.resolved_judge_instance_type("binary")
    assert judge["BINARY_JUDGE_MODEL"] == settings.binary_judge_model
    assert judge["JUDGE_MAX_RUNTIME_SECONDS"] == str(settings.judge_max_runtime_seconds)
    assert "JudgeRole" in render(judge["JUDGE_ROLE_ARN"])
    assert judge["JUDGE_JOB_STACK_TAG"] == settings.stack_names()["pipeline"]
    assert render(envs["cleanup"]["BUCKET_NAME"]) == render(envs["prepare"]["BUCKET_NAME"])


def test_design_lists_every_variable_the_stack_sets(pipeline: dict[str, Any], per_run_synth: Synth) -> None:
    """docs/design.md "Lambda environment": the rows the stack sets are exactly the template's,
    in each endpoints mode (rows say "only with `endpoints_mode=per_run`" / "with persistent endpoints")."""
    documented = lambda_environment()
    modes = {"persistent": pipeline, "per_run": per_run_synth.templates["pipeline"]}
    other = {"persistent": "only with `endpoints_mode=per_run`", "per_run": "with persistent endpoints"}
    for mode, template in modes.items():
        for name, fn in functions(template).items():
            by_stack = {
                var
                for var, (_, source) in documented[name].items()
                if "the stack" in source and other[mode] not in source
            }
            assert set(fn["Properties"]["Environment"]["Variables"]) == by_stack, (mode, name)


def test_configuration_reaches_the_functions(tmp_path: Path) -> None:
    synth = synth_app(
        tmp_path,
        stack_prefix="Eval2",
        judge_variant="binary",
        binary_judge_model="nova-lite",
        judge_instance_type="ml.g6.12xlarge",
        default_questions="7",
        judge_max_runtime_seconds="7200",
    )
    envs = {
        n: fn["Properties"]["Environment"]["Variables"]
        for n, fn in functions(synth.templates["pipeline"]).items()
    }
    assert envs["prepare"]["ENDPOINT_A_NAME"] == "eval2-model-a"
    assert json.loads(envs["prepare"]["RUN_DEFAULTS"])["questions"] == 7
    assert json.loads(envs["prepare"]["RUN_DEFAULTS"])["judge"]["variant"] == "binary"
    assert envs["prepare"]["JUDGE_INSTANCE_TYPE_BINARY"] == "ml.g6.12xlarge"  # the quota pre-flight
    assert envs["start_judge"]["JUDGE_INSTANCE_TYPE_BINARY"] == "ml.g6.12xlarge"
    assert envs["start_judge"]["BINARY_JUDGE_MODEL"] == "nova-lite"
    assert envs["start_judge"]["JUDGE_MAX_RUNTIME_SECONDS"] == "7200"
    timeout = definition(synth.templates["pipeline"])["TimeoutSeconds"]
    assert timeout == pipeline_stack.PipelineStack.state_machine_timeout(synth.settings).to_seconds()
    generation = pipeline_stack.GENERATION_BOUND.to_seconds()
    assert 7200 + generation < timeout < 7200 + generation + 4 * 3600
    assert definition(synth.templates["pipeline"])["States"]["GenerateChunks"]["MaxConcurrency"] == 4
    generate_grants = grants(
        synth.templates["pipeline"], function_role(synth.templates["pipeline"], "generate")
    )
    assert any(
        r.endswith(":endpoint/eval2-model-b") for a, r in generate_grants if a == "sagemaker:InvokeEndpoint"
    )


# -- state machine --------------------------------------------------------------------------------------


def test_states_are_the_designed_flow(pipeline: dict[str, Any]) -> None:
    d = definition(pipeline)
    states = d["States"]
    assert d["StartAt"] == "PrepareRun"
    assert "QueryLanguage" not in d or d["QueryLanguage"] == "JSONPath"
    types = {name: s["Type"] for name, s in states.items()}
    assert types == {
        "PrepareRun": "Task",
        "GenerateChunks": "Map",
        "ReduceGeneration": "Task",
        "StartJudgeJob": "Task",
        "WaitForJudge": "Wait",
        "DescribeJudgeJob": "Task",
        "JudgeFinished?": "Choice",
        "SummarizeResults": "Task",
        "Done": "Pass",
        "ExplainJudgeFailure": "Pass",
        "ExplainJudgeStop": "Pass",
        "StopJudgeJob": "Task",
        "RecordEndpointUse": "Pass",
        **dict.fromkeys(FAIL_STATES, "Fail"),
    }
    assert states["PrepareRun"]["Next"] == "GenerateChunks"
    assert states["GenerateChunks"]["Next"] == "ReduceGeneration"
    assert states["ReduceGeneration"]["Next"] == "RecordEndpointUse"
    record = states["RecordEndpointUse"]
    assert record["Next"] == "StartJudgeJob" and record["ResultPath"] == "$.endpoint_use"
    assert record["Parameters"] == {
        "mode": "persistent",
        "instance_type": "ml.g5.12xlarge",
        "instances": 2,
        "from.$": "$$.Execution.StartTime",
        "until.$": "$$.State.EnteredTime",
    }
    assert states["PrepareRun"]["Parameters"] == {"input.$": "$", "execution_name.$": "$$.Execution.Name"}
    for task in ("PrepareRun", "ReduceGeneration"):
        assert "ResultPath" not in states[task], task  # the result replaces the state
    the_map = states["GenerateChunks"]
    assert the_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert the_map["ItemReader"] == {
        "Resource": "arn:<AWS::Partition>:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},  # moto, like Step Functions, reads JSON, not JSON Lines
        "Parameters": {"Bucket.$": "$.map.bucket", "Key.$": "$.map.key"},
    }
    assert the_map["ItemSelector"] == {"run.$": "$.run", "chunk.$": "$$.Map.Item.Value"}
    assert the_map["ToleratedFailurePercentagePath"] == "$.map.tolerated_failure_percentage"
    assert the_map["MaxConcurrency"] == 4  # cdk.json map_max_concurrency
    # The children's counts never reach the state: a constant replaces the Map's result.
    assert the_map["ResultSelector"] == {"done": True} and the_map["ResultPath"] == "$.map_result"
    assert the_map["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error", "Next": "ReduceGeneration"}
    ]
    assert states["StartJudgeJob"]["ResultPath"] == "$.judge"
    for task in ("ReduceGeneration", "StartJudgeJob", "SummarizeResults"):  # the whole state is the event
        assert "Parameters" not in states[task] and "InputPath" not in states[task], task
    assert states["WaitForJudge"] == {
        "Type": "Wait",
        "SecondsPath": "$.run.poll_seconds",
        "Next": "DescribeJudgeJob",
    }
    describe = states["DescribeJudgeJob"]
    assert describe["Resource"] == "arn:<AWS::Partition>:states:::aws-sdk:sagemaker:describeTrainingJob"
    assert describe["Parameters"] == {"TrainingJobName.$": "$.judge.training_job_name"}
    assert describe["ResultPath"] == "$.judge_status"
    assert describe["Next"] == "JudgeFinished?"
    # A failing poll may leave the judge running: it is stopped before the run fails.
    assert describe["Catch"][0]["Next"] == "StopJudgeJob"
    stop = states["StopJudgeJob"]
    assert stop["Resource"] == "arn:<AWS::Partition>:states:::aws-sdk:sagemaker:stopTrainingJob"
    assert stop["Parameters"] == {"TrainingJobName.$": "$.judge.training_job_name"}
    assert stop["ResultPath"] == "$.stop_result" and stop["Next"] == "JudgeJobFailed"
    assert stop["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.stop_error", "Next": "JudgeJobFailed"}
    ]
    assert states["SummarizeResults"]["ResultPath"] == "$.results"
    assert states["SummarizeResults"]["Next"] == "Done"
    assert states["Done"]["End"] is True
    assert states["Done"]["Parameters"] == {
        "run_id.$": "$.run.run_id",
        "results.$": "$.results",
        "headline.$": "$.results.headline",
    }
    # No JSONata and no .sync integration anywhere (moto runs neither).
    text = json.dumps(d)
    assert "JSONata" not in text and ".sync" not in text and "{%" not in text


def test_lambda_tasks_invoke_the_five_functions(pipeline: dict[str, Any]) -> None:
    states = definition(pipeline)["States"]
    fns = functions(pipeline)
    logical = {name: next(k for k, v in pipeline["Resources"].items() if v is fn) for name, fn in fns.items()}
    assert states["PrepareRun"]["Resource"] == f"<{logical['prepare']}.Arn>"
    child = states["GenerateChunks"]["ItemProcessor"]
    assert child["StartAt"] == "GenerateChunk"
    assert child["States"]["GenerateChunk"]["Resource"] == f"<{logical['generate']}.Arn>"
    assert child["States"]["GenerateChunk"]["End"] is True
    assert set(child["States"]["GenerateChunk"]["Retry"][0]["ErrorEquals"]) >= LAMBDA_TRANSIENT
    assert states["ReduceGeneration"]["Resource"] == f"<{logical['reduce']}.Arn>"
    assert states["StartJudgeJob"]["Resource"] == f"<{logical['start_judge']}.Arn>"
    assert states["SummarizeResults"]["Resource"] == f"<{logical['summarize']}.Arn>"


def test_judge_finished_choice(pipeline: dict[str, Any]) -> None:
    choice = definition(pipeline)["States"]["JudgeFinished?"]
    assert choice["Default"] == "WaitForJudge"
    rules = choice["Choices"]
    assert rules[0] == {
        "Variable": "$.judge_status.TrainingJobStatus",
        "StringEquals": "Completed",
        "Next": "SummarizeResults",
    }
    text = json.dumps(rules[1:])
    assert '"Failed"' in text and '"Stopped"' in text
    assert {r["Next"] for r in rules[1:]} == {"ExplainJudgeFailure", "ExplainJudgeStop"}
    states = definition(pipeline)["States"]
    for explain in ("ExplainJudgeFailure", "ExplainJudgeStop"):
        assert states[explain]["Next"] == "JudgeJobFailed"
        assert states[explain]["ResultPath"] == "$.error"
        assert states[explain]["Parameters"]["Error"] == "JudgeJobFailed"
        assert states[explain]["Parameters"]["Cause.$"].startswith("States.Format(")
    assert "$.judge_status.FailureReason" in states["ExplainJudgeFailure"]["Parameters"]["Cause.$"]


def test_every_task_retries_transient_errors_and_catches_into_a_named_fail(pipeline: dict[str, Any]) -> None:
    states = definition(pipeline)["States"]
    expected_fail = {
        "PrepareRun": "GenerationFailed",
        "ReduceGeneration": "GenerationFailed",
        "StartJudgeJob": "JudgeStartFailed",
        "DescribeJudgeJob": "StopJudgeJob",  # then JudgeJobFailed (test_states_are_the_designed_flow)
        "StopJudgeJob": "JudgeJobFailed",
        "SummarizeResults": "SummarizeFailed",
    }
    tasks = {name for name, s in states.items() if s["Type"] == "Task"}
    assert tasks == set(expected_fail)
    for name in tasks:
        task = states[name]
        retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
        if name == "DescribeJudgeJob":
            # Step Functions names SDK-integration errors <Service>.<Name>Exception; a bare name
            # (e.g. "ThrottlingException") would never match.
            named = {e for r in task["Retry"][:-1] for e in r["ErrorEquals"]}
            assert "SageMaker.ThrottlingException" in named
            assert all(e.startswith("SageMaker.") and e.endswith("Exception") for e in named), named
            # A read-only poll may retry anything, a bounded number of times, in a last retrier alone.
            assert task["Retry"][-1]["ErrorEquals"] == ["States.ALL"]
            assert task["Retry"][-1]["MaxAttempts"] <= 3
        elif name == "StopJudgeJob":
            assert "SageMaker.ThrottlingException" in retried and "States.ALL" not in retried
        else:
            assert retried >= LAMBDA_TRANSIENT, name
            assert "States.ALL" not in retried, f"{name} must not retry its own errors blindly"
        for retry in task["Retry"]:
            assert 1 <= retry["MaxAttempts"] <= 10 and retry["BackoffRate"] >= 1.5
        (catch,) = task["Catch"]
        # A failed stop keeps the run's own error in $.error for the Fail state.
        path = "$.stop_error" if name == "StopJudgeJob" else "$.error"
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": path, "Next": expected_fail[name]}
    for fail in FAIL_STATES:
        assert states[fail] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def test_state_machine_timeout_logging_and_tracing(pipeline: dict[str, Any], app_synth: Synth) -> None:
    (machine,) = evaluation_machines(pipeline).values()
    props = machine["Properties"]
    settings = app_synth.settings
    timeout = definition(pipeline)["TimeoutSeconds"]
    assert timeout > 900 + settings.judge_max_runtime_seconds + 600
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is True
    group_id = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = pipeline["Resources"][group_id]
    assert group["DeletionPolicy"] == "Delete"
    assert render(group["Properties"]["LogGroupName"]).startswith("/aws/vendedlogs/states/")
    assert props["StateMachineType"] == "STANDARD"


def test_output_state_machine_arn(pipeline: dict[str, Any]) -> None:
    outputs = pipeline["Outputs"]
    (machine_id,) = evaluation_machines(pipeline)
    assert outputs["StateMachineArn"]["Value"] == {"Ref": machine_id}


def test_nothing_is_kept_after_destroy(pipeline: dict[str, Any]) -> None:
    for logical, resource in pipeline["Resources"].items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete", logical


def test_no_import_from_the_endpoints_stack(pipeline: dict[str, Any], app_synth: Synth) -> None:
    imports = re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(pipeline))
    assert imports, "bucket and judge role come from the storage stack"
    names = app_synth.settings.stack_names()
    assert all(i.startswith(names["storage"] + ":") for i in imports), imports


def test_moto_interpreter_parses_the_definition(pipeline: dict[str, Any]) -> None:
    """The local emulator runs this definition in moto 5.2.5's Step Functions interpreter."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    text = json.dumps(definition(pipeline))
    for placeholder in set(re.findall(r"<[^<>]+>", text)):
        arn = "arn:aws:lambda:us-east-1:123456789012:function:f" if ".Arn" in placeholder else "aws"
        text = text.replace(placeholder, arn)
    program, _ = AmazonStateLanguageParser.parse(text)
    assert program is not None


# -- IAM ------------------------------------------------------------------------------------------------

BUCKET = "<import:NovaJudge-Storage:ExportsOutputFnGetAttEvaluation"
ACCOUNT = "<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"


def _shape(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Bucket imports shortened to `<bucket>`, log groups and functions to their kind."""
    out = set()
    for action, resource in pairs:
        resource = re.sub(
            r"<import:NovaJudge-Storage:ExportsOutputFnGetAttEvaluation\w+>", "<bucket>", resource
        )
        resource = re.sub(
            r"<import:NovaJudge-Storage:ExportsOutputFnGetAttJudgeRole\w+>", "<judge-role>", resource
        )
        resource = re.sub(r"<\w+Logs\w+\.Arn>", "<own-log-group>", resource)
        out.add((action, resource))
    return out


def test_function_grants_are_exactly_what_each_function_needs(pipeline: dict[str, Any]) -> None:
    xray = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    logs = {("logs:CreateLogStream", "<own-log-group>"), ("logs:PutLogEvents", "<own-log-group>")}
    runs = {
        ("s3:GetObject", "<bucket>/runs/*"),
        ("s3:PutObject", "<bucket>/runs/*"),
    }
    list_runs = {("s3:ListBucket", "<bucket>")}  # prepare: "run exists"; reduce, summarize: find outputs
    training_jobs = f"arn:{ACCOUNT}:training-job/*"
    (machine_id,) = evaluation_machines(pipeline)
    states = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>"
    expected = {
        "prepare": xray
        | logs
        | runs
        | list_runs
        | {("s3:GetObject", "<bucket>/datasets/*"), ("servicequotas:ListServiceQuotas", "*")},
        "generate": xray
        | logs
        | runs
        | {
            ("sagemaker:InvokeEndpoint", f"arn:{ACCOUNT}:endpoint/novajudge-model-a"),
            ("sagemaker:InvokeEndpoint", f"arn:{ACCOUNT}:endpoint/novajudge-model-b"),
        },
        "reduce": xray | logs | runs | list_runs,
        "start_judge": xray
        | logs
        | runs
        | {
            ("sagemaker:CreateTrainingJob", training_jobs),
            ("sagemaker:DescribeTrainingJob", training_jobs),
            ("sagemaker:AddTags", training_jobs),  # only the stack's tag: test_stop_is_tag_conditioned
            ("iam:PassRole", "<judge-role>"),
        },
        "summarize": xray | logs | runs | list_runs,
        "cleanup": xray
        | logs
        | runs
        | {
            ("sagemaker:DescribeTrainingJob", training_jobs),
            ("sagemaker:ListTrainingJobs", "*"),
            ("sagemaker:StopTrainingJob", training_jobs),  # tag-conditioned: test_stop_is_tag_conditioned
        },
        # The delete-time sweep (tests/infra/test_teardown_stack.py checks the per-run additions).
        "teardown": xray
        | logs
        | {
            ("states:ListExecutions", f"<{machine_id}>"),
            ("states:StopExecution", f"{states}:execution:<{machine_id}.Name>:*"),
            ("sagemaker:ListTrainingJobs", "*"),
            ("sagemaker:ListTags", training_jobs),
            ("sagemaker:StopTrainingJob", training_jobs),  # tag-conditioned: test_stop_is_tag_conditioned
        },
    }
    for name, want in expected.items():
        got = _shape(grants(pipeline, function_role(pipeline, name)))
        assert got == want, f"{name}: extra {got - want}, missing {want - got}"


def test_conditions_narrow_list_and_pass_role(pipeline: dict[str, Any]) -> None:
    for name in FUNCTIONS.values():
        for st in role_statements(pipeline, function_role(pipeline, name)):
            actions = set(as_list(st["Action"]))
            if "s3:ListBucket" in actions:
                assert actions == {"s3:ListBucket"}
                prefixes = set(as_list(st["Condition"]["StringLike"]["s3:prefix"]))
                assert prefixes == {"runs/*"}, name
            if "iam:PassRole" in actions:
                assert actions == {"iam:PassRole"}
                assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_star_resources_only_where_aws_has_no_resource_level_permissions(pipeline: dict[str, Any]) -> None:
    allowed_star = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "sagemaker:ListTrainingJobs",
        "servicequotas:ListServiceQuotas",
        "sagemaker:ListEndpoints",
    }
    for role_id in of_type(pipeline, "AWS::IAM::Role"):
        for action, resource in grants(pipeline, role_id):
            assert "*" not in action, (role_id, action)
            if resource == "*":
                assert action in allowed_star, (role_id, action)


def test_state_machine_role(pipeline: dict[str, Any]) -> None:
    (machine,) = evaluation_machines(pipeline).values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    got = {(a, r) for a, r in grants(pipeline, role_id) if r != "*"}
    fns = functions(pipeline)
    logical = [next(k for k, v in pipeline["Resources"].items() if v is fn) for fn in fns.values()]
    machine_name = "NovaJudge-Pipeline-Evaluation"
    states_arn = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>"
    want = {
        ("sagemaker:DescribeTrainingJob", f"arn:{ACCOUNT}:training-job/*"),
        ("sagemaker:StopTrainingJob", f"arn:{ACCOUNT}:training-job/*"),
        # The generation Map: its item reader, and its own child executions only.
        ("s3:GetObject", "<bucket>/runs/*/generation/chunks/*"),
        ("states:StartExecution", f"{states_arn}:stateMachine:{machine_name}"),
        ("states:DescribeExecution", f"{states_arn}:execution:{machine_name}/*"),
        ("states:StopExecution", f"{states_arn}:execution:{machine_name}/*"),
    }
    assert render(machine["Properties"]["StateMachineName"]) == machine_name
    # The rule invokes cleanup and the stack's teardown resource invokes teardown, not the machine.
    logical = [lid for lid in logical if "Cleanup" not in lid and "Teardown" not in lid]
    for lid in logical:
        want |= {("lambda:InvokeFunction", f"<{lid}.Arn>"), ("lambda:InvokeFunction", f"<{lid}.Arn>:*")}
    assert _shape(got) == want


def test_roles_have_no_managed_policies(pipeline: dict[str, Any]) -> None:
    for role_id, role in of_type(pipeline, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), role_id


# -- cfn-lint and cdk-nag -------------------------------------------------------------------------------


def test_cfn_lint_has_no_errors(app_synth: Synth) -> None:
    template = app_synth.outdir / f"{app_synth.settings.stack_names()['pipeline']}.template.json"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            "--ignore-checks",
            "W3005",
            "--",
            str(template),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert not errors, result.stdout
    assert result.returncode in (0, 4, 8), result.stdout + result.stderr  # 4/8: warnings/informational


def test_nag_reports_nothing_for_the_pipeline(app_synth: Synth) -> None:
    pipeline_name = app_synth.settings.stack_names()["pipeline"]
    assert [v for v in nag_violations(app_synth.report) if v[0].startswith(pipeline_name)] == []


def test_an_older_runtime_is_flagged_by_nag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: cdk-nag's L1 really runs on these functions and is acknowledged only for the
    import-tested runtime (python_function.IMPORT_TESTED_PYTHON), so any other older one is flagged."""
    from aws_cdk import aws_lambda

    monkeypatch.setattr(pipeline_stack, "RUNTIME", aws_lambda.Runtime.PYTHON_3_12)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_app(tmp_path)
    rules = {r for _, r in nag_violations(json.loads((tmp_path / "validation-report.json").read_text()))}
    assert "AwsSolutions-L1" in rules


def test_stop_is_tag_conditioned(pipeline: dict[str, Any], app_synth: Synth) -> None:
    """Stopping (cleanup, state machine) and tagging (start_judge) name this stack's tag value."""
    stack = app_synth.settings.stack_names()["pipeline"]
    (machine,) = evaluation_machines(pipeline).values()
    roles = {
        "cleanup": function_role(pipeline, "cleanup"),
        "machine": machine["Properties"]["RoleArn"]["Fn::GetAtt"][0],
        "start_judge": function_role(pipeline, "start_judge"),
    }
    seen = set()
    for who, role_id in roles.items():
        for st in role_statements(pipeline, role_id):
            actions = set(as_list(st["Action"]))
            if "sagemaker:StopTrainingJob" in actions:
                assert actions == {"sagemaker:StopTrainingJob"}, who
                assert st["Condition"] == {"StringEquals": {"aws:ResourceTag/novajudge:stack": stack}}, who
                seen.add(who)
            if "sagemaker:AddTags" in actions:
                assert actions == {"sagemaker:AddTags"}, who
                assert st["Condition"] == {"StringEquals": {"aws:RequestTag/novajudge:stack": stack}}, who
                seen.add(who)
    assert seen == set(roles)


def test_rule_runs_cleanup_after_every_unsuccessful_ending(pipeline: dict[str, Any]) -> None:
    (rule,) = of_type(pipeline, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    (machine_id,) = evaluation_machines(pipeline)
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine_id}]
    (target,) = rule["Properties"]["Targets"]
    cleanup_id = next(k for k, v in pipeline["Resources"].items() if v is functions(pipeline)["cleanup"])
    assert target["Arn"] == {"Fn::GetAtt": [cleanup_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3


def test_per_run_grants_name_only_this_deployments_run_endpoints(per_run_synth: Synth) -> None:
    """Create/describe/delete and invoke only `<prefix>-<32 chars>-a|b`, create only from the
    stack's two configs; the persistent endpoint names are no longer granted."""
    pipeline = per_run_synth.templates["pipeline"]
    settings = per_run_synth.settings
    run_endpoints = {f"arn:{ACCOUNT}:endpoint/novajudge-{'?' * 32}-{w}" for w in "ab"}
    configs = {f"arn:{ACCOUNT}:endpoint-config/{settings.endpoint_config_name(w)}" for w in ("A", "B")}
    (machine,) = evaluation_machines(pipeline).values()
    machine_grants = grants(pipeline, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    by_action: dict[str, set[str]] = {}
    for action, resource in machine_grants:
        by_action.setdefault(action, set()).add(resource)
    assert by_action["sagemaker:CreateEndpoint"] == run_endpoints | configs
    assert by_action["sagemaker:DescribeEndpoint"] == run_endpoints
    assert by_action["sagemaker:DeleteEndpoint"] == run_endpoints
    generate = grants(pipeline, function_role(pipeline, "generate"))
    assert {r for a, r in generate if a == "sagemaker:InvokeEndpoint"} == run_endpoints
    assert not any(
        a == "sagemaker:InvokeEndpoint" for a, _ in grants(pipeline, function_role(pipeline, "prepare"))
    )
    cleanup = grants(pipeline, function_role(pipeline, "cleanup"))
    assert {r for a, r in cleanup if a == "sagemaker:DeleteEndpoint"} == run_endpoints
    envs = {n: fn["Properties"]["Environment"]["Variables"] for n, fn in functions(pipeline).items()}
    assert envs["prepare"]["RUN_ENDPOINT_PREFIX"] == envs["cleanup"]["RUN_ENDPOINT_PREFIX"] == "novajudge"
    assert "ENDPOINT_A_NAME" not in envs["prepare"]
    assert envs["prepare"]["ENDPOINT_INSTANCE_TYPE"] == settings.endpoint_instance_type  # quota pre-flight
    d = definition(pipeline)
    # Prepare (validation, quotas) before the endpoints are created; the names are the run's.
    assert d["StartAt"] == "PrepareRun" and d["States"]["PrepareRun"]["Next"] == "NameRunEndpoints"
    assert d["States"]["NameRunEndpoints"]["Parameters"]["endpoints"] == {
        "A.$": "$.run.endpoint_a",
        "B.$": "$.run.endpoint_b",
    }
    assert d["States"]["EndpointsInService?"]["Choices"][2]["Next"] == "GenerateChunks"
    assert d["States"]["ReduceGeneration"]["Next"] == "DeleteEndpointA"
    assert d["States"]["GenerateChunks"]["Catch"][0]["Next"] == "ReduceGeneration"
    assert d["States"]["ReduceGeneration"]["Catch"][0]["Next"] == "DeleteEndpointAOnGenerationFailure"
    assert d["States"]["PrepareRun"]["Catch"][0]["Next"] == "GenerationFailed"  # nothing to delete yet
    assert d["States"]["DeleteEndpointB"]["Next"] == "RecordEndpointUse"
    assert d["States"]["RecordEndpointUse"]["Parameters"]["mode"] == "per_run"
    assert d["TimeoutSeconds"] == pipeline_stack.PipelineStack.state_machine_timeout(settings).to_seconds()


def _loop_states(states: dict[str, Any], start: str) -> list[str]:
    """The states of the cycle through `start` (following Next and Choice branches)."""

    def successors(name: str) -> list[str]:
        state = states[name]
        nexts = [c["Next"] for c in state.get("Choices", [])] + [state.get("Default"), state.get("Next")]
        return [n for n in nexts if n]

    # Depth-first search for a path from start's successors back to start.
    stack: list[tuple[str, list[str]]] = [(n, [start]) for n in successors(start)]
    while stack:
        name, path = stack.pop()
        if name == start:
            return path
        if name in path:
            continue
        stack.extend((n, [*path, name]) for n in successors(name))
    raise AssertionError(f"{start} is on no loop")


def test_history_budget_counts_the_poll_loop_of_the_definition(pipeline: dict[str, Any]) -> None:
    """EVENTS_PER_POLL (what `poll_seconds` is checked with) is derived from the synthesized loop."""
    states = definition(pipeline)["States"]
    loop = _loop_states(states, "WaitForJudge")
    assert sorted(loop) == ["DescribeJudgeJob", "JudgeFinished?", "WaitForJudge"]
    events = sum(EVENTS_PER_STATE_TYPE[states[name]["Type"]] for name in loop)
    assert events == EVENTS_PER_POLL == 9


def test_history_budget_counts_the_endpoint_wait_loop_of_the_definition(per_run_synth: Synth) -> None:
    """EVENTS_PER_ENDPOINT_POLL (counted in the history budget) is derived from the per-run loop."""
    states = definition(per_run_synth.templates["pipeline"])["States"]
    loop = _loop_states(states, "WaitForEndpoints")
    assert sorted(loop) == [
        "CountEndpointPolls",
        "DescribeEndpointA",
        "DescribeEndpointB",
        "EndpointsInService?",
        "WaitForEndpoints",
    ]
    events = sum(EVENTS_PER_STATE_TYPE[states[name]["Type"]] for name in loop)
    assert events == EVENTS_PER_ENDPOINT_POLL == 16
    max_polls = states["EndpointsInService?"]["Choices"][-1]["NumericGreaterThanEquals"]
    assert max_polls == per_run_synth.settings.endpoint_max_polls() == 50  # (900 + 600) / 30
