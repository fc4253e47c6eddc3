"""What each Lambda function's environment says, typed and checked once, in its handler.

Every variable a step depends on is read here and nowhere else (docs/design.md, "Lambda
environment"): the handler calls `<Step>Environment.from_environ(os.environ)` once per invocation
and hands the object down, so the steps are plain functions a test calls with any environment it
likes, and a missing or malformed variable fails in the first millisecond with one line naming it,
before anything is read, written or paid for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from novajudge.config import Settings
from novajudge.errors import ConfigError, JudgeConfigError
from novajudge.generation.datasets import SQUAD_ROWS_URL
from novajudge.generation.endpoints import DEFAULT_READ_TIMEOUT, RetryPolicy
from novajudge.generation.manifest import DEFAULT_CONTEXT_LIMIT_TOKENS
from novajudge.judge import catalog
from novajudge.layout import run_endpoint_name

Environ = Mapping[str, str]
#: The values of NOVAJUDGE_STAND_IN that switch stand-in labelling on.
TRUE_WORDS = frozenset({"1", "true", "yes"})
#: Set only by the local emulator: every output of the run then says it comes from stand-ins.
STAND_IN_VAR = "NOVAJUDGE_STAND_IN"
#: A judge job's time limit when JUDGE_MAX_RUNTIME_SECONDS is unset: the configuration's default.
DEFAULT_MAX_RUNTIME_SECONDS: int = Settings.model_fields["judge_max_runtime_seconds"].default
#: The endpoints' input limit when MAX_INPUT_TOKENS is unset: the configuration's default.
DEFAULT_MAX_INPUT_TOKENS: int = Settings.model_fields["max_input_tokens"].default
#: The generate (chunk) function's timeout when CHUNK_TIMEOUT_SECONDS is unset: Lambda's maximum.
DEFAULT_CHUNK_TIMEOUT_SECONDS = 900.0


def stand_in(environ: Environ) -> bool:
    """True when the local emulator runs stand-in endpoints and judge (`NOVAJUDGE_STAND_IN`)."""
    return environ.get(STAND_IN_VAR, "").strip().lower() in TRUE_WORDS


def _require(environ: Environ, names: tuple[str, ...], function: str, error: type[Exception]) -> None:
    missing = [name for name in names if not environ.get(name, "").strip()]
    if missing:
        raise error(f"{function} function environment is missing {', '.join(missing)}")


def _number(
    environ: Environ,
    name: str,
    kind: type[int] | type[float],
    default: float,
    error: type[Exception],
    minimum: float,
) -> Any:
    """`kind(environ[name])`, or `default` when unset; a bad value names the variable."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise error(f"environment variable {name}={raw!r} is not {what}") from None
    if value < minimum:
        raise error(f"environment variable {name}={raw!r} must be at least {minimum}")
    return value


def _read_timeout(environ: Environ) -> float:
    """NOVAJUDGE_READ_TIMEOUT_SECONDS: the endpoint client's read timeout (prepare sizes chunks
    with it, the chunk step asks with it: one reading for both)."""
    return _number(environ, "NOVAJUDGE_READ_TIMEOUT_SECONDS", float, DEFAULT_READ_TIMEOUT, ConfigError, 0.001)


def _retry_policy(environ: Environ) -> RetryPolicy:
    """NOVAJUDGE_RETRY_*: attempts and backoff of endpoint requests (tests and the emulator set the
    delays near 0)."""
    defaults = RetryPolicy()
    return RetryPolicy(
        max_attempts=_number(
            environ, "NOVAJUDGE_RETRY_MAX_ATTEMPTS", int, defaults.max_attempts, ConfigError, 1
        ),
        base_delay=_number(
            environ, "NOVAJUDGE_RETRY_BASE_SECONDS", float, defaults.base_delay, ConfigError, 0.0
        ),
        max_delay=_number(
            environ, "NOVAJUDGE_RETRY_MAX_SECONDS", float, defaults.max_delay, ConfigError, 0.0
        ),
        seed=_number(environ, "NOVAJUDGE_RETRY_SEED", int, defaults.seed, ConfigError, 0),
    )


