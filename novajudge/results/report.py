"""The HTML report: one self-contained file a reviewer can open offline and trust.

Why self-contained: it is stored in S3 and opened from a presigned URL or a laptop, so it carries
its CSS inline and the figure as a base64 PNG, with no scripts and no external assets. Every piece
of text that came from a model or the judge is HTML-escaped (responses routinely contain markup).
The per-prompt section is ordered by |margin| (most lopsided first) because those are the
judgements worth reading; for large runs it is capped (`max_prompts`) with a note saying so, so the
file stays usable in a browser.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from novajudge.results.figure import STAND_IN_TEXT
from novajudge.trust.render import render_trust_html

DEFAULT_MAX_PROMPTS = 200

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.banner{background:#d62728;color:#fff;font-weight:700;font-size:1.3rem;padding:.8rem;text-align:center;
border:3px solid #000;border-radius:6px}
.headline{font-size:1.15rem;background:#f4f6f8;border-left:5px solid #1f77b4;padding:.7rem 1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #ddd}
details{border:1px solid #ddd;border-radius:4px;margin:.6rem 0;padding:.4rem .8rem}
summary{cursor:pointer;font-weight:600}
pre{white-space:pre-wrap;word-wrap:break-word;background:#fafafa;border:1px solid #eee;padding:.5rem;
max-height:24rem;overflow:auto;font-size:.85rem}
.resp{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.note{color:#555;font-size:.9rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, fmt: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return format(value, fmt)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(ci: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def _summary_table(summary: Mapping[str, Any]) -> str:
    h, ours, judge, methods = summary["prompt_level"], summary["ours"], summary["judge"], summary["methods"]
    c = ours["counts"]
    boot = methods["bootstrap_95"]
    iv = methods["interval_95"]
    mixed = int(summary.get("orders", {}).get("BA", 0)) > 0
    judge_note = (
        "reported by the judge (Bradley-Terry) for the responses as sent; the input mixes both orders, "
        "so this is a position statistic (P(second-shown response preferred)), not model B's win rate"
        if mixed
        else "reported by the judge (Bradley-Terry), responses as sent (all in the A/B order)"
    )
    rows = [
        ("HEADLINE: prompts (total / with a valid outcome)", f"{h['prompts']} / {h['prompts_valid']}",
         methods["prompt_level"]),
        ("prompts preferring B / A / neither",
         f"{h['b_preferred']} / {h['a_preferred']} / {h['no_net_preference']}",
         "net preference = the prompt's outcome above / below / at 1/2"),
        ("B's win rate over prompts", _pct(h["win_rate_b"]), "mean of the per-prompt outcomes"),
        ("95% interval over prompts", _ci(h["interval_95"]),
         f"{h['interval_method']}; seed {iv['seed']}, {iv['resamples']} resamples"),
        ("sign test p over prompts", _num(h["sign_test_p"], ".3g"), methods["prompt_sign_test"]),
        ("verdict", h["verdict_text"], methods["verdict"]),
        ("SECONDARY: judgements (total / valid / errors)",
         f"{c['total']} / {c['valid']} / {c['inference_errors']}",
         methods["per_judgement"] + "; errors are judgements the judge could not make"),
        ("error rate (judgements)", _pct(ours["error_rate"]), "inference errors / total"),
        ("A wins / B wins (judgements)", f"{c['a_wins']} / {c['b_wins']}", methods["counts"]),
        ("ties / both-bad ties (judgements)", f"{c['ties']} / {c['bothbad_ties']}",
         "labels A=B and A=B (bothbad)"),
        ("B's win rate, decided judgements", _pct(ours["win_rate_b_decided"]), methods["win_rate_b_decided"]),
        ("95% interval (Wilson, judgements)", _ci(ours["wilson_95"]), methods["wilson_95"]),
        ("B's win rate, ties as ½ (judgements)", _pct(ours["win_rate_b_ties_half"]),
         methods["win_rate_b_ties_half"]),
        ("95% interval (bootstrap, judgements)", _ci(ours["bootstrap_95"]),
         f"{boot['method']}; seed {boot['seed']}, {boot['resamples']} resamples"),
        ("sign test p (judgements)", _num(ours["sign_test_p"], ".3g"), methods["sign_test_p"]),
        ("judge's winrate" + (" (position statistic)" if mixed else ""), _pct(judge.get("winrate")),
         judge_note),
        ("judge's bounds", _ci([judge.get("lower_rate"), judge.get("upper_rate")]),
         "reported by the judge (its bootstrap percentiles 2.5 / 97.5)"),
    ]  # fmt: skip
    rubric = summary.get("rubric")
    if rubric:
        m = rubric["margin"]
        rows += [
            ("mean weighted score A / B (ours)",
             f"{_num(rubric['weighted_score_A_mean'])} / {_num(rubric['weighted_score_B_mean'])}",
             methods.get("weighted_scores", "")),
            ("judge's weighted score A / B",
             f"{_num(judge.get('weighted_score_A'))} / {_num(judge.get('weighted_score_B'))}",
             "reported by the judge, in terms of the responses as sent"),
            ("margin A − B: mean / median", f"{_num(m['mean'], '+.3f')} / {_num(m['median'], '+.3f')}",
             methods.get("margin", "")),
            ("margin 5% / 25% / 75% / 95%",
             " / ".join(_num(m[k], "+.3f") for k in ("q05", "q25", "q75", "q95")),
             "quantiles over judgements (weights renormalised)"),
            ("judge vs ours, max |diff|", _num(rubric["judge_vs_ours_max_abs_diff"], ".2g"),
             "per-response weighted scores: the judge's vs recomputed from its criteria"),
            ("weights", rubric["weights_note"], ""),
        ]  # fmt: skip
    body = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(v)}</td><td class='note'>{_e(n)}</td></tr>"
                   for k, v, n in rows)  # fmt: skip
    return f"<table><tr><th>number</th><th>value</th><th>method</th></tr>{body}</table>"


def bin_label(b: Mapping[str, Any]) -> str:
    """A length-difference bin in words: '-120 to +35 chars' (its smallest and largest difference)."""
    if b["diff_low"] == b["diff_high"]:
        return f"{b['diff_low']:+.0f} chars"
    return f"{b['diff_low']:+.0f} to {b['diff_high']:+.0f} chars"


def _length_section(summary: Mapping[str, Any], model_a: str, model_b: str) -> str:
    """Mean answer lengths, B's win rate by length difference, and the length-controlled win rate."""
    block = summary.get("length")
    if not block:
        return ""
    methods = summary["methods"].get("length", {})
    a, b = block["A"], block["B"]
    rows = [
        (f"mean answer length A ({model_a})",
         f"{_num(a['mean_chars'], '.0f')} chars (~{_num(a['mean_tokens_est'], '.0f')} est. tokens)",
         methods.get("lengths", "")),
        (f"mean answer length B ({model_b})",
         f"{_num(b['mean_chars'], '.0f')} chars (~{_num(b['mean_tokens_est'], '.0f')} est. tokens)",
         block["tokens_note"]),
        ("median answer length A / B",
         f"{_num(a['median_chars'], '.0f')} / {_num(b['median_chars'], '.0f')} chars", ""),
        ("length difference B − A: mean", f"{_num(block['mean_diff_chars'], '+.0f')} chars",
         block["diff_definition"]),
        ("prompts where B / A is longer / equal",
         f"{block['b_longer']} / {block['a_longer']} / {block['equal_length']}",
         f"of {block['prompts']} prompts"),
        ("B's win rate over prompts (raw)", _pct(block["raw_win_rate_b"]), "the headline's win rate"),
    ]  # fmt: skip
    if block["status"] == "fitted":
        rows += [
            ("length-controlled win rate of B", _pct(block["lc_win_rate_b"]), methods.get("lc_win_rate", "")),
            ("95% interval (LC)", _ci(block["lc_interval_95"]), "Wald, robust (sandwich) standard error"),
            ("slope on tanh(d / sd)", f"{_num(block['slope'], '+.3f')} (SE {_num(block['slope_se'], '.3f')}, "
             f"p = {_num(block['slope_p'], '.3g')})",
             f"sd of d = {_num(block['diff_sd_chars'], '.0f')} chars; > 0: the longer answer is favoured"),
        ]  # fmt: skip
    else:
        rows.append(("length-controlled win rate of B", "not estimated", block["reason"]))
    body = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(v)}</td><td class='note'>{_e(n)}</td></tr>"
                   for k, v, n in rows)  # fmt: skip
    bins = "".join(
        f"<tr><td>{_e(bin_label(x))}</td><td class='num'>{x['prompts']}</td>"
        f"<td class='num'>{_pct(x['win_rate_b'])}</td><td class='num'>{x['b_preferred']} / {x['a_preferred']}"
        "</td></tr>"
        for x in block["bins"]
    )
    warn = "".join(f"<li>{_e(w)}</li>" for w in block["warnings"])
    verdict = (
        f"<p class='headline' style='border-left-color:#d62728'><b>Length warning.</b></p><ul>{warn}</ul>"
        if warn
        else f"<p class='note'>No length warning ({_e(block['warning_rule'])}).</p>"
    )
    return (
        f"<h2>Length check</h2>{verdict}"
        f"<table><tr><th>number</th><th>value</th><th>method</th></tr>{body}</table>"
        "<h3>B's win rate by length difference (B − A, characters)</h3>"
        f"<p class='note'>{_e(methods.get('bins', ''))}.</p>"
        "<table><tr><th>length difference B − A</th><th>prompts</th><th>B's win rate</th>"
        f"<th>prompts preferring B / A</th></tr>{bins}</table>"
    )


