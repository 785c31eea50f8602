"""The summary for the regulator: a few GROUP BY queries, computed in the database.

Every period figure is about the requests *received* in the period (local days in
DSR_TIMEZONE, both ends included), and says what has become of them so far, so each can be
recomputed from the register CSV of the same period. ``open_now`` is today's board.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.errors import UnprocessableEntity
from app.enums import Channel, RejectReason, RequestStatus, RequestType
from app.models import DsrRequest
from app.reports.schemas import (
    CompletedFigures,
    DaysTaken,
    ExtensionFigures,
    OpenNow,
    ReasonCount,
    ReceivedFigures,
    RejectionFigures,
    ReportPeriod,
    SummaryReport,
)
from app.requests import legal_clock
from app.requests.sweeps import SYSTEM_ACTOR

# A report of more than five years is an export job, not a page to wait for.
MAX_SPAN_DAYS = 5 * 366
DUE_WITHIN_DAYS = 7
TOP_REASONS = 10
REGULATIONS = ("uk_gdpr", "eu_gdpr", "ccpa")
COMPLETED = RequestStatus.COMPLETED.value
REJECTED = RequestStatus.REJECTED.value
CANCELLED = RequestStatus.CANCELLED.value
CLOSED = (COMPLETED, REJECTED, CANCELLED)
# For the summary's transaction on PostgreSQL: each measured on 1,000,000 requests.
PLANNER_SETTINGS = (
    # Compiling these one-off aggregates to machine code took longer than running them.
    "jit = off",
    # Requests are stored about in receipt order, so a period is a run of adjacent pages:
    # with the spinning-disk default (4) the planner read the whole table instead.
    "random_page_cost = 1.1",
    # From the sixth call on a connection, the cached generic plan cannot see how much of
    # the table the period covers, and was half as fast again (110 ms against 70).
    "plan_cache_mode = force_custom_plan",
)
# Dates a period may hold: its end plus one day must still be a date.
EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)


@dataclass(frozen=True)
class Period:
    from_date: date
    to_date: date
    start: datetime  # first instant of from_date in DSR_TIMEZONE, in UTC
    end: datetime  # first instant after to_date, in UTC

    def received(self) -> ColumnElement[bool]:
        received_at = col(DsrRequest.received_at)
        return and_(received_at >= self.start, received_at < self.end)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def period(
    settings: Settings, now: datetime, *, from_date: date | None, to_date: date | None
) -> Period:
    """The period asked for; by default the twelve months ending today. 422 when it runs
    backwards, spans more than five years, or leaves the calendar."""
    to_date = to_date or legal_clock.today(settings, now)
    from_date = from_date or _year_before(to_date) + timedelta(days=1)
    for value in (from_date, to_date):
        if not EARLIEST <= value <= LATEST:
            raise UnprocessableEntity(
                f"Dates must lie between {EARLIEST} and {LATEST}.", title="Invalid period"
            )
    if from_date > to_date:
        raise UnprocessableEntity("`from` is after `to`.", title="Invalid period")
    if (to_date - from_date).days >= MAX_SPAN_DAYS:
        raise UnprocessableEntity(
            "A report covers at most five years; ask for several periods.", title="Invalid period"
        )
    tz = settings.tz
    return Period(
        from_date=from_date,
        to_date=to_date,
        start=datetime.combine(from_date, time.min, tzinfo=tz).astimezone(UTC),
        end=datetime.combine(to_date + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC),
    )


def days_taken_expression(dialect: str) -> ColumnElement[Any]:
    """Days from receipt to closure, with their fraction (the same on both backends)."""
    if dialect == "postgresql":
        # date_part is double precision; EXTRACT's numeric made the percentiles 50 % slower.
        seconds = func.date_part("epoch", col(DsrRequest.closed_at) - col(DsrRequest.received_at))
        return seconds / 86400.0
    return func.julianday(col(DsrRequest.closed_at)) - func.julianday(col(DsrRequest.received_at))


def _zeros(names: Any) -> dict[str, int]:
    return {str(name): 0 for name in names}


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # FILTER skips the CASE per row (PostgreSQL, and SQLite since 3.30).
    return func.count().filter(condition)


def _completed() -> ColumnElement[bool]:
    """A literal, not a parameter, so PostgreSQL's cached plans can use the partial index."""
    return col(DsrRequest.status) == literal_column(f"'{COMPLETED}'")


