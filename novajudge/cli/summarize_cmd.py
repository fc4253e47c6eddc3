"""`novajudge summarize PATH --out DIR`: turn a judge output archive into the four result files.

Useful offline: on an `output.tar.gz` downloaded from S3 (or its extracted folder), the same code as
the summarize Lambda writes summary.json, details.parquet, report.png and report.html. Exit codes:
0 success, 1 the archive or manifest is bad (the message names the file and what was expected),
2 bad usage (missing PATH, unknown option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from novajudge.cli.app import app, one_line_errors
from novajudge.config import Settings
from novajudge.errors import ResultsError
from novajudge.jsonl import DEFAULT_MAX_FILE_BYTES, Limits, parse_json_line, read_jsonl_file, text_lines
from novajudge.results.details import FILES
from novajudge.results.report import DEFAULT_MAX_PROMPTS
from novajudge.results.summarize import summarize

_DEFAULT_A = str(Settings.model_fields["model_a_id"].default)
_DEFAULT_B = str(Settings.model_fields["model_b_id"].default)


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The generation manifest: JSON Lines (as the pipeline writes it) or one JSON list.

    JSON Lines go through the project's one reader (`novajudge.jsonl`), so errors name the line.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if head.startswith(b"["):
        # A JSON list is one value: one "line" as far as the reader is concerned.
        whole = Limits(max_line_bytes=DEFAULT_MAX_FILE_BYTES)
        with path.open("rb") as handle:
            text = "\n".join(text_lines(handle, str(path), error=ResultsError, limits=whole))
        entries, problem = parse_json_line(text)
        if problem is not None:
            raise ResultsError(f"{path}: expected JSON Lines (one object per line) or a JSON list: {problem}")
    else:
        entries = [record for _, record in read_jsonl_file(path, error=ResultsError)]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ResultsError(f"{path}: expected objects with row, prompt_id, order")
    return entries


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float | None]) -> str:
    return "n/a" if ci[0] is None or ci[1] is None else f"[{_pct(ci[0])}, {_pct(ci[1])}]"


PathArg = Annotated[
    Path, typer.Argument(exists=True, help="The judge's output.tar.gz or its extracted folder.")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder to write the four result files into.")]
ModelAOpt = Annotated[str, typer.Option("--model-a", help="Name of model A (the baseline).")]
ModelBOpt = Annotated[str, typer.Option("--model-b", help="Name of model B (the challenger).")]
ManifestOpt = Annotated[
    Path | None,
    typer.Option(
        "--manifest", exists=True, dir_okay=False, help="Generation manifest.jsonl (row, prompt_id, order)."
    ),
]
StandInOpt = Annotated[
    bool, typer.Option("--stand-in", help="Label the outputs as coming from local stand-ins.")
]
MaxPromptsOpt = Annotated[
    int, typer.Option("--max-prompts", min=0, help="Judgements shown in the HTML, most lopsided first.")
]


@app.command("summarize")
def summarize_command(
    path: PathArg,
    out: OutOpt,
    model_a: ModelAOpt = _DEFAULT_A,
    model_b: ModelBOpt = _DEFAULT_B,
    manifest: ManifestOpt = None,
    stand_in: StandInOpt = False,
    max_prompts: MaxPromptsOpt = DEFAULT_MAX_PROMPTS,
) -> None:
    """Summarize a Nova judge output archive: verdict, numbers with methods, figure and HTML report."""
    console = Console(highlight=False, soft_wrap=True)
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; give a folder to write the four result files into",
                                 param_hint="--out")
    with one_line_errors():
        entries = read_manifest(manifest) if manifest is not None else None
        summary = summarize(
            path, out, model_a, model_b, manifest=entries, stand_in=stand_in, max_report_prompts=max_prompts
        )
    ours, judge, c = summary["ours"], summary["judge"], summary["ours"]["counts"]
    if summary["stand_in"]:
        console.print("[bold white on red] LOCAL STAND-IN — not real model/judge output [/]")
    console.print(f"[bold]{summary['headline']}[/]")
    table = Table(title=f"B: {model_b} vs A: {model_a} ({summary['variant']} judge)")
    table.add_column("number")
    table.add_column("value", justify="right")
    rows = [
        ("judgements (valid / errors)", f"{c['total']} ({c['valid']} / {c['inference_errors']})"),
        ("A wins / B wins / ties / both bad",
         f"{c['a_wins']} / {c['b_wins']} / {c['ties']} / {c['bothbad_ties']}"),
        ("B's win rate, decided (Wilson 95%)",
         f"{_pct(ours['win_rate_b_decided'])} {_ci(ours['wilson_95'])}"),
        ("B's win rate, ties ½ (bootstrap 95%)",
         f"{_pct(ours['win_rate_b_ties_half'])} {_ci(ours['bootstrap_95'])}"),
        ("sign test p", f"{ours['sign_test_p']:.3g}"),
        ("judge's winrate (its bounds)",
         f"{_pct(judge.get('winrate'))} {_ci([judge.get('lower_rate'), judge.get('upper_rate')])}"),
        ("error rate", _pct(ours["error_rate"])),
    ]  # fmt: skip
    rubric = summary.get("rubric")
    if rubric and rubric["weighted_score_A_mean"] is not None:
        rows.append(
            (
                "weighted score A / B, margin A−B",
                f"{rubric['weighted_score_A_mean']:.3f} / {rubric['weighted_score_B_mean']:.3f}, "
                f"{rubric['margin']['mean']:+.3f}",
            )
        )
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for key in ("summary", "details", "figure", "report"):
        console.print(f"{key}: {out / FILES[key]}")