def _criteria_table(rubric: Mapping[str, Any], model_a: str, model_b: str) -> str:
    crit = rubric.get("criteria") or []
    if not crit:
        return "<p>No criteria in the judge output.</p>"
    head = (
        "<tr><th>criterion</th><th>type</th><th>judgements</th><th>mean weight</th>"
        f"<th>mean score A ({_e(model_a)})</th><th>mean score B ({_e(model_b)})</th>"
        "<th>A better</th><th>B better</th><th>equal</th></tr>"
    )
    body = "".join(
        f"<tr><td>{_e(c['name'])}</td><td>{_e(c['type'])}</td><td class='num'>{c['judgements']}</td>"
        f"<td class='num'>{_num(c['mean_weight'])}</td><td class='num'>{_num(c['mean_norm_A'])}</td>"
        f"<td class='num'>{_num(c['mean_norm_B'])}</td><td class='num'>{c['a_wins']}</td>"
        f"<td class='num'>{c['b_wins']}</td><td class='num'>{c['ties']}</td></tr>"
        for c in crit
    )
    return (
        "<p class='note'>Scores normalised to [0, 1] ((s−1)/4 for 1–5 scales, 1/0 for binary), per model "
        "(swapped rows un-swapped); criteria merged by normalised name.</p>"
        f"<table>{head}{body}</table>"
    )


