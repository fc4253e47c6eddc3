"""What a run used and what it would cost at list prices: endpoint and judge instance-seconds.

Why in the run's summary: the cost of a comparison is part of its result (a reader deciding between
persistent and per-run endpoints, or between judges, needs it per run), and afterwards the numbers
are hard to reconstruct. Sources, all already in the state when summarize runs:
- the judge: the final DescribeTrainingJob answer (`$.judge_status`): `BillableTimeInSeconds`
  (wall-clock seconds; SageMaker bills it times `ResourceConfig.InstanceCount`);
- the endpoints: `$.endpoint_use` (`RecordEndpointUse`): per-run endpoints bill from the execution's
  start (they are created first) until their deletion; persistent endpoints bill whether or not a
  run uses them, so what is recorded is this run's share (its start to the end of generation).
Prices from `novajudge.pricing` (list prices, with their source and date in the record).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from novajudge.pricing import Prices, UnknownPrice


def _seconds_between(start: Any, end: Any) -> float | None:
    try:
        a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())


def _priced(prices: Prices, usage: str, instance_type: str, instance_seconds: float) -> dict[str, Any]:
    try:
        hourly = (
            prices.endpoint_hourly(instance_type)
            if usage == "endpoint"
            else prices.training_hourly(instance_type)
        )
    except UnknownPrice as exc:
        return {"hourly": None, "cost": None, "price_note": str(exc)}
    return {"hourly": hourly, "cost": round(hourly * instance_seconds / 3600.0, 4)}


def judge_usage(judge_status: Any, prices: Prices) -> dict[str, Any] | None:
    if not isinstance(judge_status, dict) or judge_status.get("BillableTimeInSeconds") is None:
        return None
    resources = judge_status.get("ResourceConfig") or {}
    count = int(resources.get("InstanceCount") or 1)
    instance_type = str(resources.get("InstanceType") or "")
    billable = float(judge_status["BillableTimeInSeconds"])
    record = {"instance_type": instance_type, "instances": count, "billable_seconds": billable,
              "instance_seconds": billable * count}  # fmt: skip
    return {**record, **_priced(prices, "training", instance_type, billable * count)}


def endpoint_usage(endpoint_use: Any, prices: Prices) -> dict[str, Any] | None:
    if not isinstance(endpoint_use, dict):
        return None
    seconds = _seconds_between(endpoint_use.get("from"), endpoint_use.get("until"))
    if seconds is None:
        return None
    count = int(endpoint_use.get("instances") or 2)
    instance_type = str(endpoint_use.get("instance_type") or "")
    record = {
        "mode": endpoint_use.get("mode"),
        "instance_type": instance_type,
        "instances": count,
        "seconds": seconds,
        "instance_seconds": seconds * count,
    }
    if endpoint_use.get("mode") == "persistent":
        record["note"] = (
            "persistent endpoints bill every hour they exist; this is the run's share "
            "(from its start to the end of generation)"
        )
    return {**record, **_priced(prices, "endpoint", instance_type, seconds * count)}


def run_usage(state: dict[str, Any], prices: Prices) -> dict[str, Any]:
    """The `usage` object of summary.json."""
    endpoints = endpoint_usage(state.get("endpoint_use"), prices)
    judge = judge_usage(state.get("judge_status"), prices)
    costs = [part["cost"] for part in (endpoints, judge) if part and part.get("cost") is not None]
    return {
        "endpoints": endpoints,
        "judge": judge,
        "total_cost": round(sum(costs), 4) if costs else None,
        "currency": prices.currency,
        "prices": f"{prices.source} (as of {prices.as_of}), list prices",
    }
