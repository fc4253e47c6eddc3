"""SummarizeResults: fetch the judge's archive, summarise it, publish the four result files.

The event is the state incl. `judge` (from start_judge); the result is the `results` object
(`summary_uri`, `details_uri`, `figure_uri`, `report_uri`, `headline`, `archive_uri`). The archive
is searched under the job's output prefix by suffix rather than trusted at one fixed key: describe
may not report ModelArtifacts for Nova jobs and the layout under the prefix is the judge's, not ours.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from novajudge.errors import InvalidRunRequest, ResultsError
from novajudge.jsonl import read_jsonl
from novajudge.layout import RESULTS, RunLayout
from novajudge.pricing import load_prices
from novajudge.run_request import RunState, parse_run_state
from novajudge.steps.environment import SummarizeEnvironment
from novajudge.steps.usage import run_usage

ARCHIVE_SUFFIX = "output.tar.gz"

Summarize = Callable[..., dict[str, Any]]


def find_archive(s3: Any, layout: RunLayout, job_name: str) -> str:
    """The key of the job's `output.tar.gz`: the documented key if present, else the only match."""
    expected = layout.judge_archive_key(job_name)
    keys = _list_keys(s3, layout.bucket, layout.judge_job_prefix(job_name))
    matches = [k for k in keys if k.endswith(ARCHIVE_SUFFIX)]
    if expected in matches:
        return expected
    if len(matches) == 1:
        return matches[0]
    if not matches:
        # The job may have written elsewhere under the run's output prefix (older SDK layouts).
        wider = [
            k for k in _list_keys(s3, layout.bucket, layout.judge_output_prefix) if k.endswith(ARCHIVE_SUFFIX)
        ]
        matches = [k for k in wider if job_name in k] or wider
        if len(matches) == 1:
            return matches[0]
    if not matches:
        seen = ", ".join(keys[:5]) or "nothing"
        raise ResultsError(
            f"no {ARCHIVE_SUFFIX} for judge job {job_name} under {layout.uri(layout.judge_output_prefix)} "
            f"(found: {seen})"
        )
    raise ResultsError(
        f"several {ARCHIVE_SUFFIX} for judge job {job_name}: {', '.join(matches[:5])}; expected {expected}"
    )


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def read_manifest(s3: Any, layout: RunLayout) -> list[dict[str, Any]]:
    """The generation manifest (one dict per line), which maps judge rows to prompts and orders."""
    try:
        body = s3.get_object(Bucket=layout.bucket, Key=layout.manifest_key)["Body"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise ResultsError(
            f"cannot read the generation manifest {layout.uri(layout.manifest_key)}: {code}"
        ) from None
    where = layout.uri(layout.manifest_key)
    records = []
    for number, record in read_jsonl(body, where, error=ResultsError):
        if not isinstance(record, dict):
            raise ResultsError(f"{where} line {number}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
    return records


def human_labels(manifest: list[dict[str, Any]]) -> dict[str, str]:
    """prompt_id → A|B|tie from the user's dataset (`preference` column), carried by the manifest."""
    return {str(m["prompt_id"]): m["human_preference"] for m in manifest if m.get("human_preference")}


def _add_usage(summary_path: Path, state: dict[str, Any]) -> None:
    """Record the run's endpoint and judge instance-seconds and their list-price cost."""
    if not summary_path.is_file():
        return  # summarize_run reports the missing file below
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # not a summary object (a test's stand-in summarize); publish it as written
    if not isinstance(summary, dict):
        return
    summary["usage"] = run_usage(state, load_prices())
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")


def _default_summarize() -> Summarize:
    from novajudge.results.summarize import summarize  # heavy (pandas, matplotlib): import on use

    return summarize


def summarize_run(
    state: Any,
    env: SummarizeEnvironment,
    *,
    s3: Any,
    summarize: Summarize | None = None,
) -> dict[str, Any]:
    """Download, summarise and upload; return the `results` object of the state machine.

    `summarize` replaces `novajudge.results.summarize.summarize` (same signature), so the plumbing
    is tested on its own.
    """
    run: RunState = parse_run_state(state)
    judge = state.get("judge")
    if not isinstance(judge, dict) or not judge.get("training_job_name"):
        raise InvalidRunRequest("the state has no 'judge.training_job_name': was the judge started?")
    layout = RunLayout(run.bucket, run.run_id)
    key = find_archive(s3, layout, judge["training_job_name"])
    manifest = read_manifest(s3, layout)
    summarize = summarize or _default_summarize()
    stand_in = run.stand_in or env.stand_in
    with tempfile.TemporaryDirectory(dir=env.work_dir) as tmp:
        archive = Path(tmp) / ARCHIVE_SUFFIX
        s3.download_file(layout.bucket, key, str(archive))
        out_dir = Path(tmp) / "results"
        out_dir.mkdir()
        labels = human_labels(manifest)
        extra = {"human_labels": labels} if labels else {}
        summary = summarize(
            archive, out_dir, run.model_a, run.model_b, manifest=manifest, stand_in=stand_in, **extra
        )
        _add_usage(out_dir / "summary.json", state)
        results: dict[str, Any] = {}
        for result in RESULTS:
            path = out_dir / result.name
            if not path.is_file():
                raise ResultsError(f"summarize did not write {result.name} (from {layout.uri(key)})")
            target = layout.results_key(result.name)
            s3.upload_file(str(path), layout.bucket, target, ExtraArgs={"ContentType": result.content_type})
            results[result.state_key] = layout.uri(target)
    results["headline"] = str(summary.get("headline", ""))
    results["archive_uri"] = layout.uri(key)
    return results
