"""The audit trail of a request, and its announcement to webhook subscribers.

Both are written in the caller's transaction, so an event exists exactly when the change does.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import DsrRequest, OutboxEvent, RequestEvent
from app.requests.legal_clock import deadline_view
from app.webhooks import outbox


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


def next_sequence(dsr: DsrRequest) -> int:
    """The number of the request's next event: 1, 2, 3… in the order they happen.

    Every writer of a request event holds the request: intake creates it, and every other
    path loads it ``FOR UPDATE`` (SQLite: ``BEGIN IMMEDIATE``) until its commit. So numbers
    follow commit order with no repeats, and a rolled-back change takes its number with it:
    no gaps. Counted in the row itself, it costs intake no query.
    """
    dsr.event_sequence = (dsr.event_sequence or 0) + 1
    return dsr.event_sequence


def audit_row(
    *,
    dsr: DsrRequest,
    now: datetime,
    actor: str,
    audit_type: str,
    audit_data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "request_id": dsr.id,
        "type": audit_type,
        "actor": actor,
        "at": now,
        "data": audit_data or {},
    }


def outbox_row(
    *,
    dsr: DsrRequest,
    settings: Settings,
    now: datetime,
    webhook_event: str,
    extra: dict[str, Any] | None = None,
    owner_client_id: str | None = None,
) -> dict[str, Any]:
    """``extra`` adds event-specific fields to ``data`` (never the subject's data);
    ``owner_client_id`` sends it to another client's endpoints (a task's assignee)."""
    data = {**webhook_data(dsr, settings, now), "sequence": next_sequence(dsr), **(extra or {})}
    return outbox.outbox_row(
        event_type=webhook_event,
        data=data,
        now=now,
        request_id=dsr.id,
        owner_client_id=owner_client_id or dsr.submitted_by,
    )


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
    webhook_extra: dict[str, Any] | None = None,
    webhook_owner: str | None = None,
) -> None:
    """Add an audit entry and, when the change is announced, its outbox row."""
    session.add(
        RequestEvent(
            **audit_row(dsr=dsr, now=now, actor=actor, audit_type=audit_type, audit_data=audit_data)
        )
    )
    if webhook_event is not None:
        session.add(
            OutboxEvent(
                **outbox_row(
                    dsr=dsr,
                    settings=settings,
                    now=now,
                    webhook_event=webhook_event,
                    extra=webhook_extra,
                    owner_client_id=webhook_owner,
                )
            )
        )