@dataclass
class Outcomes:
    received: ReceivedFigures
    completed: CompletedFigures
    rejections: RejectionFigures
    extended: int
    cancelled: int
    still_open: int
    verification_expiries: int


async def _period_figures(session: AsyncSession, window: Period, days: DaysTaken) -> Outcomes:
    """What was received, and what became of it: one scan, grouped by every dimension the
    figures split on (a few hundred groups at most), folded here."""
    status, reason = col(DsrRequest.status), col(DsrRequest.outcome_reason)
    request_type, channel = col(DsrRequest.type), col(DsrRequest.channel)
    regulation = col(DsrRequest.regulation)
    completed = status == COMPLETED
    # Rejections for unverified identity made by the expiry sweep, not by an officer.
    expired = and_(
        status == REJECTED,
        reason == RejectReason.IDENTITY_NOT_VERIFIED.value,
        col(DsrRequest.closed_by) == SYSTEM_ACTOR,
    )
    on_time = and_(completed, col(DsrRequest.closed_at) <= col(DsrRequest.due_at))
    late = and_(completed, col(DsrRequest.closed_at) > col(DsrRequest.due_at))
    rows = await session.execute(
        select(
            request_type,
            channel,
            regulation,
            status,
            reason,
            func.count(),
            _count_if(on_time),
            _count_if(late),
            _count_if(col(DsrRequest.extended).is_(True)),
            _count_if(expired),
        )
        .where(window.received())
        .group_by(request_type, channel, regulation, status, reason)
    )
    by_type, by_channel = _zeros(RequestType), _zeros(Channel)
    by_regulation, by_reason = _zeros(REGULATIONS), _zeros(RejectReason)
    total = completed_total = on_time_total = late_total = 0
    cancelled = still_open = extended = expired_total = 0
    for row in rows:
        (row_type, row_channel, row_regulation, row_status, row_reason, count) = row[:6]
        on_time_count, late_count, extended_count, expired_count = row[6:]
        total += count
        extended += extended_count
        expired_total += expired_count
        by_type[row_type] = by_type.get(row_type, 0) + count
        by_channel[row_channel] = by_channel.get(row_channel, 0) + count
        by_regulation[row_regulation] = by_regulation.get(row_regulation, 0) + count
        if row_status == COMPLETED:
            completed_total += count
            on_time_total += on_time_count
            late_total += late_count
        elif row_status == REJECTED:
            key = row_reason or "unspecified"
            by_reason[key] = by_reason.get(key, 0) + count
        elif row_status == CANCELLED:
            cancelled += count
        else:
            still_open += count
    rate = round(on_time_total / completed_total, 4) if completed_total else None
    return Outcomes(
        received=ReceivedFigures(
            total=total, by_type=by_type, by_channel=by_channel, by_regulation=by_regulation
        ),
        completed=CompletedFigures(
            total=completed_total,
            on_time=on_time_total,
            late=late_total,
            on_time_rate=rate,
            days_taken=days,
        ),
        rejections=RejectionFigures(total=sum(by_reason.values()), by_reason=by_reason),
        extended=extended,
        cancelled=cancelled,
        still_open=still_open,
        verification_expiries=expired_total,
    )


