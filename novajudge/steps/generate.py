"""GenerateChunk: one child of the generation Map asks both endpoints about its chunk of items.

The event is `{"run": {...}, "chunk": {"index", "key", "items", "share"}}` (the Map's
ItemSelector); the result is a small count object (the Map discards it: outcomes go to S3, never
into the state). The chunk's items are read from `key`, both endpoints are asked
(`generation.pool.generate_pairs`, the one place endpoint requests are made, with `1/share` of each
model's in-flight budget: `share` chunks ask the endpoints at once), and every item's outcome is
written, as one JSON object per chunk, to
`runs/<run_id>/generation/outcomes/<execution>/chunk-<n>.json`, where reduce and a later resume
read it. No request starts after `start_by` (one read timeout plus the write margin before the
Lambda's end): the items left are recorded as `NotAttempted`, so the chunk always reports.

`generate` runs the three steps (prepare, every chunk, reduce) in one process: what the state
machine does, for tests and tools that have no Step Functions.

`build_run` turns the execution input into the run (used by prepare's handler and `novajudge
start`'s validation).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from novajudge.errors import InvalidRunRequest
from novajudge.generation import chunks as chunking
from novajudge.generation.pool import generate_pairs
from novajudge.generation.store import put_json
from novajudge.layout import RunLayout
from novajudge.run_request import RunState, parse_run_state, validate_run
from novajudge.steps.environment import ChunkEnvironment, GenerateEnvironment
from novajudge.steps.prepare import attempt_of, now_iso, prepare
from novajudge.steps.reduce import reduce_run

#: Seconds kept at the end of the Lambda's time to write the chunk's outcomes.
WRITE_MARGIN_SECONDS = chunking.CHUNK_WRITE_MARGIN_SECONDS
EVENT_FIELDS = frozenset({"input", "execution_name"})
CHUNK_EVENT_FIELDS = frozenset({"run", "chunk"})


def build_run(event: Any, env: GenerateEnvironment) -> RunState:
    """The validated `run` of this execution: the request plus the deployment's bucket and models."""
    if not isinstance(event, Mapping):
        raise InvalidRunRequest(f"the generate event must be an object, got {type(event).__name__}")
    unknown = sorted(set(event) - EVENT_FIELDS)
    if unknown:
        raise InvalidRunRequest(f"unexpected field(s) in the generate event: {', '.join(unknown)}")
    execution_name = event.get("execution_name")
    request = validate_run(
        event.get("input"),
        defaults=env.run_defaults,
        bucket=env.bucket,
        judge_max_runtime_seconds=env.judge_max_runtime_seconds,
        execution_name=execution_name,
    )
    endpoint_a, endpoint_b = env.endpoints_of(request.run_id)
    try:
        return RunState(
            **request.model_dump(),
            bucket=env.bucket,
            execution_name=execution_name,
            created_at=now_iso(),
            model_a=env.model_a,
            model_b=env.model_b,
            endpoint_a=endpoint_a,
            endpoint_b=endpoint_b,
            stand_in=env.stand_in,
        )
    except ValidationError as exc:
        raise InvalidRunRequest(
            "invalid run request: " + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from None


def start_by(remaining_ms: int | None, read_timeout_seconds: float) -> float | None:
    """The last `time.monotonic()` instant an endpoint request may start: one read timeout plus time
    to write the manifest and summary before the Lambda timeout, so a slow run ends with its outputs
    saved. None (no limit) when the remaining time is unknown."""
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms / 1000 - read_timeout_seconds - WRITE_MARGIN_SECONDS


def generate_chunk(
    event: Mapping[str, Any],
    env: ChunkEnvironment,
    *,
    s3: Any,
    runtime: Any,
    remaining_ms: int | None = None,
) -> dict[str, Any]:
    """Generate one chunk and write its outcomes; returns `{"chunk", "items", "ok"}`."""
    if not isinstance(event, Mapping) or set(event) != CHUNK_EVENT_FIELDS:
        raise InvalidRunRequest("the generate event must be {'run': ..., 'chunk': ...} (one Map item)")
    run = parse_run_state(event)
    chunk = event["chunk"]
    if (
        not isinstance(chunk, Mapping)
        or not isinstance(chunk.get("index"), int)
        or not chunk.get("key")
        or not isinstance(chunk.get("share", 1), int)
        or chunk.get("share", 1) < 1
    ):
        raise InvalidRunRequest(
            f"the Map item must be a chunk descriptor {{index, key, items, share}}, got {chunk!r}"
        )
    layout = RunLayout(run.bucket, run.run_id)
    if not str(chunk["key"]).startswith(layout.prefix):
        raise InvalidRunRequest(f"chunk key {chunk['key']!r} is not under {layout.prefix}")
    values = json.loads(s3.get_object(Bucket=layout.bucket, Key=chunk["key"])["Body"].read())
    indexed = [chunking.item_from_json(value) for value in values]
    deadline = start_by(remaining_ms, env.read_timeout_seconds)
    outcomes = generate_pairs(
        run,
        [item for _, item in indexed],
        runtime=runtime,
        retry=env.retry,
        start_by=deadline,
        share=chunk.get("share", 1),
    )
    put_json(
        s3,
        layout.bucket,
        layout.chunk_outcome_key(attempt_of(run), chunk["index"]),
        [
            chunking.outcome_to_json(index, outcome)
            for (index, _), outcome in zip(indexed, outcomes, strict=True)
        ],
    )
    return {"chunk": chunk["index"], "items": len(outcomes), "ok": sum(1 for o in outcomes if o.ok)}


def generate(
    run: RunState,
    env: GenerateEnvironment,
    *,
    s3: Any,
    runtime: Any,
    remaining_ms: int | None = None,
) -> dict[str, Any]:
    """Prepare, every chunk in turn, reduce: the generation of `run` in this process.

    `remaining_ms` applies to each chunk as its Lambda's remaining time would.
    """
    state = prepare(run, env, s3=s3)
    descriptors = json.loads(
        s3.get_object(Bucket=state["map"]["bucket"], Key=state["map"]["key"])["Body"].read()
    )
    chunk_env = ChunkEnvironment(read_timeout_seconds=env.read_timeout_seconds, retry=env.retry)
    for descriptor in descriptors:
        generate_chunk(
            {"run": state["run"], "chunk": descriptor},
            chunk_env,
            s3=s3,
            runtime=runtime,
            remaining_ms=remaining_ms,
        )
    return reduce_run(state, s3=s3)
