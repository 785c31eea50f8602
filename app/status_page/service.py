"""The data subject's status page: what it shows, what it lets them do, and its rate limits.

The subject arrives by the signed link in every mail (``app.mail.status_link``); no login.
The page shows only the request's reference, type, status and dates, and what happens next:
never the subject's identities, an officer's notes or names, nor internal reasons beyond the
rejection notice the subject was mailed. Its actions call the very services the API calls
(verification code, reply to a clarification, cancel), with the fixed audit actor
``subject``.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.core.errors import AppError
from app.correspondence import service as correspondence
from app.correspondence.schemas import ReplyCreate
from app.enums import PauseReason, RequestStatus, VerificationMethod
from app.exports import service as exports
from app.mail.status_link import verify_status_token
from app.models import DsrRequest, StatusPageHit
from app.requests import legal_clock, lifecycle
from app.requests.identity_policy import allowed_methods
from app.requests.rejection import rejection_notice
from app.verification import service as verification

# The audit trail's actor for what the subject does on the page (client ids are never this).
SUBJECT_ACTOR = "subject"
RATE_PURPOSE = "status-page-rate"
RATE_WINDOW = timedelta(minutes=1)
# Counters older than this are deleted as pages are hit: the table stays a few minutes deep.
RATE_KEEP = timedelta(minutes=5)
ANSWER_MAX_LENGTH = 20_000
_CODE = re.compile(r"^[0-9]{6}$")


# ---------------------------------------------------------------- rate limits


def rate_keys(*, address: str, token: str, settings: Settings) -> list[str]:
    """Keyed hashes for the client address and the link: neither is stored in clear."""
    key = settings.secret_key
    return [
        keyed_hash(f"address:{address}", secret_key=key, purpose=RATE_PURPOSE),
        keyed_hash(f"link:{token}", secret_key=key, purpose=RATE_PURPOSE),
    ]


def _window_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


async def count_hit(
    session: AsyncSession, *, address: str, token: str, settings: Settings, now: datetime
) -> int:
    """Count one hit for the address and for the link in this minute's window; 0 when both
    are within DSR_STATUS_PAGE_RATE_LIMIT, else the seconds until the window ends.

    Counters live in the database, so every API process shares them. The caller commits
    (its own short transaction, so a refused or failed page still counts).
    """
    window = _window_start(now)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = StatusPageHit.__table__  # type: ignore[attr-defined]
    counts = []
    # Sorted, so two processes counting the same pair lock the rows in the same order.
    for key_hash in sorted(rate_keys(address=address, token=token, settings=settings)):
        statement = (
            insert(table)
            .values(key_hash=key_hash, window_start=window, hits=1)
            .on_conflict_do_update(
                index_elements=["key_hash", "window_start"], set_={"hits": table.c.hits + 1}
            )
            .returning(table.c.hits)
        )
        counts.append(int((await session.execute(statement)).scalar_one()))
    await session.execute(
        delete(StatusPageHit).where(col(StatusPageHit.window_start) < window - RATE_KEEP)
    )
    if max(counts) <= settings.status_page_rate_limit:
        return 0
    return max(1, int((window + RATE_WINDOW - now).total_seconds()))


# ---------------------------------------------------------------- loading


async def request_for_token(
    session: AsyncSession, *, token: str, settings: Settings, now: datetime, lock: bool = False
) -> DsrRequest | None:
    """The request a genuine, unexpired link opens; None for anything else, alike."""
    request_id = verify_status_token(token, settings, now=now)
    if request_id is None:
        return None
    return await session.get(DsrRequest, request_id, with_for_update=lock)


# ---------------------------------------------------------------- what the page shows


@dataclass
class Download:
    format: str
    url: str
    # The local date (DSR_TIMEZONE) the link and file expire.
    expires_on: date


@dataclass
class StatusView:
    """Everything the page template may show: nothing else of the request reaches it."""

    reference: str
    type: str
    regulation: str
    status: str
    pause_reason: str | None
    received_on: date
    due_date: date | None
    extended: bool
    verification_pending: bool
    can_confirm_code: bool
    can_send_code: bool
    can_reply: bool
    can_cancel: bool
    downloads: list[Download] = field(default_factory=list)
    # The notice the subject was mailed (reason, the officer's explanation to them, remedies).
    rejection: dict[str, Any] | None = None


def can_confirm_code(dsr: DsrRequest) -> bool:
    """A code was emailed and the request still waits for it."""
    return (
        dsr.status == RequestStatus.AWAITING_VERIFICATION
        and dsr.verification_method == "email_code"
        and dsr.verification_status == "pending"
    )


def can_send_code(dsr: DsrRequest, settings: Settings) -> bool:
    """Waiting for identity, an email address to send to, and codes allowed for the type."""
    return (
        dsr.status == RequestStatus.AWAITING_VERIFICATION
        and bool(dsr.subject_email)
        and VerificationMethod.EMAIL_CODE in allowed_methods(settings, dsr.type)
    )


def can_reply(dsr: DsrRequest) -> bool:
    return (
        dsr.status == RequestStatus.PAUSED
        and dsr.pause_reason == PauseReason.AWAITING_CLARIFICATION
    )


def can_cancel(dsr: DsrRequest) -> bool:
    return RequestStatus(dsr.status) in lifecycle.ALLOWED_FROM[lifecycle.Action.CANCEL]


async def status_view(
    session: AsyncSession, *, dsr: DsrRequest, settings: Settings, now: datetime
) -> StatusView:
    """The page's content for one request."""
    downloads: dict[str, Download] = {}
    # Newest first: the first live export of each format is the one offered.
    for export in await exports.list_exports(session, request_id=dsr.id):
        if export.format not in downloads and exports.is_available(export, now):
            downloads[export.format] = Download(
                format=export.format,
                url=exports.download_url(export, settings),
                expires_on=legal_clock.today(settings, export.expires_at),
            )
    rejection = None
    if dsr.status == RequestStatus.REJECTED and dsr.outcome_reason:
        rejection = rejection_notice(
            dsr.regulation, dsr.outcome_reason, dsr.outcome_note
        ).model_dump(mode="json")
    open_statuses = {RequestStatus.IN_PROGRESS, RequestStatus.PAUSED}
    return StatusView(
        reference=str(dsr.id),
        type=dsr.type,
        regulation=dsr.regulation,
        status=dsr.status,
        pause_reason=dsr.pause_reason if dsr.status == RequestStatus.PAUSED else None,
        received_on=legal_clock.today(settings, dsr.received_at),
        due_date=dsr.due_date if dsr.status in open_statuses else None,
        extended=dsr.extended,
        verification_pending=dsr.status == RequestStatus.AWAITING_VERIFICATION,
        can_confirm_code=can_confirm_code(dsr),
        can_send_code=can_send_code(dsr, settings),
        can_reply=can_reply(dsr),
        can_cancel=can_cancel(dsr),
        downloads=sorted(downloads.values(), key=lambda download: download.format),
        rejection=rejection,
    )


