"""Benchmark: summarize a rubric judge archive of 100,000 judged prompts (not a test; prints figures).

Why: the summarize Lambda has 15 minutes and at most 10 GB of memory, and a user may evaluate a large
prompt set. This measures each stage (parse, statistics, figure, HTML, parquet) on seeded synthetic
judgements with 3-6 criteria each, in a fresh child process so the peak memory (ru_maxrss) is the
summarize step's alone, not the data generator's.

    .venv/bin/python benchmarks/bench_summarize.py [--rows 100000] [--max-prompts 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from novajudge.judge.archive import Criterion, Judgement, write_judge_archive  # noqa: E402

CRITERIA = [
    ("Factual accuracy", "scale"), ("Completeness", "scale"), ("Conciseness", "scale"), ("Clarity", "scale"),
    ("Relevance", "scale"), ("Grounded in the passage", "binary"), ("Safe", "binary"), ("Tone", "scale"),
]  # fmt: skip
CHILD_ENV = {"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
LABELS = ["A>B", "B>A", "A=B", "A=B (bothbad)", None]


def make_judgements(rows: int, seed: int) -> list[Judgement]:
    """Seeded synthetic judgements: B slightly better, 2 % inference errors, 3-6 criteria each."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        label = rng.choices(LABELS, [35, 45, 12, 6, 2])[0]
        crit = []
        if label is not None:
            chosen = rng.sample(CRITERIA, rng.randint(3, 6))
            raw = [rng.uniform(0.5, 2.0) for _ in chosen]
            total = sum(raw)
            for (name, ctype), w in zip(chosen, raw, strict=True):
                sa = rng.random() < 0.6 if ctype == "binary" else rng.randint(1, 5)
                sb = rng.random() < 0.7 if ctype == "binary" else rng.randint(2, 5)
                crit.append(Criterion(name, f"How well the answer does: {name}", ctype, w / total, sa, sb,
                                      f"A's answer on {name.lower()} for item {i}.",
                                      f"B's answer on {name.lower()} for item {i}."))  # fmt: skip
        prompt = f"Question {i}: what does passage {i % 997} say about topic {i % 31}?"
        answer_a = f"Model A's answer to question {i}. " * 3
        answer_b = f"Model B's answer to question {i}. " * 4
        out.append(Judgement(prompt, answer_a, answer_b, label, crit, f"Overall reasoning for item {i}."))
    return out


def measure(archive: Path, out: Path, max_prompts: int, rows: int) -> dict[str, float]:
    """Run each stage as summarize does, timed; returns seconds per stage and the peak RSS."""
    import numpy as np

    from novajudge.results.details import write_details
    from novajudge.results.figure import render_png
    from novajudge.results.numbers import compute, model_scores
    from novajudge.results.parse import read_flattened
    from novajudge.results.report import render_html

    manifest = [
        {"row": i, "prompt_id": f"q{i // 2}", "order": "AB" if i % 2 == 0 else "BA"} for i in range(rows)
    ]
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    flat = read_flattened(archive, manifest)
    t["parse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    stats = compute(flat.prompts, flat.criteria, flat.judge.judge_metrics, flat.judge.variant)
    scores = model_scores(flat.prompts, flat.criteria)
    t["stats"] = time.perf_counter() - t0
    summary = {**stats, "variant": "rubric", "headline": stats["ours"]["verdict_text"]}
    t0 = time.perf_counter()
    margins = scores["margin"].to_numpy()
    png = render_png(summary, margins[np.isfinite(margins)], "A", "B")
    t["figure"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = render_html(summary, flat.prompts, flat.criteria, scores, png, "A", "B", max_prompts=max_prompts)
    t["html"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    write_details(out / "details.parquet", flat.prompts, flat.criteria)
    t["parquet"] = time.perf_counter() - t0
    t["criteria_rows"] = float(len(flat.criteria))
    t["html_bytes"] = float(len(page.encode()))
    return t


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM (Linux) resets at exec; ru_maxrss would also count
    the parent's peak from before the fork, which here is the data generator's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_total(archive: Path, out: Path, max_prompts: int, rows: int) -> dict[str, float]:
    """summarize() alone in this process: wall time and the process's peak RSS."""
    from novajudge.results.summarize import summarize

    manifest = [
        {"row": i, "prompt_id": f"q{i // 2}", "order": "AB" if i % 2 == 0 else "BA"} for i in range(rows)
    ]
    base = peak_rss_mib()
    t0 = time.perf_counter()
    summarize(archive, out, "A", "B", manifest=manifest, max_report_prompts=max_prompts)
    return {
        "summarize_total": time.perf_counter() - t0,
        "rss_after_imports_mib": base,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-prompts", type=int, default=200, help="per-prompt HTML cap")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child mode: the archive to read
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["stages", "total"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        fn = measure if args.mode == "stages" else measure_total
        print(json.dumps(fn(args.measure, args.out, args.max_prompts, args.rows)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        judgements = make_judgements(args.rows, args.seed)
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        archive = write_judge_archive(Path(tmp), "rubric", judgements, "bench", "2026-11-23T10-00-00")
        write = time.perf_counter() - t0
        size = archive.stat().st_size / 2**20
        del judgements
        t: dict[str, float] = {}
        for mode in ("stages", "total"):  # separate processes: the peak RSS is summarize()'s alone
            done = subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--max-prompts", str(args.max_prompts),
                 "--measure", str(archive), "--out", str(Path(tmp) / mode), "--mode", mode],
                capture_output=True, text=True, check=True, env=CHILD_ENV,
            )  # fmt: skip
            t |= json.loads(done.stdout.strip().splitlines()[-1])
    rows = args.rows
    print(f"rows (judged prompts): {rows:,}; criteria rows: {int(t['criteria_rows']):,}; seed {args.seed}")
    print(f"generate judgements: {gen:.2f} s; write_judge_archive: {write:.2f} s ({size:.1f} MiB archive)")
    for stage in ("parse", "stats", "figure", "html", "parquet"):
        print(f"{stage:>8}: {t[stage]:7.2f} s  ({rows / t[stage]:,.0f} prompts/s)")
    ps = t["parse"] + t["stats"]
    print(f"parse + stats: {ps:.2f} s ({rows / ps:,.0f} prompts/s)")
    print(
        f"summarize() end to end: {t['summarize_total']:.2f} s ({rows / t['summarize_total']:,.0f} prompts/s)"
    )
    print(f"HTML size with {args.max_prompts} prompts shown: {t['html_bytes'] / 2**20:.2f} MiB")
    print(
        f"peak RSS of a process running summarize() alone: {t['peak_rss_mib']:.0f} MiB "
        f"({t['rss_after_imports_mib']:.0f} MiB after imports)"
    )


if __name__ == "__main__":
    main()
