"""Records an erasure kept stay findable by the identities of the person it erased.

An erasure that keeps a category (orders kept for HMRC) deletes the rows that tied the
person's email and phone to the kept rows. Data kept for a legal obligation is still
personal data, and a later access or portability request must disclose it (Art. 15), so the
erasure leaves an index behind: the keyed hashes (purpose "retained-records") of every
identity of the person (the request's, and those found in the erased rows) in
``erasure_identities``, and the primary keys of the kept rows of each ``sql`` source in
``retained_records``. Both are written before the source commits the erasure. A later
request hashes its identities the same way, finds the erasures, and reads the kept rows by
key, with the reason each erasure gave for keeping them. No identity is stored in plaintext.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.data_sources.connectors import ErasureRecorder, SourceError, SubjectIdentity
from app.fulfilment import jobs
from app.keys import lookup
from app.models import DsrRequest, ErasureIdentity, RetainedRecord
from app.suppression import service as suppression
from app.suppression.schemas import suppression_email, suppression_phone

HASH_PURPOSE = "retained-records"
KEYS_PER_PAGE = 500
ALL_CHANNELS = ("email", "phone", "post", "sms")
Hashed = tuple[str, str]  # (kind, keyed hash)


def normalised(kind: str, value: Any) -> str | None:
    """The form an identity is hashed in (as the suppression list keys it); None if unusable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        if kind == "email":
            return suppression_email(text)
        if kind == "phone":
            return suppression_phone(text)
    except ValueError:
        return None
    return text if kind == "customer_id" else None


def _hash(kind: str, value: str, settings: Settings) -> Hashed:
    return kind, keyed_hash(f"{kind}:{value}", secret_key=settings.secret_key, purpose=HASH_PURPOSE)


def identity_pairs(identity: SubjectIdentity) -> list[tuple[str, Any]]:
    return [
        ("email", identity.email),
        ("phone", identity.phone),
        ("customer_id", identity.customer_id),
    ]


def hashed(settings: Settings, pairs: Iterable[tuple[str, Any]]) -> set[Hashed]:
    found = {(kind, normalised(kind, value)) for kind, value in pairs}
    return {_hash(kind, value, settings) for kind, value in found if value is not None}


async def keep_identities(
    session: AsyncSession, *, request_id: uuid.UUID, identities: set[Hashed], now: datetime
) -> None:
    """Record the erasure's identity hashes (those already there are skipped)."""
    existing = set(
        (
            await session.execute(
                select(
                    col(ErasureIdentity.identity_kind), col(ErasureIdentity.identity_hash)
                ).where(col(ErasureIdentity.request_id) == request_id)
            )
        ).all()
    )
    for kind, identity_hash in sorted(identities - existing):
        session.add(
            ErasureIdentity(
                request_id=request_id,
                identity_kind=kind,
                identity_hash=identity_hash,
                created_at=now,
            )
        )
    await session.flush()


