"""Database failures answer problem+json with a status the caller can act on, never 500."""

import asyncio
from collections import Counter
from datetime import timedelta

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.clients import get_by_client_id
from app.auth.scopes import ROLE_SCOPES, Role
from app.auth.tokens import issue_access_token
from app.core.config import Settings
from app.core.db import create_sessionmaker, database_unavailable
from app.core.deps import SessionDep
from app.core.group_commit import GroupCommitter, Write
from app.core.time import utcnow
from app.main import create_app
from app.models import Client, metadata
from tests.conftest import ADMIN_ID, ADMIN_SECRET, TEST_SECRET_KEY, get_token, make_settings
from tests.factories import request_body
from tests.postgres_server import PostgresServer, postgres_server


def bearer_token(client_id: str, role: Role) -> str:
    """A valid token for a client that needs no row: authentication touches no database."""
    return issue_access_token(
        client_id=client_id,
        role=role,
        scopes=ROLE_SCOPES[role],
        secret_key=TEST_SECRET_KEY,
        ttl_seconds=60,
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/test",  # nothing listens on port 1
        "sqlite+aiosqlite:////nonexistent-directory/dsr.db",
    ],
    ids=["postgresql-down", "sqlite-unopenable"],
)
async def test_unreachable_database_is_503_with_retry_after(url: str) -> None:
    app = create_app(Settings(database_url=url, secret_key=TEST_SECRET_KEY))
    token = bearer_token("officer", Role.OFFICER)
    submitter = bearer_token("crm", Role.INTEGRATION)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        listed = await client.get("/v1/requests", headers={"Authorization": f"Bearer {token}"})
        ready = await client.get("/readyz")
        # Intakes arriving together share a transaction: every one of them hears of the failure.
        submitted = await asyncio.gather(
            *(
                client.post(
                    "/v1/requests",
                    headers={"Authorization": f"Bearer {submitter}"},
                    json=request_body(external_ref=f"DOWN-{n}"),
                )
                for n in range(3)
            )
        )
    await app.state.engine.dispose()
    for response in (listed, ready, *submitted):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "jane" not in response.text.lower()
    assert listed.headers["retry-after"] == "1"


def _app_with_duplicate_insert_route(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.post("/test-only/duplicate-client")
    async def duplicate_client(session: SessionDep) -> None:
        for _ in range(2):  # the second flush violates the unique client_id
            session.add(
                Client(
                    client_id="twin",
                    name="Twin",
                    role="officer",
                    secret_hash="x",
                    secret_encrypted="x",
                    created_at=utcnow(),
                )
            )
            await session.flush()

    return app


async def test_uniqueness_race_is_409_and_rolled_back(database_url: str) -> None:
    app = _app_with_duplicate_insert_route(make_settings(database_url))
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/test-only/duplicate-client")
        async with app.state.sessionmaker() as session:
            assert await get_by_client_id(session, "twin") is None
    assert response.status_code == 409
    assert response.json()["title"] == "Conflict"


async def _admin_headers(client: AsyncClient) -> dict[str, str]:
    token = await get_token(client, ADMIN_ID, ADMIN_SECRET)
    return {"Authorization": f"Bearer {token}"}


def _assert_retry_later(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"].isdigit(), response.headers


async def test_exhausted_connection_pool_is_503_with_retry_after(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    # One connection, and a caller waits half a second for it (30 s by default).
    await app.state.engine.dispose()
    app.state.engine = create_async_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=0.5
    )
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://t") as client:
            headers = await _admin_headers(client)
            async with app.state.engine.connect():  # holds the only connection
                listed = await client.get("/v1/requests", headers=headers)
            assert (await client.get("/v1/requests", headers=headers)).status_code == 200
    _assert_retry_later(listed)


# ------------------------------------------------- a PostgreSQL that crashes and starts up


async def _create_schema(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()


async def _traffic(client: AsyncClient, headers: dict[str, str]) -> list[Response]:
    """Intakes arriving together (one shared transaction), a list, and the readiness probe."""
    return list(
        await asyncio.gather(
            *(client.post("/v1/requests", headers=headers, json=request_body()) for _ in range(8)),
            client.get("/v1/requests", headers=headers),
            client.get("/readyz"),
        )
    )


def _assert_served(responses: list[Response]) -> None:
    assert [r.status_code for r in responses] == [201] * 8 + [200, 200], [r.text for r in responses]


async def _assert_starting_up(server: PostgresServer) -> None:
    """The server answers what it answers while starting up: SQLSTATE 57P03."""
    with pytest.raises(asyncpg.CannotConnectNowError):
        await asyncpg.connect(host="127.0.0.1", port=server.port, user="postgres", timeout=5)


async def test_postgres_crash_and_startup_answer_503_with_retry_after_never_500() -> None:
    with postgres_server() as server:
        await _create_schema(server.url)
        app = create_app(make_settings(server.url))
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            headers = await _admin_headers(client)
            _assert_served(await _traffic(client, headers))

            # Crashed: pooled connections are dead (57P01), new ones are refused.
            server.crash()
            for response in await _traffic(client, headers):
                _assert_retry_later(response)

            # Restarted but not yet serving: every connection is refused with 57P03, held
            # there (standby, no hot standby) so the test does not race the startup.
            await asyncio.to_thread(server.start, standby=True)
            await _assert_starting_up(server)
            for _ in range(3):
                for response in await _traffic(client, headers):
                    _assert_retry_later(response)

            # Ready: served again.
            await asyncio.to_thread(server.promote)
            _assert_served(await _traffic(client, headers))

            # A real crash restart, with requests arriving throughout: never a 500.
            server.crash()
            restarting = asyncio.create_task(asyncio.to_thread(server.start))
            statuses: Counter[int] = Counter()
            try:
                while not restarting.done():
                    for response in await _traffic(client, headers):
                        statuses[response.status_code] += 1
                        if response.status_code != 503:
                            assert response.status_code in (200, 201), response.text
                        else:
                            _assert_retry_later(response)
                    await asyncio.sleep(0.01)
            finally:
                await restarting  # so that cleanup stops a started server, not a starting one
            assert statuses[503], statuses
            _assert_served(await _traffic(client, headers))


async def test_group_commit_tries_a_starting_up_postgres_once_per_batch() -> None:
    # A batch failing on a write's rows is retried write by write; a batch failing because
    # the server cannot serve must not be: that is one more connection attempt per intake
    # against a server that is recovering.
    with postgres_server() as server:
        await _create_schema(server.url)
        engine = create_async_engine(server.url)
        attempts: list[None] = []
        event.listen(engine.sync_engine, "do_connect", lambda *_: attempts.append(None))
        committer = GroupCommitter(engine)
        used = metadata.tables["used_assertions"]
        expires_at = utcnow() + timedelta(hours=1)
        writes = [
            Write(rows=[(used, [{"issuer": "crm", "jti": f"j{n}", "expires_at": expires_at}])])
            for n in range(8)
        ]
        try:
            server.crash()
            await asyncio.to_thread(server.start, standby=True)
            await _assert_starting_up(server)
            # Queued together, so the committer takes them as one batch.
            outcomes = await asyncio.gather(
                *(committer.write(write) for write in writes), return_exceptions=True
            )
        finally:
            await engine.dispose()
    assert all(isinstance(o, Exception) and database_unavailable(o) for o in outcomes), outcomes
    assert len(attempts) == 1, attempts
