"""ReduceGeneration: the Lambda adapter of `novajudge.steps.reduce` (docs/design.md).

Too many failed items raise `GenerationFailed` (after the manifest and summary are written); a state
without a prepared run raises `InvalidRunRequest`.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.lambda_adapter import lambda_step
from novajudge.steps.reduce import reduce_run

logger = Logger()


@lambda_step(logger)
def handler(event: dict[str, Any], env: None, context: LambdaContext) -> dict[str, Any]:
    state = reduce_run(event, s3=boto3.client("s3"))
    logger.append_keys(run_id=state["run"]["run_id"])
    logger.info("generation finished", extra={"generation": state["generation"]})
    return state
