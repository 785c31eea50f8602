"""Internal notes: officers only, encrypted at rest, never in the audit data or webhooks."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, text

from app.models import OutboxEvent, RequestEvent, RequestNote
from tests.auth.test_authorization import assert_problem
from tests.casework.helpers import officer
from tests.factories import create_request

SECRET_NOTE = "Subject phoned: her ex-partner shares the account, do not send to 1 Old Road"


async def add(client: AsyncClient, headers: dict[str, str], request_id: str, note: str) -> Any:
    return await client.post(
        f"/v1/requests/{request_id}/notes", headers=headers, json={"text": note}
    )


async def test_note_is_stored_encrypted_and_read_back_by_officers(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    author, headers = await officer(client, admin_headers)
    created = await create_request(client, headers)
    outbox_before = await outbox_payloads(app)
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    app.state.clock = lambda: now

    response = await add(client, headers, created["id"], f"  {SECRET_NOTE}  ")
    assert response.status_code == 201, response.text
    note = response.json()
    assert set(note) == {"id", "author", "created_at", "text"}
    assert note["author"] == author
    assert note["text"] == SECRET_NOTE  # surrounding whitespace stripped
    assert note["created_at"].startswith("2026-12-07T10:00:00")

    async with app.state.sessionmaker() as session:
        raw = (await session.execute(text("SELECT text_encrypted FROM request_notes"))).scalars()
        stored = list(raw)
    assert len(stored) == 1
    assert "ex-partner" not in stored[0] and "Old Road" not in stored[0]

    listed = await client.get(f"/v1/requests/{created['id']}/notes", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [note], "next_cursor": None}

    # The audit trail says who added which note, never what it says; no webhook announces it.
    trail = await client.get(f"/v1/requests/{created['id']}/events", headers=headers)
    added = [e for e in trail.json()["items"] if e["type"] == "request.note_added"]
    assert [(e["actor"], e["data"]) for e in added] == [(author, {"note_id": note["id"]})]
    async with app.state.sessionmaker() as session:
        audit_text = str((await session.execute(select(RequestEvent.data))).scalars().all())
    assert "ex-partner" not in audit_text
    outbox_after = await outbox_payloads(app)
    assert outbox_after == outbox_before
    assert "ex-partner" not in str(outbox_after)
    # The request itself is unchanged by a note.
    fetched = await client.get(f"/v1/requests/{created['id']}", headers=headers)
    assert fetched.json()["updated_at"] == created["updated_at"]


async def outbox_payloads(app: FastAPI) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list((await session.execute(select(OutboxEvent.payload))).scalars())


async def test_notes_list_oldest_first_in_pages(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    created = await create_request(client, officer_headers)
    other = await create_request(client, officer_headers)
    start = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    for minute in range(5):
        app.state.clock = lambda minute=minute: start + timedelta(minutes=minute)
        response = await add(client, officer_headers, created["id"], f"note {minute}")
        assert response.status_code == 201, response.text
    assert (await add(client, officer_headers, other["id"], "elsewhere")).status_code == 201

    seen: list[str] = []
    cursor = None
    for _page in range(3):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            f"/v1/requests/{created['id']}/notes", headers=officer_headers, params=params
        )
        assert response.status_code == 200, response.text
        seen += [item["text"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
    assert seen == [f"note {minute}" for minute in range(5)]
    assert cursor is None

    for params in ({"cursor": "not-a-cursor"}, {"limit": 0}, {"order": "desc"}):
        response = await client.get(
            f"/v1/requests/{created['id']}/notes", headers=officer_headers, params=params
        )
        assert response.status_code in (400, 422), response.text


@pytest.mark.parametrize("status", ["completed", "rejected", "cancelled"])
async def test_notes_may_be_added_to_closed_requests(
    client: AsyncClient, officer_headers: dict[str, str], status: str
) -> None:
    created = await create_request(client, officer_headers)
    steps = {
        "completed": [("verification", DOCUMENT), ("complete", {})],
        "rejected": [("reject", {"reason": "excessive"})],
        "cancelled": [("cancel", {})],
    }[status]
    for action, body in steps:
        response = await client.post(
            f"/v1/requests/{created['id']}/{action}", headers=officer_headers, json=body
        )
        assert response.status_code == 200, response.text
    assert (await add(client, officer_headers, created["id"], "closed, noted")).status_code == 201


DOCUMENT = {
    "method": "document",
    "document_type": "passport",
    "business_address_confirmed": True,
    "result": "passed",
}


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {"text": 5}, {"text": "a", "b": 1}],
    ids=["missing", "empty", "blank", "too-long", "number", "unknown-key"],
)
async def test_invalid_notes_are_422_and_not_stored(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], body: dict[str, Any]
) -> None:
    created = await create_request(client, officer_headers)
    response = await client.post(
        f"/v1/requests/{created['id']}/notes", headers=officer_headers, json=body
    )
    assert_problem(response, 422)
    async with app.state.sessionmaker() as session:
        assert (await session.execute(select(RequestNote.id))).first() is None


async def test_longest_note_is_kept_whole(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    created = await create_request(client, officer_headers)
    response = await add(client, officer_headers, created["id"], "é" * 4000)
    assert response.status_code == 201, response.text
    listed = await client.get(f"/v1/requests/{created['id']}/notes", headers=officer_headers)
    assert listed.json()["items"][0]["text"] == "é" * 4000


async def test_integrations_can_neither_read_nor_write_notes(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    own = await create_request(client, integration_headers)
    assert (await add(client, officer_headers, own["id"], "internal")).status_code == 201
    assert_problem(await add(client, integration_headers, own["id"], "mine?"), 403)
    response = await client.get(f"/v1/requests/{own['id']}/notes", headers=integration_headers)
    assert_problem(response, 403)


async def test_notes_of_a_missing_request_are_404(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(await add(client, officer_headers, missing, "nobody"), 404)
    response = await client.get(f"/v1/requests/{missing}/notes", headers=officer_headers)
    assert_problem(response, 404)
