"""The summary block: JSON-safe, complete for each variant, escaped in HTML, drawable."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from matplotlib.figure import Figure
from trust_builders import crit_row, prompt_row, prompts_table

from novajudge.trust.analyse import analyse, plot_trust, render_trust_html


def rubric_tables():
    # p0: B both orders; p1: position-A judge (inconsistent); p2: A both orders.
    prompts = prompts_table([
        prompt_row(0, "p0", "AB", "B", -0.5), prompt_row(1, "p0", "BA", "A", 0.5),
        prompt_row(2, "p1", "AB", "A", 0.25), prompt_row(3, "p1", "BA", "A", 0.25),
        prompt_row(4, "p2", "AB", "A", 0.75), prompt_row(5, "p2", "BA", "B", float("nan")),
    ])
    criteria = pd.DataFrame([crit_row(r, f"p{r // 2}", "AB" if r % 2 == 0 else "BA", "<b>Accuracy</b>",
                                      1.0, 5, 3) for r in range(6)])
    return prompts, criteria


def test_rubric_block_is_json_and_hand_checked():
    prompts, criteria = rubric_tables()
    block = analyse(prompts, criteria, variant="rubric", human_labels={"p0": "B", "p1": "tie", "p2": "A"})
    text = json.dumps(block, allow_nan=False)
    assert json.loads(text) == block
    assert block["position"]["consistency"]["successes"] == 2
    assert block["position"]["reconciled"]["counts"]["inconsistent"] == 1
    assert block["calibration"]["measured"] is True
    assert block["calibration"]["forward_agreement"]["successes"] == 2  # p0, p2 (p1 judge said A)
    assert block["calibration"]["reconciled_agreement"]["successes"] == 2
    # Margins are renormalised from the criteria (weight 1, scores 5 vs 3 → 1 − 0.5 = 0.5 as sent),
    # so the row whose judge margin is NaN has one too: 6 judgements.
    assert block["margins"]["n"] == 6
    assert block["margins"]["unit"] == "judgements"
    assert block["criteria"][0]["criterion"] == "b_accuracy_b"  # the one criterion key (verdicts)
    assert "2 of 3 prompts (67%)" in block["headline"]
    assert "agreement with humans 67% (n=3)" in block["headline"]


def test_binary_block_with_outputs_and_label_file(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"prompt_id": "p0", "preference": "A"}\n')
    prompts = prompts_table([prompt_row(0, "p0", "AB", "A")])
    block = analyse(prompts, pd.DataFrame(), variant="binary", human_labels=labels,
                    binary_outputs={"forward": ["[[A>B]]"], "backward": ["[[A>B]]"], "prompt_ids": ["p0"]})
    json.dumps(block, allow_nan=False)
    assert block["position"]["consistency"]["measured"] is False
    assert block["position_binary"]["consistency"]["rate"] == 0.0
    assert block["scores"]["measured"] is False
    assert block["calibration"]["by_confidence"]["measured"] is False
    frame = pd.DataFrame({"forward_output": ["B>A"], "backward_output": ["A>B"], "prompt_id": ["p0"]})
    assert analyse(prompts, pd.DataFrame(), variant="binary",
                   binary_outputs=frame)["position_binary"]["consistency"]["rate"] == 1.0
    with pytest.raises(ValueError, match="unknown judge variant"):
        analyse(prompts, pd.DataFrame(), variant="pairwise")


def test_html_is_escaped_and_self_contained():
    prompts, criteria = rubric_tables()
    html = render_trust_html(analyse(prompts, criteria, variant="rubric"))
    assert html.startswith("<section") and html.endswith("</section>")
    assert "&lt;b&gt;Accuracy&lt;/b&gt;" in html and "<b>Accuracy" not in html
    assert "no human preference labels" in html
    for external in ("<script", "http://", "https://", "<link", "<img"):
        assert external not in html


def test_plot_on_figure_and_axes():
    prompts, criteria = rubric_tables()
    for labels in (None, {"p0": "B"}):
        block = analyse(prompts, criteria, variant="rubric", human_labels=labels)
        fig = Figure(figsize=(8, 3))
        plot_trust(block, fig)
        assert len(fig.axes) == 2
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG")
    ax = Figure().add_subplot(1, 1, 1)
    plot_trust(block, ax)
    assert len(ax.patches) == 4  # plain, reconciled, first position, consistency
