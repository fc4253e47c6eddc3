"""What a run will cost, and what the deployment burns per hour right now.

Prices come from the repository's table (`novajudge.pricing`, with its source and date), never
from code. Durations cannot be priced from a table: how fast the Nova judge works is not published,
so the judge's throughput and start-up overhead below are *assumptions*, printed with every
estimate and overridable from the command line. The endpoints bill per hour whether or not a run
uses them, so the estimate says whether they are up (via `describe_endpoint`) and prices them both
for the run's duration and per hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from novajudge.config import Settings
from novajudge.judge import catalog
from novajudge.ops.aws import OpsError, error_code
from novajudge.pricing import Prices, UnknownPrice

#: ASSUMPTION (not measured, not published): judge-input lines judged per minute by one instance.
#: A rubric judgement writes a long structured answer (criteria, scores, justifications), the
#: binary one a short preference, so the rubric judge is assumed several times slower.
JUDGE_LINES_PER_MINUTE: dict[str, dict[str, float]] = {
    "rubric": {"ml.p5.48xlarge": 6.0, "ml.p5en.48xlarge": 6.0, "ml.p4d.24xlarge": 3.0},
    "binary": {"ml.p5.48xlarge": 30.0, "ml.g5.12xlarge": 10.0, "ml.g5.24xlarge": 10.0,
               "ml.g6.12xlarge": 10.0, "ml.g6.24xlarge": 10.0, "ml.g6.48xlarge": 12.0},
}  # fmt: skip
#: ASSUMPTION: billed minutes before the first judgement (image pull, model load on the instance).
JUDGE_STARTUP_MINUTES = 15.0
#: ASSUMPTION: billed minutes of a per-run endpoint before it answers (instance provisioning, image
#: pull, weights download and TGI warm-up); SageMaker bills from creation.
ENDPOINT_STARTUP_MINUTES = 10.0
#: ASSUMPTION: seconds one candidate answer takes (≈ 500 new tokens at ~25 tokens/s on TGI).
SECONDS_PER_GENERATION = 20.0

#: Endpoint states in which SageMaker bills the instances.
BILLING_ENDPOINT_STATES = frozenset({"InService", "Creating", "Updating", "SystemUpdating", "RollingBack"})


@dataclass(frozen=True)
class EndpointState:
    name: str
    status: str | None  # None: not deployed
    instance_type: str | None = None
    instance_count: int = 0

    @property
    def billing(self) -> bool:
        return self.status in BILLING_ENDPOINT_STATES


@dataclass(frozen=True)
class Assumptions:
    judge_lines_per_minute: float
    judge_startup_minutes: float = JUDGE_STARTUP_MINUTES
    endpoint_startup_minutes: float = ENDPOINT_STARTUP_MINUTES
    seconds_per_generation: float = SECONDS_PER_GENERATION


@dataclass
class Estimate:
    """All numbers of one estimate, in the table's currency; times in hours."""

    questions: int
    variant: str
    both_orders: bool
    judge_instance_type: str
    judge_lines: int
    generation_hours: float
    judge_hours: float
    judge_hourly: float
    judge_cost: float
    endpoint_hourly_total: float  # both endpoints, at the configured (or deployed) instance type
    endpoints_running: bool | None  # None: could not check
    endpoint_cost_generation: float  # endpoints during generation only
    endpoint_cost_run: float  # endpoints for the whole run (if left up until it ends)
    assumptions: Assumptions
    currency: str
    price_source: str
    price_date: str
    endpoints: list[EndpointState] = field(default_factory=list)
    burn_items: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def run_hours(self) -> float:
        return self.generation_hours + self.judge_hours

    @property
    def total_minimum(self) -> float:
        """Endpoints taken down right after generation."""
        return self.judge_cost + self.endpoint_cost_generation

    @property
    def total_if_left_up(self) -> float:
        return self.judge_cost + self.endpoint_cost_run

    @property
    def endpoint_cost_per_run_mode(self) -> float:
        """`endpoints_mode=per_run`: both endpoints billed from creation (start-up) to deletion
        (end of generation), nothing before or after."""
        return self.endpoint_hourly_total * (
            self.assumptions.endpoint_startup_minutes / 60.0 + self.generation_hours
        )

    @property
    def total_per_run_mode(self) -> float:
        return self.judge_cost + self.endpoint_cost_per_run_mode

    @property
    def burn_per_hour(self) -> float:
        return sum(cost for _, cost in self.burn_items)


def default_assumptions(variant: str, judge_instance_type: str) -> Assumptions:
    rate = JUDGE_LINES_PER_MINUTE.get(variant, {}).get(judge_instance_type)
    if rate is None:
        raise OpsError(
            f"no throughput assumption for the {variant} judge on {judge_instance_type}; "
            "pass --judge-lines-per-minute"
        )
    return Assumptions(judge_lines_per_minute=rate)


