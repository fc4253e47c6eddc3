"""Render the Nova judge recipe of one run from the templates in `recipes/`.

The templates stay plain YAML files so users can read and diff exactly what the judge receives; this
module only fills what the pipeline owns (run name, judge model) and applies the run's overrides.
Overrides are dotted keys (`{"inference.max_new_tokens": 12000}`) checked against a short table:
a typo such as `inference.max_tokens` would otherwise be ignored by the judge container and the run
would silently use defaults, so unknown keys are refused with the list of known ones.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import novajudge
from novajudge.errors import JudgeConfigError
from novajudge.judge import catalog
from novajudge.judge.catalog import JudgeModel

RECIPES_DIR_ENV = "NOVAJUDGE_RECIPES_DIR"

#: Keys the pipeline sets itself; letting a run change them would break the job request
#: (model and instance type are checked together) or the training-job contract (data_s3_path empty).
PIPELINE_OWNED = frozenset(
    {
        "run.name",
        "run.model_type",
        "run.model_name_or_path",
        "run.data_s3_path",
        "run.output_s3_path",
        "evaluation.task",
        "evaluation.strategy",
        "evaluation.metric",
    }
)
#: Keys the official recipes carry empty and this pipeline keeps empty: MLflow tracking would need the
#: judge role to reach a tracking server, which the stacks do not grant (recipes/README.md).
FIXED_EMPTY = frozenset({"run.mlflow_tracking_uri", "run.mlflow_experiment_name", "run.mlflow_run_name"})

#: The only instance count the Nova judge runs on. AWS docs, "Understanding the recipe parameters"
#: (customize-fine-tune-evaluate-understand-modify): replicas "You must set this value to 1 because
#: multi-node is not supported"; AWS's nova-forge-sdk allows only 1 for both judge recipes. It is
#: also the training job's InstanceCount, so a larger value would only multiply the bill.
REPLICAS = 1


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"an integer from {lo} to {hi}"
        return None

    return check


def _float_range(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            return f"a number from {lo} to {hi}"
        return None

    return check


def _top_k(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or (value != -1 and value < 1):
        return "-1 (disabled) or a positive integer"
    return None


def _reasoning_effort(value: Any) -> str | None:
    # The reasoning-evaluation docs list "low/high or null"; one sentence elsewhere adds "medium",
    # which no recipe uses: refused rather than discovered on a p5 instance (recipes/README.md).
    return None if value in (None, "low", "high") else "null, 'low' or 'high'"


def _replicas(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value != REPLICAS:
        return (
            f"{REPLICAS}: the Nova judge runs on one instance only (AWS docs: 'You must set this value "
            "to 1 because multi-node is not supported')"
        )
    return None


#: Keys a run may override, with their check. `top_logprobs` and `reasoning_effort` are optional in
#: the documented recipes, so they may be added even though the templates leave them out.
_COMMON_KEYS: dict[str, Callable[[Any], str | None]] = {
    "run.replicas": _replicas,
    "inference.max_new_tokens": _int_range(1, 65536),
    "inference.top_k": _top_k,
    "inference.top_p": _float_range(0.0, 1.0),
    "inference.temperature": _float_range(0.0, 2.0),
    "inference.top_logprobs": _int_range(0, 20),
}
OVERRIDABLE: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "binary": dict(_COMMON_KEYS),
    "rubric": {**_COMMON_KEYS, "inference.reasoning_effort": _reasoning_effort},
}


@dataclass(frozen=True)
class RenderedRecipe:
    """A recipe ready to upload: its file name (the `recipe` channel's only file) and content."""

    variant: str
    file_name: str
    data: dict[str, Any]
    text: str
    model: JudgeModel

    @property
    def replicas(self) -> int:
        return int(self.data["run"]["replicas"])


def recipes_dir() -> Path:
    """`$NOVAJUDGE_RECIPES_DIR`, else `recipes/` beside the `novajudge` package.

    That sibling folder is the repository root in a checkout and the bundle root in a Lambda
    (the bundler copies `recipes/` next to `novajudge/`), so one rule serves both.
    """
    configured = os.environ.get(RECIPES_DIR_ENV)
    path = Path(configured) if configured else Path(novajudge.__file__).resolve().parents[1] / "recipes"
    if not path.is_dir():
        raise JudgeConfigError(
            f"recipe folder {path} not found; set {RECIPES_DIR_ENV} or ship recipes/ beside novajudge/"
        )
    return path


def load_template(variant_name: str) -> dict[str, Any]:
    """The template of `variant_name` as a dict (fresh copy every call)."""
    variant = catalog.variant(variant_name)
    path = recipes_dir() / variant.recipe_file
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JudgeConfigError(f"recipe template {path} not found") from None
    except yaml.YAMLError as exc:
        raise JudgeConfigError(f"recipe template {path} is not valid YAML: {exc}") from None
    for section in ("run", "evaluation", "inference"):
        if not isinstance(data, dict) or not isinstance(data.get(section), dict):
            raise JudgeConfigError(f"recipe template {path}: missing section {section!r}")
    if data["evaluation"].get("task") != variant.task:
        raise JudgeConfigError(
            f"recipe template {path}: evaluation.task is {data['evaluation'].get('task')!r}, "
            f"expected {variant.task!r} for the {variant_name} judge"
        )
    replicas = data["run"].get("replicas")
    if _replicas(replicas):
        raise JudgeConfigError(
            f"recipe template {path}: run.replicas is {replicas!r}, expected {_replicas(replicas)}"
        )
    return data


def validate_overrides(variant_name: str, overrides: Mapping[str, Any]) -> None:
    """Refuse unknown, pipeline-owned or ill-typed override keys, naming the key and what is allowed."""
    allowed = OVERRIDABLE[catalog.variant(variant_name).name]
    for key, value in overrides.items():
        if key in PIPELINE_OWNED:
            raise JudgeConfigError(
                f"recipe key {key!r} is set by the pipeline and cannot be overridden "
                "(choose the judge with judge.variant and the deployment's binary_judge_model)"
            )
        if key in FIXED_EMPTY:
            raise JudgeConfigError(
                f"recipe key {key!r} stays empty: MLflow tracking is not wired up "
                "(the judge role has no MLflow permissions)"
            )
        catalog.require_one_of(
            key,
            sorted(allowed),
            f"unknown recipe key {key!r} for the {variant_name} judge",
            listed_as="keys you can override",
        )
        problem = allowed[key](value)
        if problem:
            raise JudgeConfigError(f"recipe key {key!r}={value!r}: expected {problem}")


def render(
    variant_name: str,
    *,
    run_name: str,
    model_key: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RenderedRecipe:
    """The recipe of one run: template + judge model from the catalogue + the run's overrides."""
    variant = catalog.variant(variant_name)
    model = variant.model(model_key)
    overrides = dict(overrides or {})
    validate_overrides(variant_name, overrides)
    data = copy.deepcopy(load_template(variant_name))
    data["run"]["name"] = run_name
    data["run"]["model_type"] = model.model_type
    data["run"]["model_name_or_path"] = model.model_name_or_path
    for key, value in overrides.items():
        section, leaf = key.split(".", 1)
        data[section][leaf] = value
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return RenderedRecipe(
        variant=variant.name, file_name=variant.recipe_file, data=data, text=text, model=model
    )
