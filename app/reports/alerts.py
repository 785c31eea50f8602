"""Failure alerts to the officers: one mail to DSR_ALERT_EMAIL per event that needs a person.

A worker sweep reads the webhook outbox for the events below and marks each row it handles
(``alerted_at``) in the transaction that queues its mail. Rows are claimed with
``FOR UPDATE SKIP LOCKED`` and the marker is re-checked on the locked row, so with any number
of workers each event is mailed once. Without DSR_ALERT_EMAIL the events are marked and
nothing is sent, so setting the address later does not mail the past.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.mail import messages
from app.models import OutboxEvent

FULFILMENT_FAILED = "fulfilment.failed"
ENDPOINT_DISABLED = "webhook.endpoint_disabled"
REQUEST_OVERDUE = "request.overdue"
# Must match the migration that marks the history handled (alembic 0013).
ALERT_EVENTS = (FULFILMENT_FAILED, ENDPOINT_DISABLED, REQUEST_OVERDUE)


def alert_context(event_type: str, payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What the mail says: references, types and what happened; never who the subject is."""
    data: dict[str, Any] = payload.get("data") or {}
    base = settings.public_url
    alert: dict[str, Any] = {
        "event_type": event_type,
        "at": payload.get("timestamp", ""),
        "reference": None,
        "request_type": None,
    }
    if event_type == ENDPOINT_DISABLED:
        endpoint_id = data.get("endpoint_id", "")
        alert.update(
            title="Webhook endpoint disabled",
            what=f"Webhook endpoint {endpoint_id} was disabled ({data.get('reason', '')}). "
            "Its subscriber receives nothing until it is enabled again "
            f"(POST /v1/webhooks/{endpoint_id}/enable).",
            link=f"{base}/v1/webhooks/{endpoint_id}",
        )
        return {"alert": alert}
    request_id, request_type = data.get("id", ""), data.get("type", "")
    alert.update(reference=request_id, request_type=request_type)
    alert["link"] = f"{base}/v1/requests/{request_id}"
    if event_type == FULFILMENT_FAILED:
        phase = (data.get("fulfilment") or {}).get("phase", "run")
        alert.update(
            title="Fulfilment failed",
            what=f"Fulfilment of this {request_type} request stopped for good (phase "
            f"{phase}). Read the request's fulfilment error and audit trail, fix the cause, "
            "and fulfil it again.",
        )
    else:
        due_date = (data.get("deadline") or {}).get("due_date")
        alert.update(
            title="Request overdue",
            what=f"This {request_type} request passed its due date ({due_date}) without an answer.",
        )
    return {"alert": alert}


async def mail_alerts(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 200
) -> int:
    """Queue one alert mail per new alerting event; the number of events handled."""
    rows = list(
        (
            await session.execute(
                select(OutboxEvent)
                .where(
                    col(OutboxEvent.event_type).in_(ALERT_EVENTS),
                    col(OutboxEvent.alerted_at).is_(None),
                )
                .order_by(col(OutboxEvent.created_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    for event in rows:
        event.alerted_at = now
        if settings.alert_email:
            messages.queue_officer_alert(
                session,
                settings=settings,
                recipient=settings.alert_email,
                context=alert_context(event.event_type, event.payload, settings),
                now=now,
            )
    return len(rows)
