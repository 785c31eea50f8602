"""Figures read from the database at scrape time: the whole service's, whichever process is
scraped. Two cheap queries: one grouped over the open requests (the status index), one row of
queue ages (each an indexed minimum over the few rows still waiting)."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app import deadlines
from app.core.config import Settings
from app.enums import JobStatus, RequestStatus
from app.models import (
    DsrRequest,
    FulfilmentJob,
    MailMessage,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)

OPEN_STATUSES = (
    RequestStatus.AWAITING_VERIFICATION.value,
    RequestStatus.IN_PROGRESS.value,
    RequestStatus.PAUSED.value,
)
# Only a running clock can be overdue or due soon (as on the deadline board).
RUNNING = RequestStatus.IN_PROGRESS.value


@dataclass
class Figures:
    # (status, type) -> count, and type -> count for the deadline figures.
    open_requests: dict[tuple[str, str], int] = field(default_factory=dict)
    overdue: dict[str, int] = field(default_factory=dict)
    due_soon: dict[str, int] = field(default_factory=dict)
    due_soon_days: int = 7
    # Seconds since the oldest waiting item was created; 0 when nothing waits.
    oldest_outbox_event: float = 0.0
    oldest_pending_delivery: float = 0.0
    oldest_pending_mail: float = 0.0
    oldest_queued_job: float = 0.0
    disabled_endpoints: int = 0


async def read_figures(session: AsyncSession, *, settings: Settings, now: datetime) -> Figures:
    """The scrape-time figures (two queries)."""
    horizon = deadlines.local_date(now, settings.tz) + timedelta(days=settings.due_soon_days)
    running = col(DsrRequest.status) == RUNNING
    overdue = running & (col(DsrRequest.due_at) < now)
    due_soon = running & (col(DsrRequest.due_date) <= horizon) & (col(DsrRequest.due_at) >= now)
    rows = await session.execute(
        select(
            col(DsrRequest.status),
            col(DsrRequest.type),
            func.count(),
            func.sum(case((overdue, 1), else_=0)),
            func.sum(case((due_soon, 1), else_=0)),
        )
        .where(col(DsrRequest.status).in_(OPEN_STATUSES))
        .group_by(col(DsrRequest.status), col(DsrRequest.type))
    )
    figures = Figures(due_soon_days=settings.due_soon_days)
    for status, request_type, count, overdue_count, due_soon_count in rows:
        figures.open_requests[(status, request_type)] = int(count)
        figures.overdue[request_type] = figures.overdue.get(request_type, 0) + int(
            overdue_count or 0
        )
        figures.due_soon[request_type] = figures.due_soon.get(request_type, 0) + int(
            due_soon_count or 0
        )
    queues = (
        await session.execute(
            select(
                select(func.min(col(OutboxEvent.created_at)))
                .where(col(OutboxEvent.published_at).is_(None))
                .scalar_subquery(),
                select(func.min(col(WebhookDelivery.created_at)))
                .where(col(WebhookDelivery.status) == "pending")
                .scalar_subquery(),
                select(func.min(col(MailMessage.created_at)))
                .where(col(MailMessage.status) == "pending")
                .scalar_subquery(),
                select(func.min(col(FulfilmentJob.created_at)))
                .where(col(FulfilmentJob.status) == JobStatus.QUEUED.value)
                .scalar_subquery(),
                # Endpoints are few (one or two per integration): a count is cheap.
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(col(WebhookEndpoint.active).is_(False))
                .scalar_subquery(),
            )
        )
    ).one()
    outbox, delivery, mail, job, disabled = queues
    figures.oldest_outbox_event = _age(outbox, now)
    figures.oldest_pending_delivery = _age(delivery, now)
    figures.oldest_pending_mail = _age(mail, now)
    figures.oldest_queued_job = _age(job, now)
    figures.disabled_endpoints = int(disabled or 0)
    return figures


def _age(oldest: datetime | str | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite returns a bare min() over a subquery as text
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - oldest).total_seconds())


class FiguresCollector(Collector):
    """Hands one scrape's figures to prometheus-client's text writer."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self.figures
        open_requests = GaugeMetricFamily(
            "dsr_requests_open",
            "Open requests (awaiting verification, in progress, paused), by status and type.",
            labels=["status", "type"],
        )
        for (status, request_type), count in sorted(figures.open_requests.items()):
            open_requests.add_metric([status, request_type], count)
        yield open_requests
        overdue = GaugeMetricFamily(
            "dsr_requests_overdue",
            "Requests in progress past the end of their due date, by type.",
            labels=["type"],
        )
        due_soon = GaugeMetricFamily(
            "dsr_requests_due_soon",
            f"Requests in progress due within {figures.due_soon_days} days (today included) "
            "and not yet overdue, by type (DSR_DUE_SOON_DAYS).",
            labels=["type"],
        )
        for request_type in sorted(figures.overdue):
            overdue.add_metric([request_type], figures.overdue[request_type])
            due_soon.add_metric([request_type], figures.due_soon[request_type])
        yield overdue
        yield due_soon
        yield GaugeMetricFamily(
            "dsr_requests_awaiting_verification",
            "Requests waiting for the subject's identity to be verified.",
            value=sum(
                count
                for (status, _type), count in figures.open_requests.items()
                if status == RequestStatus.AWAITING_VERIFICATION.value
            ),
        )
        for name, documentation, value in (
            (
                "dsr_webhook_outbox_oldest_age_seconds",
                "Age of the oldest webhook event not yet fanned out to endpoints (0: none).",
                figures.oldest_outbox_event,
            ),
            (
                "dsr_webhook_delivery_oldest_pending_age_seconds",
                "Age of the oldest webhook delivery still pending, retries included (0: none).",
                figures.oldest_pending_delivery,
            ),
            (
                "dsr_mail_oldest_pending_age_seconds",
                "Age of the oldest mail to a data subject not yet sent (0: none).",
                figures.oldest_pending_mail,
            ),
            (
                "dsr_fulfilment_job_oldest_queued_age_seconds",
                "Age of the oldest fulfilment job waiting for a worker (0: none).",
                figures.oldest_queued_job,
            ),
            (
                "dsr_webhook_endpoints_disabled",
                "Webhook endpoints disabled (410 Gone, or failing for too long).",
                figures.disabled_endpoints,
            ),
        ):
            yield GaugeMetricFamily(name, documentation, value=value)
