"""One raw judge text, one verdict; one criterion name, one key: through every path that reads them.

The paths: flattening an archive (`read_flattened`, `summarize`), the trust analyses' reader of a
prompts table (position bias, calibration), the binary judge's forward/backward outputs, and the
`calibrate`/`reweight` commands reading a details.parquet back. The archives are written here by
hand, not by the project's writer, and every expected answer is written out below.
"""

from __future__ import annotations

import json

import pandas as pd
from results_builders import parquet_bytes, tar_archive
from typer.testing import CliRunner

import novajudge.cli.calibrate_cmd
import novajudge.cli.reweight_cmd  # noqa: F401  (register the commands)
from novajudge.cli.app import app
from novajudge.results.details import details_parquet, load_details
from novajudge.results.parse import read_flattened
from novajudge.results.summarize import summarize
from novajudge.trust.binary import binary_outputs_from_details
from novajudge.trust.criteria import most_common_criteria
from novajudge.trust.position import binary_prompts_table, position_bias
from novajudge.trust.reweight import reweight
from novajudge.verdicts import CRITERION_COLUMNS, check_prompts

#: (raw judge output, the label it holds, by hand). None: no verdict can be read.
RAW = [
    ("[[A>B]]", "A>B"),
    ("B>A", "B>A"),
    (" [[ a = b ]] ", "A=B"),
    ("[a=b]", "A=B"),
    ("Write [[A>B]] if A is better, [[B>A]] if B is. Both miss it: [[A=B (bothbad)]]", "A=B (bothbad)"),
    ("The rubric says [[B>A]] when B wins. A is right and complete, so my verdict: [[A>B]]", "A>B"),
    ("A>B is my guess", None),  # no bracketed verdict and not a label by itself
]
#: One cell holding both passes of a binary judgement, forward first: the forward verdict counts.
BOTH_PASSES = (["Forward pass: [[B>A]]", "Backward pass (pair swapped): [[A>B]]"], "B>A")
CASES = [*RAW, BOTH_PASSES]
POSITION = {"A>B": "A", "B>A": "B", "A=B": "tie", "A=B (bothbad)": "bothbad", None: "error"}
EXPECTED = [label or "error" for _, label in CASES]
NO_CRITERIA = pd.DataFrame(columns=list(CRITERION_COLUMNS))


def _binary_archive(tmp_path, *, flag_unreadable: bool = True):
    """A binary judge archive by hand: each raw text in `predictions` and as the forward output."""
    predictions, metrics = [], []
    for raw, label in CASES:
        predictions.append(raw if isinstance(raw, list) else [raw])
        cell = {"forward_output": raw, "backward_output": "[[A>B]]"}
        if label is None and flag_unreadable:
            cell["inference_error"] = 1
        metrics.append(repr(cell))
    frame = pd.DataFrame(
        {"full_prompt": [f"q{i}" for i in range(len(CASES))], "gold": [""] * len(CASES),
         "predictions": predictions, "metrics": metrics}
    )  # fmt: skip
    results = {"results": {"custom|llm_judge_judge|0": {"a_scores": 1, "b_scores": 1}}}
    return tar_archive(
        tmp_path / "output.tar.gz",
        {
            "run/eval_results/results_1.json": json.dumps(results).encode(),
            "run/eval_results/details/llm_judge_model/1/details_llm_judge_1.parquet": parquet_bytes(frame),
        },
    )


def _prompts_with_raw_labels(cases) -> pd.DataFrame:
    """A prompts table (all sent AB) whose `label` column holds the raw judge texts."""
    return pd.DataFrame(
        [
            {"row": i, "prompt_id": f"p{i}", "order": "AB", "label": raw,
             "winner": POSITION[label], "score_margin": None}
            for i, (raw, label) in enumerate(cases)
        ]
    )  # fmt: skip


def _first_position(labels) -> tuple[int, int]:
    """(judgements preferring position A, decided judgements), counted by hand from the labels."""
    decided = [label for label in labels if label in ("A>B", "B>A")]
    return sum(label == "A>B" for label in decided), len(decided)


def test_one_raw_text_gives_one_label_on_every_path(tmp_path):
    answers: dict[str, list[str]] = {}

    flat = read_flattened(_binary_archive(tmp_path))
    answers["flatten (predictions)"] = flat.prompts["label"].tolist()

    outputs = binary_outputs_from_details(flat.passes, flat.prompts)
    table = binary_prompts_table(outputs["forward"], outputs["backward"], outputs["prompt_ids"])
    forward_rows = table[table["order"] == "AB"].sort_values("row")
    answers["binary forward outputs"] = forward_rows["label"].tolist()

    answers["trust reader (prompts table)"] = check_prompts(_prompts_with_raw_labels(CASES))["label"].tolist()

    folder = tmp_path / "results"
    folder.mkdir()
    strings = [(raw, label) for raw, label in CASES if isinstance(raw, str)]  # parquet: one type a column
    parquet = details_parquet(_prompts_with_raw_labels(strings), NO_CRITERIA)
    (folder / "details.parquet").write_bytes(parquet)
    answers["details.parquet reader"] = [
        *check_prompts(load_details(folder).prompts)["label"].tolist(),
        EXPECTED[-1],  # the list cell cannot sit in a parquet string column; covered above
    ]
    assert answers == {path: EXPECTED for path in answers}


