"""People's accounts: create, list, read, disable, enable, reset and change the password,
enrol in and leave the TOTP second factor.

Services take the session explicitly and never commit. Every admin action is logged on the
``app.audit`` logger with who did it and to which account (ids only, never an address).
"""

import base64
import json
import logging
import secrets
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts import passwords, totp
from app.auth.scopes import Role
from app.core.config import Settings
from app.core.crypto import decrypt_secret, encrypt_secret
from app.core.errors import BadRequest, Conflict, NotFound, UnprocessableEntity
from app.core.schemas import normalise_email
from app.models import BrowserSession, User

audit_logger = logging.getLogger("app.audit")

USER_ID_PREFIX = "usr_"
PERSON_ROLES = (Role.OFFICER, Role.ADMIN)
_USER_ID_MAX = 64


class EmailTaken(Conflict):
    title = "Email already used"
    slug = "email-taken"


class OwnAccount(Conflict):
    title = "This is your own account"
    slug = "own-account"


class WeakPassword(UnprocessableEntity):
    title = "Password refused"
    slug = "password-refused"


def new_user_id() -> str:
    return f"{USER_ID_PREFIX}{secrets.token_hex(12)}"


def is_user_id(value: str) -> bool:
    return value.startswith(USER_ID_PREFIX)


def account_email(value: str) -> str:
    """The address as accounts store it: normalised, then lower-cased (ValueError if invalid)."""
    return normalise_email(value.strip()).lower()


def _audit(action: str, *, actor: str, user: User) -> None:
    audit_logger.info("%s: account %s (%s) by %s", action, user.id, user.role, actor)


async def get_user(session: AsyncSession, *, user_id: str) -> User:
    """The account with this id; 404 if there is none."""
    user = None
    if len(user_id) <= _USER_ID_MAX:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No user with this id.")
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    try:
        normalised = account_email(email)
    except ValueError:
        return None
    return await session.scalar(select(User).where(col(User.email) == normalised))


async def active_person(session: AsyncSession, *, user_id: str) -> User | None:
    """The account if it exists and is not disabled (assignment checks this)."""
    if len(user_id) > _USER_ID_MAX:
        return None
    user = await session.get(User, user_id)
    return user if user is not None and user.disabled_at is None else None


