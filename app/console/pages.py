"""The console's Reports, Suppression check and Webhook health pages.

Each page calls the same service as its API route (``app.reports``, ``app.suppression``,
``app.webhooks``), with the signed-in person's ``principal`` where the service needs a
caller: the rules (periods, visibility, retries) live there, never here.
"""

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from markupsafe import Markup
from pydantic import TypeAdapter, ValidationError

from app.auth.scopes import Scope
from app.console.chart import monthly_chart
from app.console.deps import (
    ConsoleError,
    ConsolePerson,
    ConsoleUser,
    CsrfForm,
    console_error,
    form_text,
    redirect,
    render,
    secure_headers,
)
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.core.errors import AppError
from app.core.schemas import TextDate
from app.reports import monthly, register_csv, summary
from app.suppression import service as suppression
from app.webhooks import endpoints

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
EMAIL_MAX, PHONE_MAX = 320, 40
_DATE = TypeAdapter(TextDate)

# Query and path values are read as text and checked here, so a bad one is a console page
# (422 or 404), never the API's problem+json.
Cursor = Annotated[str | None, Query()]
CURSOR_MAX = 500


WebhookId = Annotated[str, Path()]


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value[:100])
    except ValueError:
        raise ConsoleError(404, f"No such {what}.") from None


def _cursor(value: str | None) -> str | None:
    # Longer than any cursor the service makes: the service's own "invalid cursor" answer.
    return None if value is None else value[: CURSOR_MAX + 1]


class PeriodError(Exception):
    """A period the reports refuse (the API answers 422 with the same message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _date_field(value: str | None, label: str) -> date | None:
    """A date as the API reads it (YYYY-MM-DD); blank means the default."""
    if value is None or not value.strip():
        return None
    if len(value) > 40:
        raise PeriodError(f"“{label}” must be a date written YYYY-MM-DD.")
    try:
        return _DATE.validate_python(value.strip())
    except ValidationError:
        raise PeriodError(f"“{label}” must be a date written YYYY-MM-DD.") from None


def _period(
    settings: SettingsDep, now: NowDep, from_text: str | None, to_text: str | None
) -> summary.Period:
    """The API's period (``summary.period``): its defaults and its refusals."""
    from_date = _date_field(from_text, "From")
    to_date = _date_field(to_text, "To")
    try:
        return summary.period(settings, now, from_date=from_date, to_date=to_date)
    except AppError as refused:
        message = refused.detail.replace("`from`", "“From”").replace("`to`", "“To”")
        raise PeriodError(message) from None


# ---------------------------------------------------------------- reports


