"""Deadline sweeps: due-soon and overdue notices, expiry of unverified requests.

Each sweep claims rows with ``FOR UPDATE SKIP LOCKED`` and marks them in the same
transaction, so any number of workers announce each event once.
"""

from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.enums import RejectReason, RequestStatus
from app.models import DsrRequest
from app.requests import audit, legal_clock, lifecycle

SYSTEM_ACTOR = "system"


async def announce_due_soon(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 500
) -> int:
    """``request.due_soon`` once per running request within DSR_DUE_SOON_DAYS of its due date
    and not yet past it; never after ``request.overdue`` (a sweep run late finds the request
    already overdue: it is announced overdue only)."""
    return await _announce_once(
        session,
        settings=settings,
        now=now,
        limit=limit,
        event="request.due_soon",
        marker="due_soon_notified_at",
        due=and_(
            legal_clock.due_soon_clause(settings, now),
            col(DsrRequest.overdue_notified_at).is_(None),
        ),
    )


async def announce_overdue(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 500
) -> int:
    """``request.overdue`` once per running request past its ``due_at``."""
    return await _announce_once(
        session,
        settings=settings,
        now=now,
        limit=limit,
        event="request.overdue",
        marker="overdue_notified_at",
        due=legal_clock.overdue_clause(now),
    )


async def _announce_once(
    session: AsyncSession,
    *,
    settings: Settings,
    now: datetime,
    limit: int,
    event: str,
    marker: str,
    due: object,
) -> int:
    rows = await _claim(
        session,
        limit,
        col(DsrRequest.status) == RequestStatus.IN_PROGRESS,
        due,
        col(getattr(DsrRequest, marker)).is_(None),
    )
    for dsr in rows:
        setattr(dsr, marker, now)
        audit.record(
            session,
            dsr=dsr,
            settings=settings,
            now=now,
            actor=SYSTEM_ACTOR,
            audit_type=event,
            audit_data={"due_date": str(dsr.due_date)},
            webhook_event=event,
        )
    return len(rows)


async def expire_unverified(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 500
) -> int:
    """Reject requests still unverified DSR_VERIFICATION_EXPIRY_DAYS after receipt."""
    cutoff = now - timedelta(days=settings.verification_expiry_days)
    rows = await _claim(
        session,
        limit,
        col(DsrRequest.status) == RequestStatus.AWAITING_VERIFICATION,
        col(DsrRequest.received_at) < cutoff,
    )
    for dsr in rows:
        await lifecycle.reject(
            session,
            settings=settings,
            dsr=dsr,
            reason=RejectReason.IDENTITY_NOT_VERIFIED,
            explanation=f"Identity was not verified within {settings.verification_expiry_days} "
            "days of the request.",
            actor=SYSTEM_ACTOR,
            now=now,
        )
    return len(rows)


async def _claim(session: AsyncSession, limit: int, *conditions: object) -> list[DsrRequest]:
    query = (
        select(DsrRequest)
        .where(*conditions)  # type: ignore[arg-type]
        .order_by(col(DsrRequest.created_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())
