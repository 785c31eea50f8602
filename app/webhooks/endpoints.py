"""Webhook subscriptions: registration, visibility, secrets, and the delivery log.

Integrations and officers manage their own endpoints and receive events only for the
requests they submitted; admins see every endpoint, and theirs receive every event.

Deleting an endpoint is a soft delete: its deliveries (and their attempts) reference it and
stay as the record of what was sent. A deleted endpoint is inactive with
``disabled_reason = "deleted"``, its secrets are wiped, its pending deliveries are closed as
failed, and it disappears from every API answer (404), for good.
"""

import base64
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.scopes import Principal, Role
from app.core import pagination
from app.core.config import Settings
from app.core.crypto import decrypt_secret, encrypt_secret
from app.core.errors import Conflict, NotFound, UnprocessableEntity
from app.core.ssrf import ensure_deliverable_url
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.event_types import ADMIN_EVENT_TYPES, EVENT_TYPES, is_valid_pattern, matches
from app.webhooks.schemas import WebhookAttemptPublic, WebhookDeliveryPublic, WebhookPublic

SECRET_PREFIX = "whsec_"
SECRET_OVERLAP = timedelta(hours=24)
DELETED_REASON = "deleted"
# Each endpoint multiplies every event into a delivery: bound the fan-out one client can cause.
MAX_ENDPOINTS_PER_CLIENT = 50

# "*", an exact type, or a family wildcard ("request.*"); no other glob syntax.
_PATTERN_SHAPE = re.compile(r"\*|[a-z_]+(\.[a-z_]+)*(\.\*)?")


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sees_all_endpoints(principal: Principal) -> bool:
    return principal.role is Role.ADMIN


def is_deleted(endpoint: WebhookEndpoint) -> bool:
    return not endpoint.active and endpoint.disabled_reason == DELETED_REASON


def signing_secrets(endpoint: WebhookEndpoint, *, settings: Settings, now: datetime) -> list[str]:
    """Plaintext secrets to sign a delivery with: the current one, plus the previous one
    until ``previous_secret_expires_at``. Empty for a deleted endpoint (secrets wiped) or if
    ``DSR_SECRET_KEY`` changed since the secrets were stored."""
    stored = [endpoint.secret_encrypted]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at is not None
        and now < endpoint.previous_secret_expires_at
    ):
        stored.append(endpoint.previous_secret_encrypted)
    plaintexts = []
    for token in stored:
        secret = decrypt_secret(token, secret_keys=settings.reading_keys) if token else None
        if secret:
            plaintexts.append(secret)
    return plaintexts


def _invalid_event(index: int, message: str) -> UnprocessableEntity:
    return UnprocessableEntity(
        f"events[{index}]: {message}",
        title="Invalid event filter",
        extra={
            "errors": [{"loc": ["body", "events", index], "msg": message, "type": "invalid_event"}],
            "valid_event_types": list(EVENT_TYPES),
        },
    )


def validate_event_patterns(patterns: list[str], *, principal: Principal) -> list[str]:
    """The patterns, de-duplicated in order; 422 on unknown types or admin-only ones."""
    for index, pattern in enumerate(patterns):
        if not (_PATTERN_SHAPE.fullmatch(pattern) and is_valid_pattern(pattern)):
            raise _invalid_event(
                index,
                "not a known event type or wildcard. Use an exact type, a family wildcard "
                "such as request.*, or *. Valid types: " + ", ".join(EVENT_TYPES),
            )
        only_admin_events = pattern != "*" and all(
            event_type in ADMIN_EVENT_TYPES
            for event_type in EVENT_TYPES
            if matches([pattern], event_type)
        )
        if only_admin_events and principal.role is not Role.ADMIN:
            raise _invalid_event(index, "these events are sent to admins' endpoints only.")
    return list(dict.fromkeys(patterns))


async def ensure_url_allowed(url: str, *, settings: Settings) -> None:
    await ensure_deliverable_url(
        url,
        allow_private=settings.allow_private_webhooks,
        require_https=settings.env == "production",
    )


def _not_deleted() -> ColumnElement[bool]:
    return col(WebhookEndpoint.disabled_reason).is_distinct_from(DELETED_REASON)


