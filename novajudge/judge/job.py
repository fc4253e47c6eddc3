"""Start the Nova judge as a SageMaker training job, the way the SageMaker SDK would for a recipe.

We call `create_training_job` directly (no SageMaker SDK in the Lambda: it is large and would only
translate the same request). The request follows shared/reference/nova-judge.md: the Nova
evaluation image, the recipe as its own `recipe` channel, the judge input as `train`, raw string
hyperparameters. Every check that can fail (variant, model, instance type, region's image, role)
runs before the first AWS call, so a wrong setting costs nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novajudge.errors import JudgeConfigError
from novajudge.generation.layout import RunLayout
from novajudge.judge import catalog, recipe
from novajudge.judge.recipe import RenderedRecipe
from novajudge.run_request import RunState

JOB_NAME_MAX = 63
VOLUME_SIZE_GB = 30
RECIPE_MOUNT = "/opt/ml/input/data/recipe"
DEFAULT_MAX_RUNTIME_SECONDS = 14400


@dataclass(frozen=True)
class JudgeEnvironment:
    """What the deployment fixed for the judge (start_judge's environment, see docs/design.md)."""

    role_arn: str
    instance_types: dict[str, str | None]
    binary_model: str
    max_runtime_seconds: int
    binary_image_tag: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JudgeEnvironment:
        environ = os.environ if environ is None else environ
        role = environ.get("JUDGE_ROLE_ARN", "").strip()
        if not role:
            raise JudgeConfigError("environment variable JUDGE_ROLE_ARN is not set (the judge job's role)")
        raw_runtime = environ.get("JUDGE_MAX_RUNTIME_SECONDS", str(DEFAULT_MAX_RUNTIME_SECONDS))
        try:
            runtime = int(raw_runtime)
        except ValueError:
            raise JudgeConfigError(f"JUDGE_MAX_RUNTIME_SECONDS={raw_runtime!r} is not an integer") from None
        if runtime < 1:
            raise JudgeConfigError(f"JUDGE_MAX_RUNTIME_SECONDS={runtime} must be positive")
        return cls(
            role_arn=role,
            instance_types={
                "rubric": environ.get("JUDGE_INSTANCE_TYPE_RUBRIC") or None,
                "binary": environ.get("JUDGE_INSTANCE_TYPE_BINARY") or None,
            },
            binary_model=environ.get("BINARY_JUDGE_MODEL") or catalog.variant("binary").default_model,
            max_runtime_seconds=runtime,
            binary_image_tag=environ.get("BINARY_JUDGE_IMAGE_TAG") or None,
        )

    def model_key(self, variant: str) -> str:
        return self.binary_model if variant == "binary" else catalog.variant(variant).default_model

    def image_tag(self, variant: str) -> str | None:
        """The deployment's image tag for `variant` (None: the catalogue's default)."""
        return self.binary_image_tag if variant == "binary" else None


def judge_job_name(run_id: str, variant: str, created_at: str) -> str:
    """`<run id>-<variant>-<hash>`, at most 63 characters, deterministic for one run.

    Deterministic, so a Step Functions retry of start_judge finds the job it already started instead
    of paying for a second one; the hash covers the run's creation time, so a run id reused after
    its objects were deleted still gets a new name (training-job names are unique per account).
    """
    digest = hashlib.sha256(f"{run_id}|{created_at}|{variant}".encode()).hexdigest()[:8]
    room = JOB_NAME_MAX - len(variant) - len(digest) - 2
    head = run_id[:room].rstrip("-")
    return f"{head}-{variant}-{digest}"


def build_training_job_request(
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    layout: RunLayout,
    rendered: RenderedRecipe,
    instance_type: str,
    max_runtime_seconds: int,
) -> dict[str, Any]:
    """The `create_training_job` arguments (nova-judge.md, "Starting the job without the SDK")."""
    model_path = rendered.model.model_name_or_path
    base_model_key = "base_model_location" if model_path.startswith("s3://") else "base_model"
    return {
        "TrainingJobName": job_name,
        "RoleArn": role_arn,
        "AlgorithmSpecification": {"TrainingImage": image_uri, "TrainingInputMode": "File"},
        "HyperParameters": {
            "model_type": rendered.model.model_type,
            base_model_key: model_path,
            "sagemaker_recipe_local_path": f"{RECIPE_MOUNT}/{rendered.file_name}",
        },
        "InputDataConfig": [
            _s3_channel("recipe", layout.uri(layout.recipe_prefix)),
            _s3_channel("train", layout.uri(layout.judge_input_prefix)),
        ],
        "OutputDataConfig": {"S3OutputPath": layout.uri(layout.judge_output_prefix)},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": rendered.replicas,
            "VolumeSizeInGB": VOLUME_SIZE_GB,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "ProfilerConfig": {"DisableProfiler": True},
        "RemoteDebugConfig": {"EnableRemoteDebug": False},
    }


def _s3_channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


@dataclass(frozen=True)
class JudgePlan:
    """Everything decided before the first AWS call."""

    variant: str
    job_name: str
    instance_type: str
    rendered: RenderedRecipe
    request: dict[str, Any]
    layout: RunLayout

    @property
    def recipe_key(self) -> str:
        return self.layout.recipe_key(self.rendered.file_name)

    def result(self) -> dict[str, Any]:
        """The `judge` object of the state machine."""
        return {
            "training_job_name": self.job_name,
            "output_path": self.layout.uri(self.layout.judge_archive_key(self.job_name)),
            "recipe_uri": self.layout.uri(self.recipe_key),
            "instance_type": self.instance_type,
            "variant": self.variant,
            "judge_model": self.rendered.model.key,
        }


def plan_judge_job(run: RunState, *, region: str, env: JudgeEnvironment) -> JudgePlan:
    """Resolve and check the judge of `run` without touching AWS."""
    variant = run.judge.variant
    model_key = env.model_key(variant)
    model = catalog.variant(variant).model(model_key)
    instance_type = run.judge.instance_type or env.instance_types.get(variant) or model.default_instance_type
    catalog.check_instance_type(variant, instance_type, model_key)
    image = catalog.image_uri(variant, region, env.image_tag(variant))
    job_name = judge_job_name(run.run_id, variant, run.created_at)
    rendered = recipe.render(
        variant, run_name=job_name, model_key=model_key, overrides=run.judge.recipe_overrides
    )
    layout = RunLayout(run.bucket, run.run_id)
    request = build_training_job_request(
        job_name=job_name,
        image_uri=image,
        role_arn=env.role_arn,
        layout=layout,
        rendered=rendered,
        instance_type=instance_type,
        max_runtime_seconds=env.max_runtime_seconds,
    )
    return JudgePlan(variant, job_name, instance_type, rendered, request, layout)


def start_judge_job(
    run: RunState, *, s3: Any, sagemaker: Any, region: str, env: JudgeEnvironment
) -> dict[str, Any]:
    """Upload the recipe and start the judge; return the `judge` state object."""
    plan = plan_judge_job(run, region=region, env=env)
    layout = plan.layout
    try:
        s3.head_object(Bucket=layout.bucket, Key=layout.judge_input_key)
    except Exception:
        raise JudgeConfigError(
            f"judge input {layout.uri(layout.judge_input_key)} is missing: generation did not finish"
        ) from None
    s3.put_object(
        Bucket=layout.bucket,
        Key=plan.recipe_key,
        Body=plan.rendered.text.encode("utf-8"),
        ContentType="application/x-yaml",
    )
    try:
        sagemaker.create_training_job(**plan.request)
    except Exception as exc:
        error = getattr(exc, "response", {}).get("Error", {})
        code = error.get("Code")
        if code in ("ResourceInUse", "ValidationException") and _same_job_exists(sagemaker, plan):
            return plan.result()
        if code is None or code in _RETRYABLE_CODES:
            raise  # transient: let the state machine's retry see the original error
        raise JudgeConfigError(
            f"SageMaker refused to start judge job {plan.job_name} on {plan.instance_type}: "
            f"{code}: {error.get('Message', '')}"
        ) from None
    return plan.result()


#: Errors the state machine may retry as they are; any other refusal becomes a JudgeConfigError.
_RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestTimeout"}
)


def _same_job_exists(sagemaker: Any, plan: JudgePlan) -> bool:
    """True when a job of this name already runs for this very run (a retried start_judge)."""
    try:
        existing = sagemaker.describe_training_job(TrainingJobName=plan.job_name)
    except Exception:
        return False
    return (
        existing.get("OutputDataConfig", {}).get("S3OutputPath")
        == plan.request["OutputDataConfig"]["S3OutputPath"]
        and existing.get("AlgorithmSpecification", {}).get("TrainingImage")
        == plan.request["AlgorithmSpecification"]["TrainingImage"]
    )
