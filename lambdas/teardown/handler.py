"""Teardown: the Lambda adapter of `novajudge.steps.teardown` (docs/design.md).

The pipeline stack's delete-time custom resource (`stacks/constructs/teardown.py`) calls this one
function as both the Provider's onEvent and isComplete handler: isComplete events carry the Data
onEvent returned. On Delete it stops the state machine's running executions, deletes this
deployment's per-run endpoints and stops its tagged judge jobs, and logs what it did. It never
raises on Delete: a failed teardown must not make `cdk destroy` fail (what remains is logged).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.steps.environment import TeardownEnvironment
from novajudge.steps.lambda_adapter import lambda_step
from novajudge.steps.teardown import Invocation, is_complete, is_complete_event, on_event

logger = Logger()


@lambda_step(logger, TeardownEnvironment)
def handler(event: dict[str, Any], env: TeardownEnvironment, context: LambdaContext) -> dict[str, Any]:
    step = is_complete if is_complete_event(event) else on_event
    call = Invocation(
        env,
        sfn=boto3.client("stepfunctions"),
        sagemaker=boto3.client("sagemaker"),
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    response, report = step(event, call)
    if report is not None:
        level = logger.warning if report.errors or report.gave_up else logger.info
        level(f"teardown {step.__name__}", extra={"teardown": report.as_dict(), "response": response})
    return response
