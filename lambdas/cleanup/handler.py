"""Cleanup: the Lambda adapter of `novajudge.steps.cleanup` (docs/design.md).

Invoked by the EventBridge rule on the state machine's FAILED, TIMED_OUT and ABORTED status
changes: stops the run's judge training job if it still runs, deletes the run's own endpoints
(per-run mode) and writes what it did to `runs/<run_id>/cleanup.json`. Idempotent, so EventBridge's
retries and `novajudge stop` may repeat it.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.cleanup import cleanup_from_event
from novajudge.steps.environment import CleanupEnvironment
from novajudge.steps.lambda_adapter import lambda_step

logger = Logger()


@lambda_step(logger, CleanupEnvironment)
def handler(event: dict[str, Any], env: CleanupEnvironment, context: LambdaContext) -> dict[str, Any]:
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
