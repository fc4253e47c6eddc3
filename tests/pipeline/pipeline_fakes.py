"""Test doubles of the pipeline tests: a scripted TGI endpoint behind real botocore parsing.

Responses are built as raw HTTP (status, `x-amzn-ErrorType` header, JSON body) and handed to botocore
through its `before-send` event, so error classification is tested against botocore's own parsing
of SageMaker runtime errors, not against hand-made exception objects.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from novajudge.generation.datasets import load_bundled_squad
from novajudge.generation.endpoints import EndpointInvoker, RetryPolicy

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "novajudge-storage-evalbucket-1x2y3z4w5v6u"
ENDPOINT_A = "novajudge-model-a"
ENDPOINT_B = "novajudge-model-b"
MODEL_A = "Qwen/Qwen2.5-1.5B-Instruct"
MODEL_B = "Qwen/Qwen2.5-7B-Instruct"
ROLE_ARN = "arn:aws:iam::123456789012:role/NovaJudge-Storage-JudgeRole1A2B3C4D-ABCDEF123456"
EXECUTION_NAME = "c0ffee00-1234-4abc-9def-0123456789ab"
ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    """The attributes Powertools reads from the real Lambda context (the generate function's by default)."""

    function_name: str = "NovaJudge-Pipeline-Generate"
    memory_limit_in_mb: int = 1024
    remaining_ms: int = 900_000
    aws_request_id: str = "8f5d1f4e-3c2b-4a1d-9e8f-7a6b5c4d3e2f"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def upload_dataset(s3: Any, name: str, body: str) -> str:
    """Put `body` at `datasets/<name>` of the evaluation bucket (where the pipeline may read); its URI."""
    s3.put_object(Bucket=BUCKET, Key=f"datasets/{name}", Body=body.encode("utf-8"))
    return f"s3://{BUCKET}/datasets/{name}"


def dataset_event(run_id: str, uri: str, **options: Any) -> dict[str, Any]:
    """The generate event of run `run_id` reading the user's dataset at `uri`, with request `options`."""
    return {
        "input": {"run_id": run_id, "dataset": {"source": "s3", "uri": uri}, **options},
        "execution_name": EXECUTION_NAME,
    }


def invoker(
    client: Any,
    endpoint: str = ENDPOINT_A,
    *,
    attempts: int | None = None,
    sleep: Callable[[float], None] = lambda seconds: None,
    **options: Any,
) -> EndpointInvoker:
    """The invoker the endpoint tests drive: short answers at temperature 0, `attempts` tries at
    most (else `options["retry"]`, else the default policy), backoffs not slept unless `sleep` says."""
    if attempts is not None:
        options["retry"] = RetryPolicy(max_attempts=attempts)
    return EndpointInvoker(client, endpoint, max_new_tokens=10, temperature=0.0, sleep=sleep, **options)


# -- a scripted TGI endpoint behind real botocore parsing ------------------------------------------


class RawBody(io.BytesIO):
    """What botocore expects as `AWSResponse.raw`: readable, with `stream()`."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _response(url: str, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    return AWSResponse(url, status, {"Content-Length": str(len(body)), **headers}, RawBody(body))


def chat_completion(text: str, prompt_tokens: int = 180, completion_tokens: int = 42) -> dict[str, Any]:
    """The body TGI's /invocations returns for a chat payload (OpenAI chat.completion shape)."""
    return {
        "object": "chat.completion",
        "id": "",
        "created": 1763889000,
        "model": "tgi",
        "system_fingerprint": "3.3.6-sha-4f1d2a1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def model_error(
    original_status: int | str | None, original_message: str, endpoint: str
) -> tuple[int, dict[str, str], bytes]:
    """A SageMaker runtime ModelError (HTTP 424) wrapping the container's own status (an integer
    normally; a string for a status that is not one; None leaves `OriginalStatusCode` out)."""
    server = isinstance(original_status, int) and original_status >= 500
    body = {
        "ErrorCode": "SERVER_ERROR_FROM_MODEL" if server else "CLIENT_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/sagemaker/Endpoints/{endpoint}",
        "Message": f"Received {'server' if server else 'client'} error ({original_status}) "
        f'from primary with message "{original_message}". See the log stream for more information.',
        "OriginalMessage": original_message,
        "OriginalStatusCode": original_status,
    }
    if original_status is None:
        del body["OriginalStatusCode"]
    return (
        424,
        {
            "x-amzn-ErrorType": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/",
            "Content-Type": "application/json",
        },
        json.dumps(body).encode(),
    )


def validation_error(endpoint: str) -> tuple[int, dict[str, str], bytes]:
    body = {"message": f"Endpoint {endpoint} of account 123456789012 not found."}
    return (
        400,
        {
            "x-amzn-ErrorType": "ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/",
            "Content-Type": "application/json",
        },
        json.dumps(body).encode(),
    )


#: SageMaker runtime's own errors as botocore's service model declares them (error type, HTTP status),
#: plus one 5xx no model declares (a proxy's 502), for the generic "5xx is transient" rule.
SERVICE_ERRORS: dict[str, tuple[str, int]] = {
    "service_unavailable": ("ServiceUnavailable", 503),
    "internal_failure": ("InternalFailure", 500),
    "internal_dependency": ("InternalDependencyException", 530),
    "model_not_ready": ("ModelNotReadyException", 429),
    "bad_gateway": ("BadGatewayFromProxy", 502),
}
#: Errors raised below the HTTP layer (no response at all).
NETWORK_ERRORS: dict[str, type[Exception]] = {
    "connect_timeout": ConnectTimeoutError,
    "endpoint_connection": EndpointConnectionError,
    "connection_closed": ConnectionClosedError,
}


class FakeTGI:
    """Answers `invoke_endpoint` per endpoint and prompt, from a script of actions.

    Actions: "ok", "overloaded" (ModelError 424 / original 429), "unavailable" (original 503),
    "bad_input" (ModelError original 422), "model_400" (original 400), "model_nonint" (original
    status "n/a"), "model_nostatus" (no original status), "validation" (ValidationError 400),
    "timeout" (read timeout), "throttled" (ThrottlingException 400), the keys of `SERVICE_ERRORS`
    and of `NETWORK_ERRORS`. The script's last action repeats.
    """

    def __init__(self, items: list[Any] | None = None, answer_chars: int = 120) -> None:
        self.items = items if items is not None else load_bundled_squad(0, 20)
        self.by_prompt = {item.prompt: item.prompt_id for item in self.items}
        self.scripts: dict[tuple[str, str], list[str]] = {}
        self.default: dict[str, list[str]] = {}
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.payloads: list[dict[str, Any]] = []
        self.answer_chars = answer_chars

    def script(self, endpoint: str, prompt_id: str, actions: list[str]) -> None:
        self.scripts[(endpoint, prompt_id)] = actions

    def attach(self, client: Any) -> Any:
        client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", self._before_send)
        return client

    def answer(self, endpoint: str, prompt_id: str) -> str:
        base = f"[{endpoint}] answer to {prompt_id}. "
        return (base * (self.answer_chars // len(base) + 1))[: self.answer_chars]

    def _before_send(self, request: Any, **_: Any) -> AWSResponse:
        endpoint = request.url.split("/endpoints/")[1].split("/")[0]
        payload = json.loads(request.body)
        self.payloads.append(payload)
        prompt_id = self.by_prompt[payload["messages"][0]["content"]]
        key = (endpoint, prompt_id)
        actions = self.scripts.get(key) or self.default.get(endpoint) or ["ok"]
        action = actions[min(self.calls[key], len(actions) - 1)]
        self.calls[key] += 1
        if action == "ok":
            body = json.dumps(chat_completion(self.answer(endpoint, prompt_id))).encode()
            return _response(request.url, 200, {"Content-Type": "application/json"}, body)
        if action == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if action in NETWORK_ERRORS:
            raise NETWORK_ERRORS[action](endpoint_url=request.url)
        if action in SERVICE_ERRORS:
            code, status = SERVICE_ERRORS[action]
            body = json.dumps({"message": f"{code} (scripted)"}).encode()
            headers = {
                "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/",
                "Content-Type": "application/json",
            }
            return _response(request.url, status, headers, body)
        if action == "validation":
            return _response(request.url, *validation_error(endpoint))
        if action == "throttled":
            body = json.dumps({"message": "Rate exceeded"}).encode()
            return _response(
                request.url,
                400,
                {"x-amzn-ErrorType": "ThrottlingException", "Content-Type": "application/json"},
                body,
            )
        status, message = {
            "model_400": (400, '{"error":"Bad request","error_type":"validation"}'),
            "model_nonint": ("n/a", '{"error":"proxy error"}'),
            "model_nostatus": (None, '{"error":"proxy error"}'),
            "overloaded": (429, '{"error":"Model is overloaded","error_type":"overloaded"}'),
            "unavailable": (503, '{"error":"Service Unavailable"}'),
            "bad_input": (
                422,
                '{"error":"Input validation error: inputs tokens + max_new_tokens must be <= 8192",'
                '"error_type":"validation"}',
            ),
        }[action]
        return _response(request.url, *model_error(status, message, endpoint))
