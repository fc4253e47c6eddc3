"""Builds the whole CDK app; `app.py` and the tests share it so tests synthesize what users deploy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from novajudge.config import Settings
from stacks.endpoints_stack import EndpointsStack
from stacks.pipeline_stack import PipelineStack
from stacks.storage_stack import StorageStack


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """The three stacks with cdk-nag AwsSolutions checks; a bad setting raises `ConfigError`.

    The stacks are environment-agnostic (no account/region at synth), so synthesis needs no
    credentials; everything regional is resolved by CloudFormation at deploy time.
    """
    app = cdk.App(context=dict(context or {}), outdir=outdir)
    settings = Settings.from_context(app.node.try_get_context)
    names = settings.stack_names()

    storage = StorageStack(app, names["storage"], settings=settings)
    EndpointsStack(app, names["endpoints"], settings=settings)
    pipeline = PipelineStack(
        app,
        names["pipeline"],
        settings=settings,
        bucket=storage.bucket,
        judge_role=storage.judge_role,
    )
    pipeline.add_stack_dependency(storage)

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
