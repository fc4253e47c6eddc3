"""The region -> image account tables behind the CfnMappings, and the lookup that is the region check."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.region_info import Fact, FactName

from novajudge.config import Settings
from novajudge.errors import ConfigError
from novajudge.local.cfn import ResolveError, Resolver
from stacks.constructs import images

DEFAULT_TAG = Settings().tgi_image_version


def test_dlc_accounts_agree_with_cdk_where_both_know_the_region() -> None:
    """aws-cdk-lib's DLC facts are a second source for the SDK-generated table."""
    accounts = images.dlc_accounts()
    shared = [r for r in Fact.regions if Fact.find(r, FactName.DLC_REPOSITORY_ACCOUNT) and r in accounts]
    assert len(shared) >= 25
    for region in shared:
        assert accounts[region] == Fact.find(region, FactName.DLC_REPOSITORY_ACCOUNT), region
    # Regions the CDK facts miss come from the SDK (il-central-1 was once filled in by hand).
    assert accounts["il-central-1"] == "780543022126"
    assert accounts["af-south-1"] == "626614931356"
    assert accounts["us-east-1"] == "763104351884"


@pytest.mark.parametrize("region", ["il-central-1", "af-south-1", "us-gov-west-1", "ap-southeast-7"])
def test_regions_the_cdk_facts_miss_never_contradict_cdk(region: str) -> None:
    """If aws-cdk-lib learns one of these regions, it must agree with the SDK's account."""
    fact = Fact.find(region, FactName.DLC_REPOSITORY_ACCOUNT)
    assert fact in (None, images.dlc_accounts()[region])


def test_regional_account_refuses_an_empty_table() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="no regions"):
        images.RegionalAccount(stack, "X", accounts={}, what="thing")


def test_account_is_a_deploy_time_lookup_not_a_synth_time_guess() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    uri, lookup = images.tgi_image(stack, "Tgi", DEFAULT_TAG)
    assert cdk.Token.is_unresolved(uri)
    resolved = stack.resolve(lookup.account)
    assert resolved["Fn::FindInMap"] == ["TgiAccountByRegion", {"Ref": "AWS::Region"}, "account"]


def test_a_tag_the_sdk_does_not_list_fails_synth() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ConfigError, match=r"tgi_image_version='2\.7\.0-tgi9\.9\.9-gpu'.*python -m stacks"):
        images.tgi_image(stack, "Tgi", "2.7.0-tgi9.9.9-gpu")


def _template(accounts: dict[str, str]) -> dict:
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    lookup = images.RegionalAccount(stack, "NovaEvalImage", accounts=accounts, what="thing")
    cdk.CfnOutput(stack, "Account", value=lookup.account)
    return app.synth().get_stack_by_name("S").template


def test_the_region_check_is_the_mapping_lookup_and_no_rule() -> None:
    """Listed regions resolve; an unlisted one fails the lookup CloudFormation (and the emulator) makes."""
    template = _template({"us-east-1": "111111111111", "eu-west-2": "222222222222"})
    assert not any(name.startswith("NovaEvalImage") for name in template.get("Rules", {}))
    assert set(template["Mappings"]["NovaEvalImageAccountByRegion"]) == {"us-east-1", "eu-west-2"}
    value = template["Outputs"]["Account"]["Value"]
    for region, account in (("us-east-1", "111111111111"), ("eu-west-2", "222222222222")):
        assert Resolver(template, "S", region, "123456789012").resolve(value) == account
    with pytest.raises(ResolveError, match=r"NovaEvalImageAccountByRegion has no \[eu-central-1\]"):
        Resolver(template, "S", "eu-central-1", "123456789012").resolve(value)
