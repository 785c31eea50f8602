"""Officer actions on a request: the transition table, the clock rules, audit and outbox.

Every test runs on SQLite and PostgreSQL (the ``backend`` fixture in conftest). Time-dependent
rules are tested without sleeping: requests are back-dated through ``received_at`` (allowed by
the contract) and, where a pause must have begun earlier, ``paused_on`` is moved back directly
in the database (each such write is commented where it happens).
"""

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from app.core.config import Settings
from app.models import DsrRequest, OutboxEvent
from app.requests import sweeps
from tests.conftest import get_token, new_client
from tests.deadline_helpers import (
    LONDON,
    add_months,
    assert_problem,
    next_working_day,
    parse_instant,
)
from tests.factories import create_request, identity_assertion, verified_request, written_order

STATUSES = ["awaiting_verification", "in_progress", "paused", "completed", "rejected", "cancelled"]

ACTION_BODIES: dict[str, dict[str, Any] | None] = {
    "verification": {
        "method": "document",
        "document_type": "passport",
        "business_address_confirmed": True,
        "result": "passed",
    },
    "pause": {"reason": "awaiting_clarification", "note": "which account?"},
    "resume": None,
    "extend": {"reason": "Complex request spanning several systems"},
    "reject": {"reason": "excessive", "explanation": "third identical request this month"},
    "cancel": None,
    "complete": {"summary": "Answered by secure email"},
    "fulfil": None,
}

# The contract's lifecycle: the statuses each action may start from, and where it leads
# (None: the status does not change).
ALLOWED_FROM: dict[str, set[str]] = {
    "verification": {"awaiting_verification"},
    "pause": {"in_progress"},
    "resume": {"paused"},
    "extend": {"in_progress", "paused"},
    "reject": {"awaiting_verification", "in_progress", "paused"},
    "cancel": {"awaiting_verification", "in_progress", "paused"},
    "complete": {"in_progress"},
    "fulfil": {"in_progress"},
}
LEADS_TO: dict[str, str | None] = {
    "verification": "in_progress",
    "pause": "paused",
    "resume": "in_progress",
    "extend": None,
    "reject": "rejected",
    "cancel": "cancelled",
    "complete": "completed",
}
EVENT_OF: dict[str, str] = {
    "verification": "request.verified",
    "pause": "request.paused",
    "resume": "request.resumed",
    "extend": "request.extended",
    "reject": "request.rejected",
    "cancel": "request.cancelled",
    "complete": "request.completed",
}

# Distinctive identities, so a leak into a webhook payload or the audit trail is visible.
PII_SUBJECT = {
    "email": "penelope.privacy@example.org",
    "phone": "020 7946 0000",
    "name": "Penelope Privacy",
    "customer_id": "CUST-PII-778899",
}
PII_STRINGS = ["penelope", "Penelope", "+442079460000", "2079460000", "CUST-PII-778899"]


def without(body: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in keys}


# ---------------------------------------------------------------- helpers


# The service's clock in these tests (app.state.clock): a Tuesday morning in London, so what
# a test expects never depends on the day, or the hour, it runs.
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(app: FastAPI) -> None:
    app.state.clock = lambda: NOW


def london_today() -> date:
    return NOW.astimezone(LONDON).date()


def gdpr_due(start: date, *, months: int = 1, paused_days: int = 0) -> date:
    return next_working_day(add_months(start, months) + timedelta(days=paused_days))


def end_of_day_utc(day: date) -> str:
    end = datetime.combine(day, time(23, 59, 59), tzinfo=LONDON).astimezone(UTC)
    return end.isoformat().replace("+00:00", "Z")


async def act(
    client: AsyncClient, headers: dict[str, str], request_id: str, action: str, body: Any = None
) -> Any:
    url = f"/v1/requests/{request_id}/{action}"
    if body is None:
        return await client.post(url, headers=headers)
    return await client.post(url, headers=headers, json=body)


