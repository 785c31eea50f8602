"""Identity assertions: an integration vouches for the person with an HS256 JWT it signs.

Every test runs on SQLite and PostgreSQL (the ``backend`` fixture in conftest).
"""

import asyncio
import base64
import json
import os
import time
import uuid
from calendar import monthrange
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from jose import jwt
from sqlalchemy import select

from app.models import DsrRequest, OutboxEvent
from tests.conftest import new_client
from tests.factories import count_rows, identity_assertion, request_body

LONDON = ZoneInfo("Europe/London")
ENGLAND = holidays.country_holidays("GB", subdiv="ENG")


# ---------------------------------------------------------------- helpers


def london_today() -> date:
    return datetime.now(UTC).astimezone(LONDON).date()


def gdpr_due(start: date) -> date:
    year, month = divmod(start.year * 12 + start.month, 12)
    due = date(year, month + 1, min(start.day, monthrange(year, month + 1)[1]))
    while due.weekday() >= 5 or due in ENGLAND:
        due += timedelta(days=1)
    return due


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unsigned_token(client_id: str, *, alg: str, signature: bytes = b"") -> str:
    """A JWT with an arbitrary ``alg`` header and a signature that is not HS256."""
    now = int(time.time())
    header = {"alg": alg, "typ": "JWT"}
    claims = {
        "iss": client_id,
        "sub": "jane.doe@example.com",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(signature),
        ]
    )


async def submit(client: AsyncClient, headers: dict[str, str], token: str, **overrides: Any) -> Any:
    return await client.post(
        "/v1/requests", headers=headers, json=request_body(identity_assertion=token, **overrides)
    )


async def outbox_types(app: FastAPI, request_id: str) -> Counter[str]:
    async with app.state.sessionmaker() as session:
        query = select(OutboxEvent.event_type).where(
            OutboxEvent.request_id == uuid.UUID(request_id)
        )
        return Counter((await session.execute(query)).scalars())


