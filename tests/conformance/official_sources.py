"""Facts copied from AWS's official Nova sources, each with where it was read. Data, not code.

These are the values the project relies on, written down by hand from the sources below, so a change
on either side (an AWS recipe moves, or someone edits ours) is a visible test failure instead of a
silent drift. When a source changes, update the fact here *and* say in recipes/README.md what the
project does about it.

Sources (read 2026-11, the commits named are the ones read):
- HYPERPOD: github.com/aws/sagemaker-hyperpod-recipes, recipes_collection/recipes/evaluation/nova/
- FORGE: github.com/aws/nova-forge-sdk at a4d5b3df0bae826a0364a9087d768248c1883f42
  (src/amzn_nova_forge/core/constants.py, util/recipe.py, recipe/templates/{recipe,override}/*,
  docs/user-guides/instance_type_spec.md)
- DOCS_PARAMS: https://docs.aws.amazon.com/sagemaker/latest/dg/customize-fine-tune-evaluate-understand-modify.html
- DOCS_REASONING: https://docs.aws.amazon.com/nova/latest/nova2-userguide/nova-reasoning-model-evaluation.html
- DOCS_EVAL: https://docs.aws.amazon.com/sagemaker/latest/dg/nova-model-evaluation.html
- SDK: sagemaker (SageMaker Python SDK) 2.257.7, sagemaker/pytorch/estimator.py
  (`_setup_for_nova_recipe`, `fit`) and sagemaker/estimator.py (defaults)
"""

from __future__ import annotations

from typing import Any

HYPERPOD = "https://github.com/aws/sagemaker-hyperpod-recipes/blob"
FORGE_COMMIT = "a4d5b3df0bae826a0364a9087d768248c1883f42"
FORGE = f"https://github.com/aws/nova-forge-sdk/blob/{FORGE_COMMIT}"
DOCS_PARAMS = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/customize-fine-tune-evaluate-understand-modify.html"
)
DOCS_REASONING = (
    "https://docs.aws.amazon.com/nova/latest/nova2-userguide/nova-reasoning-model-evaluation.html"
)
DOCS_EVAL = "https://docs.aws.amazon.com/sagemaker/latest/dg/nova-model-evaluation.html"

_EVAL = "recipes_collection/recipes/evaluation/nova"


def _run(name: str, model_type: str, model_name_or_path: str) -> dict[str, Any]:
    """The `run` block of every official judge recipe: only the job name and the model keys differ."""
    return {
        "name": name,
        "model_type": model_type,
        "model_name_or_path": model_name_or_path,
        "replicas": 1,
        "data_s3_path": "",
        "output_s3_path": "",
        "mlflow_tracking_uri": "",
        "mlflow_experiment_name": "",
        "mlflow_run_name": "",
    }


def _llm_judge(model: str, model_type: str) -> dict[str, Any]:
    """The three Nova 1.0 llm_judge recipes differ only in the model keys and the job name."""
    return {
        "run": _run(f"nova-{model}-llm-judge-eval-job", model_type, f"nova-{model}/prod"),
        "evaluation": {"task": "llm_judge", "strategy": "judge", "metric": "all"},
        "inference": {"temperature": 0, "top_k": 50, "top_logprobs": 0, "top_p": 1.0},
    }


#: The official recipe files, as (source URL, content). Keys: (variant, our catalogue model key).
OFFICIAL_RECIPES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("rubric", "nova-lite-2"): (
        f"{HYPERPOD}/1d2f3f9797feed57d4ac8e18271920447da1660e/{_EVAL}/nova_2_0/nova_lite/"
        "nova_lite_2_0_p5_48xl_gpu_rubric_llm_judge_eval.yaml",
        {
            "run": _run(
                "nova-lite-v2-rubric-llm-judge-eval-job", "amazon.nova-2-lite-v1:0:256k", "nova-lite-2/prod"
            ),
            "evaluation": {"task": "rubric_llm_judge", "strategy": "judge", "metric": "all"},
            "inference": {
                "max_new_tokens": 32768,
                "temperature": 0,
                "top_k": 50,
                "top_logprobs": 0,
                "top_p": 1.0,
            },
        },
    ),
    ("binary", "nova-micro"): (
        f"{HYPERPOD}/1d2f3f9797feed57d4ac8e18271920447da1660e/{_EVAL}/nova_1_0/nova_micro/"
        "nova_micro_1_0_p5_48xl_gpu_llm_judge_eval.yaml",
        _llm_judge("micro", "amazon.nova-micro-v1:0:128k"),
    ),
    ("binary", "nova-lite"): (
        f"{HYPERPOD}/d72c3cb78d2b05c0ffde40a231b1361f2c03a103/{_EVAL}/nova_1_0/nova_lite/"
        "nova_lite_1_0_p5_48xl_gpu_llm_judge_eval.yaml",
        _llm_judge("lite", "amazon.nova-lite-v1:0:300k"),
    ),
    ("binary", "nova-pro"): (
        f"{HYPERPOD}/1d2f3f9797feed57d4ac8e18271920447da1660e/{_EVAL}/nova_1_0/nova_pro/"
        "nova_pro_1_0_p5_48xl_gpu_llm_judge_eval.yaml",
        _llm_judge("pro", "amazon.nova-pro-v1:0:300k"),
    ),
}

