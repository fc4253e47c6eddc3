"""GenerateData: the Lambda adapter of `novajudge.steps.generate` (docs/design.md).

Reads the environment once, builds the clients, hands the Lambda's remaining time to the step and
logs. Errors are the step's typed `novajudge.errors` classes, so the state machine sees
`ConfigError`, `InvalidRunRequest`, `DatasetError`, `RunExistsError` or `GenerationFailed`.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.generation.endpoints import runtime_client
from novajudge.steps.environment import GenerateEnvironment
from novajudge.steps.generate import build_run, generate

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = GenerateEnvironment.from_environ(os.environ)
    run = build_run(event, env)
    logger.append_keys(run_id=run.run_id)
    logger.info(
        "generation starting",
        extra={"questions": run.questions, "dataset": run.dataset.source, "stand_in": run.stand_in},
    )
    state = generate(
        run,
        env,
        s3=boto3.client("s3"),
        runtime=runtime_client(read_timeout=env.read_timeout_seconds),
        remaining_ms=context.get_remaining_time_in_millis(),
    )
    logger.info("generation finished", extra={"generation": state["generation"]})
    return state
