"""Bad input never costs a paid run (issue 14): every case of its "Why", as a regression test.

Each test feeds the hostile input through the public step functions (generate, summarize) or the
reader, in moto, and checks the outcome the issue asks for: a clear error naming the file, line and
field before the run id is claimed, or a repaired, counted value that never breaks a write.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pipeline_fakes import BUCKET, EXECUTION_NAME, FakeTGI, dataset_event

from novajudge.errors import DatasetError, InvalidRunRequest, ResultsError
from novajudge.generation.datasets import PromptItem
from novajudge.jsonl import Limits, read_jsonl, text_lines
from novajudge.layout import RunLayout
from novajudge.steps.summarize import read_manifest
from novajudge.trust.calibration import load_human_labels

LINE_BREAKS_IN_TEXT = "\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e"


def _keys(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def _upload(s3: Any, key: str, lines: list[str]) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body="".join(line + "\n" for line in lines).encode("utf-8"))
    return f"s3://{BUCKET}/{key}"


def _user_dataset(tgi: FakeTGI, prompts: dict[str, str]) -> None:
    """Let the fake endpoint recognise these prompts (it answers by prompt id)."""
    tgi.items = [PromptItem(pid, text) for pid, text in prompts.items()]
    tgi.by_prompt = {text: pid for pid, text in prompts.items()}


# -- U+2028 and friends are not line breaks ---------------------------------------------------------------


def test_answer_with_unicode_line_separators_survives_manifest_and_summarize_reader(
    aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch
) -> None:
    """Was: the manifest line was cut at U+2028 by splitlines() → SummarizeFailed after paying."""
    monkeypatch.setattr(tgi, "answer", lambda endpoint, pid: f"first{LINE_BREAKS_IN_TEXT}second [{endpoint}]")
    event = {"input": {"run_id": "ls", "questions": 2, "dataset": {"source": "squad-sample"},
                       "both_orders": True},
             "execution_name": EXECUTION_NAME}  # fmt: skip
    generate_step(event, lambda_context)
    manifest = read_manifest(aws["s3"], RunLayout(BUCKET, "ls"))
    assert len(manifest) == 4  # 2 prompts × 2 orders, none cut in half
    assert all(LINE_BREAKS_IN_TEXT in m["response_A"] for m in manifest)


def test_dataset_prompt_with_u2028_is_valid(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    """Was: a valid dataset line holding U+2028 was reported as malformed."""
    prompts = {"p1": "line one\u2028line two", "p2": "para\u2029graph\u0085end"}
    _user_dataset(tgi, prompts)
    uri = _upload(aws["s3"], "datasets/seps.jsonl", [json.dumps({"id": k, "prompt": v}, ensure_ascii=False)
                                                     for k, v in prompts.items()])  # fmt: skip
    state = generate_step(dataset_event("seps", uri, questions=2), lambda_context)
    assert state["generation"]["pairs_ok"] == 2


def test_labels_with_u2028_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"prompt_id": "a\u2028b", "preference": "A"}\n{"prompt_id": "c", "preference": "B"}\n',
                    encoding="utf-8")  # fmt: skip
    assert load_human_labels(path) == {"a\u2028b": "A", "c": "B"}


# -- lone surrogates ----------------------------------------------------------------------------------------


def test_lone_surrogate_in_dataset_fails_before_the_run_is_claimed(
    aws, tgi: FakeTGI, generate_step, lambda_context
) -> None:
    """Was: both endpoints were called, then writing the judge input raised UnicodeEncodeError."""
    uri = _upload(aws["s3"], "datasets/bad.jsonl", ['{"prompt": "fine"}', '{"prompt": "x\\ud800y"}'])
    with pytest.raises(DatasetError, match=rf"{uri} line 2: field 'prompt': invalid Unicode"):
        generate_step(dataset_event("surrogate", uri, questions=2), lambda_context)
    assert _keys(aws["s3"], "runs/") == []  # the run id is still free
    assert tgi.payloads == []  # no endpoint was called


def test_model_answer_with_lone_surrogate_is_repaired_and_counted(
    aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch
) -> None:
    monkeypatch.setattr(
        tgi, "answer", lambda endpoint, pid: "ok \ud800 and \udfff" if "-a" in endpoint else "fine"
    )
    event = {"input": {"run_id": "repair", "questions": 3, "dataset": {"source": "squad-sample"}},
             "execution_name": EXECUTION_NAME}  # fmt: skip
    generate_step(event, lambda_context)
    s3 = aws["s3"]
    judge_input = s3.get_object(Bucket=BUCKET, Key="runs/repair/input/llm_judge.jsonl")["Body"].read()
    texts = [json.loads(line) for line in judge_input.decode("utf-8").split("\n") if line]
    assert {t["response_A"] for t in texts if t["response_A"] != "fine"} == {"ok \ufffd and \ufffd"}
    summary = json.loads(
        s3.get_object(Bucket=BUCKET, Key="runs/repair/generation/summary.json")["Body"].read()
    )
    assert summary["unicode_repaired_chars"] == {"A": 6, "B": 0}  # 2 per answer, 3 answers of model A
    manifest = read_manifest(s3, RunLayout(BUCKET, "repair"))
    assert {m["A"]["repaired_chars"] for m in manifest} == {2}
    assert {m["B"]["repaired_chars"] for m in manifest} == {0}


# -- prompts over the endpoints' input limit ---------------------------------------------------------------


def test_prompt_over_max_input_tokens_is_excluded_reported_and_never_sent(
    aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch
) -> None:
    monkeypatch.setenv("MAX_INPUT_TOKENS", "100")  # 100 tokens ≈ 350 characters (3.5 per token)
    prompts = {"short": "a short question", "long": "x" * 351, "edge": "y" * 350}
    _user_dataset(tgi, prompts)
    uri = _upload(
        aws["s3"], "datasets/long.jsonl", [json.dumps({"id": k, "prompt": v}) for k, v in prompts.items()]
    )
    state = generate_step(dataset_event("long", uri, questions=3), lambda_context)
    sent = {p["messages"][0]["content"] for p in tgi.payloads}
    assert sent == {prompts["short"], prompts["edge"]}
    over = state["generation"]["excluded"]["over_input_limit"]
    assert over == {"count": 1, "ids": ["long"], "limit_tokens": 100}
    manifest = read_manifest(aws["s3"], RunLayout(BUCKET, "long"))
    (excluded,) = [m for m in manifest if m["excluded"] == "prompt_over_input_limit"]
    assert (excluded["prompt_id"], excluded["estimated_tokens"], excluded["row"]) == ("long", 101, None)


# -- streaming and size limits ------------------------------------------------------------------------------


class CountingBody(io.RawIOBase):
    """A large S3 body that counts what was read from it."""

    def __init__(self, line: bytes, lines: int) -> None:
        self.data = io.BytesIO(line * lines)
        self.read_bytes = 0

    def read(self, amt: int | None = -1) -> bytes:
        chunk = self.data.read(amt)
        self.read_bytes += len(chunk)
        return chunk


def test_a_large_dataset_is_read_only_as_far_as_needed(aws, tgi: FakeTGI, monkeypatch) -> None:
    """Was: a 101 MB dataset with -n 20 was read whole (+334 MB in a 1 GB Lambda)."""
    from novajudge.generation import datasets
    from novajudge.run_request import DatasetSpec

    line = json.dumps({"prompt": "p" * 1000}).encode() + b"\n"
    body = CountingBody(line, 101 * 1024 * 1024 // len(line))  # ~101 MB
    s3 = aws["s3"]
    monkeypatch.setattr(s3, "get_object", lambda **_: {"Body": body})
    spec = DatasetSpec(source="s3", uri=f"s3://{BUCKET}/datasets/big.jsonl")
    loaded = datasets.load_dataset(spec, offset=0, count=20, s3=s3)
    assert len(loaded.items) == 20
    assert body.read_bytes <= 2 * 64 * 1024  # one or two chunks, not 101 MB


def test_line_and_file_limits_name_the_line() -> None:
    limits = Limits(max_line_bytes=10, max_file_bytes=100)
    with pytest.raises(DatasetError, match=r"f\.jsonl line 2: longer than 10 bytes"):
        list(read_jsonl(b'{"a": 1}\n{"a": "long line"}\n', "f.jsonl", error=DatasetError, limits=limits))
    with pytest.raises(DatasetError, match=r"f\.jsonl: larger than 100 bytes"):
        list(read_jsonl(b'{"a": 1}\n' * 20, "f.jsonl", error=DatasetError, limits=limits))


def test_reader_splits_on_newline_only_and_names_bad_lines() -> None:
    data = '{"t": "a\u2028b\u0085c"}\r\n\n{"t": 2}'.encode()
    assert list(read_jsonl(data, "f", error=DatasetError)) == [
        (1, {"t": "a\u2028b\u0085c"}),
        (3, {"t": 2}),
    ]
    assert list(text_lines(b"\xef\xbb\xbfhello\nworld", "f", error=DatasetError)) == ["hello", "world"]
    with pytest.raises(DatasetError, match=r"^f line 2: not UTF-8 text \(byte 3 of the line\)$"):
        list(read_jsonl(b'{}\n{"\xff": 1}\n', "f", error=DatasetError))
    with pytest.raises(ResultsError, match=r"^m line 1: not valid JSON here \(nested too deeply"):
        list(read_jsonl(b"[" * 200_000 + b"]" * 200_000, "m", error=ResultsError))
    with pytest.raises(ResultsError, match=r"^m line 1: field 'a\[1\]\.b': invalid Unicode"):
        list(read_jsonl(b'{"a": [1, {"b": "\\udc00"}]}', "m", error=ResultsError))


# -- run requests the generate function refuses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("poll", "runtime", "allowed"),
    [(0, 600, False), (1, 600, True), (1, 14400, False), (6, 14400, True), (5, 14400, False),
     (163, 432000, True), (162, 432000, False)],
)  # fmt: skip
def test_poll_interval_and_judge_runtime_fit_the_history_budget(
    aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch, poll: int, runtime: int, allowed: bool
) -> None:
    """Was: poll_seconds=0 was accepted; 9 events per poll could exhaust the 25,000-event history.

    By hand: (ceil(runtime / poll) + 1) × 9 events + 1,000 reserved must stay ≤ 25,000, i.e. at most
    2,665 polls: 14,400 s needs poll ≥ 6 (2,401 polls; 5 s gives 2,881); 432,000 s needs 163.
    """
    monkeypatch.setenv("JUDGE_MAX_RUNTIME_SECONDS", str(runtime))
    event = {"input": {"run_id": f"poll-{poll}-{runtime}", "questions": 1, "poll_seconds": poll,
                       "dataset": {"source": "squad-sample"}}, "execution_name": EXECUTION_NAME}  # fmt: skip
    if allowed:
        assert generate_step(event, lambda_context)["run"]["poll_seconds"] == poll
    else:
        with pytest.raises(InvalidRunRequest, match=f"poll_seconds={poll}"):
            generate_step(event, lambda_context)
        assert _keys(aws["s3"], "runs/") == []


def test_environment_variables_of_limits_are_read(monkeypatch) -> None:
    from novajudge.steps.environment import GenerateEnvironment

    env = GenerateEnvironment.from_environ(
        {**os.environ, "MAX_INPUT_TOKENS": "123", "JUDGE_MAX_RUNTIME_SECONDS": "900"}
    )
    assert (env.max_input_tokens, env.judge_max_runtime_seconds) == (123, 900)


def test_configuration_refuses_polls_that_overflow_the_history() -> None:
    """The same budget at synth time: 432,000 s of judge time needs polls of at least 163 s."""
    from novajudge.config import Settings
    from novajudge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"poll_seconds=60: .*use poll_seconds ≥ 163"):
        Settings.from_mapping({"judge_max_runtime_seconds": 432000, "poll_seconds": 60})
    fits = Settings.from_mapping({"judge_max_runtime_seconds": 432000, "poll_seconds": 163})
    assert fits.poll_seconds == 163
    # The IAM condition's list: Nova 2 Lite's types (rubric) and nova-micro's (binary default), by hand
    # from the catalogue; nova-lite (binary) adds ml.g6.48xlarge.
    rubric = ["ml.p4d.24xlarge", "ml.p5.48xlarge", "ml.p5en.48xlarge"]
    micro = ["ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge", "ml.g6.24xlarge"]
    assert Settings().permitted_judge_instance_types() == sorted(rubric + micro)
    lite = Settings.from_mapping({"binary_judge_model": "nova-lite"}).permitted_judge_instance_types()
    assert lite == sorted([*rubric, *micro, "ml.g6.48xlarge"])
