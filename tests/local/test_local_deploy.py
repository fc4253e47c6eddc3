"""The deployer creates what a (hand-made, CDK-shaped) template says, resolved, in moto."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from novajudge.local.deploy import DeployError, StackTemplate, deploy
from novajudge.local.emulator import local_aws

ASSUME = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}

STORAGE = {
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "AutoDelete": {
            "Type": "Custom::S3AutoDeleteObjects",
            "Properties": {"BucketName": {"Ref": "Bucket"}},
        },
        "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {}},
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Bucket"}, "Export": {"Name": "T-Storage:Bucket"}},
    },
}
ENDPOINTS = {
    "Mappings": {"Dlc": {"us-east-1": {"account": "763104351884"}}},
    "Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": ASSUME}},
        "Model": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "PrimaryContainer": {
                    "Image": {
                        "Fn::Join": [
                            "",
                            [
                                {"Fn::FindInMap": ["Dlc", {"Ref": "AWS::Region"}, "account"]},
                                ".dkr.ecr.",
                                {"Ref": "AWS::Region"},
                                ".",
                                {"Ref": "AWS::URLSuffix"},
                                "/tgi:latest",
                            ],
                        ]
                    }
                },
            },
        },
        "Config": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.g5.12xlarge",
                    }
                ]
            },
        },
        "Endpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointName": "t-model-a",
                "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
            },
        },
    },
    "Outputs": {"EndpointAName": {"Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}}},
}


def _pipeline(source: str) -> dict:
    return {
        "Resources": {
            "FnRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": ASSUME,
                    "ManagedPolicyArns": [
                        {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                                ],
                            ]
                        }
                    ],
                },
            },
            "FnPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "p",
                    "Roles": [{"Ref": "FnRole"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "s3:GetObject",
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        ["arn:aws:s3:::", {"Fn::ImportValue": "T-Storage:Bucket"}, "/*"],
                                    ]
                                },
                            }
                        ],
                    },
                },
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "DependsOn": ["FnPolicy"],
                "Metadata": {"novajudge:source": source},
                "Properties": {
                    "Handler": "handler.handler",
                    "Runtime": "python3.14",
                    "Role": {"Fn::GetAtt": ["FnRole", "Arn"]},
                    "Code": {
                        "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}"},
                        "S3Key": "x.zip",
                    },
                    "Environment": {"Variables": {"BUCKET_NAME": {"Fn::ImportValue": "T-Storage:Bucket"}}},
                },
            },
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
            "SmRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": ASSUME}},
            "Sm": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["SmRole", "Arn"]},
                    "LoggingConfiguration": {
                        "Destinations": [
                            {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["Logs", "Arn"]}}}
                        ]
                    },
                    "DefinitionString": {
                        "Fn::Join": [
                            "",
                            [
                                '{"StartAt":"Call","States":{"Call":{"Type":"Task","Resource":"arn:',
                                {"Ref": "AWS::Partition"},
                                ':states:::lambda:invoke","Parameters":{"FunctionName":"',
                                {"Fn::GetAtt": ["Fn", "Arn"]},
                                '","Payload.$":"$"},"OutputPath":"$.Payload","End":true}}}',
                            ],
                        ]
                    },
                },
            },
        },
        "Outputs": {"StateMachineArn": {"Value": {"Ref": "Sm"}}},
    }


HANDLER = (
    "import os\n\ndef handler(event, context):\n    return {'bucket': os.environ['BUCKET_NAME'], "
    "'stand_in': os.environ['NOVAJUDGE_STAND_IN'], 'event': event}\n"
)


def test_deploy_handmade_stacks_and_run(tmp_path: Path) -> None:
    (tmp_path / "lambdas" / "fn").mkdir(parents=True)
    (tmp_path / "lambdas" / "fn" / "handler.py").write_text(HANDLER)
    stacks = [
        StackTemplate("T-Storage", STORAGE),
        StackTemplate("T-Endpoints", ENDPOINTS),
        StackTemplate("T-Pipeline", _pipeline("lambdas/fn")),
    ]
    with local_aws() as emu:
        dep = deploy(emu, stacks, root=tmp_path)
        bucket = dep.output("BucketName")
        assert bucket.startswith("t-storage-bucket-")
        assert dep.output("EndpointAName") == "t-model-a"
        assert {t for _, _, t, _ in dep.skipped} == {
            "Custom::S3AutoDeleteObjects",
            "AWS::CDK::Metadata",
            "AWS::Logs::LogGroup",
            "ManagedPolicyAttachment",
        }
        assert not dep.unknown_types
        image = emu.client("sagemaker").describe_model(
            ModelName=emu.client("sagemaker").list_models()["Models"][0]["ModelName"]
        )["PrimaryContainer"]["Image"]
        assert image == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tgi:latest"
        sfn = emu.client("stepfunctions")
        ex = sfn.start_execution(stateMachineArn=dep.output("StateMachineArn"), name="e1", input='{"q": 1}')
        for _ in range(100):
            desc = sfn.describe_execution(executionArn=ex["executionArn"])
            if desc["status"] != "RUNNING":
                break
            time.sleep(0.1)
        assert desc["status"] == "SUCCEEDED", desc
        assert json.loads(desc["output"]) == {"bucket": bucket, "stand_in": "1", "event": {"q": 1}}


def test_definition_referring_to_skipped_resource_is_refused(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "handler.py").write_text(HANDLER)
    pipeline = _pipeline("h")
    pipeline["Resources"]["Fn"]["Metadata"] = {}  # a helper function: skipped
    with local_aws() as emu, pytest.raises(DeployError, match="skipped resource"):
        deploy(
            emu, [StackTemplate("T-Storage", STORAGE), StackTemplate("T-Pipeline", pipeline)], root=tmp_path
        )


def test_a_state_machine_marked_as_helper_is_skipped_not_refused(tmp_path: Path) -> None:
    """The teardown Provider's waiter (novajudge:helper Metadata) runs only on stack deletion."""
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "handler.py").write_text(HANDLER)
    pipeline = _pipeline("h")
    pipeline["Resources"]["Fn"]["Metadata"] = {}  # a helper function: skipped
    pipeline["Resources"]["Sm"]["Metadata"] = {"novajudge:helper": "a Provider's waiter"}
    pipeline["Outputs"] = {}
    with local_aws() as emu:
        dep = deploy(
            emu, [StackTemplate("T-Storage", STORAGE), StackTemplate("T-Pipeline", pipeline)], root=tmp_path
        )
        assert ("T-Pipeline", "Sm") in {(stack, logical) for stack, logical, _, _ in dep.skipped}
        assert emu.client("stepfunctions").list_state_machines()["stateMachines"] == []


def test_missing_import_names_stack_and_resource(tmp_path: Path) -> None:
    with local_aws() as emu, pytest.raises(DeployError, match=r"T-Pipeline/FnPolicy .*no stack exports"):
        deploy(emu, [StackTemplate("T-Pipeline", _pipeline("x"))], root=tmp_path)
