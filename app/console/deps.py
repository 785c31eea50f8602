"""What every console page builds on: who is signed in, admin-only pages, CSRF-checked forms,
and rendering with the console's security headers.

Interface for console pages (the board, request page, reports and admin pages):

``ConsoleUser`` (``Annotated[ConsolePerson, Depends(...)]``)
    The signed-in person. A browser without a valid session (none, logged out, idle longer
    than ``DSR_SESSION_IDLE_MINUTES``, older than ``DSR_SESSION_MAX_HOURS``, person disabled
    or password reset) is redirected (303) to ``/console/login?next=<this path>``; a person
    who holds a temporary password is redirected to ``/console/account`` to choose their
    own. Each page seen moves the session's idle timer on.

``ConsoleAdmin``
    The same, for admins only: an officer gets the 403 page.

``ConsolePerson``
    ``user_id``, ``email``, ``name``, ``role`` (``Role``), ``csrf_token`` (put it in every
    form), ``session_id`` and ``principal``: the ``app.auth.scopes.Principal`` to hand to
    services, so the audit trail names the person (``principal.client_id`` is the user id).

``CsrfForm`` (``Annotated[FormData, Depends(csrf_protected)]``) and ``verified_form``
    Every console POST must take one of them: it reads the form (urlencoded or multipart)
    and compares its ``csrf_token`` field with the session's in constant time; a missing or
    wrong token is the 403 page. ``CsrfForm`` also requires ``ConsoleUser`` (shared, it is
    resolved once per request). In a template: ``{{ csrf_field() }}`` inside each ``<form>``.

``render(request, "page.html", {...}, person=person, status_code=200)``
    A page from ``app/console/templates`` (autoescaped; extend ``base.html`` and fill
    ``title`` and ``content``), with the security headers: a strict CSP (no inline script or
    style), ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``, ``Referrer-Policy:
    same-origin``, ``Cache-Control: no-store``. ``redirect(url)`` is a 303 with the same.

``ConsoleError(status, message)``
    Raise it for the error page; ``console_error(exc)`` turns a service's ``AppError``
    (404, 409, 422...) into one with the same status and detail.

A test logs in with ``tests/console/helpers.py::login(client, email, password)``, which
returns the CSRF token to post with.
"""

import hmac
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FunctionLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData

from app.accounts import sessions
from app.auth.scopes import ROLE_SCOPES, Principal, Role
from app.core.config import Settings
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import AppError

LOGIN_PATH = "/console/login"
HOME_PATH = "/console"
ACCOUNT_PATH = "/console/account"
# Where a person holding a temporary password may go: choose a new one, or leave.
PASSWORD_CHANGE_PATHS = frozenset({ACCOUNT_PATH, "/console/account/password", "/console/logout"})
SERVICE_NAME = "DSR console"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsolePerson:
    """The person signed in to the console, and the session they are using."""

    user_id: str
    email: str
    name: str
    role: Role
    csrf_token: str
    session_id: str
    must_change_password: bool
    totp_enabled: bool

    @property
    def principal(self) -> Principal:
        """Who they are to every service (the audit trail names ``user_id``)."""
        return Principal(
            client_id=self.user_id,
            role=self.role,
            scopes=ROLE_SCOPES[self.role],
        )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class ConsoleError(Exception):
    """Answered with the console's error page (HTML), not a problem+json document."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConsoleRedirect(Exception):
    """Answered with a 303 to ``location`` (a local path)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def console_error(exc: AppError) -> ConsoleError:
    """A service's refusal, shown as the console's error page with the same status."""
    return ConsoleError(exc.status, exc.detail)


# ---------------------------------------------------------------- templates and responses


def _load_template(name: str) -> str | None:
    if "/" in name or "\\" in name or ".." in name:
        return None
    source = resources.files("app.console") / "templates" / name
    return source.read_text(encoding="utf-8") if source.is_file() else None


