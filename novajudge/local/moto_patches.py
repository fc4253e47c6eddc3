"""The ONE place that touches moto internals (pinned to moto 5.2.5; `tests/local/test_moto_patches.py`).

Why patches at all: without Docker, moto's Lambda only echoes its payload, its SageMaker runtime
returns canned bodies whatever the endpoint, and its training jobs are `Completed` at once with
nothing written. A faithful local run needs the real handlers, per-endpoint answers and a judge
output archive. Three methods are wrapped; everything else is moto as shipped:

- `moto.awslambda_simple.models.LambdaSimpleBackend.invoke` (the backend moto uses when
  `lambda.use_docker` is false): a function registered in `registry.functions`
  (by the deployer, from the template's `novajudge:source` Metadata) runs its real `handler.py`
  in this process, with the function's Environment applied for the call; an exception becomes an
  `Unhandled` function error whose payload carries `errorType` = the exception class name, which
  is what moto's Step Functions interpreter reads as the Error name for Retry/Catch
  (`state_task_service_lambda._from_error`).
- `moto.sagemakerruntime.responses.SageMakerRuntimeResponse.invoke_endpoint`: answered by
  `registry.endpoint_handler` (the stand-in endpoints); a raised `EndpointFailure` becomes the
  service's own error shape (e.g. `ModelError`, HTTP 424).
- `moto.sagemaker.models.SageMakerModelBackend.create_training_job` / `describe_training_job`:
  after moto records the job, `registry.training_job_hook` (the stand-in judge) produces its
  output; a returned failure reason marks the job `Failed`. The job may report `InProgress` for
  `registry.training_job_seconds` so the state machine's poll loop really runs (measured against
  the registry's current value: a test holds a job with `math.inf` and ends it by lowering the
  value, so catching a run while it judges does not depend on machine speed); a name listed in
  `registry.describe_job_denied` answers AccessDeniedException (the poll failing by itself).
- `StopTrainingJob` (absent from moto 5.2.5's SageMaker): added to `SageMakerModelBackend` and
  `SageMakerResponse`, with SageMaker's semantics: a job `InProgress` becomes `Stopped` (no
  FailureReason, like a real stop), any other status is refused with `ValidationException`.
- `SageMakerModelBackend.create_endpoint` / `describe_endpoint` / `list_endpoints`: moto's endpoints are
  `InService` at once; an endpoint may report `Creating` for `registry.endpoint_start_seconds`
  (and to its first `registry.endpoint_creating_describes` DescribeEndpoint calls, so a test of
  the poll loop does not depend on how fast the machine is) and then
  `registry.endpoint_start_hook`'s verdict (None: `InService`, else `Failed` with that
  FailureReason), so the per-run start-up loop and its failures really run.
- Service Quotas `ListServiceQuotas` (absent from moto 5.2.5, which knows only VPC defaults):
  answered from `registry.service_quotas` (`{service code: {quota name: value}}`), in the
  service's response shape, so the quota pre-flight can be tested with 0 and with enough.
- `moto.sagemaker.models.FakeEndpointConfig.validate_instance_type`: moto's list of endpoint
  instance types predates g5/g6/p5; any `ml.<family>.<size>` name is accepted so the endpoints are
  created with the instance type the template really asks for.

Behaviour lives in `novajudge.local.standins`; this module only adapts moto to call it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")

#: The only moto version these patches were written and tested against.
MOTO_VERSION = "5.2.5"


class EndpointFailure(Exception):
    """Raised by an endpoint handler to answer with a SageMaker runtime error instead of a body."""

    def __init__(
        self,
        code: str = "ModelError",
        message: str = 'Received server error (500) from primary with message "stand-in failure".',
        status: int = 424,
        original_status: int | None = 500,
        original_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.original_status = original_status
        self.original_message = original_message or message


@dataclass(frozen=True)
class LambdaSource:
    """Where a deployed function's code lives on this machine (the handler runs from source)."""

    source_dir: Path
    handler: str  # "module.function", as in the template


@dataclass(frozen=True)
class TrainingJobRequest:
    """What the judge stand-in needs of a `create_training_job` request (moto's record, copied)."""

    name: str
    hyper_parameters: dict[str, str]
    input_data_config: list[dict[str, Any]]
    output_data_config: dict[str, Any]
    role_arn: str


