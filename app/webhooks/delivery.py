"""Webhook delivery from the outbox: fan-out, claims with leases, signing, retries.

At-least-once: an outbox row becomes one delivery per matching endpoint in one transaction;
a worker claims due deliveries by setting a lease (``claimed_until``) under
``FOR UPDATE SKIP LOCKED``, sends them, and records each attempt. A worker that dies
mid-delivery leaves its lease to expire and another worker (or its restart) sends again with
the same ``webhook-id``.
"""

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from standardwebhooks import Webhook

from app.core import backoff, ssrf
from app.core.config import Settings
from app.core.logs import bound_request_id
from app.core.time import utcnow
from app.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks import outbox
from app.webhooks.endpoints import signing_secrets
from app.webhooks.event_types import ADMIN_EVENT_TYPES, matches

logger = logging.getLogger("app.webhooks")

# Delay before each retry after the first attempt: about three days in all, then give up.
RETRY_SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
MAX_RETRY_AFTER = timedelta(hours=24)
USER_AGENT = "dsr-service-webhooks/0.1"


# ---------------------------------------------------------------- fan-out


async def fan_out(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Turn unpublished outbox rows into deliveries for every matching active endpoint."""
    events = list(
        (
            await session.execute(
                select(OutboxEvent)
                .where(col(OutboxEvent.published_at).is_(None))
                .order_by(col(OutboxEvent.created_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not events:
        return 0
    endpoints = list(
        (
            await session.execute(select(WebhookEndpoint).where(col(WebhookEndpoint.active)))
        ).scalars()
    )
    deliveries: list[dict[str, Any]] = []
    for event in events:
        for endpoint in endpoints:
            if _subscribed(endpoint, event):
                deliveries.append(
                    {
                        "id": uuid.uuid4(),
                        "endpoint_id": endpoint.id,
                        "outbox_id": event.id,
                        "event_type": event.event_type,
                        "payload": event.payload,
                        "status": "pending",
                        "attempt_count": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    if deliveries:
        await session.execute(WebhookDelivery.__table__.insert(), deliveries)  # type: ignore[attr-defined]
    await session.execute(
        update(OutboxEvent)
        .where(col(OutboxEvent.id).in_([event.id for event in events]))
        .values(published_at=now)
    )
    return len(deliveries)


def _subscribed(endpoint: WebhookEndpoint, event: OutboxEvent) -> bool:
    if not matches(endpoint.events, event.event_type):
        return False
    if endpoint.receives_all:
        return True
    if event.event_type in ADMIN_EVENT_TYPES:
        return False
    return endpoint.owner_client_id == event.owner_client_id


# ---------------------------------------------------------------- claims


@dataclass
class ClaimedDelivery:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    payload: dict[str, Any]
    attempt_count: int
    secrets: list[str]
    lease_until: datetime
    # The X-Request-ID of the HTTP request behind the event: the attempt is logged under it.
    trace_id: str | None = None


@dataclass
class AttemptResult:
    claim: ClaimedDelivery
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def claim_due(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries to this worker (commit right after)."""
    rows = (
        await session.execute(
            select(WebhookDelivery, WebhookEndpoint, col(OutboxEvent.trace_id))
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
            .outerjoin(OutboxEvent, col(OutboxEvent.id) == col(WebhookDelivery.outbox_id))
            .where(
                col(WebhookDelivery.status) == "pending",
                col(WebhookDelivery.next_attempt_at) <= now,
                or_(
                    col(WebhookDelivery.claimed_until).is_(None),
                    col(WebhookDelivery.claimed_until) < now,
                ),
                col(WebhookEndpoint.active),
            )
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    ).all()
    if not rows:
        return []
    lease_until = now + timedelta(seconds=settings.webhook_lease_seconds)
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_([row[0].id for row in rows]))
        .values(claimed_until=lease_until)
    )
    secrets_by_endpoint: dict[uuid.UUID, list[str]] = {}
    claims = []
    for delivery, endpoint, trace_id in rows:
        if endpoint.id not in secrets_by_endpoint:
            secrets_by_endpoint[endpoint.id] = signing_secrets(endpoint, settings=settings, now=now)
        claims.append(
            ClaimedDelivery(
                delivery_id=delivery.id,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                payload=delivery.payload,
                attempt_count=delivery.attempt_count,
                secrets=secrets_by_endpoint[endpoint.id],
                lease_until=lease_until,
                trace_id=trace_id,
            )
        )
    return claims


# ---------------------------------------------------------------- sending


