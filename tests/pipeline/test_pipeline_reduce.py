"""Reduce, the chunk size and the merge of outcomes, on hand-written chunk outcomes.

Expected values are worked out by hand in each test (no call to the code under test computes
them): the failure-rate limit is strict (`rate > max_failure_rate` fails; equal passes), a model's
`retried_items` counts only items that needed more than one attempt, and an answered item is
never replaced by a later attempt.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pipeline_fakes import BUCKET

from novajudge.errors import GenerationFailed
from novajudge.generation.chunks import chunk_size, merge_outcomes
from novajudge.steps.reduce import reduce_run

RUN_ID = "reduce-by-hand"


def _run(max_failure_rate: float) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "questions": 5,
        "dataset": {"source": "squad-sample"},
        "generation": {"max_failure_rate": max_failure_rate},
        "bucket": BUCKET,
        "execution_name": "exec-1",
        "created_at": "2026-11-30T00:00:00Z",
        "model_a": "org/a",
        "model_b": "org/b",
        "endpoint_a": "ep-a",
        "endpoint_b": "ep-b",
    }


def _generation(ok: bool, attempts: int = 1) -> dict[str, Any]:
    return {
        "status": "ok" if ok else "failed",
        "text": "an answer" if ok else None,
        "latency_ms": 100,
        "elapsed_ms": 100 * attempts,
        "attempts": attempts,
        "prompt_tokens": 10 if ok else None,
        "completion_tokens": 3 if ok else None,
        "finish_reason": "stop" if ok else None,
        "error": None if ok else "ModelError: 400",
        "error_kind": None if ok else "ModelError",
        "repaired_chars": 0,
    }


def _item(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "prompt_id": f"p{index}",
        "prompt": f"Prompt number {index}?",
        "reference": None,
        "human_preference": None,
        "meta": {},
    }


def _put(s3: Any, key: str, value: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/{key}", Body=json.dumps(value).encode())


def _write_run(s3: Any, a: list[tuple[bool, int]], b: list[tuple[bool, int]]) -> None:
    """Five items in two chunks; (ok, attempts) per item for models A and B."""
    _put(
        s3,
        "generation/plan.json",
        {
            "items": [_item(i) for i in range(5)],
            "too_long_indexes": [],
            "too_long_tokens": [],
            "dataset_source": "squad-sample",
            "dataset_detail": {},
            "max_input_tokens": 4096,
            "context_limit_tokens": 7000,
            "started_at": "2026-11-30T00:00:00Z",
        },
    )
    outcomes = [{"item": _item(i), "a": _generation(*a[i]), "b": _generation(*b[i])} for i in range(5)]
    _put(s3, "generation/outcomes/exec-1/chunk-00000.json", outcomes[:3])
    _put(s3, "generation/outcomes/exec-1/chunk-00001.json", outcomes[3:])


def _summary(s3: Any) -> dict[str, Any]:
    return json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/generation/summary.json")["Body"].read()
    )


def test_a_failure_rate_equal_to_the_limit_passes(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    # 1 of 5 items fails (B of item 2): rate 1/5 = 0.2, the limit 0.2; not above it, so the run goes on.
    _write_run(s3, a=[(True, 1)] * 5, b=[(True, 1), (True, 1), (False, 1), (True, 1), (True, 1)])
    state = reduce_run({"run": _run(0.2), "map": {}}, s3=s3)
    assert state["generation"]["status"] == "ok"
    assert (state["generation"]["failed"], state["generation"]["failure_rate"]) == (1, 0.2)
    lines = s3.get_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/input/llm_judge.jsonl")["Body"].read()
    assert len(lines.decode().splitlines()) == 4  # the four pairs both models answered


def test_a_failure_rate_above_the_limit_fails_after_writing_the_summary(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    # 2 of 5 fail: 0.4 > 0.2.
    _write_run(
        s3, a=[(False, 1), (True, 1), (True, 1), (True, 1), (True, 1)], b=[(True, 1)] * 4 + [(False, 1)]
    )
    with pytest.raises(GenerationFailed, match=r"2 of 5 items failed \(40% > max_failure_rate 20%\)"):
        reduce_run({"run": _run(0.2), "map": {}}, s3=s3)
    summary = _summary(s3)
    assert (summary["status"], summary["failed"], summary["failure_rate"]) == ("failed", 2, 0.4)
    assert summary["failed_ids"] == ["p0", "p4"]


def test_retried_items_count_only_items_that_needed_another_attempt(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    # A: items 1 and 3 took 2 and 3 attempts -> 2 retried items; B: every item at once -> 0.
    _write_run(s3, a=[(True, 1), (True, 2), (True, 1), (True, 3), (True, 1)], b=[(True, 1)] * 5)
    reduce_run({"run": _run(0.2), "map": {}}, s3=s3)
    models = _summary(s3)["models"]
    assert (models["A"]["retried_items"], models["B"]["retried_items"]) == (2, 0)
    assert (models["A"]["ok"], models["B"]["ok"]) == (5, 5)


def test_items_no_chunk_reported_count_as_failed(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    _write_run(s3, a=[(True, 1)] * 5, b=[(True, 1)] * 5)
    s3.delete_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/generation/outcomes/exec-1/chunk-00001.json")
    map_error = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "too many children failed"}
    # Items 3 and 4 (the lost chunk) failed: 2 of 5 = 0.4 > 0.2.
    with pytest.raises(GenerationFailed, match=r"2 of 5 items failed .*ChunkFailed ×4 \(A 2, B 2\)"):
        reduce_run({"run": _run(0.2), "map": {}, "map_error": map_error}, s3=s3)
    assert _summary(s3)["failed_ids"] == ["p3", "p4"]


def test_chunk_size_fits_the_lambda_timeout() -> None:
    # usable time = timeout - read timeout - 20 s write margin; rounds = floor(usable / read timeout)
    assert chunk_size(4, 900, 70) == 4 * 11  # floor(810 / 70) = 11
    assert chunk_size(1, 900, 70) == 11
    assert chunk_size(32, 900, 70) == 200  # 352 capped at MAX_CHUNK_ITEMS
    assert chunk_size(4, 100, 70) == 4  # less than one round: still one request per worker
    assert chunk_size(2, 300, 10) == 2 * 27  # floor(270 / 10) = 27
    assert chunk_size(8, 900, 10) == 200  # 8 x 87 = 696, capped


def test_merge_keeps_answered_items_and_the_latest_failure() -> None:
    def outcome(ok: bool, error: str) -> dict[str, Any]:
        failed = {**_generation(False), "error": error}
        return {"item": _item(0), "a": _generation(True) if ok else failed, "b": _generation(True)}

    first = [outcome(False, "first")]
    second = [outcome(False, "second")]
    answered = [outcome(True, "")]
    later_failure = [outcome(False, "third")]
    kept = merge_outcomes([first, second])[0]
    assert kept.a.error == "second"  # two failures: the latest is shown
    kept = merge_outcomes([first, answered, later_failure])[0]
    assert kept.ok  # once answered, never replaced
