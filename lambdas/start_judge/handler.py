"""StartJudgeJob: the Lambda adapter of `novajudge.steps.start_judge` (docs/design.md).

Configuration problems (unknown region, an instance type the judge cannot use) raise
`JudgeConfigError` before any AWS call, so nothing is started or paid for.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.environment import StartJudgeEnvironment
from novajudge.steps.lambda_adapter import lambda_step
from novajudge.steps.start_judge import start_judge

logger = Logger()


@lambda_step(logger, StartJudgeEnvironment)
def handler(event: dict[str, Any], env: StartJudgeEnvironment, context: LambdaContext) -> dict[str, Any]:
    judge = start_judge(
        event, env, s3=boto3.client("s3"), sagemaker=boto3.client("sagemaker", region_name=env.region)
    )
    logger.info("judge job started", extra={"judge": judge})
    return judge
