"""Our recipes and catalogue against the values AWS publishes (official_sources.py holds the facts).

Where the official sources agree, ours must equal them; where they conflict, the chosen value and
its reason are in recipes/README.md and the alternatives stay reachable as documented overrides.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import official_sources as src
import pytest
import yaml

from novajudge.config import Settings
from novajudge.errors import ConfigError, InvalidRunRequest, JudgeConfigError
from novajudge.judge import catalog, recipe
from novajudge.run_request import parse_run_request

ROOT = Path(__file__).resolve().parents[2]
RECIPES_README = ROOT / "recipes" / "README.md"

#: Deliberate differences between our rendered recipe and the official file, by dotted key, with the
#: reason. Empty: since issue 15 the templates carry the official values; a future deviation must be
#: listed here (and in recipes/README.md) or this test fails.
DELIBERATE_RECIPE_DIFFERENCES: dict[str, str] = {}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


@pytest.mark.parametrize(("variant", "model_key"), sorted(src.OFFICIAL_RECIPES))
def test_rendered_recipe_equals_the_official_recipe(variant: str, model_key: str) -> None:
    url, official = src.OFFICIAL_RECIPES[(variant, model_key)]
    rendered = recipe.render(variant, run_name="job-1", model_key=model_key).data
    expected = copy.deepcopy(official)
    expected["run"]["name"] = "job-1"  # the only key every run sets (the notebooks override it too)
    ours, theirs = _flatten(rendered), _flatten(expected)
    differences = {
        key: (ours.get(key, "<absent>"), theirs.get(key, "<absent>"))
        for key in set(ours) | set(theirs)
        if ours.get(key, "<absent>") != theirs.get(key, "<absent>")
    }
    assert set(differences) == set(DELIBERATE_RECIPE_DIFFERENCES), f"{url}: {differences}"


def test_inference_blocks_agree_with_the_forge_sdk_templates() -> None:
    for variant in ("rubric", "binary"):
        assert recipe.load_template(variant)["inference"] == src.FORGE_INFERENCE[variant], variant


def test_catalogue_models_are_the_documented_model_types() -> None:
    for (variant, model_key), (_url, official) in src.OFFICIAL_RECIPES.items():
        model = catalog.variant(variant).model(model_key)
        assert model.model_type == official["run"]["model_type"]
        assert model.model_name_or_path == official["run"]["model_name_or_path"]
        assert model.model_type in src.DOCS_MODEL_TYPES
    listed = {(v, m) for v, judge in catalog.JUDGE_VARIANTS.items() for m in judge.models}
    assert listed == set(src.OFFICIAL_RECIPES), "every catalogue model has an official recipe"


def test_image_accounts_and_tags_come_from_the_official_sources() -> None:
    documented = {**src.FORGE_IMAGE_ACCOUNTS, **src.DOCS_ONLY_IMAGE_ACCOUNTS}
    assert documented == catalog.NOVA_EVAL_IMAGE_ACCOUNTS
    assert catalog.NOVA_EVAL_REPOSITORY == src.EVAL_REPOSITORY
    assert catalog.variant("rubric").image_tag == src.FORGE_IMAGE_TAG["nova_2"]
    assert catalog.variant("binary").image_tag == src.FORGE_IMAGE_TAG["nova_1"]
    # The sample notebooks' tag for the Nova 1.0 judge stays a documented choice, nothing else does.
    assert set(catalog.variant("binary").image_tags) == set(src.FORGE_IMAGE_TAG.values())
    assert Settings().binary_judge_image_tag == src.FORGE_IMAGE_TAG["nova_1"]
    uri = catalog.image_uri("binary", "eu-west-2", "SM-TJ-Eval-V2-latest")
    assert uri == "470633809225.dkr.ecr.eu-west-2.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
    with pytest.raises(JudgeConfigError, match="image tag 'SM-TJ-Eval-latest' is not documented"):
        catalog.image_uri("rubric", "us-east-1", "SM-TJ-Eval-latest")
    with pytest.raises(ConfigError, match="binary_judge_image_tag='latest'"):
        Settings.from_mapping({"binary_judge_image_tag": "latest"})


def test_instance_types_cover_the_sources_and_default_to_what_all_name() -> None:
    rubric = catalog.variant("rubric").model("nova-lite-2")
    assert set(src.FORGE_EVAL_INSTANCE_TYPES["nova-lite-2"]) <= set(rubric.instance_types)
    assert rubric.default_instance_type in src.FORGE_JUDGE_INSTANCE_TYPES
    for key in ("nova-micro", "nova-lite", "nova-pro"):
        model = catalog.variant("binary").model(key)
        # The judge recipes' own instance is always allowed; the rest come from Forge's eval table.
        assert set(src.FORGE_JUDGE_INSTANCE_TYPES) <= set(model.instance_types), key
        assert set(model.instance_types) <= set(src.FORGE_EVAL_INSTANCE_TYPES[key]), key


def test_the_model_choice_note_says_it_only_changes_the_bill() -> None:
    for key in ("nova-micro", "nova-lite", "nova-pro"):
        note = catalog.model_choice_note("binary", key)
        assert note is not None and "same judge model" in note and "bill" in note
        assert all(t in note for t in catalog.variant("binary").model(key).instance_types)
    assert catalog.model_choice_note("rubric") is None  # one model: there is no choice to explain


def test_estimate_says_the_binary_model_only_changes_the_bill() -> None:
    from novajudge.ops import estimate as est
    from novajudge.pricing import load_prices

    prices = load_prices()
    pro = Settings.from_mapping({"judge_variant": "binary", "binary_judge_model": "nova-pro"})
    result = est.estimate(pro, prices, questions=4, variant="binary", both_orders=True)
    assert catalog.model_choice_note("binary", "nova-pro") in result.notes
    assert result.judge_instance_type == "ml.p5.48xlarge"
    rubric = est.estimate(Settings(), prices, questions=4, variant="rubric", both_orders=True)
    assert not [n for n in rubric.notes if "same judge model" in n]


# -- replicas: exactly 1, refused before anything starts ---------------------------------------------


@pytest.mark.parametrize("replicas", [2, 16, 0, "1", True, 1.5])
@pytest.mark.parametrize("variant", ["rubric", "binary"])
def test_replicas_other_than_one_are_refused(variant: str, replicas: Any) -> None:
    with pytest.raises(JudgeConfigError, match=r"run\.replicas.*multi-node is not supported"):
        recipe.validate_overrides(variant, {"run.replicas": replicas})


def test_replicas_of_one_is_accepted_and_is_the_instance_count() -> None:
    assert src.DOCS_REPLICAS == recipe.REPLICAS and src.FORGE_REPLICAS == (recipe.REPLICAS,)
    rendered = recipe.render("rubric", run_name="j", overrides={"run.replicas": 1})
    assert rendered.replicas == 1


def test_execution_input_raising_replicas_fails_at_parse_time() -> None:
    """The generate step parses the input first: nothing is generated, nothing is started."""
    raw = {"run_id": "r-1", "judge": {"variant": "binary", "recipe_overrides": {"run.replicas": 4}}}
    with pytest.raises(InvalidRunRequest, match=r"judge\.recipe_overrides: recipe key 'run\.replicas'=4"):
        parse_run_request(raw, defaults=Settings().run_defaults())


def test_an_edited_template_with_more_replicas_is_refused(tmp_path: Path, monkeypatch) -> None:
    text = (ROOT / "recipes" / "rubric_judge.yaml").read_text()
    (tmp_path / "rubric_judge.yaml").write_text(text.replace("replicas: 1", "replicas: 2"))
    monkeypatch.setenv(recipe.RECIPES_DIR_ENV, str(tmp_path))
    with pytest.raises(JudgeConfigError, match=r"rubric_judge\.yaml: run\.replicas is 2"):
        recipe.render("rubric", run_name="j")


# -- other documented choices --------------------------------------------------------------------------


def test_reasoning_effort_takes_the_documented_values_on_the_reasoning_model_only() -> None:
    for value in src.DOCS_REASONING_EFFORT:
        recipe.validate_overrides("rubric", {"inference.reasoning_effort": value})
    with pytest.raises(JudgeConfigError, match="expected null, 'low' or 'high'"):
        recipe.validate_overrides("rubric", {"inference.reasoning_effort": "medium"})
    assert catalog.variant("rubric").model().model_type in src.DOCS_REASONING_MODELS
    with pytest.raises(JudgeConfigError, match=r"unknown recipe key 'inference\.reasoning_effort'"):
        recipe.validate_overrides("binary", {"inference.reasoning_effort": "low"})


def test_top_logprobs_range_is_the_forge_range() -> None:
    low, high = src.FORGE_TOP_LOGPROBS
    for value in (low, high):
        recipe.validate_overrides("binary", {"inference.top_logprobs": value})
    for value in (low - 1, high + 1):
        with pytest.raises(JudgeConfigError, match="top_logprobs"):
            recipe.validate_overrides("binary", {"inference.top_logprobs": value})


@pytest.mark.parametrize("key", sorted(recipe.FIXED_EMPTY))
def test_mlflow_keys_stay_empty(key: str) -> None:
    with pytest.raises(JudgeConfigError, match="MLflow tracking is not wired up"):
        recipe.validate_overrides("rubric", {key: "https://mlflow.example"})


def test_recipes_readme_documents_every_recipe_value_and_override() -> None:
    """Each key of both templates, and each overridable key, has a row in recipes/README.md."""
    text = RECIPES_README.read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_]+\.[a-z0-9_.]+)` \|", text, flags=re.M))
    for variant in ("rubric", "binary"):
        keys = set(_flatten(yaml.safe_load((ROOT / "recipes" / f"{variant}_judge.yaml").read_text())))
        assert keys <= documented, sorted(keys - documented)
        assert set(recipe.OVERRIDABLE[variant]) <= documented
    for url in (src.DOCS_PARAMS, src.DOCS_REASONING, "aws/sagemaker-hyperpod-recipes", "aws/nova-forge-sdk"):
        assert url in text, url
