"""``dsr keys rotate``: move everything stored under a retired DSR_SECRET_KEY to the current.

In batches, each committed on its own (safe to run while the service runs, and to run again
after an interruption): every Fernet-encrypted column is re-encrypted under the current key;
every keyed hash whose input is stored is recomputed (a request's identity hashes, a
client's secret hash); for the look-ups whose input is deliberately not stored (suppression
list, erased subjects' identities, calendar feed tokens) each retired key's hashing key for
that purpose is kept (``retired_hash_keys``). Afterwards DSR_SECRET_KEY_PREVIOUS can be
removed. Each update is conditional on the value read, so a concurrent change is never
overwritten (the next run picks it up).
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.clients import hash_secret
from app.core.config import Settings
from app.core.crypto import (
    decrypt_secret,
    derived_key,
    encrypt_secret,
    encrypted_under_current,
    reencrypt_secret,
)
from app.core.time import utcnow
from app.keys.lookup import UNSTORED_INPUT_PURPOSES, retired_keys
from app.models import (
    Client,
    DataSource,
    DsrRequest,
    FulfilmentTask,
    MailMessage,
    RequestMessage,
    RequestNote,
    RetiredHashKey,
    User,
    WebhookEndpoint,
)
from app.requests.duplicates import subject_hashes

# (model, encrypted columns): every column holding a Fernet token.
ENCRYPTED_COLUMNS: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (Client, ("secret_encrypted",)),
    (RequestNote, ("text_encrypted",)),
    (RequestMessage, ("text_encrypted",)),
    (WebhookEndpoint, ("secret_encrypted", "previous_secret_encrypted")),
    (MailMessage, ("recipient_encrypted", "body_encrypted", "html_encrypted")),
    (DataSource, ("secret_config_encrypted",)),
    (FulfilmentTask, ("records_encrypted",)),
    (User, ("totp_secret_encrypted",)),
    (RetiredHashKey, ("key_encrypted",)),
)
_IDENTITY_HASHES = ("subject_email_hash", "subject_phone_hash", "subject_customer_id_hash")


@dataclass
class RotationReport:
    """What moved: counts per ``table.column`` (never a value)."""

    reencrypted: Counter[str] = field(default_factory=Counter)
    unreadable: Counter[str] = field(default_factory=Counter)
    rehashed: Counter[str] = field(default_factory=Counter)
    hash_keys_kept: int = 0

    def lines(self) -> list[str]:
        lines = [f"kept {self.hash_keys_kept} retired look-up hash key(s)"]
        lines += [f"re-encrypted {n} in {name}" for name, n in sorted(self.reencrypted.items())]
        lines += [f"re-hashed {n} in {name}" for name, n in sorted(self.rehashed.items())]
        lines += [
            f"UNREADABLE under every key: {n} in {name} (left as they are)"
            for name, n in sorted(self.unreadable.items())
        ]
        return lines


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: Table,
    columns: Sequence[str],
    batch_size: int,
) -> Any:
    """Yield (session, rows) in primary-key order, committing after each batch."""
    (key_column,) = table.primary_key.columns
    last: Any = None
    while True:
        async with sessionmaker() as session:
            query = select(key_column, *(table.c[name] for name in columns)).order_by(key_column)
            if last is not None:
                query = query.where(key_column > last)
            rows = (await session.execute(query.limit(batch_size))).all()
            if not rows:
                return
            yield session, rows
            await session.commit()
            last = rows[-1][0]


async def _keep_hash_keys(
    session: AsyncSession, settings: Settings, report: RotationReport
) -> None:
    for purpose in UNSTORED_INPUT_PURPOSES:
        kept = await retired_keys(session, settings=settings, purpose=purpose)
        for previous in settings.secret_key_previous:
            key = derived_key(previous, purpose)
            if key in kept or previous == settings.secret_key:
                continue
            session.add(
                RetiredHashKey(
                    purpose=purpose,
                    key_encrypted=encrypt_secret(key.hex(), secret_key=settings.secret_key),
                    retired_at=utcnow(),
                )
            )
            kept.append(key)
            report.hash_keys_kept += 1
    await session.commit()


async def _reencrypt(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    model: Any,
    columns: Sequence[str],
    batch_size: int,
    report: RotationReport,
) -> None:
    table = _table(model)
    (key_column,) = table.primary_key.columns
    async for session, rows in _batches(sessionmaker, table, columns, batch_size):
        for row in rows:
            for index, name in enumerate(columns, start=1):
                token = row[index]
                # Empty: wiped once used (a sent mail keeps no recipient or body). NULL:
                # nothing stored (no HTML part; an acknowledgement intent has no bodies).
                if not token or encrypted_under_current(token, secret_key=settings.secret_key):
                    continue
                fresh = reencrypt_secret(token, secret_keys=settings.reading_keys)
                if fresh is None:
                    report.unreadable[f"{table.name}.{name}"] += 1
                    continue
                values: dict[str, Any] = {name: fresh}
                if model is Client and name == "secret_encrypted":
                    secret = decrypt_secret(fresh, secret_keys=settings.reading_keys) or ""
                    values["secret_hash"] = hash_secret(secret, secret_key=settings.secret_key)
                    report.rehashed[f"{table.name}.secret_hash"] += 1
                await session.execute(
                    update(table)
                    .where(and_(key_column == row[0], table.c[name] == token))
                    .values(**values)
                )
                report.reencrypted[f"{table.name}.{name}"] += 1


async def _rehash_requests(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    batch_size: int,
    report: RotationReport,
) -> None:
    table = _table(DsrRequest)
    identities = ("subject_email", "subject_phone", "subject_customer_id")
    async for session, rows in _batches(
        sessionmaker, table, (*identities, *_IDENTITY_HASHES), batch_size
    ):
        for row in rows:
            email, phone, customer_id, *stored = row[1:]
            fresh = subject_hashes(settings, email=email, phone=phone, customer_id=customer_id)
            values: dict[str, Any] = {}
            for name, old, new in zip(
                _IDENTITY_HASHES, stored, (fresh.email, fresh.phone, fresh.customer_id), strict=True
            ):
                # No identity left (erased): the old hash cannot be recomputed, nor matched.
                if new is not None and old is not None and new != old:
                    values[name] = new
                    report.rehashed[f"{table.name}.{name}"] += 1
            if values:
                await session.execute(
                    update(table)
                    .where(
                        and_(
                            table.c.id == row[0],
                            *(
                                table.c[name] == row[1 + len(identities) + i]
                                for i, name in enumerate(_IDENTITY_HASHES)
                                if name in values
                            ),
                        )
                    )
                    .values(**values)
                )


async def rotate(
    sessionmaker: async_sessionmaker[AsyncSession], *, settings: Settings, batch_size: int = 500
) -> RotationReport:
    """Re-encrypt and re-hash everything under the current key (see the module docstring)."""
    report = RotationReport()
    async with sessionmaker() as session:
        await _keep_hash_keys(session, settings, report)
    for model, columns in ENCRYPTED_COLUMNS:
        await _reencrypt(sessionmaker, settings, model, columns, batch_size, report)
    await _rehash_requests(sessionmaker, settings, batch_size, report)
    return report
