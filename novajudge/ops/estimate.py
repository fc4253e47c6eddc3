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
from novajudge.generation.endpoints import INVOKE_LIMIT_SECONDS
from novajudge.generation.pool import AdaptiveTuning, per_child
from novajudge.judge import catalog
from novajudge.ops.aws import OpsError, error_code
from novajudge.pricing import Prices, UnknownPrice

#: ASSUMPTION (not measured, not published): judge-input lines judged per minute by one instance.
#: A rubric judgement writes a long structured answer (criteria, scores, justifications), the
#: binary one a short preference, so the rubric judge is assumed several times slower.
JUDGE_LINES_PER_MINUTE: dict[str, dict[str, float]] = {
    "rubric": {"ml.p5.48xlarge": 6.0, "ml.p5en.48xlarge": 6.0, "ml.p4d.24xlarge": 3.0},
    "binary": {
        "ml.p5.48xlarge": 30.0,
        "ml.g5.12xlarge": 10.0,
        "ml.g5.24xlarge": 10.0,
        "ml.g6.12xlarge": 10.0,
        "ml.g6.24xlarge": 10.0,
        "ml.g6.48xlarge": 12.0,
    },
}
#: ASSUMPTION: billed minutes before the first judgement (image pull, model load on the instance).
JUDGE_STARTUP_MINUTES = 15.0
#: ASSUMPTION: billed minutes of a per-run endpoint before it answers (instance provisioning, image
#: pull, weights download and TGI warm-up); SageMaker bills from creation.
ENDPOINT_STARTUP_MINUTES = 10.0
#: ASSUMPTION: seconds per generated token of one request served alone on an endpoint. Published:
#: Llama-3-8B on TGI, ml.g5.12xlarge, ~72 tokens/s for one user (14 ms); Llama-2-7B 16.8 ms. No
#: figure for Qwen2.5 on A10G was found; 20 ms rounds the 7-8B figures up, for both models.
SECONDS_PER_TOKEN = 0.02
#: ASSUMPTION: TGI's continuous batching slows each request by this share per extra request in the
#: batch: a request in a batch of b takes (1 + β(b − 1)) times as long (fitted to the Llama-3-8B
#: figures: 72 tokens/s alone, 689 at 64 users; docs/design.md, "Generation throughput").
BATCH_SLOWDOWN = 0.094

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
    seconds_per_token: float = SECONDS_PER_TOKEN
    batch_slowdown: float = BATCH_SLOWDOWN


@dataclass(frozen=True)
class ModelGeneration:
    """How one model's generation is expected to go (answers assumed `max_new_tokens` long)."""

    which: str
    configured: int  # concurrency_<which>: requests in flight over all Map children
    in_flight: int  # what the children use together (each `concurrency // share`)
    replicas: int  # endpoint instances the requests are spread over
    in_flight_used: int  # after the latency back-off: what keeps an answer under the slow mark
    in_flight_run: int  # what this run keeps in flight: the above, or fewer when it has fewer questions
    answer_seconds: float  # one full-length answer at that load
    alone_seconds: float  # one full-length answer served alone
    hours: float

    @property
    def prompts_per_second(self) -> float:
        return self.in_flight_run / self.answer_seconds if self.answer_seconds else math.inf


