"""Checking a person's password (and TOTP code), with limits on failed attempts.

Failures are rows in ``login_failures`` (every API process sees them): at most
``ACCOUNT_LIMIT`` per account and ``ADDRESS_LIMIT`` per client address within ``WINDOW``;
beyond either, logins from there are refused until the window has passed. Accounts are keyed
by the address typed in, so an address with no account is limited exactly like one with an
account, and every refusal reads the same: the answer never tells whether an account exists.
An unknown account's password is still checked against a dummy Argon2 hash, so it takes as
long too.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts import passwords, service
from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.models import LoginFailure, User

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
ACCOUNT = "account"
ADDRESS = "address"

REFUSED_MESSAGE = "The email address or password is not correct."
LOCKED_MESSAGE = (
    "Too many failed attempts. Wait 15 minutes and try again, or ask an admin to reset your "
    "password."
)
CODE_REFUSED_MESSAGE = "That code is not correct or was already used. Enter the current code."


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginKeys:
    """Keyed hashes of what a login is limited by: the account typed in, the client address."""

    account: str
    address: str


def login_keys(settings: Settings, *, email: str, address: str) -> LoginKeys:
    try:
        account = service.account_email(email)
    except ValueError:
        account = email.strip().lower()
    return LoginKeys(
        account=keyed_hash(account, secret_key=settings.secret_key, purpose="login-account"),
        address=keyed_hash(address, secret_key=settings.secret_key, purpose="login-address"),
    )


def address_hash(settings: Settings, address: str) -> str:
    """What a browser session records of the client address: a keyed hash."""
    return keyed_hash(address, secret_key=settings.secret_key, purpose="session-address")


async def _failures(session: AsyncSession, key_hash: str, since: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(col(LoginFailure.key_hash) == key_hash, col(LoginFailure.created_at) > since)
    )
    return int(count or 0)


async def is_locked(session: AsyncSession, keys: LoginKeys, *, now: datetime) -> bool:
    since = now - WINDOW
    return (
        await _failures(session, keys.account, since) >= ACCOUNT_LIMIT
        or await _failures(session, keys.address, since) >= ADDRESS_LIMIT
    )


async def record_failure(session: AsyncSession, keys: LoginKeys, *, now: datetime) -> None:
    """Count one failure against the account and the address (and forget expired ones)."""
    await session.execute(
        delete(LoginFailure).where(
            col(LoginFailure.key_hash).in_([keys.account, keys.address]),
            col(LoginFailure.created_at) <= now - WINDOW,
        )
    )
    session.add(LoginFailure(kind=ACCOUNT, key_hash=keys.account, created_at=now))
    session.add(LoginFailure(kind=ADDRESS, key_hash=keys.address, created_at=now))
    await session.flush()


async def clear_account_failures(session: AsyncSession, keys: LoginKeys) -> None:
    await session.execute(delete(LoginFailure).where(col(LoginFailure.key_hash) == keys.account))


async def check_password(
    session: AsyncSession, *, keys: LoginKeys, email: str, password: str, now: datetime
) -> tuple[Outcome, User | None]:
    """The account if ``password`` is its password and nothing limits the attempt.

    The caller must commit even on refusal: the failure is recorded in this transaction.
    """
    user = await service.find_by_email(session, email)
    if await is_locked(session, keys, now=now):
        passwords.verify_password(password, None)  # the same time as any other answer
        return Outcome.LOCKED, None
    matches = passwords.verify_password(password, user.password_hash if user else None)
    if user is None or not matches or user.disabled_at is not None:
        await record_failure(session, keys, now=now)
        return Outcome.REFUSED, None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        session.add(user)
    if not user.totp_enabled:
        await clear_account_failures(session, keys)
    return Outcome.ACCEPTED, user


async def check_code(
    session: AsyncSession,
    *,
    keys: LoginKeys,
    user: User,
    code: str,
    settings: Settings,
    now: datetime,
) -> Outcome:
    """The second step: a fresh TOTP code of the account's secret, within the same limits."""
    if await is_locked(session, keys, now=now):
        return Outcome.LOCKED
    if user.disabled_at is not None or not service.check_totp(
        user, code, settings=settings, now=now
    ):
        await record_failure(session, keys, now=now)
        return Outcome.REFUSED
    session.add(user)
    await clear_account_failures(session, keys)
    return Outcome.ACCEPTED
