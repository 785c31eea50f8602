"""Small plain factories for request bodies, requests and identity assertions, a row count, and
the order rows were written in."""

import time
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from jose import jwt
from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "access",
        "subject": {"email": "jane.doe@example.com", "name": "Jane Doe"},
        "channel": "email",
        "external_ref": "CRM-4411",
    }
    body.update(overrides)
    return body


async def create_request(
    client: AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/v1/requests", headers=headers, json=request_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def identity_assertion(
    client_id: str,
    secret: str,
    sub: str = "jane.doe@example.com",
    *,
    lifetime: int = 300,
    issued_at: int | None = None,
    jti: str | None = None,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    iat = int(time.time()) if issued_at is None else issued_at
    payload = {
        "iss": client_id,
        "sub": sub,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti or uuid.uuid4().hex,
        **claims,
    }
    return str(jwt.encode(payload, secret, algorithm=algorithm))


async def verified_request(
    client: AsyncClient,
    headers: dict[str, str],
    officer_headers: dict[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """A request whose identity an officer confirmed by document today (clock running)."""
    created = await create_request(client, headers, **overrides)
    response = await client.post(
        f"/v1/requests/{created['id']}/verification",
        headers=officer_headers,
        json={
            "method": "document",
            "document_type": "passport",
            "business_address_confirmed": True,
            "result": "passed",
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def count_rows(app: FastAPI, model: Any) -> int:
    """How many rows the table of ``model`` holds in the app's database."""
    async with app.state.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def written_order(session: AsyncSession) -> list[ColumnElement[Any]]:
    """Tie-breakers for rows with equal timestamps (tests freeze the clock): the order they were
    written, by transaction then table position on PostgreSQL, by rowid on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return [literal_column("xmin::text::bigint"), literal_column("ctid")]
    return [literal_column("rowid")]
