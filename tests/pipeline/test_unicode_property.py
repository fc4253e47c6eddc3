"""Property: arbitrary Unicode in dataset lines and model answers never crashes a step (issue 14).

Hypothesis draws a user dataset (JSON lines with any text, including lone surrogates written as
`\\ud800` escapes, U+2028 and friends, plus raw lines that may be neither JSON nor UTF-8) and the
models' answers (any text, surrogates included). Each example runs generate → manifest → judge
input → (the local stand-in judge's verdicts, written as the judge's archive) → summarize, in-process
with moto. Expected outcome, computed from the drawn lines independently of the code:
- some line is bad → generate raises `DatasetError` naming every bad line, before the run is claimed
  (nothing under `runs/<id>/`);
- otherwise every step succeeds, the manifest and judge input are valid UTF-8 JSON Lines with one
  judge line per order of each prompt, and summarize publishes its four files.
Bounded: few examples, small inputs, no deadline (a summarize draws a figure).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_outcome
from hypothesis import strategies as st
from pipeline_fakes import BUCKET, EXECUTION_NAME, FakeTGI

from novajudge.errors import DatasetError
from novajudge.generation.datasets import PromptItem
from novajudge.jsonl import read_jsonl
from novajudge.local.judge_archive import write_judge_archive
from novajudge.local.standins import StandInJudge
from novajudge.steps.environment import SummarizeEnvironment
from novajudge.steps.summarize import summarize_run

#: Every code point, surrogates included (Hypothesis leaves category Cs out unless asked).
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXT = st.text(ANY_CHAR, min_size=1, max_size=40) | st.sampled_from(
    ["a\u2028b", "\u2029", "x\u0085y", "$\\sqrt$", "\ud800"]
)
SURROGATE = re.compile("[\ud800-\udfff]")
COUNTER = itertools.count()

# A dataset line: a JSON object with an arbitrary prompt, or an arbitrary raw line (bytes).
JSON_LINE = st.builds(lambda text, ascii_only: ("json", text, ascii_only), TEXT, st.booleans())
RAW_LINE = st.builds(
    lambda data: ("raw", data, True), st.binary(max_size=12).filter(lambda b: b"\n" not in b)
)
#: Mostly JSON lines (so that whole datasets are often valid and go all the way through summarize).
LINE = st.one_of(*[JSON_LINE] * 6, RAW_LINE)


def _encode(kind: str, value: Any, ascii_only: bool, number: int) -> bytes:
    if kind == "raw":
        return value
    text = json.dumps(
        {"id": f"p{number}", "prompt": value}, ensure_ascii=ascii_only or bool(SURROGATE.search(value))
    )
    return text.encode("utf-8")


def _expected_problem(kind: str, value: Any) -> bool | None:
    """True: the line must be refused; False: accepted; None: blank (skipped)."""
    if kind == "raw":
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return True
        if not text.strip():
            return None
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return True
        return not (
            isinstance(obj, dict)
            and isinstance(obj.get("prompt"), str)
            and obj["prompt"].strip()
            and not SURROGATE.search(json.dumps(obj, ensure_ascii=False))
            and set(obj) <= {"prompt"}
        )
    return not value.strip() or bool(SURROGATE.search(value))


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(LINE, min_size=1, max_size=3), answer=TEXT)
def test_arbitrary_unicode_never_crashes_a_step(
    aws, tgi: FakeTGI, generate_step, lambda_context, tmp_path: Path, lines, answer: str
) -> None:
    s3 = aws["s3"]
    run_id = f"prop-{next(COUNTER)}"
    encoded = [
        _encode(kind, value, ascii_only, n) for n, (kind, value, ascii_only) in enumerate(lines, start=1)
    ]
    key = f"datasets/{run_id}.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\n".join(encoded) + b"\n")
    verdicts = {n: _expected_problem(kind, value) for n, (kind, value, _) in enumerate(lines, start=1)}
    bad = [n for n, problem in verdicts.items() if problem]
    good = [n for n, problem in verdicts.items() if problem is False]

    prompts = {
        f"p{n}": value
        for n, (kind, value, _) in enumerate(lines, start=1)
        if kind == "json" and not verdicts[n]
    }
    tgi.items = [PromptItem(pid, text) for pid, text in prompts.items()]
    tgi.by_prompt = {text: pid for pid, text in prompts.items()}
    tgi.answer = lambda endpoint, pid: f"{answer}[{endpoint[-1]}]"  # type: ignore[method-assign]

    event = {"input": {"run_id": run_id, "questions": 10, "both_orders": True,
                       "dataset": {"source": "s3", "uri": f"s3://{BUCKET}/{key}"}},
             "execution_name": EXECUTION_NAME}  # fmt: skip
    note_outcome("refused" if bad or not good else "accepted")  # shown by --hypothesis-show-statistics
    if bad or not good:
        try:
            generate_step(event, lambda_context)
        except DatasetError as exc:
            for n in bad:
                assert f"line {n}:" in str(exc), (n, str(exc))
        else:
            raise AssertionError(f"lines {bad} should have been refused")
        assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{run_id}/").get("Contents")
        return

    state = generate_step(event, lambda_context)
    manifest_body = s3.get_object(Bucket=BUCKET, Key=f"runs/{run_id}/generation/manifest.jsonl")[
        "Body"
    ].read()
    judge_body = s3.get_object(Bucket=BUCKET, Key=f"runs/{run_id}/input/llm_judge.jsonl")["Body"].read()
    manifest = [r for _, r in read_jsonl(manifest_body, "manifest", error=DatasetError)]
    judge_lines = [r for _, r in read_jsonl(judge_body, "judge input", error=DatasetError)]
    assert len(judge_lines) == 2 * len(good) == len([m for m in manifest if m["row"] is not None])
    assert all(not SURROGATE.search(line["response_A"] + line["response_B"]) for line in judge_lines)

    judgements = [StandInJudge._judge_line(line) for line in judge_body.decode("utf-8").split("\n") if line]
    archive = write_judge_archive(tmp_path / run_id, "rubric", judgements, "prop", "20260101_000000")
    job = "prop-job"
    s3.upload_file(str(archive), BUCKET, f"runs/{run_id}/judge-output/{job}/output/output.tar.gz")
    state["judge"] = {"training_job_name": job}
    results = summarize_run(state, SummarizeEnvironment.from_environ(os.environ), s3=s3)
    assert set(results) >= {"summary_uri", "details_uri", "figure_uri", "report_uri", "headline"}
    summary = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"runs/{run_id}/results/summary.json")["Body"].read()
    )
    assert summary["manifest_used"] is True
