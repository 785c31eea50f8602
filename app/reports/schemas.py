"""The reports' API models: the summary figures, calendar feeds, and their examples."""

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from app.core.schemas import StrictModel


class ReportPeriod(BaseModel):
    from_date: date = Field(serialization_alias="from", description="First day, included.")
    to_date: date = Field(serialization_alias="to", description="Last day, included.")
    timezone: str = Field(description="The controller's time zone the days are read in.")


class ReceivedFigures(BaseModel):
    total: int
    by_type: dict[str, int]
    by_channel: dict[str, int]
    by_regulation: dict[str, int]


class DaysTaken(BaseModel):
    median: float | None = Field(description="Days from receipt to completion; null: none yet.")
    p90: float | None = Field(description="90th percentile (interpolated, like the median).")


class CompletedFigures(BaseModel):
    total: int
    on_time: int = Field(description="Completed no later than the end of the due date.")
    late: int
    on_time_rate: float | None = Field(description="on_time / total; null when none completed.")
    days_taken: DaysTaken


class ReasonCount(BaseModel):
    reason: str
    count: int


class ExtensionFigures(BaseModel):
    count: int
    top_reasons: list[ReasonCount] = Field(
        description="The most given reasons (trimmed, lower case), at most 10, most first."
    )


class RejectionFigures(BaseModel):
    total: int
    by_reason: dict[str, int]


class OpenNow(BaseModel):
    total: int
    by_status: dict[str, int]
    overdue: int = Field(description="Running and past the end of the due date.")
    due_within_7_days: int = Field(description="Running, due today or in the next 7 days.")


class SummaryReport(BaseModel):
    """Figures for the requests received in ``period``; ``open_now`` is today's board."""

    period: ReportPeriod
    generated_at: datetime
    received: ReceivedFigures
    completed: CompletedFigures
    extensions: ExtensionFigures
    rejections: RejectionFigures
    verification_expiries: int = Field(
        description="Rejected `identity_not_verified` by the expiry sweep (not by an officer)."
    )
    cancelled: int
    still_open: int = Field(description="Received in the period and not yet closed.")
    open_now: OpenNow


SUMMARY_EXAMPLE: dict[str, Any] = {
    "period": {"from": "2025-12-08", "to": "2026-12-07", "timezone": "Europe/London"},
    "generated_at": "2026-12-07T10:00:00Z",
    "received": {
        "total": 120,
        "by_type": {
            "access": 70,
            "rectification": 6,
            "erasure": 30,
            "restriction": 2,
            "portability": 4,
            "objection": 8,
        },
        "by_channel": {"api": 80, "web": 20, "email": 15, "post": 3, "phone": 2},
        "by_regulation": {"uk_gdpr": 110, "eu_gdpr": 10, "ccpa": 0},
    },
    "completed": {
        "total": 90,
        "on_time": 86,
        "late": 4,
        "on_time_rate": 0.9556,
        "days_taken": {"median": 12.4, "p90": 27.9},
    },
    "extensions": {
        "count": 5,
        "top_reasons": [{"reason": "complex request spanning several systems", "count": 3}],
    },
    "rejections": {
        "total": 14,
        "by_reason": {
            "manifestly_unfounded": 1,
            "excessive": 1,
            "identity_not_verified": 11,
            "exemption": 1,
        },
    },
    "verification_expiries": 9,
    "cancelled": 3,
    "still_open": 13,
    "open_now": {
        "total": 15,
        "by_status": {"awaiting_verification": 4, "in_progress": 10, "paused": 1},
        "overdue": 1,
        "due_within_7_days": 3,
    },
}


class CalendarFeedCreate(StrictModel):
    name: str = Field(
        min_length=1,
        max_length=200,
        description="What the feed is for, as its owner will recognise it in their calendar.",
    )


class CalendarFeedPublic(BaseModel):
    id: uuid.UUID
    name: str
    created_by: str
    created_at: datetime


class CalendarFeedCreated(CalendarFeedPublic):
    url: str = Field(description="Subscribe to this address; anyone holding it can read it.")
    token: str = Field(description="Part of `url`; shown only here, stored only as a hash.")


CALENDAR_FEED_EXAMPLES: dict[str, Any] = {
    "team": {
        "summary": "A feed for the privacy team's shared calendar",
        "value": {"name": "Privacy team deadlines"},
    }
}


class MonthFigures(BaseModel):
    month: str = Field(description="The local calendar month, YYYY-MM.", examples=["2026-11"])
    received: int = Field(description="Requests received in the month (within the period).")
    completed: int = Field(description="Of those, completed so far.")
    on_time: int
    late: int
    on_time_rate: float | None = Field(
        description="on_time / completed; null when none of the month's requests is completed."
    )


class MonthlyReport(BaseModel):
    period: ReportPeriod
    months: list[MonthFigures] = Field(description="Every month the period touches, oldest first.")


MONTHLY_EXAMPLE: dict[str, Any] = {
    "period": {"from": "2026-10-01", "to": "2026-11-30", "timezone": "Europe/London"},
    "months": [
        {
            "month": "2026-10",
            "received": 42,
            "completed": 40,
            "on_time": 38,
            "late": 2,
            "on_time_rate": 0.95,
        },
        {
            "month": "2026-11",
            "received": 37,
            "completed": 21,
            "on_time": 21,
            "late": 0,
            "on_time_rate": 1.0,
        },
    ],
}