def sign(claim: ClaimedDelivery, body: str, attempted_at: datetime) -> dict[str, str]:
    """Standard Webhooks headers; several space-separated signatures during rotation."""
    message_id = str(claim.delivery_id)
    signatures = [Webhook(secret).sign(message_id, attempted_at, body) for secret in claim.secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(attempted_at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return min(timedelta(seconds=max(0, int(value))), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        return min(max(parsedate_to_datetime(value) - now, timedelta(0)), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return None


async def send(
    client: httpx.AsyncClient, claim: ClaimedDelivery, *, settings: Settings
) -> AttemptResult:
    """One HTTP attempt, bounded in total by DSR_WEBHOOK_TIMEOUT; never raises.

    Logged (never the URL: it may hold a token) under the id of the request behind the event.
    """
    with bound_request_id(claim.trace_id):
        attempted_at = utcnow()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(settings.webhook_timeout):
                result = await _attempt(
                    client, claim, settings=settings, attempted_at=attempted_at, started=started
                )
        except TimeoutError:
            timeout = f"timeout after {settings.webhook_timeout:g} s"
            result = AttemptResult(claim, attempted_at, None, _elapsed_ms(started), timeout)
        logger.info(
            "webhook delivery %s (%s) to endpoint %s, attempt %d: %s in %d ms",
            claim.delivery_id,
            claim.payload.get("type"),
            claim.endpoint_id,
            claim.attempt_count + 1,
            result.error or f"HTTP {result.status_code}",
            result.latency_ms,
        )
        return result


async def _attempt(
    client: httpx.AsyncClient,
    claim: ClaimedDelivery,
    *,
    settings: Settings,
    attempted_at: datetime,
    started: float,
) -> AttemptResult:
    if not claim.secrets:
        return AttemptResult(claim, attempted_at, None, 0, "signing secret unavailable")
    body = json.dumps(claim.payload, separators=(",", ":"))
    try:
        response = await client.post(
            claim.url, content=body, headers=sign(claim, body, attempted_at)
        )
    except httpx.TimeoutException:
        timeout = f"timeout after {settings.webhook_timeout:g} s"
        return AttemptResult(claim, attempted_at, None, _elapsed_ms(started), timeout)
    except httpx.HTTPError as exc:
        if ssrf.refused_by_policy(exc):
            # The client's transport checks the address it connects to (DNS may have changed).
            failure = "destination address not allowed"
        else:
            failure = f"connection error: {type(exc).__name__}"
        return AttemptResult(claim, attempted_at, None, _elapsed_ms(started), failure)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return AttemptResult(
        claim,
        attempted_at,
        response.status_code,
        _elapsed_ms(started),
        error,
        retry_after=_retry_after(response, attempted_at),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def next_attempt_delay(attempts_made: int, retry_after: timedelta | None) -> timedelta | None:
    """Delay before the next attempt (never sooner than ``Retry-After``); None when exhausted."""
    return backoff.next_delay(RETRY_SCHEDULE, attempts_made, at_least=retry_after)


# ---------------------------------------------------------------- recording


async def record_results(
    session: AsyncSession, *, settings: Settings, results: list[AttemptResult], now: datetime
) -> None:
    """Write attempts, schedule retries, and disable endpoints that are gone or dead."""
    if not results:
        return
    session.add_all(
        WebhookAttempt(
            delivery_id=result.claim.delivery_id,
            attempted_at=result.attempted_at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            succeeded=result.succeeded,
        )
        for result in results
    )
    deliveries = {
        delivery.id: delivery
        for delivery in (
            await session.execute(
                select(WebhookDelivery).where(
                    col(WebhookDelivery.id).in_([r.claim.delivery_id for r in results])
                )
            )
        ).scalars()
    }
    endpoint_ids = {result.claim.endpoint_id for result in results}
    endpoints = {
        endpoint.id: endpoint
        for endpoint in (
            await session.execute(
                select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(endpoint_ids))
            )
        ).scalars()
    }
    for result in results:
        delivery = deliveries[result.claim.delivery_id]
        if delivery.claimed_until != result.claim.lease_until:
            continue  # our lease lapsed and another worker owns it now: its outcome wins
        _apply_result(delivery, endpoints[result.claim.endpoint_id], result, now)
    for endpoint in endpoints.values():
        _maybe_disable(session, endpoint, results, settings=settings, now=now)


def _apply_result(
    delivery: WebhookDelivery, endpoint: WebhookEndpoint, result: AttemptResult, now: datetime
) -> None:
    delivery.attempt_count += 1
    delivery.claimed_until = None
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.succeeded:
        delivery.status = "succeeded"
        delivery.completed_at = now
        endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = result.attempted_at
    delay = (
        None
        if result.status_code == 410
        else next_attempt_delay(delivery.attempt_count, result.retry_after)
    )
    if delay is None:
        delivery.status = "failed"
        delivery.completed_at = now
    else:
        delivery.next_attempt_at = now + delay


def _maybe_disable(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    results: list[AttemptResult],
    *,
    settings: Settings,
    now: datetime,
) -> None:
    if not endpoint.active:
        return
    gone = any(r.status_code == 410 for r in results if r.claim.endpoint_id == endpoint.id)
    failing_too_long = endpoint.failing_since is not None and now - endpoint.failing_since >= (
        timedelta(days=settings.webhook_disable_after_days)
    )
    if not (gone or failing_too_long):
        return
    reason = (
        "endpoint answered 410 Gone"
        if gone
        else (f"every attempt failed for {settings.webhook_disable_after_days:g} days")
    )
    endpoint.active = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    logger.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    session.add(
        OutboxEvent(
            **outbox.outbox_row(
                event_type="webhook.endpoint_disabled",
                data={"endpoint_id": str(endpoint.id), "reason": reason},
                now=now,
                owner_client_id=endpoint.owner_client_id,
            )
        )
    )
