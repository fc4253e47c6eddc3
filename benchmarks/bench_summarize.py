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
statistics = `analysed`: our numbers, the trust analysis and the figure's panels of our numbers;
figure | parquet = `figure_and_details`: the figure finished and drawn while the parquet is
encoded); "end to end" is the whole call. At 100,000 rows summarize uses two cores
(`novajudge.parallel`): a forked worker reads every other slice of rows, another analyses the
trust while the numbers are computed and their panels drawn, a third encodes the parquet. CPU seconds are
the measured process's own (not its workers'), and memory is printed twice: the process's peak
RSS, and the peak of the PSS summed over it and its workers, which is what the machine holds.
The manifest is the one the pipeline writes (each judge row with its prompt and the two
responses as sent), so the prompt texts come from it, as in a run. Wall and CPU seconds are both
printed because this machine is shared; the two summaries are compared to show the baseline
computes the same numbers.

The naive run is sampled by default (`--naive-rows 10000`): at 100,000 rows it alone takes about
ten minutes, which made the benchmark too slow to run while working. Why sampling is fair: the two
runs differ only in parse and statistics, whose naive work is per row (one `literal_eval`, one
dict, one `groupby` group per judgement), so those two stages are measured on the first
`--naive-rows` judgements and scaled by rows / naive-rows; the other stages run the same code as
ours, so the naive column shows ours' full-size figures for them, and its end to end is the sum.
The output says when it is sampled; its peak memory is the sample's own (not scaled), and the
"same numbers" check then compares ours and naive on the sample. `--naive-rows` equal to
`--rows` runs the real baseline at full size (about ten minutes), 0 skips it.

    .venv/bin/python benchmarks/bench_summarize.py [--rows 100000] [--naive-rows 10000]
        [--max-prompts 200] [--seed 1]
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
    "statistics": ("analysed",),
    "figure | parquet": ("figure_and_details",),
    "html": ("render_html",),
}
#: Seconds between two samples of the measured processes' memory. Not shorter: reading a process's
#: smaps_rollup takes its memory-map lock, which its page faults wait for; sampling every 20 ms
#: made the measured run 2.5 s slower, every 0.25 s changes nothing measurable and finds the same
#: peak (the phases that make it last seconds).
MEMORY_SAMPLE_SECONDS = 0.25


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
        out.append(Judgement(*texts_of(i), label, crit, f"Overall reasoning for item {i}."))
    return out


def texts_of(row: int) -> tuple[str, str, str]:
    """Row `row`'s prompt and the two responses as sent (response_A first)."""
    prompt = f"Question {row}: what does passage {row % 997} say about topic {row % 31}?"
    return prompt, f"Model A's answer to question {row}. " * 3, f"Model B's answer to question {row}. " * 4


def manifest_for(rows: int) -> list[dict[str, Any]]:
    """The generation manifest's judge rows as the pipeline writes them (novajudge.generation.manifest):
    both orders of each prompt, each row with the prompt and the two responses as sent."""
    return [
        {"row": i, "prompt_id": f"q{i // 2}", "order": "AB" if i % 2 == 0 else "BA",
         **dict(zip(("prompt", "response_A", "response_B"), texts_of(i), strict=True))}
        for i in range(rows)
    ]  # fmt: skip


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
            "row": i, "prompt_id": pid, "order": order, "prompt": entry.get("prompt", row["full_prompt"]),
            "response_A": entry.get("response_A", ""), "response_B": entry.get("response_B", ""),
            "label": label, "winner": to_model(position, order),
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


def _run(variant: str, archive: Path, out: Path, rows: int, max_prompts: int) -> dict[str, Any]:
    """One measured `summarize()` in a fresh process, so its peak memory is its run's alone.

    Its peak RSS (VmHWM) covers that process only; summarize's forked workers share its pages
    copy-on-write, so their RSS would count those pages twice. What the machine holds is the sum
    of the proportional set sizes (PSS: a shared page divided among its sharers) of the process
    and its workers, sampled here every `MEMORY_SAMPLE_SECONDS`.
    """
    command = [sys.executable, __file__, "--rows", str(rows), "--max-prompts", str(max_prompts),
               "--measure", str(archive), "--out", str(out), "--variant", variant]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=CHILD_ENV) as child:
        peak_pss = 0.0
        while child.poll() is None:
            peak_pss = max(peak_pss, _tree_pss_mib(child.pid))
            time.sleep(MEMORY_SAMPLE_SECONDS)
        stdout = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"the measured {variant} run failed (exit {child.returncode})")
    return json.loads(stdout.strip().splitlines()[-1]) | {"peak_pss_mib": peak_pss}


