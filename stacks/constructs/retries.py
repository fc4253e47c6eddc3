"""How the state machine's tasks retry: exponential backoff, doubling, mostly with full jitter.

One definition for the CDK tasks (`Backoff.apply`) and the raw ASL states (`Backoff.asl`), so a
retry policy reads the same wherever it is written. Full jitter spreads the retries of executions
that failed together (a throttle hits every run at once) instead of bringing them back in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn

#: Transient Lambda service errors (not the handler's own errors): retried with backoff.
LAMBDA_TRANSIENT_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
)
#: Errors of the `aws-sdk:sagemaker:*` integrations, named as Step Functions emits them: "the
#: resulting Error field will be composed of the service name and the error name, separated by a
#: period: ServiceName.ErrorName", both PascalCase, always with the `Exception` suffix
#: (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). So a
#: throttled call is `SageMaker.ThrottlingException`, never a bare `ThrottlingException`;
#: `SageMaker.SageMakerException` is the SDK's generic error for a code the service model lacks.
SAGEMAKER_TRANSIENT_ERRORS = ("SageMaker.ThrottlingException", "SageMaker.SageMakerException")
#: Each retry waits twice as long as the one before (at most `max_delay_seconds`, when set).
BACKOFF_RATE = 2


@dataclass(frozen=True)
class Backoff:
    """One retrier: `errors`, `max_attempts` retries from `interval_seconds` on, doubling."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    max_delay_seconds: int | None = None
    jitter: bool = True

    def apply(self, task: sfn.TaskStateBase) -> None:
        """Add this retrier to a CDK task (after the ones it already has)."""
        task.add_retry(
            errors=list(self.errors),
            interval=cdk.Duration.seconds(self.interval_seconds),
            max_attempts=self.max_attempts,
            backoff_rate=BACKOFF_RATE,
            max_delay=cdk.Duration.seconds(self.max_delay_seconds) if self.max_delay_seconds else None,
            jitter_strategy=sfn.JitterType.FULL if self.jitter else None,
        )

    def asl(self) -> dict[str, Any]:
        """This retrier as an ASL `Retry` entry, for a raw `CustomState`."""
        entry: dict[str, Any] = {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": BACKOFF_RATE,
        }
        if self.max_delay_seconds:
            entry["MaxDelaySeconds"] = self.max_delay_seconds
        if self.jitter:
            entry["JitterStrategy"] = "FULL"
        return entry


#: Every Lambda task, the generation Map's children included: the service's transient errors only.
LAMBDA_RETRY = Backoff(LAMBDA_TRANSIENT_ERRORS, interval_seconds=2, max_attempts=6)
#: The per-run endpoint calls (create, describe, delete): SageMaker throttling.
SAGEMAKER_CALL_RETRY = Backoff(SAGEMAKER_TRANSIENT_ERRORS, interval_seconds=5, max_attempts=6)
