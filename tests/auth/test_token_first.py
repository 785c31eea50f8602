"""A caller without a valid token learns nothing about its body: 401 comes first."""

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from httpx import AsyncClient

from app.auth.deps import TokenFirstRoute, oauth2_scheme
from app.core.errors import PROBLEM_JSON

MALFORMED = b'{"type": "access", "subject": {"email": '


def _needs_token(route: APIRoute) -> bool:
    def walk(dependant: object) -> bool:
        return getattr(dependant, "call", None) is oauth2_scheme or any(
            walk(sub) for sub in getattr(dependant, "dependencies", [])
        )

    return walk(route.dependant)


def _token_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the app (included routers too) that needs a token, as declared."""
    routes = (context.original_route for context in iter_route_contexts(app.routes))
    return [route for route in routes if isinstance(route, APIRoute) and _needs_token(route)]


def _body_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with placeholders filled) of every documented operation with a body and a
    security requirement."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation and operation.get("security"):
                filled = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
                found.append((method.upper(), filled))
    return found


async def test_every_route_with_a_body_answers_401_before_reading_it(
    app: FastAPI, client: AsyncClient
) -> None:
    routes = _body_operations(app)
    assert len(routes) > 15  # the walk found the API, not nothing
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = await client.request(
                method,
                path,
                content=MALFORMED,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["content-type"] == PROBLEM_JSON


def test_every_router_checks_the_token_before_the_body(app: FastAPI) -> None:
    routes = _token_routes(app)
    assert len(routes) > 30  # the walk found the API, not nothing
    for route in routes:
        assert isinstance(route, TokenFirstRoute), route.path