def endpoint_state(sagemaker: Any, name: str) -> EndpointState:
    """Whether endpoint `name` exists, its status, and its instances (type and current count)."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if error_code(exc) == "ValidationException":  # SageMaker's "Could not find endpoint"
            return EndpointState(name=name, status=None)
        raise
    variants = endpoint.get("ProductionVariants") or []
    count = sum(int(v.get("CurrentInstanceCount") or v.get("DesiredInstanceCount") or 0) for v in variants)
    instance_type = None
    config_name = endpoint.get("EndpointConfigName")
    if config_name:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        types = {v.get("InstanceType") for v in config.get("ProductionVariants", []) if v.get("InstanceType")}
        instance_type = sorted(types)[0] if types else None
        if not count:
            count = sum(int(v.get("InitialInstanceCount") or 0) for v in config.get("ProductionVariants", []))
    return EndpointState(name=name, status=endpoint.get("EndpointStatus"), instance_type=instance_type,
                         instance_count=count)  # fmt: skip


def running_training_jobs(sagemaker: Any) -> list[tuple[str, str, int]]:
    """(name, instance type, count) of in-progress training jobs in this account and region."""
    jobs: list[tuple[str, str, int]] = []
    kwargs: dict[str, Any] = {"StatusEquals": "InProgress", "MaxResults": 100}
    while True:
        page = sagemaker.list_training_jobs(**kwargs)
        for summary in page.get("TrainingJobSummaries", []):
            name = summary["TrainingJobName"]
            resources = sagemaker.describe_training_job(TrainingJobName=name).get("ResourceConfig", {})
            jobs.append((name, str(resources.get("InstanceType")), int(resources.get("InstanceCount") or 1)))
        token = page.get("NextToken")
        if not token:
            return jobs
        kwargs["NextToken"] = token


def estimate(
    settings: Settings,
    prices: Prices,
    *,
    questions: int,
    variant: str,
    both_orders: bool,
    assumptions: Assumptions | None = None,
    sagemaker: Any | None = None,
) -> Estimate:
    """Price one run of `questions` questions; with a SageMaker client, also the current burn."""
    judge_type = settings.resolved_judge_instance_type(variant)
    assumptions = assumptions or default_assumptions(variant, judge_type)
    lines = questions * (2 if both_orders else 1)
    # Both endpoints generate at once, each with `generation_concurrency` requests in flight.
    generation_hours = (
        math.ceil(questions / settings.generation_concurrency) * assumptions.seconds_per_generation
    )
    generation_hours /= 3600.0
    judge_hours = (assumptions.judge_startup_minutes + lines / assumptions.judge_lines_per_minute) / 60.0
    try:
        judge_hourly = prices.training_hourly(judge_type)
    except UnknownPrice as exc:
        raise OpsError(str(exc)) from None

    notes: list[str] = []
    model_note = catalog.model_choice_note(variant, settings.judge_model_key(variant))
    if model_note:
        notes.append(model_note)
    names = (settings.endpoint_name("A"), settings.endpoint_name("B"))
    states: list[EndpointState] = []
    running: bool | None = None
    burn: list[tuple[str, float]] = []
    if sagemaker is not None:
        try:
            states = [endpoint_state(sagemaker, name) for name in names]
            running = all(s.billing for s in states)
            for s in states:
                if s.billing:
                    itype = s.instance_type or settings.endpoint_instance_type
                    burn.append((f"endpoint {s.name} ({s.instance_count} × {itype}, {s.status})",
                                 _endpoint_hourly(prices, itype) * max(s.instance_count, 1)))  # fmt: skip
            for name, itype, count in running_training_jobs(sagemaker):
                try:
                    hourly = prices.training_hourly(itype)
                except UnknownPrice as exc:
                    notes.append(f"training job {name} is running but not priced: {exc}")
                    continue
                burn.append((f"training job {name} ({count} × {itype})", hourly * count))
        except (ClientError, BotoCoreError, OpsError) as exc:
            running = None
            burn = []
            notes.append(f"could not check what is deployed: {exc}")
    # Price the endpoints as deployed when they are up, else as configured.
    deployed_types = [s for s in states if s.billing and s.instance_type]
    if deployed_types:
        endpoint_hourly_total = sum(_endpoint_hourly(prices, s.instance_type or "") * max(s.instance_count, 1)
                                    for s in deployed_types)  # fmt: skip
        if len(deployed_types) < len(names):
            endpoint_hourly_total += _endpoint_hourly(prices, settings.endpoint_instance_type) * (
                len(names) - len(deployed_types)
            )
    else:
        endpoint_hourly_total = 2 * _endpoint_hourly(prices, settings.endpoint_instance_type)
    if running is False:
        notes.append(
            "the endpoints are not (all) up: run `novajudge endpoints up` first "
            "(deploying takes minutes and bills from creation)"
        )
    for usage, itype in (("training", judge_type), ("real_time_inference", settings.endpoint_instance_type)):
        if prices.is_estimate(usage, itype):
            notes.append(
                f"the {usage.replace('_', ' ')} price of {itype} is itself an estimate in the price table"
            )
    return Estimate(
        questions=questions,
        variant=variant,
        both_orders=both_orders,
        judge_instance_type=judge_type,
        judge_lines=lines,
        generation_hours=generation_hours,
        judge_hours=judge_hours,
        judge_hourly=judge_hourly,
        judge_cost=judge_hourly * judge_hours,
        endpoint_hourly_total=endpoint_hourly_total,
        endpoints_running=running,
        endpoint_cost_generation=endpoint_hourly_total * generation_hours,
        endpoint_cost_run=endpoint_hourly_total * (generation_hours + judge_hours),
        assumptions=assumptions,
        currency=prices.currency,
        price_source=prices.source,
        price_date=prices.as_of,
        endpoints=states,
        burn_items=burn,
        notes=notes,
    )


def _endpoint_hourly(prices: Prices, instance_type: str) -> float:
    try:
        return prices.endpoint_hourly(instance_type)
    except UnknownPrice as exc:
        raise OpsError(str(exc)) from None
