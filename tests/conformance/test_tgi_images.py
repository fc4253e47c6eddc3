"""The endpoints' TGI image against the SageMaker Python SDK's image table, for every region it lists.

`stacks/constructs/tgi_images.json` is what synth reads (no SDK, no network needed); it must be
exactly what `python -m stacks.constructs.images` generates from the pinned SDK, and the image URI
the synthesized template resolves to must be the SDK's `image_uris.retrieve(...)` in every region.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest

from novajudge.config import Settings
from novajudge.local.cfn import Resolver
from stacks.constructs import images

DEFAULT_TAG = Settings().tgi_image_version
#: Partitions whose AWS::URLSuffix the local resolver models (aws, aws-cn, aws-us-gov); the isolated
#: partitions' suffixes are checked against the SDK's URI parts instead.
ISOLATED = ("us-iso", "us-isob", "us-isof")


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`sagemaker.image_uris`, with botocore's endpoint table loaded once instead of per call."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        import sagemaker.utils
        from sagemaker import image_uris

        mp.setattr(sagemaker.utils, "_botocore_resolver", functools.cache(sagemaker.utils._botocore_resolver))
        yield image_uris


@pytest.fixture(scope="module")
def sdk_regions(sdk: Any) -> list[str]:
    versions = sdk.config_for_framework(images.SDK_FRAMEWORK)["inference"]["versions"]
    return sorted({region for spec in versions.values() for region in spec["registries"]})


def _sdk_version_of(tag: str) -> str:
    """`2.7.0-tgi3.3.6-gpu-...` -> `3.3.6`, the version key the SDK's table uses."""
    return next(v for v, t in images.tgi_tags().items() if t == tag)


def test_the_snapshot_is_what_the_sdk_generates(sdk: Any) -> None:
    assert images.generate_tgi_images() == images.tgi_images()


def test_the_mapping_lists_every_region_the_sdk_lists(sdk_regions: list[str]) -> None:
    assert sorted(images.dlc_accounts()) == sdk_regions
    assert len(sdk_regions) >= 42


def test_the_default_tag_is_one_the_sdk_knows(sdk: Any) -> None:
    version = _sdk_version_of(DEFAULT_TAG)
    uri = sdk.retrieve(images.SDK_FRAMEWORK, region="us-east-1", version=version, image_scope="inference")
    assert uri.endswith(f"/{images.TGI_REPOSITORY}:{DEFAULT_TAG}")


def _mismatches(sdk: Any, regions: list[str]) -> list[str]:
    """Regions where the image URI of a freshly synthesized template differs from the SDK's."""
    app = cdk.App()
    stack = cdk.Stack(app, "Tgi")
    uri, _lookup = images.tgi_image(stack, "TgiImage", DEFAULT_TAG)
    cdk.CfnOutput(stack, "Image", value=uri)
    template = app.synth().get_stack_by_name("Tgi").template
    value = template["Outputs"]["Image"]["Value"]
    version = _sdk_version_of(DEFAULT_TAG)
    wrong = []
    for region in regions:
        expected = sdk.retrieve(images.SDK_FRAMEWORK, region=region, version=version, image_scope="inference")
        ours = Resolver(template, "Tgi", region, "123456789012").resolve(value)
        if region.startswith(ISOLATED):
            want, got = images.IMAGE_URI.match(expected), images.IMAGE_URI.match(ours)
            same = bool(want and got) and all(
                got[part] == want[part] for part in ("account", "region", "repository", "tag")
            )
        else:
            same = ours == expected
        if not same:
            wrong.append(region)
    return wrong


def test_synthesized_image_uri_is_the_sdks_in_every_region(sdk: Any, sdk_regions: list[str]) -> None:
    assert _mismatches(sdk, sdk_regions) == []


def test_negative_control_a_wrong_account_is_seen(sdk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = {**images.dlc_accounts(), "af-south-1": images.dlc_accounts()["us-east-1"]}
    monkeypatch.setattr(images, "dlc_accounts", lambda: accounts)
    assert _mismatches(sdk, ["us-east-1", "af-south-1", "cn-north-1"]) == ["af-south-1"]
