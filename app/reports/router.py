"""Reporting for the regulator: the summary, the register CSV, and calendar feeds of due dates."""

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status
from fastapi.responses import Response, StreamingResponse

from app.auth.deps import Officer, TokenFirstRoute
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.core.errors import AUTH_ERRORS, NOT_FOUND, VALIDATION, problem_response
from app.core.pagination import Page
from app.core.schemas import TextDate
from app.core.strict_query import StrictQuery
from app.reports import calendar, monthly, register_csv, summary
from app.reports.schemas import (
    CALENDAR_FEED_EXAMPLES,
    MONTHLY_EXAMPLE,
    SUMMARY_EXAMPLE,
    CalendarFeedCreate,
    CalendarFeedCreated,
    CalendarFeedPublic,
    MonthlyReport,
    SummaryReport,
)

logger = logging.getLogger("app.reports")

reports = APIRouter(prefix="/v1/reports", tags=["Reports"], route_class=TokenFirstRoute)
feeds = APIRouter(prefix="/v1/calendar-feeds", tags=["Calendar feeds"], route_class=TokenFirstRoute)
# The subscribed URL: no bearer token (a calendar application cannot send one).
public = APIRouter(tags=["Calendar feeds"], route_class=TokenFirstRoute)

FromDate = Annotated[
    TextDate | None,
    Query(
        alias="from",
        description="First day of the period (YYYY-MM-DD, included); default: the day after "
        "the same date a year before `to`.",
    ),
]
ToDate = Annotated[
    TextDate | None,
    Query(alias="to", description="Last day of the period (YYYY-MM-DD, included); default today."),
]
PERIOD_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        **VALIDATION[422],
        "description": "A date that is not YYYY-MM-DD, `from` after `to`, or a period longer "
        "than five years.",
    }
}
FEED_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**NOT_FOUND[404], "description": "No such calendar feed (or it was revoked)."}
}
FeedId = Annotated[uuid.UUID, Path(description="The calendar feed's id.")]


def report_window(
    settings: SettingsDep, now: NowDep, from_date: FromDate = None, to_date: ToDate = None
) -> summary.Period:
    """The period asked for by `from` and `to` (422 when it is not one)."""
    return summary.period(settings, now, from_date=from_date, to_date=to_date)


ReportWindow = Annotated[summary.Period, Depends(report_window)]


@reports.get(
    "/summary",
    response_model=SummaryReport,
    summary="Figures for the regulator",
    responses={
        200: {"content": {"application/json": {"example": SUMMARY_EXAMPLE}}},
        **AUTH_ERRORS,
        **PERIOD_ERRORS,
    },
)
async def get_summary(
    _officer: Officer,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    window: ReportWindow,
) -> SummaryReport:
    """How you handled the requests received in a period: what a regulator or an audit asks.

    The period is local days in the controller's time zone, both ends included (default: the
    last twelve months). Every period figure is about the requests **received** in it and
    what has become of them so far, so it matches the register CSV of the same period:

    - `received`: by type, channel and regulation;
    - `completed`: on time (closed no later than the end of the due date, extension and
      stopped days included) or late, the on-time rate, and the median and 90th percentile
      of **days taken** (from receipt to completion, with fractions of a day);
    - `extensions`: how many were extended, and the most given reasons;
    - `rejections` by reason, of which `verification_expiries` were rejected by the service
      because identity was not verified in time; `cancelled`; `still_open`.

    `open_now` is today's board whatever the period: open requests by status, `overdue`
    and due within 7 days.
    """
    return await summary.summary(session, settings=settings, window=window, now=now)


@reports.get(
    "/monthly",
    response_model=MonthlyReport,
    summary="Requests received and on-time rate per month",
    responses={
        200: {"content": {"application/json": {"example": MONTHLY_EXAMPLE}}},
        **AUTH_ERRORS,
        **PERIOD_ERRORS,
    },
)
async def get_monthly(
    _officer: Officer,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    window: ReportWindow,
) -> MonthlyReport:
    """The trend behind the summary: for each local calendar month of the period (default:
    the last twelve months), the requests received in it, how many of them are completed so
    far, on time or late, and the on-time rate. The months add up to the summary's
    `received.total` and `completed` figures for the same period; the console's chart draws
    this series.
    """
    if session.get_bind().dialect.name == "postgresql":
        await summary.use_planner_settings(session)
    return await monthly.monthly(session, settings=settings, window=window)


