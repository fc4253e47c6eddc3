"""Benchmark: summarize a rubric judge archive of 100,000 judged prompts, beside a naive baseline.

Not a test: it prints figures. Why: the summarize Lambda has 15 minutes and at most 10 GB of
memory, and a user may evaluate a large prompt set. Two runs of the same `summarize()` on the same
seeded archive (3-6 criteria per judgement), each in a fresh child process so its peak memory is
its own:

* **ours**: the package as it is (`novajudge.metrics_cells` reads the `metrics` cells in batches,
  the tables are built column-wise);
* **naive**: the same `summarize()` with its parse and its per-judgement weighted scores replaced by
  what a straightforward implementation does: `ast.literal_eval` of every cell while walking the
  details with `DataFrame.iterrows`, one dict per table row, and the weighted scores recomputed
  with a `groupby(...).apply` per judgement. Everything else (labels, trust analyses, figure, HTML,
  parquet) is the same code, so the difference is the parse and the statistics alone.

Stage times come from wrapping the functions `summarize()` calls (parse = `read_flattened`;
statistics = `compute`, `model_scores` and the trust `analyse`); "end to end" is the whole call.
Wall and CPU seconds are both printed because this machine is shared; the two summaries are compared
to show the baseline computes the same numbers.

    .venv/bin/python benchmarks/bench_summarize.py [--rows 100000] [--max-prompts 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from novajudge.local.judge_archive import Criterion, Judgement, write_judge_archive

CRITERIA = [
    ("Factual accuracy", "scale"), ("Completeness", "scale"), ("Conciseness", "scale"), ("Clarity", "scale"),
    ("Relevance", "scale"), ("Grounded in the passage", "binary"), ("Safe", "binary"), ("Tone", "scale"),
]  # fmt: skip
CHILD_ENV = {"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
LABELS = ["A>B", "B>A", "A=B", "A=B (bothbad)", None]
STAGES = {  # stage -> the functions of novajudge.results.summarize it times
    "parse": ("read_flattened",),
    "statistics": ("compute", "model_scores", "analyse"),
    "figure": ("render_png",),
    "html": ("render_html",),
    "parquet": ("write_details",),
}


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


def manifest_for(rows: int) -> list[dict[str, Any]]:
    """Both orders of each prompt, as the pipeline sends them by default."""
    return [{"row": i, "prompt_id": f"q{i // 2}", "order": "AB" if i % 2 == 0 else "BA"} for i in range(rows)]


# ----------------------------------------------------------------------------- the naive baseline


def naive_read_flattened(source: Any, manifest: Any = None) -> Any:
    """The flattened tables the straightforward way: literal_eval per row, a dict per table row."""
    import numpy as np
    import pandas as pd

    from novajudge.results.parse import Flattened, load_judge_output
    from novajudge.verdicts import CRITERION_COLUMNS, PROMPT_COLUMNS, criterion_key, parse_label, to_model

    judge = load_judge_output(source)
    entries = {e["row"]: e for e in manifest or []}
    prompt_rows, criterion_rows = [], []
    for i, row in judge.details.iterrows():
        metrics = ast.literal_eval(row["metrics"])
        entry = entries.get(i, {})
        order, pid = entry.get("order", "AB"), str(entry.get("prompt_id", i))
        label = parse_label(metrics.get("predictions") or row.get("predictions")) or "error"
        position = {"A>B": "A", "B>A": "B", "A=B": "tie", "A=B (bothbad)": "bothbad"}.get(label, "error")
        prompt_rows.append({
            "row": i, "prompt_id": pid, "order": order, "prompt": row["full_prompt"], "response_A": "",
            "response_B": "", "label": label, "winner": to_model(position, order),
            "weighted_score_A": metrics.get("weighted_score_A", np.nan),
            "weighted_score_B": metrics.get("weighted_score_B", np.nan),
            "score_margin": metrics.get("score_margin", np.nan),
            "overall_justification": metrics.get("overall_justification", ""),
        })  # fmt: skip
        for name, c in (metrics.get("criteria_breakdown") or {}).items():
            scores = [float(c[f"score_{side}"]) for side in "AB"]
            norms = [s if c["type"] == "binary" else (s - 1) / 4 for s in scores]
            criterion_rows.append({
                "row": i, "prompt_id": pid, "order": order, "criterion": name,
                "criterion_key": criterion_key(name), "type": c["type"], "weight": float(c["weight"]),
                "score_A": scores[0], "score_B": scores[1], "norm_A": norms[0], "norm_B": norms[1],
                "justification_A": c.get("justification_A", ""),
                "justification_B": c.get("justification_B", ""),
            })  # fmt: skip
    prompts = pd.DataFrame(prompt_rows, columns=list(PROMPT_COLUMNS))
    criteria = pd.DataFrame(criterion_rows, columns=list(CRITERION_COLUMNS))
    return Flattened(judge=judge, prompts=prompts, criteria=criteria)


def naive_recompute_weighted(prompts: Any, criteria: Any) -> Any:
    """Each judgement's weighted scores, one pandas group at a time."""
    import pandas as pd

    out = []
    for row, group in criteria.groupby("row", sort=True):
        total = group["weight"].sum()
        out.append({
            "row": row, "weight_sum": total, "renormalised": abs(total - 1.0) > 1e-6,
            "ours_A": (group["weight"] * group["norm_A"]).sum() / total if total > 0 else float("nan"),
            "ours_B": (group["weight"] * group["norm_B"]).sum() / total if total > 0 else float("nan"),
        })  # fmt: skip
    columns = ["row", "weight_sum", "renormalised", "ours_A", "ours_B"]
    return pd.DataFrame(out, columns=columns).astype({"row": "int64", "renormalised": bool})