async def create_endpoint(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    url: str,
    events: list[str],
    description: str | None,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its plaintext secret (shown to the caller once).

    Admins' endpoints receive every request's events; other callers' endpoints only those of
    the requests they submitted.
    """
    patterns = validate_event_patterns(events, principal=principal)
    # Before any query: DNS may take seconds and must not hold a transaction open.
    await ensure_url_allowed(url, settings=settings)
    owned = await session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(col(WebhookEndpoint.owner_client_id) == principal.client_id, _not_deleted())
    )
    if (owned or 0) >= MAX_ENDPOINTS_PER_CLIENT:
        raise Conflict(
            f"A client may have at most {MAX_ENDPOINTS_PER_CLIENT} webhook endpoints; "
            "delete one first.",
            title="Too many webhook endpoints",
        )
    secret = new_signing_secret()
    endpoint = WebhookEndpoint(
        owner_client_id=principal.client_id,
        receives_all=principal.role is Role.ADMIN,
        url=url,
        events=patterns,
        description=description or None,
        secret_encrypted=encrypt_secret(secret, secret_key=settings.secret_key),
        created_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def list_endpoints(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[WebhookEndpoint], str | None]:
    """Endpoints visible to the caller, newest first, keyset-paginated; never deleted ones."""
    query = select(WebhookEndpoint).where(_not_deleted())
    if not sees_all_endpoints(principal):
        query = query.where(col(WebhookEndpoint.owner_client_id) == principal.client_id)
    return await pagination.newest_first(
        session, query, WebhookEndpoint, limit=limit, cursor=cursor
    )


async def get_visible_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: uuid.UUID,
    for_update: bool = False,
) -> WebhookEndpoint:
    """The endpoint if the caller may manage it (own, or any for admins); else 404.

    ``for_update`` locks the row (PostgreSQL) so concurrent changes to it serialise.
    """
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=for_update)
    if (
        endpoint is None
        or is_deleted(endpoint)
        or not (sees_all_endpoints(principal) or endpoint.owner_client_id == principal.client_id)
    ):
        raise NotFound("No webhook endpoint with this id is visible to you.")
    return endpoint


async def delete_endpoint(
    session: AsyncSession, *, endpoint: WebhookEndpoint, now: datetime
) -> None:
    """Stop all deliveries to the endpoint for good and forget its secrets (soft delete)."""
    endpoint.active = False
    endpoint.disabled_reason = DELETED_REASON
    endpoint.disabled_at = now
    # No signature can be made for it again; the column is NOT NULL, so blank, not null.
    endpoint.secret_encrypted = ""
    endpoint.previous_secret_encrypted = None
    endpoint.previous_secret_expires_at = None
    session.add(endpoint)
    await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id) == endpoint.id,
            col(WebhookDelivery.status) == "pending",
        )
        .values(
            status="failed", last_error="endpoint deleted", completed_at=now, claimed_until=None
        )
    )
    await session.flush()


async def enable_endpoint(
    session: AsyncSession, *, settings: Settings, endpoint: WebhookEndpoint, now: datetime
) -> None:
    """Re-activate an endpoint that was disabled after failing; its URL is checked again."""
    if endpoint.active:
        return
    await ensure_url_allowed(endpoint.url, settings=settings)
    endpoint.active = True
    endpoint.disabled_reason = None
    endpoint.disabled_at = None
    endpoint.failing_since = None
    session.add(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, *, settings: Settings, endpoint: WebhookEndpoint, now: datetime
) -> str:
    """Give the endpoint a new secret; the current one keeps signing for 24 hours.

    Only one previous secret is kept: rotating again within the overlap retires the older
    one at once.
    """
    secret = new_signing_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + SECRET_OVERLAP
    endpoint.secret_encrypted = encrypt_secret(secret, secret_key=settings.secret_key)
    session.add(endpoint)
    await session.flush()
    return secret


async def _attempts_by_delivery(
    session: AsyncSession, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    attempts: dict[uuid.UUID, list[WebhookAttempt]] = {
        delivery_id: [] for delivery_id in delivery_ids
    }
    if not delivery_ids:
        return attempts
    rows = await session.execute(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(delivery_ids))
        .order_by(col(WebhookAttempt.id))
    )
    for attempt in rows.scalars():
        attempts[attempt.delivery_id].append(attempt)
    return attempts


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint: WebhookEndpoint,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]:
    """The endpoint's deliveries newest first, each with its attempts oldest first."""
    query = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    if status:
        query = query.where(col(WebhookDelivery.status) == status)
    deliveries, next_cursor = await pagination.newest_first(
        session, query, WebhookDelivery, limit=limit, cursor=cursor
    )
    attempts = await _attempts_by_delivery(session, [delivery.id for delivery in deliveries])
    return [(delivery, attempts[delivery.id]) for delivery in deliveries], next_cursor


async def retry_delivery(
    session: AsyncSession, *, endpoint: WebhookEndpoint, delivery_id: uuid.UUID, now: datetime
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    """Queue a delivery (in any status) for another attempt now, under the same webhook-id.

    409 if the endpoint is disabled (enable it first); 404 if the delivery is not this
    endpoint's. Past attempts are kept in the log and still count in ``attempt_count``.
    """
    if not endpoint.active:
        raise Conflict(
            "The endpoint is disabled; enable it before retrying deliveries.",
            title="Endpoint disabled",
        )
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.endpoint_id) == endpoint.id,
        )
        .with_for_update()
    )
    if delivery is None:
        raise NotFound("No delivery with this id for this webhook endpoint.")
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.claimed_until = None
    delivery.completed_at = None
    session.add(delivery)
    await session.flush()
    attempts = await _attempts_by_delivery(session, [delivery.id])
    return delivery, attempts[delivery.id]


