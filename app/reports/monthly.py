"""Requests received per calendar month of a period, and how many of them were completed on
time: the series behind the console's chart (and ``GET /v1/reports/monthly``).

Months are local months in DSR_TIMEZONE, cut to the period at both ends. One grouped scan:
each request is placed in its month by comparing its receipt instant with the months' first
instants, computed here, so both backends agree on local months without time-zone support
in SQLite.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.models import DsrRequest
from app.reports.schemas import MonthFigures, MonthlyReport, ReportPeriod
from app.reports.summary import COMPLETED, Period


@dataclass(frozen=True)
class Month:
    label: str  # YYYY-MM
    start: datetime  # first instant in the period, UTC


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def months(settings: Settings, window: Period) -> list[Month]:
    """The local months the period touches, each from its first instant inside the period."""
    found = []
    day = window.from_date
    while day <= window.to_date:
        start = datetime.combine(day, time.min, tzinfo=settings.tz).astimezone(UTC)
        found.append(Month(label=day.strftime("%Y-%m"), start=start))
        day = _first_of_next_month(day)
    return found


def _month_index(periods: list[Month]) -> ColumnElement[int]:
    received_at = col(DsrRequest.received_at)
    # Latest month first: the first boundary the receipt is not before is its month.
    whens = [
        (received_at >= month.start, index) for index, month in reversed(list(enumerate(periods)))
    ]
    return case(*whens, else_=-1)


async def monthly(session: AsyncSession, *, settings: Settings, window: Period) -> MonthlyReport:
    """Received, completed, on time and late per month of the period (months with none: 0)."""
    periods = months(settings, window)
    index = _month_index(periods)
    completed = col(DsrRequest.status) == COMPLETED
    on_time = and_(completed, col(DsrRequest.closed_at) <= col(DsrRequest.due_at))
    late = and_(completed, col(DsrRequest.closed_at) > col(DsrRequest.due_at))
    rows = await session.execute(
        select(
            index,
            func.count(),
            func.count().filter(completed),
            func.count().filter(on_time),
            func.count().filter(late),
        )
        .where(window.received())
        .group_by(index)
    )
    counts = {int(row[0]): tuple(int(value) for value in row[1:]) for row in rows}
    figures = []
    for position, month in enumerate(periods):
        received, done, in_time, overdue = counts.get(position, (0, 0, 0, 0))
        figures.append(
            MonthFigures(
                month=month.label,
                received=received,
                completed=done,
                on_time=in_time,
                late=overdue,
                on_time_rate=round(in_time / done, 4) if done else None,
            )
        )
    return MonthlyReport(
        period=ReportPeriod(
            from_date=window.from_date, to_date=window.to_date, timezone=settings.timezone
        ),
        months=figures,
    )
