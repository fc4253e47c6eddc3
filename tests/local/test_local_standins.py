"""The stand-ins: deterministic, chat-shaped, labelled, with injectable faults; the judge's archive."""

from __future__ import annotations

import io
import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from novajudge.generation.datasets import load_bundled_squad
from novajudge.local.judge_archive import TASK_KEYS
from novajudge.local.moto_patches import EndpointFailure, TrainingJobRequest
from novajudge.local.standins import (
    FIRST_POSITION_LEAN,
    RUBRIC,
    STAND_IN_JUDGE_TAG,
    STAND_IN_MODEL_PREFIX,
    TIE_THRESHOLD,
    EndpointFaults,
    JudgeFaults,
    LocalLLM,
    StandInEndpoints,
    StandInJudge,
    judge_pair,
    parse_question,
    stand_in_answer,
)
from novajudge.results.parse import load_judge_output

ITEMS = load_bundled_squad(0, 20)


def _chat(prompt: str, max_tokens: int = 500) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}).encode()


def test_rubric_weights_sum_to_one() -> None:
    assert abs(sum(w for _, _, w in RUBRIC) - 1.0) < 1e-9


def test_prompts_parse_and_know_the_reference() -> None:
    q = parse_question(ITEMS[0].prompt)
    assert q is not None and q.answers == ("Saint Bernadette Soubirous",)
    assert "Saint Bernadette Soubirous" in q.best_sentence()
    assert parse_question("What is 2 + 2?") is None


def test_answers_are_deterministic_and_b_is_better_on_the_sample() -> None:
    for item in ITEMS[:5]:
        assert stand_in_answer("A", item.prompt) == stand_in_answer("A", item.prompt)
    labels = [
        judge_pair(i.prompt, stand_in_answer("A", i.prompt), stand_in_answer("B", i.prompt)).label
        for i in ITEMS
    ]
    assert labels.count("B>A") > len(ITEMS) // 2  # the comparison finds something ...
    assert set(labels) != {"B>A"}  # ... but not a caricature: some ties or A wins


def test_judge_leans_toward_the_first_response_only_on_close_calls() -> None:
    mirror = {"A>B": "B>A", "B>A": "A>B", "A=B": "A=B", "A=B (bothbad)": "A=B (bothbad)"}
    inconsistent = 0
    for item in ITEMS:
        a, b = stand_in_answer("A", item.prompt), stand_in_answer("B", item.prompt)
        forward, backward = judge_pair(item.prompt, a, b), judge_pair(item.prompt, b, a)
        margin = sum(c.weight * (c.normalised(c.score_A) - c.normalised(c.score_B)) for c in forward.criteria)
        if backward.label != mirror[forward.label]:
            inconsistent += 1
            # Only a close call can flip with the order, and the flip favours the first-shown response.
            assert abs(margin) < TIE_THRESHOLD + FIRST_POSITION_LEAN
            assert "A>B" in (forward.label, backward.label)
        assert "first-shown" in forward.overall_justification
    assert inconsistent >= 1  # the demo's position-bias analysis has something to find


def test_judge_is_consistent_on_clear_cases_and_labelled() -> None:
    item = ITEMS[0]
    a, b = stand_in_answer("A", item.prompt), stand_in_answer("B", item.prompt)
    forward, backward = judge_pair(item.prompt, a, b), judge_pair(item.prompt, b, a)
    assert {forward.label, backward.label} == {"A>B", "B>A"}
    assert forward.overall_justification.startswith(STAND_IN_JUDGE_TAG)
    assert all(1 <= c.score_A <= 5 and 1 <= c.score_B <= 5 for c in forward.criteria)
    same = judge_pair(item.prompt, b, b)
    assert same.label == "A=B"
    bad = judge_pair(item.prompt, "No idea.", "No idea.")
    assert bad.label == "A=B (bothbad)"


def test_endpoint_chat_shape_profiles_and_truncation() -> None:
    ep = StandInEndpoints(profiles={"x-model-a": "A", "x-model-b": "B"})
    body, ctype = ep("x-model-b", _chat(ITEMS[0].prompt), "application/json")
    data = json.loads(body)
    assert ctype == "application/json"
    assert data["model"] == f"{STAND_IN_MODEL_PREFIX}-b" and "Qwen" not in json.dumps(data)
    assert data["choices"][0]["message"]["content"].startswith("Saint Bernadette Soubirous")
    assert data["choices"][0]["finish_reason"] == "stop" and data["usage"]["completion_tokens"] > 0
    short = json.loads(ep("x-model-b", _chat(ITEMS[0].prompt, max_tokens=2), "application/json")[0])
    assert short["choices"][0]["finish_reason"] == "length"
    assert len(short["choices"][0]["message"]["content"]) == 8
    assert ep.calls == {"x-model-b": 2}


def test_endpoint_faults_all_or_some() -> None:
    ep = StandInEndpoints(profiles={}, faults={"m-a": EndpointFaults()})
    with pytest.raises(EndpointFailure) as err:
        ep("m-a", _chat("hi"), "application/json")
    assert err.value.code == "ModelError" and err.value.status == 424 and err.value.original_status == 400
    ep.faults["m-a"] = EndpointFaults(rate=0.5)
    outcomes = []
    for item in ITEMS:
        try:
            ep("m-a", _chat(item.prompt), "application/json")
            outcomes.append(True)
        except EndpointFailure:
            outcomes.append(False)
    assert 0 < outcomes.count(False) < len(ITEMS)
    with pytest.raises(EndpointFailure, match="messages"):
        ep("m-b", json.dumps({"inputs": "raw"}).encode(), "application/json")


