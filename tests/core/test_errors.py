"""Errors: RFC 9457 problem+json for every failure, never a 500, never personal data.

The personal data used here is distinctive (``NEEDLES``) so that any echo of it in a response
body or a log record is caught, whatever the surrounding text.
"""

import asyncio
import json
import logging
import random
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, BasicAuth, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from tests.factories import create_request, identity_assertion, request_body

PROBLEM_JSON = "application/problem+json"

BAD_EMAIL = "zebulon.quixote-pii@@example.org"
GOOD_EMAIL = "zebulon.quixote-pii@example.org"
BAD_PHONE = "+999 5550 1234 77"
NAME = "Zebulon Quixote-Pii"
# Fragments, case-insensitive: none may appear anywhere in a response body or log record.
NEEDLES = ("zebulon", "quixote", "5550 1234", "55501234", "example.org")

DOCUMENT_PASSED = {
    "method": "document",
    "document_type": "passport",
    "business_address_confirmed": True,
    "result": "passed",
}


def leaked(content: str) -> list[str]:
    lowered = content.lower()
    return [needle for needle in NEEDLES if needle in lowered]


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """The response is ``status`` as RFC 9457 problem details, free of personal data."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    for key in ("type", "title", "status", "detail"):
        assert isinstance(body.get(key), str if key != "status" else int), (key, body)
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    assert not leaked(response.text), response.text
    return body


def assert_validation(response: Response, *locations: tuple[str, ...]) -> list[dict[str, Any]]:
    """422 with an ``errors`` list of {loc, msg}; each location is a suffix of some ``loc``."""
    body = assert_problem(response, 422)
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert isinstance(error["loc"], list) and all(isinstance(p, str) for p in error["loc"])
        assert isinstance(error["msg"], str) and error["msg"]
    for location in locations:
        assert any(tuple(e["loc"][-len(location) :]) == location for e in errors), (
            location,
            errors,
        )
    return list(errors)


def json_post_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


@pytest.fixture
async def lenient_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Like ``client``, but a 500 comes back as a response instead of raising in the test."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def running_request(
    client: AsyncClient, headers: dict[str, str], officer_headers: dict[str, str]
) -> str:
    request_id = str((await create_request(client, headers))["id"])
    response = await client.post(
        f"/v1/requests/{request_id}/verification", headers=officer_headers, json=DOCUMENT_PASSED
    )
    assert response.status_code == 200, response.text
    return request_id


# ------------------------------------------------------------------------------ validation

INVALID_BODIES: dict[str, tuple[dict[str, Any], list[tuple[str, ...]]]] = {
    "invalid-email-phone-and-a-bad-type": (
        {
            "type": "access",
            "subject": {"email": BAD_EMAIL, "phone": BAD_PHONE, "name": NAME},
            "channel": 12345,
        },
        [("subject", "email"), ("subject", "phone"), ("channel",)],
    ),
    "type-is-an-email-address": ({"type": GOOD_EMAIL, "subject": {"name": NAME}}, [("type",)]),
    "unknown-key-is-an-email-address": (
        {"type": "access", "subject": {"name": NAME, GOOD_EMAIL: True}},
        [("subject", "<redacted>")],
    ),
    "unknown-top-level-key-is-a-phone": (
        {"type": "access", "subject": {"name": NAME}, BAD_PHONE: 1},
        [("<redacted>",)],
    ),
    "name-too-long": ({"type": "access", "subject": {"name": NAME * 20}}, [("subject", "name")]),
    "regulation-is-an-email": (
        {"type": "access", "subject": {"email": GOOD_EMAIL}, "regulation": GOOD_EMAIL},
        [("regulation",)],
    ),
    "received-at-is-an-email": (
        {"type": "access", "subject": {"email": GOOD_EMAIL}, "received_at": GOOD_EMAIL},
        [("received_at",)],
    ),
    "rectification-with-wrong-types": (
        {
            "type": "rectification",
            "subject": {"email": GOOD_EMAIL},
            "details": {"changes": [{"field": NAME, "current": NAME, "requested": 5}]},
        },
        [("details", "changes", "0", "requested")],
    ),
    "objection-scope-is-a-name": (
        {"type": "objection", "subject": {"name": NAME}, "details": {"scope": NAME}},
        [("details", "scope")],
    ),
    "portability-url-holds-an-email": (
        {
            "type": "portability",
            "subject": {"email": GOOD_EMAIL},
            "details": {"transmit_to": f"https://{GOOD_EMAIL}:99999999/"},
        },
        [("details", "transmit_to")],
    ),
    "subject-without-identity": ({"type": "access", "subject": {}}, [("subject",)]),
    "subject-is-a-string": ({"type": "access", "subject": GOOD_EMAIL}, [("subject",)]),
}


@pytest.mark.parametrize("case", list(INVALID_BODIES))
async def test_validation_errors_list_fields_without_personal_data(
    client: AsyncClient, officer_headers: dict[str, str], case: str
) -> None:
    body, locations = INVALID_BODIES[case]
    response = await client.post("/v1/requests", headers=officer_headers, json=body)
    assert_validation(response, *locations)


async def test_invalid_action_bodies_do_not_echo_personal_data(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = await running_request(client, officer_headers, officer_headers)
    cases = [
        ("verification", {"method": GOOD_EMAIL}, ("method",)),
        ("verification", {**DOCUMENT_PASSED, "document_type": NAME}, ("document_type",)),
        ("verification", {"method": "officer_attestation", "note": NAME * 200}, ("note",)),
        ("verification/confirm", {"code": GOOD_EMAIL}, ("code",)),
        ("verification/confirm", {"code": "123456", GOOD_EMAIL: 1}, ("<redacted>",)),
        ("pause", {"reason": NAME, "note": NAME}, ("reason",)),
        ("pause", {"reason": "awaiting_fee", GOOD_EMAIL: 1}, ("<redacted>",)),
        ("extend", {"reason": NAME * 200}, ("reason",)),
        ("reject", {"reason": GOOD_EMAIL}, ("reason",)),
        ("cancel", {"note": [NAME]}, ("note",)),
        ("complete", {"summary": {"who": NAME}}, ("summary",)),
    ]
    for action, body, location in cases:
        response = await client.post(
            f"/v1/requests/{request_id}/{action}", headers=officer_headers, json=body
        )
        assert_validation(response, location)


async def test_invalid_query_and_path_values_do_not_echo_personal_data(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    for params, location in [
        ({"status": GOOD_EMAIL}, ("query", "status")),
        ({"type": NAME}, ("query", "type")),
        ({"overdue": NAME}, ("query", "overdue")),
        ({"due_before": GOOD_EMAIL}, ("query", "due_before")),
        ({"subject_email": GOOD_EMAIL * 20}, ("query", "subject_email")),
    ]:
        response = await client.get("/v1/requests", headers=officer_headers, params=params)
        assert_validation(response, location)
    # Not an id: no route takes it, so no request is there (404), and nothing is echoed.
    response = await client.get(f"/v1/requests/{GOOD_EMAIL}", headers=officer_headers)
    assert assert_problem(response, 404)["detail"] == "No such resource."
    # An invalid email filter is simply no match, not an error that could echo it.
    response = await client.get(
        "/v1/requests", headers=officer_headers, params={"subject_email": BAD_EMAIL}
    )
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_client_creation_errors_do_not_echo_input(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/clients", headers=admin_headers, json={"name": NAME * 20, "role": GOOD_EMAIL}
    )
    assert_validation(response, ("name",), ("role",))


# ------------------------------------------------------------------------------ HTTP-level


async def test_malformed_json_is_400(client: AsyncClient, officer_headers: dict[str, str]) -> None:
    for content in (
        b'{"type": "access",',
        b'{"subject": {"email": "' + GOOD_EMAIL.encode() + b'"',
        b"{'type': 'access'}",
        b'{"type": "access"} trailing',
    ):
        response = await client.post(
            "/v1/requests", headers=json_post_headers(officer_headers), content=content
        )
        body = assert_problem(response, 400)
        assert body["title"] == "Malformed JSON"
        assert all(error["msg"] == "malformed JSON" for error in body["errors"])


async def test_unknown_route_is_404(client: AsyncClient, officer_headers: dict[str, str]) -> None:
    for path in ("/v1/nothing-here", f"/v1/people/{GOOD_EMAIL}", "/v1/requests/x/y/z"):
        assert_problem(await client.get(path, headers=officer_headers), 404)
        assert_problem(await client.get(path), 404)
    missing = f"/v1/requests/{uuid.uuid4()}"
    assert_problem(await client.get(missing, headers=officer_headers), 404)


async def test_wrong_method_is_405_with_allow(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    response = await client.delete("/v1/requests", headers=officer_headers)
    assert_problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    response = await client.put(
        f"/v1/requests/{uuid.uuid4()}", headers=officer_headers, json={"status": "completed"}
    )
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"
    response = await client.get("/v1/oauth/token")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


async def test_oversized_body_with_content_length_is_413(
    client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    limit = settings.max_body_bytes
    padding = "x" * limit
    body = json.dumps(request_body(details={"note": padding})).encode()
    assert len(body) > limit
    response = await client.post(
        "/v1/requests", headers=json_post_headers(officer_headers), content=body
    )
    assert_problem(response, 413)
    response = await client.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials", "client_secret": padding}
    )
    assert_problem(response, 413)


async def test_oversized_chunked_body_is_413(
    client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    limit = settings.max_body_bytes
    sent = {"bytes": 0}

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"type": "access", "details": {"note": "'
        while sent["bytes"] <= limit:
            chunk = b"x" * 65536
            sent["bytes"] += len(chunk)
            yield chunk
        yield b'"}}'

    response = await client.post(
        "/v1/requests", headers=json_post_headers(officer_headers), content=stream()
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_chunked_body_under_the_limit_is_accepted(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    raw = json.dumps(request_body()).encode()

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 7):
            yield raw[start : start + 7]

    response = await client.post(
        "/v1/requests", headers=json_post_headers(officer_headers), content=stream()
    )
    assert response.status_code == 201, response.text


async def test_unsupported_media_type_is_415(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = await running_request(client, officer_headers, officer_headers)
    as_json = json.dumps(request_body()).encode()
    cases = [
        ("/v1/requests", {"Content-Type": "text/plain"}, as_json),
        ("/v1/requests", {"Content-Type": "application/x-www-form-urlencoded"}, b"type=access"),
        ("/v1/requests", {"Content-Type": "application/xml"}, b"<request/>"),
        ("/v1/requests", {}, as_json),  # a body without any Content-Type
        (f"/v1/requests/{request_id}/pause", {"Content-Type": "text/plain"}, b"pause"),
        (
            "/v1/oauth/token",
            {"Content-Type": "application/json"},
            b'{"grant_type": "client_credentials"}',
        ),
    ]
    for path, extra, content in cases:
        response = await client.post(path, headers={**officer_headers, **extra}, content=content)
        assert_problem(response, 415)


# ------------------------------------------------------------------------------ NUL and unicode


async def test_nul_characters_are_422_not_500(
    lenient_client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    client = lenient_client
    request_id = await running_request(client, officer_headers, officer_headers)
    posts: list[tuple[str, Any]] = [
        ("/v1/requests", request_body(subject={"name": "Jane\x00Doe"})),
        ("/v1/requests", request_body(external_ref="\x00")),
        ("/v1/requests", request_body(details={"note": "a\x00"})),
        ("/v1/requests", {"type": "access", "subject": {"name": "x", "\x00": "y"}}),
        (f"/v1/requests/{request_id}/pause", {"reason": "awaiting_fee", "note": "\x00"}),
        (f"/v1/requests/{request_id}/extend", {"reason": "\x00"}),
    ]
    for path, body in posts:
        response = await client.post(path, headers=officer_headers, json=body)
        assert_validation(response)
    raw = b'{"type": "access", "subject": {"name": "a\x00b"}}'
    response = await client.post(
        "/v1/requests", headers=json_post_headers(officer_headers), content=raw
    )
    assert_validation(response)
    # A literal backslash followed by "u0000" is text, not a NUL.
    response = await client.post(
        "/v1/requests",
        headers=officer_headers,
        json=request_body(details={"note": "the escape \\u0000 in C"}),
    )
    assert response.status_code == 201, response.text
    assert response.json()["details"]["note"] == "the escape \\u0000 in C"
    # Query strings: no match rather than a database error.
    response = await client.get(
        "/v1/requests", headers=officer_headers, params={"subject_email": "a\x00@example.com"}
    )
    assert response.status_code == 200, response.text


async def test_nul_in_token_form_is_400_invalid_request(lenient_client: AsyncClient) -> None:
    for field in ("client_id", "client_secret", "scope"):
        form = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
        form[field] = "a\x00b"
        response = await lenient_client.post("/v1/oauth/token", data=form)
        assert assert_problem(response, 400)["error"] == "invalid_request"


async def test_nul_in_basic_credentials_is_not_500(lenient_client: AsyncClient) -> None:
    # Was a 500 on PostgreSQL: the NUL reached the client lookup query.
    response = await lenient_client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=BasicAuth("admin\x00", "secret"),
    )
    assert assert_problem(response, 401)["error"] == "invalid_client"


async def test_unicode_edge_cases_round_trip(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    name = "Zoë مرحبا \u200b\u200d👩\u200d💻 e\u0301 \U00010348 \u202eevil"
    subject = {"name": name, "email": "üñî@bücher.example", "customer_id": "😀" * 50}
    response = await client.post(
        "/v1/requests", headers=officer_headers, json=request_body(subject=subject)
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    stored = (await client.get(f"/v1/requests/{request_id}", headers=officer_headers)).json()
    assert stored["subject"]["name"] == name
    assert stored["subject"]["customer_id"] == "😀" * 50
    assert stored["subject"]["email"] == "üñî@bücher.example"


async def test_invalid_unicode_is_rejected(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    headers = json_post_headers(officer_headers)
    cases = [
        (b'{"type": "access", "subject": {"name": "\\ud800"}}', 422),  # lone surrogate escape
        (b'{"type": "access", "subject": {"name": "\\udc00x"}}', 422),
        (b'{"type": "access", "subject": {"name": "\xed\xa0\x80"}}', 422),  # encoded surrogate
        (b'{"type": "access", "subject": {"name": "\xff\xfe"}}', 400),  # not UTF-8
        ('{"type": "access", "subject": {"name": "x"}}'.encode("utf-16"), 422),  # has NULs
    ]
    for content, status in cases:
        response = await client.post("/v1/requests", headers=headers, content=content)
        assert_problem(response, status)


# ------------------------------------------------------------------------------ paths, cursors


async def test_invalid_uuid_in_path_is_404(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    # Ids in paths are UUIDs: anything else names no resource (and no route, so a literal
    # path such as /v1/requests/search is never taken for an id).
    for value in ("not-a-uuid", "1", "0" * 37, "%00", "'; DROP TABLE requests; --"):
        for method, suffix in (("GET", ""), ("GET", "/events"), ("POST", "/resume")):
            response = await client.request(
                method, f"/v1/requests/{value}{suffix}", headers=officer_headers
            )
            assert assert_problem(response, 404)["detail"] == "No such resource."


async def test_invalid_cursor_is_400(client: AsyncClient, officer_headers: dict[str, str]) -> None:
    request_id = str((await create_request(client, officer_headers))["id"])
    not_a_cursor = [
        "!!!",
        "bm90IGpzb24",  # "not json"
        "WzEsIDIsIDNd",  # [1, 2, 3]
        "eyJhIjogMX0",  # {"a": 1}
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgIngiXQ",  # naive timestamp, bad uuid
        "%00",
    ]
    for cursor in not_a_cursor:
        for path in ("/v1/requests", f"/v1/requests/{request_id}/events"):
            response = await client.get(path, headers=officer_headers, params={"cursor": cursor})
            assert assert_problem(response, 400)["title"] == "Invalid cursor", (path, cursor)
    response = await client.get(
        "/v1/requests", headers=officer_headers, params={"cursor": "a" * 501}
    )
    assert_validation(response, ("query", "cursor"))


# ------------------------------------------------------------------------------ extremes


async def test_extreme_query_values(client: AsyncClient, officer_headers: dict[str, str]) -> None:
    cases: list[tuple[dict[str, str], int]] = [
        ({"limit": "0"}, 422),
        ({"limit": "-1"}, 422),
        ({"limit": "201"}, 422),
        ({"limit": str(10**30)}, 422),
        ({"limit": "9" * 5000}, 422),
        ({"limit": "1.5"}, 422),
        ({"limit": "NaN"}, 422),
        ({"due_before": "not-a-date"}, 422),
        ({"due_before": "2026-02-30"}, 422),
        ({"due_before": "0001-01-01"}, 200),
        ({"due_before": "9999-12-31"}, 200),
        ({"overdue": "maybe"}, 422),
        ({"overdue": "true"}, 200),
        ({"status": "bogus"}, 422),
        ({"type": ""}, 422),
        ({"limit": "200"}, 200),
    ]
    for params, status in cases:
        response = await client.get("/v1/requests", headers=officer_headers, params=params)
        if status == 200:
            assert response.status_code == 200, (params, response.text)
        else:
            assert_problem(response, status)


async def test_extreme_bodies(client: AsyncClient, officer_headers: dict[str, str]) -> None:
    headers = json_post_headers(officer_headers)
    valid = json.dumps(request_body())
    cases: list[tuple[str, bytes, int]] = [
        ("empty", b"", 422),
        ("whitespace", b"   ", 400),
        ("null", b"null", 422),
        ("array", b"[" + valid.encode() + b"]", 422),
        ("string", b'"access"', 422),
        ("number", b"42", 422),
        ("true", b"true", 422),
        ("empty-object", b"{}", 422),
        (
            "huge-int-received-at",
            valid[:-1].encode() + b', "received_at": ' + b"1" * 31 + b"}",
            422,
        ),
        ("5000-digit-int", valid[:-1].encode() + b', "received_at": ' + b"9" * 5000 + b"}", 400),
        ("1e400", valid[:-1].encode() + b', "received_at": 1e400}', 422),
        ("NaN", valid[:-1].encode() + b', "received_at": NaN}', 422),
        ("deep-arrays", b"[" * 100_000 + b"]" * 100_000, 400),
        ("deep-objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400),
        ("deep-details", b'{"type": "access", "details": ' + b"[" * 500 + b"]" * 500 + b"}", 422),
        ("long-external-ref", json.dumps(request_body(external_ref="r" * 100_000)).encode(), 422),
        ("many-keys", json.dumps({f"k{i}": i for i in range(20_000)}).encode(), 422),
    ]
    for label, content, status in cases:
        response = await client.post("/v1/requests", headers=headers, content=content)
        assert response.status_code == status, (label, response.text[:500])
        assert_problem(response, status)


async def test_empty_body_on_create_is_422(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    assert_validation(await client.post("/v1/requests", headers=officer_headers), ("body",))


IN_AN_HOUR = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    "received_at",
    [IN_AN_HOUR, "2999-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00"],
    # Stable names: parallel workers must collect the same tests.
    ids=["in-an-hour", "year-2999", "year-9999"],
)
async def test_received_at_in_the_future_is_422(
    client: AsyncClient, officer_headers: dict[str, str], received_at: str
) -> None:
    response = await client.post(
        "/v1/requests", headers=officer_headers, json=request_body(received_at=received_at)
    )
    assert_validation(response, ("received_at",))


@pytest.mark.parametrize(
    "received_at", ["2026-01-01T00:00:00", "2026-01-01", "2026-13-01T00:00:00Z", "", "yesterday"]
)
async def test_naive_or_invalid_received_at_is_422(
    client: AsyncClient, officer_headers: dict[str, str], received_at: str
) -> None:
    response = await client.post(
        "/v1/requests", headers=officer_headers, json=request_body(received_at=received_at)
    )
    assert_validation(response, ("received_at",))


@pytest.mark.parametrize(
    "received_at", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"]
)
async def test_received_at_at_the_start_of_time_is_422_not_500(
    lenient_client: AsyncClient,
    integration_credentials: tuple[str, str],
    integration_headers: dict[str, str],
    received_at: str,
) -> None:
    client_id, secret = integration_credentials
    body = request_body(
        received_at=received_at,
        identity_assertion=identity_assertion(client_id, secret, "jane.doe@example.com"),
    )
    # Was a 500: converting a date this close to datetime.min to UTC or local time overflowed.
    response = await lenient_client.post("/v1/requests", headers=integration_headers, json=body)
    assert response.status_code < 500, response.text
    assert_validation(response, ("received_at",))


# ------------------------------------------------------------------------------ 500s and logs


async def test_unexpected_error_is_problem_500_without_its_message(
    app: FastAPI, lenient_client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError(f"could not mail {GOOD_EMAIL}")

    app.add_api_route("/__test__/explode", explode, methods=["GET"], include_in_schema=False)
    with caplog.at_level(logging.DEBUG):
        response = await lenient_client.get("/__test__/explode")
    assert_problem(response, 500)
    records = [record for record in caplog.records if record.name == "app.errors"]
    assert records and "RuntimeError" in records[0].getMessage()
    assert not any(leaked(record.getMessage()) for record in caplog.records)


async def test_unexpected_error_announces_that_the_connection_closes(app: FastAPI) -> None:
    # Starlette re-raises after answering a 500 and uvicorn then drops the connection: the
    # answer must say so, or a client reusing the connection sees it reset.
    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/__test__/explode", explode, methods=["GET"], include_in_schema=False)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()  # connections queue until uvicorn accepts them: no wait for startup
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="critical"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /__test__/explode HTTP/1.1\r\nHost: t\r\n\r\n")
        await writer.drain()
        # Reads to the end: returns only because the server closes the connection.
        raw = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    finally:
        server.should_exit = True
        await serving
    head = raw.split(b"\r\n\r\n", 1)[0].decode().lower().split("\r\n")
    assert head[0] == "http/1.1 500 internal server error"
    assert "connection: close" in head, head


async def test_an_unexpected_error_is_never_logged_with_its_message(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The server must not print the traceback with the message: messages can name people."""

    async def explode() -> None:
        raise RuntimeError(f"lookup failed for {GOOD_EMAIL}")

    app.add_api_route("/__test__/leak", explode, methods=["GET"], include_in_schema=False)
    _enable_debug_everywhere(caplog)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    # log_config=None: uvicorn keeps its loggers propagating, so the capture sees them.
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /__test__/leak HTTP/1.1\r\nHost: t\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    finally:
        server.should_exit = True
        await serving
    assert raw.startswith(b"HTTP/1.1 500")
    assert GOOD_EMAIL.encode() not in raw
    assert _log_leaks(caplog) == []
    # What an operator needs is still there: the error's type and where it happened.
    assert any(
        "unhandled error: RuntimeError" in record.getMessage() and "explode" in record.getMessage()
        for record in caplog.records
    )