def model_generation(
    which: str,
    *,
    questions: int,
    configured: int,
    share: int,
    replicas: int,
    max_new_tokens: int,
    assumptions: Assumptions,
    slow_seconds: float,
) -> ModelGeneration:
    """Generation time of one model: `questions` answers, `in_flight` at once spread over `replicas`.

    A request in a batch of b takes max_new_tokens × seconds_per_token × (1 + β(b − 1)). The client's
    window shrinks whenever answers take `slow_seconds` or more (`generation.pool`), so the number in
    flight is capped at what keeps an answer under it (at least one per replica). Then the answers
    come in rounds of `in_flight_used`: ceil(questions / in_flight_used) × the answer time, the batch
    being the smaller of the window and the questions, spread evenly over the replicas.
    """
    in_flight = per_child(configured, share) * share
    replicas = max(1, replicas)
    alone = max_new_tokens * assumptions.seconds_per_token
    beta = assumptions.batch_slowdown
    if alone <= 0:
        per_replica = math.ceil(in_flight / replicas)
    elif beta > 0 and alone < slow_seconds:
        # largest b with alone × (1 + β(b − 1)) < slow_seconds
        fits = math.ceil((slow_seconds / alone - 1) / beta)  # first b at or over the mark, minus 1 below
        per_replica = max(1, min(math.ceil(in_flight / replicas), fits))
    elif alone < slow_seconds:
        per_replica = math.ceil(in_flight / replicas)
    else:
        per_replica = 1
    used = min(in_flight, per_replica * replicas)
    # A run of fewer questions than the window never fills it.
    run_in_flight = min(used, max(questions, 1))
    batch = math.ceil(run_in_flight / replicas)
    answer = alone * (1 + beta * (batch - 1))
    rounds = math.ceil(questions / used)
    return ModelGeneration(
        which=which,
        configured=configured,
        in_flight=in_flight,
        replicas=replicas,
        in_flight_used=used,
        in_flight_run=run_in_flight,
        answer_seconds=answer,
        alone_seconds=alone,
        hours=rounds * answer / 3600.0,
    )


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
    judge_max_runtime_seconds: int
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
    models: list[ModelGeneration] = field(default_factory=list)
    share: int = 1
    #: Problems that stop a run or waste money: printed first, before anything starts.
    warnings: list[str] = field(default_factory=list)

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
    return EndpointState(
        name=name, status=endpoint.get("EndpointStatus"), instance_type=instance_type, instance_count=count
    )


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
    share: int = 1,
) -> Estimate:
    """Price one run of `questions` questions; with a SageMaker client, also the current burn.

    `share`: generate calls running at once (the Map's children), each taking its part of
    `concurrency_a` / `concurrency_b`. Replicas are the deployed endpoints' instance counts, else 1
    (what the endpoints stack deploys).
    """
    judge_type = settings.resolved_judge_instance_type(variant)
    assumptions = assumptions or default_assumptions(variant, judge_type)
    lines, judge_hours = judge_time(questions, both_orders, assumptions)
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
                    burn.append(
                        (
                            f"endpoint {s.name} ({s.instance_count} × {itype}, {s.status})",
                            _endpoint_hourly(prices, itype) * max(s.instance_count, 1),
                        )
                    )
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
    replicas = {which: 1 for which in ("A", "B")}
    for which, state in zip(("A", "B"), states, strict=False):
        if state.billing and state.instance_count:
            replicas[which] = state.instance_count
    slow = AdaptiveTuning().slow_seconds
    models = [
        model_generation(
            which,
            questions=questions,
            configured=getattr(settings, f"concurrency_{which.lower()}"),
            share=share,
            replicas=replicas[which],
            max_new_tokens=settings.max_new_tokens,
            assumptions=assumptions,
            slow_seconds=slow,
        )
        for which in ("A", "B")
    ]
    # Both endpoints generate at once: the slower one sets the time.
    generation_hours = max(m.hours for m in models)
    warnings = _warnings(settings, models, questions, both_orders, assumptions)
    notes.extend(_latency_notes(settings, models, slow, questions))
    # Price the endpoints as deployed when they are up, else as configured.
    deployed_types = [s for s in states if s.billing and s.instance_type]
    if deployed_types:
        endpoint_hourly_total = sum(
            _endpoint_hourly(prices, s.instance_type or "") * max(s.instance_count, 1) for s in deployed_types
        )
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
        judge_max_runtime_seconds=settings.judge_max_runtime_seconds,
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
        models=models,
        share=share,
        warnings=warnings,
    )


def judge_time(questions: int, both_orders: bool, assumptions: Assumptions) -> tuple[int, float]:
    """(judge-input lines, billed judge hours) of `questions`: one line a question, two with
    `both_orders`; the start-up minutes, then the lines at the assumed speed."""
    lines = questions * (2 if both_orders else 1)
    return lines, (assumptions.judge_startup_minutes + lines / assumptions.judge_lines_per_minute) / 60.0


