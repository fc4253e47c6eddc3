"""Acknowledging cdk-nag (AwsSolutions) findings with cdk-nag 3's `Validations.of().acknowledge()`.

cdk-nag 3 has no prefix matching: each finding of a multi-finding rule (IAM4, IAM5) is its own
id, `AwsSolutions-IAM5[Resource::<what>]`. This helper builds those ids so call sites list only
the finding text, and refuses empty reasons so every acknowledgement carries a real justification.
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"
#: Shorter than this is not a reason ("ok", "n/a"); the reason is what a reviewer audits.
MIN_REASON_CHARS = 30


def rule_ids(rule: str, findings: Iterable[str] = ()) -> list[str]:
    """`AwsSolutions-<rule>` or one `AwsSolutions-<rule>[<finding>]` per finding."""
    base = rule if rule.startswith(f"{PACK}-") else f"{PACK}-{rule}"
    findings = list(findings)
    return [f"{base}[{finding}]" for finding in findings] if findings else [base]


def acknowledge(scope: IConstruct, rule: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    """Acknowledge `rule` (e.g. "S1", "IAM5") on `scope` and its children, with `reason`.

    `findings` narrows a multi-finding rule to the listed findings (e.g. "Resource::*"), so a new
    wildcard added later still fails synth instead of being silently covered.
    """
    if len(reason.strip()) < MIN_REASON_CHARS:
        raise ValueError(f"acknowledging {rule} needs a real reason, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids(rule, findings))
    )
