"""What the Amazon Nova judge accepts: variants, models, instance types, image registries.

Kept in one table so that configuration validation, the start-judge Lambda and cost estimates agree,
and so a bad combination fails before any spend. Every row says where it comes from; where the
official sources disagree, recipes/README.md says which value was chosen and why, and
tests/conformance/ pins the sources' values. Sources:
- [docs-eval] https://docs.aws.amazon.com/sagemaker/latest/dg/nova-model-evaluation.html
- [docs-rubric] https://docs.aws.amazon.com/nova/latest/nova2-userguide/nova-rubric-judge-evaluation.html
  (the Nova 2 "Rubric Based Judge" page)
- [recipes] github.com/aws/sagemaker-hyperpod-recipes, recipes_collection/recipes/evaluation/nova/
- [forge] github.com/aws/nova-forge-sdk (core/constants.py, util/recipe.py, instance_type_spec.md)
- [samples] github.com/aws-samples/amazon-nova-samples (the LLM-as-a-judge notebooks)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from novajudge.errors import JudgeConfigError

#: Regions where the Nova evaluation image is documented, with the account that hosts it: us-east-1,
#: us-west-2 [docs-eval][forge]; ap-northeast-1 [docs-eval] only; eu-west-2 [forge] only.
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
    """One judge model: what the recipe and the hyperparameters name, and where it may run.

    `model_type` / `model_name_or_path` are the official recipes' values [recipes][docs-eval].
    """

    key: str
    model_type: str
    model_name_or_path: str
    instance_types: tuple[str, ...]
    default_instance_type: str


@dataclass(frozen=True)
class JudgeVariant:
    """One judge variant (`rubric` or `binary`): its evaluation task, image tags and models.

    `image_tag` is the default; `image_tags` every tag an official source names for this judge
    (the deployment may choose among them, see `binary_judge_image_tag`).
    """

    name: str
    task: str
    image_tag: str
    image_tags: tuple[str, ...]
    recipe_file: str
    models: dict[str, JudgeModel]
    default_model: str

    def model(self, key: str | None = None) -> JudgeModel:
        key = key or self.default_model
        require_one_of(
            key, sorted(self.models), f"judge model {key!r} is not available for the {self.name} judge"
        )
        return self.models[key]


#: Nova 1.0 judge instances: ml.p5.48xlarge is the one the judge recipes and [forge]'s judge path name;
#: the g5/g6 types are in [forge]'s evaluation instance table and ml.g5.12xlarge is what the [samples]
#: notebooks ran the binary judge on (cheaper; the default).
_G5_G6 = ("ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge", "ml.g6.24xlarge", "ml.p5.48xlarge")
#: Training-job image tags: [forge] uses SM-TJ-Eval-V2-latest for Nova 2 and SM-TJ-Eval-latest for Nova
#: 1.0, as does a [docs-eval] table; one [samples] notebook runs the Nova 1.0 judge on the V2 tag.
IMAGE_TAG_NOVA_1 = "SM-TJ-Eval-latest"
IMAGE_TAG_NOVA_2 = "SM-TJ-Eval-V2-latest"

JUDGE_VARIANTS: dict[str, JudgeVariant] = {
    "rubric": JudgeVariant(
        name="rubric",
        task="rubric_llm_judge",
        image_tag=IMAGE_TAG_NOVA_2,
        image_tags=(IMAGE_TAG_NOVA_2,),
        recipe_file="rubric_judge.yaml",
        models={
            "nova-lite-2": JudgeModel(
                key="nova-lite-2",
                model_type="amazon.nova-2-lite-v1:0:256k",
                model_name_or_path="nova-lite-2/prod",
                # p5 [recipes][forge][docs-rubric]; p4d [recipes metadata][forge]; p5en [docs-rubric].
                instance_types=("ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"),
                default_instance_type="ml.p5.48xlarge",
            )
        },
        default_model="nova-lite-2",
    ),
    "binary": JudgeVariant(
        name="binary",
        task="llm_judge",
        image_tag=IMAGE_TAG_NOVA_1,
        image_tags=(IMAGE_TAG_NOVA_1, IMAGE_TAG_NOVA_2),
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


def require_one_of(value: object, allowed: Iterable[str], problem: str, listed_as: str = "allowed") -> None:
    """Refuse `value` unless it is one of `allowed`: `<problem>; <listed_as>: a, b, c`. Every judge
    setting is checked this way before anything is started or paid for, naming what would do."""
    choices = tuple(allowed)
    if value not in choices:
        raise JudgeConfigError(f"{problem}; {listed_as}: {', '.join(choices)}")


def variant(name: str) -> JudgeVariant:
    """The judge variant called `name`, or an error that lists the known ones."""
    require_one_of(name, sorted(JUDGE_VARIANTS), f"unknown judge variant {name!r}")
    return JUDGE_VARIANTS[name]


def check_instance_type(variant_name: str, instance_type: str, model_key: str | None = None) -> None:
    """Fail before any spend when the judge cannot run on `instance_type`."""
    model = variant(variant_name).model(model_key)
    require_one_of(
        instance_type,
        model.instance_types,
        f"instance type {instance_type!r} is not supported by the {variant_name} judge ({model.key})",
    )


def image_uri(variant_name: str, region: str, tag: str | None = None) -> str:
    """The Nova evaluation image of `variant_name` in `region`; unknown regions and tags are refused."""
    require_one_of(
        region,
        sorted(NOVA_EVAL_IMAGE_ACCOUNTS),
        f"the Nova judge image is not documented for region {region!r}",
        listed_as="supported regions",
    )
    judge = variant(variant_name)
    tag = tag or judge.image_tag
    require_one_of(tag, judge.image_tags, f"image tag {tag!r} is not documented for the {variant_name} judge")
    account = NOVA_EVAL_IMAGE_ACCOUNTS[region]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{NOVA_EVAL_REPOSITORY}:{tag}"


#: [docs-eval] (LLM-as-a-judge): the judge model is the same whichever of Nova Micro, Lite or Pro the
#: binary recipe names; the choice decides only which instance types the job accepts.
SAME_JUDGE_MODELS: dict[str, tuple[str, ...]] = {"binary": ("nova-micro", "nova-lite", "nova-pro")}


def model_choice_note(variant_name: str, model_key: str | None = None) -> str | None:
    """Why the judge model choice of `variant_name` changes the bill and not the verdicts, if it does."""
    same = SAME_JUDGE_MODELS.get(variant_name)
    if not same:
        return None
    model = variant(variant_name).model(model_key)
    return (
        f"{variant_name} judge model {model.key}: AWS documents the same judge model for "
        f"{', '.join(same)}; the choice only changes the instance types the job accepts "
        f"({', '.join(model.instance_types)}), that is the bill, not the verdicts"
    )