@reports.get(
    "/register.csv",
    summary="The accountability register (CSV)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The register, as an attachment.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **AUTH_ERRORS,
        **PERIOD_ERRORS,
    },
)
async def get_register(
    _officer: Officer,
    _strict: StrictQuery,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    window: ReportWindow,
) -> StreamingResponse:
    """Every request received in the period, one CSV row each, oldest first: your record of
    processing for an audit or the regulator.

    Columns: `id` (the reference the subject was given), `type`, `regulation`, `channel`,
    `received_on`, `clock_started_on`, `due_date`, `extended` (yes/no), `extension_reason`,
    `paused_days`, `closed_on` (completed, rejected or cancelled), `outcome` (the status),
    `on_time` (yes/no; blank while open or when the clock never started), `days_taken`
    (receipt to closure, one decimal) and `reason_codes` (rejection and pause reasons). Dates
    are local dates in the controller's time zone. No subject identity is in it. Text a
    spreadsheet would run as a formula gets a leading apostrophe, as in exports. Periods as
    for the summary; the file is streamed, so a large period starts at once.
    """
    name = register_csv.file_name(window)
    return StreamingResponse(
        register_csv.stream_register(sessionmaker, settings=settings, window=window),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@feeds.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CalendarFeedCreated,
    summary="Create a calendar feed of due dates",
    responses={**AUTH_ERRORS, **VALIDATION},
)
async def create_feed(
    principal: Officer,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[CalendarFeedCreate, Body(openapi_examples=CALENDAR_FEED_EXAMPLES)],
) -> CalendarFeedCreated:
    """A private calendar address to subscribe to from Outlook, Google Calendar or Apple
    Calendar: one all-day event on the due date of every open request, titled with the
    request's reference and type only (no subject's name or address).

    The answer's `url` (and `token`, part of it) is shown **only now**: the service keeps only
    a hash. Anyone holding the URL can read the feed, so share it only with the privacy team,
    and revoke the feed (`DELETE`) when it leaks or is no longer needed.
    """
    created = await calendar.create_feed(
        session, settings=settings, name=body.name, actor=principal.client_id, now=now
    )
    logger.info("calendar feed %s created by %s", created.id, principal.client_id)
    return created


@feeds.get(
    "",
    response_model=Page[CalendarFeedPublic],
    summary="List calendar feeds",
    responses={**AUTH_ERRORS, **VALIDATION},
)
async def list_feeds(
    _officer: Officer, _strict: StrictQuery, session: SessionDep
) -> Page[CalendarFeedPublic]:
    """The feeds not revoked, newest first, with who created them; never their URLs."""
    rows = await calendar.list_feeds(session)
    return Page[CalendarFeedPublic](items=[calendar.feed_public(feed) for feed in rows])


@feeds.delete(
    "/{feed_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke a calendar feed",
    responses={**AUTH_ERRORS, **FEED_NOT_FOUND, **VALIDATION},
)
async def revoke_feed(
    feed_id: FeedId, principal: Officer, session: SessionDep, now: NowDep
) -> Response:
    """Its URL stops working at once (calendars subscribed to it get 404 and show nothing
    new). Create a new feed to subscribe again."""
    await calendar.revoke_feed(session, feed_id=feed_id, now=now)
    logger.info("calendar feed %s revoked by %s", feed_id, principal.client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public.get(
    "/v1/calendar/{token}.ics",
    summary="The calendar feed (subscribe URL)",
    response_class=Response,
    responses={
        200: {
            "description": "An iCalendar (RFC 5545) document.",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        404: problem_response("Not a calendar feed address (wrong, or revoked)."),
    },
)
async def calendar_feed(
    token: Annotated[str, Path(description="The token in the feed's URL.")],
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """The address a calendar application subscribes to; no login, the URL is the permission.

    One all-day event per open request with a due date (its `due_date`, extension and stopped
    days included), with a stable UID so updates move the event rather than copy it.
    """
    feed = await calendar.feed_by_token(session, settings=settings, token=token)
    body = await calendar.ics(session, settings=settings, feed=feed, now=now)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )
