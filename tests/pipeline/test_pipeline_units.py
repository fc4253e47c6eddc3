"""Unit tests of the pipeline's pure parts: run request, datasets, retry policy, recipes."""

from __future__ import annotations

import json
import os
import random
import urllib.parse
from typing import Any

import pytest
import yaml
from conformance.official_sources import OFFICIAL_RECIPES
from pipeline_fakes import ENDPOINT_A, ENDPOINT_B, REGION, FakeTGI, invoker

from novajudge.config import Settings
from novajudge.errors import ConfigError, DatasetError, InvalidRunRequest, JudgeConfigError
from novajudge.generation import datasets
from novajudge.generation.datasets import parse_user_jsonl, squad_prompt
from novajudge.generation.endpoints import (
    RetryPolicy,
    chat_payload,
    classify,
    runtime_client,
)
from novajudge.generation.manifest import estimate_tokens
from novajudge.judge import recipe
from novajudge.run_request import DatasetSpec, parse_run_request
from novajudge.steps.environment import GenerateEnvironment

# -- run request --------------------------------------------------------------------------------------


def test_defaults_come_from_the_deployment() -> None:
    defaults = Settings(default_questions=7, temperature=0.3, judge_variant="binary").run_defaults()
    request = parse_run_request(
        {"generation": {"concurrency_a": 2}}, execution_name="exec-1", defaults=defaults
    )
    assert request.run_id == "exec-1" and request.questions == 7
    generation = request.generation
    # merged, not replaced: the deployment's other generation defaults stay
    assert (generation.temperature, generation.concurrency_a, generation.concurrency_b) == (0.3, 2, 64)
    assert request.judge.variant == "binary" and request.dataset == DatasetSpec(source="squad")


def test_defaults_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_DEFAULTS", json.dumps({**Settings().run_defaults(), "poll_seconds": 5}))
    env = GenerateEnvironment.from_environ(os.environ)
    assert parse_run_request({}, execution_name="e", defaults=env.run_defaults).poll_seconds == 5
    monkeypatch.setenv("RUN_DEFAULTS", "{not json")
    with pytest.raises(ConfigError, match="RUN_DEFAULTS is not valid JSON"):
        GenerateEnvironment.from_environ(os.environ)


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {path[0]: value} if len(path) == 1 else {path[0]: _nested(path[1:], value)}


BOUNDS_CONTEXT = {"poll_seconds": {"judge_max_runtime_seconds": 600}}


@pytest.mark.parametrize(
    ("setting", "path", "low", "high", "step"),
    [
        ("default_questions", ("questions",), 1, 10000, 1),
        ("max_new_tokens", ("generation", "max_new_tokens"), 1, 8192, 1),
        ("temperature", ("generation", "temperature"), 0.0, 2.0, 0.01),
        ("concurrency_a", ("generation", "concurrency_a"), 1, 512, 1),
        ("concurrency_b", ("generation", "concurrency_b"), 1, 512, 1),
        ("max_failure_rate", ("generation", "max_failure_rate"), 0.0, 1.0, 0.01),
        ("poll_seconds", ("poll_seconds",), 1, 3600, 1),
    ],
)
def test_request_bounds_are_the_deployments(
    setting: str, path: tuple[str, ...], low: float, high: float, step: float
) -> None:
    """The documented limits (written out here) hold alike for a deployment's default and a run's value."""
    for value, allowed in ((low, True), (high, True), (low - step, False), (high + step, False)):
        try:
            # A 1 s poll fits the history budget only with a short judge limit (checked elsewhere).
            Settings.from_mapping({setting: value, **BOUNDS_CONTEXT.get(setting, {})})
            setting_ok = True
        except ConfigError:
            setting_ok = False
        try:
            parse_run_request(_nested(path, value), execution_name="e")
            request_ok = True
        except InvalidRunRequest:
            request_ok = False
        assert (setting_ok, request_ok) == (allowed, allowed), (setting, value)
    request = parse_run_request({}, execution_name="e")  # no deployment defaults: the model's own
    field = request
    for part in path:
        field = getattr(field, part)
    assert field == getattr(Settings(), setting)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"questions": 0}, r"questions=0: Input should be greater than or equal to 1"),
        ({"offset": -1}, r"offset=-1: Input should be greater than or equal to 0"),
        ({"questoins": 5}, r"questoins: unknown field"),
        ({"run_id": "my_run"}, r"run_id='my_run': use letters, digits"),
        ({"run_id": "x" * 65}, r"run_id=.*at most 64 characters"),
        ({"dataset": {"source": "s3"}}, r"dataset.uri=None: expected s3://<bucket>/<key>.jsonl"),
        ({"dataset": {"source": "s3", "uri": "s3://b-1/data.csv"}}, r"dataset.uri='s3://b-1/data.csv'"),
        (
            {"dataset": {"source": "hub"}},
            r"dataset.source='hub': Input should be 'squad', 'squad-sample' or 's3'",
        ),
        (
            {"generation": {"temperature": 5}},
            r"generation.temperature=5: Input should be less than or equal to 2",
        ),
        ({"judge": {"variant": "pairwise"}}, r"judge.variant='pairwise'"),
        (
            {"judge": {"instance_type": "ml.g5.12xlarge"}},
            r"judge.instance_type='ml.g5.12xlarge' is not supported",
        ),
        (
            {"judge": {"recipe_overrides": {"inference.max_tokens": 10}}},
            r"judge.recipe_overrides: unknown recipe key 'inference.max_tokens' for the rubric judge",
        ),
        ({"both_orders": "sometimes"}, r"both_orders='sometimes'"),
    ],
)
def test_invalid_requests_name_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRunRequest, match=message):
        parse_run_request(raw, execution_name="exec-1", defaults=Settings().run_defaults())