@dataclass(frozen=True)
class GenerateEnvironment:
    """The generate function: where runs go, which endpoints answer, how they are asked."""

    bucket: str
    endpoint_a: str
    endpoint_b: str
    model_a: str
    model_b: str
    #: Defaults of the execution input (`Settings.run_defaults()`, JSON in RUN_DEFAULTS).
    run_defaults: dict[str, Any] = field(default_factory=dict)
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    context_limit_tokens: int = DEFAULT_CONTEXT_LIMIT_TOKENS
    squad_rows_url: str = SQUAD_ROWS_URL
    stand_in: bool = False
    #: `RUN_ENDPOINT_PREFIX` (`endpoints_mode=per_run`): the run's own endpoints are asked, named
    #: `layout.run_endpoint_name(prefix, run_id, ...)` as the state machine created them.
    run_endpoint_prefix: str | None = None
    #: The endpoints' MAX_INPUT_TOKENS: longer prompts are never sent (and are reported).
    max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS
    #: The judge job's limit, to check a request's poll_seconds against the history budget.
    judge_max_runtime_seconds: int = DEFAULT_MAX_RUNTIME_SECONDS
    #: Quota pre-flight: the deployment's judge instance type per variant (None: the model's default).
    judge_instance_types: dict[str, str | None] = field(default_factory=dict)
    #: Quota pre-flight, per-run endpoints only: their instance type (None: persistent endpoints).
    endpoint_instance_type: str | None = None
    #: The region named in a quota refusal.
    region: str = ""
    #: The generate (chunk) function's timeout: chunks are sized to finish well inside it.
    chunk_timeout_seconds: float = DEFAULT_CHUNK_TIMEOUT_SECONDS
    #: Items per chunk when set (tests, the local demo); unset: `generation.chunks.chunk_size`.
    chunk_items: int | None = None
    #: The Map's MaxConcurrency (`map_max_concurrency`): how many chunks ask the endpoints at once,
    #: so each takes its part of the per-model in-flight budget (`generation.pool.per_child`).
    map_max_concurrency: int = 1

    REQUIRED: ClassVar[tuple[str, ...]] = (
        "BUCKET_NAME",
        "ENDPOINT_A_NAME",
        "ENDPOINT_B_NAME",
        "MODEL_A_ID",
        "MODEL_B_ID",
    )
    #: Not required when RUN_ENDPOINT_PREFIX is set: per-run endpoints are named from the run id.
    PERSISTENT_ENDPOINTS: ClassVar[frozenset[str]] = frozenset({"ENDPOINT_A_NAME", "ENDPOINT_B_NAME"})

    def endpoints_of(self, run_id: str) -> tuple[str, str]:
        """The endpoints of models A and B that run `run_id` asks."""
        if self.run_endpoint_prefix:
            return (
                run_endpoint_name(self.run_endpoint_prefix, run_id, "A"),
                run_endpoint_name(self.run_endpoint_prefix, run_id, "B"),
            )
        return self.endpoint_a, self.endpoint_b

    @classmethod
    def from_environ(cls, environ: Environ) -> GenerateEnvironment:
        prefix = environ.get("RUN_ENDPOINT_PREFIX", "").strip() or None
        required = tuple(n for n in cls.REQUIRED if not (prefix and n in cls.PERSISTENT_ENDPOINTS))
        _require(environ, required, "generate", ConfigError)
        regions = (environ.get("AWS_REGION", "").strip(), environ.get("AWS_DEFAULT_REGION", "").strip())
        return cls(
            bucket=environ["BUCKET_NAME"],
            endpoint_a=environ.get("ENDPOINT_A_NAME", "").strip(),
            endpoint_b=environ.get("ENDPOINT_B_NAME", "").strip(),
            run_endpoint_prefix=prefix,
            model_a=environ["MODEL_A_ID"],
            model_b=environ["MODEL_B_ID"],
            run_defaults=_run_defaults(environ.get("RUN_DEFAULTS")),
            read_timeout_seconds=_read_timeout(environ),
            retry=_retry_policy(environ),
            context_limit_tokens=_number(
                environ, "JUDGE_CONTEXT_LIMIT_TOKENS", int, DEFAULT_CONTEXT_LIMIT_TOKENS, ConfigError, 1
            ),
            squad_rows_url=environ.get("NOVAJUDGE_SQUAD_ROWS_URL", "").strip() or SQUAD_ROWS_URL,
            stand_in=stand_in(environ),
            max_input_tokens=_number(
                environ, "MAX_INPUT_TOKENS", int, DEFAULT_MAX_INPUT_TOKENS, ConfigError, 1
            ),
            judge_max_runtime_seconds=_number(
                environ, "JUDGE_MAX_RUNTIME_SECONDS", int, DEFAULT_MAX_RUNTIME_SECONDS, ConfigError, 1
            ),
            judge_instance_types={
                "rubric": environ.get("JUDGE_INSTANCE_TYPE_RUBRIC", "").strip() or None,
                "binary": environ.get("JUDGE_INSTANCE_TYPE_BINARY", "").strip() or None,
            },
            endpoint_instance_type=environ.get("ENDPOINT_INSTANCE_TYPE", "").strip() or None,
            region=next((r for r in regions if r), ""),
            chunk_timeout_seconds=_number(
                environ, "CHUNK_TIMEOUT_SECONDS", float, DEFAULT_CHUNK_TIMEOUT_SECONDS, ConfigError, 1
            ),
            chunk_items=_number(environ, "NOVAJUDGE_CHUNK_ITEMS", int, 0, ConfigError, 0) or None,
            map_max_concurrency=_number(environ, "MAP_MAX_CONCURRENCY", int, 1, ConfigError, 1),
        )

    def judge_instance_type(self, variant: str, requested: str | None) -> str:
        """The instance type the run's judge will ask for: the request's, the deployment's, or the
        default of the variant's model (the order start_judge resolves it in)."""
        if requested:
            return requested
        configured = self.judge_instance_types.get(variant)
        if configured:
            return configured
        return catalog.variant(variant).model().default_instance_type


