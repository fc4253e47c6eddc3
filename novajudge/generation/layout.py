"""Where the objects of one run live (docs/design.md, "Objects of one run"), in one place.

Every handler builds keys from this class, so the S3 layout, the judge's channels and the CLI's
look-ups cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from novajudge.errors import RunExistsError

RESULT_FILES = ("summary.json", "details.parquet", "report.png", "report.html")


@dataclass(frozen=True)
class RunLayout:
    """Keys and URIs of the objects of run `run_id` in `bucket`."""

    bucket: str
    run_id: str

    @property
    def prefix(self) -> str:
        return f"runs/{self.run_id}/"

    @property
    def request_key(self) -> str:
        return f"{self.prefix}request.json"

    @property
    def judge_input_prefix(self) -> str:
        return f"{self.prefix}input/"

    @property
    def judge_input_key(self) -> str:
        return f"{self.judge_input_prefix}llm_judge.jsonl"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}generation/manifest.jsonl"

    @property
    def generation_summary_key(self) -> str:
        return f"{self.prefix}generation/summary.json"

    @property
    def recipe_prefix(self) -> str:
        return f"{self.prefix}recipe/"

    def recipe_key(self, file_name: str) -> str:
        return f"{self.recipe_prefix}{file_name}"

    @property
    def judge_output_prefix(self) -> str:
        return f"{self.prefix}judge-output/"

    def judge_archive_key(self, job_name: str) -> str:
        return f"{self.judge_output_prefix}{job_name}/output/output.tar.gz"

    @property
    def results_prefix(self) -> str:
        return f"{self.prefix}results/"

    def results_key(self, file_name: str) -> str:
        return f"{self.results_prefix}{file_name}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def ensure_new_run(s3: Any, layout: RunLayout, execution_name: str | None) -> None:
    """Refuse a run id that already has objects, unless they are this very execution's (a retry).

    Step Functions may retry the generate task after a Lambda timeout; refusing then would hide the
    real failure behind `RunExistsError`, so the same execution name may continue its own run.
    """
    listing = s3.list_objects_v2(Bucket=layout.bucket, Prefix=layout.prefix, MaxKeys=5)
    keys = [obj["Key"] for obj in listing.get("Contents", [])]
    if not keys:
        return
    if execution_name and _request_execution(s3, layout) == execution_name:
        return
    raise RunExistsError(
        f"run {layout.run_id!r} already exists: {layout.uri(keys[0])} is there; runs never overwrite "
        "each other, so choose another run_id (or delete the old run's objects)"
    )


def claim_run(s3: Any, layout: RunLayout, request: dict[str, Any]) -> None:
    """Write `request.json` only if absent (S3 conditional write), closing the race between two
    executions that passed `ensure_new_run` at the same moment."""
    body = json.dumps(request, indent=2, sort_keys=True).encode("utf-8")
    try:
        s3.put_object(
            Bucket=layout.bucket,
            Key=layout.request_key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
        if request.get("execution_name") and _request_execution(s3, layout) == request["execution_name"]:
            s3.put_object(
                Bucket=layout.bucket, Key=layout.request_key, Body=body, ContentType="application/json"
            )
            return
        raise RunExistsError(
            f"run {layout.run_id!r} was claimed by another execution ({layout.uri(layout.request_key)} "
            "exists); choose another run_id"
        ) from None


def _request_execution(s3: Any, layout: RunLayout) -> str | None:
    try:
        body = s3.get_object(Bucket=layout.bucket, Key=layout.request_key)["Body"].read()
        return json.loads(body).get("execution_name")
    except Exception:  # no request.json or not ours: treat as a different run
        return None


def put_json(s3: Any, bucket: str, key: str, value: Any) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(value, indent=2, sort_keys=False, default=str).encode("utf-8"),
        ContentType="application/json",
    )


def put_jsonl(s3: Any, bucket: str, key: str, records: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/x-ndjson")
