"""`summarize`: the judge's output archive in, four files a user can trust out.

Used by the summarize Lambda and by `novajudge summarize`. Writes into `out_dir`:
`summary.json`, `details.parquet`, `report.png`, `report.html`, and returns the summary dict.

summary.json keys (stable; other analyses add their own top-level keys, never change these):

- `schema_version` (int, 1)
- `stand_in` (bool): true when the run used local stand-ins, not real models/judge
- `variant` ("rubric" | "binary"), `task_key` (the judge's results key)
- `models`: {"A": baseline name, "B": challenger name}
- `source`: {"path", "results_file", "details_file"}
- `manifest_used` (bool), `orders`: {"AB": n, "BA": n} rows as sent
- `headline` (str): verdict and the key numbers in one sentence, from `prompt_level`
- `verdict` ("A" | "B" | "inconclusive" | "none"), `verdict_text` (words), from `prompt_level`
- `prompt_level`: the headline, one outcome per prompt (mean of its judged orders: B win 1, tie
  1/2, A win 0): {unit, prompts, prompts_valid, prompts_all_errors, judged_orders, b_preferred,
  a_preferred, no_net_preference, win_rate_b, interval_95 [lo, hi] (null below min_prompts),
  interval_method, sign_test_p (exact, over prompts with a net preference), min_prompts, verdict,
  verdict_text}
- `length`: the length check (`novajudge.results.length`), per prompt with a valid outcome:
  {unit, length_unit ("characters"), tokens_note, prompts, A/B {mean_chars, median_chars,
  mean_tokens_est}, diff_definition (B minus A), mean_diff_chars, b_longer, a_longer, equal_length,
  raw_win_rate_b, bins [{diff_low, diff_high (smallest and largest d in the bin), prompts,
  mean_diff, win_rate_b, b_preferred, a_preferred}], status ("fitted" | "too_few_prompts" |
  "no_length_variation" | "same_outcome" | "separation" | "not_converged" | "no_prompts" |
  "no_texts"), reason,
  lc_win_rate_b, lc_interval_95, intercept, intercept_se, slope, slope_se, slope_p, diff_sd_chars,
  iterations, length_explains, warnings [words], method, warning_rule}; its sentence joins the headline
- `judge`: the judge's own aggregate numbers as reported (a_scores, b_scores, ties, inference_error,
  score, winrate, lower_rate, upper_rate, rubric weighted_score_A/B, score_margin, `*_stderr`)
- `ours`: secondary, per judgement (each judge-input row as if independent), in model terms:
  `counts` {total, valid, decided, a_wins, b_wins, ties, bothbad_ties, inference_errors},
  `error_rate`, `win_rate_b_decided`, `wilson_95` [lo, hi],
  `win_rate_b_ties_half`, `bootstrap_95` [lo, hi], `sign_test_p`, `verdict`, `verdict_text`
- `rubric`: null for the binary judge, else {rows_with_criteria, weighted_score_A_mean,
  weighted_score_B_mean, margin {n, mean, median, std, min, q05, q25, q75, q95, max},
  judge_vs_ours_max_abs_diff, judge_vs_ours_rows_differing, weights_renormalised_rows, weights_note,
  criteria [per-criterion rows], most_frequent_criteria}
- `methods`: how each of our numbers is computed (bootstrap seed and resamples included)
- `unreadable_rows`: judge-input rows whose output held no label (error rows, never an abort)
- `notes`: list of caveats in words (swapped rows, renormalised weights, judge/ours disagreement)
- `files`: {"summary", "details", "figure", "report"} file names in `out_dir`
- `trust`: `novajudge.trust.analyse` block: position bias (plain view, reconciled view over both
  orders, positional consistency, first-position preference), calibration against human labels
  when given, the judge's use of the score scale and margins, the most common criteria; its own
  `headline` sentence is appended to the summary's headline

Numbers that cannot be computed (e.g. no valid judgements) are JSON null, never NaN.
details.parquet: the two flattened tables of docs/design.md stacked with a `kind` column
("prompt" | "criterion"), written and read back by `novajudge.results.details`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from novajudge.memory import release_free_memory
from novajudge.parallel import ordered_map
from novajudge.results.details import FILES, details_parquet
from novajudge.results.figure import StartedFigure, finished_png, start_figure
from novajudge.results.length import length_sentence
from novajudge.results.numbers import compute, model_scores
from novajudge.results.parse import Flattened, read_flattened
from novajudge.results.report import DEFAULT_MAX_PROMPTS, render_html
from novajudge.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from novajudge.trust.analyse import HumanLabels, analyse
from novajudge.trust.binary import binary_outputs_from_details
from novajudge.verdicts import ORDERS

SCHEMA_VERSION = 1
#: Judged rows from which the statistics and the figure use a forked worker (`novajudge.parallel`):
#: below it a fork costs more than it saves (at 100,000 rows it saves seconds).
PARALLEL_FROM_ROWS = 20_000


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def headline(summary: Mapping[str, Any], model_a: str, model_b: str) -> str:
    """One sentence from the prompt-level numbers: verdict with model names, prompts, win rate, test."""
    h = summary["prompt_level"]
    words = (
        h["verdict_text"]
        .replace("B is preferred", f"B ({model_b}) is preferred")
        .replace("A is preferred", f"A ({model_a}) is preferred")
    )
    if h["prompts_valid"] == 0:
        c = summary["ours"]["counts"]
        return f"{words}: all {c['total']} judgements were inference errors" if c["total"] else words
    lo, hi = h["interval_95"]
    interval = "no interval below the minimum" if lo is None else f"95% interval {_pct(lo)}–{_pct(hi)}"
    return (
        f"{words}. Over {h['prompts_valid']} prompts, B ({model_b}) was preferred in {h['b_preferred']}, "
        f"A ({model_a}) in {h['a_preferred']}, neither in {h['no_net_preference']}; B's win rate over "
        f"prompts {_pct(h['win_rate_b'])} ({interval}), sign test over prompts p = {h['sign_test_p']:.3g}."
    )


def _notes(
    flat_prompts: pd.DataFrame, stats: Mapping[str, Any], variant: str, unreadable: Sequence[int] = ()
) -> list[str]:
    notes: list[str] = []
    if unreadable:
        shown = ", ".join(str(r) for r in unreadable[:10]) + (" ..." if len(unreadable) > 10 else "")
        notes.append(
            f"{len(unreadable)} judgement(s) held no readable preference label and count as error rows "
            f"(judge-input rows {shown})"
        )
    swapped = int((flat_prompts["order"] == "BA").sum())
    if swapped:
        notes.append(
            f"{swapped} of {len(flat_prompts)} judgements were sent swapped (B as response_A); our counts "
            "un-swap them, the judge's own aggregate numbers refer to the responses as sent"
        )
    rubric = stats.get("rubric")
    if rubric:
        if rubric["weights_renormalised_rows"]:
            notes.append(rubric["weights_note"])
        diff = rubric["judge_vs_ours_max_abs_diff"]
        if diff is not None and diff > 1e-6:
            notes.append(
                f"the judge's weighted scores differ from those recomputed from its criteria in "
                f"{rubric['judge_vs_ours_rows_differing']} response(s), by up to {diff:.3g}"
            )
    if swapped and (flat_prompts["order"] == "AB").any():
        notes.append(
            "each prompt judged in both orders counts twice in the per-judgement counts, so their "
            "intervals and p-value are optimistic; the reconciled view (trust) counts each prompt once"
        )
    if variant == "binary":
        notes.append("binary judge: the judge's a_scores/b_scores/ties count both passes (two per pair)")
    return notes


@dataclass
class Analysed:
    """What the tables say, before the files are written: our numbers, the judge's trust block,
    the per-judgement model scores (rubric) and the figure with the panels of our numbers drawn."""

    stats: dict[str, Any]
    trust: dict[str, Any]
    scores: pd.DataFrame | None
    figure: StartedFigure


def analysed(
    flat: Flattened, model_a: str, model_b: str, *, seed: int, resamples: int,
    human_labels: HumanLabels | None, stand_in: bool,
) -> Analysed:  # fmt: skip
    """Our numbers (`compute`) and the judge's trust block (`analyse`) are two independent readings
    of the tables: a forked worker analyses the trust while this process computes the numbers and
    draws the figure's panels of them (`novajudge.parallel`; one after the other on one core)."""
    variant = flat.judge.variant
    binary_outputs = binary_outputs_from_details(flat.passes, flat.prompts) if variant == "binary" else None
    results = ordered_map(_call, parallel=_parallel(len(flat.prompts)), tasks=[
        partial(compute, flat.prompts, flat.criteria, flat.judge.judge_metrics, variant,
                passes=flat.passes, seed=seed, resamples=resamples),
        partial(analyse, flat.prompts, flat.criteria, variant=variant, human_labels=human_labels,
                binary_outputs=binary_outputs),
    ])  # fmt: skip
    with closing(results):  # the worker is stopped whatever happens below
        stats = next(results)
        scores = model_scores(flat.prompts, flat.criteria) if variant == "rubric" else None
        margins = scores["margin"].to_numpy() if scores is not None else np.array([])
        margins = margins[np.isfinite(margins)]
        figure = start_figure(stats, margins, model_a, model_b, trust_row=True, stand_in=stand_in)
        try:
            (trust,) = results  # the worker's analysis: waited for only now
        except BaseException:
            figure.close()
            raise
    return Analysed(stats, trust, scores, figure)