templates = Environment(
    loader=FunctionLoader(_load_template),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _date(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y %H:%M UTC")
    return str(value.strftime("%d %b %Y"))


templates.filters["date"] = _date


def secure_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    person: "ConsolePerson | None" = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page ``template`` with ``context`` and the console's security headers."""
    person = person or getattr(request.state, "console_person", None)
    csrf = person.csrf_token if person else (context or {}).get("csrf_token", "")

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf)

    html = templates.get_template(template).render(
        {
            "person": person,
            "path": request.url.path,
            "service_name": SERVICE_NAME,
            "csrf_field": csrf_field,
            **(context or {}),
        }
    )
    return secure_headers(HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def redirect(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    secure_headers(response)
    return response


def safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site (``//host``, ``/\\host``)."""
    if (
        not value
        or not value.startswith(HOME_PATH)
        or value.startswith("//")
        or "\\" in value
        or any(ord(char) < 0x20 for char in value)
        or (len(value) > len(HOME_PATH) and value[len(HOME_PATH)] not in "/?")
    ):
        return HOME_PATH
    return value[:2000]


def login_url(next_path: str) -> str:
    return f"{LOGIN_PATH}?next={quote(safe_next(next_path), safe='/')}"


# ---------------------------------------------------------------- cookies


def set_session_cookie(response: Response, value: str, settings: Settings) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        value,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        sessions.COOKIE_NAME,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


# ---------------------------------------------------------------- dependencies


def _wanted_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query and request.method == "GET" else "")


async def current_person(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ConsolePerson:
    """The signed-in person, or a redirect to the login page (see the module docstring)."""
    opened = await sessions.load(
        session, cookie_value=request.cookies.get(sessions.COOKIE_NAME), settings=settings, now=now
    )
    if opened is None:
        raise ConsoleRedirect(login_url(_wanted_path(request)))
    user = opened.user
    if user.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise ConsoleRedirect(ACCOUNT_PATH)
    person = ConsolePerson(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        csrf_token=opened.row.csrf_token,
        session_id=opened.row.id,
        must_change_password=user.must_change_password,
        totp_enabled=user.totp_enabled,
    )
    request.state.console_person = person
    return person


ConsoleUser = Annotated[ConsolePerson, Depends(current_person)]


async def current_admin(person: ConsoleUser) -> ConsolePerson:
    """The signed-in person if an admin; otherwise the 403 page."""
    if not person.is_admin:
        raise ConsoleError(403, "This page is for admins.")
    return person


ConsoleAdmin = Annotated[ConsolePerson, Depends(current_admin)]


def tokens_match(expected: str, given: object) -> bool:
    """Constant-time comparison of a CSRF token with what the form carried."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def verified_form(request: Request, csrf_token: str) -> FormData:
    """The posted form, if its ``csrf_token`` field is ``csrf_token``; else the 403 page."""
    form = await request.form()
    if not tokens_match(csrf_token, form.get("csrf_token")):
        raise ConsoleError(
            403,
            "This form has expired or did not come from the console. Go back, reload the "
            "page and try again.",
        )
    return form


async def csrf_protected(request: Request, person: ConsoleUser) -> FormData:
    """The signed-in person's posted form, its CSRF token checked."""
    return await verified_form(request, person.csrf_token)


CsrfForm = Annotated[FormData, Depends(csrf_protected)]


def form_text(form: FormData, name: str, *, max_length: int = 1000) -> str:
    """A text field of the form ('' when absent or a file), bounded."""
    value = form.get(name)
    return value[:max_length] if isinstance(value, str) else ""


# ---------------------------------------------------------------- error pages


def install_console_errors(app: FastAPI) -> None:
    """Render ``ConsoleError`` as the error page and ``ConsoleRedirect`` as a 303."""

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError) -> HTMLResponse:
        return render(
            request,
            "error.html",
            {"status": exc.status, "message": exc.message},
            status_code=exc.status,
        )

    @app.exception_handler(ConsoleRedirect)
    async def _console_redirect(_request: Request, exc: ConsoleRedirect) -> RedirectResponse:
        return redirect(exc.location)


__all__ = [
    "ConsoleAdmin",
    "ConsoleError",
    "ConsolePerson",
    "ConsoleUser",
    "CsrfForm",
    "csrf_protected",
    "render",
    "verified_form",
]
