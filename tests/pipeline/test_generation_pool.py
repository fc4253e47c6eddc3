"""`generate_pairs`: per-model windows, `share`, AIMD, against the TGI simulator (stand-in) on 127.0.0.1.

The simulator is an HTTP server the real boto3 client talks to (`endpoint_url`), so what is counted
(peak requests held per endpoint, refusals) is what reached it. Latencies are tens of milliseconds;
every assertion is about counts and windows, never about time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from novajudge.generation.datasets import PromptItem
from novajudge.generation.endpoints import ErrorInfo, RetryPolicy, runtime_client
from novajudge.generation.pool import AdaptiveLimit, AdaptiveTuning, generate_pairs, per_child
from novajudge.local.tgi_sim import SimConfig, TGISimulator, simulated_run
from novajudge.run_request import RunState
from novajudge.steps.environment import ChunkEnvironment
from novajudge.steps.generate import generate_chunk

ENDPOINT_A, ENDPOINT_B = "sim-model-a", "sim-model-b"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, seed=7)


def make_run(concurrency_a: int, concurrency_b: int, max_failure_rate: float = 0.2) -> RunState:
    generation = {
        "concurrency_a": concurrency_a,
        "concurrency_b": concurrency_b,
        "max_failure_rate": max_failure_rate,
        "max_new_tokens": 16,
        "temperature": 0.0,
    }
    return simulated_run("pool-test", ENDPOINT_A, ENDPOINT_B, generation)


def items(n: int) -> list[PromptItem]:
    return [PromptItem(prompt_id=f"q{i:03d}", prompt=f"question {i}") for i in range(n)]


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[TGISimulator]:
    config: SimConfig = request.param
    with TGISimulator(config) as sim:
        yield sim


def client_for(sim: TGISimulator) -> Any:
    return runtime_client(
        "us-east-1", endpoint_url=sim.url, aws_access_key_id="stand-in", aws_secret_access_key="stand-in"
    )


# -- the window's arithmetic, by hand ----------------------------------------------------------------


def test_aimd_arithmetic() -> None:
    limit = AdaptiveLimit(8, AdaptiveTuning(latency_limit_seconds=60.0))  # slow from 45 s
    overload = ErrorInfo("ModelError 424 (original 429)", "busy", transient=True, overload=True)
    other = ErrorInfo("ModelError 424 (original 422)", "bad", transient=False, overload=False)
    assert limit.window == 8
    t1, t2 = limit.acquire(), limit.acquire()
    limit.release(t1, seconds=0.1, error=overload)
    assert limit.window == 4  # 8 × 1/2
    limit.release(t2, seconds=0.1, error=overload)
    assert limit.window == 4  # same window's refusal: not halved twice
    t3 = limit.acquire()
    limit.release(t3, seconds=0.1, error=overload)
    assert limit.window == 2  # a request of the new window: halved again
    for _ in range(2):  # one window's worth (2) of healthy answers: +1
        limit.release(limit.acquire(), seconds=1.0, error=None)
    assert limit.window == 3
    for _ in range(3):
        limit.release(limit.acquire(), seconds=1.0, error=None)
    assert limit.window == 4
    limit.release(limit.acquire(), seconds=1.0, error=other)  # a permanent, non-overload error: no change
    assert limit.window == 4
    limit.release(limit.acquire(), seconds=45.0, error=None)  # approaching 60 s: × 3/4
    assert limit.window == 3
    for _ in range(200):
        limit.release(limit.acquire(), seconds=1.0, error=None)
    assert limit.window == 8  # grows back, never above the maximum
    for _ in range(10):
        limit.release(limit.acquire(), seconds=0.1, error=overload)
    assert limit.window == 1 and limit.in_flight == 0  # never below one


def test_share_divides_the_budget() -> None:
    assert [per_child(64, s) for s in (1, 2, 3, 64, 100)] == [64, 32, 21, 1, 1]
    with pytest.raises(ValueError, match="share=0"):
        per_child(64, 0)


# -- against the simulator ----------------------------------------------------------------------------


@pytest.mark.parametrize("simulator", [SimConfig(slots=100, base_latency=0.15, beta=0.0)], indirect=True)
@pytest.mark.parametrize(("share", "peak_a", "peak_b"), [(1, 6, 3), (3, 2, 1)])
def test_in_flight_per_model_respects_its_limit_and_share(
    simulator: TGISimulator, share: int, peak_a: int, peak_b: int
) -> None:
    run = make_run(concurrency_a=6, concurrency_b=3)
    batch = items(18)
    limits: dict[str, AdaptiveLimit] = {}
    outcomes = generate_pairs(
        run, batch, runtime=client_for(simulator), retry=FAST_RETRY, share=share, limits=limits
    )
    assert [o.item.prompt_id for o in outcomes] == [i.prompt_id for i in batch]
    assert all(o.a.status == o.b.status == "ok" for o in outcomes)
    stats = simulator.stats()["endpoints"]
    # 6 // 1 = 6 and 3 // 1 = 3; 6 // 3 = 2 and 3 // 3 = 1: the simulator saw exactly that many at once.
    assert (stats[ENDPOINT_A]["peak_held"], stats[ENDPOINT_B]["peak_held"]) == (peak_a, peak_b)
    assert (limits["A"].peak, limits["B"].peak) == (peak_a, peak_b)
    assert stats[ENDPOINT_A]["served"] == stats[ENDPOINT_B]["served"] == 18


@pytest.mark.parametrize(
    "simulator", [SimConfig(slots=4, base_latency=0.02, beta=0.0, reject_above=8)], indirect=True
)
def test_adaptive_window_backs_off_on_429s(simulator: TGISimulator) -> None:
    """The simulator refuses (429 in a ModelError) whatever arrives while 8 are held; the client is
    allowed 32 per model. The window must come down to what the endpoint takes, so the run finishes
    within its failure tolerance and refusals stay a small share of the requests."""
    run = make_run(concurrency_a=32, concurrency_b=32, max_failure_rate=0.2)
    batch = items(240)
    limits: dict[str, AdaptiveLimit] = {}
    outcomes = generate_pairs(run, batch, runtime=client_for(simulator), retry=FAST_RETRY, limits=limits)
    failed = sum(1 for o in outcomes if not o.ok)
    assert failed / len(batch) <= run.generation.max_failure_rate
    stats = simulator.stats()["endpoints"]
    for which, name in (("A", ENDPOINT_A), ("B", ENDPOINT_B)):
        s = stats[name]
        assert s["peak_held"] <= 8  # the simulator's own bound (refusing above it)
        # At least one halving. (Where the window ends is not asserted: on a loaded machine the client
        # itself may be too slow to fill more than 8, and then the window rightly grows again.)
        assert limits[which].decreases >= 1
        # Every refusal is a retry the run paid for; a window stuck at 32 would be refused about
        # 3 times for each request served (24 of 32 over the 8 held). Measured: ~0.05 adaptive,
        # 0.4-0.7 with the window held at 32.
        assert s["refused"] <= s["served"] // 5, s


@pytest.mark.parametrize("simulator", [SimConfig(slots=64, base_latency=0.01, beta=1.0)], indirect=True)
def test_window_backs_off_when_answers_approach_the_time_limit(simulator: TGISimulator) -> None:
    """β = 1: an answer takes 10 ms × (batch size). With a 100 ms limit (slow from 75 ms) a window
    of 32 answers in ~320 ms, every time: the window must shrink until answers come back in time."""
    run = make_run(concurrency_a=32, concurrency_b=32)
    limits: dict[str, AdaptiveLimit] = {}
    tuning = AdaptiveTuning(latency_limit_seconds=0.1)
    outcomes = generate_pairs(
        run, items(200), runtime=client_for(simulator), retry=FAST_RETRY, tuning=tuning, limits=limits
    )
    assert all(o.ok for o in outcomes)
    for which in ("A", "B"):
        assert limits[which].decreases >= 3  # 32 → 24 → 18 → 13 at least
        assert limits[which].window < 16


def test_a_slot_given_back_unused_teaches_the_window_nothing() -> None:
    """The time budget runs out while an attempt waits for a slot: the item is NotAttempted, the
    slot is returned, and the window neither grows (nothing was answered) nor shrinks."""
    from novajudge.generation.endpoints import EndpointInvoker

    now = [0.0]

    class SlowGate(AdaptiveLimit):
        def acquire(self) -> Any:
            ticket = super().acquire()
            now[0] += 100.0  # waited past start_by for the slot
            return ticket

    gate = SlowGate(4)
    gate.limit = 2.0  # below its maximum: two healthy answers would grow it to 3
    invoker = EndpointInvoker(
        None, "ep", max_new_tokens=1, temperature=0.0, clock=lambda: now[0], start_by=50.0, gate=gate
    )
    for _ in range(2):
        now[0] = 0.0
        result = invoker.generate("p1", "x")
        assert (result.status, result.attempts, result.error_kind) == ("failed", 0, "NotAttempted")
    assert (gate.window, gate.in_flight) == (2, 0)


def test_simulator_model_and_bounds() -> None:
    """The simulator's own arithmetic (by hand) and its bounds: 127.0.0.1 only, a request budget."""
    config = SimConfig(slots=64, base_latency=0.2, beta=0.094)
    assert config.latency(1) == pytest.approx(0.2)
    assert config.latency(64) == pytest.approx(0.2 * (1 + 0.094 * 63))  # 1.3844 s
    assert config.capacity == pytest.approx(64 / 1.3844, rel=1e-4)  # 46.23 requests/s
    assert SimConfig(slots=16, base_latency=0.2, beta=0.0).capacity == pytest.approx(80.0)
    with TGISimulator(SimConfig(slots=2, base_latency=0.001, beta=0.0, max_requests=3)) as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        client = client_for(sim)
        run = make_run(concurrency_a=1, concurrency_b=1)
        outcomes = generate_pairs(run, items(2), runtime=client, retry=FAST_RETRY)
        # 4 requests against a budget of 3: the fourth is refused as a (permanent) ValidationError.
        generations = [g for o in outcomes for g in (o.a, o.b)]
        assert sorted(g.status for g in generations) == ["failed", "ok", "ok", "ok"]
        assert [g.error_kind for g in generations if g.status == "failed"] == ["ValidationError"]
        assert sim.stats()["requests"] == 4


