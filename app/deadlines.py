"""Statutory response deadlines for data-subject requests (UK GDPR, EU GDPR, CCPA).

Pure functions only: dates in, dates out. No database, settings or I/O.
"""

import threading
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "CCPA_CALENDAR",
    "DEFAULT_CALENDAR",
    "HolidayCalendar",
    "Regulation",
    "add_calendar_months",
    "compute_due_date",
    "days_left",
    "due_at",
    "extension_allowed",
    "local_date",
    "paused_day_count",
    "validate_calendar",
]

# Last second of the due date: the request is on time if answered at any point that day.
_END_OF_DAY = time(23, 59, 59)

# Saturday and Sunday (date.weekday() numbering).
_WEEKEND = frozenset({5, 6})

# GDPR: one calendar month (Art. 12(3)), extendable by two further months -> three in total.
_GDPR_MONTHS = 1
_GDPR_EXTENDED_MONTHS = 3

# CCPA: 45 calendar days, extendable once by another 45 (Cal. Civ. Code 1798.130).
_CCPA_DAYS = 45
_CCPA_EXTENDED_DAYS = 90

# holidays objects fill in years lazily on lookup; serialise that mutation across threads.
_HOLIDAY_LOCK = threading.Lock()


class Regulation(StrEnum):
    """Legal regime that governs a request's deadline."""

    UK_GDPR = "uk_gdpr"
    EU_GDPR = "eu_gdpr"
    CCPA = "ccpa"


@lru_cache(maxsize=32)
def _holidays_for(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """Return the (cached) public-holiday table for a country/subdivision."""
    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        # The package signals unknown codes with NotImplementedError; callers expect ValueError.
        supported = holidays.list_supported_countries().get(country)
        hint = f" (supported subdivisions: {', '.join(supported)})" if supported else ""
        raise ValueError(
            f"Unsupported holiday calendar country={country!r} "
            f"subdivision={subdivision!r}: {exc}{hint}"
        ) from exc


def validate_calendar(country: str, subdivision: str | None) -> None:
    """Raise ValueError if the country/subdivision pair has no holiday calendar."""
    _holidays_for(country, subdivision)


@dataclass(frozen=True)
class HolidayCalendar:
    """Working-day calendar: Monday-Friday minus the region's public holidays."""

    country: str = "GB"
    subdivision: str | None = "ENG"

    def is_holiday(self, day: date) -> bool:
        """Return True if `day` is a public holiday (including observed/substitute days)."""
        table = _holidays_for(self.country, self.subdivision)
        with _HOLIDAY_LOCK:
            return day in table

    def is_working_day(self, day: date) -> bool:
        """Return True if `day` is neither a weekend day nor a public holiday."""
        return day.weekday() not in _WEEKEND and not self.is_holiday(day)

    def next_working_day(self, day: date) -> date:
        """Return `day` if it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day


DEFAULT_CALENDAR = HolidayCalendar()
CCPA_CALENDAR = HolidayCalendar("US", "CA")


def add_calendar_months(start: date, months: int) -> date:
    """Add calendar months, clamping to the target month's last day (31 Jan + 1 -> 28/29 Feb)."""
    month_index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = monthrange(year, month)[1]
    return date(year, month, min(start.day, last_day))


def paused_day_count(paused_on: date, resumed_on: date) -> int:
    """Return the number of stopped-clock days, counting both the pause and resume dates."""
    if resumed_on < paused_on:
        raise ValueError(f"resumed_on {resumed_on} is before paused_on {paused_on}")
    # Both ends are included: paused and resumed on the same day still stops the clock one day.
    return (resumed_on - paused_on).days + 1


def compute_due_date(
    *,
    regulation: Regulation | str,
    clock_started_on: date,
    extended: bool = False,
    paused_days: int = 0,
    calendar: HolidayCalendar = DEFAULT_CALENDAR,
) -> date:
    """Return the local due date for a request; `calendar` is ignored for CCPA (US-CA)."""
    regulation = Regulation(regulation)
    if paused_days < 0:
        raise ValueError(f"paused_days must be >= 0, got {paused_days}")

    if regulation is Regulation.CCPA:
        days = _CCPA_EXTENDED_DAYS if extended else _CCPA_DAYS
        raw = clock_started_on + timedelta(days=days)
        # CCPA business days follow California, whatever calendar the controller configured.
        calendar = CCPA_CALENDAR
    else:
        # Always count from the original start: chaining +1 then +2 months loses clamped days.
        months = _GDPR_EXTENDED_MONTHS if extended else _GDPR_MONTHS
        raw = add_calendar_months(clock_started_on, months)

    # Paused days are added before rolling, so the roll reflects the final landing day.
    return calendar.next_working_day(raw + timedelta(days=paused_days))


def due_at(due_date: date, tz: ZoneInfo) -> datetime:
    """Return the end of `due_date` (23:59:59 local time in `tz`) as an aware UTC datetime."""
    local_end = datetime.combine(due_date, _END_OF_DAY, tzinfo=tz)
    return local_end.astimezone(UTC).replace(microsecond=0)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """Return the calendar date of `instant` in `tz`; naive datetimes are taken as UTC."""
    if instant.tzinfo is None:
        # Stored timestamps are UTC; never let astimezone() assume the server's local zone.
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(tz).date()


def days_left(due_date: date, today: date) -> int:
    """Return whole days until `due_date` (0 on the day, negative when overdue)."""
    return (due_date - today).days


def extension_allowed(*, already_extended: bool, original_due_date: date, today: date) -> bool:
    """Return True if an extension may still be applied: once only, by the original due date."""
    return not already_extended and today <= original_due_date
