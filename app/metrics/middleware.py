"""Pure ASGI middleware counting and timing every HTTP request by route template and status.

A few microseconds a request: the labelled children are looked up once per (method, route,
status) and kept, and the route comes from the scope FastAPI already filled in."""

import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics.instruments import HTTP_DURATION, HTTP_IN_PROGRESS, HTTP_REQUESTS

# Anything else is "other": a client must not be able to invent label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        # Plain Starlette routes and mounts do not record themselves in the scope.
        self.routes = routes
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an error that escapes before an answer starts becomes a 500 outside

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_IN_PROGRESS.dec()
            elapsed = time.perf_counter() - started
            method = scope["method"]
            if method not in KNOWN_METHODS:
                method = "other"
            # The template, never the raw path: a mistyped path could hold an email address.
            route = scope.get("route")
            template = getattr(route, "path_format", None) or self._template(scope, status)
            key = (method, template, status)
            children = self._children.get(key)
            if children is None:
                labels = (method, template, str(status))
                children = (HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels))
                self._children[key] = children
            children[0].inc()
            children[1].observe(elapsed)

    def _template(self, scope: Scope, status: int) -> str:
        if status == 404:
            return UNMATCHED  # the common case for a scanner: no route to look for
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return getattr(route, "path_format", None) or UNMATCHED
        return UNMATCHED
