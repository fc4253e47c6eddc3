"""SummarizeResults: fetch the judge's archive, summarise it, publish the four result files.

Event: the state incl. `judge` (from start_judge). The archive is searched under the job's output
prefix by suffix rather than trusted at one fixed key: describe may not report ModelArtifacts for
Nova jobs and the layout under the prefix is the judge's, not ours. Returns `summary_uri`,
`details_uri`, `figure_uri`, `report_uri` and the `headline`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.errors import InvalidRunRequest, ResultsError
from novajudge.generation.layout import RunLayout
from novajudge.generation.runner import stand_in_from_env
from novajudge.run_request import RunState, parse_run_state

logger = Logger()
tracer = Tracer()

ARCHIVE_SUFFIX = "output.tar.gz"
#: result file -> (returned key, content type)
RESULT_OBJECTS: dict[str, tuple[str, str]] = {
    "summary.json": ("summary_uri", "application/json"),
    "details.parquet": ("details_uri", "application/vnd.apache.parquet"),
    "report.png": ("figure_uri", "image/png"),
    "report.html": ("report_uri", "text/html; charset=utf-8"),
}

Summarize = Callable[..., dict[str, Any]]


def find_archive(s3: Any, layout: RunLayout, job_name: str) -> str:
    """The key of the job's `output.tar.gz`: the documented key if present, else the only match."""
    expected = layout.judge_archive_key(job_name)
    job_prefix = f"{layout.judge_output_prefix}{job_name}/"
    keys = _list_keys(s3, layout.bucket, job_prefix)
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
        body = s3.get_object(Bucket=layout.bucket, Key=layout.manifest_key)["Body"].read().decode("utf-8")
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise ResultsError(
            f"cannot read the generation manifest {layout.uri(layout.manifest_key)}: {code}"
        ) from None
    records = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ResultsError(
                f"{layout.uri(layout.manifest_key)} line {number}: not valid JSON ({exc.msg})"
            ) from None
    return records


def human_labels(manifest: list[dict[str, Any]]) -> dict[str, str]:
    """prompt_id → A|B|tie from the user's dataset (`preference` column), carried by the manifest."""
    return {str(m["prompt_id"]): m["human_preference"] for m in manifest if m.get("human_preference")}


def _default_summarize() -> Summarize:
    from novajudge.results.summarize import summarize  # heavy (pandas, matplotlib): import on use

    return summarize


def summarize_run(
    state: dict[str, Any],
    *,
    s3: Any,
    summarize: Summarize | None = None,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Download, summarise and upload; return the `results` object of the state machine."""
    run: RunState = parse_run_state(state)
    judge = state.get("judge")
    if not isinstance(judge, dict) or not judge.get("training_job_name"):
        raise InvalidRunRequest("the state has no 'judge.training_job_name': was the judge started?")
    layout = RunLayout(run.bucket, run.run_id)
    key = find_archive(s3, layout, judge["training_job_name"])
    manifest = read_manifest(s3, layout)
    summarize = summarize or _default_summarize()
    stand_in = run.stand_in or stand_in_from_env()
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        archive = Path(tmp) / "output.tar.gz"
        s3.download_file(layout.bucket, key, str(archive))
        out_dir = Path(tmp) / "results"
        out_dir.mkdir()
        labels = human_labels(manifest)
        extra = {"human_labels": labels} if labels else {}
        summary = summarize(
            archive, out_dir, run.model_a, run.model_b, manifest=manifest, stand_in=stand_in, **extra
        )
        results: dict[str, Any] = {}
        for name, (field, content_type) in RESULT_OBJECTS.items():
            path = out_dir / name
            if not path.is_file():
                raise ResultsError(f"summarize did not write {name} (from {layout.uri(key)})")
            s3.upload_file(
                str(path), layout.bucket, layout.results_key(name), ExtraArgs={"ContentType": content_type}
            )
            results[field] = layout.uri(layout.results_key(name))
    results["headline"] = str(summary.get("headline", ""))
    results["archive_uri"] = layout.uri(key)
    return results


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = summarize_run(event, s3=boto3.client("s3"), work_dir=os.environ.get("TMPDIR"))
    logger.info("results published", extra={"results": results})
    return results
