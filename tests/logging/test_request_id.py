"""X-Request-ID: taken when sane, made up otherwise, echoed on every answer, on every line."""

import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.logs import accepted_request_id
from tests.logging.conftest import REQUIRED_KEYS, JsonLog

ADDRESS = "jane.doe@example.com"
GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_a_sane_request_id_is_echoed_and_names_the_access_line(
    client: AsyncClient, json_log: JsonLog
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "crm-7.trace_01-AB"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "crm-7.trace_01-AB"
    (access,) = json_log.entries("app.access")
    assert access["request_id"] == "crm-7.trace_01-AB"
    assert access["method"] == "GET" and access["route"] == "/healthz"
    assert access["status"] == 200 and isinstance(access["duration_ms"], float)
    assert set(access) >= REQUIRED_KEYS | {"method", "route", "status", "duration_ms"}


async def test_without_a_request_id_one_is_generated_per_request(client: AsyncClient) -> None:
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]

    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "given",
    [
        "x" * 129,  # too long
        "jane.doe@example.com",  # '@' is not accepted: an id must not carry an address
        "id with spaces",
        "line\tbreak",
        "",
    ],
)
async def test_an_unacceptable_request_id_is_replaced(
    client: AsyncClient, json_log: JsonLog, given: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})

    echoed = response.headers["x-request-id"]
    assert echoed != given and GENERATED.fullmatch(echoed)
    assert given not in json_log.stream.getvalue() or given == ""
    assert [entry["request_id"] for entry in json_log.entries("app.access")] == [echoed]


def test_longest_acceptable_request_id_is_kept() -> None:
    assert accepted_request_id(b"a" * 128) == "a" * 128
    assert accepted_request_id(b"a" * 129) != "a" * 129
    assert accepted_request_id(None) != accepted_request_id(None)


async def test_problem_answers_echo_the_request_id_too(
    client: AsyncClient, json_log: JsonLog, officer_headers: dict[str, str]
) -> None:
    answers = {
        404: await client.get("/v1/nope", headers={"X-Request-ID": "r-404"}),
        422: await client.post(
            "/v1/requests",
            headers={**officer_headers, "X-Request-ID": "r-422"},
            json={"type": "access", "subject": {}},
        ),
        401: await client.get("/v1/requests", headers={"X-Request-ID": "r-401"}),
        415: await client.post(
            "/v1/requests",
            headers={**officer_headers, "X-Request-ID": "r-415", "Content-Type": "text/plain"},
            content=b"hello",
        ),
    }

    for status, response in answers.items():
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"] == f"r-{status}"
    logged = {entry["request_id"]: entry for entry in json_log.entries("app.access")}
    for status in answers:
        assert logged[f"r-{status}"]["status"] == status
    # Unmatched paths are logged by a placeholder, never the raw path.
    assert logged["r-404"]["route"] == "<unmatched>"
    assert logged["r-422"]["route"] == "/v1/requests"


async def test_an_unexpected_error_answers_500_with_the_request_id(
    app: FastAPI, client: AsyncClient, json_log: JsonLog
) -> None:
    # A route that raises: mounted for this test only.
    async def broken() -> None:
        # Tracebacks show source lines: the address is in a variable, as it would be.
        raise RuntimeError(f"{ADDRESS} is in this message")

    app.add_api_route("/test-broken", broken)
    response = await client.get("/test-broken", headers={"X-Request-ID": "r-500"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "r-500"
    errors = json_log.entries("app.errors")
    assert errors and all(entry["request_id"] == "r-500" for entry in errors)
    assert "jane.doe" not in json_log.stream.getvalue()
    (access,) = json_log.entries("app.access")
    assert access["status"] == 500 and access["request_id"] == "r-500"
