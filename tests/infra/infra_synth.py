"""Synthesizing the CDK app for tests: what `app.py` builds, with the context of cdk.json.

The app is built by `stacks.app_builder.build_app` (what `app.py` runs) with the context of
`cdk.json` (what the CLI passes: feature flags and defaults), so the tests check what users
deploy. Lambda bundling is skipped (`aws:cdk:bundling-stacks: []`): it needs pip and minutes, and
the templates do not depend on the bundle's contents. Synthesis raising means cdk-nag found an
unacknowledged finding (the report is in `<outdir>/validation-report.json`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from novajudge.config import Settings  # noqa: E402

SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    """The `context` block of cdk.json, as the CDK CLI hands it to the app."""
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


@dataclass(frozen=True)
class Synth:
    """One synthesized app: its settings, templates by stack role, and the validation report."""

    settings: Settings
    templates: dict[str, dict[str, Any]]
    outdir: Path
    report: dict[str, Any]

    def resources(self, role: str, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of `resource_type` in the template of stack `role`, by logical id."""
        res = self.templates[role].get("Resources", {})
        return {k: v for k, v in res.items() if v["Type"] == resource_type}


def pipeline_stack_exists() -> bool:
    return (ROOT / "stacks" / "pipeline_stack.py").exists()


def _build(context: Mapping[str, Any], outdir: Path) -> cdk.App:
    """`build_app` once the pipeline stack lands; until then the two foundation stacks alone."""
    if pipeline_stack_exists():
        from stacks.app_builder import build_app

        return build_app(context=context, outdir=str(outdir))
    from stacks.endpoints_stack import EndpointsStack
    from stacks.storage_stack import StorageStack

    app = cdk.App(context=dict(context), outdir=str(outdir))
    settings = Settings.from_context(app.node.try_get_context)
    names = settings.stack_names()
    StorageStack(app, names["storage"], settings=settings)
    EndpointsStack(app, names["endpoints"], settings=settings)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def synth_app(outdir: Path, **context: Any) -> Synth:
    """Synthesize with cdk.json's context plus `context` (strings, as `-c key=value` gives them)."""
    full = {**cdk_json_context(), **SKIP_BUNDLING, **context}
    app = _build(full, outdir)
    assembly = app.synth()
    settings = Settings.from_context(app.node.try_get_context)
    by_name = {stack.stack_name: stack for stack in assembly.stacks}
    templates = {
        role: by_name[name].template for role, name in settings.stack_names().items() if name in by_name
    }
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synth(settings=settings, templates=templates, outdir=outdir, report=report)
