"""Delivery of queued mail to data subjects: claims with leases, SMTP, retries, wiping.

A worker claims due ``mail_outbox`` rows by setting a lease (``claimed_until``) under
``FOR UPDATE SKIP LOCKED`` and commits; it then sends each message and records the outcome
in a new short transaction. A worker that dies mid-send leaves its lease to expire and the
message is sent again (at least once; the ``Message-ID`` is stable across attempts so mail
clients can drop a duplicate). Once a message is sent, or has failed for good, its recipient
and bodies are wiped: a verification code never outlives its delivery.

An intent (the acknowledgement: no bodies stored) is rendered when claimed, with its request
read in one query for the batch; one that cannot be rendered (its request is gone, an
operator's template fails) fails for good on its own, and the rest of the batch goes out.

With no ``DSR_SMTP_HOST`` (development) "sending" writes the message to the ``app.mail``
log with the recipient masked.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import backoff
from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.logs import bound_request_id
from app.core.time import utcnow
from app.mail.messages import MessageKind, render_intent
from app.models import DsrRequest, MailMessage

logger = logging.getLogger("app.mail")

# Delay before each retry after a failed attempt; after the last one the message fails.
RETRY_SCHEDULE = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
]
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
# Every claimed message is sent concurrently, so one pass takes about one SMTP timeout and
# stays well inside the lease (DSR_MAIL_LEASE_SECONDS > DSR_SMTP_TIMEOUT, see config).
MAX_BATCH = 20


@dataclass
class ClaimedMail:
    message_id: uuid.UUID
    kind: str
    subject: str
    # None when the stored ciphertext no longer decrypts (DSR_SECRET_KEY changed).
    recipient: str | None
    text: str | None
    html: str | None
    created_at: datetime
    # The X-Request-ID of the HTTP request that queued it: the sending is logged under it.
    trace_id: str | None = None
    # Why it cannot be sent, found when claimed (an intent that would not render): final.
    failure: str | None = None


@dataclass
class SendResult:
    claim: ClaimedMail
    error: str | None = None
    # True when retrying cannot help (address refused for good, contents unreadable).
    permanent: bool = False

    @property
    def sent(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------- claims


async def claim_due(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = MAX_BATCH
) -> list[ClaimedMail]:
    """Lease up to ``limit`` due messages to this worker, decrypt or render them (commit right
    after)."""
    rows = list(
        (
            await session.execute(
                select(MailMessage)
                .where(
                    col(MailMessage.status) == "pending",
                    col(MailMessage.next_attempt_at) <= now,
                    or_(
                        col(MailMessage.claimed_until).is_(None),
                        col(MailMessage.claimed_until) < now,
                    ),
                )
                .order_by(col(MailMessage.next_attempt_at))
                .limit(min(limit, MAX_BATCH))
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not rows:
        return []
    await session.execute(
        update(MailMessage)
        .where(col(MailMessage.id).in_([row.id for row in rows]))
        .values(claimed_until=now + timedelta(seconds=settings.mail_lease_seconds))
    )
    requests = await _requests_of_intents(session, rows)
    return [_claimed(row, requests, settings=settings) for row in rows]


async def _requests_of_intents(
    session: AsyncSession, rows: list[MailMessage]
) -> dict[uuid.UUID, DsrRequest]:
    """The requests the batch's intents are rendered for: one query, whatever the batch."""
    wanted = {row.request_id for row in rows if row.body_encrypted is None and row.request_id}
    if not wanted:
        return {}
    found = await session.execute(select(DsrRequest).where(col(DsrRequest.id).in_(wanted)))
    return {dsr.id: dsr for dsr in found.scalars()}


