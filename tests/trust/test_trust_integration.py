"""From the judge's archive to trust figures: archive → `summarize` → details.parquet → trust CLI.

Guards the contract between the results package (which writes details.parquet) and the trust
analyses (which read it back), using the same archive writer the local stand-in judge uses.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

import novajudge.cli.calibrate_cmd
import novajudge.cli.reweight_cmd  # noqa: F401  (register the commands)
from novajudge.cli.app import app
from novajudge.local.judge_archive import Criterion, Judgement, write_judge_archive
from novajudge.results.summarize import summarize

# prompt: (correctness A/B, style A/B) in *model* terms; weights 0.6 / 0.4.
# p0: B wins (−0.25) but A without style (+0.25); p1: A wins (+0.10) but B without style (−0.5);
# p2: A wins either way.
MODEL_SCORES = {"p0": ((5, 4), (1, 5)), "p1": ((2, 4), (5, 1)), "p2": ((5, 1), (5, 1))}
WINNER = {"p0": "B", "p1": "A", "p2": "A"}


def judgement(pid: str, order: str) -> Judgement:
    (ca, cb), (sa, sb) = MODEL_SCORES[pid]
    if order == "BA":  # model B is response_A as sent
        ca, cb, sa, sb = cb, ca, sb, sa
    winner_as_sent = WINNER[pid] if order == "AB" else {"A": "B", "B": "A"}[WINNER[pid]]
    return Judgement(
        prompt=f"question {pid}", response_A="first", response_B="second",
        label="A>B" if winner_as_sent == "A" else "B>A",
        criteria=[Criterion("Correctness", "is it right", "scale", 0.6, ca, cb),
                  Criterion("Style", "is it nice", "scale", 0.4, sa, sb)],
    )


def results_folder(tmp_path):
    pairs = [(pid, order) for pid in MODEL_SCORES for order in ("AB", "BA")]
    archive = tmp_path / "output.tar.gz"
    write_judge_archive(archive, "rubric", [judgement(p, o) for p, o in pairs], "run", "20260101_000000")
    manifest = [{"row": i, "prompt_id": p, "order": o} for i, (p, o) in enumerate(pairs)]
    out = tmp_path / "results"
    summarize(archive, out, "model-a", "model-b", manifest=manifest)
    return out


def test_reweight_and_calibrate_on_a_summarized_run(tmp_path):
    out = results_folder(tmp_path)
    args = ["reweight", str(out), "--drop", "style", "--out", str(tmp_path / "r.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    reweighted = json.loads((tmp_path / "r.json").read_text())["reweight"]
    assert sorted((f["prompt_id"], f["order"], f["old"], f["new"]) for f in reweighted["flips"]) == [
        ("p0", "AB", "B", "A"), ("p0", "BA", "B", "A"), ("p1", "AB", "A", "B"), ("p1", "BA", "A", "B")]
    assert reweighted["label_vs_margin_rule_disagreements"] == 0
    assert reweighted["reconciled"]["counts"]["A"] == 2 and reweighted["reconciled"]["counts"]["B"] == 1

    labels = tmp_path / "labels.jsonl"
    lines = [json.dumps({"prompt_id": p, "preference": w}) for p, w in WINNER.items()]
    labels.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(labels),
                                      "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    block = json.loads((tmp_path / "t.json").read_text())
    assert block["variant"] == "rubric"
    assert block["position"]["consistency"]["rate"] == 1.0
    assert block["position"]["first_position_preference"]["rate"] == 0.5
    assert block["calibration"]["forward_agreement"]["rate"] == 1.0
    assert block["calibration"]["reconciled_agreement"]["rate"] == 1.0


def test_binary_archive_forward_backward_reach_the_trust_block(tmp_path):
    from novajudge.results.parse import read_flattened
    from novajudge.trust.analyse import analyse
    from novajudge.trust.binary import binary_outputs_from_details

    # Three pairs, all sent AB. p0: consistent B; p1: the judge picked whichever came first (backward
    # output names positions as shown, so [[A>B]] there means model B); p2: inference error.
    judgements = [
        Judgement("q0", "a", "b", "B>A", forward_output="[[B>A]]", backward_output="[[A>B]]"),
        Judgement("q1", "a", "b", "A>B", forward_output="[[A>B]]", backward_output="[[A>B]]"),
        Judgement("q2", "a", "b", None),
    ]
    archive = tmp_path / "binary.tar.gz"
    write_judge_archive(archive, "binary", judgements, "run", "20260101_000000")
    manifest = [{"row": i, "prompt_id": f"p{i}", "order": "AB"} for i in range(3)]
    flat = read_flattened(archive, manifest)
    outputs = binary_outputs_from_details(flat.judge.details, flat.prompts)
    assert outputs is not None and outputs["prompt_ids"] == ["p0", "p1", "p2"]
    block = analyse(flat.prompts, flat.criteria, variant="binary", binary_outputs=outputs)
    binary = block["position_binary"]
    assert binary["reconciled"]["counts"]["B"] == 1
    assert binary["reconciled"]["counts"]["inconsistent"] == 1
    assert binary["reconciled"]["counts"]["error"] == 1
    assert binary["consistency"]["rate"] == 0.5
    assert binary["first_position_preference"]["successes"] == 3  # p0 backward, p1 both
    assert binary["first_position_preference"]["n"] == 4
    assert block["position"]["consistency"]["measured"] is False  # the rows were sent AB only