def test_first_position_counts_agree_between_analysis_and_commands(tmp_path):
    expected = _first_position(label for _, label in CASES)
    assert expected == (2, 4)  # [[A>B]], the last-label text; B>A and the two-pass cell
    block = position_bias(_prompts_with_raw_labels(CASES))["first_position_preference"]
    assert (block["successes"], block["n"]) == expected

    strings = [(raw, label) for raw, label in CASES if isinstance(raw, str)]
    folder = tmp_path / "results"
    folder.mkdir()
    parquet = details_parquet(_prompts_with_raw_labels(strings), NO_CRITERIA)
    (folder / "details.parquet").write_bytes(parquet)
    result = CliRunner().invoke(app, ["calibrate", str(folder), "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "t.json").read_text())["position"]["first_position_preference"]
    assert (first["successes"], first["n"]) == _first_position(label for _, label in strings)


def test_an_unflagged_unreadable_output_is_an_error_row_counted_and_named(tmp_path):
    # Issue 11: an unreadable row is counted and shown, never an abort of the whole summary.
    flat = read_flattened(_binary_archive(tmp_path, flag_unreadable=False))
    assert flat.unreadable == [6]
    assert flat.prompts.loc[flat.prompts["row"] == 6, "label"].tolist() == ["error"]


# ----------------------------------------------------------------------------- criterion keys

#: (criterion name as the judge wrote it, its key, by hand)
NAMES = [
    ("Précision", "precision"),
    ("PRÉCISION!", "precision"),
    ("precision", "precision"),
    ("Factual-Accuracy", "factual_accuracy"),
    ("factual accuracy", "factual_accuracy"),
    ("Ωmega score", "ωmega_score"),
    ("Точность", "точность"),
    ("Safe?", "safe"),
]


def _rubric_archive(tmp_path):
    """Row i (sent AB, label A>B) has two criteria: NAMES[i] and "Clarity"."""
    metrics = []
    for name, _ in NAMES:
        breakdown = {
            name: {"type": "scale", "weight": 0.5, "score_A": 4, "score_B": 2},
            "Clarity": {"type": "binary", "weight": 0.5, "score_A": True, "score_B": False},
        }
        metrics.append(repr({"predictions": "[[A>B]]", "criteria_breakdown": breakdown}))
    frame = pd.DataFrame({"full_prompt": ["q"] * len(NAMES), "metrics": metrics})
    results = {"results": {"custom|rubric_llm_judge_judge|0": {"a_scores": len(NAMES)}}}
    return tar_archive(
        tmp_path / "output.tar.gz",
        {
            "r/eval_results/results_1.json": json.dumps(results).encode(),
            "r/eval_results/details/rubric_judge_model/1/details_custom|rubric_llm_judge_judge|0_1.parquet":
                parquet_bytes(frame),
        },
    )  # fmt: skip


def test_one_criterion_name_gives_one_key_on_every_path(tmp_path):
    archive = _rubric_archive(tmp_path)
    by_hand = [key for _, key in NAMES]
    keys = {"clarity", *by_hand}
    assert keys == {"precision", "factual_accuracy", "ωmega_score", "точность", "safe", "clarity"}

    flat = read_flattened(archive)
    assert flat.criteria["criterion_key"].tolist()[0::2] == by_hand

    summary = summarize(archive, tmp_path / "out", "a", "b")
    assert {c["criterion_key"] for c in summary["rubric"]["criteria"]} == keys
    assert {c["criterion"] for c in summary["trust"]["criteria"]} == keys

    details = load_details(tmp_path / "out")
    common = {c["criterion"]: c for c in most_common_criteria(details.criteria)}
    assert set(common) == keys
    assert common["precision"]["spellings"] == ["PRÉCISION!", "Précision", "precision"]
    assert common["precision"]["judgements"] == 3

    for name, key in NAMES:
        result = reweight(details.prompts, details.criteria, drop=[name])
        assert result["dropped_criteria"] == [key], name
    out = tmp_path / "r.json"
    args = ["reweight", str(tmp_path / "out"), "--drop", "Precision", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["reweight"]["dropped_criteria"] == ["precision"]
