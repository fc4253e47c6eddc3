"""Every error kind an endpoint call can end in: transient (retried) or permanent, attempts counted.

Each case goes through botocore's own parsing of a raw HTTP response (or its own exception for a
network failure), then through `EndpointInvoker.generate` with 3 attempts allowed: a transient
error is tried 3 times, a permanent one once. The expectations are written by hand from the
SageMaker runtime API (botocore's service model: ServiceUnavailable 503, InternalFailure 500,
InternalDependencyException 530, ModelNotReadyException 429, ValidationError 400, ModelError 424).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pipeline_fakes import ENDPOINT_A, REGION, FakeTGI, invoker

from novajudge.generation.endpoints import runtime_client

ATTEMPTS = 3


@pytest.fixture
def fake(aws: dict[str, Any]) -> tuple[Any, FakeTGI]:
    tgi = FakeTGI()
    return tgi.attach(runtime_client(REGION)), tgi


def _generate(client: Any, tgi: FakeTGI, action: str, index: int = 0) -> Any:
    item = tgi.items[index]
    tgi.script(ENDPOINT_A, item.prompt_id, [action])
    slept: list[float] = []
    result = invoker(client, attempts=ATTEMPTS, sleep=slept.append).generate(item.prompt_id, item.prompt)
    assert tgi.calls[(ENDPOINT_A, item.prompt_id)] == result.attempts  # every attempt reached the endpoint
    assert len(slept) == result.attempts - 1  # a backoff between attempts, none after the last
    return result


@pytest.mark.parametrize(
    ("action", "kind", "attempts"),
    [
        # SageMaker's own transient errors: retried until the attempts run out.
        ("service_unavailable", "ServiceUnavailable", 3),
        ("internal_failure", "InternalFailure", 3),
        ("internal_dependency", "InternalDependencyException", 3),
        ("model_not_ready", "ModelNotReadyException", 3),
        ("throttled", "ThrottlingException", 3),
        # A 5xx no service model declares: transient by the generic rule.
        ("bad_gateway", "BadGatewayFromProxy", 3),
        # The request itself is wrong: trying again cannot help.
        ("validation", "ValidationError", 1),
        # No answer at all: transient.
        ("connect_timeout", "ConnectTimeoutError", 3),
        ("endpoint_connection", "EndpointConnectionError", 3),
        ("connection_closed", "ConnectionClosedError", 3),
        ("timeout", "ReadTimeoutError", 3),
        # The container's own status inside ModelError 424: 429 and 5xx transient, 4xx permanent,
        # no status permanent (nothing says it would pass next time).
        ("overloaded", "ModelError 424 (original 429)", 3),
        ("unavailable", "ModelError 424 (original 503)", 3),
        ("model_400", "ModelError 424 (original 400)", 1),
        ("bad_input", "ModelError 424 (original 422)", 1),
        ("model_nostatus", "ModelError 424 (original None)", 1),
        # A status that is not a number: botocore's own parser refuses the modelled integer
        # (`int('n/a')`), so what reaches us is its ValueError, not a ClientError: permanent.
        ("model_nonint", "ValueError", 1),
    ],
)
def test_each_error_kind_is_retried_or_not(fake, action: str, kind: str, attempts: int) -> None:
    client, tgi = fake
    result = _generate(client, tgi, action)
    assert (result.status, result.error_kind, result.attempts) == ("failed", kind, attempts)


@pytest.mark.parametrize("action", ["model_not_ready", "bad_gateway", "internal_dependency"])
def test_a_transient_error_then_success_is_ok(fake, action: str) -> None:
    """Guards the two rules a mutation could drop: ModelNotReadyException (429, so only its name makes
    it transient) and the generic 5xx rule (BadGatewayFromProxy is known to no list)."""
    client, tgi = fake
    item = tgi.items[1]
    tgi.script(ENDPOINT_A, item.prompt_id, [action, "ok"])
    result = invoker(client, attempts=ATTEMPTS).generate(item.prompt_id, item.prompt)
    assert (result.status, result.attempts, result.text) == ("ok", 2, tgi.answer(ENDPOINT_A, item.prompt_id))


@pytest.mark.parametrize("status", ["n/a", "", 429.5, [429], True, None])
def test_a_model_error_whose_status_is_not_an_integer_is_permanent(status: object) -> None:
    """Should a botocore version hand the status through unparsed, `classify` still answers:
    permanent, the status shown as unknown (None)."""
    from botocore.exceptions import ClientError

    from novajudge.generation.endpoints import classify

    response = {
        "Error": {"Code": "ModelError", "Message": "from model"},
        "OriginalStatusCode": status,
        "OriginalMessage": "proxy error",
        "ResponseMetadata": {"HTTPStatusCode": 424},
    }
    info = classify(ClientError(response, "InvokeEndpoint"))  # type: ignore[arg-type]
    assert (info.kind, info.transient, info.overload) == ("ModelError 424 (original None)", False, False)


def test_a_closed_local_port_is_a_transient_connection_error(aws: dict[str, Any]) -> None:
    """A real socket refusing the connection (not a scripted exception): botocore's
    EndpointConnectionError, retried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = runtime_client(REGION, endpoint_url=f"http://127.0.0.1:{port}")
    result = invoker(client, attempts=2).generate("p1", "hello")
    assert (result.status, result.error_kind, result.attempts) == ("failed", "EndpointConnectionError", 2)


@pytest.mark.parametrize(
    ("action", "overload"),
    [
        ("overloaded", True),  # TGI's 429
        ("unavailable", True),  # TGI's 503
        ("throttled", True),
        ("model_not_ready", False),  # not ready is not busy: a smaller window would not help
        ("service_unavailable", False),
        ("bad_input", False),
        ("timeout", False),
    ],
)
def test_overload_signals(fake, action: str, overload: bool) -> None:
    """Which errors shrink the adaptive window (`generation.pool`): the endpoint saying it is busy."""
    from novajudge.generation.endpoints import ErrorInfo

    client, tgi = fake
    seen: list[ErrorInfo | None] = []

    class Gate:
        def acquire(self) -> None:
            return None

        def release(self, ticket: Any, *, seconds: float, error: ErrorInfo | None, sent: bool = True) -> None:
            seen.append(error)

    item = tgi.items[2]
    tgi.script(ENDPOINT_A, item.prompt_id, [action, "ok"])
    invoker(client, attempts=ATTEMPTS, gate=Gate()).generate(item.prompt_id, item.prompt)
    assert seen[0] is not None and seen[0].overload is overload
