"""Service principals with confused-deputy conditions, for the roles SageMaker assumes.

A role that trusts `sagemaker.amazonaws.com` without conditions can be assumed by SageMaker on
behalf of a resource in any account. `aws:SourceAccount` limits it to this account and
`aws:SourceArn` to the kind of resource that uses the role (training jobs for the judge, the models
and endpoints for the candidates), as AWS recommends:
https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

SAGEMAKER = "sagemaker.amazonaws.com"


def sagemaker_principal(stack: cdk.Stack, source_resource: str) -> iam.ServicePrincipal:
    """SageMaker, only for this account's `source_resource` (e.g. `training-job/*`, or `*`)."""
    source_arn = f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{source_resource}"
    return iam.ServicePrincipal(
        SAGEMAKER,
        conditions={
            "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": source_arn},
        },
    )