#: (endpoint name, request body, content type) -> (response body, content type)
EndpointHandler = Callable[[str, bytes, str], tuple[bytes, str]]
#: returns None when the job succeeded, else its FailureReason
TrainingJobHook = Callable[[TrainingJobRequest], "str | None"]
#: (endpoint name) -> None when the endpoint comes up InService, else its FailureReason
EndpointStartHook = Callable[[str], "str | None"]


@dataclass
class Registry:
    """What the emulator routes to: filled by the deployer and the stand-ins, cleared on stop."""

    functions: dict[str, LambdaSource] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    endpoint_handler: EndpointHandler | None = None
    training_job_hook: TrainingJobHook | None = None
    training_job_seconds: float = 0.0
    endpoint_start_hook: EndpointStartHook | None = None
    endpoint_start_seconds: float = 0.0
    endpoint_creating_describes: int = 0
    #: DescribeTrainingJob of a job whose name contains one of these answers AccessDeniedException
    #: (tests of the state machine's path when its judge poll itself keeps failing)
    describe_job_denied: set[str] = field(default_factory=set)
    #: service code -> quota name -> applied value (what `ListServiceQuotas` answers)
    service_quotas: dict[str, dict[str, float]] = field(default_factory=dict)

    def clear(self) -> None:
        self.functions.clear()
        self.extra_env.clear()
        self.endpoint_handler = None
        self.training_job_hook = None
        self.training_job_seconds = 0.0
        self.endpoint_start_hook = None
        self.endpoint_start_seconds = 0.0
        self.endpoint_creating_describes = 0
        self.service_quotas.clear()
        self.describe_job_denied.clear()


registry = Registry()

#: Handlers share os.environ (process-global), so invocations run one at a time.
_INVOKE_LOCK = threading.Lock()
_INSTALL_LOCK = threading.Lock()
_installed = False


class MotoVersionError(RuntimeError):
    """moto is not the version these patches were written for."""


