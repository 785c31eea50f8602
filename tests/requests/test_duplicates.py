"""Repeated requests: the possible-duplicate flag at intake, the board's duplicates filter and
the subject's history, matched by keyed hashes of email, phone or customer id."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event, select

from app.models import DsrRequest
from tests.auth.test_authorization import assert_problem
from tests.factories import create_request, request_body

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
JANE = {"email": "Jane.Doe@example.com", "phone": "+441632960001", "customer_id": "C-1001"}


@pytest.fixture(autouse=True)
def _frozen(app: FastAPI) -> None:
    app.state.clock = lambda: NOW


async def view(client: AsyncClient, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/requests/{request_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize(
    "second_subject",
    [
        {"email": "jane.doe@example.com"},  # the local part's case differs
        {"phone": "01632 960001"},  # national format of the same number
        {"customer_id": "C-1001", "name": "J. Doe"},
    ],
    ids=["email", "phone", "customer_id"],
)
async def test_an_open_request_of_the_same_type_flags_the_new_one(
    client: AsyncClient, officer_headers: dict[str, str], second_subject: dict[str, str]
) -> None:
    first = await create_request(client, officer_headers, subject=JANE)
    assert first["possible_duplicate_of"] is None
    second = await create_request(client, officer_headers, subject=second_subject)
    assert second["possible_duplicate_of"] == first["id"]
    assert (await view(client, officer_headers, second["id"]))["possible_duplicate_of"] == first[
        "id"
    ]
    # Never refused or closed for it.
    assert second["status"] == "awaiting_verification"
    events = await client.get(f"/v1/requests/{second['id']}/events", headers=officer_headers)
    assert events.json()["items"][0]["data"]["possible_duplicate_of"] == first["id"]


async def test_the_oldest_open_match_is_named(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    older = await create_request(
        client,
        officer_headers,
        subject={"email": "jane@example.com"},
        received_at="2026-11-01T09:00:00Z",
    )
    await create_request(client, officer_headers, subject={"phone": "+441632960002"})
    newest = await create_request(
        client, officer_headers, subject={"email": "jane@example.com", "phone": "+441632960002"}
    )
    assert newest["possible_duplicate_of"] == older["id"]


async def test_no_flag_for_another_type_another_subject_or_a_closed_request(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    closed = await create_request(client, officer_headers, subject=JANE)
    cancelled = await client.post(f"/v1/requests/{closed['id']}/cancel", headers=officer_headers)
    assert cancelled.status_code == 200, cancelled.text
    erasure = await create_request(
        client, officer_headers, type="erasure", subject={"email": JANE["email"]}
    )
    assert erasure["possible_duplicate_of"] is None
    other = await create_request(client, officer_headers, subject={"email": "john@example.com"})
    assert other["possible_duplicate_of"] is None
    access = await create_request(client, officer_headers, subject={"customer_id": "C-1001"})
    assert access["possible_duplicate_of"] is None  # the access request was cancelled
    # A name alone (post) identifies nobody: no match either way.
    by_post = await create_request(
        client, officer_headers, subject={"name": "Jane Doe"}, channel="post"
    )
    assert by_post["possible_duplicate_of"] is None


async def test_identities_are_stored_as_keyed_hashes(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    created = await create_request(client, officer_headers, subject=JANE)
    async with app.state.sessionmaker() as session:
        dsr = (await session.execute(select(DsrRequest))).scalar_one()
    hashes = [dsr.subject_email_hash, dsr.subject_phone_hash, dsr.subject_customer_id_hash]
    assert all(value and len(value) == 64 for value in hashes)
    assert len(set(hashes)) == 3
    assert not any("jane" in str(value).lower() or "1001" in str(value) for value in hashes)
    assert created["id"] == str(dsr.id)


async def test_board_filters_duplicates_for_officers_only(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    first = await create_request(client, integration_headers, subject=JANE)
    second = await create_request(client, integration_headers, subject=JANE)
    # The integration is not told about the subject's other requests.
    assert second["possible_duplicate_of"] is None
    assert (await view(client, integration_headers, second["id"]))["subject_history"] is None
    assert (await view(client, officer_headers, second["id"]))["possible_duplicate_of"] == first[
        "id"
    ]

    for wanted, expected in (("true", {second["id"]}), ("false", {first["id"]})):
        response = await client.get(
            "/v1/requests", headers=officer_headers, params={"duplicates": wanted}
        )
        assert {item["id"] for item in response.json()["items"]} == expected
        searched = await client.post(
            "/v1/requests/search", headers=officer_headers, json={"duplicates": wanted == "true"}
        )
        assert {item["id"] for item in searched.json()["items"]} == expected
    response = await client.get(
        "/v1/requests", headers=integration_headers, params={"duplicates": "true"}
    )
    assert_problem(response, 403)
    listed = await client.get("/v1/requests", headers=integration_headers)
    assert all(item["possible_duplicate_of"] is None for item in listed.json()["items"])


async def test_subject_history_counts_other_requests_of_the_last_365_days(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    async def log(subject: dict[str, str], received_at: str, **overrides: Any) -> str:
        created = await create_request(
            client, officer_headers, subject=subject, received_at=received_at, **overrides
        )
        return str(created["id"])

    viewed = await log(JANE, "2026-12-01T10:00:00Z")
    await log({"email": "JANE.DOE@example.com"}, "2026-11-01T10:00:00Z")
    await log({"phone": "+441632960001"}, "2026-06-01T10:00:00Z", type="erasure")
    await log({"customer_id": "C-1001"}, "2025-12-08T12:00:00Z", type="erasure")  # 364 days
    await log({"email": "jane.doe@example.com"}, "2025-12-06T10:00:00Z")  # over a year ago
    await log({"email": "john@example.com"}, "2026-12-01T10:00:00Z")  # someone else
    closed = await log(
        {"email": "jane.doe@example.com"},
        "2026-10-01T10:00:00Z",
        type="objection",
        details={"scope": "profiling"},
    )
    response = await client.post(f"/v1/requests/{closed}/cancel", headers=officer_headers)
    assert response.status_code == 200  # closed requests count too: the subject made them

    history = (await view(client, officer_headers, viewed))["subject_history"]
    assert history == {
        "window_days": 365,
        "by_type": {"access": 1, "erasure": 2, "objection": 1},
        "total": 4,
    }
    listed = await client.get("/v1/requests", headers=officer_headers)
    assert all(item["subject_history"] is None for item in listed.json()["items"])

    nobody = await log({"name": "Jane Doe"}, "2026-12-01T10:00:00Z", channel="post")
    assert (await view(client, officer_headers, nobody))["subject_history"] == {
        "window_days": 365,
        "by_type": {},
        "total": 0,
    }


async def test_a_burst_committed_together_is_flagged_with_one_lookup_per_transaction(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    inserts: list[int] = []
    lookups: list[str] = []
    engine = app.state.engine.sync_engine

    def _insert(_conn: Any, clause: Any, multiparams: Any, *_args: Any) -> None:
        if getattr(clause, "table", None) is not None and clause.table.name == "requests":
            inserts.append(len(multiparams) or 1)

    def _lookup(*args: Any) -> None:
        if "row_number()" in str(args[2]).lower():
            lookups.append(str(args[2]))

    event.listen(engine, "before_execute", _insert)
    event.listen(engine, "before_cursor_execute", _lookup)
    responses = await asyncio.gather(
        *(
            client.post("/v1/requests", headers=officer_headers, json=request_body(subject=JANE))
            for _ in range(12)
        )
    )
    assert [r.status_code for r in responses] == [201] * 12
    event.remove(engine, "before_execute", _insert)
    event.remove(engine, "before_cursor_execute", _lookup)
    created = [r.json() for r in responses]
    ids = {body["id"] for body in created}
    flags = [body["possible_duplicate_of"] for body in created]
    assert flags.count(None) == 1
    assert all(flag in ids for flag in flags if flag is not None)
    # One lookup per transaction, however many requests it holds.
    assert sum(inserts) == 12
    assert len(lookups) == len(inserts)
    for body in created:  # what was answered is what was stored
        assert (await view(client, officer_headers, body["id"]))["possible_duplicate_of"] == (
            body["possible_duplicate_of"]
        )
