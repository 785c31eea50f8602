"""Correspondence end to end on SQLite and PostgreSQL: the clock a clarification stops and a
reply restarts, delivery through a real SMTP server, validation, status rules, encryption."""

import json
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select, text, update

from app import deadlines
from app.core.config import Settings
from app.correspondence import service
from app.mail import sender
from app.main import create_app
from app.models import MailMessage, OutboxEvent, RequestEvent
from app.worker import Worker
from tests.conftest import ADMIN_ID, ADMIN_SECRET, get_token, make_settings
from tests.correspondence.conftest import FakeClock
from tests.deadline_helpers import assert_problem
from tests.factories import create_request, verified_request
from tests.smtp_server import SmtpServer

# Monday 2 November 2026, 10:00 in London (GMT: the local date is the UTC date).
DAY_0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
QUESTION = "Which email address did you use for your old account?"
ANSWER = "It was jane.work@example.org; I closed the account in 2024."


def messages_url(request_id: str) -> str:
    return f"/v1/requests/{request_id}/messages"


async def send(client: AsyncClient, headers: dict[str, str], request_id: str, **body: Any) -> Any:
    return await client.post(
        messages_url(request_id), headers=headers, json={"text": QUESTION, **body}
    )


async def reply(
    client: AsyncClient, headers: dict[str, str], request_id: str, received_at: datetime
) -> Any:
    return await client.post(
        messages_url(request_id) + "/reply",
        headers=headers,
        json={"text": ANSWER, "received_at": received_at.isoformat()},
    )


