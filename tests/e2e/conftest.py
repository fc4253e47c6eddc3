"""Shared by the e2e suites: one synthesis of the real app per session (bundling skipped)."""

from __future__ import annotations

import pytest

from novajudge.local.demo import STAND_IN_CONTEXT
from novajudge.local.deploy import StackTemplate, synthesize


@pytest.fixture(scope="session")
def synthesized() -> list[StackTemplate]:
    """The three stacks as `novajudge demo` synthesizes them (stand-in model labels), in order."""
    return synthesize(STAND_IN_CONTEXT)
