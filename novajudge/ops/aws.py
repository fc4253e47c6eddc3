"""One place that builds boto3 clients for the operating commands.

Every command takes `--profile` and `--region`; boto3 itself honours `AWS_ENDPOINT_URL` (the local
emulator and moto server use it), so nothing here special-cases the emulator. Client creation is
centralised so credential and region problems become one clear `OpsError` instead of a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, NoCredentialsError, NoRegionError, ProfileNotFound

from novajudge.errors import NovaJudgeError


class OpsError(NovaJudgeError):
    """An operating command could not do its work (stack missing, AWS refused, run failed)."""


class UsageProblem(NovaJudgeError, ValueError):
    """The user asked for something impossible (bad option, unknown run); nothing was started.

    The CLI maps it to exit code 2, like Click's own usage errors.
    """


#: Retries for read calls: the commands poll, so a transient throttle should not abort a follow.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})


@dataclass
class Aws:
    """A boto3 session plus memoised clients, created lazily so `--help` never touches AWS."""

    profile: str | None = None
    region: str | None = None
    _session: Any = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def session(self) -> Any:
        if self._session is None:
            try:
                self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound as exc:
                raise OpsError(f"AWS profile {self.profile!r} not found: {exc}") from None
        return self._session

    @property
    def region_name(self) -> str:
        region = self.session.region_name
        if not region:
            raise OpsError("no AWS region: pass --region, set AWS_REGION, or configure the profile's region")
        return region

    @property
    def endpoint_url(self) -> str | None:
        """The custom endpoint (local emulator) if any; then console links point nowhere real."""
        return os.environ.get("AWS_ENDPOINT_URL") or None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(
                    service, region_name=self.region_name, config=_CONFIG
                )
            except (NoRegionError, NoCredentialsError, BotoCoreError) as exc:
                raise OpsError(f"cannot create the {service} client: {exc}") from None
        return self._clients[service]


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
