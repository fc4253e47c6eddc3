"""The intrinsic resolver: what CDK emits for our stacks resolves like CloudFormation would."""

from __future__ import annotations

import pytest

from novajudge.local.cfn import (
    Physical,
    ResolveError,
    Resolver,
    check_rules,
    creation_order,
    outputs,
    references,
)

TEMPLATE = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
    "Mappings": {"Images": {"us-east-1": {"account": "763104351884"}}},
    "Conditions": {
        "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
        "NotDev": {"Fn::Not": [{"Condition": "IsDev"}]},
    },
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": "Role",
            "Properties": {"Env": {"Fn::GetAtt": ["Bucket", "Arn"]}},
        },
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"X": {"Fn::Sub": "${Bucket.Arn}/*"}}},
    },
    "Outputs": {
        "BucketName": {
            "Value": {"Ref": "Bucket"},
            "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-Bucket"}},
        },
        "OnlyProd": {"Condition": "NotDev", "Value": "x"},
    },
}


def _resolver() -> Resolver:
    r = Resolver(TEMPLATE, "S", "us-east-1", "123456789012", exports={"Other-Role": "arn:role"})
    r.physical["Bucket"] = Physical("my-bucket", {"Arn": "arn:aws:s3:::my-bucket"})
    return r


def test_intrinsics() -> None:
    r = _resolver()
    value = {
        "join": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}]]},
        "sub": {"Fn::Sub": ["${Bucket}-${X}-${!Literal}-${AWS::AccountId}", {"X": {"Ref": "Stage"}}]},
        "att": {"Fn::GetAtt": "Bucket.Arn"},
        "imp": {"Fn::ImportValue": "Other-Role"},
        "map": {"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "account"]},
        "sel": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "if": {"Fn::If": ["IsDev", "d", "p"]},
        "gone": {"Ref": "AWS::NoValue"},
        "list": [1, {"Ref": "AWS::NoValue"}, {"Ref": "AWS::URLSuffix"}],
    }
    assert r.resolve(value) == {
        "join": "arn:aws:states:us-east-1",
        "sub": "my-bucket-dev-${Literal}-123456789012",
        "att": "arn:aws:s3:::my-bucket",
        "imp": "arn:role",
        "map": "763104351884",
        "sel": "b",
        "if": "d",
        "list": [1, "amazonaws.com"],
    }


def test_errors_name_the_problem() -> None:
    r = _resolver()
    with pytest.raises(ResolveError, match="not created yet"):
        r.resolve({"Ref": "Role"})
    with pytest.raises(ResolveError, match="no stack exports"):
        r.resolve({"Fn::ImportValue": "Nope"})
    with pytest.raises(ResolveError, match="not supported"):
        r.resolve({"Fn::Transform": {}})
    with pytest.raises(ResolveError, match="no attribute"):
        r.resolve({"Fn::GetAtt": ["Bucket", "Nope"]})


def test_order_and_references() -> None:
    assert references(TEMPLATE["Resources"]["Role"]["Properties"]) == {"Bucket"}
    assert creation_order(TEMPLATE["Resources"]) == ["Bucket", "Role", "Fn"]
    with pytest.raises(ResolveError, match="circular"):
        creation_order({"A": {"DependsOn": "B"}, "B": {"DependsOn": ["A"]}})


def test_outputs_and_exports() -> None:
    values, exports = outputs(_resolver())
    assert values == {"BucketName": "my-bucket"}
    assert exports == {"S-Bucket": "my-bucket"}


def test_rules_are_checked_and_bootstrap_rule_skipped() -> None:
    template = {
        "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk"}},
        "Rules": {
            "Region": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Contains": [["us-west-2"], {"Ref": "AWS::Region"}]},
                        "AssertDescription": "only us-west-2",
                    }
                ]
            },
            "CheckBootstrapVersion": {
                "Assertions": [
                    {"Assert": {"Fn::Not": [{"Fn::Contains": [["1"], {"Ref": "BootstrapVersion"}]}]}}
                ]
            },
        },
    }
    assert check_rules(Resolver(template, "S", "us-east-1", "1")) == (
        ["Region: only us-west-2"],
        ["CheckBootstrapVersion"],
    )
    assert check_rules(Resolver(template, "S", "us-west-2", "1")) == ([], ["CheckBootstrapVersion"])
