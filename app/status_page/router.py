"""The data subject's status page (HTML, no login, no script): ``/status/{token}``.

Every answer is rate-limited per client address and per link first; a link that opens no
request (tampered, expired, unknown) always gets the same 404 page. Forms post back with a
hidden token derived from the link and redirect to the page (post/redirect/get). These
routes are not part of the API, so they stay out of the OpenAPI document.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.mail import status_link
from app.models import DsrRequest
from app.status_page import pages, service

router = APIRouter(prefix="/status", include_in_schema=False)

FormField = Annotated[str, Form()]


@dataclass
class Visit:
    """One hit on a status link: what every page and form of it needs."""

    request: Request
    token: str
    session: AsyncSession
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    now: datetime

    @property
    def base(self) -> str:
        return f"{self.request.scope.get('root_path', '')}/status/{self.token}"

    def html(
        self,
        name: str,
        context: dict[str, object],
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        root_path = self.request.scope.get("root_path", "")
        body = pages.render(name, {"root_path": root_path, **context}, settings=self.settings)
        return HTMLResponse(
            body, status_code=status_code, headers={**pages.PAGE_HEADERS, **(headers or {})}
        )

    def not_found(self) -> HTMLResponse:
        """The one page for every link that opens nothing: same words, same status."""
        return self.html("not_found.html", {}, status_code=404)

    def redirect(self, outcome: str) -> RedirectResponse:
        return RedirectResponse(
            f"{self.base}?done={outcome}", status_code=303, headers=pages.PAGE_HEADERS
        )

    def form_token(self) -> str:
        return status_link.form_token(self.token, self.settings)

    async def too_many(self) -> HTMLResponse | None:
        """Count this hit (its own transaction, so refused hits count too); the 429 page when
        over the limit."""
        address = self.request.client.host if self.request.client else "unknown"
        async with self.sessionmaker.begin() as counting:
            wait = await service.count_hit(
                counting, address=address, token=self.token, settings=self.settings, now=self.now
            )
        if not wait:
            return None
        return self.html("too_many.html", {}, status_code=429, headers={"Retry-After": str(wait)})

    async def opened(self, *, lock: bool = False) -> DsrRequest | Response:
        """The link's request, or the page to answer instead (429, or the neutral 404)."""
        if refused := await self.too_many():
            return refused
        dsr = await service.request_for_token(
            self.session, token=self.token, settings=self.settings, now=self.now, lock=lock
        )
        return self.not_found() if dsr is None else dsr

    async def act(
        self,
        form_token: str,
        work: Callable[[DsrRequest], Awaitable[str]],
        *,
        confirmed: bool = True,
    ) -> Response:
        """A form's POST: the rate limit first, then the link (locked), then the form's token
        (and ``confirmed``); ``work`` on the request gives the outcome to redirect with."""
        dsr = await self.opened(lock=True)
        if isinstance(dsr, Response):
            return dsr
        valid = status_link.form_token_valid(self.token, form_token, self.settings)
        if not valid or not confirmed:
            return self.html("refused.html", {}, status_code=403)
        return self.redirect(await work(dsr))


def visit(
    token: str,
    request: Request,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Visit:
    return Visit(request, token, session, sessionmaker, settings, now)


VisitDep = Annotated[Visit, Depends(visit)]


@router.get(pages.STYLESHEET_PATH.removeprefix("/status"))
async def stylesheet(settings: SettingsDep) -> Response:
    """The page's stylesheet, in the brand colour (DSR_BRAND_COLOUR)."""
    return Response(
        pages.stylesheet(settings),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/{token}", response_class=HTMLResponse)
async def status_page(page: VisitDep, done: Annotated[str | None, Query()] = None) -> Response:
    """Where the subject's request stands, and what they can do about it."""
    dsr = await page.opened()
    if isinstance(dsr, Response):
        return dsr
    view = await service.status_view(page.session, dsr=dsr, settings=page.settings, now=page.now)
    return page.html(
        "status.html",
        {
            "view": view,
            "outcome": service.outcome_message(done),
            "base": page.base,
            "form_token": page.form_token(),
            "answer_max_length": service.ANSWER_MAX_LENGTH,
        },
    )


@router.post("/{token}/verify", response_class=HTMLResponse)
async def confirm_code(
    page: VisitDep, code: FormField = "", form_token: FormField = ""
) -> Response:
    """The verification code from the subject's email (as ``.../verification/confirm``)."""

    async def work(dsr: DsrRequest) -> str:
        return await service.confirm_code(
            page.session, settings=page.settings, dsr=dsr, code=code, now=page.now
        )

    return await page.act(form_token, work)


@router.post("/{token}/send-code", response_class=HTMLResponse)
async def send_code(page: VisitDep, form_token: FormField = "") -> Response:
    """Email the subject a (new) verification code (as ``.../verification``, email_code)."""

    async def work(dsr: DsrRequest) -> str:
        return await service.send_code(page.session, settings=page.settings, dsr=dsr, now=page.now)

    return await page.act(form_token, work)


@router.post("/{token}/reply", response_class=HTMLResponse)
async def reply(page: VisitDep, answer: FormField = "", form_token: FormField = "") -> Response:
    """The subject's answer to a clarification; the clock restarts today."""

    async def work(dsr: DsrRequest) -> str:
        return await service.reply(
            page.session, settings=page.settings, dsr=dsr, answer=answer, now=page.now
        )

    return await page.act(form_token, work)


@router.get("/{token}/cancel", response_class=HTMLResponse)
async def cancel_page(page: VisitDep) -> Response:
    """Asks the subject to confirm they want to cancel."""
    dsr = await page.opened()
    if isinstance(dsr, Response):
        return dsr
    if not service.can_cancel(dsr):
        return page.redirect("not_allowed")
    view = await service.status_view(page.session, dsr=dsr, settings=page.settings, now=page.now)
    return page.html(
        "cancel.html", {"view": view, "base": page.base, "form_token": page.form_token()}
    )


@router.post("/{token}/cancel", response_class=HTMLResponse)
async def cancel(page: VisitDep, confirm: FormField = "", form_token: FormField = "") -> Response:
    """The subject withdraws their request (audit actor ``subject``)."""

    async def work(dsr: DsrRequest) -> str:
        return await service.cancel(page.session, settings=page.settings, dsr=dsr, now=page.now)

    return await page.act(form_token, work, confirmed=confirm == "yes")
