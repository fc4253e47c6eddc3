"""Session fixtures: the whole app synthesized once, its templates by stack role.

Shared with the pipeline tests. For another configuration, call
`infra_synth.synth_app(tmp_path, key="value", ...)` (values as `-c key=value` gives them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from infra_synth import Synth, synth_app


@pytest.fixture(scope="session")
def app_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The default app (cdk.json as shipped), synthesized once for the whole session."""
    yield synth_app(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def templates(app_synth: Synth) -> dict[str, dict[str, Any]]:
    """Templates by stack role: `storage`, `endpoints` and (once it exists) `pipeline`."""
    return app_synth.templates


@pytest.fixture(scope="session")
def per_run_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The app with `endpoints_mode=per_run` (endpoints created by each run), synthesized once."""
    yield synth_app(tmp_path_factory.mktemp("cdk.out.per_run"), endpoints_mode="per_run")
