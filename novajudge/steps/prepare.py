"""PrepareRun: validate the execution, check quotas, and hand the Map its chunks (docs/design.md).

The event is `{"input": <execution input>, "execution_name": <$$.Execution.Name>}`; the result is
`{"run": {...validated request...}, "map": {...where the chunk list is, how many...}}`. It runs
first in every execution, before per-run endpoints are created, so what is refused here costs
nothing. Order of effects, chosen so a mistake costs as little as possible and loses nothing:
1. validate the event into the run (nothing read, nothing written);
2. a new run: refuse a reused run id, read and validate the dataset (a malformed file fails before
   the run id is claimed, so the user fixes it and reruns under the same id);
   a resumed run (`"resume": true`): read back the run's own request and plan instead;
3. the quota pre-flight (`novajudge.judge.quotas`): however the execution was started;
4. claim the run (`request.json`, conditional write; a resume takes the record over so the cleanup
   of this execution finds it), write the plan once (every item, in order, and the prompts never
   sent), then the items still to generate in chunks, and the chunk list the Map reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from novajudge.errors import InvalidRunRequest, QuotaExceeded
from novajudge.generation import chunks as chunking
from novajudge.generation.datasets import PromptItem, load_dataset
from novajudge.generation.manifest import ItemOutcome, estimate_tokens
from novajudge.generation.pool import per_child
from novajudge.generation.store import claim_run, ensure_new_run, put_json
from novajudge.judge import quotas as quota_check
from novajudge.layout import RunLayout
from novajudge.run_request import RunState
from novajudge.steps.environment import GenerateEnvironment

#: Execution name used for chunk keys when a run is generated outside Step Functions (tests, tools).
DIRECT_ATTEMPT = "direct"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attempt_of(run: RunState) -> str:
    """The name this execution's chunks and outcomes are kept under (never another execution's)."""
    return run.execution_name or DIRECT_ATTEMPT


def prepare(run: RunState, env: GenerateEnvironment, *, s3: Any, quotas: Any = None) -> dict[str, Any]:
    """Everything before the Map; returns the new state `{"run": ..., "map": ...}`.

    `quotas`: a Service Quotas client (None skips the pre-flight: tests and direct runs).
    """
    layout = RunLayout(run.bucket, run.run_id)
    if run.resume:
        run = _resumed(run, s3, layout)
        plan = _read_json(s3, layout.bucket, layout.generation_plan_key)
        _check_quotas(run, env, quotas)
        put_json(s3, layout.bucket, layout.request_key, run.model_dump(mode="json"))
    else:
        ensure_new_run(s3, layout, run.execution_name)
        dataset = load_dataset(
            run.dataset, offset=run.offset, count=run.questions, s3=s3, squad_rows_url=env.squad_rows_url
        )
        _check_quotas(run, env, quotas)
        claim_run(s3, layout, run.model_dump(mode="json"))
        plan = _plan(run, env, dataset.items, dataset.source, dataset.detail)
        put_json(s3, layout.bucket, layout.generation_plan_key, plan)

    done = {index for index, outcome in _kept_outcomes(s3, layout).items() if outcome.ok}
    never_sent = set(plan["too_long_indexes"])
    todo = [
        chunking.item_from_json(value)
        for value in plan["items"]
        if value["index"] not in done and value["index"] not in never_sent
    ]
    # Sized for the window a child has when the Map runs `map_max_concurrency` of them at once.
    window = max(
        per_child(run.generation.concurrency_a, env.map_max_concurrency),
        per_child(run.generation.concurrency_b, env.map_max_concurrency),
    )
    size = env.chunk_items or chunking.chunk_size(window, env.chunk_timeout_seconds, env.read_timeout_seconds)
    attempt = attempt_of(run)
    chunks = list(chunking.split(todo, size))
    # Children that really run at once: fewer chunks than Map slots leave each a larger part.
    share = max(1, min(env.map_max_concurrency, len(chunks)))
    descriptors = []
    for number, chunk in enumerate(chunks):
        key = layout.chunk_items_key(attempt, number)
        put_json(s3, layout.bucket, key, [chunking.item_to_json(i, item) for i, item in chunk])
        descriptors.append({"index": number, "key": key, "items": len(chunk), "share": share})
    put_json(s3, layout.bucket, layout.chunk_list_key(attempt), descriptors)
    return {
        "run": run.model_dump(mode="json"),
        "map": {
            "bucket": layout.bucket,
            "key": layout.chunk_list_key(attempt),
            "chunks": len(descriptors),
            "items": len(todo),
            "kept": len(done),
            "chunk_items": size,
            # The Map's ToleratedFailurePercentagePath: past this share of failed children the
            # run cannot pass max_failure_rate anyway, so the Map stops asking the endpoints.
            "tolerated_failure_percentage": round(run.generation.max_failure_rate * 100, 4),
        },
    }


def _plan(
    run: RunState, env: GenerateEnvironment, items: list[PromptItem], source: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """The run's fixed plan: every item in dataset order (a resume regenerates from these, never
    from a dataset that may have changed since), which were never sent, and the limits used."""
    too_long = [
        (index, tokens)
        for index, tokens in enumerate(estimate_tokens(item.prompt) for item in items)
        if tokens > env.max_input_tokens
    ]
    return {
        "items": [chunking.item_to_json(index, item) for index, item in enumerate(items)],
        "too_long_indexes": [index for index, _ in too_long],
        "too_long_tokens": [tokens for _, tokens in too_long],
        "dataset_source": source,
        "dataset_detail": detail,
        "max_input_tokens": env.max_input_tokens,
        "context_limit_tokens": env.context_limit_tokens,
        "started_at": now_iso(),
    }


def _resumed(run: RunState, s3: Any, layout: RunLayout) -> RunState:
    """The stored run, now owned by this execution: same request, so the same judge input."""
    try:
        stored = _read_json(s3, layout.bucket, layout.request_key)
        _read_json(s3, layout.bucket, layout.generation_plan_key)
    except Exception:
        raise InvalidRunRequest(
            f"run {run.run_id!r} cannot be resumed: {layout.uri(layout.generation_plan_key)} is missing "
            "(the run never got past its preparation; start it again instead)"
        ) from None
    try:
        return RunState.model_validate({**stored, "execution_name": run.execution_name, "resume": True})
    except ValidationError as exc:
        raise InvalidRunRequest(f"run {run.run_id!r}: its stored request is not valid: {exc}") from None


def _check_quotas(run: RunState, env: GenerateEnvironment, client: Any) -> None:
    """Refuse (`QuotaExceeded`) when an instance quota the run needs is too low. A quota that is not
    listed, or a Service Quotas error, does not refuse: the pre-flight only saves a late failure."""
    if client is None:
        return
    judge_type = env.judge_instance_type(run.judge.variant, run.judge.instance_type)
    needs = quota_check.run_needs(judge_type, env.endpoint_instance_type)
    try:
        checks = quota_check.check(client, needs)
    except Exception:  # AccessDenied, throttling, no Service Quotas in a partition: not a refusal
        return
    short = [c.refusal(env.region or "this region") for c in checks if c.short]
    if short:
        raise QuotaExceeded("; ".join(short))


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _kept_outcomes(s3: Any, layout: RunLayout) -> dict[int, ItemOutcome]:
    """Every outcome written for this run so far, merged (`generation.chunks.merge_outcomes`)."""
    return chunking.merge_outcomes(read_outcome_batches(s3, layout))


def read_outcome_batches(s3: Any, layout: RunLayout) -> list[list[dict[str, Any]]]:
    """Every chunk outcome object of the run, oldest first (S3 LastModified, then key)."""
    found: list[tuple[Any, str]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=layout.bucket, Prefix=layout.outcomes_prefix):
        found += [(obj["LastModified"], obj["Key"]) for obj in page.get("Contents", [])]
    return [_read_json(s3, layout.bucket, key) for _, key in sorted(found)]
