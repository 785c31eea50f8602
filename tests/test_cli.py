"""The `dsr` command: migrate, create clients, and the bootstrap admin."""

import os
import re
import subprocess
import sys
from pathlib import Path

from httpx import ASGITransport, AsyncClient

from app.main import create_app
from tests.conftest import make_settings


def _dsr(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DSR_DATABASE_URL": database_url, "DSR_SECRET_KEY": "cli-test-key-" * 3}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_clients_create_prints_working_credentials(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert _dsr("migrate", database_url=url).returncode == 0
    result = _dsr(
        "clients", "create", "--name", "Acme CRM", "--role", "integration", database_url=url
    )
    assert result.returncode == 0, result.stderr
    client_id = re.search(r"client_id=(\S+)", result.stdout)
    secret = re.search(r"client_secret=(\S+)", result.stdout)
    assert client_id and secret
    app = create_app(make_settings(url, secret_key="cli-test-key-" * 3))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        token = await client.post(
            "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id.group(1),
                "client_secret": secret.group(1),
            },
        )
    await app.state.engine.dispose()
    assert token.status_code == 200
    assert token.json()["scope"] == (
        "requests:read requests:submit suppressions:check webhooks:manage"
    )


def test_clients_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    result = _dsr("clients", "create", "--name", "X", "--role", "superuser", database_url=url)
    assert result.returncode != 0
    assert "superuser" in result.stderr


async def test_bootstrap_admin_is_created_once(database_url: str) -> None:
    settings = make_settings(database_url)
    for _ in range(2):  # a second start must neither fail nor duplicate the admin
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://t") as client:
                token = await client.post(
                    "/v1/oauth/token",
                    auth=(settings.admin_client_id or "", settings.admin_client_secret or ""),
                    data={"grant_type": "client_credentials"},
                )
        assert token.status_code == 200
        assert "clients:manage" in token.json()["scope"]


def test_a_configuration_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """A production start without its secrets says what to set; no traceback."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DSR_")}
    env.update(DSR_ENV="production", DSR_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    for command in (["migrate"], ["worker"], ["serve", "--port", "9"]):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.splitlines() == [
            "dsr: invalid configuration: DSR_SECRET_KEY must be set to a random value of at "
            "least 32 characters in production"
        ]


def test_worker_help_names_everything_the_worker_does() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for duty in ("webhooks", "mail", "fulfilment jobs", "overdue", "unverified", "export files"):
        assert duty in text, duty