def test_run_id_is_required_without_an_execution_name() -> None:
    with pytest.raises(InvalidRunRequest, match="run_id is required"):
        parse_run_request({}, execution_name=None, defaults={})
    with pytest.raises(InvalidRunRequest, match="must be a JSON object"):
        parse_run_request(["questions", 3], execution_name="e", defaults={})


# -- datasets -----------------------------------------------------------------------------------------


def test_squad_prompt_carries_passage_and_question_and_keeps_the_reference() -> None:
    item = datasets.load_bundled_squad(0, 1)[0]
    assert item.prompt_id == "5733be284776f41900661182"
    assert "Lourdes" in item.prompt and item.prompt.endswith(
        "Question: To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?"
    )
    assert item.reference == "Saint Bernadette Soubirous"  # for calibration; never sent
    assert "Saint Bernadette Soubirous" in item.prompt  # it is in the passage, as SQuAD intends
    assert (
        squad_prompt(" Q? ", " C. ")
        == "Answer the question using the passage below.\n\nPassage:\nC.\n\nQuestion: Q?"
    )


def _rows_api(total: int) -> tuple[list[str], Any]:
    bundled = [json.loads(line) for line in datasets.BUNDLED_SQUAD.read_text().splitlines()]
    urls: list[str] = []

    def fetch(url: str, timeout: float) -> dict[str, Any]:
        urls.append(url)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        assert query["dataset"] == "rajpurkar/squad" and query["split"] == "train"
        offset, length = int(query["offset"]), int(query["length"])
        assert length <= 100
        rows = []
        for i in range(offset, min(offset + length, total)):
            row = dict(bundled[i % 20], id=f"sq-{i}")
            rows.append({"row_idx": i, "row": row, "truncated_cells": []})
        return {
            "features": [],
            "rows": rows,
            "num_rows_total": total,
            "num_rows_per_page": 100,
            "partial": False,
        }

    return urls, fetch


def test_squad_is_fetched_in_pages() -> None:
    urls, fetch = _rows_api(total=1000)
    loaded = datasets.load_dataset(DatasetSpec(source="squad"), offset=30, count=150, fetch=fetch)
    assert loaded.source == datasets.SOURCE_SQUAD_ONLINE
    assert [i.prompt_id for i in loaded.items[:2]] == ["sq-30", "sq-31"] and len(loaded.items) == 150
    assert ["offset=30" in urls[0], "offset=130" in urls[1], "length=50" in urls[1]] == [True] * 3


def test_squad_end_of_split_stops_paging() -> None:
    urls, fetch = _rows_api(total=120)
    loaded = datasets.load_dataset(DatasetSpec(source="squad"), offset=100, count=50, fetch=fetch)
    assert len(loaded.items) == 20 and len(urls) == 1


def test_squad_falls_back_to_the_bundled_sample_and_says_so() -> None:
    def offline(url: str, timeout: float) -> Any:
        raise OSError("[Errno 101] Network is unreachable")

    loaded = datasets.load_dataset(DatasetSpec(source="squad"), offset=2, count=3, fetch=offline)
    assert loaded.source == "bundled sample (offline fallback)"
    assert "Network is unreachable" in loaded.detail["fetch_error"]
    assert [i.prompt_id for i in loaded.items] == [i.prompt_id for i in datasets.load_bundled_squad(2, 3)]


