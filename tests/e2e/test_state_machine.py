"""Execute the SYNTHESIZED state machine in moto with the real handlers and the stand-ins.

One emulator and one deployment for the module; each test starts its own execution (distinct run
ids) after configuring the stand-ins' faults. Waits are shortened through the execution input
(`poll_seconds`) and the stand-in job duration, never by editing the definition.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from novajudge.layout import RESULT_FILES
from novajudge.local import moto_patches
from novajudge.local.demo import LOCAL_LAMBDA_ENV
from novajudge.local.deploy import Deployment, StackTemplate, deploy
from novajudge.local.emulator import Emulator, local_aws
from novajudge.local.standins import (
    STAND_IN_JUDGE_TAG,
    EndpointFaults,
    JudgeFaults,
    StandInEndpoints,
    StandInJudge,
    judge_pair,
)

pytestmark = pytest.mark.e2e


@dataclass
class Env:
    emu: Emulator
    deployment: Deployment
    endpoints: StandInEndpoints
    judge: StandInJudge

    @property
    def bucket(self) -> str:
        return str(self.deployment.output("BucketName"))


@pytest.fixture(scope="module")
def env(synthesized: list[StackTemplate]) -> Iterator[Env]:
    with local_aws() as emu:
        deployment = deploy(emu, synthesized)
        a, b = deployment.output("EndpointAName"), deployment.output("EndpointBName")
        endpoints = StandInEndpoints(profiles={a: "A", b: "B"})
        judge = StandInJudge(s3_factory=lambda: emu.client("s3"))
        moto_patches.registry.endpoint_handler = endpoints
        moto_patches.registry.training_job_hook = judge
        moto_patches.registry.training_job_seconds = 0.5
        moto_patches.registry.extra_env.update(LOCAL_LAMBDA_ENV)
        yield Env(emu, deployment, endpoints, judge)


@pytest.fixture(autouse=True)
def _no_faults(env: Env) -> None:
    env.endpoints.faults.clear()
    env.judge.faults = JudgeFaults()


def _run(env: Env, run_id: str, **extra: Any) -> dict[str, Any]:
    sfn = env.emu.client("stepfunctions")
    payload = {
        "run_id": run_id,
        "questions": 2,
        "dataset": {"source": "squad-sample"},
        "poll_seconds": 1,
        **extra,
    }
    arn = sfn.start_execution(
        stateMachineArn=env.deployment.output("StateMachineArn"), name=run_id, input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            desc["states"] = [
                e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
            ]
            return desc
        time.sleep(0.2)
    pytest.fail(f"execution {run_id} still running after 90 s")


def _get(env: Env, key: str) -> bytes:
    return env.emu.client("s3").get_object(Bucket=env.bucket, Key=key)["Body"].read()


def test_deployment_is_complete(env: Env) -> None:
    assert not env.deployment.unknown_types
    assert len(env.deployment.functions) == 3
    assert {p.name for p in env.deployment.functions.values()} == {"generate", "start_judge", "summarize"}
    assert sorted(env.deployment.endpoints) == ["novajudge-model-a", "novajudge-model-b"]


def test_success_results_match_stand_in_judgements(env: Env) -> None:
    desc = _run(env, "e2e-ok", both_orders=True)  # the opt-in audit: both orders in the judge input
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert desc["states"][:3] == ["GenerateData", "StartJudgeJob", "WaitForJudge"]
    assert desc["states"][-2:] == ["SummarizeResults", "Done"]
    output = json.loads(desc["output"])
    assert output["run_id"] == "e2e-ok" and "STAND-IN" in output["headline"]

    keys = {
        o["Key"]
        for o in env.emu.client("s3").list_objects_v2(Bucket=env.bucket, Prefix="runs/e2e-ok/")["Contents"]
    }
    for name in RESULT_FILES:
        assert f"runs/e2e-ok/results/{name}" in keys
    summary = json.loads(_get(env, "runs/e2e-ok/results/summary.json"))
    assert summary["stand_in"] is True

    # Recompute what the stand-in judge must have decided, un-swapping rows sent as BA.
    lines = [json.loads(x) for x in _get(env, "runs/e2e-ok/input/llm_judge.jsonl").decode().splitlines()]
    manifest = [
        json.loads(x) for x in _get(env, "runs/e2e-ok/generation/manifest.jsonl").decode().splitlines()
    ]
    orders = {m["row"]: m["order"] for m in manifest if m.get("row") is not None}
    assert all(m.get("stand_in") is True for m in manifest)
    wins: Counter[str] = Counter()
    for row, line in enumerate(lines):
        label = judge_pair(line["prompt"], line["response_A"], line["response_B"]).label
        winner = {"A>B": "A", "B>A": "B"}.get(label or "", "tie")
        if orders[row] == "BA" and winner in "AB":
            winner = "B" if winner == "A" else "A"
        wins[winner] += 1
    counts = summary["ours"]["counts"]
    assert counts["total"] == len(lines) == 4  # 2 questions x both orders
    assert (counts["a_wins"], counts["b_wins"]) == (wins["A"], wins["B"])
    assert counts["ties"] + counts["bothbad_ties"] == wins["tie"]
    assert summary["judge"]["a_scores"] + summary["judge"]["b_scores"] + summary["judge"]["ties"] == 4


def test_endpoint_failure_fails_through_generation_failed(env: Env) -> None:
    env.endpoints.faults["novajudge-model-b"] = EndpointFaults()
    desc = _run(env, "e2e-endpoint-down")
    assert desc["status"] == "FAILED"
    assert desc["states"][-1] == "GenerationFailed"
    assert desc["error"] == "GenerationFailed"  # novajudge.errors.GenerationFailed
    assert "ModelError" in desc["cause"] and "failed" in desc["cause"]


def test_judge_job_failure_fails_through_judge_job_failed(env: Env) -> None:
    env.judge.faults = JudgeFaults(fail_reason="GPU quota exhausted (injected)")
    desc = _run(env, "e2e-judge-failed")
    assert desc["status"] == "FAILED"
    assert desc["error"] == "JudgeJobFailed"
    assert desc["states"][-1] == "JudgeJobFailed"
    assert "GPU quota exhausted (injected)" in desc["cause"] and STAND_IN_JUDGE_TAG in desc["cause"]


def test_corrupt_archive_fails_through_summarize_failed(env: Env) -> None:
    env.judge.faults = JudgeFaults(corrupt_archive=True)
    desc = _run(env, "e2e-corrupt", poll_seconds=0)
    assert desc["status"] == "FAILED"
    assert desc["states"][-1] == "SummarizeFailed"  # the Fail state names the step ...
    assert desc["error"] == "ResultsError"  # ... its Error is the handler's typed exception
    assert "not a readable tar.gz archive" in desc["cause"]


def test_binary_judge_succeeds(env: Env) -> None:
    desc = _run(env, "e2e-binary", questions=1, judge={"variant": "binary"}, poll_seconds=0)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    summary = json.loads(_get(env, "runs/e2e-binary/results/summary.json"))
    assert summary["variant"] == "binary" and summary["stand_in"] is True
