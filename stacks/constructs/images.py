"""Container images whose registry account differs by region, resolved by CloudFormation at deploy.

The stacks are environment-agnostic (synth needs no credentials and no region), so the account
that hosts an image cannot be chosen in Python: it is looked up with `Fn::FindInMap` keyed by
`AWS::Region`. A region missing from a table is refused by a CloudFormation Rule at changeset time,
with a message that says why, instead of failing later inside SageMaker with a pull error.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk.region_info import Fact, FactName
from constructs import Construct

from novajudge.judge import catalog

#: What pulling an image needs on the repository (ecr:GetAuthorizationToken is account-wide).
ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

#: Repository of the Hugging Face TGI deep learning containers (same name in every region).
TGI_REPOSITORY = "huggingface-pytorch-tgi-inference"

#: Regions the aws-cdk-lib facts miss, from the SageMaker Python SDK's `huggingface-llm` image
#: table (`src/sagemaker/image_uri_config/huggingface-llm.json` of
#: https://github.com/aws/sagemaker-python-sdk). Checked by a test so an upstream fix is noticed.
DLC_ACCOUNTS_MISSING_FROM_FACTS: dict[str, str] = {
    "il-central-1": "780543022126",
    "af-south-1": "626614931356",
}


def dlc_accounts() -> dict[str, str]:
    """Region -> account of the AWS deep learning containers, for every region known to CDK.

    Generated from `aws_cdk.region_info` rather than typed by hand so that upgrading aws-cdk-lib
    brings new regions for free; the few gaps are filled from `DLC_ACCOUNTS_MISSING_FROM_FACTS`.
    """
    accounts: dict[str, str] = {}
    for region in Fact.regions:
        account = Fact.find(region, FactName.DLC_REPOSITORY_ACCOUNT)
        if account:
            accounts[region] = account
    for region, account in DLC_ACCOUNTS_MISSING_FROM_FACTS.items():
        accounts.setdefault(region, account)
    return dict(sorted(accounts.items()))


class RegionalAccount(Construct):
    """A region-keyed CfnMapping of image accounts plus a Rule refusing unlisted regions.

    `account` is a token (`Fn::FindInMap` on `AWS::Region`), usable in image URIs and IAM ARNs.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, accounts: Mapping[str, str], what: str
    ) -> None:
        super().__init__(scope, construct_id)
        if not accounts:
            raise ValueError(f"no regions listed for {what}")
        self.regions: tuple[str, ...] = tuple(sorted(accounts))
        self.mapping = cdk.CfnMapping(
            self,
            "Accounts",
            mapping={region: {"account": accounts[region]} for region in self.regions},
        )
        self.account: str = self.mapping.find_in_map(cdk.Aws.REGION, "account")
        cdk.CfnRule(
            self,
            "SupportedRegion",
            assertions=[
                cdk.CfnRuleAssertion(
                    assert_=cdk.Fn.condition_contains(list(self.regions), cdk.Aws.REGION),
                    assert_description=(
                        f"{what} is not available in this region; deploy to one of: {', '.join(self.regions)}"
                    ),
                )
            ],
        )


def tgi_image(scope: Construct, construct_id: str, version: str) -> tuple[str, RegionalAccount]:
    """The TGI image URI for `version` in the deployment region, and the account lookup behind it.

    `AWS::URLSuffix` gives `amazonaws.com.cn` in China, where the DLC accounts differ too.
    """
    lookup = RegionalAccount(
        scope,
        construct_id,
        accounts=dlc_accounts(),
        what="The Hugging Face TGI deep learning container",
    )
    uri = f"{lookup.account}.dkr.ecr.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}/{TGI_REPOSITORY}:{version}"
    return uri, lookup


def nova_eval_account(scope: Construct, construct_id: str) -> RegionalAccount:
    """The account hosting `nova-evaluation-repo` in the deployment region (documented regions only).

    The table is `novajudge.judge.catalog.NOVA_EVAL_IMAGE_ACCOUNTS`, the same one the start-judge
    Lambda uses, so the role can pull exactly the image the job will name.
    """
    return RegionalAccount(
        scope,
        construct_id,
        accounts=catalog.NOVA_EVAL_IMAGE_ACCOUNTS,
        what="The Amazon Nova LLM-as-a-judge evaluation image",
    )


def ecr_repository_arn(account: str, repository: str) -> str:
    """ARN of a repository in another (AWS-owned) account, in the deployment region and partition."""
    return f"arn:{cdk.Aws.PARTITION}:ecr:{cdk.Aws.REGION}:{account}:repository/{repository}"