# ----------------------------------------------------------------------------- measuring (child)


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


def _timed(fn: Callable[..., Any], stage: str, seconds: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t0

    return wrapper


def measure(variant: str, archive: Path, out: Path, max_prompts: int, rows: int) -> dict[str, Any]:
    """One `summarize()` in this process, stage by stage; the naive variant patched in first."""
    import novajudge.results.numbers as numbers
    import novajudge.results.summarize as summarize_module

    if variant == "naive":
        summarize_module.read_flattened = naive_read_flattened
        numbers.recompute_weighted = naive_recompute_weighted
    seconds: dict[str, float] = {}
    for stage, names in STAGES.items():
        for name in names:
            setattr(summarize_module, name, _timed(getattr(summarize_module, name), stage, seconds))
    manifest = manifest_for(rows)
    base = peak_rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    summary = summarize_module.summarize(
        archive, out, "A", "B", manifest=manifest, max_report_prompts=max_prompts
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": seconds | {"end to end": wall},
        "cpu_seconds": cpu,
        "rss_after_imports_mib": base,
        "peak_rss_mib": peak_rss_mib(),
        "numbers": {k: summary[k] for k in ("ours", "rubric", "trust")},
    }


# ----------------------------------------------------------------------------- report (parent)


def _row(name: str, ours: float, naive: float, unit: str = "s") -> str:
    ratio = f"{naive / ours:6.1f}x" if ours > 0 else "     -"
    return f"{name:<26}{ours:>10.2f} {unit:<4}{naive:>10.2f} {unit:<4}{ratio}"


def same_numbers(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 (the baseline sums each judgement's weights in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_numbers(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-prompts", type=int, default=200, help="per-prompt HTML cap")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child mode: the archive to read
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=["ours", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.variant, args.measure, args.out, args.max_prompts, args.rows)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        judgements = make_judgements(args.rows, args.seed)
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        archive = write_judge_archive(Path(tmp), "rubric", judgements, "bench", "2026-11-23T10-00-00")
        write = time.perf_counter() - t0
        size = archive.stat().st_size / 2**20
        criteria_rows = sum(len(j.criteria) for j in judgements)
        del judgements
        result: dict[str, dict[str, Any]] = {}
        for variant in ("ours", "naive"):  # separate processes: each peak RSS is its run's alone
            done = subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--max-prompts", str(args.max_prompts),
                 "--measure", str(archive), "--out", str(Path(tmp) / variant), "--variant", variant],
                capture_output=True, text=True, check=True, env=CHILD_ENV,
            )  # fmt: skip
            result[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, naive = result["ours"], result["naive"]
    print(f"rows (judged prompts): {args.rows:,}; criteria rows: {criteria_rows:,}; seed {args.seed}")
    print(f"generate judgements: {gen:.2f} s; write_judge_archive: {write:.2f} s ({size:.1f} MiB archive)")
    print(f"{'':<26}{'ours':>15}{'naive':>15}{'naive/ours':>11}")
    for stage in (*STAGES, "end to end"):
        print(_row(stage, ours["seconds"].get(stage, 0.0), naive["seconds"].get(stage, 0.0)))
    print(_row("end to end, CPU", ours["cpu_seconds"], naive["cpu_seconds"]))
    print(_row("peak RSS", ours["peak_rss_mib"], naive["peak_rss_mib"], "MiB"))
    print(_row("RSS after imports", ours["rss_after_imports_mib"], naive["rss_after_imports_mib"], "MiB"))
    end = ours["seconds"]["end to end"]
    parse = ours["seconds"]["parse"]
    print(f"ours: {args.rows / end:,.0f} prompts/s end to end, parse {args.rows / parse:,.0f} prompts/s")
    same = same_numbers(ours["numbers"], naive["numbers"])
    print(f"same numbers in both summaries (ours, rubric, trust blocks): {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
