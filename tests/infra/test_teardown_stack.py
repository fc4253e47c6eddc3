"""`cdk destroy` runs the teardown before it deletes what the teardown needs (template assertions).

CloudFormation deletes a resource only after every resource that depends on it (DependsOn, Ref,
Fn::GetAtt, Fn::Sub) is gone. So the teardown custom resource runs its Delete first exactly when
the state machine, the teardown function with its role and policy, and the Provider's functions
and waiter are all among its transitive dependencies.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from infra_helpers import as_list, of_type, one_of_type
from infra_synth import Synth

from novajudge.layout import JUDGE_JOB_TAG
from stacks import pipeline_stack
from stacks.constructs import teardown as teardown_construct


def refs(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and not inner.startswith("AWS::"):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {
                    m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text) if not m.startswith("AWS::")
                }
                if isinstance(inner, list):
                    found |= refs(inner[1])
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


def dependencies(template: dict[str, Any], logical: str) -> set[str]:
    """Everything `logical` transitively depends on (so CloudFormation deletes it after `logical`)."""
    resources = template["Resources"]
    seen: set[str] = set()
    todo = [logical]
    while todo:
        current = todo.pop()
        res = resources[current]
        direct = set(as_list(res.get("DependsOn", []))) | refs(res.get("Properties", {}))
        for dep in direct & set(resources):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def teardown_lambda(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, v)
        for k, v in of_type(template, "AWS::Lambda::Function").items()
        if v.get("Metadata", {}).get("novajudge:source") == "lambdas/teardown"
    ]
    return found


@pytest.fixture(params=["persistent", "per_run"])
def synth(request: pytest.FixtureRequest, app_synth: Synth, per_run_synth: Synth) -> Synth:
    return app_synth if request.param == "persistent" else per_run_synth


def test_one_teardown_resource_served_by_a_provider_with_is_complete(synth: Synth) -> None:
    template = synth.templates["pipeline"]
    ((_, resource),) = of_type(template, teardown_construct.RESOURCE_TYPE).items()
    token = resource["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    framework = template["Resources"][token]
    env = framework["Properties"]["Environment"]["Variables"]
    fn_id, _ = teardown_lambda(template)
    # The same function answers onEvent and isComplete (it tells them apart by onEvent's Data).
    assert env["USER_ON_EVENT_FUNCTION_ARN"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert env["USER_IS_COMPLETE_FUNCTION_ARN"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert "WAITER_STATE_MACHINE_ARN" in env


def test_teardown_is_deleted_before_everything_it_needs(synth: Synth) -> None:
    template = synth.templates["pipeline"]
    ((logical, resource),) = of_type(template, teardown_construct.RESOURCE_TYPE).items()
    deps = dependencies(template, logical)
    machine_id, machine = one_of_type(template, "AWS::StepFunctions::StateMachine", "Evaluation")
    fn_id, fn = teardown_lambda(template)
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = {
        k
        for k, p in of_type(template, "AWS::IAM::Policy").items()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    }
    assert policies, "the teardown role's grants are in an AWS::IAM::Policy"
    machine_role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    needed = {machine_id, machine_role, fn_id, role_id, *policies}
    assert needed <= deps, f"deleted before the teardown ran: {sorted(needed - deps)}"
    # Directly on the state machine (not only through the function's environment).
    assert machine_id in as_list(resource.get("DependsOn", []))
    # The Provider's functions, their role and the waiter state machine outlive it too.
    framework = {
        k
        for k, v in of_type(template, "AWS::Lambda::Function").items()
        if "provider framework" in v["Properties"].get("Description", "")
    }
    waiters = {k for k in of_type(template, "AWS::StepFunctions::StateMachine") if k != machine_id}
    assert len(framework) == 3 and len(waiters) == 1
    assert framework | waiters <= deps
    # ...and nothing depends on the teardown, so no other deletion waits for (or precedes) it wrongly.
    assert not any(
        logical in dependencies(template, other) for other in template["Resources"] if other != logical
    )


def test_the_provider_waits_longer_than_the_function_gives_up(synth: Synth) -> None:
    """The Provider failing on its own timeout would fail `cdk destroy`: the function gives up first."""
    template = synth.templates["pipeline"]
    _, fn = teardown_lambda(template)
    env = fn["Properties"]["Environment"]["Variables"]
    give_up, timeout = int(env["TEARDOWN_GIVE_UP_SECONDS"]), fn["Properties"]["Timeout"]
    machine_id, _ = one_of_type(template, "AWS::StepFunctions::StateMachine", "Evaluation")
    (waiter,) = [
        v for k, v in of_type(template, "AWS::StepFunctions::StateMachine").items() if k != machine_id
    ]
    text = json.dumps(waiter["Properties"]["DefinitionString"])
    interval = int(re.search(r'IntervalSeconds\\\\?":\s*(\d+)', text).group(1))
    attempts = int(re.search(r'MaxAttempts\\\\?":\s*(\d+)', text).group(1))
    assert interval == 30
    # The last isComplete that may still give up starts before give_up + one poll and ends within
    # the function's timeout: the waiter must not have run out of attempts by then.
    assert interval * attempts >= give_up + interval + timeout
    assert interval * attempts <= 2 * 3600


def test_give_up_covers_the_per_run_endpoint_start(per_run_synth: Synth, app_synth: Synth) -> None:
    """Hand-computed: an endpoint left Creating can be deleted only once it started or failed."""
    per_run = per_run_synth.settings
    _, fn = teardown_lambda(per_run_synth.templates["pipeline"])
    env = fn["Properties"]["Environment"]["Variables"]
    health = max(per_run.startup_health_check_seconds(w)[0] for w in ("A", "B"))
    settle = 120 + 30  # start_judge's 2-minute timeout plus a margin
    assert env["TEARDOWN_SETTLE_SECONDS"] == str(settle)
    assert env["TEARDOWN_GIVE_UP_SECONDS"] == str(settle + 900 + health + per_run.endpoint_poll_seconds)
    assert env["RUN_ENDPOINT_PREFIX"] == "novajudge"
    _, fn = teardown_lambda(app_synth.templates["pipeline"])
    env = fn["Properties"]["Environment"]["Variables"]
    assert "RUN_ENDPOINT_PREFIX" not in env
    assert env["TEARDOWN_GIVE_UP_SECONDS"] == str(settle + app_synth.settings.endpoint_poll_seconds)
    assert env["JUDGE_JOB_STACK_TAG"] == app_synth.settings.stack_names()["pipeline"]


def _grants(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    out = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            out += as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def test_teardown_grants_are_narrowed_to_this_deployment(synth: Synth) -> None:
    template = synth.templates["pipeline"]
    _, fn = teardown_lambda(template)
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    by_action = {}
    for st in _grants(template, role_id):
        for action in as_list(st["Action"]):
            by_action[action] = st
    per_run = synth.settings.endpoints_mode == "per_run"
    expected = {
        "states:ListExecutions",
        "states:StopExecution",
        "sagemaker:ListTrainingJobs",
        "sagemaker:ListTags",
        "sagemaker:StopTrainingJob",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    } | ({"sagemaker:ListEndpoints", "sagemaker:DeleteEndpoint"} if per_run else set())
    assert set(by_action) == expected
    stop = by_action["sagemaker:StopTrainingJob"]
    assert stop["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/{JUDGE_JOB_TAG}": synth.settings.stack_names()["pipeline"]}
    }
    machine_id, _ = one_of_type(template, "AWS::StepFunctions::StateMachine", "Evaluation")
    assert by_action["states:ListExecutions"]["Resource"] == {"Ref": machine_id}
    executions = json.dumps(by_action["states:StopExecution"]["Resource"])
    assert f'"Fn::GetAtt": ["{machine_id}", "Name"]' in executions and executions.endswith(':*"]]}')
    if per_run:
        resources = json.dumps(by_action["sagemaker:DeleteEndpoint"]["Resource"])
        assert resources.count("endpoint/novajudge-" + "?" * 32) == 2


def test_teardown_timeout_constants() -> None:
    assert pipeline_stack.TEARDOWN_SETTLE.to_seconds() == pipeline_stack.START_JUDGE_TIMEOUT.to_seconds() + 30
    # give up + function timeout + 2 polls of 30 s, rounded up to whole polls
    assert teardown_construct.StackTeardown.total_timeout(1020, 180).to_seconds() == 1260  # 1260 = 42 polls
    assert teardown_construct.StackTeardown.total_timeout(1021, 180).to_seconds() == 1290  # 1261 -> 43 polls
