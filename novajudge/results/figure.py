"""The summary figure: the six panels users know from the Nova notebooks, drawn correctly.

Why redraw rather than copy the notebook: its count panel calls a tie a B lead and its gauge is
mirrored (0 % points at the 100 % label). Here the leader is computed (or "tie"), the gauge runs
0 % on the left to 100 % on the right with the needle at angle pi * (1 - rate), the pie covers valid
judgements only, and every interval drawn is named with its method. The rubric judge adds a row:
weighted scores per model, the margin distribution and the per-criterion averages.

Plain matplotlib (Agg backend): seaborn would add bundle weight to the Lambda for no gain here.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Wedge

from novajudge.trust.calibration import plot_reliability
from novajudge.trust.render import plot_trust

COLOUR_A = "#1f77b4"
COLOUR_B = "#ff7f0e"
COLOUR_TIE = "#8c8c8c"
COLOUR_BAD = "#6b4c9a"
COLOUR_ERR = "#d62728"
STAND_IN_TEXT = "LOCAL STAND-IN — not real model/judge output"
#: Every text drawn is literal: model ids, criterion names and prompt text come from users and the
#: judge, and a `$` in them must never reach matplotlib's math parser (`$\\sqrt$` would crash it).
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def leader_text(a_wins: int, b_wins: int, model_a: str, model_b: str) -> str:
    """Who leads on decided judgements, in words; equal counts are a tie, never a lead."""
    if a_wins == b_wins:
        return f"tie ({a_wins} each)"
    if b_wins > a_wins:
        return f"B ({model_b}) leads by {b_wins - a_wins}"
    return f"A ({model_a}) leads by {a_wins - b_wins}"


def needle_angle(rate: float) -> float:
    """Gauge needle angle in radians: 0 % points left (pi), 50 % up (pi/2), 100 % right (0)."""
    return math.pi * (1.0 - min(1.0, max(0.0, rate)))


def _panel_prompts(ax: Axes, h: Mapping[str, Any]) -> None:
    """The headline's unit: prompts, each with one net preference (mean of its judged orders)."""
    names = ["B preferred", "A preferred", "neither", "all errors"]
    vals = [h["b_preferred"], h["a_preferred"], h["no_net_preference"], h["prompts_all_errors"]]
    bars = ax.bar(names, vals, color=[COLOUR_B, COLOUR_A, COLOUR_TIE, COLOUR_ERR])
    for bar, v in zip(bars, vals, strict=True):
        ax.annotate(str(v), (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=9)
    ax.set_ylim(0, max([*vals, 1]) * 1.18)
    ax.set_title(f"1. Prompts by net preference (n = {h['prompts']} prompts)")
    ax.set_ylabel("prompts")


def _panel_counts(ax: Axes, c: Mapping[str, int]) -> None:
    names = ["A wins", "B wins", "ties", "both bad", "errors"]
    vals = [c["a_wins"], c["b_wins"], c["ties"], c["bothbad_ties"], c["inference_errors"]]
    bars = ax.bar(names, vals, color=[COLOUR_A, COLOUR_B, COLOUR_TIE, COLOUR_BAD, COLOUR_ERR])
    for bar, v in zip(bars, vals, strict=True):
        ax.annotate(str(v), (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=9)
    ax.set_ylim(0, max([*vals, 1]) * 1.18)
    ax.set_title(f"4. Per judgement, secondary (n = {c['total']} judgements)")
    ax.set_ylabel("judgements")


def judge_rate_is_model_preference(summary: Mapping[str, Any]) -> bool:
    """The judge's `winrate` is P(response_B preferred) as sent: a model preference only when
    every judgement was sent in the AB order; with both orders mixed it measures a position."""
    return int(summary.get("orders", {}).get("BA", 0)) == 0


def _panel_rates(ax: Axes, summary: Mapping[str, Any]) -> None:
    h, ours, judge = summary["prompt_level"], summary["ours"], summary["judge"]
    rows: list[tuple[str, float | None, list[float | None]]] = [
        (f"prompts (headline)\n{'no interval: too few prompts' if h['interval_95'][0] is None else '95% CI'}",
         h["win_rate_b"], h["interval_95"]),
        ("judgements, ties = ½\n(secondary; bootstrap)", ours["win_rate_b_ties_half"], ours["bootstrap_95"]),
    ]
    length = summary.get("length") or {}
    if length.get("status") == "fitted":
        rows.append(
            ("length-controlled\n(AlpacaEval 2; Wald CI)", length["lc_win_rate_b"], length["lc_interval_95"])
        )
    if judge_rate_is_model_preference(summary) and judge.get("winrate") is not None:
        rows.append(("judge's winrate\n(its bounds)", judge.get("winrate"),
                     [judge.get("lower_rate"), judge.get("upper_rate")]))
    for y, (_, rate, (lo, hi)) in enumerate(rows):
        if rate is None:
            ax.text(0.02, y, "n/a", va="center")
            continue
        err = None
        if lo is not None and hi is not None:
            err = [[max(0.0, rate - lo)], [max(0.0, hi - rate)]]
        ax.barh(y, rate, color=COLOUR_B if y == 0 else "#f5b041", height=0.55)
        if err is not None:
            ax.errorbar(rate, y, xerr=err, fmt="none", ecolor="black", capsize=5)
        ax.text(min(rate, 0.80) + 0.02, y + 0.33, _pct(rate), fontsize=9)
    ax.axvline(0.5, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(model B preferred)")
    ax.set_title("2. B's win rate (ties = ½)")


def _panel_pie(ax: Axes, c: Mapping[str, int]) -> None:
    parts = [("A wins", c["a_wins"], COLOUR_A), ("B wins", c["b_wins"], COLOUR_B),
             ("ties", c["ties"], COLOUR_TIE), ("both bad", c["bothbad_ties"], COLOUR_BAD)]  # fmt: skip
    parts = [p for p in parts if p[1] > 0]
    ax.set_title(f"5. Per judgement, secondary: {c['valid']} valid judgements")
    if not parts:
        ax.text(0.5, 0.5, "no valid judgements", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return
    ax.pie([p[1] for p in parts], labels=[p[0] for p in parts], colors=[p[2] for p in parts],
           autopct=lambda v: f"{v:.0f}%", startangle=90, counterclock=False)  # fmt: skip
    ax.axis("equal")


def _panel_versus(ax: Axes, c: Mapping[str, int], model_a: str, model_b: str) -> None:
    a, b = c["a_wins"], c["b_wins"]
    bars = ax.bar([f"A\n{_wrap(model_a)}", f"B\n{_wrap(model_b)}"], [a, b], color=[COLOUR_A, COLOUR_B])
    for bar, v in zip(bars, [a, b], strict=True):
        ax.annotate(str(v), (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom")
    ax.set_ylim(0, max(a, b, 1) * 1.3)
    ax.text(0.5, 0.92, leader_text(a, b, model_a, model_b), ha="center", transform=ax.transAxes,
            fontsize=10, fontweight="bold")  # fmt: skip
    ax.set_title("5. A vs B wins per judgement (secondary)")


def _panel_gauge(ax: Axes, rate: float | None) -> None:
    ax.set_title("3. B's win rate over prompts (headline), gauge")
    ax.add_patch(Wedge((0, 0), 1.0, 90, 180, width=0.3, color=COLOUR_A, alpha=0.6))
    ax.add_patch(Wedge((0, 0), 1.0, 0, 90, width=0.3, color=COLOUR_B, alpha=0.6))
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        ang = needle_angle(frac)
        ax.text(
            1.15 * math.cos(ang), 1.15 * math.sin(ang), f"{frac:.0%}", ha="center", va="center", fontsize=9
        )
    ax.text(-0.85, -0.15, "A better", ha="center", fontsize=8, color=COLOUR_A)
    ax.text(0.85, -0.15, "B better", ha="center", fontsize=8, color=COLOUR_B)
    if rate is None:
        ax.text(0, 0.2, "n/a", ha="center", fontsize=14)
    else:
        ang = needle_angle(rate)
        ax.plot([0, 0.85 * math.cos(ang)], [0, 0.85 * math.sin(ang)], color="black", linewidth=3)
        ax.text(0, -0.3, _pct(rate), ha="center", fontsize=14, fontweight="bold")
    ax.add_patch(plt.Circle((0, 0), 0.05, color="black"))
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-0.45, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")


def _fmt_ci(ci: list[float | None]) -> str:
    lo, hi = ci
    return "n/a" if lo is None or hi is None else f"[{_pct(lo)}, {_pct(hi)}]"


def _panel_table(ax: Axes, summary: Mapping[str, Any]) -> None:
    h, ours, judge = summary["prompt_level"], summary["ours"], summary["judge"]
    c = ours["counts"]
    jlo, jhi = judge.get("lower_rate"), judge.get("upper_rate")
    position = "" if judge_rate_is_model_preference(summary) else " (position B, orders mixed)"
    rows = [
        ("prompts (valid)", f"{h['prompts']} ({h['prompts_valid']})"),
        ("B / A / neither (prompts)", f"{h['b_preferred']} / {h['a_preferred']} / {h['no_net_preference']}"),
        ("B win rate over prompts", _pct(h["win_rate_b"])),
        ("  95% interval", _fmt_ci(h["interval_95"])),
        ("  sign test p (prompts)", f"{h['sign_test_p']:.3g}"),
        ("judgements (valid / errors)", f"{c['total']} ({c['valid']} / {c['inference_errors']})"),
        ("A / B wins (judgements)", f"{c['a_wins']} / {c['b_wins']}"),
        ("ties / both bad (judgements)", f"{c['ties']} / {c['bothbad_ties']}"),
        ("B rate, decided judgem.", _pct(ours["win_rate_b_decided"])),
        ("  Wilson 95%", _fmt_ci(ours["wilson_95"])),
        ("judge's winrate" + position, _pct(judge.get("winrate"))),
        ("  judge's bounds", _fmt_ci([jlo, jhi])),
    ]
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["metric", "value"], loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1, 1.25)
    ax.set_title("6. Summary (prompts, then judgements)")


def _panel_weighted(
    ax: Axes, rubric: Mapping[str, Any], judge: Mapping[str, Any], model_a: str, model_b: str
) -> None:
    a, b = rubric.get("weighted_score_A_mean"), rubric.get("weighted_score_B_mean")
    ax.set_title("7. Mean weighted rubric score (ours)")
    if a is None or b is None:
        ax.text(0.5, 0.5, "no rubric scores", ha="center", va="center", transform=ax.transAxes)
        return
    bars = ax.bar([f"A\n{_wrap(model_a)}", f"B\n{_wrap(model_b)}"], [a, b], color=[COLOUR_A, COLOUR_B])
    for bar, v in zip(bars, [a, b], strict=True):
        ax.annotate(f"{v:.3f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom")
    ax.set_ylim(0, 1.1)
    m = rubric["margin"]
    ax.text(0.5, 0.93, f"margin A−B: mean {m['mean']:+.3f}, median {m['median']:+.3f}",
            ha="center", transform=ax.transAxes, fontsize=9)  # fmt: skip


def _panel_margin(ax: Axes, margins: np.ndarray) -> None:
    ax.set_title("8. Margin per judgement (A − B; > 0 favours A)")
    if len(margins) == 0:
        ax.text(0.5, 0.5, "no rubric scores", ha="center", va="center", transform=ax.transAxes)
        return
    ax.hist(margins, bins=np.linspace(-1, 1, 41), color=COLOUR_TIE, edgecolor="white")
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.axvline(float(np.median(margins)), color=COLOUR_ERR, linewidth=1.5, label="median")
    ax.legend(fontsize=8)
    ax.set_xlabel("weighted score margin (weights renormalised)")
    ax.set_ylabel("judgements")


def _panel_criteria(ax: Axes, rubric: Mapping[str, Any], top: int = 8) -> None:
    crit = rubric.get("criteria") or []
    ax.set_title(f"9. Top {min(top, len(crit))} criteria: mean normalised score")
    if not crit:
        ax.text(0.5, 0.5, "no criteria", ha="center", va="center", transform=ax.transAxes)
        return
    crit = crit[:top]
    y = np.arange(len(crit))
    ax.barh(y - 0.2, [c["mean_norm_A"] for c in crit], height=0.4, color=COLOUR_A, label="A")
    ax.barh(y + 0.2, [c["mean_norm_B"] for c in crit], height=0.4, color=COLOUR_B, label="B")
    names = [f"{c['name'][:24]} ({c['judgements']} judgements)" for c in crit]
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="lower right")


def has_length_row(summary: Mapping[str, Any]) -> bool:
    """The length row is drawn when lengths were measured (answer texts present, some valid prompt)."""
    length = summary.get("length") or {}
    return bool(length) and length.get("status") not in ("no_prompts", "no_texts")


def _panel_lengths(ax: Axes, length: Mapping[str, Any], number: int, model_a: str, model_b: str) -> None:
    a, b = length["A"], length["B"]
    ax.set_title(f"{number}. Mean answer length (n = {length['prompts']} prompts)")
    vals = [a["mean_chars"] or 0.0, b["mean_chars"] or 0.0]
    bars = ax.bar([f"A\n{_wrap(model_a)}", f"B\n{_wrap(model_b)}"], vals, color=[COLOUR_A, COLOUR_B])
    for bar, v, m in zip(bars, vals, (a, b), strict=True):
        ax.annotate(f"{v:.0f} chars\n~{m['mean_tokens_est'] or 0:.0f} est. tokens",
                    (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=9)  # fmt: skip
    ax.set_ylim(0, max([*vals, 1.0]) * 1.35)
    ax.set_ylabel("characters (tokens estimated as chars / 3.5)")


def _panel_length_bins(ax: Axes, length: Mapping[str, Any], number: int) -> None:
    """B's win rate per length-difference bin (dots, prompts per bin written), the fitted curve."""
    ax.set_title(f"{number}. B's win rate by length difference (B − A)")
    bins = [b for b in length["bins"] if b["prompts"]]
    if not bins:
        ax.text(0.5, 0.5, "no prompts", ha="center", va="center", transform=ax.transAxes)
        return
    xs = np.array([b["mean_diff"] for b in bins], dtype=np.float64)
    ys = np.array([b["win_rate_b"] for b in bins], dtype=np.float64)
    # Dot at the bin's mean difference, the bar spanning the bin's range.
    spans = [[x - b["diff_low"] for x, b in zip(xs, bins, strict=True)],
             [b["diff_high"] - x for x, b in zip(xs, bins, strict=True)]]  # fmt: skip
    ax.errorbar(xs, ys, xerr=spans, fmt="o", color=COLOUR_B, ecolor=COLOUR_TIE, markersize=8, capsize=3,
                label="bin: B's win rate (bar: its range)")  # fmt: skip
    for x, y, b in zip(xs, ys, bins, strict=True):
        ax.annotate(f"{b['prompts']} prompts", (x, y), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=8)  # fmt: skip
    lo, hi = min(b["diff_low"] for b in bins), max(b["diff_high"] for b in bins)
    if length["status"] == "fitted" and hi > lo:
        grid = np.linspace(lo, hi, 200)
        eta = length["intercept"] + length["slope"] * np.tanh(grid / length["diff_sd_chars"])
        ax.plot(grid, 1.0 / (1.0 + np.exp(-eta)), color="black", linewidth=1.2, label="logistic fit")
        ax.axhline(length["lc_win_rate_b"], color=COLOUR_B, linestyle=":", linewidth=1.2,
                   label=f"length-controlled {_pct(length['lc_win_rate_b'])}")  # fmt: skip
    ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8)
    ax.axvline(0.0, color=COLOUR_TIE, linewidth=0.8)
    ax.set_ylim(-0.05, 1.12)
    ax.set_xlabel("length difference B − A (characters)")
    ax.set_ylabel("B's win rate over the bin's prompts")
    ax.legend(fontsize=8, loc="lower right")


def _panel_length_text(ax: Axes, length: Mapping[str, Any], number: int) -> None:
    ax.set_axis_off()
    ax.set_title(f"{number}. Length-controlled win rate (AlpacaEval 2)")
    if length["status"] == "fitted":
        lo, hi = length["lc_interval_95"]
        lines = [
            f"raw (prompts): {_pct(length['raw_win_rate_b'])}",
            f"length-controlled: {_pct(length['lc_win_rate_b'])}  95% [{_pct(lo)}, {_pct(hi)}]",
            f"slope on tanh(d / sd): {length['slope']:+.3f}  (robust p = {length['slope_p']:.3g})",
            f"d = B − A in characters; sd of d = {length['diff_sd_chars']:.0f} chars",
            "",
            "fit: logit P(B) = b0 + b1 · tanh(d / sd), per prompt",
            "LC = logistic(b0), the fit at d = 0;",
            "95% interval: Wald, robust (sandwich) SE",
        ]
    else:
        lines = ["not estimated:", *textwrap.wrap(str(length["reason"]), 52)]
    warn = length.get("warnings") or []
    text = "\n".join(lines)
    ax.text(0.0, 0.95, text, ha="left", va="top", transform=ax.transAxes, fontsize=10)
    if warn:
        body = "\n".join(textwrap.wrap("WARNING: " + "; ".join(warn), 52, max_lines=8, placeholder=" …"))
        ax.text(0.0, 0.38, body, ha="left", va="top", transform=ax.transAxes, fontsize=9.5, color=COLOUR_ERR)
    else:
        ax.text(0.0, 0.38, "no length warning", ha="left", va="top", transform=ax.transAxes, fontsize=9.5)


@dataclass
class StartedFigure:
    """A figure with the panels of our numbers drawn; the trust row (if any) and header to come."""

    figure: Figure
    trust_axes: Sequence[Axes] | None
    stand_in: bool

    def close(self) -> None:
        """Drop the figure unfinished (its run failed), so a long-lived Lambda does not leak it."""
        plt.close(self.figure)


def start_figure(
    numbers: Mapping[str, Any],
    margins: np.ndarray,
    model_a: str,
    model_b: str,
    *,
    trust_row: bool,
    stand_in: bool = False,
) -> StartedFigure:
    """The panels of our numbers (`prompt_level`, `ours`, `judge`, `rubric`, `length`): all but the
    trust row and the header, so `summarize` draws them while a worker analyses the trust.
    `trust_row` leaves the last row of axes for `finish_figure`."""
    with plt.rc_context(PLAIN_TEXT):
        rubric = numbers.get("rubric")
        length = has_length_row(numbers)
        nrows = (3 if rubric is not None else 2) + (1 if length else 0) + (1 if trust_row else 0)
        fig, axes = plt.subplots(nrows, 3, figsize=(18, 5.2 * nrows + (0.8 if stand_in else 0)))
        _panel_prompts(axes[0][0], numbers["prompt_level"])
        _panel_rates(axes[0][1], numbers)
        _panel_gauge(axes[0][2], numbers["prompt_level"]["win_rate_b"])
        _panel_counts(axes[1][0], numbers["ours"]["counts"])
        _panel_pie(axes[1][1], numbers["ours"]["counts"])
        _panel_table(axes[1][2], numbers)
        if rubric is not None:
            _panel_weighted(axes[2][0], rubric, numbers["judge"], model_a, model_b)
            _panel_margin(axes[2][1], margins)
            _panel_criteria(axes[2][2], rubric)
        if length:
            row, first = (3, 10) if rubric is not None else (2, 7)
            _panel_lengths(axes[row][0], numbers["length"], first, model_a, model_b)
            _panel_length_bins(axes[row][1], numbers["length"], first + 1)
            _panel_length_text(axes[row][2], numbers["length"], first + 2)
        return StartedFigure(fig, list(axes[-1]) if trust_row else None, stand_in)


def finish_figure(started: StartedFigure, summary: Mapping[str, Any], model_a: str, model_b: str) -> Figure:
    """The trust row (from `summary["trust"]`) and the header (models, judge, headline, the
    stand-in banner) on a started figure, then the fixed layout."""
    with plt.rc_context(PLAIN_TEXT):
        return _finish_figure(started, summary, model_a, model_b)


def _finish_figure(started: StartedFigure, summary: Mapping[str, Any], model_a: str, model_b: str) -> Figure:
    fig, stand_in = started.figure, started.stand_in
    if started.trust_axes is not None:
        _panel_trust(started.trust_axes, summary["trust"])
    variant = summary.get("variant", "")
    # Figure-fraction heights of the header lines, so the header stays put whatever the row count.
    line = 0.3 / fig.get_figheight()
    y = 1.0 - line
    fig.text(0.5, y, f"B: {model_b}  vs  A: {model_a}  —  Nova {variant} judge", ha="center", va="top",
             fontsize=15, fontweight="bold")  # fmt: skip
    # At most four lines; a longer headline ends in "…" (the report and summary.json hold it whole).
    for text in textwrap.wrap(str(summary.get("headline", "")), width=170, max_lines=4, placeholder=" …"):
        y -= line * 0.9
        fig.text(0.5, y, text, ha="center", va="top", fontsize=10.5)
    if stand_in:
        y -= line * 1.9
        fig.text(
            0.5,
            y,
            STAND_IN_TEXT,
            ha="center",
            va="center",
            fontsize=18,
            color="white",
            fontweight="bold",
            bbox={"facecolor": COLOUR_ERR, "edgecolor": "black", "boxstyle": "round"},
        )
        fig.text(0.5, 0.45, "STAND-IN", ha="center", va="center", fontsize=110, color=COLOUR_ERR, alpha=0.08,
                 rotation=25)  # fmt: skip
        y -= line * 0.6
    top = y - line * 1.8  # room for the panel titles above the first row
    # Fixed margins instead of tight_layout: same look for this grid, and one draw less (~1 s in Lambda).
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.05, top=top - 0.02, wspace=0.45, hspace=0.4)
    return fig


def _panel_trust(axes: Sequence[Axes], trust: Mapping[str, Any]) -> None:
    """Last row: position-bias rates, agreement with humans (when labelled), the trust headline."""
    plot_trust(trust, axes[0])
    calibration = trust.get("calibration", {})
    if calibration.get("measured"):
        plot_reliability(calibration, axes[1])
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "calibration not measured:\nno human preference labels given",
                     ha="center", va="center", transform=axes[1].transAxes, fontsize=10)  # fmt: skip
    axes[2].set_axis_off()
    axes[2].set_title("Judge trust", fontsize=12)
    text = "\n".join(textwrap.wrap(str(trust.get("headline", "")).removeprefix("Judge trust: "), 48))
    axes[2].text(0.0, 0.95, text, ha="left", va="top", transform=axes[2].transAxes, fontsize=10)


def finished_png(started: StartedFigure, summary: Mapping[str, Any], model_a: str, model_b: str) -> bytes:
    """`finish_figure` as PNG bytes, drawn under `PLAIN_TEXT` (no math text, like every text in
    it); the figure is closed either way, so a long-lived Lambda does not leak figures."""
    try:
        fig = finish_figure(started, summary, model_a, model_b)
        with plt.rc_context(PLAIN_TEXT):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            return buf.getvalue()
    finally:
        started.close()


def _wrap(name: str, width: int = 22) -> str:
    """Break long model ids at '/' or '-' so the two bar labels do not run into each other."""
    return "\n".join(textwrap.wrap(name.replace("/", "/ "), width)).replace("/ ", "/")
