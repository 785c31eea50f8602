"""The accountability register: one CSV row per request received in a period, streamed.

Rows come from a server-side cursor a partition at a time (``yield_per``), so memory stays
flat whatever the period holds. No subject identity is selected at all; every cell goes
through the exports' CSV hygiene (``app.core.encoding``: formula neutralisation, quoting).
"""

from collections.abc import AsyncIterator, Sequence
from datetime import tzinfo
from typing import Any

from sqlalchemy import Date, DateTime, cast, func, null, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.encoding import csv_column, csv_lines
from app.models import DsrRequest
from app.reports.summary import CLOSED, Period

HEADER = (
    "id",
    "type",
    "regulation",
    "channel",
    "received_on",
    "clock_started_on",
    "due_date",
    "extended",
    "extension_reason",
    "paused_days",
    "closed_on",
    "outcome",
    "on_time",
    "days_taken",
    "reason_codes",
)
PARTITION = 5000
_YES_NO = {True: "yes", False: "no"}

_TABLE = DsrRequest.__table__  # type: ignore[attr-defined]
_NAMES = (
    "id",
    "type",
    "regulation",
    "channel",
    "received_at",
    "clock_started_on",
    "due_date",
    "due_at",
    "extended",
    "extension_reason",
    "paused_days",
    "closed_at",
    "status",
    "outcome_reason",
    "pause_reason",
)
_TIMESTAMPS = frozenset({"received_at", "due_at", "closed_at"})


def _columns(dialect: str, timezone: str) -> list[Any]:
    """Plain table columns (no ORM row loading), then the local dates of receipt and closure.

    PostgreSQL's driver already returns aware UTC timestamps (so ``UTCDateTime``'s per-value
    conversion is skipped) and computes the local dates itself, far cheaper than Python's
    zone conversion; SQLite has no time zones, so there they are computed per row."""
    columns = []
    for name in _NAMES:
        column = _TABLE.c[name]
        if dialect == "postgresql" and name in _TIMESTAMPS:
            column = type_coerce(column, DateTime(timezone=True)).label(name)
        columns.append(column)
    for name in ("received_at", "closed_at"):
        if dialect == "postgresql":
            columns.append(cast(func.timezone(timezone, _TABLE.c[name]), Date))
        else:
            columns.append(null())
    return columns


def file_name(window: Period) -> str:
    return f"dsr-register-{window.from_date}-to-{window.to_date}.csv"


def register_row(row: Any, tz: tzinfo) -> tuple[Any, ...]:
    """One request's register values (not yet CSV text), in ``HEADER`` order.

    ``on_time``: closed no later than the end of its due date (blank while open, or when
    the clock never started, as for a request rejected before identity was confirmed).
    ``days_taken``: days from receipt to closure, one decimal (blank while open).
    """
    (
        request_id,
        request_type,
        regulation,
        channel,
        received_at,
        clock_started_on,
        due_date,
        due_at,
        extended,
        extension_reason,
        paused_days,
        closed_at,
        status,
        outcome_reason,
        pause_reason,
        received_on,
        closed_on,
    ) = row
    if received_on is None:
        received_on = received_at.astimezone(tz).date()
    closed = closed_at is not None and status in CLOSED
    if closed:
        on_time = "" if due_at is None else _YES_NO[closed_at <= due_at]
        days_taken = round((closed_at - received_at).total_seconds() / 86400, 1)
        if closed_on is None:
            closed_on = closed_at.astimezone(tz).date()
    else:
        on_time, days_taken, closed_on = "", None, None
    if outcome_reason and pause_reason:
        codes = f"{outcome_reason};{pause_reason}"
    else:
        codes = outcome_reason or pause_reason or ""
    return (
        str(request_id),
        request_type,
        regulation,
        channel,
        received_on,
        clock_started_on,
        due_date,
        _YES_NO[bool(extended)],
        extension_reason,
        paused_days,
        closed_on,
        status,
        on_time,
        days_taken,
        codes,
    )


def encode_rows(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """Register rows as CSV lines: a column at a time, every cell neutralised and quoted."""
    if not rows:
        return b""
    columns = [csv_column(values) for values in zip(*rows, strict=True)]
    return csv_lines(zip(*columns, strict=True))


def query(window: Period, dialect: str, timezone: str) -> Any:
    received_at = _TABLE.c.received_at
    return (
        select(*_columns(dialect, timezone))
        .where(received_at >= window.start, received_at < window.end)
        .order_by(received_at, _TABLE.c.id)
        .execution_options(yield_per=PARTITION)
    )


async def stream_register(
    sessionmaker: async_sessionmaker[AsyncSession], *, settings: Settings, window: Period
) -> AsyncIterator[bytes]:
    """The CSV, header first, a partition of rows per chunk; its own read-only session,
    since the response is sent after the route's own transaction has ended."""
    tz = settings.tz
    yield csv_lines([HEADER])
    async with sessionmaker() as session:
        connection = await session.connection()
        statement = query(window, connection.dialect.name, settings.timezone)
        result = await connection.stream(statement)
        async for partition in result.partitions():
            yield encode_rows([register_row(row, tz) for row in partition])
