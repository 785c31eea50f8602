"""The console's pages: log in (password, then a TOTP code when on), log out, the person's
account, taking a case from the board, the admins' user pages, and the one stylesheet.

Every POST takes ``CsrfForm`` (or checks the login form's token); none of these routes is
in the OpenAPI document (they are pages, not API).
"""

import secrets
import uuid
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts import login as logins
from app.accounts import passwords, sessions, totp
from app.accounts import service as accounts
from app.auth.scopes import Role
from app.casework import assignment
from app.console import board, downloads
from app.console import requests as request_pages
from app.console.deps import (
    ACCOUNT_PATH,
    HOME_PATH,
    LOGIN_PATH,
    ConsoleAdmin,
    ConsoleError,
    ConsolePerson,
    ConsoleUser,
    CsrfForm,
    clear_session_cookie,
    console_error,
    form_text,
    install_console_errors,
    redirect,
    render,
    safe_next,
    set_session_cookie,
    verified_form,
)
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import AppError
from app.models import BrowserSession, DsrRequest, User

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


# ---------------------------------------------------------------- the board's quick action


@router.post("/requests/{request_id}/assign-to-me")
async def assign_to_me(
    request_id: Annotated[uuid.UUID, Path()],
    person: ConsoleUser,
    _form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Take the case: the audit trail records the person as actor and owner."""
    dsr = await session.get(DsrRequest, request_id, with_for_update=True)
    if dsr is None:
        raise ConsoleError(404, "No such request.")
    try:
        await assignment.assign(
            session,
            settings=settings,
            dsr=dsr,
            assignee=person.user_id,
            actor=person.principal.client_id,
            now=now,
        )
    except AppError as refused:
        raise console_error(refused) from None
    return redirect(HOME_PATH)


# ---------------------------------------------------------------- the person's account


async def _me(session: SessionDep, person_id: str) -> User:
    return await accounts.get_user(session, user_id=person_id)


def _account_page(
    request: Request,
    person: ConsoleUser,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    enrol: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "account.html",
        {"message": message, "error": error, "enrol": enrol, "min_length": passwords.MIN_LENGTH},
        person=person,
        status_code=status_code,
    )


@router.get("/account")
async def account_page(request: Request, person: ConsoleUser, done: str | None = None) -> Response:
    """Change the password; turn the second factor on or off."""
    messages = {
        "password": "Your password was changed. Your other sessions were ended.",
        "totp-on": "Two-step login is on: you will be asked for a code at each login.",
        "totp-off": "Two-step login is off.",
    }
    return _account_page(request, person, message=messages.get(done or ""))


@router.post("/account/password")
async def change_password(
    request: Request,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    now: NowDep,
) -> Response:
    user = await _me(session, person.user_id)
    current = form_text(form, "current_password", max_length=passwords.MAX_LENGTH + 1)
    new = form_text(form, "new_password", max_length=passwords.MAX_LENGTH + 1)
    if not passwords.verify_password(current, user.password_hash):
        return _account_page(
            request, person, error="Your current password is not correct.", status_code=422
        )
    if new != form_text(form, "confirm_password", max_length=passwords.MAX_LENGTH + 1):
        return _account_page(
            request, person, error="The two new passwords are not the same.", status_code=422
        )
    if passwords.verify_password(new, user.password_hash):
        return _account_page(
            request,
            person,
            error="Choose a password other than the current one.",
            status_code=422,
        )
    try:
        await accounts.set_password(
            session, user=user, password=new, now=now, keep_session=person.session_id
        )
    except AppError as refused:
        return _account_page(request, person, error=refused.detail, status_code=422)
    return redirect(f"{ACCOUNT_PATH}?done=password")


@router.post("/account/totp/start")
async def start_totp(
    request: Request,
    person: ConsoleUser,
    _form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """A new secret for the authenticator app, shown once; confirmed by a code."""
    user = await _me(session, person.user_id)
    try:
        secret = await accounts.start_totp(session, user=user, settings=settings)
    except AppError as refused:
        raise console_error(refused) from None
    return _account_page(
        request,
        person,
        enrol={"secret": secret, "uri": totp.provisioning_uri(secret, email=user.email)},
    )


@router.post("/account/totp/confirm")
async def confirm_totp(
    request: Request,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    user = await _me(session, person.user_id)
    try:
        await accounts.confirm_totp(
            session,
            user=user,
            code=form_text(form, "code", max_length=20),
            settings=settings,
            now=now,
        )
    except AppError as refused:
        return _account_page(
            request,
            person,
            error=refused.detail,
            status_code=refused.status,
            enrol={"secret": "", "uri": ""},
        )
    return redirect(f"{ACCOUNT_PATH}?done=totp-on")


@router.post("/account/totp/disable")
async def disable_totp(
    request: Request, person: ConsoleUser, form: CsrfForm, session: SessionDep
) -> Response:
    user = await _me(session, person.user_id)
    try:
        await accounts.disable_totp(
            session,
            user=user,
            password=form_text(form, "password", max_length=passwords.MAX_LENGTH + 1),
        )
    except AppError as refused:
        return _account_page(request, person, error=refused.detail, status_code=refused.status)
    return redirect(f"{ACCOUNT_PATH}?done=totp-off")


# ---------------------------------------------------------------- admins: people's accounts


async def _users_page(
    request: Request,
    person: ConsolePerson,
    session: SessionDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, _next = await accounts.list_users(session, limit=200, cursor=None)
    return render(
        request,
        "users.html",
        {"users": rows, "error": error, "roles": [Role.OFFICER.value, Role.ADMIN.value]},
        person=person,
        status_code=status_code,
    )


@router.get("/users")
async def users_page(request: Request, person: ConsoleAdmin, session: SessionDep) -> Response:
    """Everyone's console account; create, disable, enable, reset a password."""
    return await _users_page(request, person, session)


@router.post("/users")
async def create_user(
    request: Request, person: ConsoleAdmin, form: CsrfForm, session: SessionDep, now: NowDep
) -> Response:
    role = form_text(form, "role", max_length=20)
    if role not in (Role.OFFICER.value, Role.ADMIN.value):
        return await _users_page(
            request, person, session, error="Choose officer or admin.", status_code=422
        )
    try:
        user, temporary = await accounts.create_user(
            session,
            email=form_text(form, "email", max_length=320),
            name=form_text(form, "name", max_length=200),
            role=Role(role),
            actor=person.user_id,
            now=now,
        )
    except AppError as refused:
        return await _users_page(
            request, person, session, error=refused.detail, status_code=refused.status
        )
    return render(
        request,
        "user_password.html",
        {"user": user, "temporary_password": temporary, "created": True},
        person=person,
        status_code=201,
    )


@router.post("/users/{user_id}/{action}")
async def user_action(
    request: Request,
    user_id: Annotated[str, Path(max_length=64)],
    action: str,
    person: ConsoleAdmin,
    _form: CsrfForm,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """Disable, enable or reset the password of one account."""
    if action not in ("disable", "enable", "reset-password"):
        raise ConsoleError(404, "No such action.")
    try:
        user = await accounts.get_user(session, user_id=user_id)
        if action == "disable":
            await accounts.disable_user(session, user=user, actor=person.user_id, now=now)
        elif action == "enable":
            await accounts.enable_user(session, user=user, actor=person.user_id)
        else:
            temporary = await accounts.reset_password(
                session, user=user, actor=person.user_id, now=now
            )
            return render(
                request,
                "user_password.html",
                {"user": user, "temporary_password": temporary, "created": False},
                person=person,
            )
    except AppError as refused:
        raise console_error(refused) from None
    return redirect("/console/users")


def install(app: FastAPI) -> None:
    """Add the console's pages and its error pages to ``app``."""
    install_console_errors(app)
    app.include_router(router)
    app.include_router(board.router)  # the board, /console
    app.include_router(request_pages.router)  # each request's page and actions
    app.include_router(downloads.router)  # and its exports' files
