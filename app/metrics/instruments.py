"""The process's counters and histograms; capabilities record into them, the exposition reads
them. Under ``dsr serve --workers N`` prometheus-client's multiprocess mode (set up by the CLI
through ``PROMETHEUS_MULTIPROC_DIR`` before the workers start) keeps them in files that the
scrape adds up, so a scrape sees the whole server."""

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

HTTP_REQUESTS = Counter(
    "dsr_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "dsr_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_PROGRESS = Gauge(
    "dsr_http_requests_in_progress",
    "HTTP requests being answered now.",
    # Summed over the live workers; a dead worker's share is dropped (mark_process_dead).
    multiprocess_mode="livesum",
)
REQUESTS_RECEIVED = Counter(
    "dsr_requests_received",
    "Data subject requests logged (committed), by type and channel.",
    ["type", "channel"],
)
REQUESTS_COMPLETED = Counter(
    "dsr_requests_completed",
    "Data subject requests completed (committed), by type and whether within the deadline.",
    ["type", "timeliness"],
)
WEBHOOK_DELIVERIES = Counter(
    "dsr_webhook_deliveries",
    "Webhook delivery attempts, by outcome: succeeded (2xx), http_error (any other status), "
    "no_response (timeout, refused connection, TLS or address policy).",
    ["outcome"],
)
MAIL_MESSAGES = Counter(
    "dsr_mail_messages",
    "Mail to data subjects handed to SMTP (or logged), by outcome: sent, retry, failed.",
    ["outcome"],
)
FULFILMENT_JOB_DURATION = Histogram(
    "dsr_fulfilment_job_duration_seconds",
    "Wall time of one fulfilment job run by a worker, by phase.",
    ["phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


PENDING = "metrics_pending"


def after_commit(session: AsyncSession, record: Callable[[], None]) -> None:
    """Run ``record`` once the session's transaction commits (dropped if it rolls back), so a
    counter never counts a change that did not happen."""
    info = session.sync_session.info
    pending: list[Callable[[], None]] | None = info.get(PENDING)
    if pending is None:
        pending = info[PENDING] = []
        event.listen(session.sync_session, "after_commit", _record_pending)
        event.listen(session.sync_session, "after_rollback", _drop_pending)
    pending.append(record)


def _record_pending(session: Session) -> None:
    pending = session.info.get(PENDING) or []
    session.info[PENDING] = []
    for record in pending:
        record()


def _drop_pending(session: Session) -> None:
    session.info[PENDING] = []


def request_completed(session: AsyncSession, *, request_type: str, on_time: bool) -> None:
    child = REQUESTS_COMPLETED.labels(request_type, "on_time" if on_time else "late")
    after_commit(session, child.inc)
