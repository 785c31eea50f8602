"""The suppression list: who must not be contacted, on which channels, without knowing who.

Entries hold a keyed hash (HMAC, purpose "suppression") of the normalised email address or
phone number, never the value itself: a leaked list names nobody, and a CRM can still ask
"may I import this contact?" by sending the value it already holds. Suppressing someone
again merges channels into their existing entry (channels are only ever added here; an
officer removes an entry as a whole).
"""

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import pagination
from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.core.errors import NotFound, UnprocessableEntity
from app.keys import lookup
from app.models import RequestEvent, SuppressionEntry
from app.suppression.schemas import (
    IdentityKind,
    SuppressionPublic,
    suppression_email,
    suppression_phone,
)

logger = logging.getLogger("app.suppression")

HASH_PURPOSE = "suppression"
# Canonical order, so answers and stored lists do not depend on who added what first.
CHANNELS: tuple[str, ...] = ("email", "phone", "post", "sms")
REASONS: tuple[str, ...] = ("objection", "erasure", "restriction", "manual")


def identity_hashes(
    *, settings: Settings, email: str | None = None, phone: str | None = None
) -> list[tuple[IdentityKind, str]]:
    """(kind, keyed hash) of each identity given; 422 without the value if one is invalid."""
    hashes: list[tuple[IdentityKind, str]] = []
    try:
        if email is not None:
            hashes.append(("email", _hash(suppression_email(email), settings)))
        if phone is not None:
            hashes.append(("phone", _hash(suppression_phone(phone), settings)))
    except ValueError as exc:
        # The message names the kind of value, never the value (it is personal data).
        raise UnprocessableEntity(str(exc)) from None
    return hashes


async def lookup_hashes(
    session: AsyncSession,
    *,
    settings: Settings,
    email: str | None = None,
    phone: str | None = None,
) -> list[tuple[IdentityKind, str]]:
    """(kind, hash) of each identity under every key an entry may be hashed under: after a
    DSR_SECRET_KEY rotation, entries hashed under the retired key still match."""
    identity_hashes(settings=settings, email=email, phone=phone)  # 422 on an invalid value
    values: list[tuple[IdentityKind, str]] = []
    if email is not None:
        values.append(("email", suppression_email(email)))
    if phone is not None:
        values.append(("phone", suppression_phone(phone)))
    return [
        (kind, identity_hash)
        for kind, value in values
        for identity_hash in await lookup.lookup_hashes(
            session, settings=settings, purpose=HASH_PURPOSE, value=value
        )
    ]


def _hash(normalised: str, settings: Settings) -> str:
    return keyed_hash(normalised, secret_key=settings.secret_key, purpose=HASH_PURPOSE)


def _ordered(channels: Iterable[str]) -> list[str]:
    wanted = set(channels)
    unknown = wanted - set(CHANNELS)
    if unknown:
        raise UnprocessableEntity(f"unknown channels: {', '.join(sorted(unknown))}")
    return [channel for channel in CHANNELS if channel in wanted]


def _matching(hashes: list[tuple[IdentityKind, str]]) -> ColumnElement[bool]:
    return or_(
        *(
            and_(
                col(SuppressionEntry.identity_kind) == kind,
                col(SuppressionEntry.identity_hash) == identity_hash,
            )
            for kind, identity_hash in hashes
        )
    )


