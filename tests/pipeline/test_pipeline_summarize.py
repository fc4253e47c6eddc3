"""summarize: find the judge's archive by suffix, run the results summary, publish four files."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from pipeline_fakes import BUCKET, EXECUTION_NAME, MODEL_A, MODEL_B, FakeTGI, dataset_event, upload_dataset

from novajudge.errors import ResultsError
from novajudge.local.judge_archive import Criterion, Judgement, write_judge_archive
from novajudge.steps.environment import SummarizeEnvironment
from novajudge.steps.summarize import summarize_run

JOB = "exp-7-rubric-1a2b3c4d"


def _generate(run_id: str, generate_step: Any, lambda_context: Any, questions: int = 4) -> dict[str, Any]:
    event = {
        "input": {"run_id": run_id, "questions": questions, "dataset": {"source": "squad-sample"},
                  "both_orders": True},
        "execution_name": EXECUTION_NAME,
    }
    return generate_step(event, lambda_context)


def _summarize(state: dict[str, Any], s3: Any, **kwargs: Any) -> dict[str, Any]:
    """The summarize step with the environment the handler would read now."""
    return summarize_run(state, SummarizeEnvironment.from_environ(os.environ), s3=s3, **kwargs)


def _judge(run_id: str, job: str = JOB) -> dict[str, Any]:
    prefix = f"s3://{BUCKET}/runs/{run_id}"
    return {
        "training_job_name": job,
        "output_path": f"{prefix}/judge-output/{job}/output/output.tar.gz",
        "recipe_uri": f"{prefix}/recipe/rubric_judge.yaml",
        "instance_type": "ml.p5.48xlarge",
        "variant": "rubric",
    }


def _judgements(s3: Any, run_id: str) -> list[Judgement]:
    """What a judge preferring model B's longer answers would write, row by row of the judge input."""
    body = s3.get_object(Bucket=BUCKET, Key=f"runs/{run_id}/input/llm_judge.jsonl")["Body"].read().decode()
    judgements = []
    for line in body.splitlines():
        rec = json.loads(line)
        b_first = rec["response_A"].startswith("[novajudge-model-b]")
        judgements.append(
            Judgement(
                prompt=rec["prompt"],
                response_A=rec["response_A"],
                response_B=rec["response_B"],
                label="A>B" if b_first else "B>A",
                criteria=[
                    Criterion(
                        "Accuracy",
                        "Matches the passage",
                        "scale",
                        0.7,
                        5 if b_first else 3,
                        3 if b_first else 5,
                    ),
                    Criterion("Concise", "No padding", "binary", 0.3, True, True),
                ],
                overall_justification="The 7B answer cites the passage.",
            )
        )
    return judgements


def test_end_to_end_with_the_real_summary(
    aws, tgi: FakeTGI, generate_step, lambda_context, tmp_path: Path
) -> None:
    """generate → (judge archive as the job would write it) → summarize, with the real results code."""
    s3 = aws["s3"]
    state = _generate("exp-7", generate_step, lambda_context)
    archive = write_judge_archive(tmp_path, "rubric", _judgements(s3, "exp-7"), JOB, "20261123_101500")
    # the job writes under its own prefix; the path below it is the judge's business
    s3.upload_file(str(archive), BUCKET, f"runs/exp-7/judge-output/{JOB}/output/output.tar.gz")
    state["judge"] = _judge("exp-7")
    state["judge_status"] = {"TrainingJobStatus": "Completed"}

    results = _summarize(state, s3)

    base = f"s3://{BUCKET}/runs/exp-7/results"
    assert results["summary_uri"] == f"{base}/summary.json"
    assert results["details_uri"] == f"{base}/details.parquet"
    assert results["figure_uri"] == f"{base}/report.png"
    assert results["report_uri"] == f"{base}/report.html"
    assert isinstance(results["headline"], str) and results["headline"]
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/exp-7/results/summary.json")["Body"].read())
    assert summary["models"] == {"A": MODEL_A, "B": MODEL_B}
    assert summary["stand_in"] is False
    assert s3.get_object(Bucket=BUCKET, Key="runs/exp-7/results/report.png")["ContentType"] == "image/png"
    # The judge preferred B's answer in every row; as sent that is 4 "A" and 4 "B" wins because half
    # the rows were swapped. The manifest's row/order mapping un-swaps them: B won all 8.
    assert summary["manifest_used"] is True and summary["orders"] == {"AB": 4, "BA": 4}
    assert (summary["judge"]["a_scores"], summary["judge"]["b_scores"]) == (4, 4)
    assert (summary["ours"]["counts"]["a_wins"], summary["ours"]["counts"]["b_wins"]) == (0, 8)
    # The headline counts prompts (issue 11): 4 prompts, each won by B in both orders, are too few.
    assert summary["prompt_level"]["prompts"] == 4 and summary["prompt_level"]["judged_orders"] == 8
    assert results["headline"] == summary["headline"]
    assert results["headline"].startswith(
        "too few prompts to conclude (4 < 10). Over 4 prompts, B (Qwen/Qwen2.5-7B"
    )


