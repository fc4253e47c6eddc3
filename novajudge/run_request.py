"""The execution input of one evaluation run, validated once, before anything is spent.

The state machine hands the raw execution input to the generate Lambda; every later state reads the
validated copy (`run` in the state). Validating here, with defaults taken from the deployment's
configuration (`RUN_DEFAULTS`, built by `Settings.run_defaults()`), means a typo in a field fails in
the first second with a message naming the field, instead of after an hour of endpoint and judge
time. See docs/design.md, "Execution input".

The bounds and defaults of the numbers a request may set are those of the deployment's `Settings`
fields of the same meaning, taken from there (`_as_in_settings`), so the two cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from novajudge.config import Settings, history_budget_problem
from novajudge.errors import InvalidRunRequest, JudgeConfigError
from novajudge.judge import catalog
from novajudge.layout import DATASETS_PREFIX, S3_DATASET_URI, dataset_location

#: A run id lands in S3 keys and in the judge's training-job name, whose alphabet is the narrowest:
#: `[a-zA-Z0-9](-*[a-zA-Z0-9])*`. Step Functions' default execution names (UUIDs) fit it.
RUN_ID_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
RUN_ID_MAX_LENGTH = 64
#: Rows in the bundled SQuAD sample (`novajudge/data/`): `squad-sample` cannot serve more than this.
BUNDLED_SAMPLE_ROWS = 20


def _as_in_settings(name: str) -> Any:
    """A field with the default and the bounds (ge/le/gt/lt) of `Settings.<name>`."""
    info = Settings.model_fields[name]
    bounds = {
        attr: getattr(constraint, attr)
        for constraint in info.metadata
        for attr in ("ge", "le", "gt", "lt")
        if hasattr(constraint, attr)
    }
    return Field(info.default, **bounds)


class DatasetSpec(BaseModel):
    """Where the prompts come from.

    `squad`: SQuAD v1.1 train fetched at run time, with the bundled sample as offline fallback;
    `squad-sample`: only the bundled 20 rows (tests, local demo); `s3`: the user's JSONL file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["squad", "squad-sample", "s3"] = "squad"
    uri: str | None = None

    @model_validator(mode="after")
    def _uri_matches_source(self) -> DatasetSpec:
        if self.source == "s3":
            if not self.uri or not S3_DATASET_URI.match(self.uri):
                raise ValueError(
                    f"dataset.uri={self.uri!r}: expected s3://<bucket>/<key>.jsonl for dataset.source 's3'"
                )
            _, key = self.bucket_and_key()
            segments = key.split("/")
            if not key.startswith(DATASETS_PREFIX) or any(part in ("", ".", "..") for part in segments):
                raise ValueError(
                    f"dataset.uri={self.uri!r}: the key must be a plain path under {DATASETS_PREFIX} "
                    "(no empty, '.' or '..' segments), e.g. s3://<bucket>/datasets/prompts.jsonl"
                )
        elif self.uri is not None:
            raise ValueError(f"dataset.uri is only used with dataset.source 's3', not {self.source!r}")
        return self

    def bucket_and_key(self) -> tuple[str, str]:
        location = dataset_location(self.uri)
        if location is None:  # pragma: no cover - guarded by the validator
            raise InvalidRunRequest(f"dataset.uri={self.uri!r} is not an s3:// JSONL URI")
        return location


class GenerationOptions(BaseModel):
    """How the two candidate models are asked (same settings for both, so the comparison is fair)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = _as_in_settings("max_new_tokens")
    temperature: float = _as_in_settings("temperature")
    #: Per-model maxima of `generation.pool.generate_pairs` (all Map children together).
    concurrency_a: int = _as_in_settings("concurrency_a")
    concurrency_b: int = _as_in_settings("concurrency_b")
    max_failure_rate: float = _as_in_settings("max_failure_rate")


class JudgeOptions(BaseModel):
    """Which judge runs, where, and which recipe keys the user changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Literal["rubric", "binary"] = _as_in_settings("judge_variant")
    instance_type: str | None = None
    recipe_overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _instance_type_possible(self) -> JudgeOptions:
        # The exact check (binary: depends on the deployed judge model) happens in start_judge; this
        # one already refuses a type no model of the variant can use, before generation is paid for.
        if self.instance_type is not None:
            allowed = sorted(
                {t for m in catalog.variant(self.variant).models.values() for t in m.instance_types}
            )
            if self.instance_type not in allowed:
                raise ValueError(
                    f"judge.instance_type={self.instance_type!r} is not supported by the {self.variant} "
                    f"judge; allowed: {', '.join(allowed)}"
                )
        return self


class RunRequest(BaseModel):
    """The validated execution input (all fields have defaults except where the run id comes from)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(min_length=1, max_length=RUN_ID_MAX_LENGTH)
    questions: int = _as_in_settings("default_questions")
    offset: int = Field(0, ge=0)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    judge: JudgeOptions = Field(default_factory=JudgeOptions)
    both_orders: bool = _as_in_settings("both_orders")
    poll_seconds: int = _as_in_settings("poll_seconds")
    #: Continue the existing run `run_id` (`novajudge start --resume`): its stored request and
    #: items are used, items already answered by both models are kept, the rest are generated.
    resume: bool = False

    @field_validator("run_id")
    @classmethod
    def _run_id_safe(cls, value: str) -> str:
        if not RUN_ID_PATTERN.match(value):
            raise ValueError(
                f"run_id={value!r}: use letters, digits and single or repeated '-' between them "
                "(it becomes an S3 prefix and part of the judge's training-job name)"
            )
        return value


class RunState(RunRequest):
    """The `run` object of the state machine: the request plus what the deployment fixed.

    Later states (start_judge, summarize) read this instead of environment guesses, so a run's
    bucket, models and endpoints are recorded with it in `request.json`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    execution_name: str | None = None
    created_at: str
    model_a: str
    model_b: str
    endpoint_a: str
    endpoint_b: str
    stand_in: bool = False

    @model_validator(mode="after")
    def _dataset_readable(self) -> RunState:
        problem = dataset_bucket_problem(self.dataset, self.bucket)
        if problem is not None:
            raise ValueError(problem)
        return self


