"""``dsr serve`` as a real process on a free loopback port, for tests that need a real server
(the README's shell commands, a browser, schemathesis, links that carry the port)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 60.0


@dataclass
class LiveService:
    base: str
    log: Path

    def printed(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def live_service(
    folder: Path,
    environment: dict[str, str],
    *,
    cwd: Path | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[LiveService]:
    """Serve with ``environment`` as the only DSR_ variables until it answers ``/readyz``;
    its output goes to ``folder/serve.log``; ``serve_args`` are added to ``dsr serve``
    (``--workers 2``); terminated (killed if need be) afterwards."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DSR_")}
    env.update(environment, PYTHONUNBUFFERED="1")
    log = folder / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *serve_args],
            cwd=cwd or folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    service = LiveService(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(service.base):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dsr serve did not start:\n{service.printed()}", pytrace=False)
            time.sleep(0.2)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
