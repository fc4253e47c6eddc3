"""Both endpoints kept busy without overload: per-model, adaptive number of requests in flight.

TGI batches the requests it holds continuously, so an endpoint's throughput grows with the number
in flight until its GPUs saturate; past that point requests only queue, latency grows towards the
60 s InvokeEndpoint limit, and TGI refuses what exceeds its `--max-concurrent-requests` with 429
(reaching us as `ModelError` 424). So each model gets its own window (A and B saturate at different
points), the window starts at the configured maximum and adapts like TCP's congestion window
(AIMD): it halves on an overload signal (ModelError carrying 429/503, ThrottlingException) and
shrinks by a quarter when an answer took close to the 60 s limit, and it grows by one request per
window's worth of healthy answers, never above the configured maximum.

`share` is how many generate calls run at once against the same endpoints (the Map's children):
each takes `maximum // share` of the per-model budget, so together they never exceed it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from novajudge.generation.datasets import PromptItem
from novajudge.generation.endpoints import (
    INVOKE_LIMIT_SECONDS,
    EndpointInvoker,
    ErrorInfo,
    Generation,
    RetryPolicy,
)
from novajudge.generation.manifest import ItemOutcome
from novajudge.run_request import RunState


@dataclass(frozen=True)
class AdaptiveTuning:
    """How the window reacts. Defaults for the real endpoints; tests shrink `latency_limit_seconds`
    so that a simulator with millisecond latencies can exercise the latency back-off."""

    #: Multiplicative decrease on an overload signal (TCP's 1/2).
    overload_factor: float = 0.5
    #: Multiplicative decrease when an answer took `latency_fraction` of the limit or more: gentler,
    #: since the endpoint still answers; enough to pull a 60 s request back to ~45 s within a few.
    latency_factor: float = 0.75
    #: An answer slower than this share of the limit counts as "approaching" it: at 0.75 of 60 s,
    #: one more request per batch (each adds ~β ≈ 9 % per-token latency on TGI) still fits.
    latency_fraction: float = 0.75
    latency_limit_seconds: float = INVOKE_LIMIT_SECONDS

    @property
    def slow_seconds(self) -> float:
        return self.latency_fraction * self.latency_limit_seconds


@dataclass
class _Ticket:
    epoch: int


@dataclass
class AdaptiveLimit:
    """An AIMD window of requests in flight to one endpoint; an `AttemptGate` for `EndpointInvoker`.

    `epoch` counts decreases: a signal from a request admitted before the last decrease reports on a
    window that no longer exists, so it does not shrink the window again (one burst of 429s from one
    over-full window halves it once, not once per refused request).
    """

    maximum: int
    tuning: AdaptiveTuning = field(default_factory=AdaptiveTuning)
    limit: float = 0.0
    in_flight: int = 0
    epoch: int = 0
    peak: int = 0
    decreases: int = 0
    _healthy: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        if self.maximum < 1:
            raise ValueError(f"maximum={self.maximum}: at least one request must be allowed in flight")
        self.limit = float(self.maximum)

    @property
    def window(self) -> int:
        return max(1, int(self.limit))

    def acquire(self) -> _Ticket:
        with self._cond:
            while self.in_flight >= self.window:
                self._cond.wait()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return _Ticket(self.epoch)

    def release(self, ticket: _Ticket, *, seconds: float, error: ErrorInfo | None, sent: bool = True) -> None:
        with self._cond:
            self.in_flight -= 1
            if not sent:
                pass  # nothing was asked of the endpoint: nothing learnt about it
            elif error is not None and error.overload:
                self._decrease(ticket, self.tuning.overload_factor)
            elif error is None and seconds >= self.tuning.slow_seconds:
                self._decrease(ticket, self.tuning.latency_factor)
            elif error is None:
                self._healthy += 1
                if self._healthy >= self.window and self.limit < self.maximum:
                    self.limit = min(float(self.maximum), self.limit + 1)
                    self._healthy = 0
            self._cond.notify_all()

    def _decrease(self, ticket: _Ticket, factor: float) -> None:
        if ticket.epoch != self.epoch:
            return
        self.limit = max(1.0, self.limit * factor)
        self.epoch += 1
        self.decreases += 1
        self._healthy = 0


def per_child(maximum: int, share: int) -> int:
    """One generate call's part of a model's in-flight budget when `share` calls run at once."""
    if share < 1:
        raise ValueError(f"share={share}: the number of generate calls running at once is at least 1")
    return max(1, maximum // share)


def generate_pairs(
    run: RunState,
    items: list[PromptItem],
    *,
    runtime: Any,
    retry: RetryPolicy,
    start_by: float | None = None,
    share: int = 1,
    tuning: AdaptiveTuning | None = None,
    limits: dict[str, AdaptiveLimit] | None = None,
) -> list[ItemOutcome]:
    """Both endpoints at once, each with its own adaptive window; one `ItemOutcome` per item, in order.

    `run.generation.concurrency_a` / `concurrency_b` are the per-model maxima over all `share`
    concurrent calls. `limits` (optional, filled in when given as an empty dict) exposes each model's
    window afterwards, for tests and the benchmark. Retries, their backoff and the transient /
    permanent split stay those of `EndpointInvoker`; the window only decides when an attempt starts.
    """
    options = run.generation
    tuning = tuning or AdaptiveTuning()
    maxima = {
        "A": per_child(options.concurrency_a, share),
        "B": per_child(options.concurrency_b, share),
    }
    windows = {which: AdaptiveLimit(maximum, tuning) for which, maximum in maxima.items()}
    if limits is not None:
        limits.update(windows)
    invokers = {
        which: EndpointInvoker(
            runtime,
            endpoint,
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
            retry=retry,
            start_by=start_by,
            gate=windows[which],
        )
        for which, endpoint in (("A", run.endpoint_a), ("B", run.endpoint_b))
    }
    futures: dict[str, list[Future[Generation]]] = {}
    # One thread per request the window may ever allow: a thread waiting for a slot costs little,
    # and the window (not the pool) decides how many requests are out.
    with (
        ThreadPoolExecutor(max_workers=maxima["A"], thread_name_prefix="model-a") as pool_a,
        ThreadPoolExecutor(max_workers=maxima["B"], thread_name_prefix="model-b") as pool_b,
    ):
        for which, pool in (("A", pool_a), ("B", pool_b)):
            invoker = invokers[which]
            futures[which] = [pool.submit(invoker.generate, item.prompt_id, item.prompt) for item in items]
        return [
            ItemOutcome(item=item, a=fa.result(), b=fb.result())
            for item, fa, fb in zip(items, futures["A"], futures["B"], strict=True)
        ]
