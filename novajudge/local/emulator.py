"""Local AWS: a moto server in this process, configured to execute state machines.

Why a server and not `mock_aws`: the Step Functions interpreter calls its Task integrations back over
HTTP on `localhost:$MOTO_PORT`, and the handlers run in server threads while the demo polls the
execution from the main thread, so all parties need one shared endpoint. moto's backends are
process-global, hence one emulator per process at a time (two demo runs side by side are two
processes, each with its own emulator).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: Fake credentials and region: moto accepts anything; real ones must never be picked up.
FAKE_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "NOVAJUDGE_STAND_IN": "1",
}
#: Variables removed while the emulator runs so no profile, SSO session or real endpoint is used.
CLEARED_ENV: tuple[str, ...] = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
)
#: moto's default account; the deployer builds ARNs with it.
ACCOUNT_ID = "123456789012"
REGION = FAKE_ENV["AWS_DEFAULT_REGION"]

#: What `POST /moto-api/config` receives: run definitions for real, no Docker for Lambda.
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

_ACTIVE = threading.Lock()


class EmulatorError(RuntimeError):
    """The local emulator could not start or is already running in this process."""


@dataclass(frozen=True)
class Emulator:
    """A running emulator: where it listens, for clients and for the deployer."""

    endpoint_url: str
    port: int
    region: str = REGION
    account_id: str = ACCOUNT_ID

    def client(self, service: str) -> Any:
        """A boto3 client bound to the emulator (explicit endpoint, fake credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_ENV["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_ENV["AWS_SESSION_TOKEN"],
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=300),
        )


def free_port() -> int:
    """A port free on 127.0.0.1 now (the server binds it right after; a race is unlikely locally)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@contextmanager
def local_aws(port: int | None = None) -> Iterator[Emulator]:
    """Start moto on 127.0.0.1, configure it, point this process at it; always stop and restore.

    The environment (fake credentials, `AWS_ENDPOINT_URL`, `MOTO_PORT`, `NOVAJUDGE_STAND_IN`) is
    restored and moto's state reset on exit, whether the body succeeded, raised or was interrupted.
    """
    if not _ACTIVE.acquire(blocking=False):
        raise EmulatorError("a local emulator is already running in this process (moto state is global)")
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from novajudge.local import moto_patches

    saved = {k: os.environ.get(k) for k in (*FAKE_ENV, *CLEARED_ENV, "AWS_ENDPOINT_URL", "MOTO_PORT")}
    server: ThreadedMotoServer | None = None
    try:
        port = port or free_port()
        endpoint = f"http://127.0.0.1:{port}"
        for key in CLEARED_ENV:
            os.environ.pop(key, None)
        os.environ.update(FAKE_ENV)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        os.environ["MOTO_PORT"] = str(port)
        moto_patches.install()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        _post_json(f"{endpoint}/moto-api/reset")
        _post_json(f"{endpoint}/moto-api/config", MOTO_CONFIG)
        yield Emulator(endpoint_url=endpoint, port=port)
    finally:
        try:
            if server is not None:
                try:
                    _post_json(f"http://127.0.0.1:{port}/moto-api/reset", timeout=5)
                    _post_json(
                        f"http://127.0.0.1:{port}/moto-api/config",
                        {"stepfunctions": {"execute_state_machine": False}, "lambda": {"use_docker": True}},
                        timeout=5,
                    )
                except OSError:
                    pass  # the server is going away anyway; state is reset on the next start
                server.stop()
        finally:
            moto_patches.registry.clear()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _ACTIVE.release()