def install() -> None:
    """Wrap the three moto methods once per process; idempotent. Unregistered names pass through."""
    global _installed
    with _INSTALL_LOCK:
        if _installed:
            return
        import moto

        if moto.__version__ != MOTO_VERSION:
            raise MotoVersionError(
                f"novajudge.local.moto_patches targets moto {MOTO_VERSION}, found {moto.__version__}; "
                "pin moto[server]==5.2.5 (requirements.txt) or re-check the patched methods"
            )
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.sagemaker.models import FakeEndpointConfig, SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse
        from moto.servicequotas.responses import ServiceQuotasResponse

        original_invoke = LambdaSimpleBackend.invoke

        def invoke(
            self: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            fn = self.get_function(function_name, qualifier)
            source = registry.functions.get(fn.function_name)
            if source is None:
                return original_invoke(self, function_name, qualifier, body, headers, response_headers)
            payload, error = run_handler(
                source,
                event=json.loads(body) if body else {},
                function_name=fn.function_name,
                function_arn=fn.function_arn,
                memory_mb=int(fn.memory_size or 128),
                timeout_s=int(fn.timeout or 3),
                environment=dict(fn.environment_vars or {}),
            )
            if error:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
            return payload

        original_runtime_invoke = SageMakerRuntimeResponse.invoke_endpoint

        def invoke_endpoint(self: Any) -> Any:
            handler = registry.endpoint_handler
            if handler is None:
                return original_runtime_invoke(self)
            from moto.sagemaker.models import sagemaker_backends

            name = self._get_params().get("EndpointName") or self.path.split("/")[2]
            if name not in sagemaker_backends[self.current_account][self.region].endpoints:
                return _runtime_error(
                    400,
                    "ValidationException",
                    f"Endpoint {name} of account {self.current_account} not found.",
                )
            body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
            content_type = self.headers.get("Content-Type") or "application/json"
            try:
                out, out_type = handler(name, body, content_type)
            except EndpointFailure as exc:
                extra: dict[str, Any] = {}
                if exc.code == "ModelError":
                    extra = {
                        "OriginalStatusCode": exc.original_status,
                        "OriginalMessage": exc.original_message,
                        "LogStreamArn": f"arn:aws:logs:{self.region}:{self.current_account}:log-group:"
                        f"/aws/sagemaker/Endpoints/{name}",
                    }
                return _runtime_error(exc.status, exc.code, exc.message, extra)
            return 200, {"Content-Type": out_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"}, out

        original_create_job = SageMakerModelBackend.create_training_job
        original_describe_job = SageMakerModelBackend.describe_training_job

        def create_training_job(self: Any, *args: Any, **kwargs: Any) -> Any:
            job = original_create_job(self, *args, **kwargs)
            hook = registry.training_job_hook
            if hook is None:
                return job
            request = TrainingJobRequest(
                name=job.training_job_name,
                hyper_parameters=dict(job.hyper_parameters or {}),
                input_data_config=list(job.input_data_config or []),
                output_data_config=dict(job.output_data_config or {}),
                role_arn=job.role_arn,
            )
            try:
                reason = hook(request)
            except Exception as exc:  # a stand-in bug must surface as a failed job, not a 500
                reason = f"[LOCAL STAND-IN JUDGE] internal error: {type(exc).__name__}: {exc}"
            job._novajudge_final = ("Failed", reason) if reason else ("Completed", None)
            job._novajudge_started_at = time.monotonic()
            _settle(job)
            return job

        def describe_training_job(self: Any, training_job_name: str) -> dict[str, Any]:
            if any(part in training_job_name for part in registry.describe_job_denied):
                from moto.core.exceptions import JsonRESTError

                raise JsonRESTError("AccessDeniedException", f"denied (stand-in): {training_job_name}")
            job = self.training_jobs.get(training_job_name)
            if job is not None:
                _settle(job)
            return original_describe_job(self, training_job_name)

        def stop_training_job(self: Any, training_job_name: str) -> None:
            from moto.sagemaker.exceptions import ValidationError

            job = self.training_jobs.get(training_job_name)
            if job is None:
                raise ValidationError(message=f"Requested resource not found: {training_job_name}")
            _settle(job)
            if job.training_job_status != "InProgress":
                raise ValidationError(
                    message="The request was rejected because the training job is in status "
                    f"{job.training_job_status}."
                )
            job._novajudge_final = ("Stopped", None)
            job._novajudge_started_at = -math.inf  # ends now, whatever the registry says
            _settle(job)

        def stop_training_job_response(self: Any) -> Any:
            from moto.core.responses import EmptyResult

            self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
            return EmptyResult()

        original_create_endpoint = SageMakerModelBackend.create_endpoint
        original_describe_endpoint = SageMakerModelBackend.describe_endpoint

        def create_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
            endpoint = original_create_endpoint(self, *args, **kwargs)
            hook = registry.endpoint_start_hook
            reason = hook(endpoint.endpoint_name) if hook else None
            endpoint._novajudge_final = ("Failed", reason) if reason else ("InService", None)
            endpoint._novajudge_created_at = time.monotonic()
            endpoint._novajudge_creating_describes = registry.endpoint_creating_describes
            _settle_endpoint(endpoint)
            return endpoint

        def describe_endpoint(self: Any, endpoint_name: str) -> dict[str, Any]:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is not None:
                _settle_endpoint(endpoint)
                endpoint._novajudge_creating_describes = max(
                    0, getattr(endpoint, "_novajudge_creating_describes", 0) - 1
                )
            return original_describe_endpoint(self, endpoint_name)

        original_list_endpoints = SageMakerModelBackend.list_endpoints

        def list_endpoints(self: Any, *args: Any, **kwargs: Any) -> Any:
            # As SageMaker does, a listing shows each endpoint's current status (the teardown
            # decides by it), not the one moto stored when somebody last described it.
            for endpoint in self.endpoints.values():
                _settle_endpoint(endpoint)
            return original_list_endpoints(self, *args, **kwargs)

        def list_service_quotas(self: Any) -> str:
            params = json.loads(self.body or "{}")
            code = str(params.get("ServiceCode"))
            quotas = [
                {
                    "ServiceCode": code,
                    "QuotaName": name,
                    "QuotaCode": f"L-LOCAL{index:04d}",
                    "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.current_account}:"
                    f"{code}/L-LOCAL{index:04d}",
                    "Value": float(value),
                    "Unit": "None",
                    "Adjustable": True,
                    "GlobalQuota": False,
                }
                for index, (name, value) in enumerate(sorted(registry.service_quotas.get(code, {}).items()))
            ]
            return json.dumps({"Quotas": quotas})

        def validate_instance_type(self: Any, instance_type: str) -> None:
            if not _INSTANCE_TYPE.fullmatch(instance_type or ""):
                from moto.sagemaker.exceptions import ValidationError

                raise ValidationError(message=f"instanceType {instance_type!r} is not ml.<family>.<size>")

        LambdaSimpleBackend.invoke = invoke
        FakeEndpointConfig.validate_instance_type = validate_instance_type
        SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
        SageMakerModelBackend.create_training_job = create_training_job
        SageMakerModelBackend.describe_training_job = describe_training_job
        SageMakerModelBackend.stop_training_job = stop_training_job
        SageMakerModelBackend.create_endpoint = create_endpoint
        ServiceQuotasResponse.list_service_quotas = list_service_quotas
        SageMakerModelBackend.describe_endpoint = describe_endpoint
        SageMakerModelBackend.list_endpoints = list_endpoints
        SageMakerResponse.stop_training_job = stop_training_job_response
        _installed = True


def _settle(job: Any) -> None:
    """Report InProgress until the job's simulated duration passed, then its final status."""
    final = getattr(job, "_novajudge_final", None)
    if final is None:
        return
    # Measured against the registry's current value, so a test can end a held job by lowering it.
    if time.monotonic() - job._novajudge_started_at < registry.training_job_seconds:
        job.training_job_status, job.secondary_status = "InProgress", "Training"
        return
    status, reason = final
    if job.training_job_status == "InProgress" or not hasattr(job, "billable_time_in_seconds"):
        # The stand-in's wall-clock time, as SageMaker reports it once a job ends.
        from moto.core.utils import utcnow

        job.training_end_time = utcnow()
        job.billable_time_in_seconds = max(
            1, round((job.training_end_time - job.training_start_time).total_seconds())
        )
    job.training_job_status, job.secondary_status = status, status
    if reason:
        job.failure_reason = reason


def _settle_endpoint(endpoint: Any) -> None:
    """Report Creating until the endpoint's simulated start-up passed, then its final status."""
    final = getattr(endpoint, "_novajudge_final", None)
    if final is None:
        return
    # Measured against the registry's current value, so a test can end a start-up by lowering it.
    starting = time.monotonic() - endpoint._novajudge_created_at < registry.endpoint_start_seconds
    if starting or endpoint._novajudge_creating_describes > 0:
        endpoint.endpoint_status = "Creating"
        return
    endpoint.endpoint_status, endpoint.failure_reason = final


def _runtime_error(status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> Any:
    body = {"__type": code, "message": message, **(extra or {})}
    # moto takes the HTTP status of a tuple response from the "status" header, not the tuple.
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": str(status)}
    return status, headers, json.dumps(body)


# -- running a handler in-process ------------------------------------------------------------------


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local-stand-in"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@contextmanager
def _applied_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _load_handler(source: LambdaSource, function_name: str) -> Callable[[Any, Any], Any]:
    """Import the handler file fresh (module-level code sees this call's environment).

    Only the handler file is loaded, by path: the bundle folder is never put on `sys.path`, so the
    `novajudge` package and third-party libraries come from the venv, never from foreign wheels.
    """
    module_path, _, attr = source.handler.rpartition(".")
    file = source.source_dir / (module_path.replace(".", "/") + ".py")
    if not file.is_file():
        raise FileNotFoundError(f"handler {source.handler!r} of {function_name}: {file} does not exist")
    mod_name = f"_novajudge_local_lambda_{function_name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(mod_name, None)
    return getattr(module, attr)


def run_handler(
    source: LambdaSource,
    *,
    event: Any,
    function_name: str,
    function_arn: str,
    memory_mb: int = 128,
    timeout_s: int = 3,
    environment: dict[str, str] | None = None,
) -> tuple[bytes, bool]:
    """Run one invocation like the Lambda Python runtime would; returns (payload, errored).

    The payload of an error is the runtime's shape: `{"errorType", "errorMessage", "stackTrace"}`.
    The timeout is not enforced (the handler runs in this thread); a warning-free local run is the
    point, and the state machine's own timeouts still apply.
    """
    env = {
        **(environment or {}),
        **registry.extra_env,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):
        if key in os.environ and key not in env:
            env[key] = os.environ[key]
    context = LambdaContext(function_name, function_arn, memory_mb, timeout_s)
    with _INVOKE_LOCK, _applied_env(env):
        try:
            handler = _load_handler(source, function_name)
            result = handler(event, context)
        except Exception as exc:
            return _error_payload(type(exc).__name__, str(exc), exc.__traceback__), True
        try:
            return json.dumps(result).encode(), False
        except (TypeError, ValueError) as exc:
            return _error_payload("Runtime.MarshalError", f"Unable to marshal response: {exc}", None), True


def _error_payload(error_type: str, message: str, tb: Any) -> bytes:
    stack = [line.rstrip("\n") for line in traceback.format_tb(tb)] if tb is not None else []
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack}).encode()
