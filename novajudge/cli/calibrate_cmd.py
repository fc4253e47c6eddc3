"""`novajudge calibrate RESULTS_DIR [--labels FILE.jsonl]`: how far can this judge be trusted?

Runs the trust analyses on a results folder written by `novajudge summarize`: position bias (when
the pairs were judged in both orders), agreement with human labels when given, and how the judge
uses its scales. Exit codes: 0 success; 1 a file cannot be read or is malformed (the message names
the file, line and field); 2 bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from novajudge.cli.app import app, one_line_errors
from novajudge.results.details import load_details
from novajudge.trust.analyse import analyse, plot_trust
from novajudge.trust.calibration import load_human_labels


def _rate(p: dict[str, Any]) -> str:
    if p.get("rate") is None:
        return f"n/a (n={p.get('n', 0)})"
    return f"{p['rate']:.1%} [{p['ci_low']:.1%}, {p['ci_high']:.1%}] ({p['successes']}/{p['n']})"


def _print(console: Console, block: dict[str, Any]) -> None:
    console.print(f"[bold]{block['headline']}[/]")
    position = block["position"]
    table = Table(title="Position bias (verdicts in model terms)")
    for column in ("view", "A", "B", "ties", "order-inconsistent", "errors", "B win rate (Wilson 95%)"):
        table.add_column(column, justify="left" if column == "view" else "right")
    plain = position["plain"]
    c = plain["counts"]
    table.add_row("as sent (AB only)", str(c["A"]), str(c["B"]), str(c["tie"] + c["bothbad"]), "–",
                  str(c["error"]), _rate(plain["b_win_rate"]))
    rec = position["reconciled"]
    if rec.get("measured"):
        c = rec["counts"]
        table.add_row("reconciled (both orders)", str(c["A"]), str(c["B"]), str(c["tie"] + c["bothbad"]),
                      str(c["inconsistent"]), str(c["error"]), _rate(rec["b_win_rate"]))
    console.print(table)
    if position["consistency"].get("measured"):
        console.print(f"Positional consistency: {_rate(position['consistency'])}")
    else:
        console.print(f"Positional consistency: {position['consistency']['reason']}")
    first = position["first_position_preference"]
    console.print(f"First-position preference: {_rate(first)} — {first['note']}")
    calibration = block["calibration"]
    if calibration.get("measured"):
        kappa = calibration["kappa"]
        rec_agree = calibration["reconciled_agreement"]
        reconciled = _rate(rec_agree) if rec_agree.get("measured") else rec_agree["reason"]
        kappa_text = "undefined" if kappa is None else f"{kappa:.2f}"
        console.print(f"Agreement with humans (AB verdict): {_rate(calibration['forward_agreement'])}; "
                      f"reconciled: {reconciled}; Cohen's kappa: {kappa_text}")
        buckets = calibration["by_confidence"]
        if buckets.get("measured"):
            bt = Table(title="Agreement by |score margin|")
            for column in ("|margin|", "prompts", "agree", "agreement"):
                bt.add_column(column, justify="right")
            for b in buckets["buckets"]:
                accuracy = "n/a" if b["accuracy"] is None else f"{b['accuracy']:.0%}"
                bt.add_row(f"[{b['low']:g}, {b['high']:g}{']' if b['closed'] else ')'}", str(b["n"]),
                           str(b["correct"]), accuracy)
            console.print(bt)
    else:
        console.print(f"Calibration: {calibration['reason']}")
    scores = block["scores"]
    if scores.get("measured"):
        scale = scores["scale"]
        counts = ", ".join(f"{k}: {v}" for k, v in scale["counts"].items())
        extremes = "n/a" if scale["share_extremes"] is None else f"{scale['share_extremes']:.0%}"
        console.print(f"Scale use (1–5 scores, both responses): {counts}; extremes {extremes}")
    margins = block["margins"]
    if margins.get("measured"):
        q = margins["quantiles"]
        console.print(f"Score margin (A − B): median {q['0.5']:+.3f}, "
                      f"5–95% [{q['0.05']:+.3f}, {q['0.95']:+.3f}], "
                      f"near ties {margins['share_near_tie']:.0%}")


ResultsDirArg = Annotated[
    Path, typer.Argument(help="Folder holding details.parquet (from `novajudge summarize`).")
]
LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help='Human labels, JSONL {"prompt_id": ..., "preference": A|B|tie}.'),
]
FigureOpt = Annotated[Path | None, typer.Option("--figure", help="Write the trust figure (PNG) here.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the trust block as JSON here.")]


@app.command("calibrate")
def calibrate_command(results_dir: ResultsDirArg, labels: LabelsOpt = None, figure: FigureOpt = None,
                      out: OutOpt = None) -> None:
    """Position bias, agreement with human labels and scale use of the judge, from a results folder."""
    with one_line_errors():
        details = load_details(results_dir)
        human = load_human_labels(labels) if labels is not None else None
        block = analyse(details.prompts, details.criteria, variant=details.variant, human_labels=human)
    if human is not None:
        known = set(details.prompts["prompt_id"].astype(str)) if "prompt_id" in details.prompts else set()
        unmatched = sorted(set(human) - known)
        if len(unmatched) == len(human):
            typer.echo(f"warning: none of the {len(human)} labels in {labels} matches a prompt_id of "
                       f"{details.source}; agreement with humans cannot be measured", err=True)
        elif unmatched:
            typer.echo(f"warning: {len(unmatched)} of {len(human)} labels in {labels} match no prompt_id "
                       f"(first: {unmatched[0]!r})", err=True)
    _print(Console(highlight=False, soft_wrap=True), block)
    try:
        if figure is not None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(11, 4), dpi=100)
            plot_trust(block, fig)
            fig.tight_layout()
            fig.savefig(figure, format="png")
        if out is not None:
            out.write_text(json.dumps(block, indent=2, allow_nan=False), encoding="utf-8")
    except OSError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: cannot write ({exc})")
        raise typer.Exit(1) from None
