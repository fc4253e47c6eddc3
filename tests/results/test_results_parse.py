"""The parser reads archives it did not write, both variants, and names the file in every error."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from results_builders import TIMESTAMP, parquet_bytes, rubric_case, simple, tar_archive

from novajudge import parallel
from novajudge.errors import ResultsError
from novajudge.local.judge_archive import write_judge_archive
from novajudge.results import parse
from novajudge.results.parse import load_judge_output, read_flattened
from novajudge.verdicts import criterion_key, parse_label

DETAILS_NAME = "details_custom|rubric_llm_judge_judge|0_20250101.parquet"


def _handmade_rows() -> pd.DataFrame:
    """Three judge rows written by hand: bare label, bracketed label inside text (as a list cell), error."""
    crit = {
        "Accuracy": {
            "description": "d",
            "type": "scale",
            "weight": 0.75,
            "score_A": 4,
            "score_B": 2,
            "justification_A": "good",
            "justification_B": "weak",
        },
        "Has citation": {
            "description": "d",
            "type": "binary",
            "weight": 0.25,
            "score_A": False,
            "score_B": True,
            "justification_A": "none",
            "justification_B": "yes",
        },
    }
    m0 = {
        "predictions": "A>B",
        "a_scores": 1,
        "b_scores": 0,
        "weighted_score_A": 0.5625,
        "weighted_score_B": 0.4375,
        "score_margin": 0.125,
        "overall_justification": "A is right",
        "criteria_breakdown": crit,
    }
    m1 = {
        "a_scores": 0,
        "b_scores": 1,
        "weighted_score_A": 0.0,
        "weighted_score_B": 1.0,
        "score_margin": -1.0,
        "overall_justification": "B",
        "criteria_breakdown": {"accuracy": {"type": "scale", "weight": 1.0, "score_A": 1, "score_B": 5}},
    }
    m2 = {"inference_error": 1}
    return pd.DataFrame(
        {
            "full_prompt": ["What is 2+2?", "Name a colour.", "Say hi."],
            "gold": ["", "", ""],
            "predictions": [["A>B"], ["Reasoning... final verdict: [[B>A]]"], [""]],
            "metrics": [repr(m0), repr(m1), repr(m2)],
        }
    )


@pytest.fixture
def handmade(tmp_path) -> Path:
    results = {
        "config_general": {},
        "results": {
            "custom|rubric_llm_judge_judge|0": {
                "a_scores": 1,
                "b_scores": 1,
                "ties": 0,
                "inference_error": 1,
                "winrate": 0.5,
                "lower_rate": 0.1,
                "upper_rate": 0.9,
                "weighted_score_A": 0.28125,
            }
        },
    }
    return tar_archive(
        tmp_path / "output.tar.gz",
        {
            "job/eval_results/results_20250101.json": json.dumps(results).encode(),
            f"job/eval_results/details/rubric_judge_model/20250101/{DETAILS_NAME}": parquet_bytes(
                _handmade_rows()
            ),
        },
    )


def test_handmade_archive_without_all_key(handmade):
    flat = read_flattened(handmade)
    assert flat.judge.variant == "rubric"
    assert flat.judge.task_key == "custom|rubric_llm_judge_judge|0"
    assert flat.judge.judge_metrics["winrate"] == 0.5
    assert flat.judge.details_file.endswith(DETAILS_NAME)
    p = flat.prompts
    assert p["label"].tolist() == ["A>B", "B>A", "error"]
    assert p["winner"].tolist() == ["A", "B", "error"]
    assert p["order"].tolist() == ["AB"] * 3
    assert p["prompt"].tolist() == ["What is 2+2?", "Name a colour.", "Say hi."]  # no template: whole prompt
    assert p["prompt_id"].tolist() == ["0", "1", "2"]
    c = flat.criteria
    assert c["criterion_key"].tolist() == ["accuracy", "has_citation", "accuracy"]
    assert c["norm_A"].tolist() == [0.75, 0.0, 0.0]
    assert c["norm_B"].tolist() == [0.25, 1.0, 1.0]
    assert c["type"].tolist() == ["scale", "binary", "scale"]
    assert str(c["row"].dtype) == "int64" and str(c["weight"].dtype) == "float64"


def test_extracted_folder_reads_the_same(handmade, tmp_path):
    folder = tmp_path / "extracted"
    with tarfile.open(handmade) as tar:
        tar.extractall(folder, filter="data")
    from_folder = read_flattened(folder)
    from_tar = read_flattened(handmade)
    pd.testing.assert_frame_equal(from_folder.prompts, from_tar.prompts)
    pd.testing.assert_frame_equal(from_folder.criteria, from_tar.criteria)


def test_manifest_unswaps_winners_and_supplies_ids(tmp_path):
    case = rubric_case(40)
    path = write_judge_archive(tmp_path, "rubric", case.judgements, "r", TIMESTAMP)
    flat = read_flattened(path, [*case.manifest, {"row": None, "prompt_id": "failed", "order": "AB"}])
    mirror = {"A": "B", "B": "A"}
    as_sent = {"A>B": "A", "B>A": "B", "A=B": "tie", "A=B (bothbad)": "bothbad", None: "error"}
    expected = [
        mirror.get(as_sent[j.label], as_sent[j.label]) if m["order"] == "BA" else as_sent[j.label]
        for j, m in zip(case.judgements, case.manifest, strict=True)
    ]
    assert flat.prompts["winner"].tolist() == expected
    assert flat.prompts["prompt_id"].tolist() == [m["prompt_id"] for m in case.manifest]
    # the prompt and responses are cut out of the judge's prompt template
    assert flat.prompts["prompt"].tolist() == [j.prompt for j in case.judgements]
    assert flat.prompts["response_A"].tolist() == [j.response_A for j in case.judgements]
    assert flat.criteria["order"].tolist() == [
        m["order"] for j, m in zip(case.judgements, case.manifest, strict=True) for _ in j.criteria
    ]


def test_binary_archive_labels_from_predictions(tmp_path):
    path = write_judge_archive(
        tmp_path, "binary", simple(["B>A", "A=B (bothbad)", None], criteria=False), "b", "ts"
    )
    flat = read_flattened(path)
    assert flat.judge.variant == "binary"
    assert flat.prompts["label"].tolist() == ["B>A", "A=B (bothbad)", "error"]
    assert flat.criteria.empty


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("[[A>B]]", "A>B"),
        ("B>A", "B>A"),
        ("verdict: [[A=B (bothbad)]]", "A=B (bothbad)"),
        ("[[A=B]]", "A=B"),
        ("", None),
        (["[[B>A]]"], "B>A"),
        (None, None),
    ],
)
def test_labels_with_or_without_brackets(raw, label):
    assert parse_label(raw) == label


def test_criterion_names_are_normalised():
    assert criterion_key(" Factual-Accuracy ") == criterion_key("factual accuracy") == "factual_accuracy"


# ----------------------------------------------------------------------------- errors name file + expectation


def _with(tmp_path, results: bytes | None, details: bytes | None) -> Path:
    files = {}
    if results is not None:
        files["r/eval_results/results_1.json"] = results
    if details is not None:
        files["r/eval_results/details/m/1/details_x_1.parquet"] = details
    return tar_archive(tmp_path / "output.tar.gz", files)


def _details(**metrics_override) -> bytes:
    frame = _handmade_rows()
    for col, value in metrics_override.items():
        frame.loc[0, col] = value
    return parquet_bytes(frame)


def _one_criterion(**criterion) -> bytes:
    """Details whose first row has one criterion 'x' (weight 1) with the given fields."""
    cell = {"predictions": "[[A>B]]", "criteria_breakdown": {"x": {"weight": 1.0, **criterion}}}
    return _details(metrics=repr(cell))


GOOD_RESULTS = json.dumps({"results": {"all": {"winrate": 0.5}}}).encode()


def test_a_row_without_a_label_is_an_error_row_not_an_abort(tmp_path):
    # Formerly raised "row 0: expected a preference label"; issue 11: counted and shown instead.
    flat = read_flattened(_with(tmp_path, GOOD_RESULTS, _details(metrics=repr({"predictions": "A wins"}))))
    assert flat.unreadable == [0]
    assert flat.prompts["label"].tolist()[0] == "error"


@pytest.mark.parametrize(
    ("results", "details", "expected"),
    [
        (None, _details(), r"results_\*\.json.*found none"),
        (GOOD_RESULTS, None, r"details_\*\.parquet.*found none"),
        (b"{not json", _details(), r"results_1\.json: not valid JSON.*expected the judge's results JSON"),
        (b'{"config": {}}', _details(), r"results_1\.json: expected an object with a non-empty 'results'"),
        (
            json.dumps({"results": {"t1": {}, "t2": {}}}).encode(),
            _details(),
            r"'all' or exactly one task key",
        ),
        (GOOD_RESULTS, b"PAR1 garbage", r"details_x_1\.parquet: not a readable parquet file"),
        (
            GOOD_RESULTS,
            parquet_bytes(pd.DataFrame({"full_prompt": ["x"]})),
            r"details_x_1\.parquet: expected a 'metrics' column",
        ),
        (
            GOOD_RESULTS,
            _details(metrics="{'a': "),
            r"details_x_1\.parquet row 0: field 'metrics' is not a Python dict",
        ),
        (
            GOOD_RESULTS,
            _details(metrics="[1, 2]"),
            r"row 0: field 'metrics' is a list, expected a dict literal",
        ),
        (
            GOOD_RESULTS,
            _one_criterion(type="scale", score_A=9, score_B=1),
            r"row 0 criterion 'x' score_A: expected a 1-5 scale score, got 9",
        ),
        (
            GOOD_RESULTS,
            _one_criterion(type="likert", score_A=1, score_B=1),
            r"criterion 'x': expected type 'scale' or 'binary'",
        ),
        (
            GOOD_RESULTS,
            _one_criterion(type="binary", score_A="maybe", score_B=1),
            r"expected a binary score \(true/false\), got 'maybe'",
        ),
    ],
)
def test_malformed_output_errors_name_file_and_expectation(tmp_path, results, details, expected):
    path = _with(tmp_path, results, details)
    with pytest.raises(ResultsError, match=expected) as info:
        read_flattened(path)
    assert str(path) in str(info.value)


def test_two_results_files_are_ambiguous(tmp_path):
    path = tar_archive(
        tmp_path / "o.tar.gz",
        {
            "a/results_1.json": GOOD_RESULTS,
            "b/results_2.json": GOOD_RESULTS,
            "a/details_1.parquet": _details(),
        },
    )
    with pytest.raises(ResultsError, match=r"exactly one file matching 'results_\*\.json', found 2"):
        read_flattened(path)


def test_not_an_archive_and_missing_path(tmp_path):
    bad = tmp_path / "output.tar.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(ResultsError, match=r"output\.tar\.gz: not a readable tar\.gz archive"):
        read_flattened(bad)
    with pytest.raises(ResultsError, match=r"missing\.tar\.gz: not found; expected the judge's output"):
        read_flattened(tmp_path / "missing.tar.gz")


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            [{"row": 0, "order": "AB"}, {"row": 1, "order": "AB"}],
            r"manifest: expected rows 0\.\.2 .* missing \[2\]",
        ),
        ([{"row": 0, "order": "XY"}], r"manifest entry 0: expected 'order' AB or BA, got 'XY'"),
        ([{"row": "zero"}], r"manifest entry 0: expected an integer 'row'"),
        ([{"row": 0}, {"row": 0}, {"row": 1}], r"row 0 appears twice"),
    ],
)
def test_manifest_errors(handmade, manifest, expected):
    with pytest.raises(ResultsError, match=expected):
        read_flattened(handmade, manifest)


def test_manifest_texts_take_precedence_over_the_judge_prompt(handmade):
    manifest = [
        {
            "row": i,
            "prompt_id": f"p{i}",
            "order": "BA",
            "prompt": f"real prompt {i}",
            "response_A": "ra",
            "response_B": "rb",
        }
        for i in range(3)
    ]
    p = read_flattened(handmade, manifest).prompts
    assert p["prompt"].tolist() == ["real prompt 0", "real prompt 1", "real prompt 2"]
    assert p["winner"].tolist() == ["B", "A", "error"]  # sent swapped: A>B as sent is a B win


# ----------------------------------------------------------------------------- slices in two processes


def _read(archive: Path, manifest: list | None, monkeypatch, *, rows_per_task: int, cores: int):
    """`read_flattened` in slices of `rows_per_task` rows, on `cores` cores (2: a forked worker)."""
    with monkeypatch.context() as patch:
        patch.setattr(parse, "ROWS_PER_TASK", rows_per_task)
        patch.setattr(parallel, "cores", lambda: cores)
        return read_flattened(archive, manifest)


@pytest.mark.skipif(not parallel.can_fork(), reason="needs two cores and fork")
def test_slices_read_by_a_worker_give_the_tables_of_one_reading(tmp_path, monkeypatch):
    case = rubric_case(n=80, seed=11)
    archive = write_judge_archive(tmp_path, "rubric", case.judgements, "job", TIMESTAMP)
    whole = _read(archive, case.manifest, monkeypatch, rows_per_task=10_000, cores=1)
    for rows_per_task in (7, 40, 79):  # 12, 2 and 2 slices; the odd ones in the worker
        sliced = _read(archive, case.manifest, monkeypatch, rows_per_task=rows_per_task, cores=2)
        pd.testing.assert_frame_equal(sliced.prompts, whole.prompts)
        pd.testing.assert_frame_equal(sliced.criteria, whole.criteria)
        assert sliced.unreadable == whole.unreadable
    # the tables are the judgements' own, row for row (the slices were not dropped or repeated)
    assert whole.prompts["row"].tolist() == list(range(80))
    expected_criteria = [(i, c.name) for i, j in enumerate(case.judgements) for c in j.criteria]
    assert list(zip(whole.criteria["row"], whole.criteria["criterion"], strict=True)) == expected_criteria


def _cell(weight: object = 1.0, label: str = "[[A>B]]") -> str:
    criterion = {"type": "scale", "weight": weight, "score_A": 4, "score_B": 2}
    return str({"predictions": label, "criteria_breakdown": {"Accuracy": criterion}})


def _archive_with(tmp_path: Path, cells: list[str]) -> Path:
    details = pd.DataFrame({"full_prompt": [f"p{i}" for i in range(len(cells))], "metrics": cells})
    results = json.dumps({"results": {"all": {"winrate": 0.5}}}).encode()
    files = {"job/results_1.json": results, f"job/{DETAILS_NAME}": parquet_bytes(details)}
    return tar_archive(tmp_path / "output.tar.gz", files)


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        # rows 7-13 are the worker's slice
        ({9: "{'predictions': "}, r"row 9: field 'metrics' is not a Python dict literal"),
        ({9: "{'x': ", 16: "[1]"}, r"row 9: field 'metrics'"),  # the first in row order
        ({16: "[1]"}, r"row 16: field 'metrics' is a list"),  # a slice back in this process
        ({3: _cell(weight=-1), 9: "{'x': "}, r"row 3 criterion 'Accuracy': expected a non-negative weight"),
        ({10: _cell(weight="heavy")}, r"row 10 criterion 'Accuracy': expected a non-negative weight"),
    ],
)
def test_errors_in_slices_name_the_row_and_come_in_row_order(tmp_path, monkeypatch, bad, expected):
    cells = [bad.get(i, _cell()) for i in range(20)]
    archive = _archive_with(tmp_path, cells)
    for cores in (1, 2):
        with pytest.raises(ResultsError, match=expected):
            _read(archive, None, monkeypatch, rows_per_task=7, cores=cores)


def test_only_the_columns_the_summary_reads_are_decoded(tmp_path):
    case = rubric_case(n=6, seed=3)
    archive = write_judge_archive(tmp_path, "rubric", case.judgements, "job", TIMESTAMP)
    assert list(load_judge_output(archive).details.columns) == ["full_prompt", "predictions", "metrics"]
    assert list(load_judge_output(archive, full_prompt=False).details.columns) == ["predictions", "metrics"]
    # a manifest with every row's texts makes full_prompt unnecessary: same tables without it
    with_texts = [
        {**e, "prompt": j.prompt, "response_A": j.response_A, "response_B": j.response_B}
        for e, j in zip(case.manifest, case.judgements, strict=True)
    ]
    flat = read_flattened(archive, with_texts)
    assert "full_prompt" not in flat.judge.details.columns
    assert flat.prompts["prompt"].tolist() == [j.prompt for j in case.judgements]
    assert "full_prompt" in read_flattened(archive, case.manifest).judge.details.columns  # no texts in it
