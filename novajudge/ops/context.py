"""The configuration and AWS access one operating command works with.

Stack names come from the same `cdk.json` the CDK app reads (`Settings.from_cdk_json`), so the CLI
and `cdk deploy` can never disagree about them; `--prefix` overrides the prefix for a second
deployment in the same account.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from novajudge.config import Settings
from novajudge.errors import ConfigError
from novajudge.ops.aws import Aws, OpsError, UsageProblem

#: Overrides where `cdk.json` is found (tests, or running the CLI outside the repository).
CDK_JSON_ENV = "NOVAJUDGE_CDK_JSON"


def cdk_json_path() -> Path:
    """`cdk.json`: $NOVAJUDGE_CDK_JSON, else the source checkout's (editable install), else ./cdk.json."""
    configured = os.environ.get(CDK_JSON_ENV)
    return Path(configured) if configured else _project_folder() / "cdk.json"


def repo_root() -> Path:
    """The project folder holding `cdk.json`: $NOVAJUDGE_CDK_JSON's folder, the source checkout the
    package is installed from (editable install), or the current directory, in that order."""
    return cdk_json_path().resolve().parent


def _project_folder() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "cdk.json").is_file() else Path.cwd()


def load_settings(prefix: str | None = None) -> Settings:
    """Settings of the deployment; a bad `--prefix` is a usage error, a bad cdk.json a failure."""
    overrides = {"stack_prefix": prefix} if prefix is not None else None
    try:
        return Settings.from_cdk_json(cdk_json_path(), overrides)
    except ConfigError as exc:
        if prefix is not None and "stack_prefix" in str(exc):
            raise UsageProblem(f"--prefix {prefix!r}: {exc}") from None
        raise OpsError(f"{cdk_json_path()}: {exc}") from None


@dataclass
class OpsContext:
    """Settings plus lazily-created AWS clients for one command invocation."""

    settings: Settings
    aws: Aws

    @classmethod
    def create(cls, profile: str | None, region: str | None, prefix: str | None) -> OpsContext:
        return cls(settings=load_settings(prefix), aws=Aws(profile=profile, region=region))
