"""The endpoints stack as synthesized: two TGI endpoints that can be destroyed on their own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_helpers import as_list, find_key, join_text, mapping, of_type, one_of_type, statements
from infra_synth import Synth

from stacks.constructs import images
from stacks.constructs.images import TGI_REPOSITORY

MODELS = {"A": ("Qwen/Qwen2.5-1.5B-Instruct", "1"), "B": ("Qwen/Qwen2.5-7B-Instruct", "4")}


@pytest.fixture(scope="module")
def endpoints(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["endpoints"]


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]


def _chain(template: dict[str, Any], which: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Endpoint `which`, its config and its model, following the template's own references."""
    _, endpoint = one_of_type(template, "AWS::SageMaker::Endpoint", f"Endpoint{which}")
    config_id = endpoint["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]
    config = _resource(template, config_id)
    (variant,) = config["Properties"]["ProductionVariants"]
    model = _resource(template, variant["ModelName"]["Fn::GetAtt"][0])
    return endpoint, config, model


def test_exactly_two_endpoints(endpoints: dict[str, Any]) -> None:
    assert len(of_type(endpoints, "AWS::SageMaker::Endpoint")) == 2
    assert len(of_type(endpoints, "AWS::SageMaker::Model")) == 2


@pytest.mark.parametrize("which", ["A", "B"])
def test_endpoint_name_is_derived_from_the_configuration(app_synth: Synth, which: str) -> None:
    endpoint, _, _ = _chain(app_synth.templates["endpoints"], which)
    assert endpoint["Properties"]["EndpointName"] == app_synth.settings.endpoint_name(which)  # type: ignore[arg-type]
    assert endpoint["Properties"]["EndpointName"] == f"novajudge-model-{which.lower()}"


@pytest.mark.parametrize("which", ["A", "B"])
def test_endpoint_config_one_g5_12xlarge_least_outstanding(endpoints: dict[str, Any], which: str) -> None:
    _, config, _ = _chain(endpoints, which)
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["InstanceType"] == "ml.g5.12xlarge"
    assert variant["InitialInstanceCount"] == 1
    # By hand: 300 s + 40 s per billion parameters, rounded up to minutes (Settings'
    # startup_health_check_seconds): 1.5B -> 360 s, 7B -> 300 + 280 = 580 -> 600 s.
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == {"A": 360, "B": 600}[which]
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


@pytest.mark.parametrize("which", ["A", "B"])
def test_model_runs_tgi_with_the_configured_model_and_shards(endpoints: dict[str, Any], which: str) -> None:
    _, _, model = _chain(endpoints, which)
    container = model["Properties"]["PrimaryContainer"]
    model_id, gpus = MODELS[which]
    assert container["Environment"] == {
        "HF_MODEL_ID": model_id,
        "SM_NUM_GPUS": gpus,
        "MAX_INPUT_TOKENS": "4096",
        "MAX_TOTAL_TOKENS": "8192",
    }
    map_id, _ = mapping(endpoints, "TgiImage")
    assert join_text(container["Image"]) == (
        f"{{Map:{map_id}}}.dkr.ecr.{{Ref:AWS::Region}}.{{Ref:AWS::URLSuffix}}/"
        f"{TGI_REPOSITORY}:2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"
    )
    lookup = container["Image"]["Fn::Join"][1][0]["Fn::FindInMap"]
    assert lookup == [map_id, {"Ref": "AWS::Region"}, "account"]
    assert model["Properties"].get("EnableNetworkIsolation", False) is False


def test_image_account_mapping_is_resolved_per_region_at_deploy(endpoints: dict[str, Any]) -> None:
    _, table = mapping(endpoints, "TgiImage")
    accounts = {region: row["account"] for region, row in table.items()}
    assert accounts["us-east-1"] == "763104351884"
    assert accounts["eu-west-2"] == "763104351884"
    assert accounts["il-central-1"] == "780543022126"
    assert accounts["ap-east-1"] == "871362719292"
    assert accounts["cn-north-1"] == "727897471807"
    assert len(accounts) >= 30
    # Every region of the SageMaker SDK's table, and the lookup itself is the region check (no Rule).
    assert accounts == images.dlc_accounts()
    assert not [k for k in endpoints.get("Rules", {}) if k.startswith("TgiImage")]


def test_outputs_have_the_keys_the_cli_reads_and_nothing_is_exported(endpoints: dict[str, Any]) -> None:
    outputs = endpoints["Outputs"]
    for which in ("A", "B"):
        endpoint_id, _ = one_of_type(endpoints, "AWS::SageMaker::Endpoint", f"Endpoint{which}")
        assert outputs[f"Endpoint{which}Name"]["Value"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
        assert outputs[f"Endpoint{which}Arn"]["Value"] == {"Ref": endpoint_id}
    # An export would let the pipeline import it, and CloudFormation would then refuse to
    # delete this stack on its own.
    assert not any("Export" in o for o in outputs.values())


def test_pipeline_does_not_import_from_the_endpoints_stack(app_synth: Synth) -> None:
    if "pipeline" not in app_synth.templates:
        pytest.skip("stacks/pipeline_stack.py not written yet")
    endpoints_name = app_synth.settings.stack_names()["endpoints"]
    imports = find_key(app_synth.templates["pipeline"], "Fn::ImportValue")
    assert not [i for i in imports if endpoints_name in repr(i)]


def test_model_role_is_inline_and_pulls_only_the_tgi_repository(endpoints: dict[str, Any]) -> None:
    _, role = one_of_type(endpoints, "AWS::IAM::Role", "ModelRole")
    props = role["Properties"]
    assert "ManagedPolicyArns" not in props
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    # If-exists: AWS documents the source keys for training jobs, not hosting (stacks/constructs/trust.py).
    assert set(trust["Condition"]) == {"StringEqualsIfExists", "ArnLikeIfExists"}
    assert trust["Condition"]["StringEqualsIfExists"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert join_text(trust["Condition"]["ArnLikeIfExists"]["aws:SourceArn"]) == (
        "arn:{Ref:AWS::Partition}:sagemaker:{Ref:AWS::Region}:{Ref:AWS::AccountId}:*"
    )
    for stmt in statements(props):
        actions = as_list(stmt["Action"])
        assert not any(a.endswith("*") for a in actions), actions
        if "ecr:BatchGetImage" in actions:
            assert join_text(stmt["Resource"]).endswith(f":repository/{TGI_REPOSITORY}")
        if stmt["Resource"] == "*":
            assert set(actions) <= {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
        if "cloudwatch:PutMetricData" in actions:
            assert stmt["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
        if any(a.startswith("logs:") for a in actions):
            for resource in as_list(stmt["Resource"]):
                assert ":log-group:/aws/sagemaker/Endpoints/novajudge-model-" in join_text(resource)
    for model in of_type(endpoints, "AWS::SageMaker::Model").values():
        assert model["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0].startswith("ModelRole")


def test_per_run_mode_defines_models_and_configs_but_no_endpoint(per_run_synth: Synth) -> None:
    synth = per_run_synth
    template = synth.templates["endpoints"]
    assert of_type(template, "AWS::SageMaker::Endpoint") == {}
    assert len(of_type(template, "AWS::SageMaker::Model")) == 2
    configs = of_type(template, "AWS::SageMaker::EndpointConfig").values()
    names = sorted(c["Properties"]["EndpointConfigName"] for c in configs)
    assert names == sorted(synth.settings.endpoint_config_name(w) for w in ("A", "B"))
    assert not [k for k in template.get("Outputs", {}) if k.startswith("Endpoint")]
    # The endpoints' own log groups: every per-run name of this deployment (32 '?' = the md5).
    (role,) = of_type(template, "AWS::IAM::Role").values()
    text = json.dumps(role)
    assert "/aws/sagemaker/Endpoints/novajudge-" + "?" * 32 + "-a" in text
