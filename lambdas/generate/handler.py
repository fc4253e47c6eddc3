"""GenerateData: validate the execution input, ask both endpoints, write the judge input.

Event (design.md): `{"input": <execution input>, "execution_name": <$$.Execution.Name>}`.
Returns the new state `{"run": {...validated request...}, "generation": {...}}`. Errors are the
typed `novajudge.errors` classes, so the state machine sees `InvalidRunRequest`, `DatasetError`,
`RunExistsError` or `GenerationFailed` as the error name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from novajudge.errors import ConfigError, InvalidRunRequest
from novajudge.generation.endpoints import DEFAULT_READ_TIMEOUT, runtime_client
from novajudge.generation.runner import now_iso, run_generation, stand_in_from_env
from novajudge.run_request import RunRequest, RunState, parse_run_request

logger = Logger()
tracer = Tracer()

#: Seconds kept at the end of the Lambda's time to write the manifest and summaries.
WRITE_MARGIN_SECONDS = 20.0
REQUIRED_ENV = ("BUCKET_NAME", "ENDPOINT_A_NAME", "ENDPOINT_B_NAME", "MODEL_A_ID", "MODEL_B_ID")


def build_run(event: Any, environ: Mapping[str, str] | None = None) -> RunState:
    """The validated `run` of this execution: the request plus the deployment's bucket and models."""
    environ = os.environ if environ is None else environ
    missing = [name for name in REQUIRED_ENV if not environ.get(name)]
    if missing:
        raise ConfigError(f"generate function environment is missing {', '.join(missing)}")
    if not isinstance(event, Mapping):
        raise InvalidRunRequest(f"the generate event must be an object, got {type(event).__name__}")
    unknown = sorted(set(event) - {"input", "execution_name"})
    if unknown:
        raise InvalidRunRequest(f"unexpected field(s) in the generate event: {', '.join(unknown)}")
    execution_name = event.get("execution_name")
    request = parse_run_request(event.get("input"), execution_name=execution_name)
    try:
        return _run_state(request, execution_name, environ)
    except ValidationError as exc:
        raise InvalidRunRequest(
            "invalid run request: " + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from None


def _run_state(request: RunRequest, execution_name: str | None, environ: Mapping[str, str]) -> RunState:
    return RunState(
        **request.model_dump(),
        bucket=environ["BUCKET_NAME"],
        execution_name=execution_name,
        created_at=now_iso(),
        model_a=environ["MODEL_A_ID"],
        model_b=environ["MODEL_B_ID"],
        endpoint_a=environ["ENDPOINT_A_NAME"],
        endpoint_b=environ["ENDPOINT_B_NAME"],
        stand_in=stand_in_from_env(),
    )


def _start_by(context: LambdaContext) -> float | None:
    """The last instant an endpoint request may start: one read timeout plus time to write the
    manifest and summary before the Lambda timeout, so a slow run ends with its outputs saved."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    read_timeout = float(os.environ.get("NOVAJUDGE_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT))
    return time.monotonic() + remaining() / 1000 - read_timeout - WRITE_MARGIN_SECONDS


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = build_run(event)
    logger.append_keys(run_id=run.run_id)
    logger.info(
        "generation starting",
        extra={"questions": run.questions, "dataset": run.dataset.source, "stand_in": run.stand_in},
    )
    generation = run_generation(
        run, s3=boto3.client("s3"), runtime=runtime_client(), start_by=_start_by(context)
    )
    logger.info("generation finished", extra={"generation": generation})
    return {"run": run.model_dump(mode="json"), "generation": generation}
