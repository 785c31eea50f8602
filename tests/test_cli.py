"""The `dsr` command: migrate, create and manage clients, and the admins made at start-up."""

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from click.testing import Result
from httpx import ASGITransport, AsyncClient
from typer.testing import CliRunner

from app.cli import DEV_ADMIN_ID, _rekey_development_admin, cli
from app.core.config import Settings, get_settings
from app.main import create_app
from tests.conftest import get_token, make_settings, new_client, scratch_database

CLI_KEY = "cli-test-key-" * 3


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


# ---------------------------------------------------------------- the bootstrap admin later on


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The service started (lifespan run) with ``settings``, as at every deployment."""
    app = create_app(settings)
    transport = ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        yield client


async def _token_status(client: AsyncClient, client_id: str, secret: str) -> int:
    response = await client.post(
        "/v1/oauth/token", auth=(client_id, secret), data={"grant_type": "client_credentials"}
    )
    return response.status_code


async def test_a_rotated_bootstrap_admin_does_not_get_the_environment_secret_back(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url)
    admin_id, env_secret = settings.admin_client_id or "", settings.admin_client_secret or ""
    async with started(settings) as client:
        token = await get_token(client, admin_id, env_secret)
        rotated = await client.post(
            f"/v1/clients/{admin_id}/rotate-secret", headers={"Authorization": f"Bearer {token}"}
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["client_secret"]
    with caplog.at_level(logging.WARNING, logger="app"):
        async with started(settings) as client:
            assert await _token_status(client, admin_id, env_secret) == 401
            assert await _token_status(client, admin_id, new_secret) == 200
    assert "DSR_ADMIN_CLIENT_SECRET" in caplog.text
    assert env_secret not in caplog.text and new_secret not in caplog.text


@pytest.mark.parametrize("action", ["disable", "delete"])
async def test_a_disabled_or_deleted_bootstrap_admin_stays_so_after_a_restart(
    database_url: str, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    settings = make_settings(database_url)
    admin_id, env_secret = settings.admin_client_id or "", settings.admin_client_secret or ""
    async with started(settings) as client:
        bootstrap = {"Authorization": f"Bearer {await get_token(client, admin_id, env_secret)}"}
        other_id, other_secret = await new_client(client, bootstrap, "admin")
        other = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
        if action == "disable":
            response = await client.post(f"/v1/clients/{admin_id}/disable", headers=other)
            assert response.status_code == 200, response.text
        else:
            response = await client.delete(f"/v1/clients/{admin_id}", headers=other)
            assert response.status_code == 204, response.text
    with caplog.at_level(logging.WARNING, logger="app"):
        async with started(settings) as client:
            assert await _token_status(client, admin_id, env_secret) == 401
            other = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
            listed = await client.get("/v1/clients", headers=other)
    assert listed.status_code == 200, listed.text
    ids = [item["client_id"] for item in listed.json()["items"]]
    assert ids.count(admin_id) == (1 if action == "disable" else 0)
    assert f"{action}d" in caplog.text and admin_id in caplog.text


# ---------------------------------------------------------------- managing clients from the CLI


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database the CLI migrates itself (the test schema is not Alembic's)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        return
    request.getfixturevalue("postgres_server_url")  # skips (or fails in CI) without PostgreSQL
    with scratch_database(f"dsr_cli_{os.getpid()}") as url:
        yield url


def _dsr_here(*args: str, database_url: str) -> Result:
    """``dsr`` in this process (an interpreter start per command would cost seconds)."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(
            cli, list(args), env={"DSR_DATABASE_URL": database_url, "DSR_SECRET_KEY": CLI_KEY}
        )
    finally:
        get_settings.cache_clear()


def _credentials(output: str) -> tuple[str, str]:
    client_id = re.search(r"client_id=(\S+)", output)
    secret = re.search(r"client_secret=(\S+)", output)
    assert client_id and secret, output
    return client_id.group(1), secret.group(1)


def _token_statuses(database_url: str, *credentials: tuple[str, str]) -> list[int]:
    async def ask() -> list[int]:
        app = create_app(make_settings(database_url, secret_key=CLI_KEY))
        try:
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://t") as client:
                return [await _token_status(client, *pair) for pair in credentials]
        finally:
            await app.state.engine.dispose()

    return asyncio.run(ask())