def test_human_preferences_in_the_dataset_calibrate_the_judge(
    aws, tgi: FakeTGI, generate_step, lambda_context, tmp_path: Path
) -> None:
    """A `preference` column in the user's dataset travels in the manifest to the trust block."""
    s3 = aws["s3"]
    labels = {"h0": "B", "h1": "B", "h2": "A"}  # the judge below always prefers model B
    rows = [{"id": pid, "prompt": f"Question {pid}?", "preference": pref} for pid, pref in labels.items()]
    uri = upload_dataset(s3, "labelled.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    tgi.by_prompt.update({r["prompt"]: r["id"] for r in rows})
    event = dataset_event("hl", uri)
    state = generate_step(event, lambda_context)
    archive = write_judge_archive(tmp_path, "rubric", _judgements(s3, "hl"), JOB, "20261123_101500")
    s3.upload_file(str(archive), BUCKET, f"runs/hl/judge-output/{JOB}/output/output.tar.gz")
    state["judge"] = _judge("hl")

    _summarize(state, s3)

    summary = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/hl/results/summary.json")["Body"].read())
    calibration = summary["trust"]["calibration"]
    assert calibration["measured"] is True
    # Judge says B for all three prompts (both orders agree); humans say B, B, A → 2 of 3 agree.
    assert (calibration["forward_agreement"]["successes"], calibration["forward_agreement"]["n"]) == (2, 3)


def test_plumbing_finds_the_archive_by_suffix(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    s3 = aws["s3"]
    state = _generate("exp-8", generate_step, lambda_context, questions=2)
    key = f"runs/exp-8/judge-output/{JOB}/some/other/depth/output.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=TINY_TAR)
    s3.put_object(Bucket=BUCKET, Key=f"runs/exp-8/judge-output/{JOB}/debug/events.json", Body=b"{}")
    state["judge"] = _judge("exp-8")
    seen: dict[str, Any] = {}

    def fake_summarize(source, out_dir, model_a, model_b, *, manifest=None, stand_in=False):
        seen.update(
            source=Path(source), model_a=model_a, model_b=model_b, manifest=manifest, stand_in=stand_in
        )
        seen["archive_bytes"] = Path(source).read_bytes()
        for name in ("summary.json", "details.parquet", "report.png", "report.html"):
            (Path(out_dir) / name).write_bytes(name.encode())
        return {"headline": "Qwen2.5-7B preferred in 2 of 2 pairs"}

    results = _summarize(state, s3, summarize=fake_summarize)
    assert seen["archive_bytes"] == TINY_TAR
    assert (seen["model_a"], seen["model_b"], seen["stand_in"]) == (MODEL_A, MODEL_B, False)
    assert [(m["row"], m["order"]) for m in seen["manifest"]] == [(0, "AB"), (1, "BA"), (2, "AB"), (3, "BA")]
    assert results["headline"] == "Qwen2.5-7B preferred in 2 of 2 pairs"
    assert results["archive_uri"] == f"s3://{BUCKET}/{key}"
    for name in ("summary.json", "details.parquet", "report.png", "report.html"):
        body = s3.get_object(Bucket=BUCKET, Key=f"runs/exp-8/results/{name}")["Body"].read()
        assert body == name.encode()


def test_missing_archive_is_a_results_error(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    state = _generate("exp-9", generate_step, lambda_context, questions=1)
    state["judge"] = _judge("exp-9")
    with pytest.raises(ResultsError, match=f"no output.tar.gz for judge job {JOB}"):
        _summarize(state, aws["s3"], summarize=_never)
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="runs/exp-9/results/")


def test_summarize_must_write_all_four_files(aws, tgi: FakeTGI, generate_step, lambda_context) -> None:
    state = _generate("exp-10", generate_step, lambda_context, questions=1)
    aws["s3"].put_object(
        Bucket=BUCKET, Key=f"runs/exp-10/judge-output/{JOB}/output/output.tar.gz", Body=TINY_TAR
    )
    state["judge"] = _judge("exp-10")

    def partial(source, out_dir, *args, **kwargs):
        (Path(out_dir) / "summary.json").write_text("{}")
        return {"headline": "x"}

    with pytest.raises(ResultsError, match=r"did not write details\.parquet"):
        _summarize(state, aws["s3"], summarize=partial)


def test_stand_in_reaches_the_summary(aws, tgi: FakeTGI, generate_step, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("NOVAJUDGE_STAND_IN", "1")
    state = _generate("exp-11", generate_step, lambda_context, questions=1)
    aws["s3"].put_object(
        Bucket=BUCKET, Key=f"runs/exp-11/judge-output/{JOB}/output/output.tar.gz", Body=TINY_TAR
    )
    state["judge"] = _judge("exp-11")
    flags = []

    def record(source, out_dir, *args, stand_in=False, **kwargs):
        flags.append(stand_in)
        for name in ("summary.json", "details.parquet", "report.png", "report.html"):
            (Path(out_dir) / name).write_text("x")
        return {"headline": "stand-in"}

    monkeypatch.delenv("NOVAJUDGE_STAND_IN")  # the run itself remembers it came from stand-ins
    _summarize(state, aws["s3"], summarize=record)
    assert flags == [True]


def _never(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise AssertionError("summarize must not run without an archive")


def _tiny_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("r/eval_results/results_x.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TINY_TAR = _tiny_tar()


def test_summary_records_usage_priced_from_the_state(
    aws, tgi: FakeTGI, generate_step, lambda_context
) -> None:
    """Judge: BillableTimeInSeconds × InstanceCount; endpoints: from..until × 2; list prices by hand."""
    s3 = aws["s3"]
    state = _generate("exp-usage", generate_step, lambda_context, questions=1)
    s3.put_object(Bucket=BUCKET, Key=f"runs/exp-usage/judge-output/{JOB}/output/output.tar.gz", Body=TINY_TAR)
    state["judge"] = _judge("exp-usage")
    state["judge_status"] = {
        "TrainingJobStatus": "Completed",
        "BillableTimeInSeconds": 1800,
        "ResourceConfig": {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1},
    }
    state["endpoint_use"] = {
        "mode": "per_run",
        "instance_type": "ml.g5.12xlarge",
        "instances": 2,
        "from": "2026-11-30T10:00:00.000Z",
        "until": "2026-11-30T10:15:00.000Z",
    }

    def fake_summarize(source, out_dir, model_a, model_b, *, manifest=None, stand_in=False):
        for name in ("details.parquet", "report.png", "report.html"):
            (Path(out_dir) / name).write_bytes(name.encode())
        (Path(out_dir) / "summary.json").write_text(json.dumps({"headline": "h"}))
        return {"headline": "h"}

    _summarize(state, s3, summarize=fake_summarize)
    summary = json.loads(
        s3.get_object(Bucket=BUCKET, Key="runs/exp-usage/results/summary.json")["Body"].read()
    )
    usage = summary["usage"]
    assert summary["headline"] == "h"
    # pricing.json: ml.p5.48xlarge training 63.29/h, ml.g5.12xlarge inference 7.09/h (README table).
    assert usage["judge"]["instance_seconds"] == 1800 and usage["judge"]["cost"] == pytest.approx(31.645)
    assert usage["endpoints"]["seconds"] == 900 and usage["endpoints"]["instance_seconds"] == 1800
    assert usage["endpoints"]["cost"] == pytest.approx(3.545)
    assert usage["total_cost"] == pytest.approx(35.19)