def dataset_bucket_problem(dataset: DatasetSpec, bucket: str) -> str | None:
    """Why the generate function could not read `dataset` in the deployment's `bucket`, or None.

    It may read only `datasets/` in the evaluation bucket (its IAM policy); saying so before the
    run starts beats an AccessDenied after the run id is taken.
    """
    if dataset.source != "s3":
        return None
    dataset_bucket, _ = dataset.bucket_and_key()
    if dataset_bucket != bucket:
        return (
            f"dataset.uri={dataset.uri!r}: the pipeline reads user datasets only from "
            f"s3://{bucket}/{DATASETS_PREFIX}<name>.jsonl (this stack's bucket); upload the file there"
        )
    return None


def validate_run(
    raw: Any,
    *,
    defaults: Mapping[str, Any] | None,
    bucket: str | None,
    judge_max_runtime_seconds: int | None,
    execution_name: str | None = None,
    endpoint_polls: int = 0,
) -> RunRequest:
    """The one validator of a run request: `novajudge start` and the generate function both call it,
    so the command line refuses (exit 2, nothing started) exactly what the function would refuse.

    `bucket` and `judge_max_runtime_seconds` are the deployment's; None skips the checks that need
    them (the command line validates once before it has looked the deployment up, then again).
    `endpoint_polls` is the deployment's per-run endpoint wait bound (`Settings.endpoint_max_polls`),
    counted in the history budget; the generate function does not know it and passes 0 (the
    configuration was checked with it at synth for the deployment's own `poll_seconds`).
    """
    request = parse_run_request(raw, execution_name=execution_name, defaults=defaults)
    problems = []
    if bucket is not None:
        problems.append(dataset_bucket_problem(request.dataset, bucket))
    if judge_max_runtime_seconds is not None:
        problems.append(
            history_budget_problem(request.poll_seconds, judge_max_runtime_seconds, endpoint_polls)
        )
    if request.dataset.source == "squad-sample" and request.offset + request.questions > BUNDLED_SAMPLE_ROWS:
        problems.append(
            f"the bundled sample has {BUNDLED_SAMPLE_ROWS} rows; offset {request.offset} + "
            f"{request.questions} questions goes past it (use dataset squad or fewer questions)"
        )
    found = [problem for problem in problems if problem]
    if found:
        raise InvalidRunRequest("invalid run request: " + "; ".join(found))
    return request


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge key by key so `{"generation": {"temperature": 0}}` keeps the other defaults.

    `recipe_overrides` is a leaf: the user's mapping replaces the default one as a whole.
    """
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if key != "recipe_overrides" and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_run_request(
    raw: Any,
    *,
    execution_name: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> RunRequest:
    """Validate the execution input; any problem raises `InvalidRunRequest` naming the field.

    `defaults` are the deployment's (`Settings.run_defaults()`); without them the model's own apply.
    `run_id` defaults to the Step Functions execution name, so re-running an execution name is
    refused later (`RunExistsError`) instead of overwriting results.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidRunRequest(f"the execution input must be a JSON object, got {type(raw).__name__}")
    values = deep_merge(defaults or {}, raw)
    if not values.get("run_id"):
        if not execution_name:
            raise InvalidRunRequest("run_id is required when there is no execution name to default to")
        values["run_id"] = execution_name
    try:
        request = RunRequest.model_validate(values)
    except ValidationError as exc:
        raise InvalidRunRequest(_describe(exc, values)) from None
    _check_recipe_overrides(request)
    return request


def _check_recipe_overrides(request: RunRequest) -> None:
    """Refuse unknown recipe keys now rather than after generation (the recipe is rendered later)."""
    if not request.judge.recipe_overrides:
        return
    from novajudge.judge import recipe  # local import: recipe reads files, keep import light

    try:
        recipe.validate_overrides(request.judge.variant, request.judge.recipe_overrides)
    except JudgeConfigError as exc:
        raise InvalidRunRequest(f"judge.recipe_overrides: {exc}") from None


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    """One line per problem: `invalid run request: generation.temperature=5: <what is allowed>`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ()))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown field")
            continue
        if err["type"] == "value_error" and loc and msg.startswith(loc):
            # Our validators already name their field (and value) in the message.
            lines.append(msg)
            continue
        shown = _lookup(values, err.get("loc", ()))
        lines.append(f"{loc}={shown!r}: {msg}" if loc else msg)
    return "invalid run request: " + "; ".join(lines)


def _lookup(values: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if isinstance(values, Mapping) and part in values:
            values = values[part]
        else:
            return None
    return values


def parse_run_state(state: Any) -> RunState:
    """The `run` object of a state-machine state, re-validated (later handlers trust nothing)."""
    if not isinstance(state, Mapping) or not isinstance(state.get("run"), Mapping):
        raise InvalidRunRequest("the state has no 'run' object: was the generate step skipped?")
    try:
        return RunState.model_validate(state["run"])
    except ValidationError as exc:
        raise InvalidRunRequest(
            _describe(exc, state["run"]).replace("invalid run request", "invalid run state")
        ) from None