def _tree_pss_mib(pid: int) -> float:
    """PSS of `pid` and its descendants now, in MiB (0 for a process that has just ended)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
        todo.extend(int(c) for c in children)
    return total / 1024


def scaled_naive(naive: dict[str, Any], ours: dict[str, Any], factor: float) -> dict[str, Any]:
    """The naive run at full size from its sample: parse and statistics scaled by `factor`, the
    other stages (the same code in both runs) taken from ours at full size."""
    seconds = dict(ours["seconds"])
    for stage in ("parse", "statistics"):
        seconds[stage] = naive["seconds"].get(stage, 0.0) * factor
    seconds["end to end"] = ours["seconds"]["end to end"] + sum(
        seconds[s] - ours["seconds"].get(s, 0.0) for s in ("parse", "statistics")
    )
    return naive | {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=10_000,
                        help="rows for the naive baseline (scaled to --rows); 0 skips it")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-prompts", type=int, default=200, help="per-prompt HTML cap")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child mode: the archive to read
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=["ours", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.variant, args.measure, args.out, args.max_prompts, args.rows)))
        return
    naive_rows = min(max(args.naive_rows, 0), args.rows)
    sampled = 0 < naive_rows < args.rows
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        judgements = make_judgements(args.rows, args.seed)
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        archive = write_judge_archive(Path(tmp), "rubric", judgements, "bench", "2026-11-23T10-00-00")
        write = time.perf_counter() - t0
        size = archive.stat().st_size / 2**20
        criteria_rows = sum(len(j.criteria) for j in judgements)
        sample = archive
        if sampled:
            sample = write_judge_archive(
                Path(tmp) / "sample", "rubric", judgements[:naive_rows], "bench", "2026-11-23T10-00-00"
            )
        del judgements
        ours = _run("ours", archive, Path(tmp) / "ours", args.rows, args.max_prompts)
        naive = check = None
        if naive_rows:
            naive = _run("naive", sample, Path(tmp) / "naive", naive_rows, args.max_prompts)
            check = ours
            if sampled:  # ours on the same sample, to compare the numbers
                check = _run("ours", sample, Path(tmp) / "check", naive_rows, args.max_prompts)
    print(f"rows (judged prompts): {args.rows:,}; criteria rows: {criteria_rows:,}; seed {args.seed}")
    print(f"generate judgements: {gen:.2f} s; write_judge_archive: {write:.2f} s ({size:.1f} MiB archive)")
    end = ours["seconds"]["end to end"]
    parse = ours["seconds"]["parse"]
    if naive is None:
        print(f"{'':<26}{'ours':>15}   (naive baseline skipped: --naive-rows 0)")
        for stage in (*STAGES, "end to end"):
            print(f"{stage:<26}{ours['seconds'].get(stage, 0.0):>10.2f} s")
        print(f"{'end to end, CPU':<26}{ours['cpu_seconds']:>10.2f} s")
        print(f"{'peak RSS':<26}{ours['peak_rss_mib']:>10.2f} MiB")
        print(f"{'peak PSS, with workers':<26}{ours['peak_pss_mib']:>10.2f} MiB")
        print(f"ours: {args.rows / end:,.0f} prompts/s end to end, parse {args.rows / parse:,.0f} prompts/s")
        return
    assert check is not None
    shown = scaled_naive(naive, ours, args.rows / naive_rows) if sampled else naive
    label = "naive*" if sampled else "naive"
    print(f"{'':<26}{'ours':>15}{label:>15}{'naive/ours':>11}")
    for stage in (*STAGES, "end to end"):
        print(_row(stage, ours["seconds"].get(stage, 0.0), shown["seconds"].get(stage, 0.0)))
    if sampled:
        cpu = f"{ours['cpu_seconds']:>10.2f} s   (naive sample: {naive['cpu_seconds']:.2f} s)"
        print(f"{'end to end, CPU':<26}{cpu}")
    else:
        print(_row("end to end, CPU", ours["cpu_seconds"], shown["cpu_seconds"]))
    print(_row("peak RSS", ours["peak_rss_mib"], shown["peak_rss_mib"], "MiB"))
    print(_row("peak PSS, with workers", ours["peak_pss_mib"], shown["peak_pss_mib"], "MiB"))
    print(_row("RSS after imports", ours["rss_after_imports_mib"], shown["rss_after_imports_mib"], "MiB"))
    if sampled:
        factor = args.rows / naive_rows
        print(
            f"* naive SAMPLED: run on the first {naive_rows:,} judgements (its parse "
            f"{naive['seconds']['parse']:.2f} s, statistics {naive['seconds']['statistics']:.2f} s), "
            f"those two stages x{factor:g}; figure, html, parquet are ours at full size (same code); "
            f"peak RSS is the sample's. --naive-rows {args.rows} runs it in full."
        )
    print(f"ours: {args.rows / end:,.0f} prompts/s end to end, parse {args.rows / parse:,.0f} prompts/s")
    same = same_numbers(check["numbers"], naive["numbers"])
    where = f" (on the {naive_rows:,}-row sample)" if sampled else ""
    print(f"same numbers in both summaries (ours, rubric, trust blocks){where}: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
