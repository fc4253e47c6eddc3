"""The generation Map at a few hundred prompts, and resume, in the emulator with the real handlers.

What is checked, each against values computed here and not by the pipeline:
- a 300-prompt user dataset goes PrepareRun -> GenerateChunks (Distributed Map) -> ReduceGeneration,
  in ceil(300 / chunk size) chunks, each endpoint asked once per prompt, the judge input in
  dataset order with the stand-ins' answers, and no state in the history near 256 KB;
- a run stopped by failures part-way (a seeded half of model B's answers fail, the run fails by
  name) resumes under a new execution: only the failed items are asked again (counted at the
  stand-in endpoints) and the judge input equals that of an uninterrupted run of the same prompts.
"""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from emulated import Deployed, install_stand_ins

from novajudge.local.deploy import StackTemplate, deploy
from novajudge.local.emulator import local_aws
from novajudge.local.standins import EndpointFaults, StandInEndpoints, stand_in_answer

pytestmark = pytest.mark.e2e

PROMPTS = 300
#: cdk.json's concurrency_a = concurrency_b = 64 over map_max_concurrency 4 children: a window of
#: 16 per child; the chunk function's timeout 900 s, read timeout 70 s, write margin 20 s:
#: 16 x floor((900 - 70 - 20) / 70) = 16 x 11 rounds (chunk_size's rule).
CHUNK_ITEMS = 16 * 11
A, B = "novajudge-model-a", "novajudge-model-b"


@dataclass
class Env(Deployed):
    endpoints: StandInEndpoints


def _dataset(n: int) -> list[dict[str, str]]:
    """Prompts the stand-ins answer without a SQuAD passage (their generic branch), one per id."""
    return [
        {"id": f"p{i:04d}", "prompt": f"Question {i}: name something that is {i} units long."}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def env(synthesized: list[StackTemplate]) -> Iterator[Env]:
    with local_aws() as emu:
        deployment = deploy(emu, synthesized)
        endpoints, _ = install_stand_ins(emu, {A: "A", B: "B"})
        e = Env(emu, deployment, endpoints)
        body = "".join(json.dumps(row) + "\n" for row in _dataset(PROMPTS)).encode()
        emu.client("s3").put_object(Bucket=e.bucket, Key="datasets/map.jsonl", Body=body)
        yield e


def _start(env: Env, name: str, payload: dict[str, Any]) -> str:
    return env.emu.client("stepfunctions").start_execution(
        stateMachineArn=env.machine, name=name, input=json.dumps(payload)
    )["executionArn"]


def _request(env: Env, run_id: str, questions: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "questions": questions,
        "dataset": {"source": "s3", "uri": f"s3://{env.bucket}/datasets/map.jsonl"},
        "poll_seconds": 1,
    }


def _finish(env: Env, arn: str, timeout: float = 240) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = env.emu.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            events = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
            return desc, [e for page in events for e in page["events"]]
        time.sleep(0.3)
    pytest.fail(f"{arn} still running after {timeout} s")


def _entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _largest_payload(events: list[dict[str, Any]]) -> int:
    """Bytes of the largest input or output any state of the parent execution carried."""
    sizes = [0]
    for event in events:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict):
                sizes += [len(str(details.get(f, "")).encode()) for f in ("input", "output")]
    return max(sizes)


def _judge_input(env: Env, run_id: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in env.get(f"runs/{run_id}/input/llm_judge.jsonl").decode().splitlines()
    ]


def test_a_few_hundred_prompts_go_through_the_map(env: Env) -> None:
    env.endpoints.calls.clear()
    desc, events = _finish(env, _start(env, "map-300", _request(env, "map-300", PROMPTS)))
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    states = _entered(events)
    assert states[:4] == ["PrepareRun", "GenerateChunks", "ReduceGeneration", "RecordEndpointUse"]

    chunks = math.ceil(PROMPTS / CHUNK_ITEMS)  # 2
    outcomes = [k for k in env.keys("runs/map-300/generation/outcomes/") if k.endswith(".json")]
    assert len(outcomes) == chunks == 2
    listing = [k for k in env.keys("runs/map-300/generation/") if k.endswith("/chunks.json")]
    descriptors = json.loads(env.get(listing[0]))
    # 176 + 124 items; 2 chunks < 4 Map slots, so each child takes half of each model's 64.
    assert [(d["items"], d["share"]) for d in descriptors] == [(176, 2), (124, 2)]
    assert env.endpoints.calls == {A: PROMPTS, B: PROMPTS}  # every prompt once per model, no more

    lines = _judge_input(env, "map-300")
    expected = [
        (row["prompt"], stand_in_answer("A", row["prompt"]), stand_in_answer("B", row["prompt"]))
        for row in _dataset(PROMPTS)
    ]
    assert [(x["prompt"], x["response_A"], x["response_B"]) for x in lines] == expected
    summary = json.loads(env.get("runs/map-300/generation/summary.json"))
    assert (summary["items"], summary["pairs_ok"], summary["failed"]) == (PROMPTS, PROMPTS, 0)
    # Far below Step Functions' 256 KB, and not growing with the prompts (the outcomes are in S3).
    assert _largest_payload(events) < 16 * 1024


def _fails_at_b(prompt: str, rate: float, seed: int = 0) -> bool:
    """The stand-in's seeded fault draw (novajudge.local.standins), recomputed here."""
    return random.Random(zlib.crc32("|".join((str(seed), "fault", B, prompt)).encode())).random() < rate


def test_a_stopped_run_resumes_with_only_the_missing_items(env: Env) -> None:
    n = 60
    prompts = [row["prompt"] for row in _dataset(n)]
    failing = [p for p in prompts if _fails_at_b(p, 0.5)]
    assert 12 < len(failing) < n  # over max_failure_rate 0.2: the first execution must fail

    env.endpoints.calls.clear()
    env.endpoints.faults[B] = EndpointFaults(rate=0.5)  # 400 ModelError: not retried, one call each
    desc, _ = _finish(env, _start(env, "resumable", _request(env, "resumable", n)))
    assert desc["status"] == "FAILED" and desc["error"] == "GenerationFailed", desc
    assert env.endpoints.calls == {A: n, B: n}
    manifest = [
        json.loads(x) for x in env.get("runs/resumable/generation/manifest.jsonl").decode().splitlines()
    ]
    assert sorted(m["prompt_id"] for m in manifest if m["B"]["status"] != "ok") == sorted(
        f"p{prompts.index(p):04d}" for p in failing
    )

    env.endpoints.faults.clear()
    env.endpoints.calls.clear()
    desc, events = _finish(env, _start(env, "resumable-resume-1", {"run_id": "resumable", "resume": True}))
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert "PrepareRun" in _entered(events)
    # Only the failed items were asked again: both models, once each (an item is kept when both
    # of its answers came back).
    assert env.endpoints.calls == {A: len(failing), B: len(failing)}

    env.endpoints.calls.clear()
    desc, _ = _finish(env, _start(env, "uninterrupted", _request(env, "uninterrupted", n)))
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert _judge_input(env, "resumable") == _judge_input(env, "uninterrupted")
    summary = json.loads(env.get("runs/resumable/generation/summary.json"))
    assert (summary["items"], summary["pairs_ok"], summary["failed"]) == (n, n, 0)


def test_resume_of_an_unknown_run_fails_by_name(env: Env) -> None:
    desc, _ = _finish(env, _start(env, "ghost-resume", {"run_id": "ghost", "resume": True}))
    assert desc["status"] == "FAILED" and desc["error"] == "InvalidRunRequest", desc
    assert "cannot be resumed" in desc["cause"]
