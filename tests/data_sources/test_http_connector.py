"""The ``http`` connector against a real HTTP source on loopback (tests/http_source_server.py)."""

import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.crypto import encrypt_secret
from app.data_sources.connectors import RecordBatch, SourceError, SubjectIdentity, connector_for
from app.data_sources.connectors.http import HttpConnector
from app.models import DataSource
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.http_source_server import JANE, HttpSourceServer

TOKEN = "source-token-0123456789"
REQUEST_ID = uuid.UUID("00000000-0000-4000-8000-000000000042")
JANE_IDENTITY = SubjectIdentity(email=JANE["email"], name=JANE["name"])


def settings(**overrides: Any) -> Any:
    return make_settings("sqlite+aiosqlite:///unused.db", **overrides)


@pytest.fixture
async def server() -> AsyncIterator[HttpSourceServer]:
    async with HttpSourceServer(token=TOKEN) as running:
        yield running


def connect(server: HttpSourceServer, *, token: str | None = TOKEN, **overrides: Any) -> Any:
    return HttpConnector(
        "billing",
        server.base_url,
        settings(**overrides),
        auth_token=token,
        request_id=REQUEST_ID,
    )


@pytest.fixture
async def connector(server: HttpSourceServer) -> AsyncIterator[HttpConnector]:
    source = connect(server)
    yield source
    await source.close()


async def collect_all(
    connector: HttpConnector, identity: SubjectIdentity, *, provided_only: bool = False
) -> list[RecordBatch]:
    return [batch async for batch in connector.collect(identity, provided_only=provided_only)]


# ------------------------------------------------------------------------------ each endpoint


