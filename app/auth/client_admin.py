"""Managing API clients after creation: list, disable, enable, rotate the secret, delete.

A leaked secret must be revocable. Disabling, rotating and deleting move the client's
``tokens_revoked_at`` on, so every process refuses the tokens issued before
(``revocation.ActiveClients``), and the token endpoint refuses a disabled or deleted client.
While a client is disabled its webhook endpoints are disabled with it (it could not manage
them, and it may no longer be trusted with events); enabling it brings back those, and only
those. Deleting keeps the row with its secrets wiped: requests and audit entries keep naming
its ``client_id``, which can never be given to another client; its endpoints are deleted.

There is always an active admin: the last one can be neither disabled nor deleted, and no
caller may disable or delete the client it is calling with.
"""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.clients import new_client_secret, set_secret
from app.auth.schemas import ClientPublic
from app.auth.scopes import Role
from app.core import pagination
from app.core.config import Settings
from app.core.errors import Conflict, NotFound
from app.models import Client, WebhookDelivery, WebhookEndpoint

# A webhook endpoint disabled because its client was; enabling the client re-enables it.
ENDPOINT_CLIENT_DISABLED = "client disabled"
# app.webhooks.endpoints.DELETED_REASON: auth sits below webhooks, so a test keeps them equal.
ENDPOINT_CLIENT_DELETED = "deleted"
_CLIENT_ID_MAX = 64


class LastActiveAdmin(Conflict):
    title = "Last active admin"
    slug = "last-active-admin"


class OwnClient(Conflict):
    title = "This is your own client"
    slug = "own-client"


async def list_clients(
    session: AsyncSession, *, limit: int, cursor: str | None, include_deleted: bool = False
) -> tuple[list[Client], str | None]:
    """Clients newest first, keyset-paginated; deleted ones only when asked (the CLI)."""
    query = select(Client)
    if not include_deleted:
        query = query.where(col(Client.deleted_at).is_(None))
    return await pagination.newest_first(session, query, Client, limit=limit, cursor=cursor)


async def get_client(session: AsyncSession, *, client_id: str) -> Client:
    """The client with this ``client_id``; 404 if there is none or it was deleted."""
    client = None
    if len(client_id) <= _CLIENT_ID_MAX:
        client = await session.scalar(select(Client).where(col(Client.client_id) == client_id))
    if client is None or client.deleted_at is not None:
        raise NotFound("No API client with this client_id.")
    return client


async def _lock(session: AsyncSession, client: Client, *, keep_an_admin: bool) -> None:
    """Lock the client's row (and, before it, every active admin's, always in one order, so
    two admins disabling each other cannot both succeed nor deadlock); reload its state."""
    if keep_an_admin and client.role == Role.ADMIN.value:
        admins = await session.scalars(
            select(Client)
            .where(col(Client.role) == Role.ADMIN.value, col(Client.active))
            .order_by(col(Client.client_id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        active_admins = {admin.client_id for admin in admins}
        if client.client_id in active_admins and len(active_admins) == 1:
            raise LastActiveAdmin(
                "This is the last active admin client: without one nobody could manage "
                "clients. Create or enable another admin first."
            )
    await session.refresh(client, with_for_update=True)
    if client.deleted_at is not None:
        raise NotFound("No API client with this client_id.")


def _not_the_caller(client: Client, caller_client_id: str | None, action: str) -> None:
    if caller_client_id is not None and client.client_id == caller_client_id:
        raise OwnClient(
            f"You are calling with this client: to {action} it would revoke the token you "
            "are using. Call with another admin client."
        )


async def disable_client(
    session: AsyncSession, *, client: Client, caller_client_id: str | None, now: datetime
) -> None:
    """Refuse the client's secret and tokens, and stop its webhook endpoints (idempotent)."""
    _not_the_caller(client, caller_client_id, "disable")
    await _lock(session, client, keep_an_admin=True)
    if not client.active:
        return
    client.active = False
    client.disabled_at = now
    client.tokens_revoked_at = now
    session.add(client)
    await session.execute(
        update(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.owner_client_id) == client.client_id, col(WebhookEndpoint.active)
        )
        .values(active=False, disabled_reason=ENDPOINT_CLIENT_DISABLED, disabled_at=now)
    )
    await session.flush()


async def enable_client(session: AsyncSession, *, client: Client) -> None:
    """Accept the client's secret again (tokens issued before it was disabled stay refused),
    and re-enable the webhook endpoints that were disabled with it."""
    await _lock(session, client, keep_an_admin=False)
    if client.active:
        return
    client.active = True
    client.disabled_at = None
    session.add(client)
    await session.execute(
        update(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.owner_client_id) == client.client_id,
            col(WebhookEndpoint.disabled_reason) == ENDPOINT_CLIENT_DISABLED,
        )
        .values(active=True, disabled_reason=None, disabled_at=None, failing_since=None)
    )
    await session.flush()


async def rotate_secret(
    session: AsyncSession, *, settings: Settings, client: Client, now: datetime
) -> str:
    """Give the client a new secret (returned, shown once); the old secret, the tokens issued
    before and identity assertions signed with the old secret are refused from now on."""
    await _lock(session, client, keep_an_admin=False)
    secret = new_client_secret()
    await set_secret(session, settings=settings, client=client, secret=secret)
    client.secret_rotated_at = now
    client.tokens_revoked_at = now
    session.add(client)
    await session.flush()
    return secret


async def delete_client(
    session: AsyncSession, *, client: Client, caller_client_id: str | None, now: datetime
) -> None:
    """Revoke the client for good, wipe its secrets and delete its webhook endpoints; its
    requests and audit entries stay as they are, still naming its client_id."""
    _not_the_caller(client, caller_client_id, "delete")
    await _lock(session, client, keep_an_admin=True)
    client.active = False
    client.deleted_at = now
    client.tokens_revoked_at = now
    # NOT NULL columns: blank, which no secret hashes or decrypts to.
    client.secret_hash = ""
    client.secret_encrypted = ""
    session.add(client)
    owned = select(col(WebhookEndpoint.id)).where(
        col(WebhookEndpoint.owner_client_id) == client.client_id
    )
    await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id).in_(owned), col(WebhookDelivery.status) == "pending"
        )
        .values(status="failed", last_error="client deleted", completed_at=now, claimed_until=None)
    )
    await session.execute(
        update(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.owner_client_id) == client.client_id,
            col(WebhookEndpoint.disabled_reason).is_distinct_from(ENDPOINT_CLIENT_DELETED),
        )
        .values(
            active=False,
            disabled_reason=ENDPOINT_CLIENT_DELETED,
            disabled_at=now,
            secret_encrypted="",
            previous_secret_encrypted=None,
            previous_secret_expires_at=None,
        )
    )
    await session.flush()


def client_public(client: Client) -> ClientPublic:
    return ClientPublic(
        client_id=client.client_id,
        name=client.name,
        role=Role(client.role),
        active=client.active,
        created_at=client.created_at,
        disabled_at=client.disabled_at,
        secret_rotated_at=client.secret_rotated_at,
    )
