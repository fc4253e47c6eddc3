"""The trust block as an HTML fragment and as figure panels.

The HTML is a self-contained fragment (no scripts, styles or images fetched from anywhere) with
every value escaped, because criterion names and ids come from the judge and the user's data.
Plotting takes an `Axes` (one compact panel) or a `Figure` (two panels), so the results figure can
give it a slot or a page of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_QUANTILE_KEYS = ("0", "0.05", "0.25", "0.5", "0.75", "0.95", "1")


def _pct(rate: Any) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _rate(p: Mapping[str, Any]) -> str:
    if p.get("rate") is None:
        return f"n/a (n={p.get('n', 0)})"
    return f"{p['rate']:.1%} [{p['ci_low']:.1%}, {p['ci_high']:.1%}] ({p['successes']}/{p['n']})"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class=\"trust\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _not_measured(block: Mapping[str, Any]) -> str:
    return f"<p class=\"not-measured\">{escape(str(block.get('reason', 'not measured')))}</p>"


def _position_html(position: Mapping[str, Any], title: str) -> str:
    parts = [f"<h3>{escape(title)}</h3>"]
    plain = position["plain"]
    rec = position["reconciled"]
    keys = ("A", "B", "tie", "bothbad", "error")
    rows = [["as sent (AB only)", *(plain["counts"][k] for k in keys), "–", _rate(plain["b_win_rate"])]]
    if rec.get("measured"):
        rows.append(["reconciled (both orders agree)", *(rec["counts"][k] for k in keys),
                     rec["counts"]["inconsistent"], _rate(rec["b_win_rate"])])
    parts.append(_table(["view", "A wins", "B wins", "ties", "both bad", "errors", "order-inconsistent",
                         "B win rate (Wilson 95%)"], rows))
    if not rec.get("measured"):
        parts.append(_not_measured(rec))
    consistency = position["consistency"]
    first = position["first_position_preference"]
    items = []
    if consistency.get("measured"):
        items.append(f"Positional consistency: {_rate(consistency)}")
    items.append(f"First-position preference: {_rate(first)} — {first['note']}")
    missing = position["missing_order"]
    if missing["only_ab"] or missing["only_ba"]:
        items.append(f"Prompts judged in one order only: {missing['only_ab']} AB-only, "
                     f"{missing['only_ba']} BA-only")
    parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>")
    return "".join(parts)


def _calibration_html(cal: Mapping[str, Any]) -> str:
    parts = ["<h3>Agreement with human labels</h3>"]
    if not cal.get("measured"):
        return parts[0] + _not_measured(cal)
    kappa = cal["kappa"]
    rec = cal["reconciled_agreement"]
    items = [f"Forward (AB) agreement: {_rate(cal['forward_agreement'])}",
             "Reconciled agreement: " + (_rate(rec) if rec.get("measured") else str(rec["reason"])),
             "Cohen's kappa (A/B/tie): " + ("undefined" if kappa is None else f"{kappa:.2f}"),
             f"Labels: {cal['labels']}, without a judgement: {cal['labels_without_judgement']}, "
             f"judge errors: {cal['judge_errors']}"]
    parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>")
    conf = cal["by_confidence"]
    if conf.get("measured"):
        rows = [[f"[{b['low']:g}, {b['high']:g}{']' if b['closed'] else ')'}", b["n"], b["correct"],
                 _pct(b["accuracy"])] for b in conf["buckets"]]
        parts.append(_table(["|score margin|", "prompts", "agree", "agreement"], rows))
    else:
        parts.append(_not_measured(conf))
    return "".join(parts)


def _scale_html(block: Mapping[str, Any]) -> str:
    parts = ["<h3>How the judge uses its scales</h3>"]
    scores, margins = block["scores"], block["margins"]
    if not scores.get("measured"):
        return parts[0] + _not_measured(scores)
    scale = scores["scale"]
    counts = scale["counts"]
    parts.append(_table(["score", *counts.keys()], [["count", *counts.values()]]))
    parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in (
        f"Distinct 1–5 values used: {scale['values_used']}; share of extremes (1 or 5): "
        f"{_pct(scale['share_extremes'])}",
        f"Binary criteria: {scores['binary']['n']} scores, {_pct(scores['binary']['share_true'])} true",
    )) + "</ul>")
    if margins.get("measured"):
        q = margins["quantiles"]
        header = ["margin (A − B)", "min", "5%", "25%", "median", "75%", "95%", "max",
                  f"|m| ≤ {margins['near_tie_threshold']:g}"]
        row = ["", *(f"{q[k]:+.3f}" for k in _QUANTILE_KEYS), _pct(margins["share_near_tie"])]
        parts.append(_table(header, [row]))
    else:
        parts.append(_not_measured(margins))
    if block.get("criteria"):
        rows = [[c["criterion"], c["judgements"], c["prompts"], f"{c['mean_weight']:.3f}",
                 ", ".join(c["spellings"])] for c in block["criteria"]]
        parts.append("<h4>Most common criteria</h4>")
        parts.append(_table(["criterion", "judgements", "prompts", "mean weight", "as written"], rows))
    return "".join(parts)


def render_trust_html(block: Mapping[str, Any]) -> str:
    """An escaped HTML fragment (a `<section>`) for the report; no external assets."""
    parts = ["<section class=\"trust\"><h2>Can we trust the judge?</h2>",
             f"<p>{escape(str(block.get('headline', '')))}</p>",
             _position_html(block["position"], "Position bias (labels)")]
    if "position_binary" in block:
        parts.append(_position_html(block["position_binary"], "Position bias (binary forward/backward)"))
    parts.append(_calibration_html(block["calibration"]))
    parts.append(_scale_html(block))
    parts.append("</section>")
    return "".join(parts)


def _plot_position(block: Mapping[str, Any], ax) -> None:
    position = block["position"]
    views = [("as sent (AB)", position["plain"]["b_win_rate"])]
    if position["reconciled"].get("measured"):
        views.append(("reconciled", position["reconciled"]["b_win_rate"]))
    first = position["first_position_preference"]
    views.append(("first position\npreferred", first))
    if position["consistency"].get("measured"):
        views.append(("order\nconsistency", position["consistency"]))
    names = [v[0] for v in views]
    rates = [v[1]["rate"] if v[1]["rate"] is not None else 0.0 for v in views]
    pairs = list(zip(rates, views, strict=True))
    low = [r - v[1]["ci_low"] if v[1]["rate"] is not None else 0.0 for r, v in pairs]
    high = [v[1]["ci_high"] - r if v[1]["rate"] is not None else 0.0 for r, v in pairs]
    ax.barh(names, rates, xerr=[low, high], color="#55a868", capsize=4)
    for y, view in enumerate(views):
        text = "n/a" if view[1]["rate"] is None else f"{view[1]['rate']:.0%} (n={view[1]['n']})"
        ax.text(0.01, y, text, va="center", fontsize=8, color="black")
    ax.axvline(0.5, linestyle="--", color="grey", linewidth=1)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title("Judge position bias (bars: rate, whiskers: Wilson 95%)", fontsize=9)


def plot_trust(block: Mapping[str, Any], ax_or_fig) -> None:
    """Draw the trust panels: on an `Axes`, the position panel; on a `Figure`, position + calibration.

    With a figure the second panel is the agreement-by-margin chart when human labels were given,
    else the histogram of score margins (rubric), else a note saying neither was measured.
    """
    from matplotlib.figure import Figure

    from novajudge.trust.calibration import plot_reliability

    if not isinstance(ax_or_fig, Figure):
        _plot_position(block, ax_or_fig)
        return
    left, right = ax_or_fig.subplots(1, 2)
    _plot_position(block, left)
    calibration = block["calibration"]
    margins = block["margins"]
    if calibration.get("measured"):
        plot_reliability(calibration, right)
    elif margins.get("measured"):
        edges = margins["histogram"]["edges"]
        right.stairs(margins["histogram"]["counts"], edges, fill=True, color="#8172b3")
        right.axvline(0, color="grey", linewidth=1)
        right.set_xlabel("weighted score margin (model A − model B)")
        right.set_ylabel("judgements")
        right.set_title("Distribution of score margins", fontsize=9)
    else:
        right.text(0.5, 0.5, "no human labels and no score margins:\ncalibration not measured",
                   ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()
