"""StartJudgeJob: render the recipe, upload it, start the Nova judge training job.

Event: the state `{"run": {...}, "generation": {...}}`. Returns the `judge` object
(`training_job_name`, `output_path`, `recipe_uri`, `instance_type`, `variant`). Configuration
problems (unknown region, instance type the judge cannot use) raise `JudgeConfigError` before any
AWS call, so nothing is started or paid for.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.errors import JudgeConfigError
from novajudge.judge.job import JudgeEnvironment, start_judge_job
from novajudge.run_request import parse_run_state

logger = Logger()
tracer = Tracer()


def current_region() -> str:
    region = (
        os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or boto3.session.Session().region_name
    )
    if not region:
        raise JudgeConfigError("no AWS region: set AWS_REGION")
    return region


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = parse_run_state(event)
    logger.append_keys(run_id=run.run_id)
    env = JudgeEnvironment.from_env()
    region = current_region()
    judge = start_judge_job(
        run,
        s3=boto3.client("s3"),
        sagemaker=boto3.client("sagemaker", region_name=region),
        region=region,
        env=env,
    )
    logger.info("judge job started", extra={"judge": judge})
    return judge
