"""Container images whose registry account differs by region, resolved by CloudFormation at deploy.

The stacks are environment-agnostic (synth needs no credentials and no region), so the account
that hosts an image cannot be chosen in Python: it is looked up with `Fn::FindInMap` keyed by
`AWS::Region`. That lookup is also the region check. CloudFormation documents that the standard
`Fn::FindInMap` cannot handle a missing key (a `DefaultValue` needs the `AWS::LanguageExtensions`
transform: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-findinmap-enhancements.html),
so a stack in a region missing from a table fails with "Unable to get mapping for
<Name>AccountByRegion::<region>::account" before SageMaker ever tries to pull an image. A template
Rule on `AWS::Region` was dropped: the Rules documentation describes rules over parameter values
and no source confirms pseudo parameters there.

The TGI table is generated from the SageMaker Python SDK's image table (`huggingface-llm`), the source
the AWS notebooks resolve the image with, and committed as `tgi_images.json` so that synth needs
neither the SDK nor a network: refresh it with `python -m stacks.constructs.images` after upgrading
the `sagemaker` pin in requirements-dev.txt (tests/conformance/test_tgi_images.py compares the two).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from novajudge.errors import ConfigError
from novajudge.judge import catalog

#: What pulling an image needs on the repository (ecr:GetAuthorizationToken is account-wide).
ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

#: Repository of the Hugging Face TGI deep learning containers (same name in every region).
TGI_REPOSITORY = "huggingface-pytorch-tgi-inference"
#: The SDK's framework key of the TGI images.
SDK_FRAMEWORK = "huggingface-llm"
#: The snapshot of the SDK's table that synth reads.
TGI_IMAGES_FILE = Path(__file__).with_name("tgi_images.json")
#: `<account>.dkr.ecr.<region>.<url suffix>/<repository>:<tag>`, as `image_uris.retrieve` returns it.
IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.(?P<suffix>[a-z0-9.]+)/"
    r"(?P<repository>[\w.-]+):(?P<tag>[\w.-]+)$"
)


@cache
def tgi_images() -> dict[str, Any]:
    """The committed snapshot: `accounts` (region -> account), `tags` (by TGI version), `source`."""
    return json.loads(TGI_IMAGES_FILE.read_text(encoding="utf-8"))


def dlc_accounts() -> dict[str, str]:
    """Region -> account of the TGI image, for every region the SageMaker SDK lists."""
    return dict(sorted(tgi_images()["accounts"].items()))


def tgi_tags() -> dict[str, str]:
    """TGI version (`3.3.6`) -> full image tag (`2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04`)."""
    return dict(tgi_images()["tags"])


def generate_tgi_images() -> dict[str, Any]:
    """The snapshot, computed with the installed SageMaker SDK (a development dependency).

    Every version's tag comes from `image_uris.retrieve` in us-east-1, every region's account from
    `retrieve` of the newest version; a region whose account differs between versions is an error
    (one mapping per region cannot express it).
    """
    import sagemaker
    from sagemaker import image_uris

    versions = image_uris.config_for_framework(SDK_FRAMEWORK)["inference"]["versions"]

    def parts(region: str, version: str) -> re.Match[str]:
        uri = image_uris.retrieve(SDK_FRAMEWORK, region=region, version=version, image_scope="inference")
        match = IMAGE_URI.match(uri)
        if not match or match["repository"] != TGI_REPOSITORY or match["region"] != region:
            raise ValueError(f"unexpected {SDK_FRAMEWORK} image URI for {region} {version}: {uri}")
        return match

    tags = {version: parts("us-east-1", version)["tag"] for version in versions}
    newest = list(versions)[-1]
    accounts = {region: parts(region, newest)["account"] for region in sorted(versions[newest]["registries"])}
    for version, spec in versions.items():
        for region, account in spec["registries"].items():
            if accounts.get(region, account) != account:
                raise ValueError(
                    f"{region}: account {account} for TGI {version}, {accounts[region]} for {newest}"
                )
    return {
        "source": f"sagemaker {sagemaker.__version__}, image_uris.retrieve('{SDK_FRAMEWORK}', ...)",
        "repository": TGI_REPOSITORY,
        "accounts": accounts,
        "tags": tags,
    }


class RegionalAccount(Construct):
    """A region-keyed CfnMapping of image accounts; the lookup fails for unlisted regions.

    `account` is a token (`Fn::FindInMap` on `AWS::Region`), usable in image URIs and IAM ARNs. The
    mapping's logical id is `<construct id>AccountByRegion`, so CloudFormation's error for a missing
    region names what is missing; `what` and `regions` are for documentation and messages.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, accounts: Mapping[str, str], what: str
    ) -> None:
        super().__init__(scope, construct_id)
        if not accounts:
            raise ValueError(f"no regions listed for {what}")
        self.what = what
        self.regions: tuple[str, ...] = tuple(sorted(accounts))
        self.mapping = cdk.CfnMapping(
            self,
            "Accounts",
            mapping={region: {"account": accounts[region]} for region in self.regions},
        )
        self.mapping.override_logical_id(f"{construct_id}AccountByRegion")
        self.account: str = self.mapping.find_in_map(cdk.Aws.REGION, "account")


def tgi_image(scope: Construct, construct_id: str, version: str) -> tuple[str, RegionalAccount]:
    """The TGI image URI for `version` in the deployment region, and the account lookup behind it.

    `AWS::URLSuffix` gives `amazonaws.com.cn` in China, where the DLC accounts differ too. A tag the
    SDK's table does not list fails synth: an endpoint on a missing image fails only after minutes.
    """
    known = tgi_tags()
    if version not in known.values():
        newest = max(known, key=lambda v: tuple(int(p) for p in v.split(".")))
        raise ConfigError(
            f"invalid configuration: tgi_image_version={version!r}: expected a tag the SageMaker SDK "
            f"lists (newest: {known[newest]}); after upgrading the sagemaker pin, refresh "
            "stacks/constructs/tgi_images.json with `python -m stacks.constructs.images`"
        )
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


if __name__ == "__main__":  # pragma: no cover - a maintenance command, run by hand
    TGI_IMAGES_FILE.write_text(json.dumps(generate_tgi_images(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {TGI_IMAGES_FILE}", file=sys.stderr)