def lopsided_order(prompts: pd.DataFrame, scores: pd.DataFrame | None) -> np.ndarray:
    """Row positions ordered by |margin| descending (ours if recomputed, else the judge's); errors last."""
    margin = prompts["score_margin"].to_numpy(dtype=np.float64).copy()
    if scores is not None and len(scores):
        ours = pd.Series(scores["margin"].to_numpy(), index=scores["row"].to_numpy())
        mapped = prompts["row"].map(ours).to_numpy(dtype=np.float64)
        margin = np.where(np.isfinite(mapped), np.abs(mapped), np.abs(margin))
    else:
        margin = np.abs(margin)
    key = np.where(np.isfinite(margin), margin, -1.0)
    key = np.where(prompts["label"].to_numpy() == "error", -2.0, key)
    return np.argsort(-key, kind="stable")


def _prompt_block(
    p: Mapping[str, Any], crit: list[dict[str, Any]], margin: float | None, model_a: str, model_b: str
) -> str:
    swapped = p["order"] == "BA"
    resp_a = p["response_B"] if swapped else p["response_A"]
    resp_b = p["response_A"] if swapped else p["response_B"]
    sent = (
        "sent swapped (B shown to the judge as response_A)" if swapped else "sent in order (A as response_A)"
    )
    margin_txt = _num(margin, "+.3f") if margin is not None else "n/a"
    rows = ""
    for c in crit:
        sa, sb = (c["score_B"], c["score_A"]) if swapped else (c["score_A"], c["score_B"])
        ja, jb = (
            (c["justification_B"], c["justification_A"])
            if swapped
            else (c["justification_A"], c["justification_B"])
        )
        fmt = ".0f" if c["type"] == "binary" or float(sa).is_integer() else ".2f"
        rows += (
            f"<tr><td>{_e(c['criterion'])}</td><td>{_e(c['type'])}</td>"
            f"<td class='num'>{_num(c['weight'])}</td>"
            f"<td class='num'>{_num(sa, fmt)}</td><td class='num'>{_num(sb, fmt)}</td>"
            f"<td>{_e(ja)}</td><td>{_e(jb)}</td></tr>"
        )
    table = (
        "<table><tr><th>criterion</th><th>type</th><th>weight</th><th>score A</th><th>score B</th>"
        f"<th>justification A</th><th>justification B</th></tr>{rows}</table>"
        if rows
        else ""
    )
    return (
        f"<details><summary>#{_e(p['row'])} · prompt {_e(p['prompt_id'])} · winner {_e(p['winner'])} · "
        f"label {_e(p['label'])} · margin A−B {_e(margin_txt)}</summary>"
        f"<p class='note'>{_e(sent)}; the judge's label is for the responses as sent.</p>"
        f"<h4>Prompt</h4><pre>{_e(p['prompt'])}</pre>"
        f"<div class='resp'><div><h4>A · {_e(model_a)}</h4><pre>{_e(resp_a)}</pre></div>"
        f"<div><h4>B · {_e(model_b)}</h4><pre>{_e(resp_b)}</pre></div></div>"
        f"{table}<h4>Overall justification</h4><pre>{_e(p['overall_justification'])}</pre></details>"
    )