async def test_health_with_the_bearer_token(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    await connector.test()
    (health,) = server.requests_to("/health")
    assert health.method == "GET"
    assert health.headers["authorization"] == f"Bearer {TOKEN}"


async def test_access_sends_the_identity_and_answers_batches(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    batches = await collect_all(connector, SubjectIdentity(email="JANE.DOE@example.com"))
    assert [(batch.table, len(batch.rows)) for batch in batches] == [
        ("contacts", 1),
        ("orders", 2),
    ]
    contacts = batches[0]
    assert contacts.source == "billing"
    assert contacts.columns[contacts.record_id_index].name == "customer_id"
    assert contacts.rows[0][contacts.record_id_index] == "C-1001"
    assert [column.category for column in contacts.columns][:3] == [
        "identity",
        "identity",
        "contact",
    ]
    assert all(isinstance(row, tuple) for batch in batches for row in batch.rows)
    (sent,) = server.requests_to("/access")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.json == {
        "request_id": str(REQUEST_ID),
        "identity": {
            "email": "JANE.DOE@example.com",
            "phone": None,
            "customer_id": None,
            "name": None,
        },
        "provided_only": False,
        "cursor": None,
        "limit": 2000,
    }


async def test_access_pages_through_the_cursor(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    server.page_size = 1
    batches = await collect_all(connector, SubjectIdentity(customer_id="C-1001"))
    assert [(batch.table, len(batch.rows)) for batch in batches] == [
        ("contacts", 1),
        ("orders", 1),
        ("orders", 1),
    ]
    cursors = [recorded.json["cursor"] for recorded in server.requests_to("/access")]
    assert cursors[0] is None
    assert len(cursors) >= 3 and len(set(cursors)) == len(cursors)


async def test_a_big_page_is_cut_into_bounded_batches(server: HttpSourceServer) -> None:
    orders = server.tables["orders"]
    orders.rows += [
        {"order_id": f"O-{index}", "customer_id": "C-1001", "amount": "1.00"}
        for index in range(100, 125)
    ]
    source = connect(server, fulfilment_batch_size=10)
    try:
        batches = await collect_all(source, SubjectIdentity(customer_id="C-1001"))
    finally:
        await source.close()
    assert [len(batch.rows) for batch in batches if batch.table == "orders"] == [10, 10, 7]
    assert server.requests_to("/access")[0].json["limit"] == 10


async def test_provided_only_keeps_provided_columns_and_the_key(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    batches = await collect_all(connector, JANE_IDENTITY, provided_only=True)
    contacts = batches[0]
    assert [column.name for column in contacts.columns] == [
        "customer_id",
        "name",
        "email",
        "phone",
        "postcode",
    ]
    assert server.requests_to("/access")[0].json["provided_only"] is True


async def test_provided_only_trims_a_source_that_sends_everything(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    everything = {
        "tables": [
            {
                "table": "contacts",
                "primary_key": "customer_id",
                "columns": [
                    {"name": "segment", "category": "marketing", "provided_by_subject": False},
                    {"name": "customer_id", "category": "identity", "provided_by_subject": False},
                    {"name": "email", "category": "contact", "provided_by_subject": True},
                ],
                "rows": [["smb", "C-1001", "jane.doe@example.com"]],
            },
            {
                "table": "scores",
                "primary_key": "id",
                "columns": [{"name": "id", "category": "x", "provided_by_subject": False}],
                "rows": [[1]],
            },
        ],
        "next_cursor": None,
    }
    server.fail("/access", status=200, body=json.dumps(everything).encode())
    (batch,) = await collect_all(connector, JANE_IDENTITY, provided_only=True)
    assert [column.name for column in batch.columns] == ["customer_id", "email"]
    assert batch.record_id_index == 0
    assert batch.rows == [("C-1001", "jane.doe@example.com")]


async def test_nobody_found_yields_nothing(connector: HttpConnector) -> None:
    assert await collect_all(connector, SubjectIdentity(email="nobody@example.com")) == []


async def test_count(server: HttpSourceServer, connector: HttpConnector) -> None:
    assert await connector.count(JANE_IDENTITY) == 3
    server.fail("/count", status=404)
    assert await connector.count(JANE_IDENTITY) == 0  # optional endpoint: unknown


async def test_erase(server: HttpSourceServer, connector: HttpConnector) -> None:
    outcome = await connector.erase(SubjectIdentity(phone=JANE["phone"]))
    assert outcome.source == "billing"
    assert outcome.deleted_rows == {"contacts": 1}
    assert outcome.anonymised_rows == {"orders": 2}
    (retained,) = outcome.retained
    assert (retained.category, retained.tables) == ("financial", ("orders",))
    assert "HMRC" in retained.reason
    assert server.rows_of("contacts", {"email": JANE["email"]}) == []
    orders = server.rows_of("orders", {"customer_id": "C-1001"})
    assert [row["delivery_address"] for row in orders] == [None, None]
    assert len(server.rows_of("contacts")) == 1  # Bob is still there
    assert server.requests_to("/erase")[0].json["request_id"] == str(REQUEST_ID)
    again = await connector.erase(SubjectIdentity(phone=JANE["phone"]))
    assert (again.deleted_rows, again.anonymised_rows, again.retained) == ({}, {}, [])


async def test_rectify(server: HttpSourceServer, connector: HttpConnector) -> None:
    outcome = await connector.rectify(
        JANE_IDENTITY,
        [
            {"field": "postcode", "current": "QA1 4BZ", "requested": "QA9 9ZZ"},
            {"field": "shoe_size", "current": None, "requested": "5"},
        ],
    )
    (change,) = outcome.applied
    assert (change.field, change.table, change.rows, change.before, change.after) == (
        "postcode",
        "contacts",
        1,
        "QA1 4BZ",
        "QA9 9ZZ",
    )
    assert outcome.not_held == ["shoe_size"]
    assert server.requests_to("/rectify")[0].json["changes"][0] == {
        "field": "postcode",
        "current": "QA1 4BZ",
        "requested": "QA9 9ZZ",
    }
    assert server.rows_of("contacts", {"email": JANE["email"]})[0]["postcode"] == "QA9 9ZZ"


async def test_rectify_unsupported(server: HttpSourceServer, connector: HttpConnector) -> None:
    server.fail("/rectify", status=501)
    outcome = await connector.rectify(JANE_IDENTITY, [{"field": "postcode", "requested": "x"}])
    assert (outcome.applied, outcome.not_held) == ([], ["postcode"])


async def test_restrict_on_and_off(server: HttpSourceServer, connector: HttpConnector) -> None:
    on = await connector.restrict(SubjectIdentity(customer_id="C-1001"), restricted=True)
    assert (on.flagged_rows, on.supported) == (3, True)
    assert server.restricted == {
        ("contacts", "C-1001"),
        ("orders", "O-1"),
        ("orders", "O-2"),
    }
    off = await connector.restrict(SubjectIdentity(customer_id="C-1001"), restricted=False)
    assert off.flagged_rows == 3
    assert server.restricted == set()
    assert [r.json["restricted"] for r in server.requests_to("/restrict")] == [True, False]
    server.fail("/restrict", status=501)
    unsupported = await connector.restrict(JANE_IDENTITY, restricted=True)
    assert (unsupported.supported, unsupported.flagged_rows) == (False, 0)


# ------------------------------------------------------------------------------ failures


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_server_errors_and_throttling_are_retryable(
    server: HttpSourceServer, connector: HttpConnector, status: int
) -> None:
    server.fail("/access", status=status, body=b'{"detail": "jane.doe@example.com broke it"}')
    with pytest.raises(SourceError) as raised:
        await collect_all(connector, JANE_IDENTITY)
    assert raised.value.retryable is True
    assert str(raised.value) == f"source billing: POST /access answered {status}"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/access", 400), ("/access", 404), ("/erase", 403), ("/erase", 501), ("/erase", 302)],
)
async def test_client_errors_are_not_retryable_and_never_echo_the_body(
    server: HttpSourceServer, connector: HttpConnector, path: str, status: int
) -> None:
    server.fail(path, status=status, body=b"no such customer jane.doe@example.com")
    with pytest.raises(SourceError) as raised:
        if path == "/access":
            await collect_all(connector, JANE_IDENTITY)
        else:
            await connector.erase(JANE_IDENTITY)
    assert raised.value.retryable is False
    assert str(raised.value) == f"source billing: POST {path} answered {status}"


async def test_a_wrong_token_is_not_retryable(server: HttpSourceServer) -> None:
    source = connect(server, token="wrong")
    try:
        with pytest.raises(SourceError, match="GET /health answered 401") as raised:
            await source.test()
    finally:
        await source.close()
    assert raised.value.retryable is False
    assert "wrong" not in str(raised.value)
    assert server.requests_to("/health")[0].headers["authorization"] == "Bearer wrong"


async def test_no_token_configured_sends_no_authorization(server: HttpSourceServer) -> None:
    source = connect(server, token=None)
    try:
        with pytest.raises(SourceError, match="401"):
            await source.test()
    finally:
        await source.close()
    assert "authorization" not in server.requests_to("/health")[0].headers


async def test_timeouts_are_retryable(server: HttpSourceServer) -> None:
    server.fail("/erase", status=200, delay=3.0)
    source = connect(server, source_timeout=0.5)
    try:
        with pytest.raises(SourceError) as raised:
            await source.erase(JANE_IDENTITY)
    finally:
        await source.close()
    assert raised.value.retryable is True
    assert str(raised.value) == "source billing: POST /erase timed out"


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all: jane.doe@example.com",
        b'["a", "list"]',
        b'{"tables": 5}',
        b'{"tables": [{"table": "t", "primary_key": "id", "columns": [], "rows": []}]}',
        b'{"tables": [{"table": "t", "primary_key": "id", '
        b'"columns": [{"name": "id", "category": "c", "provided_by_subject": false}], '
        b'"rows": [[1, 2]]}]}',
        b'{"tables": [], "next_cursor": 7}',
    ],
)
async def test_malformed_answers_are_not_retryable(
    server: HttpSourceServer, connector: HttpConnector, body: bytes
) -> None:
    server.fail("/access", status=200, body=body)
    with pytest.raises(SourceError) as raised:
        await collect_all(connector, JANE_IDENTITY)
    assert raised.value.retryable is False
    assert "jane" not in str(raised.value)
    assert "POST /access answered" in str(raised.value)


async def test_a_cursor_that_does_not_advance_is_refused(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    page = b'{"tables": [], "next_cursor": "same"}'
    server.fail("/access", status=200, body=page, times=3)
    with pytest.raises(SourceError, match="next_cursor does not advance"):
        await collect_all(connector, JANE_IDENTITY)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/erase", b'{"deleted_rows": {"contacts": "one"}}'),
        ("/erase", b'{"retained": [{"category": "financial"}]}'),
        ("/rectify", b'{"applied": [{"field": "x"}]}'),
        ("/restrict", b'{"flagged_rows": -1}'),
        ("/count", b'{"records": "many"}'),
    ],
)
async def test_malformed_outcomes_are_not_retryable(
    server: HttpSourceServer, connector: HttpConnector, path: str, body: bytes
) -> None:
    server.fail(path, status=200, body=body)
    with pytest.raises(SourceError, match="unexpected shape") as raised:
        if path == "/erase":
            await connector.erase(JANE_IDENTITY)
        elif path == "/rectify":
            await connector.rectify(JANE_IDENTITY, [{"field": "x", "requested": "y"}])
        elif path == "/restrict":
            await connector.restrict(JANE_IDENTITY, restricted=True)
        else:
            await connector.count(JANE_IDENTITY)
    assert raised.value.retryable is False


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_source_is_retryable() -> None:
    source = HttpConnector("billing", f"http://127.0.0.1:{_closed_port()}/crm", settings())
    try:
        with pytest.raises(SourceError) as raised:
            await source.test()
    finally:
        await source.close()
    assert raised.value.retryable is True
    assert str(raised.value) == "source billing: GET /health failed (ConnectError)"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/",
        "http://0.0.0.0:8080/",
        "http://[::]/",
        "http://224.0.0.1/",
    ],
)
async def test_metadata_and_unspecified_addresses_are_refused(base_url: str) -> None:
    source = HttpConnector("billing", base_url, settings())
    try:
        with pytest.raises(SourceError, match="cloud metadata, unspecified") as raised:
            await source.test()
    finally:
        await source.close()
    assert raised.value.retryable is False


