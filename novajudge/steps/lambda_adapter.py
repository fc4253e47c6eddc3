"""The shape every Lambda handler in `lambdas/` shares: event in, the step's typed errors out.

A handler module stays a short adapter: it names the environment its step reads, builds the AWS
clients and logs what the step returned. `lambda_step` does the rest, the same for all seven:
Powertools' logging (the Lambda context on every line; the event itself unless it is large) and
tracing around the call, and the function's environment read once per invocation from `os.environ`
(`novajudge.steps.environment`; tests/test_environment_reads.py). The step's exceptions pass
through untouched: their class names (`novajudge.errors`) are what the state machine's Catch and
Fail states see.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

Env = TypeVar("Env")
Env_co = TypeVar("Env_co", covariant=True)
Result = TypeVar("Result")
Event = dict[str, Any]


class Environment(Protocol[Env_co]):
    """A `novajudge.steps.environment` class: parsed once from the function's variables."""

    def from_environ(self, environ: Mapping[str, str]) -> Env_co: ...


def lambda_step(
    logger: Logger, environment: Environment[Env] | None = None, *, log_event: bool = True
) -> Callable[[Callable[[Event, Env, LambdaContext], Result]], Callable[[Event, LambdaContext], Result]]:
    """Decorate `handler(event, env, context)` into the Lambda entry point `handler(event, context)`.

    `env` is `environment.from_environ(os.environ)` (None without an environment). The tracer is
    created here, when the handler module is imported, as the module-level one it replaces was.
    """
    tracer = Tracer()

    def wrap(step: Callable[[Event, Env, LambdaContext], Result]) -> Callable[[Event, LambdaContext], Result]:
        @logger.inject_lambda_context(log_event=log_event)
        @tracer.capture_lambda_handler
        @functools.wraps(step)
        def handler(event: Event, context: LambdaContext) -> Result:
            env = environment.from_environ(os.environ) if environment is not None else None
            return step(event, env, context)  # type: ignore[arg-type]

        return handler

    return wrap
