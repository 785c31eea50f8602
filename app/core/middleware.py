"""Pure ASGI middleware: body hygiene, the request id with an access log that never records query
strings or raw paths, and the last line of defence that turns an unexpected error into a 500
without logging its message."""

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem
from app.core.json_body import is_json_media_type
from app.core.logs import accepted_request_id, reset_request_id, set_request_id
from app.core.tracebacks import traceback_without_messages

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.errors")

FORM_PATHS = {"/v1/oauth/token"}
# HTML forms: the console's pages (app.console) and the subject's status page
# (app.status_page).
FORM_PATH_PREFIXES = ("/console/", "/status/")
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _send_problem(
    scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str, **extra: Any
) -> None:
    # The same renderer as every other problem, so clients see one shape and one encoding.
    await problem(status, title, detail, **extra)(scope, receive, send)


def _declared_length(headers: dict[bytes, bytes]) -> int:
    try:
        return int(headers.get(b"content-length", b"0") or b"0")
    except ValueError:
        return 0


async def _send_too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    await _send_problem(
        scope,
        receive,
        send,
        413,
        "Request body too large",
        f"The body exceeds the limit of {limit} bytes.",
    )


def _media_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


def _form_has_nul(body: bytes, media_type: str) -> bool:
    """A NUL in a form field: raw, or percent-encoded in a urlencoded body."""
    if b"\x00" in body:
        return True
    return media_type == "application/x-www-form-urlencoded" and b"%00" in body


class BodyHygieneMiddleware:
    """413 for oversized bodies, 415 for media types we cannot read, 400 for NUL in a form.

    JSON bodies are judged by the route once the caller is authenticated (``app.core.json_body``).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = 1_048_576) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declares_body = headers.get(b"content-length", b"0") not in (b"0", b"") or (
            b"transfer-encoding" in headers
        )
        media_type = _media_type(headers)
        if _declared_length(headers) > self.max_body_bytes:
            await _send_too_large(scope, receive, send, self.max_body_bytes)
            return
        path = scope["path"]
        expects_form = path in FORM_PATHS or path.startswith(FORM_PATH_PREFIXES)
        if declares_body or media_type:
            acceptable = (
                media_type in FORM_TYPES if expects_form else is_json_media_type(media_type)
            )
            if declares_body and not acceptable:
                wanted = "application/x-www-form-urlencoded" if expects_form else "application/json"
                await _send_problem(
                    scope,
                    receive,
                    send,
                    415,
                    "Unsupported media type",
                    f"Send the body as {wanted}.",
                )
                return
        if not declares_body or (not expects_form and b"transfer-encoding" not in headers):
            # A declared length within the limit bounds a JSON body already (the server reads
            # no more than it declares), and JSON is judged by the route: no need to buffer.
            await self.app(scope, receive, send)
            return
        # Read the body once (bounded) to screen it, then replay it downstream.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_too_large(scope, receive, send, self.max_body_bytes)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # PostgreSQL cannot store or compare text holding NUL. A form is judged here (the token
        # route has no token to check first); JSON by the route, once the caller is known.
        if expects_form and _form_has_nul(body, media_type):
            await _send_problem(
                scope,
                receive,
                send,
                400,
                "Invalid request",
                "Form fields must not contain NUL characters.",
                error="invalid_request",
            )
            return
        await self.app(
            scope,
            _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
            send,
        )


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class AccessLogMiddleware:
    """The request id and the access line: method, route template, status and time.

    Outermost, so every answer (a 413 from the body screen, a 500 from the last line of
    defence) carries ``X-Request-ID`` and every line logged while answering names the id.
    Query strings can carry personal data, so the line never has them, nor the raw path.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        # Plain Starlette routes (/openapi.json) do not record themselves in the scope.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
                break
        request_id = accepted_request_id(given)
        echoed = (b"x-request-id", request_id.encode("ascii"))
        token = set_request_id(request_id)
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                # The route template, not the raw path: a mistyped path could hold an email.
                route = scope.get("route") or self._match(scope)
                # The template as documented ({request_id}, not {request_id:uuid}).
                path = getattr(route, "path_format", None) or "<unmatched>"
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                access_logger.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    path,
                    status,
                    duration_ms,
                    extra={
                        "method": scope["method"],
                        "route": path,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            reset_request_id(token)

    def _match(self, scope: Scope) -> BaseRoute | None:
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route
        return None


class UnexpectedErrorMiddleware:
    """A 500 problem for any error nothing else handled, logged without its message.

    Starlette's own last handler re-raises, and the server then logs the traceback with the
    exception's message, which can hold personal data. Here the error stops: the log gets its
    traceback without any message, and the client a 500 that says the connection closes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            error_logger.error(
                "unhandled error: %s\n%s", type(exc).__name__, traceback_without_messages(exc)
            )
            if started:
                return  # part of the answer is out: the server closes the connection
            await problem(
                500,
                "Internal error",
                "The service could not process this request.",
                # Say it, so a client reusing the connection does not see it reset.
                headers={"Connection": "close"},
            )(scope, receive, send)
