"""Identity verification: the methods that confirm who the subject is, on a waiting request.

Methods: a one-time code emailed to the subject, an officer's document check and an officer's
attestation from context; an integration's identity assertion is checked at intake
(``app.auth.assertions``). Which methods a type accepts is ``app.requests.identity_policy``.
Confirming identity the service asked for starts the clock that day.

Email codes are kept only as a keyed hash bound to their request, expire, die after a few
wrong attempts, and may be resent only after a cooldown and a few times an hour. What the
caller is told stays generic: "invalid or expired code", "too many attempts".
"""

import math
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import keyed_hash, mac_matches
from app.core.errors import AppError, UnprocessableEntity
from app.enums import RequestStatus, VerificationMethod
from app.mail import messages
from app.models import DsrRequest, VerificationCode
from app.requests import audit, legal_clock, lifecycle
from app.requests.identity_policy import allowed_methods, ensure_method_allowed
from app.verification.schemas import DocumentVerification

# ---------------------------------------------------------------- shared transitions


async def _close_open_codes(session: AsyncSession, *, dsr: DsrRequest, now: datetime) -> None:
    await session.execute(
        update(VerificationCode)
        .where(
            col(VerificationCode.request_id) == dsr.id,
            col(VerificationCode.closed_at).is_(None),
        )
        .values(closed_at=now)
    )


async def _identity_confirmed(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    method: VerificationMethod,
    actor: str,
    now: datetime,
    audit_data: dict[str, Any],
) -> DsrRequest:
    """Move to in_progress; if we asked for identity, the clock starts today (local date)."""
    dsr.status = RequestStatus.IN_PROGRESS.value
    dsr.verification_status = "verified"
    dsr.verification_method = method.value
    dsr.verified_at = now
    if dsr.identity_requested:
        started_on = legal_clock.today(settings, now)
    else:
        # Nothing was asked of the subject, so the request was complete on receipt.
        started_on = legal_clock.today(settings, dsr.received_at)
    legal_clock.start_clock(dsr, settings, started_on=started_on)
    await _close_open_codes(session, dsr=dsr, now=now)
    return lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.verified",
        data={**audit_data, "clock_started_on": str(dsr.clock_started_on)},
    )


def _failed(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    method: VerificationMethod,
    actor: str,
    now: datetime,
    audit_data: dict[str, Any],
) -> None:
    dsr.verification_status = "failed"
    dsr.verification_method = method.value
    lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.verification_failed",
        data=audit_data,
    )


# ---------------------------------------------------------------- document and attestation

_DOCUMENT_TEXT = {
    "passport": "a copy of your valid passport",
    "driving_licence": "a copy of your valid photocard driving licence",
}
_EMAIL_CODE_TEXT = "a one-time code that we email to the address you gave us"


def alternatives_after_failed_document(
    settings: Settings, dsr: DsrRequest, failed_document: str
) -> list[str]:
    """What the subject could send instead, in the words of the message to them."""
    allowed = allowed_methods(settings, dsr.type)
    alternatives = []
    if VerificationMethod.DOCUMENT in allowed:
        alternatives += [text for kind, text in _DOCUMENT_TEXT.items() if kind != failed_document]
    if VerificationMethod.EMAIL_CODE in allowed and dsr.subject_email:
        alternatives.append(_EMAIL_CODE_TEXT)
    return alternatives


async def record_document_check(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    check: DocumentVerification,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """An officer's document check; a pass starts the clock on the day of the check.

    A fail keeps the request waiting and tells the subject what to send instead.
    """
    lifecycle.ensure_allowed(dsr, lifecycle.Action.VERIFY)
    ensure_method_allowed(settings, dsr.type, VerificationMethod.DOCUMENT)
    audit_data: dict[str, Any] = {
        "method": "document",
        "document_type": check.document_type,
        "business_address_confirmed": check.business_address_confirmed,
        "result": check.result,
        "checked_by": actor,
        "checked_at": now.isoformat(),
    }
    # Asking the subject for a document is asking for identity: the clock waits for it.
    dsr.identity_requested = True
    if check.result == "passed":
        return await _identity_confirmed(
            session,
            settings=settings,
            dsr=dsr,
            method=VerificationMethod.DOCUMENT,
            actor=actor,
            now=now,
            audit_data=audit_data,
        )
    alternatives = alternatives_after_failed_document(settings, dsr, check.document_type)
    audit_data["subject_notified"] = await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.VERIFICATION_FAILED,
        context={"document_type": check.document_type, "alternatives": alternatives},
        now=now,
    )
    _failed(
        session,
        settings=settings,
        dsr=dsr,
        method=VerificationMethod.DOCUMENT,
        actor=actor,
        now=now,
        audit_data=audit_data,
    )
    return dsr


