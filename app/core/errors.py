"""One error hierarchy rendered as RFC 9457 ``application/problem+json``, and the problem
responses routes declare for the OpenAPI document."""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.db import database_unavailable, sqlstate

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://dsr.example/problems/"


class AppError(Exception):
    """Base of every error the service answers with; ``detail`` must never hold personal data."""

    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if title:
            self.title = title
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(AppError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(AppError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class InvalidTransition(Conflict):
    title = "Action not allowed in the current status"
    slug = "invalid-transition"


class Gone(AppError):
    """The resource existed but is no longer available (an expired export or download link)."""

    status = 410
    title = "Gone"
    slug = "gone"


class UnprocessableEntity(AppError):
    status = 422
    title = "Unprocessable request"
    slug = "unprocessable"


class ServiceUnavailable(AppError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or f"http-{status}"),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# ---------------------------------------------------------------- OpenAPI problem responses


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` lists field errors on validation failures."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem_response(description: str) -> dict[str, Any]:
    """A route's ``responses`` entry for a problem+json answer, described for ``/docs``."""
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {}},
    }


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_response("Missing, invalid or expired access token."),
    403: problem_response("Your role does not allow this."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem_response("No such request, or it is not visible to you.")
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: problem_response("Not allowed in the request's current status.")
}
VALIDATION: dict[int | str, dict[str, Any]] = {
    422: problem_response("The body or parameters are invalid; see `errors`.")
}
# What any action on a request may answer besides its result.
ACTION_ERRORS = {**AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **VALIDATION}


# Field names in our schemas look like this; anything else in a location (a client's unknown
# key, which could be an email address or a phone number) is not echoed back.
_SAFE_LOC_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
_REDACTED = "<redacted>"


def _safe_location(loc: Any) -> list[str]:
    safe = []
    for part in loc or ():
        if isinstance(part, int) or _SAFE_LOC_PART.fullmatch(str(part)):
            safe.append(str(part))
        else:
            safe.append(_REDACTED)
    return safe


def _safe_message(error: dict[str, Any]) -> str:
    error_type = error.get("type")
    if error_type == "json_invalid":
        return "malformed JSON"
    if error_type == "union_tag_invalid":
        # pydantic's message quotes the submitted tag, which is arbitrary client text.
        expected = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected_tags", "")))
        allowed = ", ".join(f"'{tag}'" for tag in dict.fromkeys(expected))
        return f"Input tag does not match any of the expected tags: {allowed}"
    message = str(error.get("msg", "invalid value"))
    submitted = error.get("input")
    # Defence in depth: never hand the submitted value back inside a message.
    if isinstance(submitted, str) and len(submitted) >= 3 and submitted in message:
        message = message.replace(submitted, _REDACTED)
    return message


def _safe_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Location and message only: pydantic's ``input``/``ctx`` could echo personal data."""
    safe = []
    for error in exc.errors():
        location = _safe_location(error.get("loc", ()))
        if error.get("type") == "union_tag_invalid":
            discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
            if _SAFE_LOC_PART.fullmatch(discriminator):
                location.append(discriminator)
        safe.append(
            {
                "loc": location,
                "msg": _safe_message(error),
                "type": error.get("type", "value_error"),
            }
        )
    return safe


_HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request body too large",
    415: "Unsupported media type",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route fully serves at this path (routers may be nested)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return problem(
            exc.status, exc.title, exc.detail, slug=exc.slug, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _safe_validation_errors(exc)
        if any(error["type"] == "json_invalid" for error in errors):
            return problem(
                400,
                "Malformed JSON",
                "The request body is not valid JSON.",
                slug="malformed-json",
                errors=errors,
            )
        return problem(
            422,
            "Validation failed",
            "One or more fields are invalid; see `errors`.",
            slug="validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _HTTP_TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404:
            detail = "No such resource."
        if exc.status_code == 400:
            # Only the framework raises these (the service raises AppError): a body it could
            # not read, such as a broken form. One shape for "cannot read it", and never the
            # parser's own words, which can quote the body.
            return problem(
                400,
                "Malformed body",
                "The request body could not be read.",
                slug="malformed-body",
                errors=[{"loc": ["body"], "msg": "unreadable body", "type": "body_invalid"}],
            )
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette's Allow names only the first route on the path; RFC 9110 wants all.
            allowed = _allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return problem(status, title, detail, headers=headers or None)

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        # A dropped, unreachable, starting or recovering database is transient: ask the
        # caller to retry.
        if database_unavailable(exc):
            logger.warning(
                "database unavailable: %s (SQLSTATE %s)", type(exc.orig).__name__, sqlstate(exc)
            )
            return problem(
                503,
                "Service unavailable",
                "The database is unavailable; retry shortly.",
                slug="unavailable",
                headers={"Retry-After": "1"},
            )
        if isinstance(exc, IntegrityError):
            # A concurrent change won a uniqueness race; the caller can safely retry.
            return problem(
                409, "Conflict", "A concurrent change conflicted; retry.", slug="conflict"
            )
        if isinstance(exc, DataError):
            return problem(
                422, "Validation failed", "A value is out of the storable range.", slug="validation"
            )
        logger.error("database error: %s", type(exc.orig).__name__)
        return problem(500, "Internal error", "The service could not process this request.")

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_request: Request, _exc: PoolTimeout) -> JSONResponse:
        # Every connection stayed busy for the pool's timeout: a burst, not this request.
        logger.warning("database pool exhausted")
        return problem(
            503,
            "Service unavailable",
            "The service is busy; retry shortly.",
            slug="unavailable",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(OSError)
    async def _infrastructure_error(_request: Request, exc: OSError) -> JSONResponse:
        # Refused or timed-out connections (the database before the driver wraps them).
        logger.warning("backing service unavailable: %s", type(exc).__name__)
        return problem(
            503,
            "Service unavailable",
            "A backing service is unavailable; retry shortly.",
            slug="unavailable",
            headers={"Retry-After": "1"},
        )
