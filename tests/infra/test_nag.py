"""cdk-nag: synth passes with every finding acknowledged, and each acknowledgement is needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_helpers import nag_violations
from infra_synth import Synth, synth_app

from stacks.constructs import nag


def test_default_app_has_no_unacknowledged_finding(app_synth: Synth) -> None:
    # Reaching here means synth did not raise; the report must agree.
    assert nag_violations(app_synth.report) == []
    assert all(p.get("conclusion") != "failure" for p in app_synth.report.get("pluginReports", []))


def test_every_acknowledgement_matches_a_real_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the acknowledgements, synth fails with exactly the acknowledged findings.

    This proves cdk-nag runs in the app, that each acknowledgement id is spelled as cdk-nag
    reports it, and that nothing is acknowledged that is not found.
    """
    acknowledged: set[tuple[str, str]] = set()

    def record(scope: Any, rule: str, reason: str, *, findings: Any = ()) -> None:
        assert len(reason) >= nag.MIN_REASON_CHARS
        acknowledged.update((scope.node.path, rule_id) for rule_id in nag.rule_ids(rule, findings))

    monkeypatch.setattr(nag, "acknowledge", record)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_app(tmp_path)
    found = nag_violations(json.loads((tmp_path / "validation-report.json").read_text()))

    ours = ("NovaJudge-Storage/", "NovaJudge-Endpoints/")
    found_ours = {(path, rule) for path, rule in found if path.startswith(ours)}
    acknowledged_ours = {(path, rule) for path, rule in acknowledged if path.startswith(ours)}
    # A finding is reported on the CfnResource below the construct that acknowledged it.
    matched = {
        (scope, rule)
        for scope, rule in acknowledged_ours
        for path, found_rule in found_ours
        if found_rule == rule and (path == scope or path.startswith(scope + "/"))
    }
    assert matched == acknowledged_ours, f"acknowledged but not found: {acknowledged_ours - matched}"
    unexplained = {
        (path, rule)
        for path, rule in found_ours
        if not any(rule == r and (path == s or path.startswith(s + "/")) for s, r in acknowledged_ours)
    }
    assert not unexplained
    assert {rule.split("[")[0] for _, rule in found_ours} == {"AwsSolutions-IAM5"}


def test_rule_ids_name_each_finding() -> None:
    assert nag.rule_ids("S1") == ["AwsSolutions-S1"]
    assert nag.rule_ids("IAM5", ["Resource::*", "Action::s3:*"]) == [
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-IAM5[Action::s3:*]",
    ]
    assert nag.rule_ids("AwsSolutions-L1") == ["AwsSolutions-L1"]


def test_acknowledge_refuses_a_token_reason() -> None:
    import aws_cdk as cdk

    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="real reason"):
        nag.acknowledge(stack, "S1", "not needed")