def _one_decimal(days: Any) -> float | None:
    """Rounded half up, as the register's days_taken (Python's round() goes half to even)."""
    if days is None:
        return None
    return float(Decimal(repr(float(days))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _interpolated(values: dict[int, float], count: int, fraction: float) -> float | None:
    """percentile_cont's linear interpolation over the sorted values at these positions."""
    if count == 0:
        return None
    position = fraction * (count - 1)
    lower = int(position)
    upper = min(lower + 1, count - 1)
    low = values[lower]
    return low + (values[upper] - low) * (position - lower)


async def _days_taken(session: AsyncSession, window: Period) -> DaysTaken:
    """Median and 90th percentile of days taken by the completed requests."""
    dialect = session.get_bind().dialect.name
    days = days_taken_expression(dialect)
    completed = and_(window.received(), _completed())
    if dialect == "postgresql":
        median, p90 = (
            await session.execute(
                select(
                    func.percentile_cont(0.5).within_group(days),
                    func.percentile_cont(0.9).within_group(days),
                ).where(completed)
            )
        ).one()
        return DaysTaken(
            median=_one_decimal(median),
            p90=_one_decimal(p90),
        )
    # SQLite has no percentile_cont: number the sorted values, keep the few around each
    # percentile's position, and interpolate as percentile_cont does.
    ranked = select(
        days.label("days"),
        (func.row_number().over(order_by=days) - 1).label("position"),
        func.count().over().label("total"),
    ).where(completed)
    ranked_sub = ranked.subquery()
    position, total = ranked_sub.c.position, ranked_sub.c.total

    def around(fraction: float) -> ColumnElement[bool]:
        # CAST truncates, which is floor for these non-negative positions.
        lower = cast(fraction * (total - 1), Integer)
        return and_(position >= lower, position <= lower + 1)

    rows = (
        await session.execute(
            select(ranked_sub.c.days, position, total).where(around(0.5) | around(0.9))
        )
    ).all()
    if not rows:
        return DaysTaken(median=None, p90=None)
    count = rows[0][2]
    values = {int(row[1]): float(row[0]) for row in rows}
    median, p90 = _interpolated(values, count, 0.5), _interpolated(values, count, 0.9)
    return DaysTaken(
        median=_one_decimal(median),
        p90=_one_decimal(p90),
    )


async def _top_extension_reasons(session: AsyncSession, window: Period) -> list[ReasonCount]:
    reason = func.lower(func.trim(func.coalesce(col(DsrRequest.extension_reason), "")))
    count = func.count()
    rows = await session.execute(
        select(reason, count)
        # Plain `extended` (not `IS TRUE`), so PostgreSQL uses the partial index.
        .where(window.received(), col(DsrRequest.extended))
        .group_by(reason)
        .order_by(count.desc(), reason)
        .limit(TOP_REASONS)
    )
    return [ReasonCount(reason=given or "unspecified", count=n) for given, n in rows]


async def _open_now(session: AsyncSession, settings: Settings, now: datetime) -> OpenNow:
    horizon = legal_clock.today(settings, now) + timedelta(days=DUE_WITHIN_DAYS)
    running = col(DsrRequest.status).in_(legal_clock.RUNNING_STATUSES)
    due_soon = and_(running, col(DsrRequest.due_date) <= horizon, col(DsrRequest.due_at) >= now)
    rows = await session.execute(
        select(
            col(DsrRequest.status),
            func.count(),
            _count_if(legal_clock.overdue_clause(now)),
            _count_if(due_soon),
        )
        .where(col(DsrRequest.status).in_(legal_clock.OPEN_STATUSES))
        .group_by(col(DsrRequest.status))
    )
    by_status = _zeros(sorted(legal_clock.OPEN_STATUSES, key=list(RequestStatus).index))
    overdue = due_within = 0
    for status, count, overdue_count, due_count in rows:
        by_status[status] = count
        overdue += overdue_count
        due_within += due_count
    return OpenNow(
        total=sum(by_status.values()),
        by_status=by_status,
        overdue=overdue,
        due_within_7_days=due_within,
    )


async def use_planner_settings(session: AsyncSession) -> None:
    """PLANNER_SETTINGS for the rest of this transaction (PostgreSQL only)."""
    for setting in PLANNER_SETTINGS:
        await session.execute(text(f"SET LOCAL {setting}"))


async def summary(
    session: AsyncSession, *, settings: Settings, window: Period, now: datetime
) -> SummaryReport:
    """Every figure of the summary: four queries at most, none loading rows."""
    if session.get_bind().dialect.name == "postgresql":
        await use_planner_settings(session)
    days = await _days_taken(session, window)
    figures = await _period_figures(session, window, days)
    return SummaryReport(
        period=ReportPeriod(
            from_date=window.from_date, to_date=window.to_date, timezone=settings.timezone
        ),
        generated_at=now,
        received=figures.received,
        completed=figures.completed,
        extensions=ExtensionFigures(
            count=figures.extended,
            top_reasons=await _top_extension_reasons(session, window) if figures.extended else [],
        ),
        rejections=figures.rejections,
        verification_expiries=figures.verification_expiries,
        cancelled=figures.cancelled,
        still_open=figures.still_open,
        open_now=await _open_now(session, settings, now),
    )