def judge_runtime_problem(
    *, lines: int, both_orders: bool, judge_hours: float, assumptions: Assumptions, max_runtime_seconds: int
) -> str | None:
    """Why the judge job could not finish within `judge_max_runtime_seconds`, or None.

    SageMaker stops a training job at `MaxRuntimeInSeconds`: the judge time already paid is lost and
    no verdict is written. Checked before anything starts (estimate, `novajudge start`).
    """
    if judge_hours * 3600.0 <= max_runtime_seconds:
        return None
    judging_minutes = max_runtime_seconds / 60.0 - assumptions.judge_startup_minutes
    max_lines = max(0, math.floor(judging_minutes * assumptions.judge_lines_per_minute))
    max_questions = max_lines // (2 if both_orders else 1)
    return (
        f"the judge job cannot finish: {lines} lines at {assumptions.judge_lines_per_minute:g} lines/min "
        f"after {assumptions.judge_startup_minutes:g} start-up minutes take {judge_hours * 60:.0f} min, "
        f"over judge_max_runtime_seconds={max_runtime_seconds} ({max_runtime_seconds / 60:.0f} min), where "
        "SageMaker stops the job and the run fails after paying for it; use at most "
        f"{max_questions} questions or raise judge_max_runtime_seconds"
    )


def judge_runtime_warning(
    settings: Settings, *, questions: int, variant: str, both_orders: bool
) -> str | None:
    """`judge_runtime_problem` with the default assumptions, for `novajudge start` (no AWS call);
    None as well when no throughput is assumed for the judge's instance type."""
    judge_type = settings.resolved_judge_instance_type(variant)
    try:
        assumptions = default_assumptions(variant, judge_type)
    except OpsError:
        return None
    return _settings_runtime_problem(settings, questions, both_orders, assumptions)


def _settings_runtime_problem(
    settings: Settings, questions: int, both_orders: bool, assumptions: Assumptions
) -> str | None:
    """`judge_runtime_problem` of `questions` under the deployment's judge_max_runtime_seconds."""
    lines, hours = judge_time(questions, both_orders, assumptions)
    return judge_runtime_problem(
        lines=lines,
        both_orders=both_orders,
        judge_hours=hours,
        assumptions=assumptions,
        max_runtime_seconds=settings.judge_max_runtime_seconds,
    )


def _warnings(
    settings: Settings,
    models: list[ModelGeneration],
    questions: int,
    both_orders: bool,
    assumptions: Assumptions,
) -> list[str]:
    out: list[str] = []
    judge = _settings_runtime_problem(settings, questions, both_orders, assumptions)
    if judge:
        out.append(judge)
    for m in models:
        if m.alone_seconds >= INVOKE_LIMIT_SECONDS:
            out.append(
                f"model {m.which}: a {settings.max_new_tokens}-token answer takes {m.alone_seconds:.0f} s "
                f"even alone (at {assumptions.seconds_per_token * 1000:g} ms/token), over InvokeEndpoint's "
                f"{INVOKE_LIMIT_SECONDS:.0f} s limit: long answers will fail; lower max_new_tokens"
            )
    return out


def _latency_notes(
    settings: Settings, models: list[ModelGeneration], slow: float, questions: int
) -> list[str]:
    """Where the latency back-off, not the configured concurrency, sets the pace (not a problem:
    the run is slower than the setting suggests, and says why)."""
    return [
        f"model {m.which}: {m.in_flight} in flight would make a {settings.max_new_tokens}-token answer "
        f"take {slow:.0f} s or more (of InvokeEndpoint's {INVOKE_LIMIT_SECONDS:.0f}); the client's window "
        f"settles near {m.in_flight_used} (fewer max_new_tokens or more instances allow more)"
        for m in models
        if m.alone_seconds < INVOKE_LIMIT_SECONDS and m.in_flight_used < min(m.in_flight, questions)
    ]


def _endpoint_hourly(prices: Prices, instance_type: str) -> float:
    try:
        return prices.endpoint_hourly(instance_type)
    except UnknownPrice as exc:
        raise OpsError(str(exc)) from None