# ---------------------------------------------------------------- what the subject does
# Each returns the outcome the page then shows (a key of ``OUTCOMES``); none raises for
# what a subject can do wrong, so the attempt (and its audit entry) is kept.

OUTCOMES: dict[str, tuple[str, str]] = {
    "verified": (
        "success",
        "Thank you: your identity is confirmed and we are now working on your request.",
    ),
    "wrong_code": (
        "error",
        "That code is not right, or it has expired. Check the code in our "
        "latest email and try again.",
    ),
    "too_many_attempts": (
        "error",
        "That code was entered wrongly too many times and no longer works. Ask for a new "
        "one below.",
    ),
    "code_sent": (
        "success",
        "We have emailed you a code. Enter it below; it works for a short time only.",
    ),
    "code_wait": (
        "error",
        "We sent you a code very recently. Please check your email, or ask again in a few minutes.",
    ),
    "answered": ("success", "Thank you: we have received your answer."),
    "empty_answer": ("error", "Please write your answer before sending it."),
    "answer_too_long": (
        "error",
        f"Your answer is too long: at most {ANSWER_MAX_LENGTH:,} characters.",
    ),
    "cancelled": ("success", "Your request is cancelled."),
    "not_allowed": (
        "error",
        "That is no longer possible: the status of your request has "
        "changed. Here is where it stands now.",
    ),
}


async def confirm_code(
    session: AsyncSession, *, settings: Settings, dsr: DsrRequest, code: str, now: datetime
) -> str:
    """The code from the subject's email: the same check as ``POST .../verification/confirm``."""
    if not can_confirm_code(dsr):
        return "not_allowed"
    digits = "".join(code.split())
    if not _CODE.fullmatch(digits):
        # Not six digits: it cannot be the code, and costs no attempt.
        return "wrong_code"
    outcome = await verification.confirm_code(
        session, settings=settings, dsr=dsr, code=digits, actor=SUBJECT_ACTOR, now=now
    )
    return {
        verification.CodeCheck.VERIFIED: "verified",
        verification.CodeCheck.INVALID: "wrong_code",
        verification.CodeCheck.TOO_MANY_ATTEMPTS: "too_many_attempts",
    }[outcome]


async def send_code(
    session: AsyncSession, *, settings: Settings, dsr: DsrRequest, now: datetime
) -> str:
    """A new code by email: the same as ``POST .../verification`` with ``email_code``."""
    if not can_send_code(dsr, settings):
        return "not_allowed"
    try:
        await verification.send_code(
            session, settings=settings, dsr=dsr, actor=SUBJECT_ACTOR, now=now
        )
    except verification.TooManyCodes:
        return "code_wait"
    return "code_sent"


async def reply(
    session: AsyncSession, *, settings: Settings, dsr: DsrRequest, answer: str, now: datetime
) -> str:
    """The subject's answer to a clarification, received now: the clock restarts today
    (the same as an officer's ``POST .../messages/reply``)."""
    if not can_reply(dsr):
        return "not_allowed"
    text = answer.strip()
    if not text:
        return "empty_answer"
    if len(text) > ANSWER_MAX_LENGTH:
        return "answer_too_long"
    try:
        await correspondence.record_reply(
            session,
            settings=settings,
            dsr=dsr,
            body=ReplyCreate(text=text, received_at=now),
            actor=SUBJECT_ACTOR,
            now=now,
        )
    except AppError:
        # Paused for clarification without a message to answer (paused by hand).
        return "not_allowed"
    return "answered"


async def cancel(
    session: AsyncSession, *, settings: Settings, dsr: DsrRequest, now: datetime
) -> str:
    """The subject withdraws their request (``lifecycle.cancel``, actor ``subject``)."""
    if not can_cancel(dsr):
        return "not_allowed"
    await lifecycle.cancel(
        session, settings=settings, dsr=dsr, note=None, actor=SUBJECT_ACTOR, now=now
    )
    return "cancelled"


def outcome_message(outcome: str | None) -> tuple[str, str] | None:
    """(kind, wording) for an outcome key from the query; None for anything else."""
    return OUTCOMES.get(outcome or "")
