"""API clients: creation, authentication and the bootstrap admin."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.config import Settings
from app.errors import Conflict
from app.models import Client
from app.security import (
    Role,
    encrypt_secret,
    hash_secret,
    new_client_id,
    new_client_secret,
    secret_matches,
)


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
    if not secret_matches(client_secret, client.secret_hash, secret_key=settings.secret_key):
        return None
    return client


async def ensure_bootstrap_admin(
    session: AsyncSession, *, settings: Settings, now: datetime
) -> bool:
    """Create the admin client named by the settings if it does not exist yet."""
    if not (settings.admin_client_id and settings.admin_client_secret):
        return False
    if await get_by_client_id(session, settings.admin_client_id) is not None:
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
