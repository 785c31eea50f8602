"""Hashing keys an equality look-up must try after a DSR_SECRET_KEY rotation.

A keyed hash stored under a retired key only matches if the look-up hashes the value under
that key too. Where the hashed input is stored (a request's identities, a client's secret)
``dsr keys rotate`` recomputes the hash; where it deliberately is not (the suppression list,
erased subjects' identities, calendar feed tokens) the retired key's hashing key for that
purpose is kept in ``retired_hash_keys``, so look-ups try: the current key, the keys still
in DSR_SECRET_KEY_PREVIOUS, then the retired ones.
"""

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import decrypt_secret, derived_keys
from app.models import RetiredHashKey

# Look-up purposes whose input is not stored anywhere: never re-hashable.
UNSTORED_INPUT_PURPOSES = ("suppression", "retained-records", "calendar-feed")


def hash_with(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under an already-derived key (hex), as ``keyed_hash`` does."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


async def retired_keys(session: AsyncSession, *, settings: Settings, purpose: str) -> list[bytes]:
    """The kept hashing keys of retired DSR_SECRET_KEYs for ``purpose`` (oldest last)."""
    rows = (
        await session.execute(
            select(col(RetiredHashKey.key_encrypted))
            .where(col(RetiredHashKey.purpose) == purpose)
            .order_by(col(RetiredHashKey.id).desc())
        )
    ).scalars()
    keys = []
    for encrypted in rows:
        text = decrypt_secret(encrypted, secret_keys=settings.reading_keys)
        if text is not None:
            keys.append(bytes.fromhex(text))
    return keys


async def lookup_keys(session: AsyncSession, *, settings: Settings, purpose: str) -> list[bytes]:
    """Every hashing key a stored hash for ``purpose`` may be under, current first."""
    keys = derived_keys(settings.reading_keys, purpose)
    for key in await retired_keys(session, settings=settings, purpose=purpose):
        if key not in keys:
            keys.append(key)
    return keys


async def lookup_hashes(
    session: AsyncSession, *, settings: Settings, purpose: str, value: str
) -> list[str]:
    """``value``'s hash under each key of ``lookup_keys`` (current first)."""
    keys = await lookup_keys(session, settings=settings, purpose=purpose)
    return list(dict.fromkeys(hash_with(key, value) for key in keys))
