"""The console's entry: log in (password, then a TOTP code when on), log out, and the one
stylesheet; ``install`` adds the other console pages (board, requests, account, users)
and the error pages.

Every POST takes ``CsrfForm`` (or checks the login form's token); none of these routes is
in the OpenAPI document (they are pages, not API).
"""

import secrets
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts import login as logins
from app.accounts import passwords, sessions
from app.console import account, board, downloads, users
from app.console import requests as request_pages
from app.console.deps import (
    ACCOUNT_PATH,
    LOGIN_PATH,
    ConsoleError,
    ConsoleUser,
    CsrfForm,
    clear_session_cookie,
    form_text,
    install_console_errors,
    redirect,
    render,
    safe_next,
    set_session_cookie,
    verified_form,
)
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.models import BrowserSession

router = APIRouter(prefix="/console", include_in_schema=False)

LOGIN_CSRF_COOKIE = "dsr_login_csrf"
CODE_PATH = "/console/login/code"
STATIC_FILES = {"console.css": "text/css; charset=utf-8"}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ---------------------------------------------------------------- static


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    """The console's stylesheet (only the files listed: no URL reaches the file system)."""
    if name not in STATIC_FILES:
        raise ConsoleError(404, "No such file.")
    content = (resources.files("app.console") / "static" / name).read_bytes()
    return Response(
        content,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


# ---------------------------------------------------------------- login and logout


def _login_page(
    request: Request,
    *,
    token: str,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    response = render(
        request,
        "login.html",
        {"csrf_token": token, "next": next_path, "email": email, "error": error},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path=LOGIN_PATH,
        secure=request.app.state.settings.secure_cookies,
    )
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The login page: email address and password."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    if len(token) > 100:
        token = secrets.token_urlsafe(32)
    return _login_page(request, token=token, next_path=safe_next(next))


@router.post("/login")
async def login(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """Check the password (within the failure limits); start a session, or ask for the code."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    form = await verified_form(request, token)
    email = form_text(form, "email", max_length=320).strip()
    password = form_text(form, "password", max_length=passwords.MAX_LENGTH + 1)
    next_path = safe_next(form_text(form, "next", max_length=2000))
    keys = logins.login_keys(settings, email=email, address=_address(request))
    outcome, user = await logins.check_password(
        session, keys=keys, email=email, password=password, now=now
    )
    if outcome is not logins.Outcome.ACCEPTED or user is None:
        locked = outcome is logins.Outcome.LOCKED
        # Answered, not raised: the failure just recorded must be committed.
        return _login_page(
            request,
            token=token,
            next_path=next_path,
            email=email,
            error=logins.LOCKED_MESSAGE if locked else logins.REFUSED_MESSAGE,
            status_code=429 if locked else 401,
        )
    await _end_presented_session(request, session, now)
    cookie, _row = await sessions.start(
        session,
        user=user,
        now=now,
        address_hash=logins.address_hash(settings, _address(request)),
        pending_second_factor=user.totp_enabled,
    )
    if user.totp_enabled:
        response = redirect(f"{CODE_PATH}?next={next_path}")
    else:
        response = redirect(ACCOUNT_PATH if user.must_change_password else next_path)
    set_session_cookie(response, cookie, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


async def _end_presented_session(request: Request, session: SessionDep, now: NowDep) -> None:
    """Whatever session the browser held before is ended, never carried over."""
    value = request.cookies.get(sessions.COOKIE_NAME)
    if value and len(value) <= 200:
        row = await session.get(BrowserSession, sessions.session_id(value))
        if row is not None and row.ended_at is None:
            await sessions.end(session, row=row, now=now)


@router.get("/login/code")
async def code_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    next: str | None = None,
) -> Response:
    """The second step: the code from the person's authenticator app."""
    pending = await sessions.load(
        session,
        cookie_value=request.cookies.get(sessions.COOKIE_NAME),
        settings=settings,
        now=now,
        pending_second_factor=True,
    )
    if pending is None:
        return redirect(LOGIN_PATH)
    return render(
        request,
        "login_code.html",
        {"csrf_token": pending.row.csrf_token, "next": safe_next(next), "error": None},
    )


@router.post("/login/code")
async def login_code(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """Check the code; a new session replaces the one that waited for it."""
    pending = await sessions.load(
        session,
        cookie_value=request.cookies.get(sessions.COOKIE_NAME),
        settings=settings,
        now=now,
        pending_second_factor=True,
    )
    if pending is None:
        return redirect(LOGIN_PATH)
    form = await verified_form(request, pending.row.csrf_token)
    next_path = safe_next(form_text(form, "next", max_length=2000))
    keys = logins.login_keys(settings, email=pending.user.email, address=_address(request))
    outcome = await logins.check_code(
        session,
        keys=keys,
        user=pending.user,
        code=form_text(form, "code", max_length=20),
        settings=settings,
        now=now,
    )
    if outcome is logins.Outcome.LOCKED:
        await sessions.end(session, row=pending.row, now=now)
        response: Response = _login_page(
            request,
            token=secrets.token_urlsafe(32),
            next_path=next_path,
            error=logins.LOCKED_MESSAGE,
            status_code=429,
        )
        clear_session_cookie(response, settings)
        return response
    if outcome is logins.Outcome.REFUSED:
        return render(
            request,
            "login_code.html",
            {
                "csrf_token": pending.row.csrf_token,
                "next": next_path,
                "error": logins.CODE_REFUSED_MESSAGE,
            },
            status_code=401,
        )
    await sessions.end(session, row=pending.row, now=now)
    cookie, _row = await sessions.start(
        session,
        user=pending.user,
        now=now,
        address_hash=logins.address_hash(settings, _address(request)),
    )
    response = redirect(ACCOUNT_PATH if pending.user.must_change_password else next_path)
    set_session_cookie(response, cookie, settings)
    return response


@router.post("/logout")
async def logout(
    person: ConsoleUser, _form: CsrfForm, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """End this session (other browsers of the person stay signed in)."""
    row = await session.get(BrowserSession, person.session_id)
    if row is not None:
        await sessions.end(session, row=row, now=now)
    response = redirect(f"{LOGIN_PATH}?logged_out=1")
    clear_session_cookie(response, settings)
    return response


def install(app: FastAPI) -> None:
    """Add the console's pages and its error pages to ``app``."""
    install_console_errors(app)
    app.include_router(router)
    app.include_router(board.router)  # the board, /console
    app.include_router(request_pages.router)  # each request's page and actions
    app.include_router(downloads.router)  # and its exports' files
    app.include_router(account.router)  # the person's own account
    app.include_router(users.router)  # admins: people's accounts
