"""API clients: their secrets, creation, authentication and the bootstrap admin."""

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.scopes import Role
from app.core.config import Settings
from app.core.crypto import derived_key, encrypt_secret, mac_matches
from app.core.errors import Conflict
from app.models import Client

logger = logging.getLogger("app.auth")


def hash_secret(secret: str, *, secret_key: str) -> str:
    """Keyed hash of a high-entropy client secret (HMAC-SHA256)."""
    return hmac.new(
        derived_key(secret_key, "client-secret"), secret.encode(), hashlib.sha256
    ).hexdigest()


def secret_matches(secret: str, stored_hash: str, *, secret_keys: Sequence[str]) -> bool:
    """Whether ``secret`` hashes to ``stored_hash`` under the current or a retired key."""
    return mac_matches([hash_secret(secret, secret_key=key) for key in secret_keys], stored_hash)


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def new_client_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


async def get_by_client_id(session: AsyncSession, client_id: str) -> Client | None:
    result = await session.execute(select(Client).where(col(Client.client_id) == client_id))
    return result.scalar_one_or_none()


async def create_client(
    session: AsyncSession,
    *,
    settings: Settings,
    name: str,
    role: Role,
    now: datetime,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> tuple[Client, str]:
    """Create a client; returns it with its plaintext secret (shown to the caller once)."""
    client_id = client_id or new_client_id(role.value[:5])
    if await get_by_client_id(session, client_id) is not None:
        raise Conflict("A client with this client_id already exists.")
    secret = client_secret or new_client_secret()
    client = Client(
        client_id=client_id,
        name=name,
        role=role.value,
        secret_hash=hash_secret(secret, secret_key=settings.secret_key),
        secret_encrypted=encrypt_secret(secret, secret_key=settings.secret_key),
        created_at=now,
    )
    session.add(client)
    await session.flush()
    return client, secret


async def set_secret(
    session: AsyncSession, *, settings: Settings, client: Client, secret: str
) -> None:
    client.secret_hash = hash_secret(secret, secret_key=settings.secret_key)
    client.secret_encrypted = encrypt_secret(secret, secret_key=settings.secret_key)
    session.add(client)
    await session.flush()


async def authenticate(
    session: AsyncSession, *, settings: Settings, client_id: str, client_secret: str
) -> Client | None:
    """The active client with these credentials, or None (same answer for every failure)."""
    client = await get_by_client_id(session, client_id)
    if client is None or not client.active:
        # Still hash, so timing does not reveal which client ids exist.
        hash_secret(client_secret, secret_key=settings.secret_key)
        return None
    if not secret_matches(client_secret, client.secret_hash, secret_keys=settings.reading_keys):
        return None
    return client


async def ensure_bootstrap_admin(
    session: AsyncSession, *, settings: Settings, now: datetime
) -> bool:
    """Create the admin client named by the settings if it does not exist yet.

    Only ever creates: once it exists, the stored client wins over the environment at every
    start. A bootstrap admin since disabled, deleted or given a new secret stays so (the
    environment's secret is not accepted), and a warning says so.
    """
    if not (settings.admin_client_id and settings.admin_client_secret):
        return False
    existing = await get_by_client_id(session, settings.admin_client_id)
    if existing is not None:
        _warn_if_ignored(existing, settings=settings, env_secret=settings.admin_client_secret)
        return False
    await create_client(
        session,
        settings=settings,
        name="Bootstrap admin",
        role=Role.ADMIN,
        now=now,
        client_id=settings.admin_client_id,
        client_secret=settings.admin_client_secret,
    )
    return True


def _warn_if_ignored(client: Client, *, settings: Settings, env_secret: str) -> None:
    if client.deleted_at is not None:
        logger.warning(
            "the bootstrap admin client %s was deleted; DSR_ADMIN_CLIENT_ID and "
            "DSR_ADMIN_CLIENT_SECRET do not re-create it (remove them)",
            client.client_id,
        )
    elif not client.active:
        logger.warning(
            "the bootstrap admin client %s is disabled; DSR_ADMIN_CLIENT_SECRET is refused "
            "until another admin enables it",
            client.client_id,
        )
    elif not secret_matches(env_secret, client.secret_hash, secret_keys=settings.reading_keys):
        logger.warning(
            "DSR_ADMIN_CLIENT_SECRET is not the secret of the bootstrap admin client %s (it "
            "was rotated) and is not accepted; set it to the current secret or remove it",
            client.client_id,
        )
