"""The OpenAPI document and the service agree: schemathesis, every check, every operation.

A real server (``dsr serve`` in a subprocess, SQLite) answers requests generated from the
document it serves: valid ones must be accepted as documented, invalid ones refused as
documented, every answer in its documented shape. It runs as an admin and as an integration.
Bounded and deterministic (derandomised, a fixed number of examples) so it fits in the suite.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS, load_all_checks

from app.core.config import Settings
from app.main import create_app

ADMIN_ID = "contract-admin"
ADMIN_SECRET = "contract-admin-secret-0123456789abcdef"
EXAMPLES = 25

load_all_checks()
# Every check schemathesis has; the stateful ones (links between calls) find nothing here.
ALL_CHECKS: list[Any] = [CHECKS.get_one(name) for name in CHECKS.get_all_names()]
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a free loopback port, with its own SQLite database."""
    folder = tmp_path_factory.mktemp("contract")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DSR_")}
    env.update(
        DSR_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'dsr.db'}",
        DSR_ADMIN_CLIENT_ID=ADMIN_ID,
        DSR_ADMIN_CLIENT_SECRET=ADMIN_SECRET,
        DSR_EXPORT_DIR=str(folder / "exports"),
        DSR_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                folder / "serve.log"
            ).read_text()
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base}/v1/oauth/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture(scope="module", params=["admin", "integration"])
def headers(request: pytest.FixtureRequest, server: str) -> dict[str, str]:
    admin = _token(server, ADMIN_ID, ADMIN_SECRET)
    if request.param == "admin":
        return {"Authorization": f"Bearer {admin}"}
    created = httpx.post(
        f"{server}/v1/clients",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": "contract integration", "role": "integration"},
        timeout=10,
    ).json()
    token = _token(server, created["client_id"], created["client_secret"])
    return {"Authorization": f"Bearer {token}"}


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_service_answers_as_its_document_says(
    case: schemathesis.Case, server: str, headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=server, headers=headers, checks=ALL_CHECKS)
