"""Benchmark: `novajudge demo` on a generated 10,000-prompt dataset, stage by stage.

Not a test: it prints figures. Why: a real evaluation set has thousands of prompts (SQuAD dev has
10,570), and the generation now fans out through a Step Functions Distributed Map (prepare ->
one child per chunk -> reduce). This runs exactly what `novajudge demo --dataset PATH.jsonl` runs
-- the synthesized templates in the local emulator (moto), the real handlers, the stand-in
endpoints and judge (labelled as such) -- and prints the wall time of each demo stage (synth,
deploy, upload, execution, download) and of each state of the execution (from its history), so
a regression in any stage shows. The stand-ins answer at once: the figures measure the pipeline's
own overhead (chunking, the Map, S3 round trips, reduce, the judge input, summarize), not model
latency. Seeded: the same prompts every run.

    .venv/bin/python benchmarks/bench_scale.py [--prompts 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from novajudge.local.demo import DemoOptions, run_demo

WORDS = [
    "river",
    "mountain",
    "energy",
    "protein",
    "market",
    "theory",
    "signal",
    "history",
    "language",
    "planet",
    "circuit",
    "harvest",
    "treaty",
    "engine",
    "climate",
    "museum",
    "algebra",
    "glacier",
    "vaccine",
    "orbit",
]


def write_dataset(path: Path, prompts: int, seed: int) -> None:
    """`prompts` lines of the user dataset format (`id`, `prompt`), seeded."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(prompts):
            topic = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
            out.write(json.dumps({"id": f"q{i:05d}", "prompt": f"Explain briefly: {topic}?"}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        dataset = work / "bench.jsonl"
        t0 = time.monotonic()
        write_dataset(dataset, args.prompts, args.seed)
        generated = time.monotonic() - t0
        options = DemoOptions(
            dataset=dataset,
            run_id="bench-scale",
            out=work / "results",
            poll_seconds=1,
            judge_seconds=0.0,
            timeout_seconds=args.timeout,
            seed=args.seed,
        )
        quiet = Console(file=open(work / "console.txt", "w"), width=120)  # noqa: SIM115 - closed at exit
        result = run_demo(options, quiet)
        quiet.file.close()
        summary_file = work / "results" / "bench-scale" / "summary.json"
        judged = (
            json.loads(summary_file.read_text())["ours"]["counts"]["total"]
            if summary_file.is_file()
            else None
        )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"novajudge demo --dataset: {args.prompts:,} prompts (stand-ins), status {result.status}")
    if not result.ok:
        print(f"  failed in {result.failed_state}: {result.error}: {(result.cause or '')[:300]}")
    print(f"  judged pairs in the summary: {judged}")
    print(f"  {'dataset written':<22}{generated:>9.1f} s")
    for stage, seconds in result.timings.items():
        print(f"  {'demo: ' + stage:<22}{seconds:>9.1f} s")
    print("  states of the execution (wall seconds, from its history):")
    for state, seconds in result.state_seconds.items():
        print(f"    {state:<24}{seconds:>9.1f} s")
    print(f"  peak memory of this process (emulator, handlers in-process): {peak_mb:,.0f} MB")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
