"""The deployed stacks' Outputs, read by key as docs/design.md lists them.

The CLI never hard-codes a bucket or a state machine ARN: it asks CloudFormation
(`describe_stacks`) for the stacks named by `Settings.stack_names()`. The endpoints stack may be
destroyed on purpose (`novajudge endpoints down`), so its outputs are optional; the storage and
pipeline stacks are required for anything that touches a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from novajudge.config import Settings
from novajudge.layout import OUTPUT_BUCKET, OUTPUT_JUDGE_ROLE, OUTPUT_STATE_MACHINE, endpoint_output
from novajudge.ops.aws import OpsError, error_code

#: Stack states whose outputs cannot be trusted (a failed create, or a stack being deleted).
_UNUSABLE = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_FAILED",
        "ROLLBACK_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
    }
)


class StackNotFound(OpsError):
    """The named stack does not exist in this account and region (not deployed, wrong prefix)."""


def read_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """`{OutputKey: OutputValue}` of one stack; `StackNotFound` when it is not deployed."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            raise StackNotFound(
                f"stack {stack_name!r} is not deployed in this account/region "
                "(deploy with `make deploy`, or pass --prefix/--region/--profile)"
            ) from None
        raise OpsError(f"cannot describe stack {stack_name!r}: {exc}") from None
    if not stacks:
        raise StackNotFound(f"stack {stack_name!r} is not deployed in this account/region")
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status in _UNUSABLE:
        raise OpsError(f"stack {stack_name!r} is in state {status}; fix or redeploy it first")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", []) or []}


def _require(outputs: dict[str, str], keys: tuple[str, ...], stack_name: str) -> None:
    missing = [k for k in keys if not outputs.get(k)]
    if missing:
        raise OpsError(
            f"stack {stack_name!r} has no output(s) {', '.join(missing)}; "
            "it was deployed from an older version: redeploy it (`make deploy`)"
        )


@dataclass(frozen=True)
class Deployment:
    """What the operating commands need from the three stacks."""

    bucket: str
    state_machine_arn: str
    judge_role_arn: str | None = None
    endpoint_a_name: str | None = None
    endpoint_b_name: str | None = None


def load_deployment(cfn: Any, settings: Settings) -> Deployment:
    """Read the storage and pipeline stacks (required) and the endpoints stack (optional)."""
    names = settings.stack_names()
    storage = read_outputs(cfn, names["storage"])
    _require(storage, (OUTPUT_BUCKET,), names["storage"])
    pipeline = read_outputs(cfn, names["pipeline"])
    _require(pipeline, (OUTPUT_STATE_MACHINE,), names["pipeline"])
    try:
        endpoints = read_outputs(cfn, names["endpoints"])
    except StackNotFound:
        endpoints = {}
    return Deployment(
        bucket=storage[OUTPUT_BUCKET],
        state_machine_arn=pipeline[OUTPUT_STATE_MACHINE],
        judge_role_arn=storage.get(OUTPUT_JUDGE_ROLE),
        # The endpoint names are derived from the configuration too (design.md), so the cost
        # commands can still ask SageMaker about them after the stack is gone.
        endpoint_a_name=endpoints.get(endpoint_output("A", "Name")) or settings.endpoint_name("A"),
        endpoint_b_name=endpoints.get(endpoint_output("B", "Name")) or settings.endpoint_name("B"),
    )
