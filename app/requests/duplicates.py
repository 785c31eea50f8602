"""Repeated requests: the subject's keyed identity hashes, the open duplicate found at intake,
and the subject's history of requests shown to officers.

Matching is by keyed hash (HMAC, purpose ``request-subject``) of the normalised email (case
folded), E.164 phone and customer id, never by plaintext: the same person is recognised by
whichever identity two requests share.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.core.group_commit import Write
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


_MATCHED_BY = ("subject_email_hash", "subject_phone_hash", "subject_customer_id_hash")


def _oldest_open(name: str) -> Select[Any]:
    """Per (type, value of the hash column ``name``): the oldest open request, one row each.

    Ranked in the database so a subject with thousands of open requests still sends one row.
    The values and types are bound at execution (``<name>_values``, ``types``).
    """
    table = DsrRequest.__table__  # type: ignore[attr-defined]
    column = table.c[name]
    ranked = (
        select(
            table.c.id,
            table.c.type,
            table.c.received_at,
            column.label("hash"),
            func.row_number()
            .over(partition_by=(table.c.type, column), order_by=(table.c.received_at, table.c.id))
            .label("rank"),
        )
        .where(
            column.in_(bindparam(f"{name}_values", expanding=True)),
            table.c.type.in_(bindparam("types", expanding=True)),
            table.c.status.in_(OPEN_STATUSES),
        )
        .subquery()
    )
    return select(
        literal(name).label("kind"), ranked.c.id, ranked.c.type, ranked.c.received_at, ranked.c.hash
    ).where(ranked.c.rank == 1)


@lru_cache(maxsize=8)
def _oldest_open_query(kinds: tuple[str, ...]) -> CompoundSelect:
    # Built once per combination of identities: building it per batch was 8 % of intake.
    return union_all(*(_oldest_open(name) for name in kinds))


async def flag_duplicates(connection: AsyncConnection, writes: list[Write]) -> None:
    """Group-commit ``prepare`` for intake: set ``possible_duplicate_of`` on each new request.

    One query (over the three hash indexes) finds the oldest open request per type and
    identity among the batch's subjects. A request earlier in the same batch counts as open
    too, so a burst of identical requests is flagged even when they commit together.
    """
    new_rows = [
        row
        for write in writes
        for rows_of, rows in write.rows
        if rows_of.name == DsrRequest.__tablename__
        for row in rows
    ]
    values = {
        name: found
        for name in _MATCHED_BY
        if (found := sorted({row[name] for row in new_rows if row.get(name)}))
    }
    if not values:
        return
    params: dict[str, Any] = {f"{name}_values": found for name, found in values.items()}
    params["types"] = sorted({row["type"] for row in new_rows})
    # (kind of identity, its hash, type) -> (received_at, id) of the oldest open request.
    oldest: dict[tuple[str, str, str], tuple[datetime, uuid.UUID]] = {}
    for match in await connection.execute(_oldest_open_query(tuple(values)), params):
        oldest[(match.kind, match.hash, match.type)] = (match.received_at, match.id)
    for row in new_rows:
        keys = [(name, row[name], row["type"]) for name in _MATCHED_BY if row.get(name)]
        matches = [oldest[key] for key in keys if key in oldest]
        row["possible_duplicate_of"] = min(matches)[1] if matches else None
        mine = (row["received_at"], row["id"])
        for key in keys:  # later requests of the batch see this one as open
            oldest[key] = min(oldest.get(key, mine), mine)


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
