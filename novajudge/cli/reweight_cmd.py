"""`novajudge reweight RESULTS_DIR`: re-weight or drop rubric criteria without re-running the judge.

Reads the `details.parquet` that `novajudge summarize` wrote, shows the most common criteria (so a
user can pick what to drop), and recomputes every verdict from the weighted scores under the new
weights. Exit codes: 0 success; 1 a file cannot be read (details, synonyms) or holds no criteria;
2 bad usage (`--weight foo` without `=`, a negative weight, a name or pattern matching no criterion).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from novajudge.cli.app import app, one_line_errors
from novajudge.errors import InvalidRunRequest, NovaJudgeError
from novajudge.results.details import load_details
from novajudge.trust.criteria import MATCH_MODES, load_synonyms, most_common_criteria
from novajudge.trust.reweight import DEFAULT_THRESHOLD, NO_CRITERIA, parse_weight_option, reweight

MAX_FLIPS_SHOWN = 25


def _err(message: str, code: int) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {message}")
    return typer.Exit(code)


def _rate(p: dict[str, Any]) -> str:
    if p["rate"] is None:
        return "n/a (no decided verdicts)"
    return f"{p['rate']:.1%} [{p['ci_low']:.1%}, {p['ci_high']:.1%}] of {p['n']}"


def _margin(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _weights(options: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for text in options:
        try:
            name, weight = parse_weight_option(text)
        except InvalidRunRequest as exc:
            raise typer.BadParameter(str(exc), param_hint="--weight") from None
        if name in weights and weights[name] != weight:
            raise typer.BadParameter(f"{name!r} is given two weights", param_hint="--weight")
        weights[name] = weight
    return weights


def _print(console: Console, common: list[dict[str, Any]], result: dict[str, Any]) -> None:
    table = Table(title="Most common criteria (normalised names)")
    for column, justify in (("criterion", "left"), ("judgements", "right"), ("prompts", "right"),
                            ("mean weight", "right"), ("as written", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for c in common:
        table.add_row(c["criterion"], str(c["judgements"]), str(c["prompts"]), f"{c['mean_weight']:.3f}",
                      ", ".join(c["spellings"][:4]) + (" …" if len(c["spellings"]) > 4 else ""))
    console.print(table)

    views = Table(title="Verdicts per judgement, in model terms")
    columns = ("", "A wins", "B wins", "ties", "both bad", NO_CRITERIA, "errors", "B win rate (Wilson 95%)")
    for column in columns:
        views.add_column(column, justify="left" if not column else "right")
    for name, key in (("judge's labels", "original"), ("re-weighted", "new")):
        c = result[key]["counts"]
        views.add_row(name, *(str(c[k]) for k in ("A", "B", "tie", "bothbad", NO_CRITERIA, "error")),
                      _rate(result[key]["b_win_rate"]))
    console.print(views)
    if result["reconciled"].get("measured"):
        rec = result["reconciled"]
        counts = rec["counts"]
        console.print(f"Re-weighted, reconciled over both orders: {counts['A']} A, {counts['B']} B, "
                      f"{counts['inconsistent']} order-inconsistent; B win rate {_rate(rec['b_win_rate'])}")
    console.print(f"Rule: {result['rule']}.")
    console.print(f"Dropped: {', '.join(result['dropped_criteria']) or 'none'}; re-weighted: "
                  + (", ".join(f"{k}={v:g}" for k, v in result["reweighted_criteria"].items()) or "none"))
    console.print(f"Verdicts changed vs the judge's labels: {result['changed_vs_label']} "
                  f"(vs the margin rule with the original weights: {result['changed_vs_original_weights']}; "
                  "the rule alone disagrees with the labels "
                  f"{result['label_vs_margin_rule_disagreements']} times)")
    if result["flips"]:
        flips = Table(title=f"Changed verdicts (first {MAX_FLIPS_SHOWN}; margins are model A − model B)")
        for column in ("prompt_id", "row", "order", "old", "new", "old margin", "new margin"):
            flips.add_column(column)
        for f in result["flips"][:MAX_FLIPS_SHOWN]:
            flips.add_row(f["prompt_id"], str(f["row"]), f["order"], f["old"], f["new"],
                          _margin(f["old_margin"]), _margin(f["new_margin"]))
        console.print(flips)
    if result["no_criteria_left"]:
        empty = result["no_criteria_left"]
        left = ", ".join(f"{x['prompt_id']} ({x['order']})" for x in empty[:MAX_FLIPS_SHOWN])
        console.print(f"[yellow]{len(empty)} judgement(s) have no criteria left:[/] {left}")


ResultsDirArg = Annotated[
    Path, typer.Argument(help="Folder holding details.parquet (from `novajudge summarize`).")
]
DropOpt = Annotated[
    list[str] | None, typer.Option("--drop", help="Criterion to drop, matched per --match (repeatable).")
]
WeightOpt = Annotated[
    list[str] | None,
    typer.Option("--weight", help="NAME=W: give a criterion the relative weight W; the others keep "
                 "the judge's weights and all are renormalised to sum to 1 per judgement (repeatable)."),
]
MatchOpt = Annotated[str, typer.Option("--match", help=f"How names match: {'|'.join(MATCH_MODES)}.")]
SynonymsOpt = Annotated[Path | None, typer.Option("--synonyms", help='JSON {"name": "canonical name"}.')]
ThresholdOpt = Annotated[
    float,
    typer.Option("--threshold", help="|re-weighted margin| at or below this is a tie (default 0.05: "
                 "one scale step on a criterion weighing 0.2)."),
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the full result as JSON here.")]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="How many common criteria to list.")]


@app.command("reweight")
def reweight_command(
    results_dir: ResultsDirArg,
    drop: DropOpt = None,
    weight: WeightOpt = None,
    match: MatchOpt = "exact",
    synonyms: SynonymsOpt = None,
    threshold: ThresholdOpt = DEFAULT_THRESHOLD,
    out: OutOpt = None,
    top: TopOpt = 15,
) -> None:
    """Drop or re-weight rubric criteria and see which verdicts change, without re-judging."""
    if match not in MATCH_MODES:
        raise typer.BadParameter(f"{match!r}; allowed: {', '.join(MATCH_MODES)}", param_hint="--match")
    if not 0 <= threshold < 1:
        raise typer.BadParameter(f"{threshold}: expected a number in [0, 1)", param_hint="--threshold")
    weights = _weights(weight or [])
    with one_line_errors():
        syn = load_synonyms(synonyms) if synonyms is not None else None
        details = load_details(results_dir)
    if details.criteria.empty:
        raise _err(f"{details.source}: no criterion rows ({details.variant} judge); "
                   "only the rubric judge's scores can be re-weighted", 1)
    try:
        result = reweight(details.prompts, details.criteria, drop=drop or [], weights=weights, match=match,
                          synonyms=syn, threshold=threshold)
    except InvalidRunRequest as exc:
        raise _err(str(exc), 2) from None
    except NovaJudgeError as exc:
        raise _err(str(exc), 1) from None
    common = most_common_criteria(details.criteria, top=top, synonyms=syn)
    _print(Console(highlight=False, soft_wrap=True), common, result)
    if out is not None:
        payload = {"source": str(details.source), "most_common_criteria": common, "reweight": result}
        try:
            out.write_text(json.dumps(payload, indent=2, allow_nan=False), encoding="utf-8")
        except OSError as exc:
            raise _err(f"{out}: cannot write ({exc.strerror or exc})", 1) from None
