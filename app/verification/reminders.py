"""One reminder to confirm identity, for a request still unverified a while after receipt.

``DSR_VERIFICATION_REMINDER_DAYS`` (default 7; 0: never) after it was logged (and so
acknowledged: a request back-dated to its day of receipt by post is not reminded the day it
is logged), a request still ``awaiting_verification`` whose subject gave an email address,
and which has not yet expired, is sent one reminder: what
they can confirm their identity with (the request type's policy) and the day the request is
closed if they do not (``DSR_VERIFICATION_EXPIRY_DAYS`` after receipt). Whichever worker
claims the row first (``FOR UPDATE SKIP LOCKED``) sends it and stamps
``verification_reminded_at`` in the same transaction, so it goes once.
"""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app import deadlines
from app.core.config import Settings
from app.enums import RequestStatus, VerificationMethod
from app.mail import messages
from app.models import DsrRequest
from app.requests import audit
from app.requests.identity_policy import allowed_methods

SYSTEM_ACTOR = "system"


def reminders_enabled(settings: Settings) -> bool:
    """A reminder due no earlier than the expiry would never be sent before it."""
    days = settings.verification_reminder_days
    return 0 < days < settings.verification_expiry_days


async def send_verification_reminders(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 500
) -> int:
    """Queue the reminder for each request now due one; returns how many were sent."""
    if not reminders_enabled(settings):
        return 0
    due_before = now - timedelta(days=settings.verification_reminder_days)
    expires_before = now - timedelta(days=settings.verification_expiry_days)
    rows = (
        await session.execute(
            select(DsrRequest)
            .where(
                col(DsrRequest.status) == RequestStatus.AWAITING_VERIFICATION,
                col(DsrRequest.verification_reminded_at).is_(None),
                col(DsrRequest.subject_email).is_not(None),
                col(DsrRequest.created_at) < due_before,
                # About to expire anyway: the expiry sweep closes it instead.
                col(DsrRequest.received_at) >= expires_before,
            )
            .order_by(col(DsrRequest.created_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    sent = 0
    for dsr in rows:
        closes_on = deadlines.local_date(
            dsr.received_at + timedelta(days=settings.verification_expiry_days), settings.tz
        )
        queued = await messages.queue_message(
            session,
            settings=settings,
            dsr=dsr,
            kind=messages.MessageKind.VERIFICATION_REMINDER,
            context={
                "received_on": deadlines.local_date(dsr.received_at, settings.tz),
                "closes_on": closes_on,
                "identity_proofs": [
                    str(method)
                    for method in allowed_methods(settings, dsr.type)
                    if method != VerificationMethod.IDENTITY_ASSERTION
                ],
            },
            now=now,
        )
        dsr.verification_reminded_at = now
        session.add(dsr)
        audit.record(
            session,
            dsr=dsr,
            settings=settings,
            now=now,
            actor=SYSTEM_ACTOR,
            audit_type="request.verification_reminder_sent",
            audit_data={"closes_on": closes_on.isoformat(), "queued": queued},
        )
        sent += 1
    return sent