#: FORGE recipe/templates/recipe/{llm_judge_one,rubric_llm_judge_two}.yaml: the inference blocks
#: (top_logprobs is a template variable whose override default is 0).
FORGE_INFERENCE: dict[str, dict[str, Any]] = {
    "binary": {"top_k": 50, "top_p": 1.0, "temperature": 0, "top_logprobs": 0},
    "rubric": {"max_new_tokens": 32768, "top_k": 50, "top_p": 1.0, "temperature": 0, "top_logprobs": 0},
}
#: FORGE recipe/templates/override/*.json: "replicas": {"enum": [1]}; top_logprobs min 0, max 20.
FORGE_REPLICAS = (1,)
FORGE_TOP_LOGPROBS = (0, 20)
#: DOCS_PARAMS, run.replicas: "You must set this value to 1 because multi-node is not supported."
DOCS_REPLICAS = 1
#: DOCS_PARAMS, run.model_type options (the four this project's judges use).
DOCS_MODEL_TYPES = (
    "amazon.nova-micro-v1:0:128k",
    "amazon.nova-lite-v1:0:300k",
    "amazon.nova-pro-v1:0:300k",
    "amazon.nova-2-lite-v1:0:256k",
)
#: DOCS_REASONING: "reasoning_effort: ... options: low/high or null to disable"; supported model:
#: amazon.nova-2-lite-v1:0:256k only.
DOCS_REASONING_EFFORT = (None, "low", "high")
DOCS_REASONING_MODELS = ("amazon.nova-2-lite-v1:0:256k",)

#: FORGE core/constants.py REGION_TO_ESCROW_ACCOUNT_MAPPING (the account hosting nova-evaluation-repo).
FORGE_IMAGE_ACCOUNTS = {"us-east-1": "708977205387", "us-west-2": "176779409107", "eu-west-2": "470633809225"}
#: The AWS docs' image table (DOCS_EVAL) adds ap-northeast-1; no other source names its account.
DOCS_ONLY_IMAGE_ACCOUNTS = {"ap-northeast-1": "878185805882"}
#: FORGE util/recipe.py: "SM-TJ-" + ("Eval-V2-latest" if Nova 2 else "Eval-latest") for training jobs.
FORGE_IMAGE_TAG = {"nova_1": "SM-TJ-Eval-latest", "nova_2": "SM-TJ-Eval-V2-latest"}
EVAL_REPOSITORY = "nova-evaluation-repo"

#: FORGE docs/user-guides/instance_type_spec.md, "Evaluation" (SageMaker training jobs).
FORGE_EVAL_INSTANCE_TYPES = {
    "nova-micro": (
        "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.g5.12xlarge", "ml.g5.16xlarge", "ml.g5.24xlarge",
        "ml.g6.4xlarge", "ml.g6.8xlarge", "ml.g6.12xlarge", "ml.g6.16xlarge", "ml.g6.24xlarge",
        "ml.g6.48xlarge", "ml.p5.48xlarge",
    ),
    "nova-lite": (
        "ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge", "ml.g6.24xlarge", "ml.g6.48xlarge",
        "ml.p5.48xlarge",
    ),
    "nova-lite-2": ("ml.p4d.24xlarge", "ml.p5.48xlarge"),
    "nova-pro": ("ml.p5.48xlarge",),
}  # fmt: skip
#: FORGE util/recipe.py, judge recipes (llm_judge, rubric_llm_judge): "SupportedInstanceTypes":
#: ["ml.p5.48xlarge"], "InstanceCount": 1. The recipe file names (…_p5_48xl_…) say the same.
FORGE_JUDGE_INSTANCE_TYPES = ("ml.p5.48xlarge",)

#: SDK defaults for a training job that does not set them (sagemaker/estimator.py): max_run 24 h,
#: volume_size 30 GB; for a Nova recipe `_setup_for_nova_recipe` sends hyperparameters model_type,
#: base_model (or base_model_location for s3:// paths) and `fit` adds sagemaker_recipe_local_path.
SDK_VERSION = "2.257.7"
SDK_DEFAULT_MAX_RUN_SECONDS = 86400
SDK_DEFAULT_VOLUME_GB = 30
SDK_NOVA_HYPERPARAMETERS = ("model_type", "base_model", "sagemaker_recipe_local_path")
