"""The accountability register: one CSV row per request received in a period, streamed.

Rows come from a server-side cursor a partition at a time (``yield_per``), so memory stays
flat whatever the period holds. No subject identity is selected at all; every cell goes
through the exports' CSV hygiene (``app.core.encoding``: formula neutralisation, quoting).
"""

from collections.abc import AsyncIterator, Sequence
from datetime import tzinfo
from typing import Any

from sqlalchemy import Date, Numeric, and_, case, cast, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.encoding import csv_column, csv_lines
from app.models import DsrRequest
from app.reports import summary
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

_TABLE = DsrRequest.__table__  # type: ignore[attr-defined]


def _columns(dialect: str, timezone: str) -> list[Any]:
    """The register's cells, in ``HEADER`` order, computed by the database where both
    backends can, so Python only encodes them (plain table columns: no ORM row loading).

    ``on_time``: closed no later than the end of its due date (blank while open, or when
    the clock never started, as for a request rejected before identity was confirmed).
    ``days_taken``: days from receipt to closure, one decimal (blank while open).
    The local dates of receipt and closure come from PostgreSQL; SQLite has no time zones,
    so there the timestamps come back and ``_local_dates`` converts them.
    """
    c = _TABLE.c
    closed = and_(c.status.in_(CLOSED), c.closed_at.is_not(None))
    days = summary.days_taken_expression(dialect)
    if dialect == "postgresql":
        received_on: Any = cast(func.timezone(timezone, c.received_at), Date)
        closed_on: Any = cast(func.timezone(timezone, c.closed_at), Date)
        days = cast(days, Numeric)
    else:
        received_on, closed_on = c.received_at, c.closed_at
    return [
        c.id,
        c.type,
        c.regulation,
        c.channel,
        received_on,
        c.clock_started_on,
        c.due_date,
        case((c.extended, "yes"), else_="no"),
        c.extension_reason,
        c.paused_days,
        case((closed, closed_on), else_=null()),
        c.status,
        case(
            (and_(closed, c.due_at.is_not(None), c.closed_at <= c.due_at), "yes"),
            (and_(closed, c.due_at.is_not(None)), "no"),
            else_="",
        ),
        case((closed, func.round(days, 1)), else_=null()),
        case(
            (
                and_(c.outcome_reason.is_not(None), c.pause_reason.is_not(None)),
                c.outcome_reason + ";" + c.pause_reason,
            ),
            else_=func.coalesce(c.outcome_reason, c.pause_reason, ""),
        ),
    ]


def file_name(window: Period) -> str:
    return f"dsr-register-{window.from_date}-to-{window.to_date}.csv"


def _local_dates(values: Sequence[Any], tz: tzinfo) -> list[Any]:
    return [value if value is None else value.astimezone(tz).date() for value in values]


def encode_rows(rows: Sequence[Sequence[Any]], *, tz: tzinfo, local_dates_done: bool) -> bytes:
    """Register rows as CSV lines: a column at a time, every cell neutralised and quoted."""
    if not rows:
        return b""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    columns[0] = list(map(str, columns[0]))  # the driver's UUIDs, as text
    if not local_dates_done:
        columns[4] = _local_dates(columns[4], tz)
        columns[10] = _local_dates(columns[10], tz)
    return csv_lines(zip(*map(csv_column, columns), strict=True))


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
        local_dates_done = connection.dialect.name == "postgresql"
        async for partition in result.partitions():
            yield encode_rows(partition, tz=tz, local_dates_done=local_dates_done)