def _enable_debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


def _log_leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = []
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):
            continue  # the test's own HTTP client, not the service
        parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
        if leaked(" ".join(parts)):
            found.append(f"{record.name} {record.levelname}: {record.getMessage()[:200]}")
    return found


async def test_bad_inputs_leave_no_personal_data_in_logs(
    client: AsyncClient,
    officer_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    request_id = await running_request(client, officer_headers, officer_headers)
    _enable_debug_everywhere(caplog)
    for body, _locations in INVALID_BODIES.values():
        await client.post("/v1/requests", headers=officer_headers, json=body)
    await client.post(
        "/v1/requests",
        headers=json_post_headers(officer_headers),
        content=b'{"subject": {"email": "' + GOOD_EMAIL.encode() + b'"',
    )
    await client.post(
        "/v1/requests", headers=officer_headers, json=request_body(subject={"name": f"{NAME}\x00"})
    )
    await client.post(
        "/v1/requests",
        headers={**officer_headers, "Content-Type": "text/plain"},
        content=GOOD_EMAIL.encode(),
    )
    await client.post(
        "/v1/requests",
        headers=officer_headers,
        json=request_body(subject={"email": GOOD_EMAIL}, received_at="2999-01-01T00:00:00Z"),
    )
    await client.post(f"/v1/requests/{request_id}/pause", headers=officer_headers, json={})
    await client.post(
        f"/v1/requests/{request_id}/reject", headers=officer_headers, json={"reason": NAME}
    )
    await client.get(f"/v1/people/{GOOD_EMAIL}", headers=officer_headers)
    await client.get(f"/v1/requests/{GOOD_EMAIL}", headers=officer_headers)
    await client.get("/v1/requests", headers=officer_headers, params={"subject_email": BAD_EMAIL})
    await client.get("/v1/requests", headers=officer_headers, params={"status": GOOD_EMAIL})
    await client.delete(f"/v1/requests?subject_email={GOOD_EMAIL}", headers=officer_headers)
    assert any(record.name == "app.access" for record in caplog.records)
    assert not _log_leaks(caplog), _log_leaks(caplog)


async def _submit_and_look_up_personal_data(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    """Inputs that legitimately reach the database carrying personal data."""
    subject = {"email": GOOD_EMAIL, "name": NAME}
    response = await client.post(
        "/v1/requests", headers=officer_headers, json=request_body(subject=subject)
    )
    assert response.status_code == 201, response.text
    listed = await client.get(
        "/v1/requests", headers=officer_headers, params={"subject_email": GOOD_EMAIL}
    )
    assert len(listed.json()["items"]) == 1
    # Someone pasting an email address as the client id.
    response = await client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": GOOD_EMAIL, "client_secret": "s"},
    )
    assert response.status_code == 401


async def test_sql_logging_hides_parameters(
    client: AsyncClient, officer_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # INFO is "log the SQL" (echo=True); DEBUG would also dump result rows by design.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine.Engine")
    await _submit_and_look_up_personal_data(client, officer_headers)
    assert any(record.name.startswith("sqlalchemy.engine") for record in caplog.records)
    assert not _log_leaks(caplog), _log_leaks(caplog)


async def test_root_debug_logging_leaves_no_personal_data(
    client: AsyncClient, officer_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """``logging.basicConfig(level=DEBUG)``: the drivers must not dump parameters."""
    caplog.set_level(logging.DEBUG)  # the root logger, as an operator would
    await _submit_and_look_up_personal_data(client, officer_headers)
    # The SQLAlchemy engine logger is test_sql_logging_hides_parameters' business.
    caplog.records[:] = [r for r in caplog.records if not r.name.startswith("sqlalchemy.engine")]
    assert not _log_leaks(caplog), _log_leaks(caplog)


async def test_database_errors_do_not_carry_parameters(app: FastAPI) -> None:
    async with app.state.engine.connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            await connection.execute(
                text("SELECT missing FROM no_such_table WHERE x = :value"), {"value": GOOD_EMAIL}
            )
    assert not leaked(str(raised.value)), str(raised.value)


# ------------------------------------------------------------------------------ fuzz

WEIRD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "x" * 5000,
    -1,
    0,
    10**20,
    -(10**20),
    1e308,
    0.5,
    True,
    False,
    [],
    {},
    [None],
    {"": None},
    "🙂",
    "\u202e",
    "\ud800",
    "\x00",
    "'; DROP TABLE requests; --",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00",
    "2999-01-01T00:00:00Z",
    "access",
    "erasure",
    "objection",
    "uk_gdpr",
    "ccpa",
    "email",
    "document",
    "passed",
    "awaiting_fee",
    "manifestly_unfounded",
    "+441632960001",
    "jane@example.com",
    {"email": "jane@example.com"},
    {"changes": [{"field": "address", "requested": "x"}]},
    {"scope": "direct_marketing"},
    {"formats": ["json"], "transmit_to": "https://example.com/"},
    {"formats": ["xml"], "transmit_to": "ftp://x"},
]
KEYS = [
    "type",
    "subject",
    "email",
    "phone",
    "name",
    "customer_id",
    "regulation",
    "received_at",
    "channel",
    "external_ref",
    "details",
    "identity_assertion",
    "method",
    "document_type",
    "code",
    "result",
    "reason",
    "note",
    "summary",
    "explanation",
    "changes",
    "scope",
    "channels",
    "formats",
    "transmit_to",
]
ACTION_TEMPLATES: dict[str, dict[str, Any]] = {
    "verification": DOCUMENT_PASSED,
    "verification/confirm": {"code": "123456"},
    "pause": {"reason": "awaiting_clarification", "note": "n"},
    "resume": {},
    "extend": {"reason": "complex"},
    "reject": {"reason": "excessive", "explanation": "e"},
    "cancel": {"note": "n"},
    "complete": {"summary": "s"},
    "fulfil": {},
}
CREATE_TEMPLATES: list[dict[str, Any]] = [
    request_body(),
    request_body(type="rectification", details={"changes": [{"field": "a", "requested": "b"}]}),
    request_body(type="objection", details={"scope": "profiling", "channels": ["sms"]}),
    request_body(type="portability", details={"formats": ["csv"], "transmit_to": None}),
    request_body(type="erasure", details={"grounds": "g"}, regulation="ccpa"),
    request_body(subject={"phone": "+441632960001"}, received_at="2026-01-01T00:00:00+01:00"),
]


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A random edit of a JSON value: replace, drop, add, retype or nest."""
    if isinstance(value, dict) and value and depth < 4 and rng.random() < 0.6:
        mutated = dict(value)
        key = rng.choice(list(mutated))
        roll = rng.random()
        if roll < 0.2:
            del mutated[key]
        elif roll < 0.35:
            mutated[rng.choice(KEYS)] = rng.choice(WEIRD_VALUES)
        else:
            mutated[key] = _mutate(rng, mutated[key], depth + 1)
        return mutated
    if isinstance(value, list) and value and rng.random() < 0.5:
        return [_mutate(rng, item, depth + 1) for item in value] + rng.choice([[], [value[0]]])
    roll = rng.random()
    if roll < 0.7:
        return rng.choice(WEIRD_VALUES)
    if roll < 0.85:
        return [value]
    return {rng.choice(KEYS): value}


def _fuzz_body(rng: random.Random, template: dict[str, Any]) -> bytes:
    body: Any = template
    for _ in range(rng.randint(1, 3)):
        body = _mutate(rng, body)
    raw = json.dumps(body).encode()
    if rng.random() < 0.08:  # occasionally break the JSON itself
        cut = rng.randint(0, max(len(raw) - 1, 0))
        raw = raw[:cut] + rng.choice([b"", b"{", b"]", b'"', b"\\", b",,"]) + raw[cut + 1 :]
    return raw


async def test_fuzzed_bodies_never_cause_500(
    lenient_client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    client = lenient_client
    rng = random.Random(20260521)
    request_ids = [
        await running_request(client, integration_headers, officer_headers) for _ in range(3)
    ]
    failures: list[str] = []
    for iteration in range(200):
        if iteration % 2 == 0:
            path = "/v1/requests"
            raw = _fuzz_body(rng, rng.choice(CREATE_TEMPLATES))
            headers = rng.choice([officer_headers, integration_headers])
        else:
            action = rng.choice(list(ACTION_TEMPLATES))
            path = f"/v1/requests/{rng.choice(request_ids)}/{action}"
            raw = _fuzz_body(rng, ACTION_TEMPLATES[action])
            headers = officer_headers
        response = await client.post(path, headers=json_post_headers(headers), content=raw)
        label = f"#{iteration} POST {path} {raw[:200]!r}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code}")
        elif response.status_code >= 400:
            if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
                failures.append(f"{label}: {response.status_code} without problem+json")
            elif response.json().get("status") != response.status_code:
                failures.append(f"{label}: problem status differs")
    assert not failures, "\n".join(failures)