async def ok(
    client: AsyncClient, headers: dict[str, str], request_id: str, action: str, body: Any = None
) -> dict[str, Any]:
    response = await act(client, headers, request_id, action, body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def event_types(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[str]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return [event["type"] for event in response.json()["items"]]


async def events_of(
    client: AsyncClient, headers: dict[str, str], request_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def outbox_rows(app: FastAPI, request_id: str) -> list[OutboxEvent]:
    """Outbox rows of one request, in the order they were written."""
    async with app.state.sessionmaker() as session:
        query = (
            select(OutboxEvent)
            .where(OutboxEvent.request_id == uuid.UUID(request_id))
            .order_by(OutboxEvent.created_at, *written_order(session))
        )
        return list((await session.execute(query)).scalars())


async def set_paused_on(app: FastAPI, request_id: str, paused_on: date) -> None:
    # Direct write, the only way to have a pause that began days ago without sleeping:
    # moves the stored pause day back; everything else stays as the API wrote it.
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(DsrRequest)
            .where(DsrRequest.id == uuid.UUID(request_id))
            .values(paused_on=paused_on)
        )
        await session.commit()


async def asserted_request(
    client: AsyncClient,
    headers: dict[str, str],
    credentials: tuple[str, str],
    *,
    days_ago: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    """A request vouched for by its integration: in_progress, clock from the receipt date."""
    client_id, secret = credentials
    received_at = NOW - timedelta(days=days_ago)
    created = await create_request(
        client,
        headers,
        received_at=received_at.isoformat(),
        identity_assertion=identity_assertion(
            client_id, secret, sub="jane.doe@example.com", issued_at=int(NOW.timestamp())
        ),
        **overrides,
    )
    assert created["status"] == "in_progress", created
    assert (
        created["deadline"]["clock_started_on"] == received_at.astimezone(LONDON).date().isoformat()
    )
    return created


async def request_in_status(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    status: str,
) -> dict[str, Any]:
    """A request brought to ``status`` through the API."""
    if status == "awaiting_verification":
        return await create_request(client, integration_headers)
    if status in {"rejected", "cancelled"}:
        created = await create_request(client, integration_headers)
        action = "reject" if status == "rejected" else "cancel"
        return await ok(client, officer_headers, created["id"], action, ACTION_BODIES[action])
    running = await verified_request(client, integration_headers, officer_headers)
    if status == "in_progress":
        return running
    action = "pause" if status == "paused" else "complete"
    return await ok(client, officer_headers, running["id"], action, ACTION_BODIES[action])


# ---------------------------------------------------------------- the transition table


@pytest.mark.parametrize("status", STATUSES)
async def test_transition_table(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    status: str,
) -> None:
    """Every action from ``status``: allowed -> 200 with the updated request, else 409."""
    mismatches: list[str] = []
    for action, body in ACTION_BODIES.items():
        dsr = await request_in_status(client, integration_headers, officer_headers, status)
        assert dsr["status"] == status
        events_before = await event_types(client, officer_headers, dsr["id"])
        outbox_before = [row.event_type for row in await outbox_rows(app, dsr["id"])]
        response = await act(client, officer_headers, dsr["id"], action, body)
        allowed = status in ALLOWED_FROM[action]

        if allowed and action != "fulfil":
            if response.status_code != 200:
                mismatches.append(f"{action}: expected 200, got {response.status_code}")
                continue
            updated = response.json()
            expected_status = LEADS_TO[action] or status
            assert updated["id"] == dsr["id"]
            assert updated["status"] == expected_status, action
            fetched = await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)
            assert fetched.json()["status"] == expected_status
            assert await event_types(client, officer_headers, dsr["id"]) == [
                *events_before,
                EVENT_OF[action],
            ]
            assert [row.event_type for row in await outbox_rows(app, dsr["id"])] == [
                *outbox_before,
                EVENT_OF[action],
            ]
            continue

        if response.status_code != 409:
            mismatches.append(f"{action}: expected 409, got {response.status_code}")
            continue
        problem = assert_problem(response, 409)
        if allowed:  # fulfil from in_progress: allowed, but there is nothing to run against
            assert problem["title"] == "No data sources configured"
        else:
            assert problem["title"] == "Action not allowed in the current status"
            assert problem["current_status"] == status
        # A refused action changes nothing and records nothing.
        fetched = await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)
        # ``dsr`` is the integration's view, without what concerns the subject's other requests.
        casework = {"possible_duplicate_of", "subject_history"}
        assert without(fetched.json(), casework) == without(dsr, casework)
        assert await event_types(client, officer_headers, dsr["id"]) == events_before
        assert [row.event_type for row in await outbox_rows(app, dsr["id"])] == outbox_before
    assert not mismatches, mismatches


async def test_actions_need_the_officer_role(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    for action in ("pause", "extend", "reject", "complete", "fulfil"):
        response = await act(client, integration_headers, running["id"], action, {})
        assert_problem(response, 403)
    created = await create_request(client, integration_headers)
    response = await act(
        client, integration_headers, created["id"], "verification", ACTION_BODIES["verification"]
    )
    assert_problem(response, 403)


async def test_actions_on_an_unknown_request_are_404(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    response = await act(
        client, officer_headers, str(uuid.uuid4()), "pause", ACTION_BODIES["pause"]
    )
    assert_problem(response, 404)


# ---------------------------------------------------------------- identity by document


async def test_document_check_passed_starts_the_clock_today(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    # Received weeks ago by post: the clock still starts on the day identity was confirmed.
    created = await create_request(
        client,
        integration_headers,
        channel="post",
        received_at=(NOW - timedelta(days=20)).isoformat(),
    )
    verified = await ok(
        client, officer_headers, created["id"], "verification", ACTION_BODIES["verification"]
    )
    today = london_today()
    due = gdpr_due(today)

    assert verified["status"] == "in_progress"
    assert verified["verification"]["status"] == "verified"
    assert verified["verification"]["method"] == "document"
    deadline = verified["deadline"]
    assert deadline["clock_started_on"] == today.isoformat()
    assert deadline["due_date"] == due.isoformat()
    assert deadline["due_at"] == end_of_day_utc(due)
    assert deadline["days_left"] == (due - today).days
    assert deadline["extended"] is False
    assert deadline["paused_days"] == 0
    assert deadline["overdue"] is False


async def test_document_check_failed_keeps_waiting_and_is_audited(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    officer_id, officer_secret = await new_client(client, admin_headers, "officer")
    officer = {"Authorization": f"Bearer {await get_token(client, officer_id, officer_secret)}"}
    created = await create_request(client, integration_headers)

    failed = await ok(
        client,
        officer,
        created["id"],
        "verification",
        {"method": "document", "document_type": "driving_licence", "result": "failed"},
    )
    assert failed["status"] == "awaiting_verification"
    assert failed["verification"]["status"] == "failed"
    assert failed["verification"]["method"] == "document"
    assert failed["deadline"]["clock_started_on"] is None
    assert failed["deadline"]["due_date"] is None

    events = await events_of(client, officer, created["id"])
    assert [e["type"] for e in events] == ["request.received", "request.verification_failed"]
    check = events[-1]
    assert check["actor"] == officer_id
    assert check["data"]["checked_by"] == officer_id
    assert check["data"]["document_type"] == "driving_licence"
    assert check["data"]["result"] == "failed"
    rows = await outbox_rows(app, created["id"])
    assert [row.event_type for row in rows] == ["request.received", "request.verification_failed"]

    # A later check may still pass.
    passed = await ok(client, officer, created["id"], "verification", ACTION_BODIES["verification"])
    assert passed["status"] == "in_progress"
    assert passed["verification"]["status"] == "verified"


async def test_email_code_asks_for_identity_and_keeps_waiting(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    """Sending a code is not a verification: the request waits, the clock has not started.

    The whole code flow is in tests/verification/test_verification_api.py.
    """
    created = await create_request(client, integration_headers)
    sent = await ok(
        client, officer_headers, created["id"], "verification", {"method": "email_code"}
    )
    assert sent["status"] == "awaiting_verification"
    assert sent["verification"] == {
        "status": "pending",
        "method": "email_code",
        "verified_at": None,
    }
    assert sent["deadline"]["clock_started_on"] is None
    assert sent["deadline"]["due_date"] is None
    expected = ["request.received", "request.verification_requested"]
    assert await event_types(client, officer_headers, created["id"]) == expected
    assert [row.event_type for row in await outbox_rows(app, created["id"])] == expected

    # Only a request awaiting verification can be sent a code.
    running = await verified_request(client, integration_headers, officer_headers)
    response = await act(
        client, officer_headers, running["id"], "verification", {"method": "email_code"}
    )
    assert assert_problem(response, 409)["current_status"] == "in_progress"


# ---------------------------------------------------------------- pause and resume


async def test_pause_and_resume_the_same_day_stops_the_clock_one_day(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    start = date.fromisoformat(running["deadline"]["clock_started_on"])

    paused = await ok(client, officer_headers, running["id"], "pause", ACTION_BODIES["pause"])
    assert paused["status"] == "paused"
    assert paused["deadline"]["overdue"] is False

    resumed = await ok(client, officer_headers, running["id"], "resume")
    due = gdpr_due(start, paused_days=1)
    assert resumed["status"] == "in_progress"
    assert resumed["deadline"]["paused_days"] == 1
    assert resumed["deadline"]["clock_started_on"] == start.isoformat()
    assert resumed["deadline"]["due_date"] == due.isoformat()
    assert resumed["deadline"]["due_at"] == end_of_day_utc(due)


async def test_clarification_pause_that_began_days_ago_adds_every_paused_day(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    officer_headers: dict[str, str],
) -> None:
    running = await asserted_request(
        client, integration_headers, integration_credentials, days_ago=10
    )
    start = date.fromisoformat(running["deadline"]["clock_started_on"])
    await ok(client, officer_headers, running["id"], "pause", ACTION_BODIES["pause"])
    today = london_today()
    await set_paused_on(app, running["id"], today - timedelta(days=4))

    resumed = await ok(client, officer_headers, running["id"], "resume")
    # From the pause day to today, both included: 5 days.
    due = gdpr_due(start, paused_days=5)
    assert resumed["deadline"]["paused_days"] == 5
    assert resumed["deadline"]["clock_started_on"] == start.isoformat()
    assert resumed["deadline"]["due_date"] == due.isoformat()
    assert resumed["deadline"]["days_left"] == (due - today).days
    resumed_event = (await events_of(client, officer_headers, running["id"]))[-1]
    assert resumed_event["type"] == "request.resumed"
    assert resumed_event["data"]["days_not_counted"] == 5

    # A second stop adds to the first.
    await ok(client, officer_headers, running["id"], "pause", ACTION_BODIES["pause"])
    again = await ok(client, officer_headers, running["id"], "resume")
    assert again["deadline"]["paused_days"] == 6
    assert again["deadline"]["due_date"] == gdpr_due(start, paused_days=6).isoformat()


async def test_fee_pause_restarts_the_clock_on_the_resume_day(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    officer_headers: dict[str, str],
) -> None:
    running = await asserted_request(
        client, integration_headers, integration_credentials, days_ago=10
    )
    await ok(
        client, officer_headers, running["id"], "pause", {"reason": "awaiting_fee", "note": "£10"}
    )
    today = london_today()
    await set_paused_on(app, running["id"], today - timedelta(days=3))

    resumed = await ok(client, officer_headers, running["id"], "resume")
    due = gdpr_due(today)
    assert resumed["status"] == "in_progress"
    assert resumed["deadline"]["clock_started_on"] == today.isoformat()
    assert resumed["deadline"]["paused_days"] == 0
    assert resumed["deadline"]["due_date"] == due.isoformat()
    assert resumed["deadline"]["due_at"] == end_of_day_utc(due)


# ---------------------------------------------------------------- extend


async def test_extend_once_to_three_months_from_the_clock_start(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    start = date.fromisoformat(running["deadline"]["clock_started_on"])

    extended = await ok(client, officer_headers, running["id"], "extend", ACTION_BODIES["extend"])
    due = gdpr_due(start, months=3)
    assert extended["status"] == "in_progress"
    assert extended["deadline"]["extended"] is True
    assert extended["deadline"]["due_date"] == due.isoformat()
    assert extended["deadline"]["due_at"] == end_of_day_utc(due)

    again = await act(client, officer_headers, running["id"], "extend", ACTION_BODIES["extend"])
    assert assert_problem(again, 409)["title"] == "Already extended"
    fetched = await client.get(f"/v1/requests/{running['id']}", headers=officer_headers)
    assert fetched.json()["deadline"]["due_date"] == due.isoformat()


async def test_extend_after_the_original_due_date_is_409(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    officer_headers: dict[str, str],
) -> None:
    late = await asserted_request(client, integration_headers, integration_credentials, days_ago=40)
    assert date.fromisoformat(late["deadline"]["due_date"]) < london_today()
    assert late["deadline"]["overdue"] is True

    response = await act(client, officer_headers, late["id"], "extend", ACTION_BODIES["extend"])
    assert assert_problem(response, 409)["title"] == "Too late to extend"
    fetched = await client.get(f"/v1/requests/{late['id']}", headers=officer_headers)
    assert fetched.json()["deadline"] == late["deadline"]
    assert await event_types(client, officer_headers, late["id"]) == [
        "request.received",
        "request.verified",
    ]


async def test_extend_while_paused_counts_the_stopped_days(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    officer_headers: dict[str, str],
) -> None:
    """Paused before its due date, a request is not late: the stopped days still count."""
    running = await asserted_request(
        client, integration_headers, integration_credentials, days_ago=40
    )
    start = date.fromisoformat(running["deadline"]["clock_started_on"])
    await ok(client, officer_headers, running["id"], "pause", ACTION_BODIES["pause"])
    today = london_today()
    # The pause began 15 days ago, before the unpaused due date (about 9 days ago).
    await set_paused_on(app, running["id"], today - timedelta(days=15))
    assert today - timedelta(days=15) <= gdpr_due(start) < today
    # Clock stopped from then to today (16 days so far): the due date is still ahead.
    assert gdpr_due(start, paused_days=16) >= today

    response = await act(client, officer_headers, running["id"], "extend", ACTION_BODIES["extend"])
    assert response.status_code == 200, response.text
    resumed = await ok(client, officer_headers, running["id"], "resume")
    assert resumed["deadline"]["due_date"] == gdpr_due(start, months=3, paused_days=16).isoformat()


# ---------------------------------------------------------------- reject, cancel, complete


@pytest.mark.parametrize(
    ("regulation", "regulator"),
    [
        ("uk_gdpr", "ICO"),
        ("eu_gdpr", "supervisory authority"),
        ("ccpa", "California Privacy Protection Agency"),
    ],
)
async def test_reject_tells_the_subject_their_remedies(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    regulation: str,
    regulator: str,
) -> None:
    running = await verified_request(
        client, integration_headers, officer_headers, regulation=regulation
    )
    rejected = await ok(
        client,
        officer_headers,
        running["id"],
        "reject",
        {"reason": "manifestly_unfounded", "explanation": "Made only to disrupt the business"},
    )
    assert rejected["status"] == "rejected"
    rejection = rejected["rejection"]
    assert rejection["reason"] == "manifestly_unfounded"
    assert rejection["explanation"] == "Made only to disrupt the business"
    assert regulator in rejection["right_to_complain"]["name"]
    assert rejection["right_to_complain"]["url"].startswith("https://")
    assert isinstance(rejection["judicial_remedy"], str)
    assert rejection["judicial_remedy"]
    assert rejected["deadline"]["days_left"] is None
    assert rejected["deadline"]["overdue"] is False
    if regulation == "uk_gdpr":
        assert "ico.org.uk" in rejection["right_to_complain"]["url"]
    fetched = await client.get(f"/v1/requests/{running['id']}", headers=integration_headers)
    assert fetched.json()["rejection"] == rejection


async def test_reject_for_identity_marks_verification_failed(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    created = await create_request(client, integration_headers)
    rejected = await ok(
        client, officer_headers, created["id"], "reject", {"reason": "identity_not_verified"}
    )
    assert rejected["status"] == "rejected"
    assert rejected["verification"]["status"] == "failed"
    assert rejected["rejection"]["reason"] == "identity_not_verified"


async def test_reject_with_an_unknown_reason_is_422(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    created = await create_request(client, integration_headers)
    response = await act(client, officer_headers, created["id"], "reject", {"reason": "busy"})
    assert_problem(response, 422)


async def test_cancel_by_the_submitting_integration(
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    other_id, other_secret = await new_client(client, admin_headers, "integration")
    other = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
    created = await create_request(client, integration_headers)

    assert_problem(await act(client, other, created["id"], "cancel"), 404)
    cancelled = await ok(
        client, integration_headers, created["id"], "cancel", {"note": "subject withdrew"}
    )
    assert cancelled["status"] == "cancelled"
    events = await events_of(client, integration_headers, created["id"])
    assert [e["type"] for e in events] == ["request.received", "request.cancelled"]
    assert events[-1]["data"]["note"] == "subject withdrew"


async def test_complete_records_the_summary(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    completed = await ok(
        client, officer_headers, running["id"], "complete", {"summary": "Sent by secure email"}
    )
    assert completed["status"] == "completed"
    assert completed["completion_summary"] == "Sent by secure email"
    assert completed["deadline"]["days_left"] is None
    event = (await events_of(client, officer_headers, running["id"]))[-1]
    assert event["type"] == "request.completed"
    assert event["data"]["on_time"] is True


async def test_fulfil_without_data_sources_is_409(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    response = await act(client, officer_headers, running["id"], "fulfil")
    assert assert_problem(response, 409)["title"] == "No data sources configured"
    fetched = await client.get(f"/v1/requests/{running['id']}", headers=officer_headers)
    assert fetched.json()["status"] == "in_progress"
    assert len(await outbox_rows(app, running["id"])) == 2


# ---------------------------------------------------------------- audit trail and outbox


async def test_every_change_writes_one_audit_event_and_one_outbox_row(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    created = await create_request(client, integration_headers, subject=PII_SUBJECT)
    request_id = created["id"]
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("verification", {"method": "document", "document_type": "passport", "result": "failed"}),
        ("verification", ACTION_BODIES["verification"]),
        ("pause", ACTION_BODIES["pause"]),
        ("resume", None),
        ("extend", ACTION_BODIES["extend"]),
        ("complete", ACTION_BODIES["complete"]),
    ]
    expected = ["request.received"]
    responses = [created]
    for action, body in steps:
        responses.append(await ok(client, officer_headers, request_id, action, body))
        failed = action == "verification" and body and body.get("result") == "failed"
        expected.append("request.verification_failed" if failed else EVENT_OF[action])
        # After each change: exactly one more audit event and one more outbox row.
        assert await event_types(client, officer_headers, request_id) == expected
        assert [row.event_type for row in await outbox_rows(app, request_id)] == expected

    # The audit trail pages with the same cursor shape as every list.
    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/v1/requests/{request_id}/events", headers=officer_headers, params=params
        )
        assert page.status_code == 200, page.text
        paged += [e["type"] for e in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert paged == expected

    rows = await outbox_rows(app, request_id)
    for row, response in zip(rows, responses, strict=True):
        payload = row.payload
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["type"] == row.event_type
        parse_instant(payload["timestamp"])
        data = payload["data"]
        assert data["id"] == request_id
        assert data["type"] == "access"
        assert data["status"] == response["status"]
        assert data["deadline"]["due_date"] == response["deadline"]["due_date"]
        assert data["deadline"]["extended"] == response["deadline"]["extended"]
        assert "subject" not in data
        text = json.dumps(payload)
        for value in PII_STRINGS:
            assert value not in text, (row.event_type, value)
    # The audit trail holds no identities either.
    audit_text = json.dumps(await events_of(client, officer_headers, request_id))
    for value in PII_STRINGS:
        assert value not in audit_text


# ---------------------------------------------------------------- concurrency


async def test_concurrent_pauses_only_one_wins(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    responses = await asyncio.gather(
        *(
            act(client, officer_headers, running["id"], "pause", ACTION_BODIES["pause"])
            for _ in range(10)
        )
    )
    codes = sorted(response.status_code for response in responses)
    assert codes == [200] + [409] * 9, codes
    paused_rows = [
        row for row in await outbox_rows(app, running["id"]) if row.event_type == "request.paused"
    ]
    assert len(paused_rows) == 1
    assert (await event_types(client, officer_headers, running["id"])).count("request.paused") == 1


# ---------------------------------------------------------------- event sequence numbers


async def announced(app: FastAPI, request_id: str) -> list[tuple[int, str]]:
    """(data.sequence, type) of each outbox row of the request, in the order written."""
    return [
        (row.payload["data"]["sequence"], row.event_type)
        for row in await outbox_rows(app, request_id)
    ]


async def test_every_request_event_carries_its_number_in_the_order_it_happened(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    officer_headers: dict[str, str],
) -> None:
    """request.received and request.verified of one intake share a transaction and a
    timestamp: only their numbers say which came first."""
    client_id, secret = integration_credentials
    token = identity_assertion(
        client_id, secret, sub="jane.doe@example.com", issued_at=int(NOW.timestamp())
    )
    created = await create_request(client, integration_headers, identity_assertion=token)
    request_id = created["id"]
    rows = await outbox_rows(app, request_id)
    assert rows[0].payload["timestamp"] == rows[1].payload["timestamp"]
    for action in ("pause", "resume", "extend"):
        await ok(client, officer_headers, request_id, action, ACTION_BODIES[action])
    refused = await act(client, officer_headers, request_id, "resume")  # 409: no event, no number
    assert_problem(refused, 409)
    await ok(client, officer_headers, request_id, "complete", ACTION_BODIES["complete"])
    assert await announced(app, request_id) == [
        (1, "request.received"),
        (2, "request.verified"),
        (3, "request.paused"),
        (4, "request.resumed"),
        (5, "request.extended"),
        (6, "request.completed"),
    ]
    # Numbers are per request: another request starts at 1.
    other = await create_request(client, integration_headers)
    assert await announced(app, other["id"]) == [(1, "request.received")]


async def test_concurrent_changes_are_numbered_without_gaps_or_repeats(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    """Officers' actions and the worker's sweeps race on one request (each API call on its own
    connection): every committed event gets the next number, in the order committed."""
    running = await verified_request(client, integration_headers, officer_headers)
    request_id = running["id"]
    async with app.state.sessionmaker.begin() as session:
        # Due tomorrow, so the due-soon sweep has something to announce in the race.
        await session.execute(
            update(DsrRequest)
            .where(DsrRequest.id == uuid.UUID(request_id))
            .values(due_date=london_today() + timedelta(days=1))
        )

    async def sweep() -> int:
        async with app.state.sessionmaker.begin() as session:
            return await sweeps.announce_due_soon(session, settings=settings, now=NOW)

    calls = [
        act(client, officer_headers, request_id, action, ACTION_BODIES[action])
        for _ in range(6)
        for action in ("pause", "resume")
    ]
    results = await asyncio.gather(*calls, sweep(), sweep())
    codes = [result.status_code for result in results[:-2]]
    assert set(codes) <= {200, 409}, codes
    numbers = [number for number, _ in await announced(app, request_id)]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert len(numbers) == 2 + codes.count(200) + sum(results[-2:])
    # The audit trail (ids in insertion order) lists the announced events in number order.
    audit = [
        event["type"]
        for event in await events_of(client, officer_headers, request_id)
        if event["type"] != "request.verification_failed"
    ]
    by_number = [event_type for _, event_type in sorted(await announced(app, request_id))]
    assert audit == by_number
