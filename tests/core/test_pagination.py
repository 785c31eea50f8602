"""Every keyset list answers a cursor it did not issue with 400 problem+json, never 500.

Hypothesis throws arbitrary strings, arbitrary bytes and crafted base64 JSON (wrong shapes,
out-of-range dates, offsets and ids) at each list route, on SQLite and PostgreSQL. Cursors of
the shape the service issues must page normally (200). The examples are derandomized and
bounded, so a run is deterministic and takes a few seconds per route.
"""

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.pagination import encode_cursor, encode_id_cursor
from tests.factories import create_request

PROBLEM_JSON = "application/problem+json"
EXAMPLES_PER_ROUTE = 120
MAX_CURSOR_LENGTH = 500  # every route declares it; longer is a 422 validation error


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64_json(value: Any) -> str:
    return _b64(json.dumps(value).encode())


# A NUL in a JSON body is refused before any route (422, tests/core/test_errors.py).
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=6,
)
_offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Any date Python can hold, with any offset it accepts: the extremes overflow in UTC.
_timestamps = st.one_of(
    st.datetimes(timezones=_offsets).map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),  # naive
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]),
    _json_values,
)
_row_ids = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex), _json_values)
ARBITRARY = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=MAX_CURSOR_LENGTH),
    st.binary(max_size=300).map(_b64),
    _json_values.map(_b64_json),
)
# Base64 JSON in the shape of a (created_at, id) cursor, or nearly: any value in either place.
KEYSET_SHAPED = st.one_of(
    st.tuples(_timestamps, _row_ids).map(lambda pair: _b64_json(list(pair))),
    st.lists(st.one_of(_timestamps, _row_ids), max_size=4).map(_b64_json),
    st.builds(encode_cursor, st.datetimes(timezones=st.just(UTC)), st.uuids()).map(
        lambda cursor: cursor[:-1]
    ),
)
# "e" and an audit event id, or nearly: any integer, any text.
ID_SHAPED = st.one_of(
    st.integers().map(lambda n: _b64(f"e{n}".encode())),
    _text.map(lambda text: _b64(f"e{text}".encode())),
    st.integers(0, 2**62 - 1).map(lambda n: encode_id_cursor(n) + "A"),
)
# What the service itself hands out as next_cursor.
GENUINE_KEYSET = st.builds(encode_cursor, st.datetimes(timezones=st.just(UTC)), st.uuids())
GENUINE_ID = st.integers(0, 2**62 - 1).map(encode_id_cursor)
CRAFTED = (ARBITRARY, KEYSET_SHAPED, ID_SHAPED)


def cursors(genuine: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, bool]]:
    """Crafted cursors and the route's own kind, each flagged True when the service issues it."""
    return st.one_of(
        *(crafted.map(lambda cursor: (cursor, False)) for crafted in CRAFTED),
        genuine.map(lambda cursor: (cursor, True)),
    )


Call = Callable[[str], Coroutine[Any, Any, Response]]


@pytest.fixture
async def lenient_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A 500 comes back as a response the property can assert on, not as an exception."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _route_call(
    route: str, client: AsyncClient, headers: dict[str, str]
) -> tuple[Call, st.SearchStrategy[str]]:
    """How to ask ``route`` for a page after ``cursor``, and the cursors it issues itself."""
    if route == "search":

        async def search(cursor: str) -> Response:
            return await client.post(
                "/v1/requests/search", headers=headers, json={"cursor": cursor}
            )

        return search, GENUINE_KEYSET
    paths = {
        "requests": "/v1/requests",
        "webhooks": "/v1/webhooks",
        "suppressions": "/v1/suppressions",
        "data-sources": "/v1/data-sources",
    }
    genuine = GENUINE_KEYSET
    if route == "events":
        request_id = (await create_request(client, headers))["id"]
        paths[route] = f"/v1/requests/{request_id}/events"
        genuine = GENUINE_ID
    if route == "deliveries":
        created = await client.post(
            "/v1/webhooks", headers=headers, json={"url": "http://127.0.0.1:9/hooks"}
        )
        assert created.status_code == 201, created.text
        paths[route] = f"/v1/webhooks/{created.json()['id']}/deliveries"
    path = paths[route]

    async def get(cursor: str) -> Response:
        return await client.get(path, headers=headers, params={"cursor": cursor})

    return get, genuine


def _assert_answer(response: Response, cursor: str, *, genuine: bool) -> None:
    if len(cursor) > MAX_CURSOR_LENGTH:
        assert response.status_code == 422, response.text
        return
    if genuine or response.status_code == 200:
        # A crafted cursor may happen to be well formed; then it simply pages.
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"items", "next_cursor"}
        return
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["title"] == "Invalid cursor"


@pytest.mark.parametrize(
    "route",
    ["requests", "search", "events", "webhooks", "deliveries", "suppressions", "data-sources"],
)
async def test_any_cursor_is_a_page_or_400_never_500(
    lenient_client: AsyncClient, admin_headers: dict[str, str], route: str
) -> None:
    call, genuine_cursors = await _route_call(route, lenient_client, admin_headers)
    loop = asyncio.get_running_loop()

    # Hypothesis drives a plain function; it runs in a thread and hands each HTTP call back
    # to this test's event loop, where the app and its database connections live.
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(example=cursors(genuine_cursors))
    # The two cursors of the report: a number for the id, a date that overflows in UTC.
    @example(example=(_b64_json(["2026-01-01T00:00:00+00:00", 1]), False))
    @example(example=(_b64_json(["0001-01-01T00:00:00+14:00", str(uuid.UUID(int=0))]), False))
    def any_cursor(example: tuple[str, bool]) -> None:
        cursor, genuine = example
        response = asyncio.run_coroutine_threadsafe(call(cursor), loop).result(timeout=30)
        _assert_answer(response, cursor, genuine=genuine)

    await asyncio.to_thread(any_cursor)
