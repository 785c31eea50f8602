"""The access log names routes, never raw paths; every problem body is rendered the same way."""

import json
import logging

import pytest
from httpx import AsyncClient, Response

from app.core.errors import PROBLEM_JSON


def _logged_paths(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage().split(" ")[1]
        for record in caplog.records
        if record.name == "app.access"
    ]


async def test_access_log_names_every_route_the_service_serves(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    for path in [
        "/openapi.json",
        "/docs",
        "/healthz",
        "/v1/requests/00000000-0000-0000-0000-000000000000",
    ]:
        await client.get(path)
    await client.get("/v1/people/jane.doe@example.com")  # no such route: never the raw path
    assert _logged_paths(caplog) == [
        "/openapi.json",
        "/docs",
        "/healthz",
        "/v1/requests/{request_id}",
        "<unmatched>",
    ]


def _rendered_like_every_other_problem(response: Response) -> None:
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == response.status_code
    # One serialisation for every problem, whichever layer answered.
    assert response.content == json.dumps(body, separators=(",", ":")).encode()


async def test_problems_from_the_body_screen_look_like_the_others(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    answered = [
        await client.get("/v1/nope"),  # the router
        await client.post(  # the JSON parser
            "/v1/requests",
            headers={**officer_headers, "Content-Type": "application/json"},
            content=b"{",
        ),
        await client.post(  # the body screen: 415
            "/v1/requests",
            headers={**officer_headers, "Content-Type": "text/plain"},
            content=b"access",
        ),
        await client.post(  # the body screen: 413
            "/v1/requests",
            headers={**officer_headers, "Content-Type": "application/json"},
            content=b" " * 2_000_000,
        ),
        await client.post(  # the body screen: 422 for NUL
            "/v1/requests",
            headers={**officer_headers, "Content-Type": "application/json"},
            content=b'{"type": "access\\u0000"}',
        ),
    ]
    assert [response.status_code for response in answered] == [404, 400, 415, 413, 422]
    for response in answered:
        _rendered_like_every_other_problem(response)
