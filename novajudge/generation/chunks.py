"""A run's items in chunks for the Step Functions Distributed Map, and the chunks' outcomes back.

Why chunks: one Lambda cannot ask both endpoints about thousands of prompts inside its 15 minutes,
so prepare cuts the items into chunks, the Map runs one child Lambda per chunk, and reduce puts
the outcomes back together in dataset order. Everything here is plain data in JSON: the chunk
objects prepare writes, the outcome objects the children write, and the merge reduce (and resume)
does. Items are keyed by their position in the run (`index`), not their id, so two runs of the
same prompts, or a resumed run, line up exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from novajudge.generation.datasets import PromptItem
from novajudge.generation.endpoints import Generation
from novajudge.generation.manifest import ItemOutcome

#: Seconds a chunk keeps free at the end of its Lambda for writing its outcome object.
CHUNK_WRITE_MARGIN_SECONDS = 20.0
#: Never more items in one chunk than this: the chunk objects stay small (a few MB at most) and
#: a failed child loses little.
MAX_CHUNK_ITEMS = 200


def chunk_size(concurrency: int, lambda_timeout_seconds: float, read_timeout_seconds: float) -> int:
    """Items per chunk so that a child finishes well inside its Lambda timeout, whatever the run size.

    A child runs `concurrency` requests per endpoint at once. The slowest request that still
    succeeds takes up to one read timeout (the endpoint's 60 s limit plus margin), so in the worst
    case every worker does one request per read timeout. The time a child may use for requests is
    its timeout minus one read timeout (the last request may start then) minus the write margin;
    with `rounds` = that time / read timeout, a chunk of `concurrency × rounds` items finishes even
    when every answer is as slow as allowed. Retries beyond that are cut by the child's `start_by`
    deadline: the items left are recorded as not attempted, which a resume picks up, so a child
    never reaches its timeout and nothing it did is lost.
    """
    usable = lambda_timeout_seconds - read_timeout_seconds - CHUNK_WRITE_MARGIN_SECONDS
    rounds = max(1, math.floor(usable / read_timeout_seconds))
    return max(1, min(MAX_CHUNK_ITEMS, concurrency * rounds))


def item_to_json(index: int, item: PromptItem) -> dict[str, Any]:
    return {"index": index, **asdict(item)}


def item_from_json(value: dict[str, Any]) -> tuple[int, PromptItem]:
    fields = {k: v for k, v in value.items() if k != "index"}
    return int(value["index"]), PromptItem(**fields)


def outcome_to_json(index: int, outcome: ItemOutcome) -> dict[str, Any]:
    return {"item": item_to_json(index, outcome.item), "a": asdict(outcome.a), "b": asdict(outcome.b)}


def outcome_from_json(value: dict[str, Any]) -> tuple[int, ItemOutcome]:
    index, item = item_from_json(value["item"])
    return index, ItemOutcome(item=item, a=Generation(**value["a"]), b=Generation(**value["b"]))


def split(indexed: list[tuple[int, PromptItem]], size: int) -> list[list[tuple[int, PromptItem]]]:
    """Consecutive chunks of at most `size` items, in order."""
    return [indexed[start : start + size] for start in range(0, len(indexed), size)]


def merge_outcomes(batches: Iterable[list[dict[str, Any]]]) -> dict[int, ItemOutcome]:
    """index -> the outcome to keep, over every chunk outcome of every execution of the run.

    `batches` come oldest first. An item whose both answers came back is never replaced (resume
    never asks for it again, and a retried child must not turn it into a failure); otherwise the
    latest attempt wins, so the manifest shows the most recent error.
    """
    kept: dict[int, ItemOutcome] = {}
    for batch in batches:
        for value in batch:
            index, outcome = outcome_from_json(value)
            previous = kept.get(index)
            if previous is None or not previous.ok:
                kept[index] = outcome
    return kept


def not_attempted(item: PromptItem, why: str) -> ItemOutcome:
    """The outcome of an item whose chunk never reported (its child failed or never ran)."""

    def failed() -> Generation:
        return Generation(
            status="failed",
            text=None,
            latency_ms=0,
            elapsed_ms=0,
            attempts=0,
            error=why,
            error_kind="ChunkFailed",
        )

    return ItemOutcome(item=item, a=failed(), b=failed())