async def events(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[Any]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def thread(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[Any]:
    response = await client.get(messages_url(request_id), headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# ---------------------------------------------------------------- the clock


async def test_reply_six_days_after_a_clarification_moves_the_due_date_by_seven_days(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    clock = FakeClock(DAY_0)
    app.state.clock = clock
    dsr = await verified_request(client, integration_headers, officer_headers)
    started_on = date(2026, 11, 2)
    assert dsr["deadline"]["clock_started_on"] == started_on.isoformat()
    unpaused_due = deadlines.compute_due_date(regulation="uk_gdpr", clock_started_on=started_on)
    assert dsr["deadline"]["due_date"] == unpaused_due.isoformat()

    # Day D: the officer asks; the clock stops that day.
    clock.set(datetime(2026, 11, 10, 11, 0, tzinfo=UTC))
    sent = await send(client, officer_headers, dsr["id"], kind="clarification")
    assert sent.status_code == 201, sent.text
    paused = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert paused["status"] == "paused"
    assert paused["deadline"]["paused_since"] == "2026-11-10"

    # The answer arrived on D+6 and is recorded two days later: the clock restarts on D+6.
    received_at = datetime(2026, 11, 16, 15, 30, tzinfo=UTC)
    clock.set(datetime(2026, 11, 18, 9, 0, tzinfo=UTC))
    answered = await reply(client, officer_headers, dsr["id"], received_at)
    assert answered.status_code == 201, answered.text
    assert answered.json()["direction"] == "inbound"
    assert answered.json()["received_at"].startswith("2026-11-16T15:30:00")

    resumed = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    stopped = deadlines.paused_day_count(date(2026, 11, 10), date(2026, 11, 16))
    assert stopped == 7  # D..D+6, both ends counted
    expected_due = deadlines.compute_due_date(
        regulation="uk_gdpr", clock_started_on=started_on, paused_days=stopped
    )
    assert resumed["status"] == "in_progress"
    assert resumed["deadline"]["paused_days"] == 7
    assert resumed["deadline"]["due_date"] == expected_due.isoformat()
    # Wednesday 2 December 2026 + 7 days: Wednesday 9 December (no weekend to roll over).
    assert (unpaused_due, expected_due) == (date(2026, 12, 2), date(2026, 12, 9))

    trail = await events(client, officer_headers, dsr["id"])
    types = [event["type"] for event in trail]
    assert types[-4:] == [
        "request.message_sent",
        "request.paused",
        "request.reply_recorded",
        "request.resumed",
    ]
    message_sent, paused_event, reply_recorded, resumed_event = trail[-4:]
    assert message_sent["data"] == {
        "message_id": sent.json()["id"],
        "kind": "clarification",
        "channel": "email",
    }
    assert paused_event["data"]["reason"] == "awaiting_clarification"
    assert reply_recorded["data"]["message_id"] == answered.json()["id"]
    assert resumed_event["data"] == {
        "reason": "awaiting_clarification",
        "paused_on": "2026-11-10",
        "resumed_on": "2026-11-16",
        "days_not_counted": 7,
    }
    # The webhook events the lifecycle announces, in order.
    async with app.state.sessionmaker() as session:
        announced = (
            await session.execute(
                select(OutboxEvent.event_type).where(
                    OutboxEvent.event_type.in_(["request.paused", "request.resumed"])  # type: ignore[attr-defined]
                )
            )
        ).scalars()
        assert sorted(announced) == ["request.paused", "request.resumed"]


async def test_second_clarification_while_paused_does_not_pause_again(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    clock = FakeClock(DAY_0)
    app.state.clock = clock
    dsr = await verified_request(client, integration_headers, officer_headers)
    assert (await send(client, officer_headers, dsr["id"], kind="clarification")).status_code == 201
    clock.advance(days=2)
    second = await send(client, officer_headers, dsr["id"], kind="clarification")
    assert second.status_code == 201, second.text
    types = [event["type"] for event in await events(client, officer_headers, dsr["id"])]
    assert types.count("request.paused") == 1
    assert types.count("request.message_sent") == 2
    now = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert now["deadline"]["paused_since"] == "2026-11-02"

    # The reply answers the latest clarification: it may not predate it.
    early = await reply(client, officer_headers, dsr["id"], DAY_0 + timedelta(days=1))
    assert_problem(early, 422)
    clock.advance(days=1)
    ok = await reply(client, officer_headers, dsr["id"], clock.now - timedelta(hours=1))
    assert ok.status_code == 201, ok.text
    resumed = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert resumed["deadline"]["paused_days"] == 4  # 2, 3, 4 and 5 November


async def test_clarification_status_rules(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    app.state.clock = FakeClock(DAY_0)
    waiting = await create_request(client, integration_headers)
    refused = assert_problem(
        await send(client, officer_headers, waiting["id"], kind="clarification"), 409
    )
    assert "information" in refused["detail"]
    assert refused["current_status"] == "awaiting_verification"
    # Information may be sent in any status, and changes nothing about the clock.
    info = await send(client, officer_headers, waiting["id"], kind="information")
    assert info.status_code == 201, info.text
    after = (await client.get(f"/v1/requests/{waiting['id']}", headers=officer_headers)).json()
    assert after["status"] == "awaiting_verification"

    fee = await verified_request(client, integration_headers, officer_headers)
    paused = await client.post(
        f"/v1/requests/{fee['id']}/pause",
        headers=officer_headers,
        json={"reason": "awaiting_fee"},
    )
    assert paused.status_code == 200
    assert_problem(await send(client, officer_headers, fee["id"], kind="clarification"), 409)
    # A reply on a request paused for a fee is recorded but does not resume it.
    assert (await send(client, officer_headers, fee["id"], kind="information")).status_code == 201
    assert (await reply(client, officer_headers, fee["id"], DAY_0)).status_code == 201
    still = (await client.get(f"/v1/requests/{fee['id']}", headers=officer_headers)).json()
    assert (still["status"], still["deadline"]["paused_days"]) == ("paused", 0)

    closed = await create_request(client, integration_headers)
    cancelled = await client.post(f"/v1/requests/{closed['id']}/cancel", headers=officer_headers)
    assert cancelled.status_code == 200
    assert_problem(await send(client, officer_headers, closed["id"], kind="clarification"), 409)
    assert (
        await send(client, officer_headers, closed["id"], kind="information")
    ).status_code == 201


# ---------------------------------------------------------------- validation


async def test_reply_validation(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    clock = FakeClock(DAY_0)
    app.state.clock = clock
    dsr = await verified_request(client, integration_headers, officer_headers)
    nothing = assert_problem(await reply(client, officer_headers, dsr["id"], DAY_0), 409)
    assert nothing["title"] == "Nothing to reply to"

    clock.advance(days=1)
    assert (await send(client, officer_headers, dsr["id"], kind="clarification")).status_code == 201
    clock.advance(days=1)
    future = await reply(client, officer_headers, dsr["id"], clock.now + timedelta(minutes=5))
    assert assert_problem(future, 422)["title"] == "Reply received in the future"
    before = await reply(client, officer_headers, dsr["id"], clock.now - timedelta(days=2))
    assert assert_problem(before, 422)["title"] == "Reply received before the question"

    for body in (
        {"text": "", "received_at": DAY_0.isoformat()},
        {"text": "x" * 20001, "received_at": DAY_0.isoformat()},
        {"text": "ok", "received_at": "2026-11-03"},  # a date, not a timestamp
        {"text": "ok", "received_at": "2026-11-03T10:00:00"},  # no offset
        {"text": "ok"},
        {"text": "ok", "received_at": DAY_0.isoformat(), "extra": 1},
    ):
        response = await client.post(
            messages_url(dsr["id"]) + "/reply", headers=officer_headers, json=body
        )
        assert_problem(response, 422)
    for body in (
        {"kind": "clarification", "text": ""},
        {"kind": "clarification", "text": "x" * 5001},
        {"kind": "gossip", "text": "hello"},
        {"kind": "information", "text": "hi", "channel": "pigeon"},
    ):
        response = await client.post(messages_url(dsr["id"]), headers=officer_headers, json=body)
        assert_problem(response, 422)
    # Nothing refused left a trace: still paused, one message.
    assert len(await thread(client, officer_headers, dsr["id"])) == 1
    # Dated earlier on the day the question went out (known to the day, like a letter): kept.
    same_day = await reply(client, officer_headers, dsr["id"], DAY_0 + timedelta(hours=23))
    assert same_day.status_code == 201, same_day.text


async def test_no_email_address_is_409_and_a_letter_can_be_recorded(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    app.state.clock = FakeClock(DAY_0)
    dsr = await verified_request(
        client, integration_headers, officer_headers, subject={"phone": "+441632960001"}
    )
    refused = assert_problem(
        await send(client, officer_headers, dsr["id"], kind="clarification"), 409
    )
    assert refused["title"] == "No email address"
    assert '"channel": "post"' in refused["detail"]
    unchanged = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert unchanged["status"] == "in_progress"

    letter = await send(client, officer_headers, dsr["id"], kind="clarification", channel="post")
    assert letter.status_code == 201, letter.text
    assert letter.json()["channel"] == "post"
    assert letter.json()["delivery"]["status"] == "sent"
    paused = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert paused["status"] == "paused"
    async with app.state.sessionmaker() as session:
        assert (await session.execute(select(MailMessage))).first() is None


# ---------------------------------------------------------------- delivery


async def test_delivery_goes_from_queued_to_sent_through_smtp(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    worker: Worker,
    smtp: SmtpServer,
) -> None:
    app.state.clock = FakeClock(DAY_0)
    dsr = await verified_request(client, integration_headers, officer_headers)
    worded = "Line one <b>not bold</b>\n\nSecond paragraph & more."
    sent = await send(client, officer_headers, dsr["id"], kind="information", text=worded)
    assert sent.status_code == 201, sent.text
    view = sent.json()
    assert view["delivery"] == {"status": "queued", "sent_at": None, "attempts": 0}
    assert (view["direction"], view["kind"], view["text"]) == ("outbound", "information", worded)
    assert view["author"] == view["recorded_by"] and view["author"]

    (listed,) = await thread(client, officer_headers, dsr["id"])
    assert listed["delivery"]["status"] == "queued"

    smtp.messages.clear()  # the acknowledgement and anything else queued before
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(MailMessage)
            .where(MailMessage.kind != "information")  # type: ignore[arg-type]
            .values(status="sent")
        )
    await worker.run_once(sweep=False)

    (listed,) = await thread(client, officer_headers, dsr["id"])
    assert listed["delivery"]["status"] == "sent"
    assert listed["delivery"]["attempts"] == 1 and listed["delivery"]["sent_at"]
    assert listed["text"] == worded  # the mail row is wiped; the message keeps its text

    (mail,) = smtp.messages
    assert mail.rcpt_tos == ["jane.doe@example.com"]
    assert str(mail.message["Subject"]) == "About your data protection request"
    plain = mail.part("text/plain").replace("\r\n", "\n")
    assert "Borchester Office Supplies Ltd is writing about your" in plain
    assert worded in plain and f"Our reference: {dsr['id']}" in plain
    html = mail.part("text/html")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>" not in html
    assert "Second paragraph &amp; more." in html

    # The outcome outlives the outbox row: the sweep keeps it on the message.
    await worker.sweep()
    async with app.state.sessionmaker.begin() as session:
        await session.execute(delete(MailMessage))
    (kept,) = await thread(client, officer_headers, dsr["id"])
    assert kept["delivery"] == listed["delivery"]


async def test_delivery_failed_when_smtp_is_unreachable(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    worker: Worker,
    smtp: SmtpServer,
) -> None:
    app.state.clock = FakeClock(DAY_0)
    dsr = await verified_request(client, integration_headers, officer_headers)
    assert (await send(client, officer_headers, dsr["id"], kind="clarification")).status_code == 201
    smtp.stop()
    await worker.run_once(sweep=False)
    (listed,) = await thread(client, officer_headers, dsr["id"])
    assert listed["delivery"]["status"] == "queued" and listed["delivery"]["attempts"] == 1

    # Skip the retry schedule to the last attempt.
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(MailMessage).values(attempt_count=sender.MAX_ATTEMPTS - 1, next_attempt_at=DAY_0)
        )
    await worker.run_once(sweep=False)
    (listed,) = await thread(client, officer_headers, dsr["id"])
    assert listed["delivery"]["status"] == "failed"
    assert listed["delivery"]["attempts"] == sender.MAX_ATTEMPTS
    assert listed["delivery"]["sent_at"] is None
    await worker.sweep()
    async with app.state.sessionmaker.begin() as session:
        await session.execute(delete(MailMessage))
    (kept,) = await thread(client, officer_headers, dsr["id"])
    assert kept["delivery"] == listed["delivery"]


# ---------------------------------------------------------------- the thread and privacy


async def test_thread_is_oldest_first_and_pages(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    clock = FakeClock(DAY_0)
    app.state.clock = clock
    dsr = await verified_request(client, integration_headers, officer_headers)
    other = await verified_request(client, integration_headers, officer_headers)
    sent = []
    for index in range(3):
        clock.advance(hours=1)
        response = await send(
            client, officer_headers, dsr["id"], kind="information", text=f"update {index}"
        )
        sent.append(response.json()["id"])
    clock.advance(hours=1)
    answered = await reply(client, officer_headers, dsr["id"], clock.now - timedelta(minutes=10))
    assert (await send(client, officer_headers, other["id"], kind="information")).status_code == 201

    first = await client.get(messages_url(dsr["id"]), headers=officer_headers, params={"limit": 3})
    assert first.status_code == 200
    assert [item["id"] for item in first.json()["items"]] == sent
    cursor = first.json()["next_cursor"]
    assert cursor
    second = await client.get(
        messages_url(dsr["id"]), headers=officer_headers, params={"limit": 3, "cursor": cursor}
    )
    (inbound,) = second.json()["items"]
    assert second.json()["next_cursor"] is None
    assert inbound["id"] == answered.json()["id"]
    assert (inbound["direction"], inbound["kind"], inbound["author"]) == ("inbound", "reply", None)
    assert inbound["delivery"] is None and inbound["text"] == ANSWER

    # Officers only: an integration is refused even on its own request.
    assert (
        await client.get(messages_url(dsr["id"]), headers=integration_headers)
    ).status_code == 403
    assert_problem(
        await client.get(messages_url(dsr["id"]), headers=officer_headers, params={"cursor": "x"}),
        400,
    )
    assert_problem(
        await client.get(messages_url(dsr["id"]), headers=officer_headers, params={"size": 3}),
        422,
    )


async def test_texts_are_encrypted_at_rest_and_kept_out_of_audit_and_webhooks(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    clock = FakeClock(DAY_0)
    app.state.clock = clock
    dsr = await verified_request(client, integration_headers, officer_headers)
    assert (await send(client, officer_headers, dsr["id"], kind="clarification")).status_code == 201
    clock.advance(days=1)
    assert (await reply(client, officer_headers, dsr["id"], clock.now)).status_code == 201

    async with app.state.sessionmaker() as session:
        raw = (await session.execute(text("SELECT text_encrypted FROM request_messages"))).scalars()
        stored = list(raw)
        audit = [
            json.dumps(data)
            for data in (await session.execute(select(RequestEvent.data))).scalars()
        ]
        payloads = [
            json.dumps(payload)
            for payload in (await session.execute(select(OutboxEvent.payload))).scalars()
        ]
    assert len(stored) == 2
    for ciphertext in stored:
        assert ciphertext.startswith("gAAAA")  # Fernet
        for secret in (QUESTION, ANSWER, "jane.work", "old account"):
            assert secret not in ciphertext
    for written in audit + payloads:
        for secret in (QUESTION, ANSWER, "jane.work"):
            assert secret not in written
    # The API reads them back.
    texts = [item["text"] for item in await thread(client, officer_headers, dsr["id"])]
    assert texts == [QUESTION, ANSWER]


async def test_access_pack_thread_only_where_the_register_declares_it(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    app.state.clock = FakeClock(DAY_0)
    dsr = await verified_request(client, integration_headers, officer_headers)
    assert (await send(client, officer_headers, dsr["id"], kind="information")).status_code == 201

    built_in = resources.files("app.register").joinpath("processing_register.yaml")
    register = yaml.safe_load(built_in.read_text("utf-8"))
    del register["data_categories"]["correspondence"]
    for activity in register["activities"]:
        activity["categories"] = [c for c in activity["categories"] if c != "correspondence"]
    path = tmp_path / "register.yaml"
    path.write_text(yaml.safe_dump(register), "utf-8")
    without = settings.model_copy(update={"processing_register_path": str(path)})

    request_id = uuid.UUID(dsr["id"])
    async with app.state.sessionmaker() as session:
        declared = await service.pack_thread(session, settings=settings, request_id=request_id)
        undeclared = await service.pack_thread(session, settings=without, request_id=request_id)
    assert [row[-1] for row in declared] == [QUESTION]
    assert undeclared == []


async def test_without_smtp_the_officers_text_is_not_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(database_url))  # no DSR_SMTP_HOST: mail goes to the log
    async with app.router.lifespan_context(app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            admin = {"Authorization": f"Bearer {await get_token(client, ADMIN_ID, ADMIN_SECRET)}"}
            dsr = await verified_request(client, admin, admin)
            assert (await send(client, admin, dsr["id"], kind="clarification")).status_code == 201
        worker = Worker(app.state.settings, app.state.sessionmaker)
        try:
            with caplog.at_level(logging.INFO, logger="app"):
                await worker.run_once(sweep=False)
        finally:
            await worker.close()
    logged = caplog.text
    assert "(clarification) not sent, no DSR_SMTP_HOST configured" in logged
    assert "the body of an officer's message is not logged" in logged
    assert QUESTION not in logged