def assert_invalid_assertion(response: Any, *secrets_not_echoed: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"] == "Invalid identity assertion"
    for value in ("jane.doe@example.com", *secrets_not_echoed):
        assert value not in response.text


# ---------------------------------------------------------------- valid assertions


async def test_valid_assertion_starts_the_request_in_progress(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    client_id, secret = integration_credentials
    response = await submit(client, integration_headers, identity_assertion(client_id, secret))
    assert response.status_code == 201, response.text
    body = response.json()
    today = london_today()
    due = gdpr_due(today)

    assert body["status"] == "in_progress"
    assert body["verification"]["status"] == "verified"
    assert body["verification"]["method"] == "identity_assertion"
    assert body["deadline"]["clock_started_on"] == today.isoformat()
    assert body["deadline"]["due_date"] == due.isoformat()
    assert body["deadline"]["days_left"] == (due - today).days
    assert body["deadline"]["overdue"] is False

    events = await client.get(f"/v1/requests/{body['id']}/events", headers=integration_headers)
    assert [e["type"] for e in events.json()["items"]] == ["request.received", "request.verified"]
    assert await outbox_types(app, body["id"]) == Counter(["request.received", "request.verified"])


@pytest.mark.parametrize(
    ("subject", "sub"),
    [
        pytest.param({"email": "jane.doe@example.com"}, "jane.doe@example.com", id="email"),
        pytest.param({"customer_id": "C-1001", "name": "Jane"}, "C-1001", id="customer-id"),
        pytest.param(
            {"email": "jane.doe@example.com", "customer_id": "C-1001"}, "C-1001", id="either"
        ),
        pytest.param({"email": "Jane.Doe@EXAMPLE.com"}, "jane.doe@example.com", id="email-case"),
    ],
)
async def test_sub_may_name_the_email_or_the_customer_id(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    subject: dict[str, str],
    sub: str,
) -> None:
    client_id, secret = integration_credentials
    token = identity_assertion(client_id, secret, sub=sub)
    response = await submit(client, integration_headers, token, subject=subject)
    assert response.status_code == 201, response.text
    assert response.json()["verification"]["status"] == "verified"


async def test_ten_minute_lifetime_is_accepted(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    client_id, secret = integration_credentials
    token = identity_assertion(client_id, secret, lifetime=600)
    response = await submit(client, integration_headers, token)
    assert response.status_code == 201, response.text


async def test_reused_jti_is_422(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    client_id, secret = integration_credentials
    first = await submit(
        client, integration_headers, identity_assertion(client_id, secret, jti="j1")
    )
    assert first.status_code == 201, first.text
    # A fresh token (new iat) with the same jti is still a replay.
    replay = identity_assertion(client_id, secret, jti="j1", issued_at=int(time.time()) - 5)
    assert_invalid_assertion(await submit(client, integration_headers, replay), secret)
    assert await count_rows(app, DsrRequest) == 1


async def test_idempotent_retry_of_an_asserted_request_replays_instead_of_reusing_the_jti(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    client_id, secret = integration_credentials
    token = identity_assertion(client_id, secret)
    headers = {**integration_headers, "Idempotency-Key": "retry-1"}
    first = await submit(client, headers, token)
    retry = await submit(client, headers, token)
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert await count_rows(app, DsrRequest) == 1


# ---------------------------------------------------------------- invalid assertions

# Each case builds a token from (caller's credentials, another integration's credentials).
Credentials = tuple[str, str]
TokenBuilder = Callable[[Credentials, Credentials], str]

INVALID: dict[str, TokenBuilder] = {
    "lifetime-over-10-minutes": lambda mine, _: identity_assertion(*mine, lifetime=601),
    "expired": lambda mine, _: identity_assertion(
        *mine, issued_at=int(time.time()) - 1000, lifetime=300
    ),
    "issued-in-the-future": lambda mine, _: identity_assertion(
        *mine, issued_at=int(time.time()) + 3600
    ),
    "wrong-secret": lambda mine, _: identity_assertion(mine[0], "not-the-client-secret"),
    "iss-another-client": lambda mine, other: identity_assertion(other[0], mine[1]),
    "another-clients-assertion": lambda _, other: identity_assertion(*other),
    "alg-none": lambda mine, _: unsigned_token(mine[0], alg="none"),
    "alg-none-capitalised": lambda mine, _: unsigned_token(mine[0], alg="None"),
    "hs512": lambda mine, _: identity_assertion(*mine, algorithm="HS512"),
    "rs256-looking": lambda mine, _: unsigned_token(
        mine[0], alg="RS256", signature=os.urandom(256)
    ),
    "sub-mismatch": lambda mine, _: identity_assertion(*mine, sub="someone.else@example.com"),
    "not-a-jwt": lambda mine, _: "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(INVALID))
async def test_invalid_assertion_is_422_and_creates_nothing(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    case: str,
) -> None:
    other = await new_client(client, admin_headers, "integration")
    token = INVALID[case](integration_credentials, other)

    response = await submit(client, integration_headers, token)
    assert_invalid_assertion(response, integration_credentials[1], other[1], token)
    listed = await client.get("/v1/requests", headers=integration_headers)
    assert listed.json() == {"items": [], "next_cursor": None}
    assert await count_rows(app, DsrRequest) == 0
    assert await count_rows(app, OutboxEvent) == 0


@pytest.mark.parametrize("missing", ["jti", "exp", "iat", "sub"])
async def test_assertion_without_a_required_claim_is_422(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    missing: str,
) -> None:
    client_id, secret = integration_credentials
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": "jane.doe@example.com",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    del claims[missing]
    token = jwt.encode(claims, secret, algorithm="HS256")
    assert_invalid_assertion(await submit(client, integration_headers, token), secret)
    assert await count_rows(app, DsrRequest) == 0


async def test_subject_with_only_a_phone_cannot_be_asserted(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    token = identity_assertion(*integration_credentials, sub="+442079460000")
    response = await submit(client, integration_headers, token, subject={"phone": "020 7946 0000"})
    assert response.status_code == 422, response.text
    assert response.json()["title"] == "Invalid identity assertion"


# ---------------------------------------------------------------- deadlines through the API


@pytest.mark.parametrize(
    ("regulation", "received_at", "started_on", "due_date", "due_at"),
    [
        # 3 Oct 2026 is a Saturday: rolls to Monday 5 Oct; BST, so 23:59:59 local is 22:59:59Z.
        (
            "uk_gdpr",
            "2026-09-03T10:00:00+01:00",
            "2026-09-03",
            "2026-10-05",
            "2026-10-05T22:59:59Z",
        ),
        (
            "eu_gdpr",
            "2026-09-03T10:00:00+01:00",
            "2026-09-03",
            "2026-10-05",
            "2026-10-05T22:59:59Z",
        ),
        # 23:30 UTC on 30 June is 00:30 BST on 1 July; 1 Aug is a Saturday -> Monday 3 Aug.
        ("uk_gdpr", "2026-06-30T23:30:00Z", "2026-07-01", "2026-08-03", "2026-08-03T22:59:59Z"),
        # After the clocks go back (GMT): 25 Nov is a Wednesday, end of day is 23:59:59Z.
        ("uk_gdpr", "2026-10-25T23:30:00Z", "2026-10-25", "2026-11-25", "2026-11-25T23:59:59Z"),
        # CCPA: 45 days -> Sunday 18 Oct 2026 -> Monday 19 Oct.
        ("ccpa", "2026-09-03T10:00:00+01:00", "2026-09-03", "2026-10-19", "2026-10-19T22:59:59Z"),
    ],
)
async def test_deadline_examples_with_back_dated_receipt(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    regulation: str,
    received_at: str,
    started_on: str,
    due_date: str,
    due_at: str,
) -> None:
    token = identity_assertion(*integration_credentials)
    response = await submit(
        client,
        integration_headers,
        token,
        regulation=regulation,
        received_at=received_at,
        channel="post",
    )
    assert response.status_code == 201, response.text
    deadline = response.json()["deadline"]
    assert deadline["clock_started_on"] == started_on
    assert deadline["due_date"] == due_date
    assert deadline["due_at"] == due_at
    assert deadline["days_left"] == (date.fromisoformat(due_date) - london_today()).days
    expected_overdue = datetime.now(UTC) > datetime.fromisoformat(due_at.replace("Z", "+00:00"))
    assert deadline["overdue"] is expected_overdue


async def test_one_assertion_sent_concurrently_is_accepted_once(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    token = identity_assertion(*integration_credentials)
    responses = await asyncio.gather(
        *(submit(client, integration_headers, token, external_ref=f"R{n}") for n in range(5))
    )
    codes = sorted(response.status_code for response in responses)
    assert codes == [201, 422, 422, 422, 422], codes
    assert await count_rows(app, DsrRequest) == 1
