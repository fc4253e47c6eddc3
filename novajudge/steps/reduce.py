"""ReduceGeneration: every chunk's outcomes back into the judge input, manifest and summary.

The event is the state after the Map, `{"run": ..., "map": ...}` (plus `map_error` when the Map
itself failed: too many children failed, or its item reader did); the result is the new state
`{"run": ..., "generation": ...}`, the same as the single generate function returned before the
Map existed (docs/design.md). It reads the run's plan (every item, in dataset order) and every
chunk outcome of every execution of the run (a resume's included), keeps for each item its answered
outcome or else its latest one, and treats an item no chunk reported as failed (`ChunkFailed`).
Then, as before: always write the manifest and the generation summary, then either the judge input
or, when too many items failed (rate `>` max_failure_rate), `GenerationFailed` with counts and the
top error kinds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from novajudge.errors import GenerationFailed, InvalidRunRequest
from novajudge.generation import chunks as chunking
from novajudge.generation.manifest import (
    CHARS_PER_TOKEN,
    ItemOutcome,
    JudgeInputs,
    build_judge_inputs,
)
from novajudge.generation.store import put_json, put_jsonl
from novajudge.layout import RunLayout
from novajudge.run_request import RunState, parse_run_state
from novajudge.steps.prepare import now_iso, read_outcome_batches

#: How many ids the state-machine payload carries (Step Functions caps state at 256 KB);
#: the full lists are in the generation summary in S3.
MAX_IDS_IN_STATE = 50


def reduce_run(state: Mapping[str, Any], *, s3: Any) -> dict[str, Any]:
    """Build and write the run's generation outputs from its chunk outcomes (see the module doc)."""
    run = parse_run_state(state)
    layout = RunLayout(run.bucket, run.run_id)
    try:
        plan = json.loads(s3.get_object(Bucket=layout.bucket, Key=layout.generation_plan_key)["Body"].read())
    except Exception:
        raise InvalidRunRequest(
            f"run {run.run_id!r} has no plan at {layout.uri(layout.generation_plan_key)}"
        ) from None
    kept = chunking.merge_outcomes(read_outcome_batches(s3, layout))
    map_error = state.get("map_error") if isinstance(state.get("map_error"), Mapping) else None
    why = "its chunk reported no outcome" + (
        f" (the Map failed: {map_error.get('Error')}: {str(map_error.get('Cause', ''))[:200]})"
        if map_error
        else ""
    )
    never_sent = dict(zip(plan["too_long_indexes"], plan["too_long_tokens"], strict=True))
    outcomes: list[ItemOutcome] = []
    too_long = []
    for value in plan["items"]:
        index, item = chunking.item_from_json(value)
        if index in never_sent:
            too_long.append((item, never_sent[index]))
        else:
            outcomes.append(kept.get(index) or chunking.not_attempted(item, why))
    return write_generation(run, layout, plan, outcomes, too_long, s3=s3)


def write_generation(
    run: RunState,
    layout: RunLayout,
    plan: Mapping[str, Any],
    outcomes: list[ItemOutcome],
    too_long: list[Any],
    *,
    s3: Any,
) -> dict[str, Any]:
    """Judge input (unless failed), manifest, summary; `GenerationFailed` past the failure limit."""
    limit = plan["context_limit_tokens"]
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
        input_limit_tokens=plan["max_input_tokens"],
    )
    summary = _summary(run, layout, plan, outcomes, inputs)
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
    plan: Mapping[str, Any],
    outcomes: list[ItemOutcome],
    inputs: JudgeInputs,
) -> dict[str, Any]:
    limit, env_limit = plan["context_limit_tokens"], plan["max_input_tokens"]
    total = len(outcomes)
    failed = len(inputs.failed_ids)
    return {
        "run_id": run.run_id,
        "stand_in": run.stand_in,
        "dataset_source": plan["dataset_source"],
        "dataset": {**run.dataset.model_dump(), **plan["dataset_detail"]},
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
        "started_at": plan["started_at"],
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
