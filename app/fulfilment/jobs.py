"""The fulfilment job queue: leased claims, heartbeats and retries, never lost.

A job is claimed with a lease (``claimed_until``); a worker that dies loses it when the lease
passes and another worker runs it again (fulfilment steps are idempotent: erasing twice finds
nothing the second time). ``attempt_count`` doubles as a fencing token: a worker writes only
while the job still carries the attempt it claimed.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.logs import current_request_id
from app.enums import JobStatus
from app.models import FulfilmentJob

# Waits between attempts after a retryable failure (a source down for maintenance).
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)


class LeaseLost(Exception):
    """Another worker took the job over (this one was too slow or presumed dead)."""


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    request_id: uuid.UUID
    phase: str
    params: dict[str, Any]
    actor: str
    attempt: int
    # The X-Request-ID of the HTTP request that queued the job: its log lines carry it.
    trace_id: str | None = None


def new_job(
    *, request_id: uuid.UUID, phase: str, params: dict[str, Any], actor: str, now: datetime
) -> FulfilmentJob:
    return FulfilmentJob(
        request_id=request_id,
        phase=phase,
        params=params,
        actor=actor,
        status=JobStatus.QUEUED.value,
        next_attempt_at=now,
        created_at=now,
        trace_id=current_request_id(),
    )


async def claim_due(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int
) -> list[ClaimedJob]:
    """Lease up to ``limit`` due jobs (queued and due, or running with a lapsed lease)."""
    if limit <= 0:
        return []
    rows = list(
        (
            await session.execute(
                select(FulfilmentJob)
                .where(
                    or_(
                        (col(FulfilmentJob.status) == JobStatus.QUEUED)
                        & (col(FulfilmentJob.next_attempt_at) <= now),
                        (col(FulfilmentJob.status) == JobStatus.RUNNING)
                        & (col(FulfilmentJob.claimed_until) < now),
                    )
                )
                .order_by(col(FulfilmentJob.next_attempt_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    claimed = []
    for job in rows:
        job.status = JobStatus.RUNNING.value
        job.attempt_count += 1
        job.claimed_until = now + timedelta(seconds=settings.fulfilment_lease_seconds)
        session.add(job)
        claimed.append(
            ClaimedJob(
                id=job.id,
                request_id=job.request_id,
                phase=job.phase,
                params=dict(job.params),
                actor=job.actor,
                attempt=job.attempt_count,
                trace_id=job.trace_id,
            )
        )
    return claimed


async def hold(
    session: AsyncSession, job: ClaimedJob, *, settings: Settings, now: datetime
) -> None:
    """Extend the lease; raise LeaseLost if another worker has taken the job."""
    await _update_held(
        session, job, claimed_until=now + timedelta(seconds=settings.fulfilment_lease_seconds)
    )


async def finish(
    session: AsyncSession,
    job: ClaimedJob,
    *,
    status: JobStatus,
    now: datetime,
    error: str | None = None,
) -> None:
    """Close the job (done or failed); LeaseLost if it is no longer this worker's."""
    await _update_held(
        session, job, status=status.value, claimed_until=None, finished_at=now, last_error=error
    )


async def retry_later(
    session: AsyncSession, job: ClaimedJob, *, settings: Settings, now: datetime, error: str
) -> bool:
    """Queue the job again after a backoff; False when its attempts are used up."""
    if job.attempt >= min(settings.fulfilment_max_attempts, len(RETRY_DELAYS) + 1):
        return False
    delay = RETRY_DELAYS[job.attempt - 1]
    await _update_held(
        session,
        job,
        status=JobStatus.QUEUED.value,
        claimed_until=None,
        next_attempt_at=now + delay,
        last_error=error,
    )
    return True


async def _update_held(session: AsyncSession, job: ClaimedJob, **values: Any) -> None:
    """Change the job only while this worker's claim (its attempt) still holds it."""
    result = await session.execute(
        update(FulfilmentJob)
        .where(
            col(FulfilmentJob.id) == job.id,
            col(FulfilmentJob.attempt_count) == job.attempt,
            col(FulfilmentJob.status) == JobStatus.RUNNING,
        )
        .values(**values)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise LeaseLost(str(job.id))