async def _find(
    session: AsyncSession, *, kind: str, identity_hash: str, for_update: bool = False
) -> SuppressionEntry | None:
    query = select(SuppressionEntry).where(
        col(SuppressionEntry.identity_kind) == kind,
        col(SuppressionEntry.identity_hash) == identity_hash,
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalars().first()


async def _find_any(
    session: AsyncSession, *, kind: str, identity_hashes: list[str], for_update: bool = False
) -> SuppressionEntry | None:
    query = select(SuppressionEntry).where(
        col(SuppressionEntry.identity_kind) == kind,
        col(SuppressionEntry.identity_hash).in_(identity_hashes),
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalars().first()


async def suppress(
    session: AsyncSession,
    *,
    settings: Settings,
    email: str | None = None,
    phone: str | None = None,
    channels: Iterable[str],
    reason: str,
    request_id: uuid.UUID | None = None,
    now: datetime,
) -> list[SuppressionEntry]:
    """Put each given identity on the list for ``channels``, merging with any existing entry.

    A repeat keeps the entry (and its ``created_at``), adds the new channels, and records the
    latest ``reason`` and ``request_id`` (if given) as why it was last extended.
    """
    if reason not in REASONS:
        raise UnprocessableEntity(f"unknown suppression reason; use one of {', '.join(REASONS)}")
    wanted = _ordered(channels)
    if not wanted:
        raise UnprocessableEntity("at least one channel is required")
    hashes = identity_hashes(settings=settings, email=email, phone=phone)
    if not hashes:
        raise UnprocessableEntity("an email address or a phone number is required")
    candidates = await lookup_hashes(session, settings=settings, email=email, phone=phone)
    entries = []
    for kind, identity_hash in hashes:
        entry = await _find_any(
            session,
            kind=kind,
            identity_hashes=[hashed for of, hashed in candidates if of == kind],
            for_update=True,
        )
        if entry is not None and entry.identity_hash != identity_hash:
            # Hashed under a retired key: the value is in hand, so re-hash it under the current.
            entry.identity_hash = identity_hash
        if entry is None:
            entry = SuppressionEntry(
                identity_kind=kind,
                identity_hash=identity_hash,
                channels=wanted,
                reason=reason,
                request_id=request_id,
                created_at=now,
                updated_at=now,
            )
            try:
                async with session.begin_nested():
                    session.add(entry)
            except IntegrityError:
                # A concurrent suppression created it first: merge into theirs instead.
                entry = await _find(
                    session, kind=kind, identity_hash=identity_hash, for_update=True
                )
                if entry is None:
                    raise
            else:
                entries.append(entry)
                continue
        # A new list object, so the JSON column is seen as changed.
        entry.channels = _ordered([*entry.channels, *wanted])
        entry.reason = reason
        entry.request_id = request_id or entry.request_id
        entry.updated_at = now
        entries.append(entry)
    await session.flush()
    return entries


async def check(
    session: AsyncSession,
    *,
    settings: Settings,
    email: str | None = None,
    phone: str | None = None,
) -> tuple[bool, list[str]]:
    """Whether any given identity is suppressed, and the union of the suppressed channels."""
    hashes = await lookup_hashes(session, settings=settings, email=email, phone=phone)
    if not hashes:
        return False, []
    query = select(SuppressionEntry).where(_matching(hashes))
    entries = (await session.execute(query)).scalars().all()
    channels = _ordered(channel for entry in entries for channel in entry.channels)
    return bool(entries), channels


async def list_entries(
    session: AsyncSession,
    *,
    settings: Settings,
    email: str | None = None,
    phone: str | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[SuppressionEntry], str | None]:
    """Entries newest first, keyset-paginated; filtered to the given identities if any."""
    query = select(SuppressionEntry)
    hashes = await lookup_hashes(session, settings=settings, email=email, phone=phone)
    if hashes:
        query = query.where(_matching(hashes))
    return await pagination.newest_first(
        session, query, SuppressionEntry, limit=limit, cursor=cursor
    )


async def remove(session: AsyncSession, *, entry_id: uuid.UUID, actor: str, now: datetime) -> None:
    """Delete an entry: the person may be contacted again on its channels.

    Logged without any identity; when the entry came from a request, the removal is also
    written to that request's audit trail.
    """
    entry = await session.get(SuppressionEntry, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound("No suppression entry with this id.")
    if entry.request_id is not None:
        session.add(
            RequestEvent(
                request_id=entry.request_id,
                type="suppression.removed",
                actor=actor,
                at=now,
                data={"entry_id": str(entry.id), "channels": list(entry.channels)},
            )
        )
    await session.delete(entry)
    await session.flush()
    logger.info(
        "suppression entry %s (%s, %s) removed by %s",
        entry.id,
        entry.identity_kind,
        ",".join(entry.channels),
        actor,
    )


async def remove_for_request(session: AsyncSession, *, request_id: uuid.UUID, reason: str) -> int:
    """Delete the entries a request added for ``reason`` (a restriction being lifted).

    An entry a later request extended for another reason is kept: that reason still holds.
    """
    entries = (
        await session.execute(
            select(SuppressionEntry)
            .where(
                col(SuppressionEntry.request_id) == request_id,
                col(SuppressionEntry.reason) == reason,
            )
            .with_for_update()
        )
    ).scalars()
    removed = 0
    for entry in entries:
        await session.delete(entry)
        removed += 1
    await session.flush()
    return removed


def suppression_public(entry: SuppressionEntry) -> SuppressionPublic:
    """An entry as officers see it (the service holds no identity to show)."""
    return SuppressionPublic.model_validate(entry, from_attributes=True)
