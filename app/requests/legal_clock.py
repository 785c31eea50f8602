"""Applies the pure deadline rules to a request row, renders its deadline block, and says in
SQL which requests are overdue or due soon (the board and the sweeps ask the same question)."""

from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_
from sqlmodel import col

from app import deadlines
from app.core.config import Settings
from app.enums import RequestStatus
from app.models import DsrRequest
from app.requests.schemas import DeadlinePublic

RUNNING_STATUSES = {RequestStatus.IN_PROGRESS.value}
OPEN_STATUSES = {
    RequestStatus.AWAITING_VERIFICATION.value,
    RequestStatus.IN_PROGRESS.value,
    RequestStatus.PAUSED.value,
}


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Running and past the end of its due date."""
    return and_(col(DsrRequest.status).in_(RUNNING_STATUSES), col(DsrRequest.due_at) < now)


def due_soon_clause(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """Running, due within DSR_DUE_SOON_DAYS (today included), and not yet past due: a late
    request is overdue, never "due soon"."""
    horizon = today(settings, now) + timedelta(days=settings.due_soon_days)
    return and_(
        col(DsrRequest.status).in_(RUNNING_STATUSES),
        col(DsrRequest.due_date) <= horizon,
        col(DsrRequest.due_at) >= now,
    )


def calendar_for(settings: Settings) -> deadlines.HolidayCalendar:
    return deadlines.HolidayCalendar(settings.holiday_country, settings.holiday_subdivision)


def today(settings: Settings, now: datetime) -> date:
    return deadlines.local_date(now, settings.tz)


def _due(dsr: DsrRequest, settings: Settings, *, extended: bool, more_paused_days: int = 0) -> date:
    assert dsr.clock_started_on is not None
    return deadlines.compute_due_date(
        regulation=dsr.regulation,
        clock_started_on=dsr.clock_started_on,
        extended=extended,
        paused_days=dsr.paused_days + more_paused_days,
        calendar=calendar_for(settings),
    )


def recompute(dsr: DsrRequest, settings: Settings) -> None:
    """Refresh the stored due dates from the clock start, paused days and extension."""
    if dsr.clock_started_on is None:
        dsr.due_date = dsr.due_at = None
        return
    dsr.due_date = _due(dsr, settings, extended=dsr.extended)
    dsr.due_at = deadlines.due_at(dsr.due_date, settings.tz)


def start_clock(dsr: DsrRequest, settings: Settings, *, started_on: date) -> None:
    """Start (or restart) the clock on ``started_on``, never earlier than receipt."""
    received_on = deadlines.local_date(dsr.received_at, settings.tz)
    dsr.clock_started_on = max(received_on, started_on)
    recompute(dsr, settings)


def _stopped_days_so_far(dsr: DsrRequest, on: date) -> int:
    """Days of the ongoing clarification pause, counted as if it ended on ``on``."""
    if dsr.status != RequestStatus.PAUSED or dsr.paused_on is None:
        return 0
    if dsr.pause_reason != "awaiting_clarification":
        return 0
    return deadlines.paused_day_count(dsr.paused_on, max(on, dsr.paused_on))


def _projected_due(dsr: DsrRequest, settings: Settings, on: date, *, extended: bool) -> date:
    """The due date if a clarification pause ended on ``on`` (its stopped days counted)."""
    return _due(dsr, settings, extended=extended, more_paused_days=_stopped_days_so_far(dsr, on))


def extension_allowed(dsr: DsrRequest, settings: Settings, now: datetime) -> bool:
    if dsr.clock_started_on is None:
        return False
    local_today = today(settings, now)
    # A stopped clock also holds back the original due date the extension is measured against.
    original_due = _projected_due(dsr, settings, local_today, extended=False)
    return deadlines.extension_allowed(
        already_extended=dsr.extended, original_due_date=original_due, today=local_today
    )


def deadline_view(dsr: DsrRequest, settings: Settings, now: datetime) -> DeadlinePublic:
    """The deadline block; while paused for clarification, as if resumed today."""
    running = dsr.status in RUNNING_STATUSES
    local_today = today(settings, now)
    due_date, due_at = dsr.due_date, dsr.due_at
    if due_date is not None and _stopped_days_so_far(dsr, local_today):
        due_date = _projected_due(dsr, settings, local_today, extended=dsr.extended)
        due_at = deadlines.due_at(due_date, settings.tz)
    days_left = None
    awaiting_fee = dsr.status == RequestStatus.PAUSED and dsr.pause_reason == "awaiting_fee"
    if due_date is not None and dsr.status in OPEN_STATUSES and not awaiting_fee:
        days_left = deadlines.days_left(due_date, local_today)
    return DeadlinePublic(
        clock_started_on=dsr.clock_started_on,
        due_date=due_date,
        due_at=due_at,
        extended=dsr.extended,
        paused_days=dsr.paused_days,
        paused_since=dsr.paused_on,
        days_left=days_left,
        # The clock is stopped while paused, so a paused request cannot become overdue.
        overdue=bool(running and dsr.due_at is not None and now > dsr.due_at),
    )
