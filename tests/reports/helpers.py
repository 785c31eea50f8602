"""Requests written straight into the database with chosen dates and outcomes, so the
reports can be checked against figures worked out by hand."""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI

from app.models import DsrRequest, RequestEvent

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def end_of(day: str) -> datetime:
    """``due_at`` of a due date in winter London (UTC+0): its last second."""
    return datetime.fromisoformat(day).replace(hour=23, minute=59, second=59, tzinfo=UTC)


async def add_request(app: FastAPI, *, rejected_by: str | None = None, **fields: Any) -> uuid.UUID:
    """A request row; ``rejected_by`` closes it as that actor, with its audit entry."""
    values: dict[str, Any] = {
        "type": "access",
        "status": "in_progress",
        "regulation": "uk_gdpr",
        "channel": "email",
        "submitted_by": "test",
        "subject_email": "report.subject@example.com",
        "subject_name": "Report Subject",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    if rejected_by is not None:
        values.setdefault("closed_by", rejected_by)
    if isinstance(values.get("due_date"), str):
        values["due_date"] = date.fromisoformat(values["due_date"])
    if isinstance(values.get("clock_started_on"), str):
        values["clock_started_on"] = date.fromisoformat(values["clock_started_on"])
    dsr = DsrRequest(**values)
    async with app.state.sessionmaker.begin() as session:
        session.add(dsr)
        await session.flush()
        if rejected_by is not None:
            session.add(
                RequestEvent(
                    request_id=dsr.id,
                    type="request.rejected",
                    actor=rejected_by,
                    at=values.get("closed_at") or NOW,
                    data={"reason": values.get("outcome_reason")},
                )
            )
    return dsr.id
