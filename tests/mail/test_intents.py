"""The acknowledgement is queued at intake as an intent (no subject, no bodies, a context free
of personal data) and rendered by the worker at send time, on SQLite and PostgreSQL, through
a real SMTP server: the same text ``message_row`` renders, and a failure that stays with its
message."""

import json
import logging
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.time import utcnow
from app.mail import messages
from app.mail.messages import MessageKind
from app.models import DsrRequest, MailMessage
from app.worker import Worker
from tests.conftest import TEST_SECRET_KEY
from tests.factories import create_request, identity_assertion
from tests.mail.helpers import contents
from tests.smtp_server import SmtpServer

EMAIL = "philippa.intent@example.com"
NAME = "Philippa Intentworth"
PHONE = "+442079460458"
SUBJECT = {"email": EMAIL, "name": NAME, "phone": PHONE}
LINK = re.compile(r"https?://[^\s\"<>]+(/status/[A-Za-z0-9._-]+)")


async def acknowledgements(app: FastAPI) -> list[MailMessage]:
    async with app.state.sessionmaker() as session:
        query = (
            select(MailMessage)
            .where(col(MailMessage.kind) == MessageKind.ACKNOWLEDGEMENT.value)
            .order_by(col(MailMessage.created_at))
        )
        return list((await session.execute(query)).scalars())


async def submit(
    client: AsyncClient,
    headers: dict[str, str],
    credentials: tuple[str, str],
    *,
    asserted: bool,
) -> dict[str, Any]:
    """A request for SUBJECT; ``asserted``: with an identity assertion, so its clock runs."""
    extra = {"identity_assertion": identity_assertion(*credentials, EMAIL)} if asserted else {}
    return await create_request(client, headers, subject=SUBJECT, **extra)