def figure_and_details(
    figure: StartedFigure,
    summary: Mapping[str, Any],
    prompts: pd.DataFrame,
    criteria: pd.DataFrame,
    model_a: str,
    model_b: str,
    *,
    parquet_engine: str,
) -> tuple[bytes, bytes]:
    """The figure's PNG and the details parquet, made side by side: the tables are only read from
    here on, so a forked worker encodes the parquet while this process finishes and draws the
    figure (`novajudge.parallel`; one after the other on one core, or for a small run).

    This way round because the encoding reads every string of the tables (the pages it copies go
    away with the worker) while the figure reads the small summary; with the figure in the worker
    instead, the worker held 570 MiB of pages this process's encoding had copied. At 100,000 rows
    (make bench) the peak of all processes is about 870 MiB, and the worker saves about 0.5 s
    against encoding on a thread here.
    """
    release_free_memory()  # what the statistics freed: the worker would share it, then copy it
    jobs: list[Callable[[], bytes]] = [
        partial(finished_png, figure, summary, model_a, model_b),
        partial(details_parquet, prompts, criteria, engine=parquet_engine),
    ]
    png, parquet = ordered_map(_call, jobs, parallel=_parallel(len(prompts)))
    return png, parquet


def _parallel(rows: int) -> bool | None:
    """None (a worker if two cores are free) for a large run, False (this process) for a small one."""
    return None if rows >= PARALLEL_FROM_ROWS else False


