"""A STAND-IN for a TGI endpoint behind SageMaker's InvokeEndpoint, as an HTTP server on 127.0.0.1.

Why a server and not a mock: the benchmark and the adaptive-concurrency tests must measure the real
client path (boto3's sagemaker-runtime client with `endpoint_url`, its connection pool, botocore's
parsing of `ModelError`, our retries and windows) against something that queues like TGI.

The model of TGI's continuous batching (docs/design.md, "Generation throughput"): each endpoint has
`slots` (C) requests in service at most; a request admitted as the b-th in the batch is answered
after L·(1 + β(b − 1)) seconds; requests beyond C wait in a FIFO queue (what TGI's router does up to
`--max-concurrent-requests`); with `reject_above` set, a request arriving while that many are held
(serving + queued) is refused at once with TGI's 429 "Model is overloaded", wrapped the way SageMaker
wraps a container error (`ModelError`, HTTP 424, `OriginalStatusCode`). The capacity of one endpoint
is C / (L·(1 + β(C − 1))) requests per second.

Bounded: it listens on 127.0.0.1 only, refuses requests past `max_requests` and stops by itself
after `max_seconds`. `GET /stats` returns the counters (peak held per endpoint, served, refused).
Run `python -m novajudge.local.tgi_sim --help` to start one in its own process.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from novajudge.run_request import RunState

HOST = "127.0.0.1"
MODEL_ERROR_TYPE = "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"
STAND_IN_MODEL = "novajudge-tgi-simulator-stand-in"


@dataclass(frozen=True)
class SimConfig:
    slots: int = 64
    base_latency: float = 0.2
    beta: float = 0.094
    #: Refuse (429) a request arriving while this many are held; None: queue without limit.
    reject_above: int | None = None
    completion_tokens: int = 42
    max_requests: int = 200_000
    max_seconds: float = 900.0

    def latency(self, batch: int) -> float:
        return self.base_latency * (1 + self.beta * (batch - 1))

    @property
    def capacity(self) -> float:
        """Requests per second of one endpoint kept full."""
        return self.slots / self.latency(self.slots)


@dataclass
class EndpointModel:
    """One endpoint's slots, queue and counters."""

    config: SimConfig
    serving: int = 0
    queued: int = 0
    peak_held: int = 0
    served: int = 0
    refused: int = 0
    busy_seconds: float = 0.0  # sum over answered requests of (answer sent - request read)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def admit(self) -> int | None:
        """Wait for a slot; the batch size at admission, or None when refused (429)."""
        with self._cond:
            held = self.serving + self.queued
            limit = self.config.reject_above
            if limit is not None and held >= limit:
                self.refused += 1
                return None
            self.queued += 1
            self.peak_held = max(self.peak_held, held + 1)
            while self.serving >= self.config.slots:
                self._cond.wait()
            self.queued -= 1
            self.serving += 1
            return self.serving

    def done(self, seconds: float) -> None:
        with self._cond:
            self.serving -= 1
            self.served += 1
            self.busy_seconds += seconds
            self._cond.notify()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "peak_held": self.peak_held,
                "served": self.served,
                "refused": self.refused,
                "busy_seconds": round(self.busy_seconds, 6),
            }


class TGISimulator:
    """`with TGISimulator(SimConfig(...)) as sim:` → `sim.url` for boto3's `endpoint_url`."""

    def __init__(self, config: SimConfig, port: int = 0) -> None:
        self.config = config
        self.endpoints: dict[str, EndpointModel] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.started = time.monotonic()
        self._server = ThreadingHTTPServer((HOST, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="tgi-sim", daemon=True)
        self._timer = threading.Timer(config.max_seconds, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def endpoint(self, name: str) -> EndpointModel:
        with self._lock:
            if name not in self.endpoints:
                self.endpoints[name] = EndpointModel(self.config)
            return self.endpoints[name]

    def count_request(self) -> bool:
        """False once the request budget is spent (the request is refused)."""
        with self._lock:
            self.requests += 1
            return self.requests <= self.config.max_requests

    def stats(self) -> dict[str, Any]:
        with self._lock:
            names = sorted(self.endpoints)
        return {"requests": self.requests, "endpoints": {n: self.endpoints[n].stats() for n in names}}

    def start(self) -> TGISimulator:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TGISimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def simulated_run(run_id: str, endpoint_a: str, endpoint_b: str, generation: Mapping[str, Any]) -> RunState:
    """The `run` of a generation whose two models are simulated endpoints (stand-in model ids,
    `stand_in`), for the tests and the benchmark that drive the real client path against them."""
    return RunState(
        run_id=run_id,
        generation=dict(generation),
        bucket=f"{run_id}-bucket",
        created_at="2026-01-01T00:00:00Z",
        model_a="sim/a",
        model_b="sim/b",
        endpoint_a=endpoint_a,
        endpoint_b=endpoint_b,
        stand_in=True,
    )


def _chat_completion(config: SimConfig) -> bytes:
    return json.dumps(
        {
            "object": "chat.completion",
            "model": STAND_IN_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "A simulated answer (TGI simulator stand-in).",
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": config.completion_tokens},
        }
    ).encode()


def _error(status: int, error_type: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"x-amzn-ErrorType": error_type}, json.dumps(body).encode()


def _overloaded(endpoint: str) -> tuple[int, dict[str, str], bytes]:
    original = '{"error":"Model is overloaded","error_type":"overloaded"}'
    return _error(
        424,
        MODEL_ERROR_TYPE,
        {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "Message": f'Received client error (429) from primary with message "{original}".',
            "OriginalMessage": original,
            "OriginalStatusCode": 429,
            "LogStreamArn": f"simulated:{endpoint}",
        },
    )


def _handler(sim: TGISimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
        # Headers and body leave in separate writes; with Nagle on, the body waits for the client's
        # delayed ACK (~40 ms on Linux): an artefact of this server, not of the client under test.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: thousands of requests per run

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/stats":
                self._send(200, {}, json.dumps(sim.stats()).encode())
            else:
                self._send(404, {}, b"{}")

        def do_POST(self) -> None:
            read_at = time.monotonic()
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
                self._send(*_error(404, "UnknownOperationException", {"message": f"no route {self.path}"}))
                return
            if not sim.count_request():
                self._send(*_error(400, "ValidationError", {"message": "simulator request budget spent"}))
                return
            model = sim.endpoint(parts[1])
            batch = model.admit()
            if batch is None:
                self._send(*_overloaded(parts[1]))
                return
            try:
                time.sleep(sim.config.latency(batch))
            finally:
                model.done(time.monotonic() - read_at)
            self._send(200, {}, _chat_completion(sim.config))

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until `--max-seconds`; print the URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description="TGI-like endpoint simulator (stand-in) on 127.0.0.1")
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="L: seconds of a request served alone")
    parser.add_argument("--beta", type=float, default=0.094)
    parser.add_argument("--reject-above", type=int, default=None)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    config = SimConfig(
        slots=args.slots,
        base_latency=args.latency,
        beta=args.beta,
        reject_above=args.reject_above,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
    )
    sim = TGISimulator(config).start()
    print(sim.url, flush=True)
    sim._thread.join()
    sys.exit(0)


if __name__ == "__main__":
    main()
