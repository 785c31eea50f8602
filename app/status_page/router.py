"""The data subject's status page (HTML, no login, no script): ``/status/{token}``.

Every answer is rate-limited per client address and per link first; a link that opens no
request (tampered, expired, unknown) always gets the same 404 page. Forms post back with a
hidden token derived from the link and redirect to the page (post/redirect/get). These
routes are not part of the API, so they stay out of the OpenAPI document.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.mail import status_link
from app.models import DsrRequest
from app.status_page import pages, service

router = APIRouter(prefix="/status", include_in_schema=False)

FormField = Annotated[str, Form()]


def _html(
    name: str,
    context: dict[str, object],
    *,
    request: Request,
    settings: Settings,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    root_path = request.scope.get("root_path", "")
    body = pages.render(name, {"root_path": root_path, **context}, settings=settings)
    return HTMLResponse(
        body, status_code=status_code, headers={**pages.PAGE_HEADERS, **(headers or {})}
    )


def _not_found(request: Request, settings: Settings) -> HTMLResponse:
    """The one page for every link that opens nothing: same words, same status."""
    return _html("not_found.html", {}, request=request, settings=settings, status_code=404)


def _base(request: Request, token: str) -> str:
    return f"{request.scope.get('root_path', '')}/status/{token}"


async def _too_many(
    request: Request, sessionmaker: SessionmakerDep, settings: Settings, now: NowDep, token: str
) -> HTMLResponse | None:
    """Count this hit (its own transaction, so refused hits count too); the 429 page when over
    the limit."""
    address = request.client.host if request.client else "unknown"
    async with sessionmaker.begin() as session:
        wait = await service.count_hit(
            session, address=address, token=token, settings=settings, now=now
        )
    if not wait:
        return None
    return _html(
        "too_many.html",
        {},
        request=request,
        settings=settings,
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


def _redirect(request: Request, token: str, outcome: str) -> RedirectResponse:
    return RedirectResponse(
        f"{_base(request, token)}?done={outcome}", status_code=303, headers=pages.PAGE_HEADERS
    )


async def _act(
    request: Request,
    token: str,
    form_token: str,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    work: Callable[[DsrRequest], Awaitable[str]],
    *,
    confirmed: bool = True,
) -> Response:
    """A form's POST: the rate limit first, then the link (locked), then the form's token
    (and ``confirmed``); ``work`` on the request gives the outcome to redirect with."""
    if refused := await _too_many(request, sessionmaker, settings, now, token):
        return refused
    dsr = await service.request_for_token(
        session, token=token, settings=settings, now=now, lock=True
    )
    if dsr is None:
        return _not_found(request, settings)
    if not status_link.form_token_valid(token, form_token, settings) or not confirmed:
        return _html("refused.html", {}, request=request, settings=settings, status_code=403)
    return _redirect(request, token, await work(dsr))


@router.get(pages.STYLESHEET_PATH.removeprefix("/status"))
async def stylesheet(settings: SettingsDep) -> Response:
    """The page's stylesheet, in the brand colour (DSR_BRAND_COLOUR)."""
    return Response(
        pages.stylesheet(settings),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/{token}", response_class=HTMLResponse)
async def status_page(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    done: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """Where the subject's request stands, and what they can do about it."""
    if refused := await _too_many(request, sessionmaker, settings, now, token):
        return refused
    dsr = await service.request_for_token(session, token=token, settings=settings, now=now)
    if dsr is None:
        return _not_found(request, settings)
    view = await service.status_view(session, dsr=dsr, settings=settings, now=now)
    return _html(
        "status.html",
        {
            "view": view,
            "outcome": service.outcome_message(done),
            "base": _base(request, token),
            "form_token": status_link.form_token(token, settings),
            "answer_max_length": service.ANSWER_MAX_LENGTH,
        },
        request=request,
        settings=settings,
    )


@router.post("/{token}/verify", response_class=HTMLResponse)
async def confirm_code(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    code: FormField = "",
    form_token: FormField = "",
) -> Response:
    """The verification code from the subject's email (as ``.../verification/confirm``)."""

    async def work(dsr: DsrRequest) -> str:
        return await service.confirm_code(session, settings=settings, dsr=dsr, code=code, now=now)

    return await _act(request, token, form_token, session, sessionmaker, settings, now, work)


@router.post("/{token}/send-code", response_class=HTMLResponse)
async def send_code(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    form_token: FormField = "",
) -> Response:
    """Email the subject a (new) verification code (as ``.../verification``, email_code)."""

    async def work(dsr: DsrRequest) -> str:
        return await service.send_code(session, settings=settings, dsr=dsr, now=now)

    return await _act(request, token, form_token, session, sessionmaker, settings, now, work)


@router.post("/{token}/reply", response_class=HTMLResponse)
async def reply(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    answer: FormField = "",
    form_token: FormField = "",
) -> Response:
    """The subject's answer to a clarification; the clock restarts today."""

    async def work(dsr: DsrRequest) -> str:
        return await service.reply(session, settings=settings, dsr=dsr, answer=answer, now=now)

    return await _act(request, token, form_token, session, sessionmaker, settings, now, work)


@router.get("/{token}/cancel", response_class=HTMLResponse)
async def cancel_page(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Asks the subject to confirm they want to cancel."""
    if refused := await _too_many(request, sessionmaker, settings, now, token):
        return refused
    dsr = await service.request_for_token(session, token=token, settings=settings, now=now)
    if dsr is None:
        return _not_found(request, settings)
    if not service.can_cancel(dsr):
        return _redirect(request, token, "not_allowed")
    view = await service.status_view(session, dsr=dsr, settings=settings, now=now)
    return _html(
        "cancel.html",
        {
            "view": view,
            "base": _base(request, token),
            "form_token": status_link.form_token(token, settings),
        },
        request=request,
        settings=settings,
    )


@router.post("/{token}/cancel", response_class=HTMLResponse)
async def cancel(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    confirm: FormField = "",
    form_token: FormField = "",
) -> Response:
    """The subject withdraws their request (audit actor ``subject``)."""

    async def work(dsr: DsrRequest) -> str:
        return await service.cancel(session, settings=settings, dsr=dsr, now=now)

    return await _act(
        request,
        token,
        form_token,
        session,
        sessionmaker,
        settings,
        now,
        work,
        confirmed=confirm == "yes",
    )