class _ChunkStore:
    """The two S3 calls a Map child makes (read its chunk, write its outcomes), in memory."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Key])}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = Body
        return {}


@pytest.mark.parametrize("simulator", [SimConfig(slots=100, base_latency=0.15, beta=0.0)], indirect=True)
@pytest.mark.parametrize(("descriptor_share", "peak_a", "peak_b"), [(None, 6, 3), (3, 2, 1)])
def test_a_map_child_takes_its_share_of_each_models_window(
    simulator: TGISimulator, descriptor_share: int | None, peak_a: int, peak_b: int
) -> None:
    """The chunk step passes its descriptor's `share` on: with 3 children at once, a child keeps
    6 // 3 = 2 requests at A and 3 // 3 = 1 at B (by hand); without one, the whole 6 and 3."""
    run = make_run(concurrency_a=6, concurrency_b=3)
    key = f"runs/{run.run_id}/generation/chunks/exec/chunk-00000.json"
    values = [{"index": i, "prompt_id": f"p{i}", "prompt": f"prompt {i}"} for i in range(12)]
    store = _ChunkStore({key: json.dumps(values).encode()})
    chunk: dict[str, Any] = {"index": 0, "key": key, "items": 12}
    if descriptor_share is not None:
        chunk["share"] = descriptor_share
    counts = generate_chunk(
        {"run": run.model_dump(mode="json"), "chunk": chunk},
        ChunkEnvironment(retry=FAST_RETRY),
        s3=store,
        runtime=client_for(simulator),
    )
    assert counts == {"chunk": 0, "items": 12, "ok": 12}
    stats = simulator.stats()["endpoints"]
    assert (stats[ENDPOINT_A]["peak_held"], stats[ENDPOINT_B]["peak_held"]) == (peak_a, peak_b)