def test_bundled_sample_past_its_end() -> None:
    with pytest.raises(DatasetError, match="offset 20 is past the end of the bundled SQuAD sample"):
        datasets.load_bundled_squad(20, 1)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"prompt": "ok"', "line 2: not valid JSON"),
        ('["prompt"]', "line 2: expected a JSON object, got list"),
        ('{"id": "b"}', "line 2: field 'prompt' is missing"),
        ('{"prompt": "  "}', "line 2: field 'prompt' must be a non-empty string"),
        ('{"prompt": "p", "id": {"x": 1}}', "line 2: field 'id' must be a non-empty string or an integer"),
        ('{"prompt": "p", "reference": 3}', "line 2: field 'reference' must be a string"),
        ('{"prompt": "p", "id": "a"}', "line 2: field 'id': duplicate id 'a' (first on line 1)"),
    ],
)
def test_user_jsonl_errors_name_file_line_and_field(line: str, problem: str) -> None:
    with pytest.raises(DatasetError) as info:
        parse_user_jsonl(['{"id": "a", "prompt": "first"}', line], "s3://b/datasets/x.jsonl")
    assert f"s3://b/datasets/x.jsonl {problem}" in str(info.value)


def test_user_jsonl_reports_every_bad_line() -> None:
    lines = ['{"prompt": "p1"}', "{}", '{"prompt": "p3", "id": 7}', "nope", ""]
    with pytest.raises(DatasetError, match=r"2 malformed line\(s\): .*line 2: .*line 4: "):
        parse_user_jsonl(lines, "f.jsonl")
    good = parse_user_jsonl(
        ['{"prompt": "p1"}', "", '{"prompt": "p3", "id": 7, "reference": "r"}'], "f.jsonl"
    )
    assert [(i.prompt_id, i.reference) for i in good] == [("line-1", None), ("7", "r")]


# -- endpoints: payload, classification, retries --------------------------------------------------------


def test_chat_payload() -> None:
    assert chat_payload("hi", max_new_tokens=5, temperature=0.1) == {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "temperature": 0.1,
    }


@pytest.fixture
def runtime(aws: dict[str, Any]) -> tuple[Any, FakeTGI]:
    """Our client (botocore retries off, so every attempt is ours to count) behind the scripted TGI."""
    fake = FakeTGI()
    return fake.attach(runtime_client(REGION)), fake


@pytest.mark.parametrize(
    ("action", "kind", "transient"),
    [
        ("overloaded", "ModelError 424 (original 429)", True),
        ("unavailable", "ModelError 424 (original 503)", True),
        ("bad_input", "ModelError 424 (original 422)", False),
        ("validation", "ValidationError", False),
        ("throttled", "ThrottlingException", True),
        ("timeout", "ReadTimeoutError", True),
    ],
)
def test_classification_of_real_botocore_errors(runtime, action: str, kind: str, transient: bool) -> None:
    client, fake = runtime
    item = fake.items[0]
    fake.script(ENDPOINT_A, item.prompt_id, [action])
    with pytest.raises(Exception) as info:
        client.invoke_endpoint(
            EndpointName=ENDPOINT_A,
            ContentType="application/json",
            Body=json.dumps(chat_payload(item.prompt, max_new_tokens=10, temperature=0.0)),
        )
    error = classify(info.value)
    assert (error.kind, error.transient) == (kind, transient)


def test_backoff_is_seeded_and_bounded(runtime) -> None:
    client, fake = runtime
    item = fake.items[3]
    fake.script(ENDPOINT_B, item.prompt_id, ["overloaded", "throttled", "timeout", "ok"])
    policy = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=3.0, seed=11)
    slept: list[float] = []
    result = invoker(client, ENDPOINT_B, retry=policy, sleep=slept.append).generate(
        item.prompt_id, item.prompt
    )
    assert (
        result.status == "ok"
        and result.attempts == 4
        and result.text == fake.answer(ENDPOINT_B, item.prompt_id)
    )
    rng = policy.rng_for(ENDPOINT_B, item.prompt_id)
    assert slept == [rng.uniform(0, 2.0), rng.uniform(0, 3.0), rng.uniform(0, 3.0)]  # 2, 4→3, 8→3
    assert slept != [random.Random(0).uniform(0, 2.0)] * 3


def test_retries_stop_at_the_limit(runtime) -> None:
    client, fake = runtime
    item = fake.items[4]
    fake.script(ENDPOINT_A, item.prompt_id, ["unavailable"])
    result = invoker(client, attempts=3).generate(item.prompt_id, item.prompt)
    assert (result.status, result.attempts, result.error_kind) == (
        "failed",
        3,
        "ModelError 424 (original 503)",
    )
    assert "Service Unavailable" in (result.error or "")


def test_a_non_chat_body_is_a_permanent_failure(runtime, monkeypatch) -> None:
    client, fake = runtime
    item = fake.items[5]
    # a text-generation style answer ([{"generated_text": ...}]) is not what the chat payload returns
    monkeypatch.setattr("pipeline_fakes.chat_completion", lambda text, *a, **k: [{"generated_text": text}])
    result = invoker(client).generate(item.prompt_id, item.prompt)
    assert (result.status, result.attempts, result.error_kind) == ("failed", 1, "BadResponse")


