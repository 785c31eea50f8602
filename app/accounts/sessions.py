"""Browser sessions: a random cookie value, of which the database keeps only the sha256.

A session ends at logout, after ``DSR_SESSION_IDLE_MINUTES`` without a request, and
``DSR_SESSION_MAX_HOURS`` after login whatever happens; also when the person is disabled or
their password is reset or changed (``service.end_sessions``). A new session (new value) is
made at every login, so a value a browser held before logging in is never promoted.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import BrowserSession, User

COOKIE_NAME = "dsr_session"
# Between the password and the TOTP code: long enough to open the authenticator.
PENDING_LIFETIME = timedelta(minutes=5)


def session_id(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


@dataclass(frozen=True)
class OpenSession:
    row: BrowserSession
    user: User


async def start(
    session: AsyncSession,
    *,
    user: User,
    now: datetime,
    address_hash: str | None,
    pending_second_factor: bool = False,
) -> tuple[str, BrowserSession]:
    """A new session for ``user``: the cookie value (give it to the browser) and its row."""
    cookie_value = secrets.token_urlsafe(32)
    row = BrowserSession(
        id=session_id(cookie_value),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        pending_second_factor=pending_second_factor,
        client_address_hash=address_hash,
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    await session.flush()
    return cookie_value, row


def _expired(row: BrowserSession, settings: Settings, now: datetime) -> bool:
    if row.pending_second_factor:
        return now - row.created_at > PENDING_LIFETIME
    return now - row.last_seen_at > timedelta(
        minutes=settings.session_idle_minutes
    ) or now - row.created_at > timedelta(hours=settings.session_max_hours)


async def load(
    session: AsyncSession,
    *,
    cookie_value: str | None,
    settings: Settings,
    now: datetime,
    pending_second_factor: bool = False,
) -> OpenSession | None:
    """The open session behind the cookie (and its active person), seen now; or None.

    ``pending_second_factor`` chooses which kind is wanted: a full session, or one waiting
    for its TOTP code. An expired session is ended on the way.
    """
    if not cookie_value or len(cookie_value) > 200:
        return None
    row = await session.get(BrowserSession, session_id(cookie_value), with_for_update=True)
    if row is None or row.ended_at is not None:
        return None
    if row.pending_second_factor != pending_second_factor:
        return None
    if _expired(row, settings, now):
        row.ended_at = now
        session.add(row)
        await session.flush()
        return None
    user = await session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        row.ended_at = now
        session.add(row)
        await session.flush()
        return None
    row.last_seen_at = now
    session.add(row)
    return OpenSession(row=row, user=user)


async def end(session: AsyncSession, *, row: BrowserSession, now: datetime) -> None:
    row.ended_at = now
    session.add(row)
    await session.flush()