def _call(job: Callable[[], Any]) -> Any:
    """Run a job of `ordered_map` (a partial of the function and its arguments)."""
    return job()


def _summary(
    flat: Flattened,
    stats: Mapping[str, Any],
    trust: dict[str, Any],
    source: str | Path,
    model_a: str,
    model_b: str,
    *,
    manifest_used: bool,
    stand_in: bool,
) -> dict[str, Any]:
    """The summary dict (module docstring) from the tables' numbers and the trust block."""
    variant = flat.judge.variant
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stand_in": bool(stand_in),
        "variant": variant,
        "task_key": flat.judge.task_key,
        "models": {"A": model_a, "B": model_b},
        "source": {
            "path": str(source),
            "results_file": flat.judge.results_file,
            "details_file": flat.judge.details_file,
        },
        "manifest_used": manifest_used,
        "orders": {o: int((flat.prompts["order"] == o).sum()) for o in ORDERS},
        "headline": "",
        "verdict": stats["prompt_level"]["verdict"],
        "verdict_text": stats["prompt_level"]["verdict_text"],
        **stats,
        "unreadable_rows": list(flat.unreadable),
        "notes": _notes(flat.prompts, stats, variant, flat.unreadable),
        "files": dict(FILES),
    }
    summary["trust"] = trust
    length = length_sentence(summary["length"])
    summary["headline"] = " ".join(
        part for part in (headline(summary, model_a, model_b), length, summary["trust"]["headline"]) if part
    )
    if stand_in:
        summary["headline"] = "[LOCAL STAND-IN] " + summary["headline"]
    return summary


def summarize(
    source: str | Path,
    out_dir: str | Path,
    model_a: str,
    model_b: str,
    *,
    manifest: Sequence[Mapping[str, Any]] | None = None,
    stand_in: bool = False,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    max_report_prompts: int = DEFAULT_MAX_PROMPTS,
    parquet_engine: str = "auto",
    human_labels: HumanLabels | None = None,
) -> dict[str, Any]:
    """Read the judge output at `source`, write the four result files into `out_dir`, return the summary.

    Raises `novajudge.errors.ResultsError` (naming the file and what was expected) when the judge
    output or the manifest is missing or malformed; nothing is written in that case.
    `human_labels` (prompt_id → A|B|tie, or a JSONL path) turns on the judge's calibration.
    """
    flat = read_flattened(source, manifest)
    # The judge's raw details are in the tables now: free them (190 MB at 100,000 rows), and what
    # reading them left in the allocators, before the statistics, the figure and the parquet.
    flat.judge.details = pd.DataFrame(columns=flat.judge.details.columns)  # a slice would keep the buffers
    release_free_memory()
    done = analysed(
        flat, model_a, model_b, seed=seed, resamples=resamples, human_labels=human_labels, stand_in=stand_in
    )
    try:
        summary = _summary(
            flat, done.stats, done.trust, source, model_a, model_b,
            manifest_used=manifest is not None, stand_in=stand_in,
        )  # fmt: skip
        png, parquet = figure_and_details(
            done.figure, summary, flat.prompts, flat.criteria, model_a, model_b, parquet_engine=parquet_engine
        )
    finally:
        done.figure.close()  # drawn and closed already, unless something above failed
    page = render_html(
        summary, flat.prompts, flat.criteria, done.scores, png, model_a, model_b,
        stand_in=stand_in, max_prompts=max_report_prompts,
    )  # fmt: skip
    text = json.dumps(summary, indent=2, allow_nan=False)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / FILES["summary"]).write_text(text, encoding="utf-8")
    (out / FILES["details"]).write_bytes(parquet)
    (out / FILES["figure"]).write_bytes(png)
    (out / FILES["report"]).write_text(page, encoding="utf-8")
    return summary