async def attest(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    note: str,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """An officer confirms identity from context (e.g. sent from the address on file)."""
    lifecycle.ensure_allowed(dsr, lifecycle.Action.VERIFY)
    ensure_method_allowed(settings, dsr.type, VerificationMethod.OFFICER_ATTESTATION)
    return await _identity_confirmed(
        session,
        settings=settings,
        dsr=dsr,
        method=VerificationMethod.OFFICER_ATTESTATION,
        actor=actor,
        now=now,
        audit_data={"method": "officer_attestation", "note": note, "attested_by": actor},
    )


# ---------------------------------------------------------------- email one-time codes

CODE_PURPOSE = "verification-code"
SEND_WINDOW = timedelta(hours=1)


class NoEmailAddress(UnprocessableEntity):
    title = "No email address"
    slug = "no-email-address"


class TooManyCodes(AppError):
    status = 429
    title = "Too many codes requested"
    slug = "too-many-codes"


class InvalidCode(UnprocessableEntity):
    title = "Invalid or expired code"
    slug = "invalid-code"

    def __init__(self) -> None:
        super().__init__("invalid or expired code")


class TooManyAttempts(UnprocessableEntity):
    title = "Too many attempts"
    slug = "too-many-attempts"

    def __init__(self) -> None:
        super().__init__("too many attempts; request a new code")


class CodeCheck(StrEnum):
    VERIFIED = "verified"
    INVALID = "invalid"
    TOO_MANY_ATTEMPTS = "too_many_attempts"


def new_code() -> str:
    """Six digits from the OS's CSPRNG, zero-padded."""
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(code: str, *, request_id: uuid.UUID, secret_key: str) -> str:
    # Bound to the request, so a hash copied onto another request matches nothing.
    return keyed_hash(f"{request_id}:{code}", secret_key=secret_key, purpose=CODE_PURPOSE)


def resend_wait_seconds(sent_at: Sequence[datetime], *, settings: Settings, now: datetime) -> int:
    """Seconds until another code may be sent for a request (0: now).

    ``sent_at``: when earlier codes were sent. Limits: a cooldown after the latest send and
    at most ``verification_max_sends_per_hour`` in any rolling hour.
    """
    if not sent_at:
        return 0
    waits = [(max(sent_at) + timedelta(seconds=settings.verification_resend_cooldown)) - now]
    in_window = sorted(moment for moment in sent_at if moment > now - SEND_WINDOW)
    excess = len(in_window) - settings.verification_max_sends_per_hour
    if excess >= 0:
        # A slot frees up when the send that brings the count under the limit leaves the window.
        waits.append(in_window[excess] + SEND_WINDOW - now)
    longest = max(wait.total_seconds() for wait in waits)
    return math.ceil(longest) if longest > 0 else 0


async def send_code(
    session: AsyncSession, *, settings: Settings, dsr: DsrRequest, actor: str, now: datetime
) -> DsrRequest:
    """Email the subject a new one-time code; older codes of the request stop working.

    Raises InvalidTransition (409) unless awaiting verification, MethodNotAllowed or
    NoEmailAddress (422), TooManyCodes (429, with Retry-After) when sent too often.
    """
    lifecycle.ensure_allowed(dsr, lifecycle.Action.VERIFY)
    ensure_method_allowed(settings, dsr.type, VerificationMethod.EMAIL_CODE)
    if not dsr.subject_email:
        raise NoEmailAddress(
            "The request holds no email address for the subject; verify another way."
        )
    lookback = max(SEND_WINDOW, timedelta(seconds=settings.verification_resend_cooldown))
    sent_at = list(
        (
            await session.execute(
                select(col(VerificationCode.sent_at)).where(
                    col(VerificationCode.request_id) == dsr.id,
                    col(VerificationCode.sent_at) > now - lookback,
                )
            )
        ).scalars()
    )
    wait = resend_wait_seconds(sent_at, settings=settings, now=now)
    if wait:
        raise TooManyCodes(
            "A code was requested too recently or too often; retry later.",
            headers={"Retry-After": str(wait)},
        )
    await _close_open_codes(session, dsr=dsr, now=now)
    code = new_code()
    expires_at = now + timedelta(seconds=settings.verification_code_ttl)
    session.add(
        VerificationCode(
            id=uuid.uuid4(),
            request_id=dsr.id,
            code_hash=code_hash(code, request_id=dsr.id, secret_key=settings.secret_key),
            sent_at=now,
            expires_at=expires_at,
        )
    )
    await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.VERIFICATION_CODE,
        context={"code": code, "expires_minutes": settings.verification_code_ttl // 60},
        now=now,
    )
    dsr.identity_requested = True
    dsr.verification_status = "pending"
    dsr.verification_method = VerificationMethod.EMAIL_CODE.value
    return lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.verification_requested",
        data={"method": "email_code", "expires_at": expires_at.isoformat()},
    )