def _claimed(
    row: MailMessage, requests: dict[uuid.UUID, DsrRequest], *, settings: Settings
) -> ClaimedMail:
    """One claimed row, ready to send: decrypted, or (an intent) rendered for its request."""
    keys = settings.reading_keys
    claim = ClaimedMail(
        message_id=row.id,
        kind=row.kind,
        subject=row.subject or "",
        recipient=decrypt_secret(row.recipient_encrypted, secret_keys=keys),
        text=None,
        html=None,
        created_at=row.created_at,
        trace_id=row.trace_id,
    )
    if row.body_encrypted is not None:
        claim.text = decrypt_secret(row.body_encrypted, secret_keys=keys)
        if row.html_encrypted:
            claim.html = decrypt_secret(row.html_encrypted, secret_keys=keys)
        return claim
    dsr = requests.get(row.request_id) if row.request_id else None
    if dsr is None:
        return _unsendable(claim, "request of the message not found")
    try:
        claim.subject, claim.text, claim.html = render_intent(row, dsr, settings=settings)
    except Exception as exc:  # one broken template (an operator's) must not stop the worker
        return _unsendable(claim, f"message could not be rendered ({type(exc).__name__})")
    return claim


def _unsendable(claim: ClaimedMail, failure: str) -> ClaimedMail:
    """Fail it when sent: no recipient kept, and only the class of error logged (an exception's
    text may quote the request)."""
    claim.recipient, claim.failure = None, failure
    with bound_request_id(claim.trace_id):
        logger.warning("mail %s (%s) cannot be sent: %s", claim.message_id, claim.kind, failure)
    return claim


# ---------------------------------------------------------------- sending