async def test_private_addresses_are_allowed(server: HttpSourceServer) -> None:
    # Internal systems live on private networks; "localhost" resolves to loopback.
    base_url = server.base_url.replace("127.0.0.1", "localhost")
    source = HttpConnector("billing", base_url, settings(), auth_token=TOKEN)
    try:
        await source.test()
    finally:
        await source.close()


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("ftp://files.example.com/", "must be an http"),
        ("http://user:pass@crm.example.com/", "must not hold credentials"),
        ("http://crm.example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_base_urls_are_refused(base_url: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as raised:
        HttpConnector("billing", base_url, settings())
    assert raised.value.retryable is False
    assert "pass" not in str(raised.value)


async def test_connector_for_builds_an_http_connector(server: HttpSourceServer) -> None:
    source = DataSource(
        name="billing",
        kind="http",
        config={"base_url": server.base_url},
        secret_config_encrypted=encrypt_secret(
            json.dumps({"auth_token": TOKEN}), secret_key=TEST_SECRET_KEY
        ),
    )
    connector = connector_for(source, settings(), request_id=REQUEST_ID)
    try:
        assert isinstance(connector, HttpConnector)
        await connector.test()
        assert await connector.count(JANE_IDENTITY) == 3
    finally:
        await connector.close()
    assert server.requests_to("/count")[0].json["request_id"] == str(REQUEST_ID)
    no_url = DataSource(name="billing", kind="http", config={})
    with pytest.raises(SourceError, match="no base_url"):
        connector_for(no_url, settings())


def test_the_test_server_works_from_sync_code() -> None:
    with HttpSourceServer(token=None) as running:
        response = httpx.get(f"{running.base_url}/health")
        assert response.status_code == 200


# ------------------------------------------------------------------------------ dry runs


async def test_plans_ask_post_plan_and_change_nothing(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    before = {name: server.rows_of(name) for name in server.tables}

    erasure = await connector.plan_erasure(JANE_IDENTITY)
    rectification = await connector.plan_rectification(
        JANE_IDENTITY,
        [{"field": "postcode", "requested": "QA9 9ZZ"}, {"field": "shoe_size", "requested": "5"}],
    )
    restriction = await connector.plan_restriction(JANE_IDENTITY)
    access = await connector.plan_access(JANE_IDENTITY, provided_only=False)

    assert {name: server.rows_of(name) for name in server.tables} == before
    assert server.restricted == set() and server.kept == {}
    tables = {table.table: table for table in erasure.tables}
    assert (tables["contacts"].deleted, tables["orders"].anonymised) == (1, 2)
    assert tables["orders"].retained == 2
    assert [(kept.category, kept.tables) for kept in erasure.retained] == [
        ("financial", ("orders",))
    ]
    (change,) = rectification.changes
    assert (change.field, change.table, change.rows, change.current) == (
        "postcode",
        "contacts",
        1,
        "QA1 4BZ",
    )
    assert rectification.not_held == ["shoe_size"]
    assert restriction.rows == 3 and restriction.supported
    assert access.tables == {"contacts": 1, "orders": 2}
    assert access.categories["financial"] == 2
    calls = server.requests_to("/plan")
    assert [call.json["request_type"] for call in calls] == [
        "erasure",
        "rectification",
        "restriction",
        "access",
    ]
    assert all(call.json["request_id"] == str(REQUEST_ID) for call in calls)


async def test_without_post_plan_only_access_is_counted_from_its_pages(
    server: HttpSourceServer, connector: HttpConnector
) -> None:
    server.offers_plan = False

    with pytest.raises(SourceError, match="offers no dry run") as refused:
        await connector.plan_erasure(JANE_IDENTITY)
    access = await connector.plan_access(JANE_IDENTITY, provided_only=False)

    assert refused.value.retryable is False
    assert access.tables == {"contacts": 1, "orders": 2}
    assert server.requests_to("/access") and server.requests_to("/erase") == []
