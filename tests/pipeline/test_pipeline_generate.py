"""The generate step against moto S3 and a scripted TGI endpoint (real botocore error parsing)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pipeline_fakes import (
    BUCKET,
    ENDPOINT_A,
    ENDPOINT_B,
    EXECUTION_NAME,
    MODEL_A,
    MODEL_B,
    FakeTGI,
    dataset_event,
    upload_dataset,
)

from novajudge.errors import DatasetError, GenerationFailed, InvalidRunRequest, RunExistsError

SAMPLE = {"source": "squad-sample"}


def _read(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _jsonl(s3: Any, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _read(s3, key).decode().splitlines()]


def _keys(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_happy_path_both_orders_with_transient_errors(
    aws, tgi: FakeTGI, generate_step, lambda_context
) -> None:
    items = tgi.items[:6]
    tgi.script(ENDPOINT_A, items[0].prompt_id, ["overloaded", "ok"])  # ModelError 424 / 429: retried
    tgi.script(ENDPOINT_B, items[1].prompt_id, ["timeout", "timeout", "ok"])  # read timeouts: retried
    tgi.script(ENDPOINT_B, items[2].prompt_id, ["validation"])  # ValidationError: never retried
    event = {
        "input": {
            "run_id": "exp-001",
            "questions": 6,
            "dataset": SAMPLE,
            "both_orders": True,
            "generation": {"max_failure_rate": 0.2, "temperature": 0.7},
        },
        "execution_name": EXECUTION_NAME,
    }

    state = generate_step(event, lambda_context)
    s3 = aws["s3"]

    run, gen = state["run"], state["generation"]
    assert run["run_id"] == "exp-001" and run["bucket"] == BUCKET
    assert run["generation"] == {
        "max_new_tokens": 500,
        "temperature": 0.7,
        "concurrency_a": 64,
        "concurrency_b": 64,
        "max_failure_rate": 0.2,
    }
    assert (run["model_a"], run["model_b"], run["endpoint_a"]) == (MODEL_A, MODEL_B, ENDPOINT_A)
    assert run["poll_seconds"] == 60 and run["stand_in"] is False
    assert gen["items"] == 6 and gen["failed"] == 1 and gen["pairs_to_judge"] == 5
    assert gen["failure_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert gen["excluded"]["generation_failed"] == {"count": 1, "ids": [items[2].prompt_id]}
    assert gen["judge_input_lines"] == 10 and gen["stand_in"] is False
    assert gen["uris"]["judge_input"] == f"s3://{BUCKET}/runs/exp-001/input/llm_judge.jsonl"

    # retries: exactly as scripted; the ValidationError item was tried once
    assert tgi.calls[(ENDPOINT_A, items[0].prompt_id)] == 2
    assert tgi.calls[(ENDPOINT_B, items[1].prompt_id)] == 3
    assert tgi.calls[(ENDPOINT_B, items[2].prompt_id)] == 1
    # chat payload with the run's settings
    assert tgi.payloads[0]["max_tokens"] == 500 and tgi.payloads[0]["temperature"] == 0.7
    assert tgi.payloads[0]["messages"][0]["role"] == "user"

    lines = _jsonl(s3, "runs/exp-001/input/llm_judge.jsonl")
    manifest = _jsonl(s3, "runs/exp-001/generation/manifest.jsonl")
    assert all(set(line) == {"prompt", "response_A", "response_B"} for line in lines)
    rows = [m for m in manifest if m["row"] is not None]
    assert [m["row"] for m in rows] == list(range(10))
    for m in rows:  # every judge line maps back to its prompt, order and the models' answers
        line = lines[m["row"]]
        answer_a, answer_b = tgi.answer(ENDPOINT_A, m["prompt_id"]), tgi.answer(ENDPOINT_B, m["prompt_id"])
        expected = (answer_a, answer_b) if m["order"] == "AB" else (answer_b, answer_a)
        assert (line["response_A"], line["response_B"]) == expected
        assert m["stand_in"] is False and m["status"] == "ok"
    assert [m["order"] for m in rows] == ["AB", "BA"] * 5
    retried = next(m for m in rows if m["prompt_id"] == items[0].prompt_id)
    assert retried["A"]["attempts"] == 2 and retried["A"]["status"] == "ok"
    assert retried["A"]["prompt_tokens"] == 180 and retried["A"]["completion_tokens"] == 42
    failed = next(m for m in manifest if m["row"] is None)
    assert failed["excluded"] == "generation_failed" and failed["status"] == "failed"
    assert failed["B"]["error_kind"] == "ValidationError" and failed["B"]["attempts"] == 1
    assert "not found" in failed["B"]["error"]
    assert failed["A"]["text"] == tgi.answer(ENDPOINT_A, items[2].prompt_id)  # the answer that did come back
    assert failed["reference"] == items[2].reference

    summary = json.loads(_read(s3, "runs/exp-001/generation/summary.json"))
    assert summary["status"] == "ok" and summary["dataset_source"] == "bundled sample"
    assert summary["failures_by_kind"] == {"ValidationError": {"B": 1}}
    request = json.loads(_read(s3, "runs/exp-001/request.json"))
    assert request["run_id"] == "exp-001" and request["execution_name"] == EXECUTION_NAME


def test_one_order_only(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    event = {
        "input": {"run_id": "one-order", "questions": 3, "dataset": SAMPLE, "both_orders": False},
        "execution_name": EXECUTION_NAME,
    }
    gen = generate_step(event, lambda_context)["generation"]
    manifest = _jsonl(aws["s3"], "runs/one-order/generation/manifest.jsonl")
    assert gen["judge_input_lines"] == 3
    assert [(m["row"], m["order"]) for m in manifest] == [(0, "AB"), (1, "AB"), (2, "AB")]


def test_run_id_defaults_to_execution_name(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    state = generate_step(
        {"input": {"questions": 1, "dataset": SAMPLE}, "execution_name": EXECUTION_NAME}, lambda_context
    )
    assert state["run"]["run_id"] == EXECUTION_NAME
    assert _keys(aws["s3"], f"runs/{EXECUTION_NAME}/request.json")


def test_failure_rate_exceeded(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    tgi.default[ENDPOINT_B] = ["unavailable"]  # every B call: ModelError 424 / original 503, retried, fails
    tgi.script(ENDPOINT_B, tgi.items[0].prompt_id, ["ok"])
    event = {
        "input": {"run_id": "too-many", "questions": 5, "dataset": SAMPLE, "both_orders": True},
        "execution_name": EXECUTION_NAME,
    }
    with pytest.raises(GenerationFailed) as info:
        generate_step(event, lambda_context)
    message = str(info.value)
    assert "4 of 5 items failed (80% > max_failure_rate 20%)" in message
    assert "ModelError 424 (original 503) ×4 (B 4)" in message
    assert tgi.calls[(ENDPOINT_B, tgi.items[1].prompt_id)] == 4  # NOVAJUDGE_RETRY_MAX_ATTEMPTS default
    s3 = aws["s3"]
    assert not _keys(s3, "runs/too-many/input/")  # nothing for the judge
    summary = json.loads(_read(s3, "runs/too-many/generation/summary.json"))  # but nothing is lost
    assert summary["status"] == "failed" and summary["failed"] == 4 and summary["error"] == message
    manifest = _jsonl(s3, "runs/too-many/generation/manifest.jsonl")
    assert len({m["prompt_id"] for m in manifest}) == 5 and len(manifest) == 6  # 4 failed + 1 pair x 2 orders


def test_model_4xx_is_not_retried(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    tgi.default[ENDPOINT_A] = ["bad_input"]
    event = {
        "input": {"run_id": "bad-input", "questions": 2, "dataset": SAMPLE},
        "execution_name": EXECUTION_NAME,
    }
    with pytest.raises(GenerationFailed, match=r"ModelError 424 \(original 422\) ×2 \(A 2\)"):
        generate_step(event, lambda_context)
    assert tgi.calls[(ENDPOINT_A, tgi.items[0].prompt_id)] == 1


def test_zero_usable_pairs_fails_even_under_the_rate(
    aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch
) -> None:
    monkeypatch.setenv("JUDGE_CONTEXT_LIMIT_TOKENS", "50")  # every SQuAD passage is longer
    event = {
        "input": {"run_id": "too-long", "questions": 2, "dataset": SAMPLE},
        "execution_name": EXECUTION_NAME,
    }
    with pytest.raises(GenerationFailed, match="no usable pair for the judge: 2 of 2 over the context limit"):
        generate_step(event, lambda_context)


def test_over_context_records_are_excluded_and_reported(
    aws, tgi: FakeTGI, generate_step, lambda_context
) -> None:
    long_id = tgi.items[1].prompt_id
    original = tgi.answer

    def answer(endpoint: str, prompt_id: str) -> str:
        return (
            "x" * 30000 if prompt_id == long_id and endpoint == ENDPOINT_B else original(endpoint, prompt_id)
        )

    tgi.answer = answer  # type: ignore[method-assign]
    event = {
        "input": {"run_id": "long-one", "questions": 3, "dataset": SAMPLE, "both_orders": True},
        "execution_name": EXECUTION_NAME,
    }
    gen = generate_step(event, lambda_context)["generation"]
    assert gen["excluded"]["over_context"]["count"] == 1
    assert gen["excluded"]["over_context"]["ids"] == [long_id]
    assert gen["excluded"]["over_context"]["limit_tokens"] == 7000
    assert gen["judge_input_lines"] == 4 and gen["failed"] == 0
    lines = _read(aws["s3"], "runs/long-one/input/llm_judge.jsonl").decode()
    assert "x" * 100 not in lines
    summary = json.loads(_read(aws["s3"], "runs/long-one/generation/summary.json"))
    assert summary["excluded_over_context"]["ids"] == [long_id]


def test_run_id_reuse_is_refused(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    event = {
        "input": {"run_id": "twice", "questions": 1, "dataset": SAMPLE},
        "execution_name": "first-execution",
    }
    generate_step(event, lambda_context)
    before = {k: _read(aws["s3"], k) for k in _keys(aws["s3"], "runs/twice/")}
    calls = sum(tgi.calls.values())
    with pytest.raises(RunExistsError, match="run 'twice' already exists"):
        generate_step({**event, "execution_name": "second-execution"}, lambda_context)
    assert sum(tgi.calls.values()) == calls  # no endpoint was called
    assert {k: _read(aws["s3"], k) for k in _keys(aws["s3"], "runs/twice/")} == before  # nothing overwritten


def test_a_retry_of_the_same_execution_may_continue(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    event = {
        "input": {"run_id": "retried", "questions": 1, "dataset": SAMPLE, "both_orders": True},
        "execution_name": EXECUTION_NAME,
    }
    generate_step(event, lambda_context)
    assert generate_step(event, lambda_context)["generation"]["judge_input_lines"] == 2


def test_malformed_user_jsonl_names_the_line(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    s3 = aws["s3"]
    body = "\n".join(
        [
            json.dumps({"id": "q1", "prompt": "What is the capital of France?", "reference": "Paris"}),
            json.dumps({"id": "q2", "prompt": "Name a prime number."}),
            json.dumps({"id": "q3", "question": "Where is the prompt?"}),
            "",
        ]
    )
    event = dataset_event("user-data", upload_dataset(s3, "mine.jsonl", body))
    with pytest.raises(DatasetError) as info:
        generate_step(event, lambda_context)
    assert f"s3://{BUCKET}/datasets/mine.jsonl line 3: field 'prompt' is missing" in str(info.value)
    assert "line 2" not in str(info.value)  # every bad line is named, only the bad ones
    assert not _keys(s3, "runs/user-data/")  # the run id is not used up by a bad file
    assert not tgi.calls


def test_user_jsonl_happy_path(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    s3 = aws["s3"]
    prompts = [
        {"id": f"p{i}", "prompt": f"Explain idea number {i} in one sentence.", "reference": f"ref {i}"}
        for i in range(4)
    ]
    uri = upload_dataset(s3, "ideas.jsonl", "".join(json.dumps(p) + "\n" for p in prompts))
    tgi.by_prompt.update({p["prompt"]: p["id"] for p in prompts})
    event = dataset_event("ideas", uri, questions=2, offset=1, both_orders=True)
    gen = generate_step(event, lambda_context)["generation"]
    manifest = _jsonl(s3, "runs/ideas/generation/manifest.jsonl")
    assert gen["dataset_source"] == "s3"
    assert [m["prompt_id"] for m in manifest] == ["p1", "p1", "p2", "p2"]
    assert manifest[0]["reference"] == "ref 1"


def test_bad_human_preference_names_the_line_and_field(
    aws, tgi: FakeTGI, generate_step, lambda_context
) -> None:
    s3 = aws["s3"]
    body = json.dumps({"id": "q1", "prompt": "Name a prime.", "preference": "model B"}) + "\n"
    event = dataset_event("labelled", upload_dataset(s3, "labelled.jsonl", body))
    with pytest.raises(DatasetError) as info:
        generate_step(event, lambda_context)
    assert "labelled.jsonl line 1: field 'preference' is 'model B'; expected one of A, B, tie" in str(
        info.value
    )
    assert not tgi.calls


def test_invalid_input_names_the_field(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    event = {"input": {"questions": 0, "dataset": SAMPLE}, "execution_name": EXECUTION_NAME}
    with pytest.raises(InvalidRunRequest, match=r"questions=0: Input should be greater than or equal to 1"):
        generate_step(event, lambda_context)
    assert not _keys(aws["s3"], "runs/")


def test_stand_in_marks_every_output(aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("NOVAJUDGE_STAND_IN", "1")
    event = {"input": {"run_id": "demo", "questions": 2, "dataset": SAMPLE}, "execution_name": EXECUTION_NAME}
    state = generate_step(event, lambda_context)
    assert state["run"]["stand_in"] is True and state["generation"]["stand_in"] is True
    assert all(m["stand_in"] for m in _jsonl(aws["s3"], "runs/demo/generation/manifest.jsonl"))
    assert json.loads(_read(aws["s3"], "runs/demo/generation/summary.json"))["stand_in"] is True


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        (f"s3://{BUCKET}/uploads/mine.jsonl", "the key must be a plain path under datasets/"),
        (f"s3://{BUCKET}/datasets/../runs/x/mine.jsonl", "the key must be a plain path under datasets/"),
        ("s3://someone-elses-bucket/datasets/mine.jsonl", "the pipeline reads user datasets only from"),
    ],
)
def test_user_dataset_must_be_where_the_pipeline_may_read(
    aws, tgi: FakeTGI, generate_step, lambda_context, uri: str, why: str
) -> None:
    event = {"input": {"run_id": "elsewhere", "dataset": {"source": "s3", "uri": uri}}, "execution_name": "e"}
    with pytest.raises(InvalidRunRequest, match=re.escape(f"dataset.uri={uri!r}: {why}")):
        generate_step(event, lambda_context)
    assert not _keys(aws["s3"], "runs/")


def test_out_of_time_items_are_recorded_not_lost(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    lambda_context.remaining_ms = 60_000  # less than one read timeout + write margin: nothing may start
    event = {"input": {"run_id": "late", "questions": 3, "dataset": SAMPLE}, "execution_name": EXECUTION_NAME}
    with pytest.raises(GenerationFailed, match=r"3 of 3 items failed .*NotAttempted ×6 \(A 3, B 3\)"):
        generate_step(event, lambda_context)
    assert not tgi.calls
    manifest = _jsonl(aws["s3"], "runs/late/generation/manifest.jsonl")
    assert [m["A"]["error_kind"] for m in manifest] == ["NotAttempted"] * 3
    assert json.loads(_read(aws["s3"], "runs/late/generation/summary.json"))["status"] == "failed"
