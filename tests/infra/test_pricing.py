"""The shipped price table: complete for what a deployment bills, dated, sourced, overridable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novajudge import pricing
from novajudge.config import Settings
from novajudge.judge import catalog


def test_shipped_table_is_sourced_and_dated() -> None:
    prices = pricing.load_prices()
    assert prices.source == "https://aws.amazon.com/sagemaker/pricing/"
    assert prices.as_of[:4].isdigit() and len(prices.as_of) == 10
    assert prices.currency == "USD"
    assert prices.data["region"] == "us-east-1"


def test_every_default_billable_instance_has_a_price() -> None:
    prices = pricing.load_prices()
    settings = Settings()
    assert prices.endpoint_hourly(settings.endpoint_instance_type) > 0
    for variant in catalog.JUDGE_VARIANTS:
        assert prices.training_hourly(settings.resolved_judge_instance_type(variant)) > 0
    assert prices.training_hourly("ml.p4d.24xlarge") > 0


def test_rubric_judge_instance_costs_more_than_an_endpoint() -> None:
    prices = pricing.load_prices()
    assert prices.training_hourly("ml.p5.48xlarge") > prices.training_hourly("ml.p4d.24xlarge")
    assert prices.training_hourly("ml.p4d.24xlarge") > prices.endpoint_hourly("ml.g5.12xlarge")


def test_inferred_figures_are_flagged() -> None:
    prices = pricing.load_prices()
    assert prices.is_estimate("training", "ml.g5.12xlarge")
    assert not prices.is_estimate("real_time_inference", "ml.g5.12xlarge")


def test_unknown_instance_names_what_is_known() -> None:
    with pytest.raises(pricing.UnknownPrice, match=r"'ml.g6.12xlarge'.*known: ml.g5.12xlarge"):
        pricing.load_prices().endpoint_hourly("ml.g6.12xlarge")


def test_override_file_merges_over_the_shipped_prices(tmp_path: Path) -> None:
    override = tmp_path / "eu.json"
    override.write_text(
        json.dumps(
            {"region": "eu-west-2", "sagemaker": {"real_time_inference": {"ml.g5.12xlarge": {"hourly": 8.5}}}}
        )
    )
    prices = pricing.load_prices(override)
    assert prices.endpoint_hourly("ml.g5.12xlarge") == 8.5
    assert prices.data["region"] == "eu-west-2"
    assert prices.training_hourly("ml.p5.48xlarge") == pricing.load_prices().training_hourly("ml.p5.48xlarge")


def test_override_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "p.json"
    override.write_text(json.dumps({"sagemaker": {"training": {"ml.p5.48xlarge": {"hourly": 1.0}}}}))
    monkeypatch.setenv(pricing.OVERRIDE_ENV, str(override))
    assert pricing.load_prices().training_hourly("ml.p5.48xlarge") == 1.0


def test_unreadable_override_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read pricing override"):
        pricing.load_prices(bad)