def test_client_timeouts_and_no_botocore_retries(monkeypatch) -> None:
    monkeypatch.setenv("NOVAJUDGE_READ_TIMEOUT_SECONDS", "12")
    env = GenerateEnvironment.from_environ(os.environ)
    config = runtime_client(REGION, read_timeout=env.read_timeout_seconds).meta.config
    assert (config.read_timeout, config.connect_timeout) == (12.0, 5.0)
    assert config.retries["total_max_attempts"] == 1


def test_token_estimate_is_conservative() -> None:
    assert estimate_tokens("a" * 7, "b" * 7) == 4
    assert estimate_tokens("x" * 24500) == 7000


# -- recipes ------------------------------------------------------------------------------------------


def test_recipe_templates_match_the_catalogue() -> None:
    for variant, task in (("rubric", "rubric_llm_judge"), ("binary", "llm_judge")):
        data = recipe.load_template(variant)
        assert data["evaluation"] == {"task": task, "strategy": "judge", "metric": "all"}
        assert (
            data["run"]["replicas"] == 1
            and data["run"]["data_s3_path"] == "" == data["run"]["output_s3_path"]
        )
        assert data["inference"]["temperature"] == 0


def test_binary_recipe_takes_its_model_from_the_catalogue() -> None:
    rendered = recipe.render("binary", run_name="job-1", model_key="nova-pro")
    data = yaml.safe_load(rendered.text)
    _, official = OFFICIAL_RECIPES[("binary", "nova-pro")]  # tests/conformance/official_sources.py
    assert data["run"] == {**official["run"], "name": "job-1"}


@pytest.mark.parametrize(
    ("variant", "overrides", "message"),
    [
        ("rubric", {"inference.max_tokens": 5}, "unknown recipe key 'inference.max_tokens'"),
        ("binary", {"inference.reasoning_effort": "low"}, "unknown recipe key 'inference.reasoning_effort'"),
        ("rubric", {"run.model_name_or_path": "s3://x/"}, "is set by the pipeline"),
        ("rubric", {"evaluation.task": "llm_judge"}, "is set by the pipeline"),
        ("rubric", {"inference.max_new_tokens": "12000"}, "expected an integer from 1 to 65536"),
        ("rubric", {"inference.top_k": 0}, "expected -1 .disabled. or a positive integer"),
        ("rubric", {"inference.reasoning_effort": "medium"}, "expected null, 'low' or 'high'"),
    ],
)
def test_bad_overrides_are_refused(variant: str, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(JudgeConfigError, match=message):
        recipe.render(variant, run_name="j", overrides=overrides)


def test_overrides_apply_including_optional_keys() -> None:
    overrides = {
        "inference.max_new_tokens": 32768,
        "inference.reasoning_effort": "high",
        "inference.top_logprobs": 5,
    }
    data = recipe.render("rubric", run_name="j", overrides=overrides).data
    assert data["inference"]["max_new_tokens"] == 32768
    assert data["inference"]["reasoning_effort"] == "high" and data["inference"]["top_logprobs"] == 5


def test_recipes_dir_from_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NOVAJUDGE_RECIPES_DIR", str(tmp_path))
    with pytest.raises(JudgeConfigError, match=r"rubric_judge\.yaml not found"):
        recipe.load_template("rubric")
    (tmp_path / "rubric_judge.yaml").write_text("run: {}\nevaluation: {task: llm_judge}\ninference: {}\n")
    with pytest.raises(JudgeConfigError, match="expected 'rubric_llm_judge'"):
        recipe.load_template("rubric")
    monkeypatch.setenv("NOVAJUDGE_RECIPES_DIR", str(tmp_path / "missing"))
    with pytest.raises(JudgeConfigError, match=r"recipe folder .* not found"):
        recipe.recipes_dir()


def test_no_retry_starts_after_the_deadline(runtime) -> None:
    client, fake = runtime
    item = fake.items[6]
    fake.script(ENDPOINT_A, item.prompt_id, ["overloaded", "ok"])
    now = [100.0]
    result = invoker(
        client,
        attempts=4,
        sleep=lambda s: now.__setitem__(0, now[0] + 50),
        clock=lambda: now[0],
        start_by=120.0,
    ).generate(item.prompt_id, item.prompt)
    assert (result.status, result.attempts, result.error_kind) == (
        "failed",
        1,
        "ModelError 424 (original 429)",
    )
    assert "not retried: the generate function's time budget ran out" in (result.error or "")
