"""GenerateData: validate the execution input, ask both endpoints, write the judge input.

The event is `{"input": <execution input>, "execution_name": <$$.Execution.Name>}`; the result is
the new state `{"run": {...validated request...}, "generation": {...}}` (docs/design.md). Order of
effects, chosen so a mistake costs as little as possible and loses nothing:
1. validate the event into the run (nothing read, nothing written);
2. refuse a reused run id;
3. read and validate the dataset (a malformed file fails before the run id is claimed, so the user
   fixes the file and reruns under the same id);
4. claim the run (`request.json`, conditional write), invoke both endpoints concurrently;
5. always write the manifest and the generation summary, then either the judge input or, when too
   many generations failed, `GenerationFailed` with counts and the top error kinds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from novajudge.errors import GenerationFailed, InvalidRunRequest
from novajudge.generation.datasets import LoadedDataset, PromptItem, load_dataset
from novajudge.generation.endpoints import EndpointInvoker, Generation, RetryPolicy
from novajudge.generation.manifest import (
    CHARS_PER_TOKEN,
    ItemOutcome,
    JudgeInputs,
    build_judge_inputs,
    estimate_tokens,
)
from novajudge.generation.store import claim_run, ensure_new_run, put_json, put_jsonl
from novajudge.layout import RunLayout
from novajudge.run_request import RunState, validate_run
from novajudge.steps.environment import GenerateEnvironment

#: How many ids the state-machine payload carries (Step Functions caps state at 256 KB);
#: the full lists are in the generation summary in S3.
MAX_IDS_IN_STATE = 50
#: Seconds kept at the end of the Lambda's time to write the manifest and summaries.
WRITE_MARGIN_SECONDS = 20.0
EVENT_FIELDS = frozenset({"input", "execution_name"})


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def generate(
    run: RunState,
    env: GenerateEnvironment,
    *,
    s3: Any,
    runtime: Any,
    remaining_ms: int | None = None,
) -> dict[str, Any]:
    """Run the generation of `run`; return the new state `{"run": ..., "generation": ...}`.

    `remaining_ms` (the Lambda's remaining time): no endpoint request starts after `start_by`; the
    items left are recorded as failed (`NotAttempted`) and the outputs are still written.
    """
    layout = RunLayout(run.bucket, run.run_id)
    ensure_new_run(s3, layout, run.execution_name)
    dataset = load_dataset(
        run.dataset, offset=run.offset, count=run.questions, s3=s3, squad_rows_url=env.squad_rows_url
    )
    claim_run(s3, layout, run.model_dump(mode="json"))

    limit = env.context_limit_tokens
    started = now_iso()
    deadline = start_by(remaining_ms, env.read_timeout_seconds)
    sendable, too_long = split_by_input_limit(dataset.items, env.max_input_tokens)
    outcomes = generate_all(run, sendable, runtime=runtime, retry=env.retry, start_by=deadline)
    models = {
        "A": {"model": run.model_a, "endpoint": run.endpoint_a},
        "B": {"model": run.model_b, "endpoint": run.endpoint_b},
    }
    inputs = build_judge_inputs(
        outcomes,
        both_orders=run.both_orders,
        context_limit_tokens=limit,
        stand_in=run.stand_in,
        models=models,
        too_long=too_long,
        input_limit_tokens=env.max_input_tokens,
    )
    summary = _summary(run, layout, dataset, outcomes, inputs, limit, started, env.max_input_tokens)
    failed = _failure_cause(run, layout, outcomes, inputs)
    summary["status"] = "failed" if failed else "ok"
    if failed:
        summary["error"] = failed
        summary["uris"]["judge_input"] = None  # not written: the judge must not start on it
    else:
        put_jsonl(s3, layout.bucket, layout.judge_input_key, inputs.judge_lines)
    put_jsonl(s3, layout.bucket, layout.manifest_key, inputs.manifest)
    put_json(s3, layout.bucket, layout.generation_summary_key, summary)
    if failed:
        raise GenerationFailed(failed)
    return {"run": run.model_dump(mode="json"), "generation": _state_view(summary)}


def split_by_input_limit(
    items: list[PromptItem], max_input_tokens: int
) -> tuple[list[PromptItem], list[tuple[PromptItem, int]]]:
    """(prompts to send, [(prompt, estimated tokens)] over the endpoints' `max_input_tokens`).

    TGI refuses a prompt over its `MAX_INPUT_TOKENS` (HTTP 422) after the request was made; the
    estimate over-counts tokens (`estimate_tokens`), so what is sent fits, and what is left out is
    listed in the manifest and the summary instead of failing on both endpoints.
    """
    sendable: list[PromptItem] = []
    too_long: list[tuple[PromptItem, int]] = []
    for item in items:
        tokens = estimate_tokens(item.prompt)
        if tokens > max_input_tokens:
            too_long.append((item, tokens))
        else:
            sendable.append(item)
    return sendable, too_long


def generate_all(
    run: RunState,
    items: list[PromptItem],
    *,
    runtime: Any,
    retry: RetryPolicy,
    start_by: float | None = None,
) -> list[ItemOutcome]:
    """Both endpoints at once, each with at most `generation.concurrency` requests in flight.

    One pool per endpoint, so a slow 7B model does not starve the 1.5B one of workers and each
    endpoint sees the same bounded load it was sized for.
    """
    options = run.generation
    invokers = {
        which: EndpointInvoker(
            runtime,
            endpoint,
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
            retry=retry,
            start_by=start_by,
        )
        for which, endpoint in (("A", run.endpoint_a), ("B", run.endpoint_b))
    }
    futures: dict[str, list[Future[Generation]]] = {}
    with (
        ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="model-a") as pool_a,
        ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="model-b") as pool_b,
    ):
        for which, pool in (("A", pool_a), ("B", pool_b)):
            invoker = invokers[which]
            futures[which] = [pool.submit(invoker.generate, item.prompt_id, item.prompt) for item in items]
        return [
            ItemOutcome(item=item, a=fa.result(), b=fb.result())
            for item, fa, fb in zip(items, futures["A"], futures["B"], strict=True)
        ]


def _failure_counts(outcomes: list[ItemOutcome]) -> dict[str, dict[str, int]]:
    """`{error kind: {"A": n, "B": m}}`, most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    for outcome in outcomes:
        for which, generation in (("A", outcome.a), ("B", outcome.b)):
            if generation.status != "ok":
                counts[(generation.error_kind or "unknown", which)] += 1
    totals: Counter[str] = Counter()
    for (kind, _), n in counts.items():
        totals[kind] += n
    return {
        kind: {w: counts[(kind, w)] for w in ("A", "B") if counts[(kind, w)]}
        for kind, _ in totals.most_common()
    }


def _failure_cause(
    run: RunState, layout: RunLayout, outcomes: list[ItemOutcome], inputs: JudgeInputs
) -> str | None:
    """The message of `GenerationFailed`, or None when the run may go on to the judge."""
    total = len(outcomes)
    failed = len(inputs.failed_ids)
    rate = failed / total if total else 1.0
    limit = run.generation.max_failure_rate
    kinds = _failure_counts(outcomes)
    top = ", ".join(
        f"{kind} ×{sum(by.values())} ({', '.join(f'{w} {n}' for w, n in by.items())})"
        for kind, by in list(kinds.items())[:3]
    )
    where = f"see {layout.uri(layout.manifest_key)}"
    if rate > limit:
        return f"{failed} of {total} items failed ({rate:.0%} > max_failure_rate {limit:.0%}): {top}; {where}"
    if not inputs.judge_lines:
        reason = f"{failed} failed ({top})" if failed else "none failed"
        return (
            f"no usable pair for the judge: {len(inputs.over_context_ids)} of {total} over the context "
            f"limit, {len(inputs.over_input_ids)} prompts over max_input_tokens (not sent), {reason}; {where}"
        )
    return None


def _summary(
    run: RunState,
    layout: RunLayout,
    dataset: LoadedDataset,
    outcomes: list[ItemOutcome],
    inputs: JudgeInputs,
    limit: int,
    started: str,
    env_limit: int,
) -> dict[str, Any]:
    total = len(outcomes)
    failed = len(inputs.failed_ids)
    return {
        "run_id": run.run_id,
        "stand_in": run.stand_in,
        "dataset_source": dataset.source,
        "dataset": {**run.dataset.model_dump(), **dataset.detail},
        "questions_requested": run.questions,
        "offset": run.offset,
        "items": total,
        "pairs_ok": total - failed,
        "failed": failed,
        "failure_rate": round(failed / total, 4) if total else 1.0,
        "max_failure_rate": run.generation.max_failure_rate,
        "failures_by_kind": _failure_counts(outcomes),
        "failed_ids": inputs.failed_ids,
        "excluded_over_context": {
            "count": len(inputs.over_context_ids),
            "ids": inputs.over_context_ids,
            "limit_tokens": limit,
            "estimate": f"characters / {CHARS_PER_TOKEN} of prompt + both responses",
        },
        "excluded_over_input_limit": {
            "count": len(inputs.over_input_ids),
            "ids": inputs.over_input_ids,
            "limit_tokens": env_limit,
            "estimate": f"characters / {CHARS_PER_TOKEN} of the prompt; never sent",
        },
        # Lone surrogates in the models' answers, replaced by U+FFFD before anything was written.
        "unicode_repaired_chars": dict(inputs.repaired_chars),
        "pairs_to_judge": inputs.pairs,
        "judge_input_lines": len(inputs.judge_lines),
        "both_orders": run.both_orders,
        "models": {w: _model_stats(outcomes, w, run) for w in ("A", "B")},
        "generation": run.generation.model_dump(),
        "uris": {
            "request": layout.uri(layout.request_key),
            "judge_input": layout.uri(layout.judge_input_key),
            "manifest": layout.uri(layout.manifest_key),
            "summary": layout.uri(layout.generation_summary_key),
        },
        "started_at": started,
        "finished_at": now_iso(),
    }


def _model_stats(outcomes: list[ItemOutcome], which: str, run: RunState) -> dict[str, Any]:
    generations = [o.a if which == "A" else o.b for o in outcomes]
    ok = [g for g in generations if g.status == "ok"]
    latencies = sorted(g.latency_ms for g in ok)
    return {
        "model": run.model_a if which == "A" else run.model_b,
        "endpoint": run.endpoint_a if which == "A" else run.endpoint_b,
        "ok": len(ok),
        "failed": len(generations) - len(ok),
        "retried_items": sum(1 for g in generations if g.attempts > 1),
        "median_latency_ms": latencies[len(latencies) // 2] if latencies else None,
        "completion_tokens": sum(g.completion_tokens or 0 for g in ok),
        "prompt_tokens": sum(g.prompt_tokens or 0 for g in ok),
        "truncated": sum(1 for g in ok if g.finish_reason == "length"),
    }


def _state_view(summary: dict[str, Any]) -> dict[str, Any]:
    """The compact `generation` object carried in the state (ids capped, full lists in S3)."""
    over = summary["excluded_over_context"]
    return {
        "status": summary["status"],
        "stand_in": summary["stand_in"],
        "dataset_source": summary["dataset_source"],
        "items": summary["items"],
        "pairs_ok": summary["pairs_ok"],
        "failed": summary["failed"],
        "failure_rate": summary["failure_rate"],
        "pairs_to_judge": summary["pairs_to_judge"],
        "judge_input_lines": summary["judge_input_lines"],
        "both_orders": summary["both_orders"],
        "excluded": {
            "generation_failed": {
                "count": summary["failed"],
                "ids": summary["failed_ids"][:MAX_IDS_IN_STATE],
            },
            "over_context": {
                "count": over["count"],
                "ids": over["ids"][:MAX_IDS_IN_STATE],
                "limit_tokens": over["limit_tokens"],
            },
            "over_input_limit": {
                "count": summary["excluded_over_input_limit"]["count"],
                "ids": summary["excluded_over_input_limit"]["ids"][:MAX_IDS_IN_STATE],
                "limit_tokens": summary["excluded_over_input_limit"]["limit_tokens"],
            },
        },
        "uris": summary["uris"],
    }
