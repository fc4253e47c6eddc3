"""Cleanup: the Lambda adapter of `novajudge.steps.cleanup` (docs/design.md).

Invoked by the EventBridge rule on the state machine's FAILED, TIMED_OUT and ABORTED status
changes: stops the run's judge training job if it still runs, deletes the run's own endpoints
(per-run mode) and writes what it did to `runs/<run_id>/cleanup.json`. Idempotent, so EventBridge's
retries and `novajudge stop` may repeat it.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.cleanup import cleanup_from_event
from novajudge.steps.environment import CleanupEnvironment

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = CleanupEnvironment.from_environ(os.environ)
    report = cleanup_from_event(
        event,
        env,
        s3=boto3.client("s3"),
        sagemaker=boto3.client("sagemaker", region_name=env.region),
        endpoints_for=env.run_endpoints,
    )
    logger.info("cleanup done", extra={"cleanup": report})
    if not report["ok"]:
        # Fail the invocation so EventBridge retries it and the failure is visible in metrics.
        raise RuntimeError(f"cleanup of run {report['run_id']} incomplete: {'; '.join(report['errors'])}")
    return report
