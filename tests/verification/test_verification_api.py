"""Identity verification through the API: email codes, document checks, attestations, policy.

Every test runs on SQLite and PostgreSQL. Time moves through ``app.state.clock`` (the
``clock`` fixture), never by sleeping. Codes are read back from the queued message (the
mail outbox, decrypted; the acknowledgement rendered as the worker renders it) exactly as the
subject would read them, not from SMTP.
"""

import asyncio
import json
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from app.core.crypto import keyed_hash
from app.main import create_app
from app.models import MailMessage, OutboxEvent, VerificationCode
from app.requests.lifecycle import HOW_TO_COLLECT
from tests.conftest import ADMIN_ID, ADMIN_SECRET, TEST_SECRET_KEY, get_token, make_settings
from tests.conftest import new_client as new_api_client
from tests.factories import create_request, identity_assertion, request_body, written_order
from tests.mail.helpers import contents

PROBLEM_JSON = "application/problem+json"
# 10:00 in London (BST): the local date is the UTC date.
START = datetime(2026, 9, 3, 9, 0, tzinfo=UTC)
RECEIVED = "2026-08-20T11:00:00Z"
TTL = 900
INVALID = ("Invalid or expired code", "invalid or expired code")
TOO_MANY = ("Too many attempts", "too many attempts; request a new code")

DOCUMENT_PASSED = {
    "method": "document",
    "document_type": "passport",
    "business_address_confirmed": True,
    "result": "passed",
}
DOCUMENT_FAILED = {"method": "document", "document_type": "passport", "result": "failed"}
ATTESTATION = {"method": "officer_attestation", "note": "Sent from the address on file"}
EMAIL_CODE = {"method": "email_code"}

TYPE_DETAILS: dict[str, dict[str, Any]] = {
    "access": {},
    "rectification": {"changes": [{"field": "address", "requested": "2 New Street"}]},
    "erasure": {"grounds": "consent withdrawn"},
    "restriction": {"reason": "accuracy contested"},
    "portability": {"formats": ["json"]},
    "objection": {"scope": "direct_marketing"},
}
STRONG = {"email_code", "document", "identity_assertion"}
DEFAULT_ALLOWED: dict[str, set[str]] = {
    "access": STRONG,
    "rectification": STRONG,
    "erasure": STRONG,
    "portability": STRONG,
    "objection": STRONG | {"officer_attestation"},
    "restriction": STRONG | {"officer_attestation"},
}


# ---------------------------------------------------------------- helpers


