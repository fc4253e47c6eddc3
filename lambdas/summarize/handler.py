"""SummarizeResults: the Lambda adapter of `novajudge.steps.summarize` (docs/design.md).

A missing or malformed archive or manifest raises `ResultsError`; a state without a started judge
raises `InvalidRunRequest`.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.environment import SummarizeEnvironment
from novajudge.steps.lambda_adapter import lambda_step
from novajudge.steps.summarize import summarize_run

logger = Logger()


@lambda_step(logger, SummarizeEnvironment)
def handler(event: dict[str, Any], env: SummarizeEnvironment, context: LambdaContext) -> dict[str, Any]:
    results = summarize_run(event, env, s3=boto3.client("s3"))
    logger.info("results published", extra={"results": results})
    return results
