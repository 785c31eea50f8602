"""What the request tests share: dates worked out independently of the service's own rules,
and the check that an answer is RFC 9457 problem details."""

from calendar import monthrange
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")
ENGLAND = holidays.country_holidays("GB", subdiv="ENG")


def add_months(start: date, months: int) -> date:
    """The same day number ``months`` later, or that month's last day."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(start.day, monthrange(year, month + 1)[1]))


def next_working_day(day: date) -> date:
    while day.weekday() >= 5 or day in ENGLAND:
        day += timedelta(days=1)
    return day


def parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body
