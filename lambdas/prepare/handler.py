"""PrepareRun: the Lambda adapter of `novajudge.steps.prepare` (docs/design.md).

Reads the environment once, builds the clients (S3, Service Quotas for the pre-flight) and logs.
Errors are the step's typed `novajudge.errors` classes, so the state machine sees `ConfigError`,
`InvalidRunRequest`, `DatasetError`, `RunExistsError` or `QuotaExceeded`.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.environment import GenerateEnvironment
from novajudge.steps.generate import build_run
from novajudge.steps.lambda_adapter import lambda_step
from novajudge.steps.prepare import prepare

logger = Logger()


@lambda_step(logger, GenerateEnvironment)
def handler(event: dict[str, Any], env: GenerateEnvironment, context: LambdaContext) -> dict[str, Any]:
    run = build_run(event, env)
    logger.append_keys(run_id=run.run_id)
    logger.info(
        "preparing the run",
        extra={"questions": run.questions, "dataset": run.dataset.source, "resume": run.resume},
    )
    state = prepare(run, env, s3=boto3.client("s3"), quotas=boto3.client("service-quotas"))
    logger.info("chunks written", extra={"map": state["map"]})
    return state
