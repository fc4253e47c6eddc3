"""The Nova judge's SageMaker training job, the way the SageMaker SDK would start it for a recipe.

We call `create_training_job` directly (no SageMaker SDK in the Lambda: it is large and would only
translate the same request). The request follows the public sources on Nova LLM-as-a-judge
evaluation (https://docs.aws.amazon.com/sagemaker/latest/dg/nova-judge-evaluation.html and the
recipes of https://github.com/aws/sagemaker-hyperpod-recipes): the Nova evaluation image, the
recipe as its own `recipe` channel, the judge input as `train`, raw string hyperparameters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from novajudge.judge.recipe import RenderedRecipe
from novajudge.layout import RunLayout

JOB_NAME_MAX = 63
VOLUME_SIZE_GB = 30
RECIPE_MOUNT = "/opt/ml/input/data/recipe"


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
    """The `create_training_job` arguments: what the SDK's recipe estimator would send."""
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
