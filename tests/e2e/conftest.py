"""Shared by the e2e suites: one synthesis of the real app per session (bundling skipped)."""

from __future__ import annotations

import pytest

from novajudge.local.deploy import StackTemplate, synthesize


@pytest.fixture(scope="session")
def synthesized() -> list[StackTemplate]:
    """The three stacks as `cdk synth` would produce them, in deployment order."""
    return synthesize()
