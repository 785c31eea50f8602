"""Audit trail and webhook outbox, written in the caller's transaction."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import DsrRequest, OutboxEvent, RequestEvent
from app.services.clock import deadline_view


def webhook_data(dsr: DsrRequest, settings: Settings, now: datetime) -> dict[str, Any]:
    """What a webhook consumer learns of a request: never the subject's identities."""
    return {
        "id": str(dsr.id),
        "type": dsr.type,
        "status": dsr.status,
        "regulation": dsr.regulation,
        "external_ref": dsr.external_ref,
        "deadline": deadline_view(dsr, settings, now).model_dump(mode="json"),
    }


def record(
    session: AsyncSession,
    *,
    dsr: DsrRequest,
    settings: Settings,
    now: datetime,
    actor: str,
    audit_type: str,
    audit_data: dict[str, Any] | None = None,
    webhook_event: str | None = None,
) -> None:
    """Add an audit entry and, when the change is announced, its outbox row."""
    session.add(
        RequestEvent(request_id=dsr.id, type=audit_type, actor=actor, at=now, data=audit_data or {})
    )
    if webhook_event is None:
        return
    payload = {
        "type": webhook_event,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": webhook_data(dsr, settings, now),
    }
    session.add(
        OutboxEvent(
            event_type=webhook_event,
            request_id=dsr.id,
            owner_client_id=dsr.submitted_by,
            payload=payload,
            created_at=now,
        )
    )
