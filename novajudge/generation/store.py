"""Writing one run's objects: refuse a reused run id, claim it atomically, put JSON and JSON Lines.

The keys come from `novajudge.layout.RunLayout`; this module only decides how the generate step
writes them, so a retried step continues its own run and never overwrites another one.
"""

from __future__ import annotations

import json
from typing import Any

from novajudge.errors import RunExistsError
from novajudge.jsonl import repair_text
from novajudge.layout import RunLayout


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


def utf8(text: str) -> bytes:
    """`text` as UTF-8, lone surrogates replaced by U+FFFD: a write never fails on outside text.

    Model answers are repaired (and counted) when they arrive; this is the last line of defence for
    anything else that reaches a write (an error message quoting a response, a reference answer).
    """
    return repair_text(text)[0].encode("utf-8")


def put_json(s3: Any, bucket: str, key: str, value: Any) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=utf8(json.dumps(value, indent=2, sort_keys=False, default=str, ensure_ascii=False)),
        ContentType="application/json",
    )


def put_jsonl(s3: Any, bucket: str, key: str, records: list[dict[str, Any]]) -> None:
    """JSON Lines with raw (not `\\u`-escaped) Unicode; U+2028 and friends stay inside their line
    because readers split on `\\n` only (`novajudge.jsonl`)."""
    body = "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
    s3.put_object(Bucket=bucket, Key=key, Body=utf8(body), ContentType="application/x-ndjson")
