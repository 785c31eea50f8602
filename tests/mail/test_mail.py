"""Mail to data subjects, end to end: queue in a transaction -> worker -> real SMTP server."""

import html
import logging
import re
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.time import utcnow
from app.mail import messages, sender
from app.mail.messages import MessageKind
from app.main import create_app
from app.models import DsrRequest, MailMessage
from app.requests.rejection import rejection_notice
from app.worker import PassStats, Worker
from tests.conftest import ADMIN_ID, ADMIN_SECRET, TEST_SECRET_KEY, get_token, make_settings
from tests.mail.helpers import SENDER, contents
from tests.smtp_server import Captured, SmtpServer

EMAIL = "jane.doe@example.com"
NAME = "Philippa Mailsworth"
PHONE = "+442079460456"
CODE = "042917"
DUE = date(2026, 10, 5)


async def insert_request(app: FastAPI, **overrides: Any) -> DsrRequest:
    """A request row written directly, so no lifecycle hook queues mail of its own."""
    now = utcnow()
    values: dict[str, Any] = {
        "type": "access",
        "status": "in_progress",
        "regulation": "uk_gdpr",
        "channel": "email",
        "received_at": now,
        "external_ref": "CRM-4411",
        "submitted_by": "test",
        "subject_email": EMAIL,
        "subject_name": NAME,
        "subject_phone": PHONE,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    dsr = DsrRequest(**values)
    async with app.state.sessionmaker.begin() as session:
        session.add(dsr)
    return dsr


async def queue(
    app: FastAPI,
    settings: Settings,
    dsr: DsrRequest,
    kind: MessageKind = MessageKind.VERIFICATION_CODE,
    context: dict[str, Any] | None = None,
) -> None:
    if context is None:
        context = {"code": CODE, "expires_minutes": 15}
    async with app.state.sessionmaker.begin() as session:
        queued = await messages.queue_message(
            session, settings=settings, dsr=dsr, kind=kind, context=context, now=utcnow()
        )
    assert queued


async def rows(app: FastAPI) -> list[MailMessage]:
    async with app.state.sessionmaker() as session:
        return list((await session.execute(select(MailMessage))).scalars())


async def make_due_now(app: FastAPI) -> None:
    """Stand-in for the passing of time: every scheduled retry becomes due."""
    async with app.state.sessionmaker.begin() as session:
        await session.execute(update(MailMessage).values(next_attempt_at=utcnow()))


async def deliver(worker: Worker) -> PassStats:
    return await worker.run_once(sweep=False)


def words(body: str) -> str:
    """Whitespace-normalised text; for HTML, what a reader sees (tags out, entities decoded)."""
    if "<html" in body:
        body = html.unescape(re.sub(r"<[^>]+>", " ", body))
    return " ".join(body.split())


# ---------------------------------------------------------------- content of every message

REJECTION = rejection_notice(
    "uk_gdpr", "manifestly_unfounded", "The request repeats one answered on 2 March."
)
KINDS: list[tuple[MessageKind, dict[str, Any], str, list[str]]] = [
    (
        MessageKind.ACKNOWLEDGEMENT,
        {"due_date": DUE, "verification_needed": False},
        "We have received your data protection request",
        [
            "request for a copy of your personal data",
            "We will respond by Monday 5 October 2026 at the latest",
            "two further months",
            "If you did not make this request",
        ],
    ),
    (
        MessageKind.ACKNOWLEDGEMENT,
        {"due_date": None, "verification_needed": True},
        "We have received your data protection request",
        [
            "we need to confirm your identity",
            "We must respond within one month",
            "time limit starts on the day your identity is confirmed",
        ],
    ),
    (
        MessageKind.VERIFICATION_CODE,
        {"code": CODE, "expires_minutes": 15},
        "Your verification code",
        [CODE, "expires in 15 minutes", "If you did not make this request, ignore this email"],
    ),
    (
        MessageKind.VERIFICATION_FAILED,
        {
            "document_type": "driving_licence",
            "alternatives": ["a passport", "a driving licence", "reply to the code we email you"],
        },
        "We could not confirm your identity",
        [
            "from the driving licence we checked",
            "What you can send or do instead",
            "a passport",
            "reply to the code we email you",
            "within one month of the day your identity is confirmed",
        ],
    ),
    (
        MessageKind.EXTENSION,
        {"due_date": date(2026, 12, 3), "reason": "Your request covers twelve archived systems."},
        "We need more time to respond to your data protection request",
        [
            "Your request covers twelve archived systems.",
            "we will respond by Thursday 3 December 2026 at the latest",
            "two further months",
            "within the first month",
            "Article 12(3) UK GDPR",
            "Information Commissioner's Office (ICO)",
        ],
    ),
    (
        MessageKind.REJECTION,
        {"rejection": REJECTION},
        "Our decision on your data protection request",
        [
            "We have decided not to act on your request",
            "manifestly unfounded",
            "The request repeats one answered on 2 March.",
            "Information Commissioner's Office (ICO)",
            "https://ico.org.uk/make-a-complaint/",
            "0303 123 1113",
            "enforce your rights through the courts (UK GDPR Art. 79)",
        ],
    ),
    (
        MessageKind.CLARIFICATION,
        {
            "text": "Which account do you mean?",
            "controller_name": "Borchester Office Supplies Ltd",
            "clock_paused": True,
        },
        "We need more information about your data protection request",
        [
            "Borchester Office Supplies Ltd is writing about your request for a copy",
            "we need more information from you: Which account do you mean?",
            "the time limit for our response is paused",
            "starts again on the day we receive your answer",
        ],
    ),
    (
        MessageKind.INFORMATION,
        {
            "text": "We are searching our archive.",
            "controller_name": "Borchester Office Supplies Ltd",
        },
        "About your data protection request",
        ["Borchester Office Supplies Ltd is writing", "We are searching our archive."],
    ),
    (
        MessageKind.VERIFICATION_REMINDER,
        {
            "received_on": date(2026, 11, 2),
            "closes_on": date(2026, 12, 2),
            "identity_proofs": ["email_code", "document"],
        },
        "Please confirm your identity so that we can act on your request",
        [
            "(subject access request) on Monday 2 November 2026",
            "a one-time code that we email to this address",
            "a copy of your passport or photocard driving licence",
            "or to ask us for a code",
            "If your identity is not confirmed by Wednesday 2 December 2026",
            "we will close the request",
        ],
    ),
    (
        MessageKind.COMPLETION,
        {
            "summary": "We found records in our CRM and order history.",
            "how_to_collect": "Download your data from the secure link we sent (valid 7 days).",
        },
        "Your data protection request is complete",
        [
            "We have completed your request",
            "We found records in our CRM and order history.",
            "How to collect the result",
            "Download your data from the secure link we sent (valid 7 days).",
            "Information Commissioner's Office (ICO)",
            "enforce your rights through the courts",
        ],
    ),
]


@pytest.mark.parametrize(
    ("kind", "context", "subject", "phrases"),
    KINDS,
    ids=[f"{case[0].value}-{index}" for index, case in enumerate(KINDS)],
)
async def test_every_message_is_delivered_with_its_content(
    app: FastAPI,
    settings: Settings,
    worker: Worker,
    smtp: SmtpServer,
    kind: MessageKind,
    context: dict[str, Any],
    subject: str,
    phrases: list[str],
) -> None:
    dsr = await insert_request(app)
    await queue(app, settings, dsr, kind, context)
    stats = await deliver(worker)
    assert (stats.mail_attempted, stats.mail_sent) == (1, 1)
    (sent,) = smtp.messages
    assert sent.mail_from == SENDER and sent.rcpt_tos == [EMAIL]
    message = sent.message
    assert message["From"] == SENDER and message["To"] == EMAIL
    assert message["Subject"] == subject
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"].endswith("@controller.example>") and message["Date"]
    text = words(sent.part("text/plain"))
    page = words(sent.part("text/html"))
    for body in (text, page):
        for phrase in [*phrases, str(dsr.id), "CRM-4411"]:
            assert phrase in body, (phrase, body)
    _assert_no_identities_beyond_to(sent)


def _assert_no_identities_beyond_to(sent: Captured) -> None:
    raw = sent.raw.decode()
    for identity in (NAME, PHONE, "Philippa", "Mailsworth"):
        assert identity not in raw
    headers, _, body = raw.partition("\r\n\r\n")
    assert [line for line in headers.splitlines() if EMAIL in line] == [f"To: {EMAIL}"]
    assert EMAIL not in body


async def test_html_escapes_officer_text(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    dsr = await insert_request(app)
    context = {"due_date": DUE, "reason": "Archives <b>A</b> & B"}
    await queue(app, settings, dsr, MessageKind.EXTENSION, context)
    await deliver(worker)
    (sent,) = smtp.messages
    assert "Archives &lt;b&gt;A&lt;/b&gt; &amp; B" in sent.part("text/html")
    assert "Archives <b>A</b> & B" in sent.part("text/plain")


async def test_stable_message_id_names_the_queued_row(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    await deliver(worker)
    (row,) = await rows(app)
    headers = smtp.messages[0].message
    assert headers["Message-ID"] == f"<{row.id}@controller.example>"
    assert headers["Auto-Submitted"] == "auto-generated"


# ---------------------------------------------------------------- outbox guarantees


async def test_rolled_back_transaction_sends_nothing(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    dsr = await insert_request(app)
    with pytest.raises(RuntimeError):
        async with app.state.sessionmaker.begin() as session:
            await messages.queue_message(
                session,
                settings=settings,
                dsr=dsr,
                kind=MessageKind.VERIFICATION_CODE,
                context={"code": CODE, "expires_minutes": 15},
                now=utcnow(),
            )
            await session.flush()  # the row reached the database before the rollback
            raise RuntimeError("the change failed")
    stats = await deliver(worker)
    assert stats.mail_attempted == 0
    assert smtp.messages == []
    assert await rows(app) == []


async def test_request_without_email_queues_nothing(app: FastAPI, settings: Settings) -> None:
    dsr = await insert_request(app, subject_email=None, subject_customer_id="C-1001")
    async with app.state.sessionmaker.begin() as session:
        queued = await messages.queue_message(
            session,
            settings=settings,
            dsr=dsr,
            kind=MessageKind.ACKNOWLEDGEMENT,
            context={"due_date": DUE, "verification_needed": False},
            now=utcnow(),
        )
    assert queued is False
    assert await rows(app) == []


async def test_queued_row_is_encrypted_and_sent_row_is_wiped(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    (queued,) = await rows(app)
    assert queued.status == "pending"
    for column in (queued.recipient_encrypted, queued.body_encrypted, queued.html_encrypted):
        assert column and CODE not in column and EMAIL not in column
    assert CODE not in queued.subject
    await deliver(worker)
    assert len(smtp.messages) == 1
    (sent,) = await rows(app)
    assert sent.status == "sent" and sent.sent_at is not None
    assert (sent.recipient_encrypted, sent.body_encrypted, sent.html_encrypted) == ("", "", None)
    assert sent.attempt_count == 1 and sent.last_error is None and sent.claimed_until is None
    assert sent.subject == "Your verification code"
    await deliver(worker)
    assert len(smtp.messages) == 1  # sent once


async def test_smtp_outage_leaves_the_message_pending_until_a_retry_delivers_it(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    smtp.stop()
    started = utcnow()
    stats = await deliver(worker)
    assert (stats.mail_attempted, stats.mail_sent) == (1, 0)
    (row,) = await rows(app)
    assert row.status == "pending" and row.attempt_count == 1
    # First retry after a minute, with up to 10 % jitter.
    assert timedelta(seconds=53) <= row.next_attempt_at - started <= timedelta(seconds=67)
    assert row.last_error == "SMTPConnectError"
    assert row.recipient_encrypted and row.body_encrypted  # kept until delivered
    smtp.start()
    await deliver(worker)
    assert smtp.messages == []  # not due yet
    await make_due_now(app)
    stats = await deliver(worker)
    assert (stats.mail_attempted, stats.mail_sent) == (1, 1)
    assert len(smtp.messages) == 1 and CODE in smtp.messages[0].part("text/plain")
    (row,) = await rows(app)
    assert row.status == "sent" and row.attempt_count == 2 and row.last_error is None


async def test_temporary_refusal_is_retried_without_storing_the_reply(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    smtp.refuse_recipients_with = "451 4.3.0 Mailbox busy, try again later"
    await deliver(worker)
    (row,) = await rows(app)
    assert row.status == "pending"
    # Class and code only: the server's reply quoted the address.
    assert row.last_error == "SMTPRecipientsRefused (SMTP 451)"
    smtp.refuse_recipients_with = None
    await make_due_now(app)
    await deliver(worker)
    assert len(smtp.messages) == 1


async def test_permanent_refusal_fails_at_once_and_wipes(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    smtp.refuse_recipients_with = "550 5.1.1 No such user"
    await deliver(worker)
    (row,) = await rows(app)
    assert row.status == "failed" and row.attempt_count == 1
    assert row.last_error == "SMTPRecipientsRefused (SMTP 550)"
    assert (row.recipient_encrypted, row.body_encrypted, row.html_encrypted) == ("", "", None)


async def test_message_fails_for_good_after_the_last_retry(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    smtp.stop()
    await deliver(worker)
    async with app.state.sessionmaker.begin() as session:
        await session.execute(update(MailMessage).values(attempt_count=sender.MAX_ATTEMPTS - 1))
    await make_due_now(app)
    await deliver(worker)
    (row,) = await rows(app)
    assert row.status == "failed" and row.attempt_count == sender.MAX_ATTEMPTS
    assert (row.recipient_encrypted, row.body_encrypted) == ("", "")
    await make_due_now(app)
    assert (await deliver(worker)).mail_attempted == 0


async def test_wrong_credentials_are_retried_and_login_is_used(
    app: FastAPI, database_url: str
) -> None:
    with SmtpServer(credentials=("dsr-mailer", "relay-password")) as relay:
        base = make_settings(
            database_url,
            smtp_host="127.0.0.1",
            smtp_port=relay.port,
            smtp_from=f"Privacy Team <{SENDER}>",
            smtp_username="dsr-mailer",
        )
        await queue(app, base, await insert_request(app))
        wrong = Worker(base.model_copy(update={"smtp_password": "nope"}), app.state.sessionmaker)
        right = Worker(
            base.model_copy(update={"smtp_password": "relay-password"}), app.state.sessionmaker
        )
        try:
            await deliver(wrong)
            (row,) = await rows(app)
            assert row.status == "pending"
            assert row.last_error == "SMTPAuthenticationError (SMTP 535)"
            await make_due_now(app)
            await deliver(right)
        finally:
            await wrong.close()
            await right.close()
    (sent,) = relay.messages
    assert sent.login == "dsr-mailer"
    assert sent.mail_from == SENDER and sent.message["From"] == f"Privacy Team <{SENDER}>"


# ---------------------------------------------------------------- crashes and concurrency


async def test_worker_crash_mid_send_loses_nothing(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    # A worker claims the message (its lease commits) and dies before recording anything.
    async with app.state.sessionmaker.begin() as session:
        claims = await sender.claim_due(session, settings=settings, now=utcnow())
    assert [claim.recipient for claim in claims] == [EMAIL]
    assert (await deliver(worker)).mail_attempted == 0  # the lease still holds
    assert smtp.messages == []
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(MailMessage).values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    stats = await deliver(worker)
    assert (stats.mail_attempted, stats.mail_sent) == (1, 1)
    assert len(smtp.messages) == 1
    (row,) = await rows(app)
    assert row.status == "sent"


async def test_concurrent_workers_claim_disjoint_messages(
    app: FastAPI, settings: Settings, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("row locks: SQLite serialises writers instead (BEGIN IMMEDIATE)")
    dsr = await insert_request(app)
    for _ in range(3):
        await queue(app, settings, dsr)
    now = utcnow()
    async with app.state.sessionmaker.begin() as first:
        held = await sender.claim_due(first, settings=settings, now=now, limit=2)
        # The second worker skips the rows the first has locked but not yet committed.
        async with app.state.sessionmaker.begin() as second:
            other = await sender.claim_due(second, settings=settings, now=now)
    assert len(held) == 2 and len(other) == 1
    assert {claim.message_id for claim in held}.isdisjoint({c.message_id for c in other})
    async with app.state.sessionmaker.begin() as third:
        assert await sender.claim_due(third, settings=settings, now=now) == []  # all leased


async def test_expired_verification_code_is_not_sent_late(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(MailMessage).values(
                created_at=utcnow() - timedelta(seconds=settings.verification_code_ttl + 1)
            )
        )
    await deliver(worker)
    assert smtp.messages == []
    (row,) = await rows(app)
    assert row.status == "failed" and row.last_error == "verification code expired before delivery"
    assert (row.recipient_encrypted, row.body_encrypted) == ("", "")


async def test_message_that_no_longer_decrypts_fails_without_sending(
    app: FastAPI, settings: Settings, smtp: SmtpServer
) -> None:
    await queue(app, settings, await insert_request(app))
    rotated = settings.model_copy(update={"secret_key": "another-key-" + TEST_SECRET_KEY})
    stranger = Worker(rotated, app.state.sessionmaker)
    try:
        await deliver(stranger)
    finally:
        await stranger.close()
    assert smtp.messages == []
    (row,) = await rows(app)
    assert row.status == "failed" and row.last_error == "message could not be decrypted"


# ---------------------------------------------------------------- development and operators


async def test_without_smtp_host_the_message_is_logged_with_a_masked_recipient(
    app: FastAPI,
    settings: Settings,
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await queue(app, settings, await insert_request(app))
    development = Worker(settings.model_copy(update={"smtp_host": None}), app.state.sessionmaker)
    caplog.set_level(logging.INFO, logger="app.mail")
    try:
        stats = await deliver(development)
    finally:
        await development.close()
    assert (stats.mail_attempted, stats.mail_sent) == (1, 1)
    assert smtp.messages == []
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "app.mail")
    assert "j***@example.com" in logged
    assert "Subject: Your verification code" in logged
    assert CODE in logged and "expires in 15 minutes" in logged
    assert EMAIL not in caplog.text and "jane.doe" not in caplog.text
    assert NAME not in caplog.text and PHONE not in caplog.text
    (row,) = await rows(app)
    assert row.status == "sent" and (row.recipient_encrypted, row.body_encrypted) == ("", "")


async def test_operator_templates_override_the_built_in_ones(
    app: FastAPI, settings: Settings, worker: Worker, smtp: SmtpServer, tmp_path: Path
) -> None:
    folder = tmp_path / "mail-templates"
    folder.mkdir()
    (folder / "acknowledgement.subject.txt").write_text(
        "Acme Ltd: request {{ request.external_ref }} received\n"
    )
    operator = settings.model_copy(update={"mail_template_dir": str(folder)})
    context = {"due_date": DUE, "verification_needed": False}
    await queue(app, operator, await insert_request(app), MessageKind.ACKNOWLEDGEMENT, context)
    await deliver(worker)
    (sent,) = smtp.messages
    assert sent.message["Subject"] == "Acme Ltd: request CRM-4411 received"
    # Templates the operator did not override still come from the built-in folder.
    assert "Monday 5 October 2026" in sent.part("text/plain")


# ---------------------------------------------------------------- wording per regulation


def _request(**overrides: Any) -> DsrRequest:
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "type": "access",
        "status": "in_progress",
        "regulation": "uk_gdpr",
        "channel": "email",
        "received_at": now,
        "external_ref": None,
        "submitted_by": "test",
        "subject_email": EMAIL,
        "subject_name": NAME,
        "subject_phone": PHONE,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return DsrRequest(**values)


def _render(kind: MessageKind, dsr: DsrRequest, **context: Any) -> tuple[str, str, str]:
    subject, text, page = messages.render(kind, {"request": dsr, **context}, settings=Settings())
    assert page is not None
    return subject, words(text), words(page)


def test_every_built_in_message_has_text_and_html_and_no_identities() -> None:
    dsr = _request()
    for kind, context, subject, _ in KINDS:
        rendered_subject, text, page = _render(kind, dsr, **context)
        assert rendered_subject == subject
        for body in (text, page):
            for identity in (EMAIL, NAME, PHONE):
                assert identity not in body
            assert "Case reference" not in body  # no external_ref on this request


def test_eu_rejection_names_the_supervisory_authority() -> None:
    dsr = _request(regulation="eu_gdpr")
    rejection = rejection_notice("eu_gdpr", "exemption", None)
    _, text, page = _render(MessageKind.REJECTION, dsr, rejection=rejection)
    for body in (text, page):
        assert "supervisory authority of your EU member state" in body
        assert "https://www.edpb.europa.eu/about-edpb/about-edpb/members_en" in body
        assert "effective judicial remedy" in body and "exemption" in body
        assert "0303 123 1113" not in body


def test_ccpa_wording_uses_45_days() -> None:
    dsr = _request(regulation="ccpa", type="erasure")
    _, text, _ = _render(MessageKind.EXTENSION, dsr, due_date=DUE, reason="Volume of records.")
    assert "a further 45 days" in text and "within the first 45 days" in text
    assert "request to delete personal information" in text
    assert "California Privacy Protection Agency" in text and "UK GDPR" not in text
    _, text, _ = _render(MessageKind.ACKNOWLEDGEMENT, dsr, due_date=DUE, verification_needed=False)
    assert "a further 45 days" in text


def test_one_minute_code_is_singular() -> None:
    _, text, _ = _render(MessageKind.VERIFICATION_CODE, _request(), code=CODE, expires_minutes=1)
    assert "expires in 1 minute and" in text


@pytest.mark.parametrize(
    ("policy", "request_type", "asked", "not_asked", "may_need_nothing"),
    [
        ({}, "access", ["one-time code", "passport or photocard driving licence"], [], False),
        ({"access": ["document"]}, "access", ["passport"], ["one-time code"], False),
        ({}, "objection", ["one-time code", "passport"], [], True),
        ({"restriction": ["officer_attestation"]}, "restriction", [], ["we may ask"], True),
    ],
)
async def test_acknowledgement_says_how_identity_will_be_confirmed(
    database_url: str,
    policy: dict[str, list[str]],
    request_type: str,
    asked: list[str],
    not_asked: list[str],
    may_need_nothing: bool,
) -> None:
    """What the subject may be asked for follows the policy; no promise of a separate email."""
    app = create_app(make_settings(database_url, verification_policy=policy))
    async with app.router.lifespan_context(app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            headers = {"Authorization": f"Bearer {await get_token(client, ADMIN_ID, ADMIN_SECRET)}"}
            body = {"type": request_type, "subject": {"email": EMAIL}}
            if request_type == "objection":
                body["details"] = {"scope": "direct_marketing"}
            assert (
                await client.post("/v1/requests", headers=headers, json=body)
            ).status_code == 201
        (row,) = await rows(app)
        rendered = await contents(app, row)
    assert row.kind == "acknowledgement"
    assert rendered.html is not None
    for part in (rendered.text, rendered.html):
        body_text = words(part)
        assert "we need to confirm your identity" in body_text
        assert "separate email" not in body_text
        for phrase in asked:
            assert phrase in body_text
        for phrase in not_asked:
            assert phrase not in body_text
        assert ("we will not ask you for anything" in body_text) is may_need_nothing


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jane.doe@example.com", "j***@example.com"),
        ("j@example.com", "***@example.com"),
        ("Jo@Example.co.uk", "J***@Example.co.uk"),
        ('"odd@local"@example.com', '"***@example.com'),
        ("no-at-sign", "***"),
        ("trailing@", "***"),
        ("", "***"),
    ],
)
def test_mask_address(address: str, masked: str) -> None:
    assert sender.mask_address(address) == masked


def test_errors_are_described_without_the_server_reply() -> None:
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, f"5.1.1 <{EMAIL}> unknown", EMAIL)]
    )
    assert sender.describe_error(refused) == "SMTPRecipientsRefused (SMTP 550)"
    data = aiosmtplib.SMTPDataError(554, f"rejected mail to {EMAIL}")
    assert sender.describe_error(data) == "SMTPDataError (SMTP 554)"
    assert sender.describe_error(ConnectionRefusedError(111, "refused")) == (
        "ConnectionRefusedError"
    )


def test_connection_options_follow_the_settings() -> None:
    plain = sender.connection_options(Settings(smtp_host="mail.example", smtp_port=25))
    assert plain["start_tls"] is False and plain["use_tls"] is False
    assert "username" not in plain
    starttls = sender.connection_options(
        Settings(
            smtp_host="mail.example",
            smtp_port=587,
            smtp_starttls=True,
            smtp_username="dsr",
            smtp_password="pw",
        )
    )
    assert starttls["start_tls"] is True and starttls["port"] == 587
    assert (starttls["username"], starttls["password"]) == ("dsr", "pw")
    implicit = sender.connection_options(Settings(smtp_host="mail.example", smtp_tls=True))
    assert implicit["use_tls"] is True and implicit["start_tls"] is False


def test_retry_schedule_backs_off_then_gives_up() -> None:
    expected = [60, 300, 1800, 7200, 21600]
    for attempts_made, seconds in enumerate(expected, start=1):
        delay = sender.next_attempt_delay(attempts_made)
        assert delay is not None
        assert seconds * 0.9 <= delay.total_seconds() <= seconds * 1.1
    assert sender.next_attempt_delay(sender.MAX_ATTEMPTS) is None


STRONG_KEY = "k" * 40


def test_production_requires_smtp() -> None:
    with pytest.raises(ValidationError, match="DSR_SMTP_HOST"):
        Settings(env="production", secret_key=STRONG_KEY)
    with pytest.raises(ValidationError, match="DSR_SMTP_FROM"):
        Settings(env="production", secret_key=STRONG_KEY, smtp_host="mail.example")
    ready = Settings(
        env="production",
        secret_key=STRONG_KEY,
        smtp_host="mail.example",
        smtp_from=SENDER,
        public_url="https://privacy.example.com",
    )
    assert ready.smtp_host == "mail.example"
    assert Settings().smtp_host is None  # development logs instead


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"smtp_tls": True, "smtp_starttls": True}, "DSR_SMTP_STARTTLS"),
        ({"mail_lease_seconds": 30, "smtp_timeout": 30}, "DSR_MAIL_LEASE_SECONDS"),
    ],
)
def test_impossible_mail_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**overrides)