class FakeClock:
    """Stands in for ``app.state.clock``: time moves only when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def clock(app: FastAPI) -> FakeClock:
    fake = FakeClock(START)
    app.state.clock = fake
    return fake


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = dict(response.json())
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def assert_code_refused(response: Any, expected: tuple[str, str]) -> dict[str, Any]:
    body = assert_problem(response, 422)
    assert (body["title"], body["detail"]) == expected
    # Nothing beyond the generic answer: no attempts left, no hint, no field errors.
    assert set(body) == {"type", "title", "status", "detail"}
    return body


async def send(client: AsyncClient, headers: dict[str, str], request_id: str) -> Any:
    return await client.post(
        f"/v1/requests/{request_id}/verification", headers=headers, json=EMAIL_CODE
    )


async def confirm(client: AsyncClient, headers: dict[str, str], request_id: str, code: str) -> Any:
    return await client.post(
        f"/v1/requests/{request_id}/verification/confirm", headers=headers, json={"code": code}
    )


async def mail_rows(app: FastAPI, request_id: str) -> list[MailMessage]:
    async with app.state.sessionmaker() as session:
        query = (
            select(MailMessage)
            .where(MailMessage.request_id == uuid.UUID(request_id))
            .order_by(MailMessage.created_at, *written_order(session))
        )
        return list((await session.execute(query)).scalars())


async def mail_kinds(app: FastAPI, request_id: str) -> list[str]:
    return [row.kind for row in await mail_rows(app, request_id)]


async def last_message(app: FastAPI, request_id: str, kind: str) -> str:
    """The text of the latest message of this kind (an acknowledgement rendered as the worker
    renders it)."""
    rows = [row for row in await mail_rows(app, request_id) if row.kind == kind]
    assert rows, f"no {kind} message queued"
    return (await contents(app, rows[-1])).text


async def sent_code(app: FastAPI, request_id: str) -> str:
    """The code in the latest verification message, as the subject reads it."""
    text = await last_message(app, request_id, "verification_code")
    codes = set(re.findall(r"\b\d{6}\b", text))
    assert len(codes) == 1, text
    return codes.pop()


async def send_and_read(
    app: FastAPI, client: AsyncClient, headers: dict[str, str], request_id: str
) -> str:
    response = await send(client, headers, request_id)
    assert response.status_code == 200, response.text
    return await sent_code(app, request_id)


def wrong(code: str, offset: int = 1) -> str:
    """A code one step away: the answer must not differ from any other wrong code."""
    return f"{(int(code) + offset) % 1_000_000:06d}"


async def events_of(
    client: AsyncClient, headers: dict[str, str], request_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def event_types(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[str]:
    return [event["type"] for event in await events_of(client, headers, request_id)]


async def outbox_types(app: FastAPI, request_id: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        query = (
            select(OutboxEvent)
            .where(OutboxEvent.request_id == uuid.UUID(request_id))
            .order_by(OutboxEvent.created_at, *written_order(session))
        )
        return [row.event_type for row in (await session.execute(query)).scalars()]


async def code_rows(app: FastAPI, request_id: str) -> list[VerificationCode]:
    async with app.state.sessionmaker() as session:
        query = (
            select(VerificationCode)
            .where(VerificationCode.request_id == uuid.UUID(request_id))
            .order_by(VerificationCode.sent_at)
        )
        return list((await session.execute(query)).scalars())


async def waiting(client: AsyncClient, headers: dict[str, str], **overrides: Any) -> str:
    created = await create_request(client, headers, **{"received_at": RECEIVED, **overrides})
    assert created["status"] == "awaiting_verification"
    return str(created["id"])


# ---------------------------------------------------------------- the email-code flow


async def test_email_code_flow_verifies_and_starts_the_clock_on_the_day_confirmed(
    app: FastAPI,
    client: AsyncClient,
    clock: FakeClock,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    # Received by post two weeks earlier; identity is confirmed on 3 September.
    request_id = await waiting(client, integration_headers, channel="post")

    # The CRM that submitted the request drives the flow.
    sent = await send(client, integration_headers, request_id)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "awaiting_verification"
    assert body["verification"] == {
        "status": "pending",
        "method": "email_code",
        "verified_at": None,
    }
    assert body["deadline"]["due_date"] is None
    assert await mail_kinds(app, request_id) == ["acknowledgement", "verification_code"]
    message = await last_message(app, request_id, "verification_code")
    code = await sent_code(app, request_id)
    assert "15 minutes" in message
    assert code not in sent.text

    clock.advance(120)
    confirmed = await confirm(client, integration_headers, request_id, code)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "in_progress"
    assert body["verification"]["status"] == "verified"
    assert body["verification"]["method"] == "email_code"
    assert body["verification"]["verified_at"] == "2026-09-03T09:02:00Z"
    # The clock starts on the day identity was confirmed, not on receipt (20 August).
    assert body["deadline"]["clock_started_on"] == "2026-09-03"
    assert body["deadline"]["due_date"] == "2026-10-05"
    assert body["deadline"]["days_left"] == 32

    events = await events_of(client, officer_headers, request_id)
    assert [event["type"] for event in events] == [
        "request.received",
        "request.verification_requested",
        "request.verified",
    ]
    assert events[1]["actor"] == events[2]["actor"] != ""
    assert events[1]["data"]["method"] == "email_code"
    assert events[2]["data"]["clock_started_on"] == "2026-09-03"
    assert await outbox_types(app, request_id) == [
        "request.received",
        "request.verification_requested",
        "request.verified",
    ]
    # The code is in no answer, no audit entry and no webhook payload.
    assert code not in confirmed.text
    assert code not in json.dumps(events)
    async with app.state.sessionmaker() as session:
        payloads = (await session.execute(select(OutboxEvent.payload))).scalars().all()
    assert code not in json.dumps(list(payloads))

    # The code is used up, and a verified request takes no more codes.
    assert_problem(await confirm(client, integration_headers, request_id, code), 409)
    assert_problem(await send(client, integration_headers, request_id), 409)


async def test_codes_are_stored_only_as_a_keyed_hash_bound_to_the_request(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers)
    code = await send_and_read(app, client, officer_headers, request_id)
    (row,) = await code_rows(app, request_id)
    assert row.code_hash == keyed_hash(
        f"{request_id}:{code}", secret_key=TEST_SECRET_KEY, purpose="verification-code"
    )
    assert code not in row.code_hash
    assert row.sent_at == START
    assert row.expires_at == START + timedelta(seconds=TTL)
    assert (row.failed_attempts, row.closed_at) == (0, None)


async def test_the_code_expires_after_the_ttl(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    late = await waiting(client, officer_headers)
    in_time = await waiting(client, officer_headers)
    late_code = await send_and_read(app, client, officer_headers, late)
    in_time_code = await send_and_read(app, client, officer_headers, in_time)

    clock.advance(TTL - 1)
    response = await confirm(client, officer_headers, in_time, in_time_code)
    assert response.status_code == 200, response.text

    clock.advance(1)
    assert_code_refused(await confirm(client, officer_headers, late, late_code), INVALID)
    fetched = await client.get(f"/v1/requests/{late}", headers=officer_headers)
    assert fetched.json()["status"] == "awaiting_verification"
    rejected = (await events_of(client, officer_headers, late))[-1]
    assert rejected["type"] == "request.verification_code_rejected"
    assert rejected["data"] == {"method": "email_code", "reason": "expired"}

    # A new code works again.
    clock.advance(60)
    fresh = await send_and_read(app, client, officer_headers, late)
    assert (await confirm(client, officer_headers, late, fresh)).status_code == 200


async def test_five_wrong_attempts_kill_the_code(
    app: FastAPI,
    client: AsyncClient,
    clock: FakeClock,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    request_id = await waiting(client, integration_headers)
    code = await send_and_read(app, client, integration_headers, request_id)

    # Near misses and far misses get the very same answer.
    answers = []
    for guess in (wrong(code), wrong(code, 500_000), wrong(code, -1), wrong(code, 7)):
        clock.advance(1)
        response = await confirm(client, integration_headers, request_id, guess)
        answers.append(assert_code_refused(response, INVALID))
    assert all(answer == answers[0] for answer in answers)

    clock.advance(1)
    fifth = await confirm(client, integration_headers, request_id, wrong(code, 2))
    assert_code_refused(fifth, TOO_MANY)
    # Dead: even the right code is refused until a new one is sent.
    clock.advance(1)
    assert_code_refused(await confirm(client, integration_headers, request_id, code), TOO_MANY)

    fetched = (await client.get(f"/v1/requests/{request_id}", headers=officer_headers)).json()
    assert fetched["status"] == "awaiting_verification"
    assert fetched["verification"]["status"] == "failed"
    assert fetched["deadline"]["clock_started_on"] is None
    (row,) = await code_rows(app, request_id)
    assert row.failed_attempts == 5
    assert row.closed_at is not None

    events = await events_of(client, officer_headers, request_id)
    assert [event["type"] for event in events] == [
        "request.received",
        "request.verification_requested",
        *["request.verification_code_rejected"] * 4,
        "request.verification_failed",
        "request.verification_code_rejected",
    ]
    assert [event["data"].get("failed_attempts") for event in events[2:6]] == [1, 2, 3, 4]
    assert events[6]["data"] == {
        "method": "email_code",
        "reason": "too_many_attempts",
        "failed_attempts": 5,
    }
    assert events[7]["data"]["reason"] == "code_locked"
    assert code not in json.dumps(events)
    # Webhooks hear of the request for a code and of its death, not of each attempt.
    assert await outbox_types(app, request_id) == [
        "request.received",
        "request.verification_requested",
        "request.verification_failed",
    ]

    # A new code (after the cooldown) starts afresh.
    clock.advance(60)
    fresh = await send_and_read(app, client, integration_headers, request_id)
    pending = (await client.get(f"/v1/requests/{request_id}", headers=officer_headers)).json()
    assert pending["verification"]["status"] == "pending"
    confirmed = await confirm(client, integration_headers, request_id, fresh)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "in_progress"


async def test_a_new_code_supersedes_the_old_one(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers)
    first = await send_and_read(app, client, officer_headers, request_id)
    second = first
    while second == first:  # one chance in a million that the new code is the same
        clock.advance(60)
        second = await send_and_read(app, client, officer_headers, request_id)

    assert_code_refused(await confirm(client, officer_headers, request_id, first), INVALID)
    rows = await code_rows(app, request_id)
    assert all(row.closed_at is not None for row in rows[:-1])
    assert rows[-1].closed_at is None

    confirmed = await confirm(client, officer_headers, request_id, second)
    assert confirmed.status_code == 200, confirmed.text
    assert all(row.closed_at is not None for row in await code_rows(app, request_id))


async def test_resend_cooldown_and_hourly_limit_answer_429_with_retry_after(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers)
    assert (await send(client, officer_headers, request_id)).status_code == 200

    clock.advance(30)
    too_soon = await send(client, officer_headers, request_id)
    cooldown = assert_problem(too_soon, 429)
    assert too_soon.headers["retry-after"] == "30"

    clock.advance(30)  # 60 s after the first send
    for _ in range(4):
        response = await send(client, officer_headers, request_id)
        assert response.status_code == 200, response.text
        clock.advance(60)
    # Five sends, at 0, 60, 120, 180 and 240 s; now 300 s.
    over_limit = await send(client, officer_headers, request_id)
    hourly = assert_problem(over_limit, 429)
    assert over_limit.headers["retry-after"] == str(3600 - 300)
    # The answer does not say which limit was hit beyond the wait.
    assert hourly == cooldown
    assert hourly["detail"] == "A code was requested too recently or too often; retry later."

    clock.set(START + timedelta(seconds=3599))
    assert (await send(client, officer_headers, request_id)).headers["retry-after"] == "1"
    clock.set(START + timedelta(seconds=3600))  # the first send has left the rolling hour
    assert (await send(client, officer_headers, request_id)).status_code == 200

    # Refused sends queue nothing and record nothing.
    assert (await mail_kinds(app, request_id)).count("verification_code") == 6
    assert (await event_types(client, officer_headers, request_id)).count(
        "request.verification_requested"
    ) == 6
    assert len(await code_rows(app, request_id)) == 6


async def test_send_is_refused_without_an_email_address_or_outside_awaiting(
    app: FastAPI,
    client: AsyncClient,
    clock: FakeClock,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    phone_only = await waiting(client, officer_headers, subject={"phone": "+441632960001"})
    body = assert_problem(await send(client, officer_headers, phone_only), 422)
    assert body["title"] == "No email address"
    assert "+44" not in json.dumps(body)
    assert await mail_kinds(app, phone_only) == []
    assert await event_types(client, officer_headers, phone_only) == ["request.received"]
    assert await code_rows(app, phone_only) == []

    rejected = await waiting(client, officer_headers)
    response = await client.post(
        f"/v1/requests/{rejected}/reject",
        headers=officer_headers,
        json={"reason": "identity_not_verified"},
    )
    assert response.status_code == 200, response.text
    for response in (
        await send(client, officer_headers, rejected),
        await confirm(client, officer_headers, rejected, "123456"),
    ):
        assert assert_problem(response, 409)["current_status"] == "rejected"


async def test_confirm_without_a_code_sent_and_malformed_codes(
    client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers)
    assert_code_refused(await confirm(client, officer_headers, request_id, "123456"), INVALID)
    for malformed in ["12345", "1234567", "12a456", "١٢٣٤٥٦", "", "jane@example.com"]:
        response = await confirm(client, officer_headers, request_id, malformed)
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"][-1] == "code"
        assert "jane@example.com" not in response.text
    # Spaces the subject may type are ignored.
    response = await confirm(client, officer_headers, request_id, " 123 456 ")
    assert_code_refused(response, INVALID)


async def test_who_may_send_and_confirm(
    app: FastAPI,
    client: AsyncClient,
    clock: FakeClock,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    other_id, other_secret = await new_api_client(client, admin_headers, "integration")
    other = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
    own = await waiting(client, integration_headers)

    # Another integration cannot tell the request exists.
    assert_problem(await send(client, other, own), 404)
    assert_problem(await confirm(client, other, own, "123456"), 404)
    # Document checks and attestations are for officers, even on the integration's own request.
    for body in (DOCUMENT_PASSED, ATTESTATION):
        response = await client.post(
            f"/v1/requests/{own}/verification", headers=integration_headers, json=body
        )
        assert_problem(response, 403)
    assert await event_types(client, officer_headers, own) == ["request.received"]

    # Officers may drive the flow for a request an integration submitted, and vice versa.
    code = await send_and_read(app, client, officer_headers, own)
    assert (await confirm(client, integration_headers, own, code)).status_code == 200


# ---------------------------------------------------------------- the clock


async def test_clock_starts_on_the_local_date_of_confirmation(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    # 23:30 UTC on 30 June is 00:30 on 1 July in London.
    clock.set(datetime(2026, 6, 30, 23, 20, tzinfo=UTC))
    request_id = await waiting(client, officer_headers, received_at="2026-06-29T10:00:00Z")
    code = await send_and_read(app, client, officer_headers, request_id)
    clock.set(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    confirmed = (await confirm(client, officer_headers, request_id, code)).json()
    assert confirmed["deadline"]["clock_started_on"] == "2026-07-01"
    # 1 August 2026 is a Saturday: the next working day.
    assert confirmed["deadline"]["due_date"] == "2026-08-03"


# ---------------------------------------------------------------- document checks


async def test_failed_document_check_tells_the_subject_what_to_send_instead(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers)
    response = await client.post(
        f"/v1/requests/{request_id}/verification", headers=officer_headers, json=DOCUMENT_FAILED
    )
    assert response.status_code == 200, response.text
    assert response.json()["verification"] == {
        "status": "failed",
        "method": "document",
        "verified_at": None,
    }
    assert await mail_kinds(app, request_id) == ["acknowledgement", "verification_failed"]
    message = await last_message(app, request_id, "verification_failed")
    assert "passport" in message
    assert "driving licence" in message
    assert "one-time code" in message
    failed = (await events_of(client, officer_headers, request_id))[-1]
    assert failed["type"] == "request.verification_failed"
    assert failed["data"]["subject_notified"] is True
    assert failed["data"]["document_type"] == "passport"
    assert await outbox_types(app, request_id) == [
        "request.received",
        "request.verification_failed",
    ]

    clock.advance(3600 * 24)
    passed = await client.post(
        f"/v1/requests/{request_id}/verification", headers=officer_headers, json=DOCUMENT_PASSED
    )
    assert passed.status_code == 200, passed.text
    assert passed.json()["deadline"]["clock_started_on"] == "2026-09-04"


async def test_failed_document_check_without_an_email_is_still_audited(
    client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers, subject={"customer_id": "C-1"})
    response = await client.post(
        f"/v1/requests/{request_id}/verification", headers=officer_headers, json=DOCUMENT_FAILED
    )
    assert response.status_code == 200, response.text
    failed = (await events_of(client, officer_headers, request_id))[-1]
    assert failed["type"] == "request.verification_failed"
    assert failed["data"]["subject_notified"] is False


# ---------------------------------------------------------------- officer attestation


async def test_officer_attestation_for_an_objection(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    objection = await waiting(
        client, officer_headers, type="objection", details=TYPE_DETAILS["objection"]
    )
    attested = await client.post(
        f"/v1/requests/{objection}/verification", headers=officer_headers, json=ATTESTATION
    )
    assert attested.status_code == 200, attested.text
    body = attested.json()
    assert body["status"] == "in_progress"
    assert body["verification"]["method"] == "officer_attestation"
    # Nothing was asked of the subject, so the clock runs from receipt.
    assert body["deadline"]["clock_started_on"] == "2026-08-20"
    event = (await events_of(client, officer_headers, objection))[-1]
    assert event["type"] == "request.verified"
    assert event["data"]["note"] == ATTESTATION["note"]
    assert event["data"]["attested_by"] == event["actor"]

    # Once a code was asked for, identity confirmed later starts the clock that day.
    restriction = await waiting(
        client, officer_headers, type="restriction", details=TYPE_DETAILS["restriction"]
    )
    assert (await send(client, officer_headers, restriction)).status_code == 200
    clock.advance(3600 * 24)
    attested = await client.post(
        f"/v1/requests/{restriction}/verification", headers=officer_headers, json=ATTESTATION
    )
    assert attested.json()["deadline"]["clock_started_on"] == "2026-09-04"
    # The outstanding code is closed.
    assert all(row.closed_at is not None for row in await code_rows(app, restriction))

    response = await client.post(
        f"/v1/requests/{objection}/verification",
        headers=officer_headers,
        json={"method": "officer_attestation"},
    )
    assert_problem(response, 422)


# ---------------------------------------------------------------- policy


async def test_default_policy_table_through_the_api(
    client: AsyncClient,
    integration_credentials: tuple[str, str],
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    """Every request type x every method: allowed -> verified (or code sent), else 422."""
    bodies = {
        "email_code": EMAIL_CODE,
        "document": DOCUMENT_PASSED,
        "officer_attestation": ATTESTATION,
    }
    mismatches = []
    for request_type, details in TYPE_DETAILS.items():
        allowed = DEFAULT_ALLOWED[request_type]
        for method, body in bodies.items():
            created = await create_request(
                client, integration_headers, type=request_type, details=details
            )
            response = await client.post(
                f"/v1/requests/{created['id']}/verification", headers=officer_headers, json=body
            )
            expected = 200 if method in allowed else 422
            cell = f"{request_type} x {method}"
            if response.status_code != expected:
                mismatches.append(f"{cell}: expected {expected}, got {response.status_code}")
            elif expected == 422:
                problem = assert_problem(response, 422)
                assert problem["title"] == "Verification method not allowed", cell
                assert set(problem["allowed_methods"]) == allowed, cell
                assert ", ".join(problem["allowed_methods"]) in problem["detail"], cell
        response = await client.post(
            "/v1/requests",
            headers=integration_headers,
            json=request_body(
                type=request_type,
                details=details,
                identity_assertion=identity_assertion(*integration_credentials),
            ),
        )
        expected = 201 if "identity_assertion" in allowed else 422
        if response.status_code != expected:
            mismatches.append(f"{request_type} x identity_assertion: got {response.status_code}")
    assert not mismatches, "\n".join(mismatches)


@pytest.fixture
async def strict_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_url, verification_policy={"access": ["document"], "objection": ["email_code"]}
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_configured_policy_overrides_the_defaults(strict_app: FastAPI) -> None:
    async with AsyncClient(transport=ASGITransport(app=strict_app), base_url="http://t") as client:
        admin = {"Authorization": f"Bearer {await get_token(client, ADMIN_ID, ADMIN_SECRET)}"}
        integration = await new_api_client(client, admin, "integration")
        headers = {"Authorization": f"Bearer {await get_token(client, *integration)}"}

        access = await create_request(client, headers)
        problem = assert_problem(await send(client, admin, access["id"]), 422)
        assert problem["allowed_methods"] == ["document"]
        assert problem["detail"] == (
            "Identity for access requests cannot be verified by email_code; "
            "allowed methods: document."
        )
        response = await client.post(
            "/v1/requests",
            headers=headers,
            json=request_body(identity_assertion=identity_assertion(*integration)),
        )
        assert assert_problem(response, 422)["allowed_methods"] == ["document"]
        response = await client.post(
            f"/v1/requests/{access['id']}/verification", headers=admin, json=DOCUMENT_PASSED
        )
        assert response.status_code == 200, response.text

        objection = await create_request(
            client, headers, type="objection", details=TYPE_DETAILS["objection"]
        )
        response = await client.post(
            f"/v1/requests/{objection['id']}/verification", headers=admin, json=ATTESTATION
        )
        assert assert_problem(response, 422)["allowed_methods"] == ["email_code"]
        # Types the policy leaves out keep the defaults.
        erasure = await create_request(client, headers, type="erasure")
        assert (await send(client, admin, erasure["id"])).status_code == 200


# ---------------------------------------------------------------- messages from the lifecycle


async def test_each_lifecycle_action_queues_its_message(
    app: FastAPI,
    client: AsyncClient,
    clock: FakeClock,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    request_id = await waiting(client, integration_headers)
    acknowledgement = await last_message(app, request_id, "acknowledgement")
    assert "confirm your identity" in acknowledgement

    async def act(action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        clock.advance(60)
        response = await client.post(
            f"/v1/requests/{request_id}/{action}", headers=officer_headers, json=body
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    await act("verification", DOCUMENT_PASSED)
    await act("pause", {"reason": "awaiting_clarification"})
    await act("resume")
    extended = await act("extend", {"reason": "Records held in four separate systems"})
    # Three months from 3 September, plus the one day the clock stood still.
    assert extended["deadline"]["due_date"] == "2026-12-04"
    extension = await last_message(app, request_id, "extension")
    assert "Records held in four separate systems" in extension
    assert "Friday 4 December 2026" in extension
    await act("complete", {"summary": "Copy of all records sent"})
    completion = await last_message(app, request_id, "completion")
    assert "Copy of all records sent" in completion
    assert " ".join(HOW_TO_COLLECT.split()) in " ".join(completion.split())
    # Verification, pause and resume tell the subject nothing by email.
    assert await mail_kinds(app, request_id) == ["acknowledgement", "extension", "completion"]

    rejected_id = await waiting(client, integration_headers)
    response = await client.post(
        f"/v1/requests/{rejected_id}/reject",
        headers=officer_headers,
        json={"reason": "excessive", "explanation": "Third identical request this month"},
    )
    assert response.status_code == 200, response.text
    rejection = await last_message(app, rejected_id, "rejection")
    assert "Third identical request this month" in rejection
    assert "Information Commissioner's Office" in rejection
    assert await mail_kinds(app, rejected_id) == ["acknowledgement", "rejection"]

    cancelled_id = await waiting(client, integration_headers)
    response = await client.post(f"/v1/requests/{cancelled_id}/cancel", headers=integration_headers)
    assert response.status_code == 200, response.text
    assert await mail_kinds(app, cancelled_id) == ["acknowledgement"]

    # A refused action queues nothing: the transaction rolled back.
    response = await client.post(
        f"/v1/requests/{rejected_id}/extend", headers=officer_headers, json={"reason": "x"}
    )
    assert_problem(response, 409)
    assert await mail_kinds(app, rejected_id) == ["acknowledgement", "rejection"]


async def test_acknowledgement_of_an_asserted_request_gives_the_due_date(
    app: FastAPI,
    client: AsyncClient,
    integration_credentials: tuple[str, str],
    integration_headers: dict[str, str],
) -> None:
    # Real time: identity assertions carry real timestamps.
    created = await create_request(
        client, integration_headers, identity_assertion=identity_assertion(*integration_credentials)
    )
    assert created["status"] == "in_progress"
    text = await last_message(app, created["id"], "acknowledgement")
    due = date.fromisoformat(created["deadline"]["due_date"])
    assert f"{due.strftime('%A')} {due.day} {due.strftime('%B %Y')}" in text
    assert "confirm your identity" not in text


async def test_odd_bodies_never_cause_500_nor_leak_the_code(
    app: FastAPI, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        request_id = await waiting(client, officer_headers)
        code = await send_and_read(app, client, officer_headers, request_id)
        rng = random.Random(20260903)
        values: list[Any] = [None, "", " ", 0, 123456, -1, 1e308, True, [], {}, "1" * 5000]
        fullwidth = "\uff11\uff12\uff13\uff14\uff15\uff16"
        values += ["12 34 56", "123456\n", fullwidth, "0x1E240", "123456" * 2, "-12345"]
        failures = []
        for _ in range(60):
            clock.advance(1)
            if rng.random() < 0.5:
                url = f"/v1/requests/{request_id}/verification/confirm"
                body: Any = {"code": rng.choice(values)}
            else:
                url = f"/v1/requests/{request_id}/verification"
                body = {"method": rng.choice([*values, "email_code", "officer_attestation"])}
                if rng.random() < 0.5:
                    body["note"] = rng.choice(values)
            if rng.random() < 0.2:
                body = rng.choice(values)
            response = await client.post(url, headers=officer_headers, json=body)
            if response.status_code >= 500 or code in response.text:
                failures.append(f"{body!r}: {response.status_code}")
        assert not failures, failures


async def test_concurrent_sends_and_attempts_are_counted_exactly(
    app: FastAPI, client: AsyncClient, clock: FakeClock, officer_headers: dict[str, str]
) -> None:
    request_id = await waiting(client, officer_headers)
    sends = await asyncio.gather(*(send(client, officer_headers, request_id) for _ in range(6)))
    assert sorted(response.status_code for response in sends) == [200] + [429] * 5
    code = await sent_code(app, request_id)

    clock.advance(1)
    guesses = [wrong(code, offset) for offset in range(1, 9)]
    answers = await asyncio.gather(
        *(confirm(client, officer_headers, request_id, guess) for guess in guesses)
    )
    titles = sorted(response.json()["title"] for response in answers)
    assert titles == sorted([INVALID[0]] * 4 + [TOO_MANY[0]] * 4)
    (row,) = await code_rows(app, request_id)
    assert (row.failed_attempts, row.closed_at is not None) == (5, True)
    assert (await outbox_types(app, request_id)).count("request.verification_failed") == 1