@dataclass(frozen=True)
class ChunkEnvironment:
    """The generate function (one chunk of the Map): how the endpoints are asked. Bucket, models
    and endpoints come with the run in the event."""

    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_environ(cls, environ: Environ) -> ChunkEnvironment:
        return cls(
            read_timeout_seconds=_read_timeout(environ),
            retry=_retry_policy(environ),
        )


def _run_defaults(raw: str | None) -> dict[str, Any]:
    """RUN_DEFAULTS as an object; unset means the request model's own defaults."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"environment variable RUN_DEFAULTS is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError("environment variable RUN_DEFAULTS must be a JSON object")
    return value


@dataclass(frozen=True)
class StartJudgeEnvironment:
    """The start_judge function: what the deployment fixed for the judge, and the region it runs in.

    Problems raise `JudgeConfigError`, the start_judge step's one name for "the judge cannot start
    as configured", before any AWS call.
    """

    role_arn: str
    region: str
    instance_types: dict[str, str | None] = field(default_factory=dict)
    binary_model: str = catalog.variant("binary").default_model
    max_runtime_seconds: int = DEFAULT_MAX_RUNTIME_SECONDS
    #: Value of the `JUDGE_JOB_TAG` tag on the job (the pipeline stack's name); unset: no tag.
    stack_tag: str | None = None
    binary_image_tag: str | None = None

    @classmethod
    def from_environ(cls, environ: Environ) -> StartJudgeEnvironment:
        _require(environ, ("JUDGE_ROLE_ARN",), "start_judge", JudgeConfigError)
        # Lambda sets AWS_REGION; AWS_DEFAULT_REGION is what other tools set outside Lambda.
        regions = (environ.get("AWS_REGION", "").strip(), environ.get("AWS_DEFAULT_REGION", "").strip())
        region = regions[0] or regions[1]
        if not region:
            raise JudgeConfigError("no AWS region: set AWS_REGION")
        return cls(
            role_arn=environ["JUDGE_ROLE_ARN"].strip(),
            region=region,
            instance_types={
                "rubric": environ.get("JUDGE_INSTANCE_TYPE_RUBRIC") or None,
                "binary": environ.get("JUDGE_INSTANCE_TYPE_BINARY") or None,
            },
            binary_model=environ.get("BINARY_JUDGE_MODEL") or catalog.variant("binary").default_model,
            max_runtime_seconds=_number(
                environ,
                "JUDGE_MAX_RUNTIME_SECONDS",
                int,
                DEFAULT_MAX_RUNTIME_SECONDS,
                JudgeConfigError,
                1,
            ),
            stack_tag=environ.get("JUDGE_JOB_STACK_TAG", "").strip() or None,
            binary_image_tag=environ.get("BINARY_JUDGE_IMAGE_TAG") or None,
        )

    def model_key(self, variant: str) -> str:
        """The judge model of `variant`: the deployment's binary model, the catalogue's otherwise."""
        return self.binary_model if variant == "binary" else catalog.variant(variant).default_model

    def image_tag(self, variant: str) -> str | None:
        """The deployment's image tag for `variant` (None: the catalogue's default)."""
        return self.binary_image_tag if variant == "binary" else None


@dataclass(frozen=True)
class SummarizeEnvironment:
    """The summarize function: where to unpack the archive, and whether stand-ins made it."""

    #: TMPDIR (Lambda's /tmp when unset); the archive and the four files are written below it.
    work_dir: str | None = None
    stand_in: bool = False

    @classmethod
    def from_environ(cls, environ: Environ) -> SummarizeEnvironment:
        return cls(work_dir=environ.get("TMPDIR") or None, stand_in=stand_in(environ))


@dataclass(frozen=True)
class CleanupEnvironment:
    """The cleanup function: the bucket holding the runs (the run's own record names its judge)."""

    bucket: str
    region: str
    #: `RUN_ENDPOINT_PREFIX`, set only with `endpoints_mode=per_run`: the run's endpoints are then
    #: `layout.run_endpoint_name(prefix, run_id, ...)` and the cleanup deletes them.
    run_endpoint_prefix: str | None = None

    def run_endpoints(self, run_id: str) -> tuple[str, ...]:
        """The endpoints that live for run `run_id` only (none with persistent endpoints)."""
        if not self.run_endpoint_prefix:
            return ()
        return tuple(run_endpoint_name(self.run_endpoint_prefix, run_id, w) for w in ("A", "B"))

    @classmethod
    def from_environ(cls, environ: Environ) -> CleanupEnvironment:
        _require(environ, ("BUCKET_NAME",), "cleanup", ConfigError)
        regions = (environ.get("AWS_REGION", "").strip(), environ.get("AWS_DEFAULT_REGION", "").strip())
        region = regions[0] or regions[1]
        if not region:
            raise ConfigError("no AWS region: set AWS_REGION")
        return cls(
            bucket=environ["BUCKET_NAME"].strip(),
            region=region,
            run_endpoint_prefix=environ.get("RUN_ENDPOINT_PREFIX", "").strip() or None,
        )


@dataclass(frozen=True)
class TeardownEnvironment:
    """The teardown function (the pipeline stack's delete-time custom resource): what it may stop."""

    #: `STATE_MACHINE_ARN`: the state machine whose RUNNING executions are stopped.
    state_machine_arn: str
    #: `JUDGE_JOB_STACK_TAG`: only training jobs tagged `novajudge:stack=<this>` are stopped.
    stack_tag: str
    #: `RUN_ENDPOINT_PREFIX`, set only with `endpoints_mode=per_run`: per-run endpoints to delete.
    run_endpoint_prefix: str | None = None
    #: `TEARDOWN_SETTLE_SECONDS`: after stopping executions, how long a start_judge invocation
    #: already in flight may still start a job (its timeout); swept again until then.
    settle_seconds: int = 150  # the stack sets START_JUDGE_TIMEOUT plus a margin
    #: `TEARDOWN_GIVE_UP_SECONDS`: after this, isComplete reports what remains and lets the
    #: deletion go on (below the Provider's total timeout, which would fail it).
    give_up_seconds: int = 3600

    @classmethod
    def from_environ(cls, environ: Environ) -> TeardownEnvironment:
        _require(environ, ("STATE_MACHINE_ARN", "JUDGE_JOB_STACK_TAG"), "teardown", ConfigError)
        return cls(
            state_machine_arn=environ["STATE_MACHINE_ARN"].strip(),
            stack_tag=environ["JUDGE_JOB_STACK_TAG"].strip(),
            run_endpoint_prefix=environ.get("RUN_ENDPOINT_PREFIX", "").strip() or None,
            settle_seconds=_number(
                environ, "TEARDOWN_SETTLE_SECONDS", int, cls.settle_seconds, ConfigError, 0
            ),
            give_up_seconds=_number(
                environ, "TEARDOWN_GIVE_UP_SECONDS", int, cls.give_up_seconds, ConfigError, 1
            ),
        )
