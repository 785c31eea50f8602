"""The status page's rate limits hold across the database (every API process shares them)."""

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.time import utcnow
from app.models import StatusPageHit
from tests.conftest import make_settings
from tests.factories import create_request
from tests.status_page.helpers import status_path

LIMIT = 3


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, status_page_rate_limit=LIMIT)


def client_from(app: FastAPI, address: str) -> AsyncClient:
    transport = ASGITransport(app=app, client=(address, 40000))
    return AsyncClient(transport=transport, base_url="http://testserver")


async def test_an_address_gets_the_neutral_429_page_after_the_limit(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    dsr = await create_request(client, integration_headers)
    path = await status_path(app, dsr["id"])
    now = utcnow().replace(second=5)
    app.state.clock = lambda: now
    async with client_from(app, "198.51.100.7") as visitor:
        statuses = [(await visitor.get(f"/status/guess-{n}")).status_code for n in range(LIMIT)]
        assert statuses == [404] * LIMIT
        refused = await visitor.get(path)
        assert refused.status_code == 429
        assert dsr["id"] not in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "Content-Security-Policy" in refused.headers
        # Posting counts as well.
        posted = await visitor.post(f"{path}/cancel", data={"confirm": "yes"})
        assert posted.status_code == 429
        # Another address is not held back by this one.
        async with client_from(app, "198.51.100.8") as neighbour:
            assert (await neighbour.get(path)).status_code == 200
        # The next minute opens a new window.
        app.state.clock = lambda: now + timedelta(minutes=1)
        assert (await visitor.get(path)).status_code == 200


async def test_a_link_is_limited_whatever_address_asks(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    dsr = await create_request(client, integration_headers)
    path = await status_path(app, dsr["id"])
    now = utcnow().replace(second=5)
    app.state.clock = lambda: now
    statuses = []
    for n in range(LIMIT + 1):
        async with client_from(app, f"203.0.113.{n + 1}") as visitor:
            statuses.append((await visitor.get(path)).status_code)
    assert statuses == [200] * LIMIT + [429]


async def test_counters_hold_no_address_or_token_and_old_windows_go(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    dsr = await create_request(client, integration_headers)
    path = await status_path(app, dsr["id"])
    start = utcnow()
    app.state.clock = lambda: start
    async with client_from(app, "192.0.2.44") as visitor:
        await visitor.get(path)
        async with app.state.sessionmaker() as session:
            rows = list((await session.execute(select(StatusPageHit))).scalars())
        assert len(rows) == 2
        for row in rows:
            assert len(row.key_hash) == 64
            assert "192.0.2.44" not in row.key_hash and path.rsplit("/", 1)[1] not in row.key_hash
        app.state.clock = lambda: start + timedelta(minutes=10)
        await visitor.get(path)
        async with app.state.sessionmaker() as session:
            rows = list((await session.execute(select(StatusPageHit))).scalars())
        assert len(rows) == 2 and all(row.hits == 1 for row in rows)
