"""GenerateChunk: the Lambda adapter of `novajudge.steps.generate.generate_chunk` (docs/design.md).

One child of the generation Map: reads the environment once, builds the clients, hands the Lambda's
remaining time to the step (no request starts too late to be written) and logs. Errors are typed
`novajudge.errors` classes; an error here fails this child only (the Map tolerates a share of them,
and the chunk's items count as failed in reduce).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from novajudge.generation.endpoints import runtime_client
from novajudge.steps.environment import ChunkEnvironment
from novajudge.steps.generate import generate_chunk
from novajudge.steps.lambda_adapter import lambda_step

logger = Logger()


@lambda_step(logger, ChunkEnvironment, log_event=False)
def handler(event: dict[str, Any], env: ChunkEnvironment, context: LambdaContext) -> dict[str, Any]:
    run = event.get("run") if isinstance(event, dict) else None
    logger.append_keys(
        run_id=(run or {}).get("run_id"),
        chunk=((event.get("chunk") if isinstance(event, dict) else None) or {}).get("index"),
    )
    result = generate_chunk(
        event,
        env,
        s3=boto3.client("s3"),
        runtime=runtime_client(read_timeout=env.read_timeout_seconds),
        remaining_ms=context.get_remaining_time_in_millis(),
    )
    logger.info("chunk generated", extra={"chunk": result})
    return result