def failing() -> ColumnElement[bool]:
    """A delivery that failed for good, or whose last attempt failed and waits to be retried."""
    return or_(
        col(WebhookDelivery.status) == "failed",
        and_(col(WebhookDelivery.status) == "pending", col(WebhookDelivery.attempt_count) > 0),
    )


def is_failing(delivery: WebhookDelivery) -> bool:
    """``failing()`` for a loaded delivery."""
    return delivery.status == "failed" or (
        delivery.status == "pending" and delivery.attempt_count > 0
    )


@dataclass(frozen=True)
class EndpointHealth:
    """How an endpoint's deliveries are going: its newest delivery, and how many are failing."""

    last_status: str | None = None
    last_attempt_count: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_created_at: datetime | None = None
    failing: int = 0


async def endpoint_health(
    session: AsyncSession, *, endpoint_ids: list[uuid.UUID]
) -> dict[uuid.UUID, EndpointHealth]:
    """For each endpoint: its newest delivery's outcome and its count of failing deliveries
    (two grouped queries, whatever the number of endpoints)."""
    if not endpoint_ids:
        return {}
    wanted = col(WebhookDelivery.endpoint_id).in_(endpoint_ids)
    counted = await session.execute(
        select(col(WebhookDelivery.endpoint_id), func.count())
        .where(wanted, failing())
        .group_by(col(WebhookDelivery.endpoint_id))
    )
    counts = {endpoint_id: int(count) for endpoint_id, count in counted}
    newest_first = func.row_number().over(
        partition_by=col(WebhookDelivery.endpoint_id),
        order_by=(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc()),
    )
    ranked = (
        select(
            col(WebhookDelivery.endpoint_id).label("endpoint_id"),
            col(WebhookDelivery.status).label("status"),
            col(WebhookDelivery.attempt_count).label("attempt_count"),
            col(WebhookDelivery.last_status_code).label("last_status_code"),
            col(WebhookDelivery.last_error).label("last_error"),
            col(WebhookDelivery.created_at).label("created_at"),
            newest_first.label("rank"),
        )
        .where(wanted)
        .subquery()
    )
    newest = {
        row.endpoint_id: row
        for row in await session.execute(select(ranked).where(ranked.c.rank == 1))
    }
    health = {}
    for endpoint_id in endpoint_ids:
        row = newest.get(endpoint_id)
        health[endpoint_id] = EndpointHealth(
            last_status=row.status if row else None,
            last_attempt_count=row.attempt_count if row else 0,
            last_status_code=row.last_status_code if row else None,
            last_error=row.last_error if row else None,
            last_created_at=row.created_at if row else None,
            failing=int(counts.get(endpoint_id, 0)),
        )
    return health


# ---------------------------------------------------------------- as shown


def endpoint_public(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        description=endpoint.description,
        active=endpoint.active,
        receives_all=endpoint.receives_all,
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        created_at=endpoint.created_at,
    )


def delivery_public(
    delivery: WebhookDelivery, attempts: list[WebhookAttempt]
) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        id=delivery.id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempt_count=delivery.attempt_count,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        completed_at=delivery.completed_at,
        attempts=[
            WebhookAttemptPublic(
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                error=attempt.error,
                succeeded=attempt.succeeded,
            )
            for attempt in attempts
        ],
    )
