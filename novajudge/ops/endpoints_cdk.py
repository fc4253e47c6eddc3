"""Stop or restart the largest cost, the two candidate endpoints, without touching results.

The endpoints live in their own stack precisely so that this works: nothing imports its outputs
(docs/design.md), so `cdk destroy <prefix>-Endpoints` removes the two GPU instances and leaves the
bucket, the state machine and every run's results in place. The command goes through the repo's
pinned CDK CLI (`npx --no-install cdk`, never a global or freshly downloaded one), and the process
runner is a parameter so tests check the exact command line without running it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from novajudge.ops.aws import OpsError

Action = Literal["down", "up"]

#: (command, working directory, environment) → exit code.
Runner = Callable[[Sequence[str], Path, Mapping[str, str]], int]

#: As in the Makefile: keep the CDK CLI off the network and quiet about the node version.
CDK_ENV = {"CDK_DISABLE_CLI_TELEMETRY": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


@dataclass(frozen=True)
class CdkInvocation:
    argv: list[str]
    cwd: Path
    env_overrides: dict[str, str]

    def shell(self) -> str:
        return " ".join(self.argv)


def cdk_invocation(
    action: Action,
    stack_name: str,
    repo: Path,
    *,
    prefix: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> CdkInvocation:
    """The exact `npx --no-install cdk …` command for `endpoints down|up`.

    `-c stack_prefix=…` is added only for a non-default `--prefix`, so the app synthesizes the
    stack of that name; `--profile` is passed through; the region goes in the environment, which
    is where the CDK CLI reads it.
    """
    if action == "down":
        argv = ["npx", "--no-install", "cdk", "destroy", stack_name, "--force"]
    elif action == "up":
        argv = ["npx", "--no-install", "cdk", "deploy", stack_name]
    else:  # pragma: no cover - guarded by the CLI
        raise ValueError(action)
    if prefix is not None:
        argv += ["-c", f"stack_prefix={prefix}"]
    if profile:
        argv += ["--profile", profile]
    env = dict(CDK_ENV)
    if region:
        env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return CdkInvocation(argv=argv, cwd=repo, env_overrides=env)


def subprocess_runner(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run the CDK CLI with the terminal attached (it prints its own progress and prompts)."""
    if shutil.which(argv[0]) is None:
        raise OpsError(f"{argv[0]!r} not found: install Node.js 20 and run `make setup` in {cwd}")
    if not (cwd / "node_modules" / ".bin" / "cdk").exists():
        raise OpsError(f"the pinned CDK CLI is not installed in {cwd}/node_modules: run `make setup`")
    return subprocess.run(list(argv), cwd=cwd, env={**os.environ, **env}, check=False).returncode


def run(invocation: CdkInvocation, runner: Runner = subprocess_runner) -> int:
    return runner(invocation.argv, invocation.cwd, invocation.env_overrides)
