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


def test_per_run_app_has_no_unacknowledged_finding(per_run_synth: Synth) -> None:
    assert nag_violations(per_run_synth.report) == []
    assert all(p.get("conclusion") != "failure" for p in per_run_synth.report.get("pluginReports", []))


def test_every_acknowledgement_matches_a_real_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the acknowledgements, synth fails with exactly the acknowledged findings.

    This proves cdk-nag runs in the app, that each acknowledgement id is spelled as cdk-nag
    reports it, and, in all three stacks, that nothing is acknowledged that is not found and
    nothing found that is not acknowledged.
    """
    acknowledged: set[tuple[str, str]] = set()

    def record(scope: Any, rule: str, reason: str, *, findings: Any = ()) -> None:
        assert len(reason) >= nag.MIN_REASON_CHARS
        acknowledged.update((scope.node.path, rule_id) for rule_id in nag.rule_ids(rule, findings))

    monkeypatch.setattr(nag, "acknowledge", record)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_app(tmp_path)
    found = set(nag_violations(json.loads((tmp_path / "validation-report.json").read_text())))

    def covers(scope: str, path: str) -> bool:
        # A finding is reported on the CfnResource below the construct that acknowledged it.
        return path == scope or path.startswith(scope + "/")

    unmatched = {(s, r) for s, r in acknowledged if not any(r == fr and covers(s, fp) for fp, fr in found)}
    unexplained = {(p, r) for p, r in found if not any(r == ar and covers(s, p) for s, ar in acknowledged)}
    assert not unmatched, f"acknowledged but not found: {unmatched}"
    assert not unexplained, f"found but not acknowledged: {unexplained}"
    for stack in ("NovaJudge-Storage/", "NovaJudge-Endpoints/", "NovaJudge-Pipeline/"):
        assert any(s.startswith(stack) for s, _ in acknowledged), f"{stack} acknowledges its wildcards"
    # Storage and endpoints need only wildcard (IAM5) acknowledgements.
    ours = ("NovaJudge-Storage/", "NovaJudge-Endpoints/")
    assert {rule.split("[")[0] for path, rule in found if path.startswith(ours)} == {"AwsSolutions-IAM5"}


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