class ErasureIndex:
    """What one erasure job leaves behind; ``for_source`` gives each connector its recorder.

    Each write is its own transaction in the service's database, guarded by the job's lease,
    committed before the connector commits its erasure: a crash in between leaves an index
    entry for a row that is still findable, never a kept row that nothing can find.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        job: jobs.ClaimedJob,
        request_id: uuid.UUID,
        identity: SubjectIdentity,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.job = job
        self.request_id = request_id
        self.clock = clock
        self.identities = hashed(settings, identity_pairs(identity))
        # Found in the erased rows: kind -> hashes (to count them; values are never kept).
        self.found_in_rows: dict[str, set[str]] = {}
        self.retained_any = False

    def for_source(self, data_source_id: uuid.UUID) -> ErasureRecorder:
        return _SourceRecorder(self, data_source_id)

    def counts(self) -> dict[str, int]:
        """How many distinct identities of each kind the erased rows held (no values)."""
        return {kind: len(hashes) for kind, hashes in sorted(self.found_in_rows.items())}

    async def found(self, identities: Sequence[tuple[str, Any]]) -> None:
        new = hashed(self.settings, identities)
        for kind, identity_hash in new:
            self.found_in_rows.setdefault(kind, set()).add(identity_hash)
        self.identities |= new
        contactable = {
            (kind, value)
            for kind, value in ((kind, normalised(kind, raw)) for kind, raw in identities)
            if value is not None and kind in ("email", "phone")
        }

        async def write(session: AsyncSession) -> None:
            # Every address and number the erased rows held, not only the request's.
            for kind, value in sorted(contactable):
                await suppression.suppress(
                    session,
                    settings=self.settings,
                    email=value if kind == "email" else None,
                    phone=value if kind == "phone" else None,
                    channels=ALL_CHANNELS,
                    reason="erasure",
                    request_id=self.request_id,
                    now=self.clock(),
                )
            if self.retained_any:
                await self._keep_identities(session)

        await self._write(write)

    async def retained(self, data_source_id: uuid.UUID, table: str, keys: Sequence[Any]) -> None:
        wanted = list(dict.fromkeys(str(key) for key in keys if key is not None))
        for start in range(0, len(wanted), KEYS_PER_PAGE):
            page = wanted[start : start + KEYS_PER_PAGE]
            await self._write(partial(self._keep_keys, data_source_id, table, page))
        self.retained_any = True

    async def _keep_keys(
        self, data_source_id: uuid.UUID, table: str, keys: list[str], session: AsyncSession
    ) -> None:
        await self._keep_identities(session)
        existing = set(
            (
                await session.execute(
                    select(col(RetainedRecord.record_key)).where(
                        col(RetainedRecord.request_id) == self.request_id,
                        col(RetainedRecord.data_source_id) == data_source_id,
                        col(RetainedRecord.table_name) == table,
                        col(RetainedRecord.record_key).in_(keys),
                    )
                )
            ).scalars()
        )
        now = self.clock()
        session.add_all(
            RetainedRecord(
                request_id=self.request_id,
                data_source_id=data_source_id,
                table_name=table,
                record_key=key,
                created_at=now,
            )
            for key in keys
            if key not in existing
        )

    async def _keep_identities(self, session: AsyncSession) -> None:
        await keep_identities(
            session, request_id=self.request_id, identities=self.identities, now=self.clock()
        )

    async def _write(self, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
        try:
            async with self.sessionmaker.begin() as session:
                await jobs.hold(session, self.job, settings=self.settings, now=self.clock())
                await work(session)
        except SQLAlchemyError as exc:
            # The erasure must not commit while its index is missing: roll it back, retry.
            raise SourceError(
                f"the service database could not record the erasure ({type(exc).__name__})",
                retryable=True,
            ) from None


class _SourceRecorder:
    """The index as one ``sql`` source's connector sees it."""

    def __init__(self, index: ErasureIndex, data_source_id: uuid.UUID) -> None:
        self.index = index
        self.data_source_id = data_source_id

    async def found(self, identities: Sequence[tuple[str, Any]]) -> None:
        await self.index.found(identities)

    async def retained(self, table: str, keys: Sequence[Any]) -> None:
        await self.index.retained(self.data_source_id, table, keys)


# ---------------------------------------------------------------- later requests


async def earlier_erasures(
    session: AsyncSession, *, settings: Settings, identity: SubjectIdentity
) -> list[DsrRequest]:
    """The erasures that kept records of a person with any of these identities, oldest first."""
    # Under every key an erasure's identities may be hashed under (a DSR_SECRET_KEY rotation).
    keys = await lookup.lookup_keys(session, settings=settings, purpose=HASH_PURPOSE)
    found = {(kind, normalised(kind, value)) for kind, value in identity_pairs(identity)}
    identities = {
        (kind, lookup.hash_with(key, f"{kind}:{value}"))
        for kind, value in found
        if value is not None
        for key in keys
    }
    if not identities:
        return []
    matching = or_(
        *(
            and_(
                col(ErasureIdentity.identity_kind) == kind,
                col(ErasureIdentity.identity_hash) == identity_hash,
            )
            for kind, identity_hash in sorted(identities)
        )
    )
    ids = select(col(ErasureIdentity.request_id)).where(matching)
    rows = await session.execute(
        select(DsrRequest)
        .where(col(DsrRequest.id).in_(ids))
        .order_by(col(DsrRequest.created_at), col(DsrRequest.id))
    )
    return list(rows.scalars())


def retained_summary(erasures: list[DsrRequest]) -> list[dict[str, Any]]:
    """What each erasure kept and why, as it told the person (no personal data)."""
    summary = []
    for erasure in erasures:
        state = erasure.fulfilment or {}
        for item in (state.get("result") or {}).get("retained") or []:
            summary.append(
                {
                    "erasure_request_id": str(erasure.id),
                    "erased_at": state.get("finished_at"),
                    "source": item.get("source"),
                    "category": item.get("category"),
                    "reason": item.get("reason"),
                    "tables": list(item.get("tables") or []),
                }
            )
    return summary


class KeysInIndex:
    """The kept rows' keys of one source for some erasures, a page at a time (``RetainedKeys``)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        data_source_id: uuid.UUID,
        request_ids: list[uuid.UUID],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.data_source_id = data_source_id
        self.request_ids = request_ids

    async def keys(self, table: str) -> AsyncIterator[list[str]]:
        after: str | None = None
        while True:
            key = col(RetainedRecord.record_key)
            query = (
                select(key)
                .distinct()
                .where(
                    col(RetainedRecord.data_source_id) == self.data_source_id,
                    col(RetainedRecord.table_name) == table,
                    col(RetainedRecord.request_id).in_(self.request_ids),
                )
            )
            if after is not None:
                query = query.where(key > after)
            async with self.sessionmaker() as session:
                page = list(
                    (await session.execute(query.order_by(key).limit(KEYS_PER_PAGE))).scalars()
                )
            if page:
                yield page
            if len(page) < KEYS_PER_PAGE:
                return
            after = page[-1]
