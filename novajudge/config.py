"""The one typed configuration shared by the CDK app, the Lambdas' defaults and the CLI.

Values come from `cdk.json` context and `-c key=value` on the CDK command line (always strings
there), so every field coerces from text and every bad value fails synth with one line naming the
key, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from novajudge.errors import ConfigError
from novajudge.judge import catalog

#: GPUs per endpoint instance type, for tensor-parallel sharding checks.
ENDPOINT_INSTANCE_GPUS: dict[str, int] = {
    "ml.g5.xlarge": 1,
    "ml.g5.2xlarge": 1,
    "ml.g5.4xlarge": 1,
    "ml.g5.8xlarge": 1,
    "ml.g5.12xlarge": 4,
    "ml.g5.24xlarge": 4,
    "ml.g5.48xlarge": 8,
    "ml.g6.xlarge": 1,
    "ml.g6.2xlarge": 1,
    "ml.g6.12xlarge": 4,
    "ml.g6.48xlarge": 8,
    "ml.g6e.xlarge": 1,
    "ml.g6e.12xlarge": 4,
    "ml.g6e.48xlarge": 8,
}

#: Key/value heads of known models: TGI can only shard a model over a GPU count dividing them.
MODEL_KV_HEADS: dict[str, int] = {
    "Qwen/Qwen2.5-0.5B-Instruct": 2,
    "Qwen/Qwen2.5-1.5B-Instruct": 2,
    "Qwen/Qwen2.5-3B-Instruct": 2,
    "Qwen/Qwen2.5-7B-Instruct": 4,
    "Qwen/Qwen2.5-14B-Instruct": 8,
    "Qwen/Qwen2.5-32B-Instruct": 8,
}

_BILLIONS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[Bb](?![\w])")


def _billions(model_id: str) -> float | None:
    """Parameters in billions as the model id states them (`Qwen2.5-7B-Instruct` -> 7.0)."""
    match = _BILLIONS.search(model_id.split("/")[-1].replace("-", " ").replace("_", " "))
    return float(match.group(1)) if match else None


StackRole = Literal["storage", "endpoints", "pipeline"]

#: Step Functions' hard limit on the events of one standard execution's history
#: (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
HISTORY_EVENT_LIMIT = 25_000
#: History events each state type adds on a normal pass: Wait and Choice (and Pass) enter and exit;
#: a Task enters, is scheduled, starts, succeeds and exits.
EVENTS_PER_STATE_TYPE: dict[str, int] = {"Wait": 2, "Choice": 2, "Pass": 2, "Task": 5}
#: The judge poll loop is WaitForJudge (Wait) → DescribeJudgeJob (Task) → JudgeFinished? (Choice):
#: 2 + 5 + 2 events per pass (tests/infra derives it from the synthesized definition).
EVENTS_PER_POLL = sum(EVENTS_PER_STATE_TYPE[kind] for kind in ("Wait", "Task", "Choice"))
#: The per-run endpoint wait loop (`endpoints_mode=per_run`, stacks/constructs/run_endpoints.py) is
#: WaitForEndpoints (Wait) → DescribeEndpointA, DescribeEndpointB (Task) → CountEndpointPolls (Pass)
#: → EndpointsInService? (Choice): 2 + 5 + 5 + 2 + 2 events per pass (tests/infra derives it too).
EVENTS_PER_ENDPOINT_POLL = sum(
    EVENTS_PER_STATE_TYPE[kind] for kind in ("Wait", "Task", "Task", "Pass", "Choice")
)
#: Events kept for everything outside the loops: the other states, their retries (up to 6 per
#: Lambda task, 8 per describe call, 3 events each), the execution's start and end.
HISTORY_RESERVE_EVENTS = 1_000
#: Per-run endpoints: SageMaker's instance provisioning before the container starts (seconds).
ENDPOINT_PROVISIONING_SECONDS = 15 * 60


def history_budget_problem(
    poll_seconds: int, judge_max_runtime_seconds: int, endpoint_polls: int = 0
) -> str | None:
    """Why polling every `poll_seconds` for up to `judge_max_runtime_seconds`, after up to
    `endpoint_polls` passes of the per-run endpoint wait loop, could exhaust the execution's
    history, or None when it fits.

    A job may run for its whole `MaxRuntimeInSeconds`; the loop then passes about runtime / poll
    times (plus one), and an execution whose history is full fails, after the judge was paid.
    Per-run endpoints that start slowly use their whole bound (`Settings.endpoint_max_polls`) first.
    """
    if poll_seconds < 1:
        return f"poll_seconds={poll_seconds}: must be at least 1 (each poll adds {EVENTS_PER_POLL} events)"
    passes = -(-judge_max_runtime_seconds // poll_seconds) + 1
    endpoint_events = endpoint_polls * EVENTS_PER_ENDPOINT_POLL
    events = passes * EVENTS_PER_POLL + endpoint_events + HISTORY_RESERVE_EVENTS
    if events <= HISTORY_EVENT_LIMIT:
        return None
    budget = (HISTORY_EVENT_LIMIT - HISTORY_RESERVE_EVENTS - endpoint_events) // EVENTS_PER_POLL - 1
    endpoints = (
        f" after {endpoint_polls} endpoint polls × {EVENTS_PER_ENDPOINT_POLL} events"
        if endpoint_polls
        else ""
    )
    if budget < 1:
        return (
            f"poll_seconds={poll_seconds}: the per-run endpoint wait alone ({endpoint_polls} polls × "
            f"{EVENTS_PER_ENDPOINT_POLL} events) leaves no room in the execution's "
            f"{HISTORY_EVENT_LIMIT:,}-event history; use a larger endpoint_poll_seconds"
        )
    least = -(-judge_max_runtime_seconds // budget)
    return (
        f"poll_seconds={poll_seconds} with judge_max_runtime_seconds={judge_max_runtime_seconds}: a judge "
        f"job running its full time would add {passes} polls × {EVENTS_PER_POLL} events{endpoints}, over the "
        f"execution's {HISTORY_EVENT_LIMIT:,}-event history; use poll_seconds ≥ {least} or a shorter "
        "judge_max_runtime_seconds"
    )


#: The two candidate models take the same kinds of value: one definition each, for A and B.
#: A Hugging Face model id (`organisation/name`).
ModelId = Annotated[str, Field(min_length=3, pattern=r"^[\w.-]+/[\w.-]+$")]
#: GPUs one model is sharded over (TGI's `--num-shard`).
GpuCount = Annotated[int, Field(ge=1, le=8)]
#: Requests in flight per endpoint (`concurrency_a|b`, see there).
Concurrency = Annotated[int, Field(ge=1, le=512)]


class Settings(BaseModel):
    """Everything a deployment can choose. Field names are the context keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stack_prefix: str = Field("NovaJudge", pattern=r"^[A-Za-z][A-Za-z0-9]{0,23}$")
    #: `persistent`: CDK provisions the two endpoints and every run uses them (billed while they
    #: exist). `per_run`: the state machine creates both at the start of each run and deletes them
    #: when generation ends (and on every failure), so nothing bills between runs.
    endpoints_mode: Literal["persistent", "per_run"] = "persistent"
    model_a_id: ModelId = "Qwen/Qwen2.5-1.5B-Instruct"
    model_b_id: ModelId = "Qwen/Qwen2.5-7B-Instruct"
    model_a_num_gpus: GpuCount = 1
    model_b_num_gpus: GpuCount = 4
    endpoint_instance_type: str = "ml.g5.12xlarge"
    tgi_image_version: str = Field(
        "2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04", pattern=r"^[0-9][\w.-]*-tgi[\w.-]+$"
    )
    max_input_tokens: int = Field(4096, ge=16, le=131072)
    max_total_tokens: int = Field(8192, ge=32, le=131072)
    judge_variant: Literal["rubric", "binary"] = "rubric"
    judge_instance_type: str | None = None
    binary_judge_model: Literal["nova-micro", "nova-lite", "nova-pro"] = "nova-micro"
    binary_judge_image_tag: str = catalog.IMAGE_TAG_NOVA_1
    judge_max_runtime_seconds: int = Field(14400, ge=600, le=432000)
    retain_bucket: bool = False
    default_questions: int = Field(20, ge=1, le=10000)
    max_new_tokens: int = Field(500, ge=1, le=8192)
    temperature: float = Field(0.9, ge=0.0, le=2.0)
    #: Requests in flight per endpoint while generating, over all the Map's children together
    #: (`novajudge.generation.pool`). 64: the published saturation point of TGI's continuous batching
    #: for an 8B model over the 4 GPUs of ml.g5.12xlarge (≈ 2 B parameters per GPU; 689 tok/s at 64
    #: users, 681 at 128); model A (1.5B on 1 GPU) and B (7B over 4) do about as much work per GPU and
    #: token. Half of TGI's `--max-concurrent-requests` default (128), above which TGI answers 429.
    #: The window adapts below it (overload, latency near 60 s); raise it with more instances.
    concurrency_a: Concurrency = 64
    concurrency_b: Concurrency = 64
    max_failure_rate: float = Field(0.2, ge=0.0, le=1.0)
    # Off: both Nova judges already run every pair forward and backward (AWS docs); sending swapped
    # copies doubles the judge bill and is an opt-in audit of the judge's residual position bias.
    both_orders: bool = False
    poll_seconds: int = Field(60, ge=1, le=3600)
    #: Seconds between DescribeEndpoint polls while per-run endpoints start (`endpoints_mode=per_run`).
    endpoint_poll_seconds: int = Field(30, ge=1, le=300)
    #: Days an overwritten or deleted object's older version is kept in the evaluation bucket.
    noncurrent_version_expiration_days: int = Field(30, ge=1, le=3650)
    #: Chunks the generation Map runs at once (its MaxConcurrency); each chunk keeps its part
    #: (`concurrency_a|b // map_max_concurrency`, `generation.pool.per_child`) in flight per endpoint.
    map_max_concurrency: int = Field(4, ge=1, le=1000)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.endpoint_instance_type not in ENDPOINT_INSTANCE_GPUS:
            raise _FieldError(
                "endpoint_instance_type",
                self.endpoint_instance_type,
                f"one of {', '.join(ENDPOINT_INSTANCE_GPUS)}",
            )
        gpus = ENDPOINT_INSTANCE_GPUS[self.endpoint_instance_type]
        for key in ("model_a", "model_b"):
            model_id, shards = getattr(self, f"{key}_id"), getattr(self, f"{key}_num_gpus")
            if shards > gpus:
                raise _FieldError(
                    f"{key}_num_gpus", shards, f"at most {gpus} (GPUs of {self.endpoint_instance_type})"
                )
            heads = MODEL_KV_HEADS.get(model_id)
            if heads is not None and heads % shards:
                allowed = [n for n in range(1, gpus + 1) if heads % n == 0]
                raise _FieldError(
                    f"{key}_num_gpus",
                    shards,
                    f"one of {allowed}: {model_id} has {heads} key/value heads and TGI shards them",
                )
        if self.max_input_tokens >= self.max_total_tokens:
            raise _FieldError(
                "max_input_tokens",
                self.max_input_tokens,
                f"less than max_total_tokens ({self.max_total_tokens})",
            )
        history = history_budget_problem(
            self.poll_seconds, self.judge_max_runtime_seconds, self.endpoint_max_polls()
        )
        if history is not None:
            raise _FieldError("poll_seconds", self.poll_seconds, history.split(": ", 1)[1])
        tags = catalog.variant("binary").image_tags
        if self.binary_judge_image_tag not in tags:
            raise _FieldError("binary_judge_image_tag", self.binary_judge_image_tag, " or ".join(tags))
        model = catalog.variant(self.judge_variant).model(self.judge_model_key())
        if self.resolved_judge_instance_type() not in model.instance_types:
            raise _FieldError(
                "judge_instance_type",
                self.judge_instance_type,
                f"one of {', '.join(model.instance_types)} for the {self.judge_variant} judge ({model.key})",
            )
        return self

    # -- derived values ---------------------------------------------------------------------------

    def judge_model_key(self, variant: str | None = None) -> str:
        """The judge model of `variant`: Nova 2 Lite for rubric, the configured one for binary."""
        variant = variant or self.judge_variant
        return self.binary_judge_model if variant == "binary" else catalog.variant(variant).default_model

    def resolved_judge_instance_type(self, variant: str | None = None) -> str:
        """The configured judge instance type, or the default of the variant's model."""
        variant = variant or self.judge_variant
        if self.judge_instance_type and variant == self.judge_variant:
            return self.judge_instance_type
        return catalog.variant(variant).model(self.judge_model_key(variant)).default_instance_type

    def permitted_judge_instance_types(self) -> list[str]:
        """Every instance type a judge job of this deployment may use: those of the deployed judge
        model of each variant (start_judge refuses the others; IAM denies them too)."""
        models = [catalog.variant(v).model(self.judge_model_key(v)) for v in ("rubric", "binary")]
        return sorted({instance_type for model in models for instance_type in model.instance_types})

    def stack_names(self) -> dict[StackRole, str]:
        """The CloudFormation stack names, shared by the CDK app and the CLI."""
        return {
            "storage": f"{self.stack_prefix}-Storage",
            "endpoints": f"{self.stack_prefix}-Endpoints",
            "pipeline": f"{self.stack_prefix}-Pipeline",
        }

    def endpoint_name(self, which: Literal["A", "B"]) -> str:
        """Lower-case endpoint names, derived here so the pipeline never imports the endpoints stack."""
        return f"{self.stack_prefix.lower()}-model-{which.lower()}"

    def startup_health_check_seconds(self, which: Literal["A", "B"]) -> tuple[int, str]:
        """SageMaker's container start-up health-check timeout for model `which`, and why.

        TGI downloads the weights from the Hugging Face Hub when the container starts, then loads
        them onto the GPUs and warms up; /ping answers only after that. The budget is 300 s for the
        container, the server and warm-up, plus 40 s per billion parameters: 2 GB of 16-bit weights
        per billion, fetched at a conservatively assumed 50 MB/s. Rounded up to whole minutes,
        within SageMaker's 60-3600 s. A model whose size is not in its id gets 1800 s.
        """
        model_id = self.model_id(which)
        billions = _billions(model_id)
        if billions is None:
            return 1800, f"{model_id}: size not in the model id, so half of SageMaker's 3600 s maximum"
        seconds = 300 + 40 * billions
        seconds = int(min(3600, max(300, 60 * -(-seconds // 60))))
        return seconds, (
            f"{model_id}: ~{billions:g}B parameters = ~{2 * billions:g} GB of 16-bit weights downloaded "
            f"at 50 MB/s ({40 * billions:.0f} s) + 300 s to start, load and warm up TGI"
        )

    def endpoint_start_seconds(self) -> int:
        """How long per-run endpoints may take to be InService: instance provisioning (up to
        ENDPOINT_PROVISIONING_SECONDS) plus the slower model's start-up health-check timeout."""
        health = max(self.startup_health_check_seconds(w)[0] for w in ("A", "B"))
        return ENDPOINT_PROVISIONING_SECONDS + health

    def endpoint_max_polls(self) -> int:
        """Passes of the per-run endpoint wait loop before the run fails by name; 0 when the
        endpoints are persistent (the state machine then has no such loop)."""
        if self.endpoints_mode != "per_run":
            return 0
        return -(-self.endpoint_start_seconds() // self.endpoint_poll_seconds)

    def endpoint_config_name(self, which: Literal["A", "B"]) -> str:
        """The EndpointConfig of model `which`, named by its content so both stacks derive it and a
        changed setting makes a new config (CloudFormation cannot replace a named resource in place)."""
        content = json.dumps(
            [
                self.model_id(which),
                self.model_a_num_gpus if which == "A" else self.model_b_num_gpus,
                self.endpoint_instance_type,
                self.max_input_tokens,
                self.max_total_tokens,
                self.tgi_image_version,
                self.startup_health_check_seconds(which)[0],
            ]
        )
        digest = hashlib.sha256(content.encode()).hexdigest()[:10]
        return f"{self.stack_prefix.lower()}-config-{which.lower()}-{digest}"

    def endpoint_name_pattern(self, which: Literal["A", "B"]) -> str:
        """The name of model `which`'s endpoint(s) as an IAM glob: the one persistent name, or every
        per-run name of this deployment (`?` matches one character: exactly the 32 of the MD5)."""
        prefix = self.run_endpoint_prefix()
        if prefix is None:
            return self.endpoint_name(which)
        return f"{prefix}-{'?' * 32}-{which.lower()}"

    def run_endpoint_prefix(self) -> str | None:
        """Prefix of the per-run endpoint names (`layout.run_endpoint_name`); None when persistent."""
        return self.stack_prefix.lower() if self.endpoints_mode == "per_run" else None

    def model_id(self, which: Literal["A", "B"]) -> str:
        return self.model_a_id if which == "A" else self.model_b_id

    def run_defaults(self) -> dict[str, Any]:
        """Defaults of the execution input, handed to the generate Lambda as `RUN_DEFAULTS`."""
        return {
            "questions": self.default_questions,
            "offset": 0,
            "dataset": {"source": "squad"},
            "generation": {
                "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature,
                "concurrency_a": self.concurrency_a,
                "concurrency_b": self.concurrency_b,
                "max_failure_rate": self.max_failure_rate,
            },
            "judge": {"variant": self.judge_variant, "recipe_overrides": {}},
            "both_orders": self.both_orders,
            "poll_seconds": self.poll_seconds,
        }

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Settings:
        """Build from a context getter (`node.try_get_context`); unset keys keep their defaults."""
        raw = {name: get(name) for name in cls.model_fields}
        return cls.from_mapping({k: v for k, v in raw.items() if v is not None})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Validate `values`, turning any problem into one `ConfigError` line."""
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown configuration key {unknown[0]!r}; known keys: {', '.join(cls.model_fields)}"
            )
        cleaned = {k: _from_text(v) for k, v in values.items()}
        try:
            return cls.model_validate(cleaned)
        except _FieldError as exc:
            raise ConfigError(str(exc)) from None
        except ValidationError as exc:
            raise ConfigError(_one_line(exc, values)) from None

    @classmethod
    def from_cdk_json(
        cls, path: str | Path = "cdk.json", overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """The configuration the CDK app would use, for the CLI (same file, same keys)."""
        path = Path(path)
        context: dict[str, Any] = {}
        if path.exists():
            context = json.loads(path.read_text()).get("context", {})
        values = {k: v for k, v in context.items() if k in cls.model_fields}
        values.update(overrides or {})
        return cls.from_mapping(values)


class _FieldError(ValueError):
    """A cross-field problem, formatted like the single-field ones."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"invalid configuration: {key}={value!r}: expected {allowed}")


def _from_text(value: Any) -> Any:
    """`-c key=value` gives strings; treat 'null'/'none' and '' as unset-to-None."""
    if isinstance(value, str) and value.strip().lower() in {"null", "none", ""}:
        return None
    return value


def _one_line(exc: ValidationError, values: Mapping[str, Any]) -> str:
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    key = str(loc[0]) if loc else "?"
    if key in values:
        return f"invalid configuration: {key}={values[key]!r}: {err['msg']}"
    # A cross-field validator wraps _FieldError in a ValueError message.
    msg = err["msg"].removeprefix("Value error, ")
    return msg if msg.startswith("invalid configuration") else f"invalid configuration: {msg}"
