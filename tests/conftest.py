"""Fixtures: every API test runs against real SQLite and real PostgreSQL, isolated per test.

PostgreSQL comes from ``DSR_TEST_POSTGRES_URL`` (default: the local server, database ``test``).
Without it the PostgreSQL half skips, unless ``CI=true``, where it fails.
"""

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.main import create_app
from app.models import metadata

POSTGRES_URL = os.environ.get(
    "DSR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_ID = "test-admin"
ADMIN_SECRET = "test-admin-secret-0123456789abcdef"
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
# Never the default ./exports: a worker sweep in a test would take a developer's own export
# files there for orphans (the test database has no record of them) and delete them. One
# folder per test process (parallel workers, concurrent runs), for the same reason: each
# process's databases own only its files.
TEST_EXPORT_DIR = str(Path(tempfile.gettempdir()) / f"dsr-test-exports-{os.getpid()}")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_database(base_url: str, name: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(base_url: str, name: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A new database ``name`` on the test PostgreSQL server, dropped afterwards.

    Skips the test when the server is unreachable, and fails it under ``CI=true``.
    """
    try:
        asyncio.run(_create_database(POSTGRES_URL, name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires PostgreSQL", pytrace=False)
        pytest.skip(f"{reason}; set DSR_TEST_POSTGRES_URL to run the PostgreSQL tests")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_drop_database(POSTGRES_URL, name))


@pytest.fixture(scope="session", autouse=True)
def _remove_export_folder() -> Iterator[None]:
    """This process's export folder goes when its tests are done (/tmp would fill up)."""
    yield
    shutil.rmtree(TEST_EXPORT_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this test session."""
    with scratch_database(f"dsr_test_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_schema(postgres_server_url: str) -> str:
    async def create() -> None:
        engine = create_async_engine(postgres_server_url)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await engine.dispose()

    asyncio.run(create())
    return postgres_server_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file holding the empty schema, copied for each test."""
    path = tmp_path_factory.mktemp("schema") / "template.db"

    async def create() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await engine.dispose()

    asyncio.run(create())
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    # Resolved here, outside the event loop: the session fixtures use asyncio.run.
    if request.param == "postgresql":
        request.getfixturevalue("postgres_schema")
    else:
        request.getfixturevalue("sqlite_template")
    return str(request.param)


@pytest.fixture
async def database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """An empty schema for this test on the chosen backend."""
    if backend == "sqlite":
        # A copy of the session's empty schema: far cheaper than creating it every test.
        path = tmp_path / "dsr.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_schema")
    yield url
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        # DELETE, not TRUNCATE: on tables this small it is ~15x faster (TRUNCATE swaps in new
        # files for every table): PostgreSQL tests run about a quarter faster.
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())
        sequences = await connection.execute(
            text("SELECT schemaname || '.' || sequencename FROM pg_sequences")
        )
        for sequence in list(sequences.scalars()):
            await connection.execute(text("SELECT setval(:name, 1, false)"), {"name": sequence})
    await engine.dispose()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development",
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "admin_client_id": ADMIN_ID,
        "admin_client_secret": ADMIN_SECRET,
        "db_pool_size": 5,
        "export_dir": TEST_EXPORT_DIR,
        # Tests drive the worker explicitly (app.worker) rather than in the background.
        "run_worker_in_process": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def get_token(client: AsyncClient, client_id: str, secret: str) -> str:
    response = await client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def new_client(
    client: AsyncClient, admin_headers: dict[str, str], role: str, name: str | None = None
) -> tuple[str, str]:
    response = await client.post(
        "/v1/clients",
        headers=admin_headers,
        json={"name": name or f"{role} {uuid.uuid4().hex[:6]}", "role": role},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["client_id"], body["client_secret"]


@pytest.fixture
async def admin_headers(client: AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await get_token(client, ADMIN_ID, ADMIN_SECRET)}"}


@pytest.fixture
async def officer_headers(client: AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    client_id, secret = await new_client(client, admin_headers, "officer")
    return {"Authorization": f"Bearer {await get_token(client, client_id, secret)}"}


@pytest.fixture
async def integration_credentials(
    client: AsyncClient, admin_headers: dict[str, str]
) -> tuple[str, str]:
    return await new_client(client, admin_headers, "integration")


@pytest.fixture
async def integration_headers(
    client: AsyncClient, integration_credentials: tuple[str, str]
) -> dict[str, str]:
    client_id, secret = integration_credentials
    return {"Authorization": f"Bearer {await get_token(client, client_id, secret)}"}
