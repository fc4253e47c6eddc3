"""The README states facts the code owns (settings, regions, prices): keep them in sync."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from novajudge import pricing
from novajudge.config import Settings
from novajudge.judge import catalog

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def text() -> str:
    return README.read_text()


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def _table_rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _shown(default: Any) -> str:
    """How the table writes a default: strings bare, everything else as JSON (true, null, 0.9)."""
    return f"`{default if isinstance(default, str) else json.dumps(default)}`"


def test_configuration_table_lists_every_setting_with_its_default(text: str) -> None:
    rows = {row[0]: row for row in _table_rows(_section(text, "Configuration"))}
    fields = Settings.model_fields
    assert set(rows) == {f"`{name}`" for name in fields}
    for name, field in fields.items():
        _key, default, meaning = rows[f"`{name}`"]
        assert default == _shown(field.default), name
        assert meaning, name


def test_quick_start_begins_with_make_demo_then_make_test(text: str) -> None:
    commands = re.findall(r"^(make \w+)", _section(text, "Quick start"), flags=re.M)
    assert commands[:2] == ["make demo", "make test"]


def test_documented_regions_are_the_catalogue_regions(text: str) -> None:
    prerequisites = _section(text, "Deploying for real")
    for region in catalog.NOVA_EVAL_IMAGE_ACCOUNTS:
        assert region in prerequisites


def test_cost_tables_follow_the_pricing_file(text: str) -> None:
    prices = pricing.load_prices()
    costs = _section(text, "Costs")
    assert prices.source in costs and prices.as_of in costs
    endpoint = prices.endpoint_hourly("ml.g5.12xlarge")
    assert f"2 × ${endpoint:.2f}" in costs
    for instance in ("ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.g5.12xlarge"):
        assert f"${prices.training_hourly(instance):.2f}" in costs
    endpoints_run = 2 * endpoint * 1.0
    for judge_instance in ("ml.p5.48xlarge", "ml.g5.12xlarge"):
        judge_run = prices.training_hourly(judge_instance) * 0.5
        row = next(
            line for line in costs.splitlines() if line.startswith("|") and f"({judge_instance})" in line
        )
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        assert cells[1:] == [
            f"${endpoints_run:.2f}",
            f"${_round(judge_run):.2f}",
            f"${_round(endpoints_run + judge_run):.2f}",
        ]


def test_per_run_cost_rows_follow_the_pricing_file(text: str) -> None:
    """Per-run endpoints: 2 endpoints × 0.25 h (10 min start-up + 5 min generation) + the judge."""
    prices = pricing.load_prices()
    costs = _section(text, "Costs")
    endpoints_run = 2 * prices.endpoint_hourly("ml.g5.12xlarge") * 0.25
    for judge_instance in ("ml.p5.48xlarge", "ml.g5.12xlarge"):
        judge_run = prices.training_hourly(judge_instance) * 0.5
        row = next(line for line in costs.splitlines() if f"({judge_instance}), per_run" in line)
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        assert cells[1:] == [
            f"${_round(endpoints_run):.2f}",
            f"${_round(judge_run):.2f}",
            f"${_round(endpoints_run + judge_run):.2f}",
            "$0/h",
        ]


def _round(value: float) -> float:
    """Half-up to cents, as a person writes prices (Python's round() is half-even)."""
    return int(value * 100 + 0.5 + 1e-9) / 100


def test_data_attribution_names_source_licence_and_authors(text: str) -> None:
    section = _section(text, "Data attribution")
    for needle in ("SQuAD v1.1", "CC BY-SA 4.0", "Rajpurkar", "2016", "novajudge/data/"):
        assert needle in section
