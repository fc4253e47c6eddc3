"""What the Amazon Nova judge accepts: variants, models, instance types, image registries.

Kept in one table so that configuration validation, the start-judge Lambda and cost estimates agree,
and so a bad combination fails before any spend. Sources: AWS docs "Evaluating your SageMaker
AI-trained model" and "Rubric Based Judge", and the public recipe repository (see
docs/design.md and the README's references).
"""

from __future__ import annotations

from dataclasses import dataclass

from novajudge.errors import JudgeConfigError

#: Regions where the Nova evaluation image is documented, with the account that hosts it.
#: Other regions are not documented: a deployment there must fail, not guess.
NOVA_EVAL_IMAGE_ACCOUNTS: dict[str, str] = {
    "us-east-1": "708977205387",
    "us-west-2": "176779409107",
    "ap-northeast-1": "878185805882",
    "eu-west-2": "470633809225",
}
NOVA_EVAL_REPOSITORY = "nova-evaluation-repo"


@dataclass(frozen=True)
class JudgeModel:
    """One judge model: what the recipe and the hyperparameters name, and where it may run."""

    key: str
    model_type: str
    model_name_or_path: str
    instance_types: tuple[str, ...]
    default_instance_type: str


@dataclass(frozen=True)
class JudgeVariant:
    """One judge variant (`rubric` or `binary`): its evaluation task, image tag and models."""

    name: str
    task: str
    image_tag: str
    recipe_file: str
    models: dict[str, JudgeModel]
    default_model: str

    def model(self, key: str | None = None) -> JudgeModel:
        key = key or self.default_model
        if key not in self.models:
            raise JudgeConfigError(
                f"judge model {key!r} is not available for the {self.name} judge; "
                f"allowed: {', '.join(sorted(self.models))}"
            )
        return self.models[key]


_G5_G6 = ("ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge", "ml.g6.24xlarge", "ml.p5.48xlarge")

JUDGE_VARIANTS: dict[str, JudgeVariant] = {
    "rubric": JudgeVariant(
        name="rubric",
        task="rubric_llm_judge",
        image_tag="SM-TJ-Eval-V2-latest",
        recipe_file="rubric_judge.yaml",
        models={
            "nova-lite-2": JudgeModel(
                key="nova-lite-2",
                model_type="amazon.nova-2-lite-v1:0:256k",
                model_name_or_path="nova-lite-2/prod",
                instance_types=("ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"),
                default_instance_type="ml.p5.48xlarge",
            )
        },
        default_model="nova-lite-2",
    ),
    "binary": JudgeVariant(
        name="binary",
        task="llm_judge",
        image_tag="SM-TJ-Eval-V2-latest",
        recipe_file="binary_judge.yaml",
        models={
            "nova-micro": JudgeModel(
                key="nova-micro",
                model_type="amazon.nova-micro-v1:0:128k",
                model_name_or_path="nova-micro/prod",
                instance_types=_G5_G6,
                default_instance_type="ml.g5.12xlarge",
            ),
            "nova-lite": JudgeModel(
                key="nova-lite",
                model_type="amazon.nova-lite-v1:0:300k",
                model_name_or_path="nova-lite/prod",
                instance_types=(*_G5_G6, "ml.g6.48xlarge"),
                default_instance_type="ml.g5.12xlarge",
            ),
            "nova-pro": JudgeModel(
                key="nova-pro",
                model_type="amazon.nova-pro-v1:0:300k",
                model_name_or_path="nova-pro/prod",
                instance_types=("ml.p5.48xlarge",),
                default_instance_type="ml.p5.48xlarge",
            ),
        },
        default_model="nova-micro",
    ),
}


def variant(name: str) -> JudgeVariant:
    """The judge variant called `name`, or an error that lists the known ones."""
    if name not in JUDGE_VARIANTS:
        raise JudgeConfigError(
            f"unknown judge variant {name!r}; allowed: {', '.join(sorted(JUDGE_VARIANTS))}"
        )
    return JUDGE_VARIANTS[name]


def check_instance_type(variant_name: str, instance_type: str, model_key: str | None = None) -> None:
    """Fail before any spend when the judge cannot run on `instance_type`."""
    model = variant(variant_name).model(model_key)
    if instance_type not in model.instance_types:
        raise JudgeConfigError(
            f"instance type {instance_type!r} is not supported by the {variant_name} judge "
            f"({model.key}); allowed: {', '.join(model.instance_types)}"
        )


def image_uri(variant_name: str, region: str) -> str:
    """The Nova evaluation image of `variant_name` in `region`; unknown regions are refused."""
    account = NOVA_EVAL_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise JudgeConfigError(
            f"the Nova judge image is not documented for region {region!r}; "
            f"supported regions: {', '.join(sorted(NOVA_EVAL_IMAGE_ACCOUNTS))}"
        )
    tag = variant(variant_name).image_tag
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{NOVA_EVAL_REPOSITORY}:{tag}"
