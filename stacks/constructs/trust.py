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


def sagemaker_principal(
    stack: cdk.Stack, source_resource: str, *, keys_documented: bool = True
) -> iam.ServicePrincipal:
    """SageMaker, only for this account's `source_resource` (e.g. `training-job/*`, or `*`).

    `keys_documented=False` is for uses whose source keys AWS does not document (real-time hosting:
    the confused-deputy page names training jobs, not models or endpoints). There the conditions are
    `...IfExists`: they bind whenever SageMaker sends the keys, and cannot break endpoint creation
    if it does not; with the plain operators a missing key would refuse the role at deploy time.
    """
    source_arn = f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{source_resource}"
    suffix = "" if keys_documented else "IfExists"
    return iam.ServicePrincipal(
        SAGEMAKER,
        conditions={
            f"StringEquals{suffix}": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
            f"ArnLike{suffix}": {"aws:SourceArn": source_arn},
        },
    )
