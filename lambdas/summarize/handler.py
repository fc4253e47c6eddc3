"""SummarizeResults: the Lambda adapter of `novajudge.steps.summarize` (docs/design.md).

A missing or malformed archive or manifest raises `ResultsError`; a state without a started judge
raises `InvalidRunRequest`.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.environment import SummarizeEnvironment
from novajudge.steps.summarize import summarize_run

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = summarize_run(event, SummarizeEnvironment.from_environ(os.environ), s3=boto3.client("s3"))
    logger.info("results published", extra={"results": results})
    return results
