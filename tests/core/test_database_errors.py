"""Database failures answer problem+json with a status the caller can act on, never 500."""

import asyncio

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.auth.clients import get_by_client_id
from app.auth.scopes import ROLE_SCOPES, Role
from app.auth.tokens import issue_access_token
from app.core.config import Settings
from app.core.deps import SessionDep
from app.core.time import utcnow
from app.main import create_app
from app.models import Client
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.factories import request_body


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