async def confirm_code(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    code: str,
    actor: str,
    now: datetime,
) -> CodeCheck:
    """Check a code the subject typed in; every outcome is written (audit, attempt count).

    Returns rather than raises on a wrong code, so the caller's transaction keeps the
    attempt. Raises InvalidTransition (409) unless the request awaits verification.
    """
    lifecycle.ensure_allowed(dsr, lifecycle.Action.VERIFY)
    # At most one code is open: each send closes the ones before it.
    current = (
        await session.execute(
            select(VerificationCode)
            .where(
                col(VerificationCode.request_id) == dsr.id,
                col(VerificationCode.closed_at).is_(None),
            )
            .limit(1)
        )
    ).scalar_one_or_none()

    def rejected(reason: str, failed_attempts: int | None = None) -> None:
        # Audit only: the reason helps an officer support the subject; the answer stays generic.
        data: dict[str, Any] = {"method": "email_code", "reason": reason}
        if failed_attempts is not None:
            data["failed_attempts"] = failed_attempts
        audit.record(
            session,
            dsr=dsr,
            settings=settings,
            now=now,
            actor=actor,
            audit_type="request.verification_code_rejected",
            audit_data=data,
        )

    if current is None:
        latest = (
            await session.execute(
                select(VerificationCode)
                .where(col(VerificationCode.request_id) == dsr.id)
                .order_by(col(VerificationCode.sent_at).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if latest is not None and latest.failed_attempts >= settings.verification_max_attempts:
            rejected("code_locked", latest.failed_attempts)
            return CodeCheck.TOO_MANY_ATTEMPTS
        rejected("no_open_code")
        return CodeCheck.INVALID
    if current.expires_at <= now:
        rejected("expired")
        return CodeCheck.INVALID
    # A code mailed just before a key rotation still confirms: any reading key.
    expected = [code_hash(code, request_id=dsr.id, secret_key=key) for key in settings.reading_keys]
    if mac_matches(expected, current.code_hash):
        current.closed_at = now
        session.add(current)
        await _identity_confirmed(
            session,
            settings=settings,
            dsr=dsr,
            method=VerificationMethod.EMAIL_CODE,
            actor=actor,
            now=now,
            audit_data={"method": "email_code", "failed_attempts": current.failed_attempts},
        )
        return CodeCheck.VERIFIED
    current.failed_attempts += 1
    session.add(current)
    if current.failed_attempts < settings.verification_max_attempts:
        rejected("wrong_code", current.failed_attempts)
        return CodeCheck.INVALID
    current.closed_at = now
    _failed(
        session,
        settings=settings,
        dsr=dsr,
        method=VerificationMethod.EMAIL_CODE,
        actor=actor,
        now=now,
        audit_data={
            "method": "email_code",
            "reason": "too_many_attempts",
            "failed_attempts": current.failed_attempts,
        },
    )
    return CodeCheck.TOO_MANY_ATTEMPTS


CODE_ERRORS: dict[CodeCheck, type[UnprocessableEntity]] = {
    CodeCheck.INVALID: InvalidCode,
    CodeCheck.TOO_MANY_ATTEMPTS: TooManyAttempts,
}
