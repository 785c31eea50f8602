"""Bulk reject and cancel: each id answered on its own, each done as the single action."""

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.models import MailMessage, OutboxEvent, RequestEvent
from tests.auth.test_authorization import assert_problem
from tests.factories import create_request

MISSING = "00000000-0000-4000-8000-000000000000"


async def bulk(client: AsyncClient, headers: dict[str, str], **body: Any) -> Any:
    return await client.post("/v1/requests/bulk", headers=headers, json=body)


async def trail(app: FastAPI, request_id: str) -> dict[str, list[Any]]:
    """What a request left behind: audit entries, webhook events and subject mail."""
    rid = uuid.UUID(request_id)
    async with app.state.sessionmaker() as session:
        events = await session.execute(
            select(RequestEvent.type, RequestEvent.actor, RequestEvent.data)
            .where(RequestEvent.request_id == rid)
            .order_by(RequestEvent.id)
        )
        outbox = await session.execute(
            select(OutboxEvent.event_type).where(OutboxEvent.request_id == rid)
        )
        mail = await session.execute(select(MailMessage.kind).where(MailMessage.request_id == rid))
        return {
            "events": [tuple(row) for row in events],
            "outbox": sorted(outbox.scalars()),
            "mail": sorted(mail.scalars()),
        }


async def test_bulk_reject_answers_each_id_and_does_what_single_reject_does(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    single = (await create_request(client, integration_headers))["id"]
    first = (await create_request(client, integration_headers))["id"]
    second = (await create_request(client, officer_headers))["id"]
    closed = (await create_request(client, officer_headers))["id"]
    cancelled = await client.post(f"/v1/requests/{closed}/cancel", headers=officer_headers)
    assert cancelled.status_code == 200, cancelled.text
    reject = {"reason": "excessive", "explanation": "Fourteenth identical request this week"}
    response = await client.post(
        f"/v1/requests/{single}/reject", headers=officer_headers, json=reject
    )
    assert response.status_code == 200, response.text
    closed_before = await trail(app, closed)

    response = await bulk(
        client,
        officer_headers,
        action="reject",
        ids=[first, MISSING, closed, "not-an-id", second, first.upper()],
        **reject,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["status"], r["request_status"]) for r in results] == [
        (first, 200, "rejected"),
        (MISSING, 404, None),
        (closed, 409, "cancelled"),
        (None, 422, None),
        (second, 200, "rejected"),
        (first, 422, None),  # the same request in capitals: acted on once
    ]
    assert all(r["detail"] for r in results if r["status"] != 200)
    assert "not-an-id" not in response.text

    # Each rejection leaves exactly what the single action leaves: audit entry, webhook, mail.
    expected = await trail(app, single)
    assert expected["outbox"] == ["request.received", "request.rejected"]
    assert "rejection" in expected["mail"]
    for request_id in (first, second):
        left = await trail(app, request_id)
        assert left["events"][1:] == expected["events"][1:]  # after request.received
        assert (left["outbox"], left["mail"]) == (expected["outbox"], expected["mail"])
        fetched = await client.get(f"/v1/requests/{request_id}", headers=officer_headers)
        assert fetched.json()["status"] == "rejected"
        assert fetched.json()["rejection"]["reason"] == "excessive"
    assert await trail(app, closed) == closed_before


async def test_bulk_cancel(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    ids = [(await create_request(client, admin_headers))["id"] for _ in range(3)]
    verified = await client.post(
        f"/v1/requests/{ids[1]}/verification",
        headers=admin_headers,
        json={
            "method": "document",
            "document_type": "passport",
            "business_address_confirmed": True,
            "result": "passed",
        },
    )
    assert verified.status_code == 200, verified.text
    response = await bulk(
        client, admin_headers, action="cancel", ids=ids, note="Logged twice by the CRM import"
    )
    assert response.status_code == 200, response.text
    assert [(r["status"], r["request_status"]) for r in response.json()["results"]] == [
        (200, "cancelled")
    ] * 3
    for request_id in ids:
        events = (await trail(app, request_id))["events"]
        assert events[-1] == (
            "request.cancelled",
            "test-admin",
            {"note": "Logged twice by the CRM import"},
        )
    again = await bulk(client, admin_headers, action="cancel", ids=ids[:1])
    assert again.json()["results"][0]["status"] == 409


@pytest.mark.parametrize(
    "body",
    [
        {"action": "reject", "ids": [MISSING]},  # no reason
        {"action": "cancel", "ids": [MISSING], "reason": "excessive"},
        {"action": "delete", "ids": [MISSING]},
        {"action": "cancel", "ids": []},
        {"action": "cancel", "ids": [str(uuid.uuid4()) for _ in range(101)]},
        {"action": "cancel", "ids": [MISSING, MISSING]},
        {"action": "cancel", "ids": ["x" * 101]},
        {"action": "cancel", "ids": MISSING},
        {"action": "cancel", "ids": [1]},
    ],
    ids=[
        "reject-without-reason",
        "cancel-with-reason",
        "unknown-action",
        "no-ids",
        "101-ids",
        "repeated-id",
        "id-too-long",
        "ids-not-a-list",
        "id-not-text",
    ],
)
async def test_invalid_bulk_bodies_are_422_and_change_nothing(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], body: dict[str, Any]
) -> None:
    created = (await create_request(client, officer_headers))["id"]
    before = await trail(app, created)
    assert_problem(await client.post("/v1/requests/bulk", headers=officer_headers, json=body), 422)
    assert await trail(app, created) == before


async def test_a_hundred_ids_are_accepted(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(100)]
    response = await bulk(client, officer_headers, action="cancel", ids=ids)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [404] * 100


async def test_integrations_may_not_act_in_bulk_even_on_their_own(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    own = (await create_request(client, integration_headers))["id"]
    before = await trail(app, own)
    assert_problem(await bulk(client, integration_headers, action="cancel", ids=[own]), 403)
    assert await trail(app, own) == before
