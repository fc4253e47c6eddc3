"""Hourly prices of what a run bills, from `pricing.json`, so estimates and the README agree.

Prices change and differ by region, so they live in data with their source and date rather than
in code, and a user can point at their own file (`load_prices(path)` or `NOVAJUDGE_PRICING_FILE`)
holding only the figures they want to change; it is merged over the shipped one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PRICING_FILE = Path(__file__).with_name("pricing.json")
OVERRIDE_ENV = "NOVAJUDGE_PRICING_FILE"


class UnknownPrice(KeyError):
    """No price is recorded for this instance type and usage; the message says where to add one."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class Prices:
    """The pricing table plus lookups that name what is missing instead of guessing zero."""

    data: Mapping[str, Any]

    @property
    def currency(self) -> str:
        return str(self.data["currency"])

    @property
    def as_of(self) -> str:
        return str(self.data["as_of"])

    @property
    def source(self) -> str:
        return str(self.data["source"])

    def endpoint_hourly(self, instance_type: str) -> float:
        """On-demand price per hour of one real-time inference instance."""
        return self._hourly("real_time_inference", instance_type)

    def training_hourly(self, instance_type: str) -> float:
        """On-demand price per hour of one training-job instance (the Nova judge job)."""
        return self._hourly("training", instance_type)

    def is_estimate(self, usage: str, instance_type: str) -> bool:
        return bool(self._entry(usage, instance_type).get("estimate", False))

    def _entry(self, usage: str, instance_type: str) -> Mapping[str, Any]:
        table = self.data.get("sagemaker", {}).get(usage, {})
        if instance_type not in table:
            raise UnknownPrice(
                f"no {usage.replace('_', ' ')} price for {instance_type!r} in the pricing file; "
                f"known: {', '.join(sorted(table)) or 'none'} (add it, see {DEFAULT_PRICING_FILE.name})"
            )
        return table[instance_type]

    def _hourly(self, usage: str, instance_type: str) -> float:
        return float(self._entry(usage, instance_type)["hourly"])


def load_prices(path: str | Path | None = None) -> Prices:
    """The shipped prices, with `path` (or `$NOVAJUDGE_PRICING_FILE`) merged over them if given."""
    data = json.loads(DEFAULT_PRICING_FILE.read_text())
    override = path if path is not None else os.environ.get(OVERRIDE_ENV)
    if override:
        override_path = Path(override)
        try:
            extra = json.loads(override_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read pricing override {override_path}: {exc}") from exc
        if not isinstance(extra, dict):
            raise ValueError(f"pricing override {override_path} must hold a JSON object")
        data = _merge(data, extra)
    return Prices(data)


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge key by key; anything else in `extra` replaces the base value."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
