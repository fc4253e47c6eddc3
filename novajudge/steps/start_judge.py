"""StartJudgeJob: render the recipe, upload it, start the Nova judge training job.

The event is the state `{"run": {...}, "generation": {...}}`; the result is the `judge` object
(`training_job_name`, `output_path`, `recipe_uri`, `instance_type`, `variant`, `judge_model`).
Every check that can fail (variant, model, instance type, the region's image, the role) runs before
the first AWS call and raises `JudgeConfigError`, so a wrong setting starts and costs nothing.
"""

from __future__ import annotations

from typing import Any

from novajudge.errors import JudgeConfigError
from novajudge.judge import catalog, recipe
from novajudge.judge.job import JudgePlan, build_training_job_request, judge_job_name
from novajudge.layout import JUDGE_JOB_TAG, RunLayout
from novajudge.run_request import RunState, parse_run_state
from novajudge.steps.environment import StartJudgeEnvironment


def plan_judge_job(run: RunState, env: StartJudgeEnvironment) -> JudgePlan:
    """Resolve and check the judge of `run` without touching AWS."""
    variant = run.judge.variant
    model_key = env.model_key(variant)
    model = catalog.variant(variant).model(model_key)
    instance_type = run.judge.instance_type or env.instance_types.get(variant) or model.default_instance_type
    catalog.check_instance_type(variant, instance_type, model_key)
    image = catalog.image_uri(variant, env.region, env.image_tag(variant))
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
    if env.stack_tag:
        # The stop grants of this deployment are conditioned on this tag (docs/design.md).
        request["Tags"] = [{"Key": JUDGE_JOB_TAG, "Value": env.stack_tag}]
    return JudgePlan(variant, job_name, instance_type, rendered, request, layout)


def start_judge(state: Any, env: StartJudgeEnvironment, *, s3: Any, sagemaker: Any) -> dict[str, Any]:
    """Upload the recipe and start the judge of the state's run; return the `judge` state object."""
    run = parse_run_state(state)
    plan = plan_judge_job(run, env)
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
