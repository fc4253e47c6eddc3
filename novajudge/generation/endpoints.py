"""Invoking one SageMaker TGI endpoint: chat payload, timeouts, and retries of transient errors only.

botocore does not retry `ModelError` (HTTP 424), which is how an overloaded TGI container's own 429
or 503 reaches us, and its generic retries would retry a `ValidationError` just the same as a
timeout. So the client is built with botocore retries off and this module owns the one retry
policy: jittered exponential backoff (seeded, so runs are reproducible) for transient failures, and
no retry at all for errors that would fail again (bad request, missing endpoint, 4xx from the model).
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from novajudge.jsonl import repair_text

#: InvokeEndpoint's limit: the container must answer within 60 s (AWS, "InvokeEndpoint" API reference).
INVOKE_LIMIT_SECONDS = 60.0
#: The container must answer within 60 s; a read timeout a little above catches a hung connection.
DEFAULT_READ_TIMEOUT = 70.0
#: Connections kept per host: both endpoints share one host name, so this bounds the in-flight
#: requests of A and B together without opening (and discarding) extra connections.
DEFAULT_POOL_CONNECTIONS = 1024
DEFAULT_CONNECT_TIMEOUT = 5.0

#: SageMaker runtime error codes that say "try again later".
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalDependencyException",
        "ModelNotReadyException",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff. The generate function's environment sets them (NOVAJUDGE_RETRY_*), so
    tests and the local emulator can make the delays ~0."""

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    seed: int = 0

    def rng_for(self, *keys: str) -> random.Random:
        """One generator per item and endpoint: the jitter sequence does not depend on thread timing."""
        return random.Random(zlib.crc32("|".join((str(self.seed), *keys)).encode()))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))] after failed attempt `attempt`."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class ErrorInfo:
    """What went wrong, in words a summary can count (`kind`) and whether another try may help."""

    kind: str
    message: str
    transient: bool
    #: The endpoint says it has too much to do (TGI's 429/503 inside a ModelError, throttling):
    #: the caller should send fewer requests at once (`novajudge.generation.pool`).
    overload: bool = False


@dataclass
class Generation:
    """The outcome of one prompt on one endpoint, as written to the manifest."""

    status: str  # "ok" | "failed"
    text: str | None
    latency_ms: int  # the last attempt only: what the model took, comparable between A and B
    elapsed_ms: int  # all attempts and backoff: what the run paid in time
    attempts: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    #: Lone surrogates in the model's answer replaced by U+FFFD (`novajudge.jsonl.repair_text`).
    repaired_chars: int = 0

    def manifest_fields(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "repaired_chars": self.repaired_chars,
            "latency_ms": self.latency_ms,
            "elapsed_ms": self.elapsed_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "attempts": self.attempts,
            "error": self.error,
            "error_kind": self.error_kind,
        }


class AttemptGate(Protocol):
    """Admission of each attempt (`novajudge.generation.pool.AdaptiveLimit`): `acquire` blocks until
    the endpoint may take one more request; `release` reports how the attempt went, so the gate can
    shrink the window on overload and grow it when healthy. Per attempt, not per item, so a request
    waiting out its backoff does not hold a slot the endpoint could use."""

    def acquire(self) -> Any: ...

    def release(self, ticket: Any, *, seconds: float, error: ErrorInfo | None, sent: bool = True) -> None:
        """`sent=False`: the slot was given back unused (the time budget ran out while waiting)."""


class BadResponse(Exception):
    """The endpoint answered 200 with a body that is not a chat completion."""


def classify(exc: BaseException) -> ErrorInfo:
    """Sort an invocation error into transient (retry) or permanent (fail the item now)."""
    if isinstance(
        exc, ReadTimeoutError | ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError
    ):
        return ErrorInfo(type(exc).__name__, str(exc), transient=True)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        message = error.get("Message", str(exc))
        if code == "ModelError":
            original = exc.response.get("OriginalStatusCode")
            original_message = exc.response.get("OriginalMessage") or message
            status = _http_status(original)
            transient = status is not None and (status == 429 or status >= 500)
            overload = status in (429, 503)
            return ErrorInfo(
                f"ModelError 424 (original {status})", str(original_message)[:500], transient, overload
            )
        status_code = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        transient = code in _TRANSIENT_CODES or (code != "ValidationError" and (status_code or 0) >= 500)
        return ErrorInfo(code, message[:500], transient, overload=code == "ThrottlingException")
    if isinstance(exc, BadResponse):
        return ErrorInfo("BadResponse", str(exc)[:500], transient=False)
    return ErrorInfo(type(exc).__name__, str(exc)[:500], transient=False)