@pytest.fixture()
def local_llm() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(
                {"path": self.path, **json.loads(self.rfile.read(int(self.headers["Content-Length"])))}
            )
            out = json.dumps(
                {
                    "choices": [
                        {
                            "message": {"role": "assistant", "content": "from local llm"},
                            "finish_reason": "stop",
                        }
                    ]
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        thread.join()


def test_forward_to_local_openai_compatible_server(local_llm: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = local_llm
    environ = {
        "NOVAJUDGE_LOCAL_LLM_URL": url,
        "NOVAJUDGE_LOCAL_LLM_TIMEOUT": "5",
        "NOVAJUDGE_LOCAL_LLM_MODEL_A": "tiny-a",
        "NOVAJUDGE_LOCAL_LLM_MODEL": "shared",
    }
    llm = LocalLLM.from_environ(environ)
    assert llm is not None and (llm.timeout, llm.model("A"), llm.model("B")) == (5.0, "tiny-a", "shared")
    assert LocalLLM.from_environ({"NOVAJUDGE_LOCAL_LLM_MODEL_A": "tiny-a"}) is None  # no URL: no forwarding
    ep = StandInEndpoints(profiles={"m-a": "A"}, local_llm=llm)
    body, _ = ep("m-a", _chat("hello"), "application/json")
    assert json.loads(body)["choices"][0]["message"]["content"] == "from local llm"
    assert seen[0]["path"] == "/v1/chat/completions" and seen[0]["model"] == "tiny-a"
    assert seen[0]["messages"] == [{"role": "user", "content": "hello"}]
    down = StandInEndpoints(profiles={}, local_llm=LocalLLM("http://127.0.0.1:9", timeout=1))
    with pytest.raises(EndpointFailure, match="unreachable"):
        down("m-b", _chat("hello"), "application/json")


class FakeS3:
    """Just the calls the judge makes, in memory: the judge's own logic is what is tested here."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def list_objects_v2(self, Bucket: str, Prefix: str) -> dict[str, Any]:
        return {"Contents": [{"Key": k} for b, k in self.objects if b == Bucket and k.startswith(Prefix)]}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[(Bucket, Key)] = Body

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        with open(path, "rb") as fh:
            self.objects[(bucket, key)] = fh.read()


def _job(s3: FakeS3, task: str = "rubric_llm_judge") -> TrainingJobRequest:
    s3.objects[("b", "runs/r/recipe/rubric_judge.yaml")] = (
        f"run:\n  name: job-1\nevaluation:\n  task: {task}\n  strategy: judge\n  metric: all\n".encode()
    )
    lines = [
        {
            "prompt": i.prompt,
            "response_A": stand_in_answer("A", i.prompt),
            "response_B": stand_in_answer("B", i.prompt),
        }
        for i in ITEMS[:3]
    ]
    lines.append({"prompt": ITEMS[3].prompt, "response_A": "", "response_B": "x"})
    s3.objects[("b", "runs/r/input/llm_judge.jsonl")] = "\n".join(json.dumps(x) for x in lines).encode()
    return TrainingJobRequest(
        name="job-1",
        hyper_parameters={},
        input_data_config=[
            {"ChannelName": n, "DataSource": {"S3DataSource": {"S3Uri": f"s3://b/runs/r/{p}/"}}}
            for n, p in (("recipe", "recipe"), ("train", "input"))
        ],
        output_data_config={"S3OutputPath": "s3://b/runs/r/judge-output/"},
        role_arn="arn:aws:iam::123456789012:role/j",
    )


@pytest.mark.parametrize("task, variant", [("rubric_llm_judge", "rubric"), ("llm_judge", "binary")])
def test_judge_writes_the_real_archive_layout(task: str, variant: str, tmp_path: Any) -> None:
    s3 = FakeS3()
    assert StandInJudge(s3_factory=lambda: s3)(_job(s3, task)) is None
    key = ("b", "runs/r/judge-output/job-1/output/output.tar.gz")
    assert key in s3.objects
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(s3.objects[key])
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert any(n.startswith("job-1/eval_results/results_") for n in names)
    assert any(TASK_KEYS[variant] in n and n.endswith(".parquet") for n in names)
    out = load_judge_output(archive)
    assert out.variant == variant
    assert len(out.details) == 4
    assert out.judge_metrics["inference_error"] == 1  # an empty response: no verdict


def test_judge_faults() -> None:
    s3 = FakeS3()
    reason = StandInJudge(s3_factory=lambda: s3, faults=JudgeFaults(fail_reason="boom"))(_job(s3))
    assert reason is not None and reason.startswith("AlgorithmError: ") and STAND_IN_JUDGE_TAG in reason
    s3 = FakeS3()
    assert StandInJudge(s3_factory=lambda: s3, faults=JudgeFaults(corrupt_archive=True))(_job(s3)) is None
    assert s3.objects[("b", "runs/r/judge-output/job-1/output/output.tar.gz")].startswith(b"not a gzip")
    s3 = FakeS3()
    assert "unsupported task" in (StandInJudge(s3_factory=lambda: s3)(_job(s3, "mmlu")) or "")


def test_calls_are_counted_exactly_from_many_threads() -> None:
    """The emulator answers from several threads; the e2e tests compare these counts exactly."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a lost update shows
    try:
        ep = StandInEndpoints(profiles={"m-a": "A"})
        body = _chat(ITEMS[0].prompt)

        def hammer() -> None:
            for _ in range(300):
                ep("m-a", body, "application/json")

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert ep.calls == {"m-a": 8 * 300}
