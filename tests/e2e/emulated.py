"""What the e2e suites share: the stacks deployed in the emulator, and the stand-ins installed in it."""

from __future__ import annotations

from dataclasses import dataclass

from novajudge.local import moto_patches
from novajudge.local.demo import LOCAL_LAMBDA_ENV
from novajudge.local.deploy import Deployment
from novajudge.local.emulator import Emulator
from novajudge.local.standins import StandInEndpoints, StandInJudge


@dataclass
class Deployed:
    """The deployed stacks and the emulator serving them; each suite adds its stand-ins."""

    emu: Emulator
    deployment: Deployment

    @property
    def bucket(self) -> str:
        return str(self.deployment.output("BucketName"))

    @property
    def machine(self) -> str:
        return str(self.deployment.output("StateMachineArn"))

    def get(self, key: str) -> bytes:
        return self.emu.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.emu.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def install_stand_ins(emu: Emulator, profiles: dict[str, str]) -> tuple[StandInEndpoints, StandInJudge]:
    """Stand-in endpoints (answering as `profiles` says per endpoint name) and judge, installed in
    the emulator; a judge job ends 0.5 s after it starts; the Lambdas see `LOCAL_LAMBDA_ENV`."""
    endpoints = StandInEndpoints(profiles=profiles)
    judge = StandInJudge(s3_factory=lambda: emu.client("s3"))
    moto_patches.registry.endpoint_handler = endpoints
    moto_patches.registry.training_job_hook = judge
    moto_patches.registry.training_job_seconds = 0.5
    moto_patches.registry.extra_env.update(LOCAL_LAMBDA_ENV)
    return endpoints, judge