def _http_status(value: Any) -> int | None:
    """An HTTP status from a ModelError's `OriginalStatusCode`: an integer or its digits, else None
    (`int(429.5)` would pass a fractional "status" off as 429)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def runtime_client(
    region: str | None = None,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    endpoint_url: str | None = None,
    **client_kwargs: Any,
) -> Any:
    """A sagemaker-runtime client with our timeouts and botocore's own retries switched off.

    `endpoint_url` (and credentials in `client_kwargs`) point it at a local simulator
    (`novajudge.local.tgi_sim`) for tests and benchmarks; in the Lambda both stay unset.
    """
    config = Config(
        read_timeout=read_timeout,
        connect_timeout=DEFAULT_CONNECT_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=DEFAULT_POOL_CONNECTIONS,
    )
    return boto3.client(
        "sagemaker-runtime", region_name=region, config=config, endpoint_url=endpoint_url, **client_kwargs
    )


def chat_payload(prompt: str, *, max_new_tokens: int, temperature: float) -> dict[str, Any]:
    """The OpenAI-style chat payload TGI's `/invocations` accepts.

    Chat, not the raw `inputs` payload: Qwen2.5-Instruct was tuned on its chat template, which TGI
    applies to `messages`; a bare prompt makes instruct models ramble or continue the text.
    """
    return {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_new_tokens,
        "temperature": temperature,
    }


def parse_chat_response(body: bytes) -> tuple[str, int | None, int | None, str | None]:
    """`choices[0].message.content`, prompt and completion tokens, and the finish reason.

    The text is returned as parsed; it may hold lone surrogates (`"\\ud800"` is valid JSON), which
    the caller repairs (`repair_text`) and counts before anything is written.
    """
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BadResponse(f"not a chat completion ({type(exc).__name__}): {body[:200]!r}") from None
    if not isinstance(text, str):
        raise BadResponse(f"choices[0].message.content is {type(text).__name__}, not text")
    usage = data.get("usage") or {}
    return text, usage.get("prompt_tokens"), usage.get("completion_tokens"), choice.get("finish_reason")


class EndpointInvoker:
    """Generates answers from one endpoint; safe to share between threads (boto3 clients are)."""

    def __init__(
        self,
        client: Any,
        endpoint_name: str,
        *,
        max_new_tokens: int,
        temperature: float,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        start_by: float | None = None,
        gate: AttemptGate | None = None,
    ) -> None:
        """`start_by` (a `clock()` instant): no attempt starts later, so the caller keeps time to
        write what it has before its own deadline (the Lambda timeout) instead of losing it all.
        `gate`: admits each attempt (None: the caller's thread count alone bounds the load)."""
        self.client = client
        self.endpoint_name = endpoint_name
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.start_by = start_by
        self.gate = gate

    def generate(self, prompt_id: str, prompt: str) -> Generation:
        body = json.dumps(
            chat_payload(prompt, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        ).encode("utf-8")
        rng = self.retry.rng_for(self.endpoint_name, prompt_id)
        started = self._clock()
        attempt = 0
        last: ErrorInfo | None = None
        while True:
            if self.start_by is not None and self._clock() > self.start_by:
                return self._out_of_time(attempt, started, last)
            ticket = self.gate.acquire() if self.gate is not None else None
            if self.start_by is not None and self._clock() > self.start_by:  # waited past it for a slot
                if self.gate is not None:
                    self.gate.release(ticket, seconds=0.0, error=None, sent=False)
                return self._out_of_time(attempt, started, last)
            attempt += 1
            attempt_started = self._clock()
            try:
                response = self.client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    ContentType="application/json",
                    Accept="application/json",
                    Body=body,
                )
                raw, prompt_tokens, completion_tokens, finish = parse_chat_response(response["Body"].read())
                # A model answer is outside text: a lone surrogate in it would break every later
                # UTF-8 write (judge input, manifest), so it is repaired here and counted.
                text, repaired = repair_text(raw)
            except Exception as exc:  # classified below; nothing is swallowed unrecorded
                info = last = classify(exc)
                if self.gate is not None:
                    self.gate.release(ticket, seconds=self._clock() - attempt_started, error=info)
                if info.transient and attempt < self.retry.max_attempts:
                    self._sleep(self.retry.delay(attempt, rng))
                    continue
                return Generation(
                    status="failed",
                    text=None,
                    latency_ms=_ms(self._clock() - attempt_started),
                    elapsed_ms=_ms(self._clock() - started),
                    attempts=attempt,
                    error=f"{info.kind}: {info.message}",
                    error_kind=info.kind,
                )
            if self.gate is not None:
                self.gate.release(ticket, seconds=self._clock() - attempt_started, error=None)
            return Generation(
                status="ok",
                text=text,
                latency_ms=_ms(self._clock() - attempt_started),
                elapsed_ms=_ms(self._clock() - started),
                attempts=attempt,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=finish,
                repaired_chars=repaired,
            )

    def _out_of_time(self, attempts: int, started: float, last: ErrorInfo | None) -> Generation:
        reason = "the generate function's time budget ran out before this request could start"
        return Generation(
            status="failed",
            text=None,
            latency_ms=0,
            elapsed_ms=_ms(self._clock() - started),
            attempts=attempts,
            error=f"{last.kind}: {last.message} (not retried: {reason})"
            if last
            else f"NotAttempted: {reason}",
            error_kind=last.kind if last else "NotAttempted",
        )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
