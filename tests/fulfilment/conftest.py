"""Fixtures for end-to-end fulfilment: the demo CRM as a data source, on SQLite or PostgreSQL.

The service's own database is parametrised by ``backend`` (tests/conftest.py); the data
source holding the subject's records by ``source_backend``: the demo CRM file itself, or
the same data copied into a scratch PostgreSQL database.
"""

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.demo import create_demo_crm, load_dataset_map
from app.demo.crm import SCHEMA
from app.models import OutboxEvent, RequestEvent
from app.worker import Worker
from tests.conftest import (
    POSTGRES_URL,
    _asyncpg_dsn,
    _create_database,
    _drop_database,
    make_settings,
)
from tests.smtp_server import SmtpServer


@dataclass
class CrmSource:
    """The registered demo CRM: where it lives and how to read it back in assertions."""

    kind: str  # "sqlite" | "postgresql"
    url: str
    source_id: str

    async def rows(self, table: str) -> list[dict[str, Any]]:
        if self.kind == "sqlite":
            path = make_url(self.url).database
            assert path is not None
            connection = sqlite3.connect(path)
            connection.row_factory = sqlite3.Row
            try:
                return [dict(row) for row in connection.execute(f'SELECT * FROM "{table}"')]
            finally:
                connection.close()
        connection = await asyncpg.connect(_asyncpg_dsn(self.url))
        try:
            return [dict(row) for row in await connection.fetch(f'SELECT * FROM "{table}"')]
        finally:
            await connection.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return make_settings(
        database_url,
        export_dir=str(tmp_path / "exports"),
        public_url="http://testserver",
        fulfilment_max_attempts=1,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="privacy@controller.example",
    )


@pytest.fixture
def demo_crm_file(tmp_path: Path) -> Path:
    return create_demo_crm(tmp_path / "demo_crm.db")


async def copy_demo_to_postgres(sqlite_path: Path, database: str) -> str:
    """The demo CRM's schema and rows in a fresh PostgreSQL database; returns its URL."""
    await _create_database(POSTGRES_URL, database)
    url = make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    target = await asyncpg.connect(_asyncpg_dsn(url))
    source = sqlite3.connect(sqlite_path)
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                await target.execute(statement)
        tables = [
            name
            for (name,) in source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            cursor = source.execute(f'SELECT * FROM "{table}"')
            columns = [description[0] for description in cursor.description]
            records = [
                tuple(
                    Decimal(str(v)) if c == "amount" else v
                    for c, v in zip(columns, row, strict=True)
                )
                for row in cursor
            ]
            await target.copy_records_to_table(table, records=records, columns=columns)
    finally:
        source.close()
        await target.close()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def source_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server_url")  # skips (or fails in CI) without it
    return str(request.param)


@pytest.fixture
def crm_url(source_backend: str, demo_crm_file: Path) -> Iterator[str]:
    if source_backend == "sqlite":
        yield f"sqlite:///{demo_crm_file}"
        return
    name = f"dsr_crm_{os.getpid()}"
    url = asyncio.run(copy_demo_to_postgres(demo_crm_file, name))
    yield url.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(_drop_database(POSTGRES_URL, name))


async def register_crm(
    client: AsyncClient, admin_headers: dict[str, str], url: str, *, name: str = "demo_crm"
) -> str:
    """Register the demo CRM at ``url`` as an sql data source; returns its id."""
    response = await client.post(
        "/v1/data-sources",
        headers=admin_headers,
        json={"name": name, "kind": "sql", "url": url, "dataset_map": load_dataset_map()},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def crm(
    client: AsyncClient, admin_headers: dict[str, str], crm_url: str, source_backend: str
) -> CrmSource:
    return CrmSource(source_backend, crm_url, await register_crm(client, admin_headers, crm_url))


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()


async def fulfil_and_wait(
    client: AsyncClient,
    headers: dict[str, str],
    request_id: str,
    worker: Worker,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Call ``fulfil``, let the worker finish, and return the request as it then stands."""
    response = await client.post(f"/v1/requests/{request_id}/fulfil", headers=headers, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["fulfilment"]["status"] == "queued"
    await drain(worker)
    return dict((await client.get(f"/v1/requests/{request_id}", headers=headers)).json())


async def outbox_payloads(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    """The webhook payloads written to the outbox for ``event_type``."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(OutboxEvent.payload).where(OutboxEvent.event_type == event_type)
        )
        return [payload for (payload,) in rows]


async def audit_entries(app: FastAPI, audit_type: str) -> list[dict[str, Any]]:
    """The data of every audit-trail entry of ``audit_type``."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(RequestEvent.data).where(RequestEvent.type == audit_type)
        )
        return [data for (data,) in rows]


async def drain(worker: Worker, *, passes: int = 10) -> None:
    """Run the worker until no fulfilment job is left to start or running."""
    for _ in range(passes):
        stats = await worker.run_once(sweep=False)
        await worker.wait_for_jobs()
        if not stats.jobs_started:
            return