def mask_address(address: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``: enough to tell messages apart."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not domain:
        return "***"
    # A one-character local part would be shown whole: hide it entirely.
    visible = local[0] if len(local) > 1 else ""
    return f"{visible}***@{domain}"


def describe_error(exc: BaseException) -> str:
    """Exception class and SMTP code only: server replies often quote the address."""
    code = getattr(exc, "code", None)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = exc.recipients[0].code
    name = type(exc).__name__
    return f"{name} (SMTP {code})" if isinstance(code, int) else name


def _refused_for_good(exc: BaseException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return exc.code >= 500
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    return False


def connection_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``aiosmtplib.send`` from the DSR_SMTP_* settings."""
    options: dict[str, Any] = {
        "hostname": settings.smtp_host,
        "port": settings.smtp_port,
        "timeout": settings.smtp_timeout,
        "use_tls": settings.smtp_tls,
        # Explicit: False never upgrades, so a relay's certificate cannot fail a send that
        # the operator configured as plain (aiosmtplib's None would upgrade opportunistically).
        "start_tls": settings.smtp_starttls,
    }
    if settings.smtp_username:
        options["username"] = settings.smtp_username
        options["password"] = settings.smtp_password or ""
    return options


def build_message(claim: ClaimedMail, *, settings: Settings, now: datetime) -> EmailMessage:
    """multipart/alternative (text, then HTML); no personal data in headers beyond To."""
    assert claim.recipient is not None and claim.text is not None
    sender = settings.smtp_from or "privacy@localhost"
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = claim.recipient
    # Operator templates may break the subject across lines; headers must be one line.
    message["Subject"] = " ".join(claim.subject.split())
    message["Date"] = format_datetime(now)
    # Stable across retries: a duplicate after a crash carries the same Message-ID.
    message["Message-ID"] = f"<{claim.message_id}@{domain}>"
    # RFC 3834: keeps out-of-office responders from answering automated mail.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(claim.text)
    if claim.html:
        message.add_alternative(claim.html, subtype="html")
    return message


def _expired_code(claim: ClaimedMail, *, settings: Settings, now: datetime) -> bool:
    """A verification code that can no longer be used is not worth sending late."""
    lifetime = timedelta(seconds=settings.verification_code_ttl)
    return claim.kind == MessageKind.VERIFICATION_CODE and now >= claim.created_at + lifetime


async def send(claim: ClaimedMail, *, settings: Settings) -> SendResult:
    """One attempt to hand the message to the SMTP server (or the log); never raises."""
    with bound_request_id(claim.trace_id):
        return await _send(claim, settings=settings)


async def _send(claim: ClaimedMail, *, settings: Settings) -> SendResult:
    now = utcnow()
    if claim.failure is not None:
        return SendResult(claim, claim.failure, permanent=True)
    if claim.recipient is None or claim.text is None:
        return SendResult(claim, "message could not be decrypted", permanent=True)
    if _expired_code(claim, settings=settings, now=now):
        return SendResult(claim, "verification code expired before delivery", permanent=True)
    if settings.smtp_host is None:
        _log_message(claim, settings=settings)
        return SendResult(claim)
    try:
        message = build_message(claim, settings=settings, now=now)
        sender = parseaddr(settings.smtp_from or "")[1] or None
        # aiosmtplib's timeout is per command; this bounds the whole conversation.
        async with asyncio.timeout(settings.smtp_timeout):
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[claim.recipient],
                **connection_options(settings),
            )
    except Exception as exc:  # any failure is recorded and retried, never fatal
        error = describe_error(exc)
        logger.warning("mail %s (%s) not sent: %s", claim.message_id, claim.kind, error)
        return SendResult(claim, error, permanent=_refused_for_good(exc))
    logger.info("mail %s (%s) sent", claim.message_id, claim.kind)
    return SendResult(claim)


# An officer's own words to the subject (and whatever they quote) never reach the logs.
_BODY_NOT_LOGGED = frozenset({MessageKind.CLARIFICATION, MessageKind.INFORMATION})


def _log_message(claim: ClaimedMail, *, settings: Settings) -> None:
    assert claim.recipient is not None
    body = claim.text
    if settings.env != "development":
        # Production needs SMTP (config refuses it without), but should that ever be bypassed,
        # a body (a verification code, a download link) must never reach production logs.
        body = "(message bodies are logged only when DSR_ENV=development)"
    elif claim.kind in _BODY_NOT_LOGGED:
        body = "(the body of an officer's message is not logged)"
    logger.info(
        "mail %s (%s) not sent, no DSR_SMTP_HOST configured; to %s\nSubject: %s\n\n%s",
        claim.message_id,
        claim.kind,
        mask_address(claim.recipient),
        claim.subject,
        body,
    )


async def send_all(claims: list[ClaimedMail], *, settings: Settings) -> list[SendResult]:
    """Send a claimed batch concurrently (each message on its own connection)."""
    return list(await asyncio.gather(*(send(claim, settings=settings) for claim in claims)))


def next_attempt_delay(attempts_made: int) -> timedelta | None:
    """Delay before the next attempt, with ±10 % jitter; None when retries are exhausted."""
    return backoff.next_delay(RETRY_SCHEDULE, attempts_made)


# ---------------------------------------------------------------- recording


async def record_results(
    session: AsyncSession, *, results: list[SendResult], now: datetime
) -> None:
    """Mark sent messages (and wipe them), schedule retries, fail the hopeless."""
    if not results:
        return
    messages = {
        message.id: message
        for message in (
            await session.execute(
                select(MailMessage)
                .where(col(MailMessage.id).in_([r.claim.message_id for r in results]))
                .with_for_update()
            )
        ).scalars()
    }
    for result in results:
        message = messages.get(result.claim.message_id)
        # Another worker whose lease overlapped ours may have recorded it already.
        if message is None or message.status != "pending":
            continue
        with bound_request_id(message.trace_id):
            _apply_result(message, result, now)


def _apply_result(message: MailMessage, result: SendResult, now: datetime) -> None:
    message.attempt_count += 1
    message.claimed_until = None
    message.last_error = result.error
    if result.sent:
        message.status = "sent"
        message.sent_at = now
        _wipe(message)
        return
    delay = None if result.permanent else next_attempt_delay(message.attempt_count)
    if delay is None:
        message.status = "failed"
        _wipe(message)
        logger.warning(
            "mail %s (%s) failed for good after %d attempts: %s",
            message.id,
            message.kind,
            message.attempt_count,
            result.error,
        )
    else:
        message.next_attempt_at = now + delay


def _wipe(message: MailMessage) -> None:
    """Nothing will send this message again: drop the address and the contents (an intent's
    context, holding no personal data, stays)."""
    message.recipient_encrypted = ""
    message.body_encrypted = ""
    message.html_encrypted = None