@router.get("/reports")
async def reports_page(
    request: Request,
    person: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    from_text: Annotated[str | None, Query(alias="from")] = None,
    to_text: Annotated[str | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """The summary for the regulator, the monthly chart and table, and the register CSV."""
    try:
        window = _period(settings, now, from_text, to_text)
    except PeriodError as refused:
        return render(
            request,
            "reports.html",
            {
                "error": refused.message,
                "from_value": (from_text or "")[:40],
                "to_value": (to_text or "")[:40],
            },
            person=person,
            status_code=422,
        )
    figures = await summary.summary(session, settings=settings, window=window, now=now)
    months = await monthly.monthly(session, settings=settings, window=window)
    return render(
        request,
        "reports.html",
        {
            "error": None,
            "from_value": window.from_date.isoformat(),
            "to_value": window.to_date.isoformat(),
            "report": figures,
            "months": months.months,
            # The chart escapes every text it draws itself.
            "chart": Markup(monthly_chart(months.months)),
            "register_query": f"from={window.from_date}&to={window.to_date}",
        },
        person=person,
    )


@router.get("/reports/register.csv")
async def register_download(
    _person: ConsoleUser,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    from_text: Annotated[str | None, Query(alias="from")] = None,
    to_text: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """The register CSV of the period, streamed exactly as ``GET /v1/reports/register.csv``."""
    try:
        window = _period(settings, now, from_text, to_text)
    except PeriodError as refused:
        raise ConsoleError(422, refused.message) from None
    response = StreamingResponse(
        register_csv.stream_register(sessionmaker, settings=settings, window=window),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{register_csv.file_name(window)}"'},
    )
    return secure_headers(response)


# ---------------------------------------------------------------- suppression


async def _suppression_page(
    request: Request,
    person: ConsolePerson,
    session: SessionDep,
    settings: SettingsDep,
    *,
    cursor: str | None = None,
    result: dict[str, object] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    entries, next_cursor = [], None
    may_list = Scope.SUPPRESSIONS_MANAGE in person.principal.scopes
    if may_list:
        try:
            rows, next_cursor = await suppression.list_entries(
                session, settings=settings, limit=PAGE_SIZE, cursor=_cursor(cursor)
            )
        except AppError as refused:
            raise console_error(refused) from None
        entries = [suppression.suppression_public(row) for row in rows]
    return render(
        request,
        "suppression.html",
        {
            "result": result,
            "error": error,
            "may_list": may_list,
            "entries": entries,
            "next_cursor": next_cursor,
            "paged": cursor is not None,
        },
        person=person,
        status_code=status_code,
    )


@router.get("/suppression")
async def suppression_page(
    request: Request,
    person: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Cursor = None,
) -> HTMLResponse:
    """Check an address or number against the suppression list; the list's entries."""
    return await _suppression_page(request, person, session, settings, cursor=cursor)


@router.post("/suppression")
async def suppression_check(
    request: Request,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """The same check as ``POST /v1/suppressions/check``; the address is neither put in a URL
    nor logged nor shown back."""
    email = form_text(form, "email", max_length=EMAIL_MAX + 1).strip() or None
    phone = form_text(form, "phone", max_length=PHONE_MAX + 1).strip() or None
    error = None
    if email is None and phone is None:
        error = "Enter an email address or a phone number."
    elif email is not None and len(email) > EMAIL_MAX:
        error = f"An email address has at most {EMAIL_MAX} characters."
    elif phone is not None and len(phone) > PHONE_MAX:
        error = f"A phone number has at most {PHONE_MAX} characters."
    if error is None:
        try:
            suppressed, channels = await suppression.check(
                session, settings=settings, email=email, phone=phone
            )
        except AppError as refused:
            error = refused.detail  # names the kind of value, never the value
        else:
            result: dict[str, object] = {"suppressed": suppressed, "channels": channels}
            return await _suppression_page(request, person, session, settings, result=result)
    return await _suppression_page(request, person, session, settings, error=error, status_code=422)


# ---------------------------------------------------------------- webhook health


@router.get("/webhooks")
async def webhooks_page(
    request: Request, person: ConsoleUser, session: SessionDep, cursor: Cursor = None
) -> HTMLResponse:
    """The endpoints the person may see (as ``GET /v1/webhooks``), with delivery health."""
    try:
        rows, next_cursor = await endpoints.list_endpoints(
            session, principal=person.principal, limit=PAGE_SIZE, cursor=_cursor(cursor)
        )
    except AppError as refused:
        raise console_error(refused) from None
    health = await endpoints.endpoint_health(session, endpoint_ids=[row.id for row in rows])
    items = [(endpoints.endpoint_public(row), health[row.id]) for row in rows]
    return render(
        request,
        "webhooks.html",
        {
            "items": items,
            "next_cursor": next_cursor,
            "paged": cursor is not None,
            "disabled": sum(1 for endpoint, _ in items if not endpoint.active),
            "failing": sum(state.failing for _, state in items),
        },
        person=person,
    )


@router.get("/webhooks/{webhook_id}")
async def webhook_details(
    request: Request,
    webhook_id: WebhookId,
    person: ConsoleUser,
    session: SessionDep,
    cursor: Cursor = None,
    retried: str | None = None,
) -> HTMLResponse:
    """One endpoint's recent deliveries, with a Retry button for each failing one."""
    try:
        endpoint = await endpoints.get_visible_endpoint(
            session, principal=person.principal, endpoint_id=_uuid(webhook_id, "webhook endpoint")
        )
        rows, next_cursor = await endpoints.list_deliveries(
            session, endpoint=endpoint, status=None, limit=PAGE_SIZE, cursor=_cursor(cursor)
        )
    except AppError as refused:
        raise console_error(refused) from None
    health = (await endpoints.endpoint_health(session, endpoint_ids=[endpoint.id]))[endpoint.id]
    return render(
        request,
        "webhook.html",
        {
            "endpoint": endpoints.endpoint_public(endpoint),
            "health": health,
            "deliveries": [
                (endpoints.delivery_public(delivery, attempts), endpoints.is_failing(delivery))
                for delivery, attempts in rows
            ],
            "next_cursor": next_cursor,
            "paged": cursor is not None,
            "retried": retried == "1",
        },
        person=person,
    )


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
async def retry_delivery(
    webhook_id: WebhookId,
    delivery_id: Annotated[str, Path()],
    person: ConsoleUser,
    _form: CsrfForm,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """The same as ``POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry``."""
    try:
        endpoint = await endpoints.get_visible_endpoint(
            session,
            principal=person.principal,
            endpoint_id=_uuid(webhook_id, "webhook endpoint"),
            for_update=True,
        )
        await endpoints.retry_delivery(
            session, endpoint=endpoint, delivery_id=_uuid(delivery_id, "delivery"), now=now
        )
    except AppError as refused:
        raise console_error(refused) from None
    return redirect(f"/console/webhooks/{endpoint.id}?retried=1")