def test_clients_are_listed_disabled_enabled_rotated_and_deleted_from_the_cli(
    cli_database: str,
) -> None:
    url = cli_database
    created = _dsr_here(
        "clients", "create", "--name", "Acme CRM", "--role", "integration", database_url=url
    )
    assert created.exit_code == 0, created.output
    integration = _credentials(created.output)
    admin = _credentials(
        _dsr_here("clients", "create", "--name", "Ops", "--role", "admin", database_url=url).output
    )

    listed = _dsr_here("clients", "list", database_url=url)
    assert listed.exit_code == 0, listed.output
    assert integration[0] in listed.output and "Acme CRM" in listed.output
    assert integration[1] not in listed.output

    disabled = _dsr_here("clients", "disable", integration[0], database_url=url)
    assert disabled.exit_code == 0, disabled.output
    assert "disabled" in _dsr_here("clients", "list", database_url=url).output
    assert _token_statuses(url, integration) == [401]
    assert _dsr_here("clients", "enable", integration[0], database_url=url).exit_code == 0
    assert _token_statuses(url, integration) == [200]

    rotated = _dsr_here("clients", "rotate-secret", integration[0], database_url=url)
    assert rotated.exit_code == 0, rotated.output
    new = _credentials(rotated.output)
    assert new[0] == integration[0] and new[1] != integration[1]
    assert _token_statuses(url, integration, new) == [401, 200]

    # The only admin can be neither disabled nor deleted: nobody could manage clients after.
    for command in (["disable"], ["delete", "--yes"]):
        refused = _dsr_here("clients", *command, admin[0], database_url=url)
        assert refused.exit_code == 1, refused.output
        assert "last active admin" in refused.output
    assert _token_statuses(url, admin) == [200]

    unconfirmed = _dsr_here(
        "clients",
        "delete",
        integration[0],
        database_url=url,
    )
    assert unconfirmed.exit_code != 0
    assert _token_statuses(url, new) == [200]
    deleted = _dsr_here("clients", "delete", integration[0], "--yes", database_url=url)
    assert deleted.exit_code == 0, deleted.output
    assert integration[0] not in _dsr_here("clients", "list", database_url=url).output
    assert integration[0] in _dsr_here("clients", "list", "--all", database_url=url).output
    assert _token_statuses(url, new) == [401]
    missing = _dsr_here("clients", "disable", "nobody", database_url=url)
    assert missing.exit_code == 1 and "No API client" in missing.output


def test_a_disabled_development_admin_is_not_rekeyed_at_start(cli_database: str) -> None:
    url = cli_database
    settings = make_settings(url, secret_key=CLI_KEY)
    assert _dsr_here("migrate", database_url=url).exit_code == 0
    assert asyncio.run(_rekey_development_admin(settings, "first-secret-0123456789abcdef"))
    assert _token_statuses(url, (DEV_ADMIN_ID, "first-secret-0123456789abcdef")) == [200]
    other = _dsr_here("clients", "create", "--name", "Ops", "--role", "admin", database_url=url)
    assert other.exit_code == 0, other.output
    assert _dsr_here("clients", "disable", DEV_ADMIN_ID, database_url=url).exit_code == 0

    # `dsr serve` in development: the next start must not hand out a working secret again.
    assert not asyncio.run(_rekey_development_admin(settings, "second-secret-0123456789abcdef"))
    assert _token_statuses(
        url,
        (DEV_ADMIN_ID, "first-secret-0123456789abcdef"),
        (DEV_ADMIN_ID, "second-secret-0123456789abcdef"),
    ) == [401, 401]


def test_people_are_created_disabled_and_reset_from_the_cli(cli_database: str) -> None:
    from tests.console.helpers import login_response

    url = cli_database
    created = _dsr_here(
        "users", "create", "--email", "Pat@Example.com", "--role", "officer", database_url=url
    )
    assert created.exit_code == 0, created.output
    password = re.search(r"temporary_password=(\S+)", created.output)
    assert password and "email=pat@example.com" in created.output
    refused = _dsr_here(
        "users", "create", "--email", "x@example.com", "--role", "integration", database_url=url
    )
    assert refused.exit_code != 0
    duplicate = _dsr_here(
        "users", "create", "--email", "pat@example.com", "--role", "admin", database_url=url
    )
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output

    async def login_status(secret: str) -> int:
        app = create_app(make_settings(url, secret_key=CLI_KEY))
        try:
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://testserver") as browser:
                return (await login_response(browser, "pat@example.com", secret)).status_code
        finally:
            await app.state.engine.dispose()

    assert asyncio.run(login_status(password.group(1))) == 303
    reset = _dsr_here("users", "reset-password", "--email", "pat@example.com", database_url=url)
    assert reset.exit_code == 0, reset.output
    new = re.search(r"temporary_password=(\S+)", reset.output)
    assert new and new.group(1) != password.group(1)
    assert asyncio.run(login_status(password.group(1))) == 401
    assert (
        _dsr_here("users", "disable", "--email", "pat@example.com", database_url=url).exit_code == 0
    )
    assert asyncio.run(login_status(new.group(1))) == 401
    missing = _dsr_here("users", "disable", "--email", "nobody@example.com", database_url=url)
    assert missing.exit_code == 1 and "No user" in missing.output