def render_html(
    summary: Mapping[str, Any],
    prompts: pd.DataFrame,
    criteria: pd.DataFrame,
    scores: pd.DataFrame | None,
    png: bytes,
    model_a: str,
    model_b: str,
    *,
    stand_in: bool = False,
    max_prompts: int = DEFAULT_MAX_PROMPTS,
) -> str:
    """The whole report as one HTML string."""
    order = lopsided_order(prompts, scores)
    shown = order[: max(0, max_prompts)]
    our_margin = (
        pd.Series(scores["margin"].to_numpy(), index=scores["row"].to_numpy()) if scores is not None else None
    )
    shown_rows = set(prompts["row"].to_numpy()[shown].tolist())
    # Plain records for the few rows shown: a pandas row lookup per cell costs more than the page.
    crit_by_row: dict[int, list[dict[str, Any]]] = {}
    for c in criteria[criteria["row"].isin(shown_rows)].to_dict("records"):
        crit_by_row.setdefault(c["row"], []).append(c)
    blocks = []
    for p in prompts.iloc[shown].to_dict("records"):
        m = None
        if our_margin is not None and p["row"] in our_margin.index and np.isfinite(our_margin[p["row"]]):
            m = float(our_margin[p["row"]])
        elif np.isfinite(p["score_margin"]):
            # the judge's margin is A - B as sent: flip it for swapped rows to put it in model terms
            m = float(p["score_margin"]) * (-1.0 if p["order"] == "BA" else 1.0)
        blocks.append(_prompt_block(p, crit_by_row.get(p["row"], []), m, model_a, model_b))
    cap_note = (
        f"<p class='note'>Showing the {len(shown)} most lopsided of {len(prompts)} judgements "
        f"(capped at {max_prompts}; the full table is in details.parquet).</p>"
        if len(shown) < len(prompts)
        else f"<p class='note'>All {len(prompts)} judgements, most lopsided first.</p>"
    )
    banner = f"<div class='banner'>{_e(STAND_IN_TEXT)}</div>" if stand_in else ""
    notes = "".join(f"<li>{_e(n)}</li>" for n in summary.get("notes", []))
    rubric = summary.get("rubric")
    crit_section = f"<h2>Criteria</h2>{_criteria_table(rubric, model_a, model_b)}" if rubric else ""
    img = base64.b64encode(png).decode("ascii")
    title = f"{model_b} (B) vs {model_a} (A) — Nova {summary.get('variant', '')} judge"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{banner}"
        f"<h1>{_e(title)}</h1><p class='headline'>{_e(summary.get('headline', ''))}</p>"
        f"{'<ul class=note>' + notes + '</ul>' if notes else ''}"
        f"<h2>Summary</h2>{_summary_table(summary)}{_length_section(summary, model_a, model_b)}"
        f"<h2>Figure</h2><img alt='summary figure' src='data:image/png;base64,{img}'>"
        f"{crit_section}{render_trust_html(summary['trust']) if summary.get('trust') else ''}"
        f"<h2>Judgements</h2>{cap_note}{''.join(blocks)}{banner}</body></html>"
    )
