"""Repeated requests: the subject's keyed identity hashes, the open duplicate found at intake,
and the subject's history of requests shown to officers.

Matching is by keyed hash (HMAC, purpose ``request-subject``) of the normalised email (case
folded), E.164 phone and customer id, never by plaintext: the same person is recognised by
whichever identity two requests share.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.enums import RequestStatus
from app.models import DsrRequest

HASH_PURPOSE = "request-subject"
OPEN_STATUSES = (
    RequestStatus.AWAITING_VERIFICATION.value,
    RequestStatus.IN_PROGRESS.value,
    RequestStatus.PAUSED.value,
)
# "In the last 12 months": the window an officer weighs a request as excessive over.
HISTORY_WINDOW_DAYS = 365


@dataclass(frozen=True)
class SubjectHashes:
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None

    def any(self) -> bool:
        return bool(self.email or self.phone or self.customer_id)


def _hash(settings: Settings, kind: str, value: str | None) -> str | None:
    if not value:
        return None
    # The kind is part of the hashed text: an email never matches a customer id spelt alike.
    return keyed_hash(f"{kind}:{value}", secret_key=settings.secret_key, purpose=HASH_PURPOSE)


def subject_hashes(
    settings: Settings, *, email: str | None, phone: str | None, customer_id: str | None
) -> SubjectHashes:
    """Keyed hashes of already-normalised identities (email validated, phone in E.164)."""
    return SubjectHashes(
        # Mailboxes are case-insensitive in practice; CRMs disagree on the local part's case.
        email=_hash(settings, "email", email.lower() if email else None),
        phone=_hash(settings, "phone", phone),
        customer_id=_hash(settings, "customer_id", customer_id.strip() if customer_id else None),
    )


def hashes_of(settings: Settings, dsr: DsrRequest) -> SubjectHashes:
    """The request's hashes: computed from its identities, so requests logged before the hash
    columns existed still find their later requests."""
    return subject_hashes(
        settings,
        email=dsr.subject_email,
        phone=dsr.subject_phone,
        customer_id=dsr.subject_customer_id,
    )


def store_hashes(dsr: DsrRequest, hashes: SubjectHashes) -> None:
    dsr.subject_email_hash = hashes.email
    dsr.subject_phone_hash = hashes.phone
    dsr.subject_customer_id_hash = hashes.customer_id


def same_subject(hashes: SubjectHashes) -> ColumnElement[bool]:
    """Requests sharing any identity with ``hashes`` (each side of the OR has its index)."""
    matches = [
        column == value
        for column, value in (
            (col(DsrRequest.subject_email_hash), hashes.email),
            (col(DsrRequest.subject_phone_hash), hashes.phone),
            (col(DsrRequest.subject_customer_id_hash), hashes.customer_id),
        )
        if value
    ]
    return or_(*matches) if matches else false()


async def find_open_duplicate(
    session: AsyncSession, *, request_type: str, hashes: SubjectHashes
) -> uuid.UUID | None:
    """The oldest open request of this type by the same subject, if any (one indexed query)."""
    if not hashes.any():
        return None
    query = (
        select(col(DsrRequest.id))
        .where(
            same_subject(hashes),
            col(DsrRequest.type) == request_type,
            col(DsrRequest.status).in_(OPEN_STATUSES),
        )
        .order_by(col(DsrRequest.received_at), col(DsrRequest.id))
        .limit(1)
    )
    found: uuid.UUID | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def subject_history(
    session: AsyncSession, *, settings: Settings, dsr: DsrRequest, now: datetime
) -> dict[str, int]:
    """How many OTHER requests this subject made per type, received in the last 365 days up to
    ``now`` (any status; this request itself is not counted)."""
    hashes = hashes_of(settings, dsr)
    if not hashes.any():
        return {}
    query = (
        select(col(DsrRequest.type), func.count())
        .where(
            same_subject(hashes),
            col(DsrRequest.id) != dsr.id,
            col(DsrRequest.received_at) >= now - timedelta(days=HISTORY_WINDOW_DAYS),
        )
        .group_by(col(DsrRequest.type))
    )
    rows = (await session.execute(query)).all()
    return {str(request_type): int(count) for request_type, count in rows}