async def create_user(
    session: AsyncSession, *, email: str, name: str | None, role: Role, actor: str, now: datetime
) -> tuple[User, str]:
    """Create an officer or admin account with a temporary password (returned, shown once;
    it must be changed at the first login)."""
    if role not in PERSON_ROLES:
        raise UnprocessableEntity("A person's role is officer or admin.")
    try:
        normalised = account_email(email)
    except ValueError:
        raise UnprocessableEntity("email is not a valid email address.") from None
    if await session.scalar(select(col(User.id)).where(col(User.email) == normalised)):
        raise EmailTaken("An account with this email address already exists.")
    temporary = passwords.temporary_password()
    user = User(
        id=new_user_id(),
        email=normalised,
        name=(name or "").strip() or normalised.split("@", 1)[0],
        role=role.value,
        password_hash=passwords.hash_password(temporary),
        must_change_password=True,
        password_changed_at=now,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    _audit("user.created", actor=actor, user=user)
    return user, temporary


def _cursor(user: User) -> str:
    raw = json.dumps([user.created_at.isoformat(), user.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        created, user_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(created, str) or not isinstance(user_id, str):
            raise ValueError("not a cursor")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, user_id
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        raise BadRequest(
            "The cursor is not valid; use next_cursor from a previous page.", title="Invalid cursor"
        ) from None


async def list_users(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    """Accounts newest first, keyset-paginated on (created_at, id)."""
    query = select(User)
    if cursor:
        created, user_id = _after(cursor)
        query = query.where(
            or_(
                col(User.created_at) < created,
                and_(col(User.created_at) == created, col(User.id) < user_id),
            )
        )
    query = query.order_by(col(User.created_at).desc(), col(User.id).desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _cursor(rows[-1])


async def end_sessions(
    session: AsyncSession, *, user_id: str, now: datetime, keep: str | None = None
) -> None:
    """End every open browser session of the account (but ``keep``, the caller's own)."""
    query = update(BrowserSession).where(
        col(BrowserSession.user_id) == user_id, col(BrowserSession.ended_at).is_(None)
    )
    if keep is not None:
        query = query.where(col(BrowserSession.id) != keep)
    await session.execute(query.values(ended_at=now))


async def disable_user(session: AsyncSession, *, user: User, actor: str, now: datetime) -> User:
    """Stop the account at once: its sessions end and it cannot log in (idempotent)."""
    if user.id == actor:
        raise OwnAccount("You cannot disable your own account; ask another admin.")
    await session.refresh(user, with_for_update=True)
    if user.disabled_at is None:
        user.disabled_at = now
        session.add(user)
        _audit("user.disabled", actor=actor, user=user)
    await end_sessions(session, user_id=user.id, now=now)
    await session.flush()
    return user


async def enable_user(session: AsyncSession, *, user: User, actor: str) -> User:
    """Let a disabled account log in again (idempotent)."""
    await session.refresh(user, with_for_update=True)
    if user.disabled_at is not None:
        user.disabled_at = None
        session.add(user)
        _audit("user.enabled", actor=actor, user=user)
    await session.flush()
    return user


async def reset_password(session: AsyncSession, *, user: User, actor: str, now: datetime) -> str:
    """Give the account a new temporary password (returned, shown once), to be changed at the
    next login; every session of the account ends."""
    await session.refresh(user, with_for_update=True)
    temporary = passwords.temporary_password()
    user.password_hash = passwords.hash_password(temporary)
    user.must_change_password = True
    user.password_changed_at = now
    session.add(user)
    await end_sessions(session, user_id=user.id, now=now)
    await session.flush()
    _audit("user.password_reset", actor=actor, user=user)
    return temporary


async def set_password(
    session: AsyncSession, *, user: User, password: str, now: datetime, keep_session: str | None
) -> None:
    """The person's own new password (policy checked); their other sessions end."""
    try:
        passwords.check_policy(password, email=user.email, name=user.name)
    except passwords.PasswordRefused as refused:
        raise WeakPassword(str(refused)) from None
    user.password_hash = passwords.hash_password(password)
    user.must_change_password = False
    user.password_changed_at = now
    session.add(user)
    await end_sessions(session, user_id=user.id, now=now, keep=keep_session)
    await session.flush()
    _audit("user.password_changed", actor=user.id, user=user)


def totp_secret(user: User, settings: Settings) -> str | None:
    if user.totp_secret_encrypted is None:
        return None
    return decrypt_secret(user.totp_secret_encrypted, secret_keys=settings.reading_keys)


async def start_totp(session: AsyncSession, *, user: User, settings: Settings) -> str:
    """A new secret for the person's authenticator (returned, shown once); the factor is
    enabled only once a code from it is confirmed."""
    if user.totp_enabled:
        raise Conflict("Two-step login is already on; turn it off first to enrol again.")
    secret = totp.new_secret()
    user.totp_secret_encrypted = encrypt_secret(secret, secret_key=settings.secret_key)
    user.totp_last_step = None
    session.add(user)
    await session.flush()
    return secret


def check_totp(user: User, code: str, *, settings: Settings, now: datetime) -> bool:
    """Whether ``code`` is a fresh code of the person's secret; records its step if so."""
    secret = totp_secret(user, settings)
    if secret is None:
        return False
    step = totp.matching_step(secret, code, now=now, after_step=user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True


async def confirm_totp(
    session: AsyncSession, *, user: User, code: str, settings: Settings, now: datetime
) -> None:
    """Turn the second factor on once the person proves their authenticator has the secret."""
    if user.totp_enabled or user.totp_secret_encrypted is None:
        raise Conflict("Start enrolment first.")
    if not check_totp(user, code, settings=settings, now=now):
        raise UnprocessableEntity("That code is not the current code of your authenticator.")
    user.totp_enabled = True
    session.add(user)
    await session.flush()
    _audit("user.totp_enabled", actor=user.id, user=user)


async def disable_totp(session: AsyncSession, *, user: User, password: str) -> None:
    """Turn the second factor off (the person confirms with their password)."""
    if not passwords.verify_password(password, user.password_hash):
        raise UnprocessableEntity("The password is not correct.")
    user.totp_enabled = False
    user.totp_secret_encrypted = None
    user.totp_last_step = None
    session.add(user)
    await session.flush()
    _audit("user.totp_disabled", actor=user.id, user=user)
