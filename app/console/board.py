"""The board placeholder's data: open requests, soonest deadline first."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.models import DsrRequest
from app.requests import legal_clock
from app.requests.duplicates import OPEN_STATUSES

BOARD_LIMIT = 200


@dataclass(frozen=True)
class BoardRow:
    id: uuid.UUID
    reference: str
    type: str
    status: str
    due_date: date | None
    days_left: int | None
    overdue: bool
    assignee: str | None


async def open_requests(
    session: AsyncSession, *, settings: Settings, now: datetime
) -> list[BoardRow]:
    """Up to ``BOARD_LIMIT`` open requests, soonest due first (no due date yet: last)."""
    query = (
        select(DsrRequest)
        .where(col(DsrRequest.status).in_(OPEN_STATUSES))
        .order_by(col(DsrRequest.due_date).is_(None), col(DsrRequest.due_date), col(DsrRequest.id))
        .limit(BOARD_LIMIT)
    )
    rows = []
    for dsr in (await session.execute(query)).scalars():
        deadline = legal_clock.deadline_view(dsr, settings, now)
        rows.append(
            BoardRow(
                id=dsr.id,
                reference=dsr.external_ref or str(dsr.id)[:8],
                type=dsr.type,
                status=dsr.status,
                due_date=deadline.due_date,
                days_left=deadline.days_left,
                overdue=deadline.overdue,
                assignee=dsr.assignee,
            )
        )
    return rows