def expected_context(created: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What intake hands the acknowledgement besides the request (the defaults' policy)."""
    due = created["deadline"]["due_date"]
    return {
        "due_date": date.fromisoformat(due) if due else None,
        "verification_needed": created["status"] == "awaiting_verification",
        "identity_proofs": ["email_code", "document"],
        "reminder_days": settings.verification_reminder_days,
        "expiry_days": settings.verification_expiry_days,
    }


async def as_message_row(
    app: FastAPI, settings: Settings, intent: MailMessage, context: dict[str, Any]
) -> tuple[str, str, str | None]:
    """What ``message_row`` (rendering at queue time) would have stored for this intent."""
    async with app.state.sessionmaker() as session:
        dsr = await session.get(DsrRequest, intent.request_id)
    assert dsr is not None
    row = messages.message_row(
        settings=settings,
        dsr=dsr,
        kind=MessageKind.ACKNOWLEDGEMENT,
        context=context,
        now=intent.created_at,
    )
    assert row is not None
    text = decrypt_secret(row["body_encrypted"], secret_keys=[TEST_SECRET_KEY])
    html = decrypt_secret(row["html_encrypted"], secret_keys=[TEST_SECRET_KEY])
    assert text is not None
    return row["subject"], text, html


# ---------------------------------------------------------------- stored at intake


@pytest.mark.parametrize("asserted", [False, True], ids=["unverified", "asserted"])
async def test_intake_stores_the_acknowledgement_as_an_intent_without_personal_data(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    asserted: bool,
) -> None:
    created = await submit(client, integration_headers, integration_credentials, asserted=asserted)
    (intent,) = await acknowledgements(app)
    assert str(intent.request_id) == created["id"] and intent.status == "pending"
    assert (intent.subject, intent.body_encrypted, intent.html_encrypted) == (None, None, None)
    assert decrypt_secret(intent.recipient_encrypted, secret_keys=[TEST_SECRET_KEY]) == EMAIL
    assert EMAIL not in intent.recipient_encrypted
    context = expected_context(created, settings)
    assert intent.render_context == messages.encode_context(context)
    assert messages.decode_context(intent.render_context) == context
    if asserted:
        assert intent.render_context["due_date"] == {"__date__": created["deadline"]["due_date"]}
    stored = json.dumps(intent.render_context)
    for personal in (EMAIL, "philippa", "Philippa", "Intentworth", PHONE, "7946"):
        assert personal not in stored


# ---------------------------------------------------------------- sent by the worker


@pytest.mark.parametrize("asserted", [False, True], ids=["unverified", "asserted"])
async def test_the_worker_sends_what_message_row_renders_and_its_link_opens_the_page(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    worker: Worker,
    smtp: SmtpServer,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    asserted: bool,
) -> None:
    created = await submit(client, integration_headers, integration_credentials, asserted=asserted)
    async with app.state.sessionmaker.begin() as session:
        # Queued two days before it is sent: the link's 90 days count from the queueing.
        await session.execute(update(MailMessage).values(created_at=utcnow() - timedelta(days=2)))
    (intent,) = await acknowledgements(app)
    subject, text, html = await as_message_row(
        app, settings, intent, expected_context(created, settings)
    )
    # The helper every test reads an acknowledgement through renders it as the worker does.
    rendered = await contents(app, intent)
    assert (rendered.subject, rendered.text, rendered.html) == (subject, text, html)

    stats = await worker.run_once(sweep=False)
    assert (stats.mail_attempted, stats.mail_sent) == (1, 1)
    (sent,) = smtp.messages
    assert sent.rcpt_tos == [EMAIL] and sent.message["To"] == EMAIL
    assert sent.message["Subject"] == subject == "We have received your data protection request"
    # Byte for byte, once SMTP's CRLF line ends are read back as the templates' LF.
    assert sent.part("text/plain").replace("\r\n", "\n") == text
    assert html is not None
    assert sent.part("text/html").replace("\r\n", "\n") == html
    plain = " ".join(text.split())
    if asserted:
        due = date.fromisoformat(created["deadline"]["due_date"])
        assert f"We will respond by {due.strftime('%A')} {due.day} {due.strftime('%B %Y')}" in plain
        assert "confirm your identity" not in plain
    else:
        assert "we need to confirm your identity" in plain
        assert "a one-time code that we email to this address" in plain
        assert "If your identity is not confirmed within 30 days" in plain
    for personal in (NAME, PHONE, "Intentworth"):
        assert personal not in sent.raw.decode()

    (row,) = await acknowledgements(app)
    assert row.status == "sent" and (row.recipient_encrypted, row.body_encrypted) == ("", "")
    match = LINK.search(sent.part("text/plain"))
    assert match, text
    expires = intent.created_at + timedelta(days=settings.status_link_days)
    assert match.group(1).split(".")[1] == str(int(expires.timestamp()))
    page = await client.get(match.group(1))
    assert page.status_code == 200, page.text
    assert created["id"] in page.text


# ---------------------------------------------------------------- failures stay with their message


async def test_an_intent_without_its_request_or_with_a_broken_template_fails_alone(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    smtp: SmtpServer,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orphan = await submit(client, integration_headers, integration_credentials, asserted=False)
    await submit(client, integration_headers, integration_credentials, asserted=False)
    coded = await create_request(client, integration_headers, subject={"email": "x@example.com"})
    sent = await client.post(
        f"/v1/requests/{coded['id']}/verification",
        headers=integration_headers,
        json={"method": "email_code"},
    )
    assert sent.status_code == 200, sent.text
    async with app.state.sessionmaker.begin() as session:
        # The intent loses its request; the code mail, rendered when queued, is unaffected.
        await session.execute(
            update(MailMessage)
            .where(col(MailMessage.request_id) == uuid.UUID(orphan["id"]))
            .values(request_id=None)
        )
        await session.execute(
            update(MailMessage)
            .where(col(MailMessage.request_id) == uuid.UUID(coded["id"]))
            .where(col(MailMessage.kind) == MessageKind.ACKNOWLEDGEMENT.value)
            .values(status="sent")
        )
    # An operator's template that fails, quoting the subject's name in its error.
    folder = tmp_path / "broken-templates"
    folder.mkdir()
    (folder / "acknowledgement.txt").write_text("{{ {}[request.subject_name] }}\n")
    operator = Worker(
        settings.model_copy(update={"mail_template_dir": str(folder)}), app.state.sessionmaker
    )
    caplog.set_level(logging.INFO, logger="app.mail")
    try:
        stats = await operator.run_once(sweep=False)
        assert (stats.mail_attempted, stats.mail_sent) == (3, 1)
        assert (await operator.run_once(sweep=False)).mail_attempted == 0
    finally:
        await operator.close()
    (code_mail,) = smtp.messages
    assert code_mail.rcpt_tos == ["x@example.com"]
    assert code_mail.message["Subject"] == "Your verification code"
    failed = {str(row.id): row for row in await acknowledgements(app) if row.status == "failed"}
    assert sorted(row.last_error or "" for row in failed.values()) == [
        "message could not be rendered (UndefinedError)",
        "request of the message not found",
    ]
    for row in failed.values():
        assert row.attempt_count == 1 and row.recipient_encrypted == ""
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "app.mail")
    for message_id in failed:
        assert f"mail {message_id} (acknowledgement) cannot be sent" in logged
    for personal in (EMAIL, "philippa", NAME, "Intentworth", PHONE):
        assert personal not in caplog.text


# ---------------------------------------------------------------- the stored context


def test_the_context_survives_json_with_its_dates() -> None:
    context = {
        "due_date": date(2026, 10, 5),
        "none": None,
        "verification_needed": True,
        "identity_proofs": ("email_code", "document"),
        "nested": {"on": [date(2027, 1, 4)], "count": 3, "ratio": 0.5},
    }
    stored = json.loads(json.dumps(messages.encode_context(context)))
    assert stored["due_date"] == {"__date__": "2026-10-05"}
    revived = messages.decode_context(stored)
    assert revived == {**context, "identity_proofs": ["email_code", "document"]}
    assert type(revived["due_date"]) is date
    assert messages.decode_context(None) == {}


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 10, 5, 9, 0), uuid.uuid4(), {1: "integer key"}, {"a set"}, b"bytes"],
    ids=["datetime", "uuid", "integer-key", "set", "bytes"],
)
def test_a_context_json_cannot_hold_exactly_is_refused_when_queued(value: Any) -> None:
    with pytest.raises(TypeError):
        messages.intent_row(
            settings=Settings(),
            request_id=uuid.uuid4(),
            recipient=EMAIL,
            kind=MessageKind.ACKNOWLEDGEMENT,
            context={"value": value},
            now=datetime(2026, 10, 5, 9, 0, tzinfo=UTC),
        )


def test_no_recipient_queues_no_intent() -> None:
    row = messages.intent_row(
        settings=Settings(),
        request_id=uuid.uuid4(),
        recipient=None,
        kind=MessageKind.ACKNOWLEDGEMENT,
        context={"due_date": None},
        now=datetime(2026, 10, 5, 9, 0, tzinfo=UTC),
    )
    assert row is None
