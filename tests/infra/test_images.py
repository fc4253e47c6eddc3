"""The region -> image account tables behind the CfnMappings."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.region_info import Fact, FactName

from stacks.constructs import images


def test_dlc_accounts_cover_every_region_cdk_knows_plus_the_gaps() -> None:
    accounts = images.dlc_accounts()
    for region in Fact.regions:
        fact = Fact.find(region, FactName.DLC_REPOSITORY_ACCOUNT)
        if fact:
            assert accounts[region] == fact
    assert accounts["il-central-1"] == "780543022126"
    assert accounts["af-south-1"] == "626614931356"
    assert accounts["us-east-1"] == "763104351884"


@pytest.mark.parametrize("region", sorted(images.DLC_ACCOUNTS_MISSING_FROM_FACTS))
def test_gap_fillers_never_contradict_cdk(region: str) -> None:
    """If aws-cdk-lib learns a region we fill by hand, it must agree (then the filler can go)."""
    fact = Fact.find(region, FactName.DLC_REPOSITORY_ACCOUNT)
    assert fact in (None, images.DLC_ACCOUNTS_MISSING_FROM_FACTS[region])


def test_regional_account_refuses_an_empty_table() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="no regions"):
        images.RegionalAccount(stack, "X", accounts={}, what="thing")


def test_account_is_a_deploy_time_lookup_not_a_synth_time_guess() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    uri, lookup = images.tgi_image(stack, "Tgi", "1.0-tgi1")
    assert cdk.Token.is_unresolved(uri)
    resolved = stack.resolve(lookup.account)
    assert resolved["Fn::FindInMap"][1:] == [{"Ref": "AWS::Region"}, "account"]
