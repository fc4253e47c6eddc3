"""How much of a TGI endpoint's capacity the generation client uses, with the default settings.

The real generation path: boto3's sagemaker-runtime client (our `runtime_client`, botocore retries
off, our connection pool) pointed with `endpoint_url` at the TGI simulator STAND-IN
(`novajudge.local.tgi_sim`, in its own process on 127.0.0.1 so its threads do not compete with the
client's for the interpreter), through `generate_pairs` with `concurrency_a` / `concurrency_b` from
the deployment defaults (`Settings()`). Both endpoints are served at once, as in a run.

Printed per case: achieved prompts/s (each prompt answered by A and B) ÷ one endpoint's capacity
C / (L·(1 + β(C − 1))), next to the old setting as a baseline (4 in flight per endpoint:
`generate_pairs` with both maxima at 4), and the client-side overhead per request: the client's
latency minus the time the simulator held the request (HTTP, signing, parsing, our window), and
the client process's CPU time per request. Figures, no assertions (performance is measured here,
never asserted in tests).

    .venv/bin/python benchmarks/bench_generation.py [--prompts N] [--baseline-prompts N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from novajudge.config import Settings
from novajudge.generation.datasets import PromptItem
from novajudge.generation.endpoints import RetryPolicy, runtime_client
from novajudge.generation.manifest import ItemOutcome
from novajudge.generation.pool import AdaptiveLimit, generate_pairs
from novajudge.local.tgi_sim import SimConfig, simulated_run
from novajudge.run_request import RunState

ENDPOINT_A, ENDPOINT_B = "bench-model-a", "bench-model-b"


@dataclass(frozen=True)
class Case:
    name: str
    sim: SimConfig


CASES = (
    Case(
        "C=64, L=0.2 s, β=0.094 (TGI on ml.g5.12xlarge, fitted)",
        SimConfig(slots=64, base_latency=0.2, beta=0.094),
    ),
    Case("C=16, L=0.2 s, flat (β=0)", SimConfig(slots=16, base_latency=0.2, beta=0.0)),
)


class Simulator:
    """The simulator in its own process; stopped by its own pid."""

    def __init__(self, config: SimConfig, budget_seconds: float) -> None:
        args = [
            sys.executable,
            "-m",
            "novajudge.local.tgi_sim",
            "--slots",
            str(config.slots),
            "--latency",
            str(config.base_latency),
            "--beta",
            str(config.beta),
            "--max-seconds",
            str(budget_seconds),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.process.kill()
            raise SystemExit(f"the simulator did not start: {self.url!r}")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def make_run(settings: Settings, *, fixed: int | None = None) -> RunState:
    generation = {
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "concurrency_a": fixed or settings.concurrency_a,
        "concurrency_b": fixed or settings.concurrency_b,
        "max_failure_rate": settings.max_failure_rate,
    }
    return simulated_run("bench", ENDPOINT_A, ENDPOINT_B, generation)


def measure(case: Case, prompts: int, *, baseline: bool) -> dict[str, float]:
    settings = Settings()
    items = [PromptItem(prompt_id=f"p{i}", prompt=f"prompt {i}") for i in range(prompts)]
    expected = prompts / (0.25 * case.sim.capacity) if baseline else prompts / case.sim.capacity
    sim = Simulator(case.sim, budget_seconds=60 + 4 * expected)
    try:
        client = runtime_client(
            "us-east-1", endpoint_url=sim.url, aws_access_key_id="stand-in", aws_secret_access_key="stand-in"
        )
        retry = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.5, seed=0)
        run = make_run(settings, fixed=4 if baseline else None)
        limits: dict[str, AdaptiveLimit] = {}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes: list[ItemOutcome] = generate_pairs(run, items, runtime=client, retry=retry, limits=limits)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stats = sim.stats()["endpoints"]
    finally:
        sim.stop()
    generations = [g for o in outcomes for g in (o.a, o.b)]
    ok = [g for g in generations if g.status == "ok"]
    served = sum(s["served"] for s in stats.values())
    busy = sum(s["busy_seconds"] for s in stats.values())
    return {
        "ratio": prompts / wall / case.sim.capacity,
        "prompts_per_s": prompts / wall,
        "failed": len(generations) - len(ok),
        "overhead_ms": (sum(g.latency_ms for g in ok) / 1000 - busy) / max(served, 1) * 1000,
        "cpu_ms": cpu / max(len(generations), 1) * 1000,
        "peak_a": stats.get(ENDPOINT_A, {}).get("peak_held", 0),
        "peak_b": stats.get(ENDPOINT_B, {}).get("peak_held", 0),
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3000, help="prompts per case with the defaults")
    parser.add_argument("--baseline-prompts", type=int, default=600, help="prompts per baseline case")
    args = parser.parse_args()
    settings = Settings()
    print(
        f"defaults: concurrency_a={settings.concurrency_a}, concurrency_b={settings.concurrency_b} "
        "(baseline: the old 4 in flight per endpoint, generate_pairs with both maxima at 4); "
        "simulator = stand-in TGI on 127.0.0.1"
    )
    for case in CASES:
        print(f"\n{case.name}: capacity {case.sim.capacity:.2f} requests/s per endpoint")
        for label, baseline, prompts in (
            ("defaults", False, args.prompts),
            ("fixed 4 ", True, args.baseline_prompts),
        ):
            m = measure(case, prompts, baseline=baseline)
            print(
                f"  {label}: {prompts} prompts in {m['wall']:.1f} s = {m['prompts_per_s']:.2f} prompts/s → "
                f"{m['ratio']:.3f} of capacity; failed {m['failed']}; "
                f"peak held A/B {m['peak_a']}/{m['peak_b']}; "
                f"client overhead {m['overhead_ms']:.1f} ms/request wall, {m['cpu_ms']:.2f} ms/request CPU"
            )


if __name__ == "__main__":
    main()
