"""Data sources API, on SQLite and PostgreSQL, against real sources.

``sql`` sources are the demo CRM (an SQLite file built per test) and a small CRM in its own
PostgreSQL schema reached with a password (the test server trusts local connections, so the
password is accepted and ignored: exactly what is needed to check it never comes back).
``http`` sources are tests/http_source_server.py on loopback.
"""

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlmodel import col

from app.core.crypto import decrypt_secret
from app.core.time import utcnow
from app.data_sources import service as data_sources
from app.demo import create_demo_crm, load_dataset_map
from app.models import Client, DataSource
from tests.conftest import ADMIN_ID, TEST_SECRET_KEY, get_token, new_client
from tests.http_source_server import HttpSourceServer

PROBLEM_JSON = "application/problem+json"
PG_PASSWORD = "pg-Secret-7f3a9c"  # trust auth ignores it
HTTP_TOKEN = "http-Token-b41e07"
UNREACHABLE = "http://127.0.0.1:9/crm"  # the discard port: nothing listens there


@pytest.fixture
def demo_crm(tmp_path: Path) -> Path:
    return create_demo_crm(tmp_path / "crm.db", contacts=20)


def sql_body(demo_crm: Path, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "demo",
        "kind": "sql",
        "description": "The demo CRM",
        "url": f"sqlite:///{demo_crm}",
        "dataset_map": load_dataset_map(),
    }
    body.update(overrides)
    return body


async def register(
    client: AsyncClient, headers: dict[str, str], body: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    response = await client.post("/v1/data-sources", headers=headers, json=body)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    return dict(response.json())


async def stored(app: FastAPI, source_id: str) -> DataSource:
    async with app.state.sessionmaker() as session:
        source = await session.get(DataSource, uuid.UUID(source_id))
        assert source is not None
        return source


def row_text(source: DataSource) -> str:
    """Every column of the row as text, to search for a credential in plaintext."""
    return json.dumps(source.model_dump(mode="json"))


# ------------------------------------------------------------------------------ PostgreSQL CRM

PG_SCHEMA_SQL = """
CREATE TABLE {schema}.contacts (
    customer_id TEXT PRIMARY KEY, email TEXT, full_name TEXT
);
CREATE TABLE {schema}.orders (
    order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, amount NUMERIC NOT NULL
);
INSERT INTO {schema}.contacts VALUES ('C-1001', 'jane.doe@example.com', 'Jane Doe');
INSERT INTO {schema}.orders VALUES ('O-1', 'C-1001', 149.99);
"""


def pg_dataset_map(schema: str) -> str:
    """The map as YAML text, as an admin would paste it."""
    return yaml.safe_dump(
        {
            "schema": schema,
            "subject_table": "contacts",
            "categories": {
                "identity": {"description": "Name and number", "erasure": "delete"},
                "contact": {"description": "Email", "erasure": "delete"},
                "financial": {
                    "description": "Orders",
                    "erasure": "retain",
                    "retain_reason": "financial records, 6 years, HMRC",
                },
            },
            "relations": [{"from": "orders.customer_id", "to": "contacts.customer_id"}],
            "tables": {
                "contacts": {
                    "primary_key": "customer_id",
                    "identity_columns": {"email": "email", "customer_id": "customer_id"},
                    "columns": {
                        "customer_id": {"category": "identity", "provided_by_subject": False},
                        "email": {"category": "contact", "provided_by_subject": True},
                        "full_name": {"category": "identity", "provided_by_subject": True},
                    },
                },
                "orders": {
                    "primary_key": "order_id",
                    "identity_columns": {"customer_id": "customer_id"},
                    "columns": {
                        "order_id": {"category": "financial", "provided_by_subject": False},
                        "customer_id": {"category": "financial", "provided_by_subject": False},
                        "amount": {"category": "financial", "provided_by_subject": True},
                    },
                },
            },
        }
    )


@pytest.fixture
def pg_crm(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """(URL with a password, schema) of a small CRM in its own PostgreSQL schema."""
    schema = f"crm_{uuid.uuid4().hex[:10]}"
    url = make_url(postgres_server_url).set(password=PG_PASSWORD)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f"CREATE SCHEMA {schema};" + PG_SCHEMA_SQL.format(schema=schema)))
    yield url.render_as_string(hide_password=False), schema
    asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


# ------------------------------------------------------------------------------ sql


async def test_register_sql_source_on_the_demo_crm(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    body = await register(client, admin_headers, sql_body(demo_crm))
    assert body["name"] == "demo" and body["kind"] == "sql"
    assert body["description"] == "The demo CRM"
    assert body["has_credentials"] is True and body["active"] is True
    assert body["last_tested_at"] is not None and body["last_test_ok"] is True
    config = body["config"]
    assert config["url"] == f"sqlite:///{demo_crm}"
    summary = config["dataset_map"]
    assert summary["subject_table"] == "contacts"
    assert set(summary["tables"]) == set(load_dataset_map()["tables"])
    assert summary["categories"]["financial"] == "retain"
    assert summary["categories"]["contact"] == "delete"
    assert "HMRC" in summary["retained"]["financial"]

    source = await stored(app, body["id"])
    assert source.config["dataset_map"] == load_dataset_map()
    assert source.secret_config_encrypted is not None
    assert f"sqlite:///{demo_crm}" not in source.secret_config_encrypted
    secret = decrypt_secret(source.secret_config_encrypted, secret_keys=[TEST_SECRET_KEY])
    assert json.loads(secret or "{}") == {"url": f"sqlite:///{demo_crm}"}


async def test_postgresql_source_password_never_shown_nor_stored_in_plaintext(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    pg_crm: tuple[str, str],
) -> None:
    url, schema = pg_crm
    assert PG_PASSWORD in url
    created = await register(
        client,
        admin_headers,
        {"name": "pg_crm", "kind": "sql", "url": url, "dataset_map": pg_dataset_map(schema)},
    )
    parts = make_url(url)
    assert created["config"]["url"] == (
        f"postgresql+asyncpg://{parts.username}@{parts.host}:{parts.port}/{parts.database}"
    )
    assert created["config"]["dataset_map"]["tables"] == ["contacts", "orders"]

    answers = [
        created,
        (await client.get(f"/v1/data-sources/{created['id']}", headers=admin_headers)).json(),
        (await client.get("/v1/data-sources", headers=admin_headers)).json(),
        (await client.post(f"/v1/data-sources/{created['id']}/test", headers=admin_headers)).json(),
    ]
    assert answers[3]["ok"] is True, answers[3]
    for answer in answers:
        assert PG_PASSWORD not in json.dumps(answer)
    source = await stored(app, created["id"])
    assert PG_PASSWORD not in row_text(source)
    secret = decrypt_secret(source.secret_config_encrypted or "", secret_keys=[TEST_SECRET_KEY])
    assert json.loads(secret or "{}") == {"url": url}


async def test_dataset_map_that_does_not_match_the_database_fails_the_test(
    client: AsyncClient, admin_headers: dict[str, str], pg_crm: tuple[str, str]
) -> None:
    url, schema = pg_crm
    dataset_map = yaml.safe_load(pg_dataset_map(schema))
    dataset_map["tables"]["contacts"]["columns"]["date_of_birth"] = {
        "category": "identity",
        "provided_by_subject": True,
    }
    problem = await register(
        client,
        admin_headers,
        {"name": "pg_crm", "kind": "sql", "url": url, "dataset_map": dataset_map},
        status=422,
    )
    assert problem["title"] == "Connection test failed"
    assert "contacts.date_of_birth" in problem["detail"]
    assert PG_PASSWORD not in json.dumps(problem)


async def test_yaml_and_json_text_maps_are_accepted(
    client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    as_yaml = yaml.safe_dump(load_dataset_map())
    as_json = json.dumps(load_dataset_map())
    for name, text in (("as_yaml", as_yaml), ("as_json", as_json)):
        body = await register(
            client, admin_headers, sql_body(demo_crm, name=name, dataset_map=text)
        )
        assert body["config"]["dataset_map"]["subject_table"] == "contacts"


async def test_bad_dataset_map_lists_every_problem(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    dataset_map = load_dataset_map()
    del dataset_map["categories"]["financial"]["retain_reason"]
    dataset_map["tables"]["contacts"]["columns"]["email"]["category"] = "emails"
    problem = await register(
        client, admin_headers, sql_body(demo_crm, dataset_map=dataset_map), status=422
    )
    assert problem["title"] == "Invalid dataset map"
    messages = [error["msg"] for error in problem["errors"]]
    assert "category financial is retained without a retain_reason" in messages
    assert any("contacts.email has unknown category 'emails'" in m for m in messages)
    assert all(error["loc"] == ["body", "dataset_map"] for error in problem["errors"])
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(DataSource))).all() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("tables: [unclosed", "not valid YAML"), ('{"tables": ', "not valid JSON")],
)
async def test_unparsable_dataset_map_text(
    client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path, text: str, expected: str
) -> None:
    problem = await register(
        client, admin_headers, sql_body(demo_crm, dataset_map=text), status=422
    )
    assert any(expected in error["msg"] for error in problem["errors"])


def map_text_with(key: str, raw_yaml_value: str) -> str:
    """The demo map as YAML text, its identity category carrying ``key: <raw_yaml_value>``."""
    dataset_map = load_dataset_map()
    dataset_map["categories"]["identity"][key] = "PLACEHOLDER"
    return yaml.safe_dump(dataset_map).replace(f"{key}: PLACEHOLDER", f"{key}: {raw_yaml_value}")


async def test_yaml_values_json_cannot_hold_are_stored_as_text(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    text = map_text_with("reviewed", "2026-11-01")  # YAML reads a date
    body = await register(client, admin_headers, sql_body(demo_crm, dataset_map=text))
    source = await stored(app, body["id"])
    assert source.config["dataset_map"]["categories"]["identity"]["reviewed"] == "2026-11-01"


async def test_yaml_alias_expansion_is_bounded(
    client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    # Nine levels of ten aliases each: a billion strings if expanded.
    levels = ["&l0 [" + ", ".join(["lol"] * 10) + "]"]
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = map_text_with("notes", "[" + ", ".join(levels) + "]")
    notes = yaml.safe_load(text)["categories"]["identity"]["notes"]
    assert notes[8][0] is notes[8][1]  # shared, so small until something expands it
    problem = await register(client, admin_headers, sql_body(demo_crm, dataset_map=text), 422)
    assert problem["title"] == "Invalid dataset map"
    assert "more than" in problem["detail"]


async def test_missing_sqlite_file_fails_the_connection_test(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "crm.db"
    problem = await register(client, admin_headers, sql_body(missing), status=422)
    assert problem["title"] == "Connection test failed"
    assert "does not exist" in problem["detail"]
    assert str(missing) not in json.dumps(problem)
    assert not missing.exists()  # the test did not create an empty database
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(DataSource))).all() == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:pw-Leak-91@db.internal:notaport/crm",
        "not a database url pw-Leak-91",
        "://pw-Leak-91",
    ],
)
async def test_unparsable_url_is_422_without_echo(
    client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path, url: str
) -> None:
    problem = await register(client, admin_headers, sql_body(demo_crm, url=url), status=422)
    assert problem["title"] == "Invalid database URL"
    assert "pw-Leak-91" not in json.dumps(problem)


async def test_unsupported_driver_fails_the_connection_test_without_echo(
    client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    url = "mysql+pymysql://app:pw-Leak-91@db.internal/crm"
    problem = await register(client, admin_headers, sql_body(demo_crm, url=url), status=422)
    assert problem["title"] == "Connection test failed"
    assert "pw-Leak-91" not in json.dumps(problem)


def test_redacted_url_drops_password_and_unsafe_query() -> None:
    url = make_url(
        "postgresql+asyncpg://app:s3cr%40t@db.internal:5432/crm?sslmode=require&password=x"
    )
    assert data_sources.redacted_url(url) == (
        "postgresql+asyncpg://app@db.internal:5432/crm?sslmode=require"
    )


# ------------------------------------------------------------------------------ http


async def test_register_http_source_with_token(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with HttpSourceServer(token=HTTP_TOKEN) as server:
        body = await register(
            client,
            admin_headers,
            {
                "name": "billing",
                "kind": "http",
                "base_url": server.base_url,
                "auth_token": HTTP_TOKEN,
            },
        )
        health = server.requests_to("/health")
        assert health and health[-1].headers["authorization"] == f"Bearer {HTTP_TOKEN}"
        tested = await client.post(f"/v1/data-sources/{body['id']}/test", headers=admin_headers)
    assert body["config"] == {"base_url": server.base_url}
    assert body["has_credentials"] is True
    assert tested.status_code == 200 and tested.json()["ok"] is True
    assert HTTP_TOKEN not in json.dumps(body) + tested.text
    source = await stored(app, body["id"])
    assert HTTP_TOKEN not in row_text(source)
    secret = decrypt_secret(source.secret_config_encrypted or "", secret_keys=[TEST_SECRET_KEY])
    assert json.loads(secret or "{}") == {"auth_token": HTTP_TOKEN}


async def test_http_source_without_token(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with HttpSourceServer(token=None) as server:
        body = await register(
            client, admin_headers, {"name": "open", "kind": "http", "base_url": server.base_url}
        )
    assert body["has_credentials"] is False


async def test_http_source_with_wrong_token_fails_the_test(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with HttpSourceServer(token=HTTP_TOKEN) as server:
        problem = await register(
            client,
            admin_headers,
            {
                "name": "billing",
                "kind": "http",
                "base_url": server.base_url,
                "auth_token": "wrong-Token-5d2c",
            },
            status=422,
        )
    assert problem["title"] == "Connection test failed"
    assert "401" in problem["detail"]
    assert "wrong-Token-5d2c" not in json.dumps(problem)


async def test_unreachable_http_source_fails_the_test(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    problem = await register(
        client,
        admin_headers,
        {"name": "billing", "kind": "http", "base_url": UNREACHABLE, "auth_token": HTTP_TOKEN},
        status=422,
    )
    assert problem["title"] == "Connection test failed"
    assert HTTP_TOKEN not in json.dumps(problem)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("ftp://files.internal/crm", "must use http or https"),
        ("https://user:pw-Leak-91@crm.internal/dsr", "must not contain credentials"),
        ("http://169.254.169.254/latest", "cloud metadata"),
        ("https://crm.internal/dsr?key=pw-Leak-91", "query string"),
        ("http://[::1/crm", "not a valid URL"),
        ("https:///dsr", "has no host"),
    ],
)
async def test_bad_base_url_is_422_without_echo(
    client: AsyncClient, admin_headers: dict[str, str], base_url: str, expected: str
) -> None:
    problem = await register(
        client, admin_headers, {"name": "x", "kind": "http", "base_url": base_url}, status=422
    )
    assert problem["title"] == "Invalid base URL"
    assert expected in problem["detail"]
    assert "pw-Leak-91" not in json.dumps(problem)


# ------------------------------------------------------------------------------ task


async def test_register_task_source(
    client: AsyncClient, admin_headers: dict[str, str], integration_credentials: tuple[str, str]
) -> None:
    assignee, _secret = integration_credentials
    body = await register(
        client,
        admin_headers,
        {
            "name": "paper_files",
            "kind": "task",
            "assignee_client_id": assignee,
            "instructions": "Search the filing cabinets.",
        },
    )
    assert body["config"] == {
        "assignee_client_id": assignee,
        "instructions": "Search the filing cabinets.",
    }
    assert body["has_credentials"] is False
    tested = await client.post(f"/v1/data-sources/{body['id']}/test", headers=admin_headers)
    assert tested.json()["ok"] is True


async def test_task_source_needs_an_active_assignee(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    problem = await register(
        client,
        admin_headers,
        {"name": "paper", "kind": "task", "assignee_client_id": "nobody-here"},
        status=422,
    )
    assert problem["title"] == "Unknown assignee"
    assert problem["errors"][0]["loc"] == ["body", "assignee_client_id"]

    assignee, _secret = integration_credentials
    created = await register(
        client, admin_headers, {"name": "paper", "kind": "task", "assignee_client_id": assignee}
    )
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Client).where(col(Client.client_id) == assignee).values(active=False)
        )
        await session.commit()
    tested = await client.post(f"/v1/data-sources/{created['id']}/test", headers=admin_headers)
    assert tested.status_code == 200
    assert tested.json()["ok"] is False
    assert "assignee" in tested.json()["detail"]
    problem = await register(
        client,
        admin_headers,
        {"name": "paper2", "kind": "task", "assignee_client_id": assignee},
        status=422,
    )
    assert problem["title"] == "Unknown assignee"


# ------------------------------------------------------------------------------ body rules


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # A real assignee: the name rules, not the assignee check, must be what refuses these.
        ({"name": "Has Caps", "kind": "task", "assignee_client_id": ADMIN_ID}, ["task", "name"]),
        ({"name": "", "kind": "task", "assignee_client_id": ADMIN_ID}, ["task", "name"]),
        ({"name": "a" * 101, "kind": "task", "assignee_client_id": ADMIN_ID}, ["task", "name"]),
        ({"name": "ftp", "kind": "ftp", "host": "files"}, ["kind"]),
        (
            {"name": "extra", "kind": "http", "base_url": "https://x.example", "password": "p"},
            ["http", "password"],
        ),
        ({"name": "nomap", "kind": "sql", "url": "sqlite:///x.db"}, ["sql", "dataset_map"]),
    ],
    ids=["caps", "empty", "long", "unknown-kind", "extra-field", "no-map"],
)
async def test_invalid_bodies_are_422(
    client: AsyncClient, admin_headers: dict[str, str], body: dict[str, Any], field: list[str]
) -> None:
    problem = await register(client, admin_headers, body, status=422)
    assert [error["loc"] for error in problem["errors"]] == [["body", *field]]


async def test_duplicate_name_is_409_and_free_again_after_delete(
    client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    first = await register(client, admin_headers, sql_body(demo_crm))
    problem = await register(client, admin_headers, sql_body(demo_crm), status=409)
    assert problem["title"] == "Data source name taken"
    response = await client.delete(f"/v1/data-sources/{first['id']}", headers=admin_headers)
    assert response.status_code == 204
    again = await register(client, admin_headers, sql_body(demo_crm))
    assert again["id"] != first["id"] and again["name"] == "demo"


# ------------------------------------------------------------------------------ list, delete, test


async def test_list_get_delete(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    ids, start = [], utcnow()
    for offset, name in enumerate(("first", "second", "third")):
        app.state.clock = lambda at=start + timedelta(seconds=offset): at
        ids.append((await register(client, admin_headers, sql_body(demo_crm, name=name)))["id"])
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/data-sources", headers=admin_headers, params=params)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first

    got = await client.get(f"/v1/data-sources/{ids[0]}", headers=admin_headers)
    assert got.status_code == 200 and got.json()["name"] == "first"

    assert (
        await client.delete(f"/v1/data-sources/{ids[0]}", headers=admin_headers)
    ).status_code == 204
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/test")):
        response = await client.request(
            method, f"/v1/data-sources/{ids[0]}{suffix}", headers=admin_headers
        )
        assert response.status_code == 404, (method, suffix)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    listed = await client.get("/v1/data-sources", headers=admin_headers)
    assert {item["id"] for item in listed.json()["items"]} == set(ids[1:])

    source = await stored(app, ids[0])
    assert source.deleted_at is not None and source.active is False
    assert source.secret_config_encrypted is None  # credentials destroyed
    async with app.state.sessionmaker() as session:
        active = await data_sources.active_sources(session)
    assert [str(s.id) for s in active] == ids[1:]  # oldest first

    missing = await client.get(f"/v1/data-sources/{uuid.uuid4()}", headers=admin_headers)
    assert missing.status_code == 404
    bad_cursor = await client.get("/v1/data-sources?cursor=nonsense", headers=admin_headers)
    assert bad_cursor.status_code == 400


async def test_test_endpoint_reports_failure_with_200_and_records_it(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], demo_crm: Path
) -> None:
    created = await register(client, admin_headers, sql_body(demo_crm))
    later = utcnow() + timedelta(minutes=5)
    app.state.clock = lambda: later

    passed = await client.post(f"/v1/data-sources/{created['id']}/test", headers=admin_headers)
    assert passed.status_code == 200, passed.text
    assert passed.json()["ok"] is True and passed.json()["detail"] is None

    await asyncio.to_thread(demo_crm.unlink)
    failed = await client.post(f"/v1/data-sources/{created['id']}/test", headers=admin_headers)
    assert failed.status_code == 200, failed.text
    result = failed.json()
    assert result["ok"] is False and "does not exist" in result["detail"]
    assert str(demo_crm) not in result["detail"]
    assert not await asyncio.to_thread(demo_crm.exists)

    shown = (await client.get(f"/v1/data-sources/{created['id']}", headers=admin_headers)).json()
    assert shown["last_test_ok"] is False and shown["last_test_detail"] == result["detail"]
    assert shown["last_tested_at"] == result["tested_at"]
    assert shown["last_tested_at"] != created["last_tested_at"]


# ------------------------------------------------------------------------------ who may


async def test_only_admins_manage_data_sources(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    demo_crm: Path,
) -> None:
    created = await register(client, admin_headers, sql_body(demo_crm))
    calls = [
        ("POST", "/v1/data-sources", sql_body(demo_crm, name="other")),
        ("GET", "/v1/data-sources", None),
        ("GET", f"/v1/data-sources/{created['id']}", None),
        ("DELETE", f"/v1/data-sources/{created['id']}", None),
        ("POST", f"/v1/data-sources/{created['id']}/test", None),
    ]
    for headers in (officer_headers, integration_headers):
        for method, url, body in calls:
            response = await client.request(method, url, headers=headers, json=body)
            assert response.status_code == 403, (method, url, response.text)
            assert "sources:manage" in response.json()["detail"]
    for method, url, body in calls:
        response = await client.request(method, url, json=body)
        assert response.status_code == 401, (method, url)
    listed = await client.get("/v1/data-sources", headers=admin_headers)
    assert [item["name"] for item in listed.json()["items"]] == ["demo"]


async def test_narrow_admin_token_without_sources_scope_is_403(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    admin_id, admin_secret = await new_client(client, admin_headers, "admin")
    response = await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": admin_id,
            "client_secret": admin_secret,
            "scope": "clients:manage",
        },
    )
    narrow = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert (await client.get("/v1/data-sources", headers=narrow)).status_code == 403
    full = {"Authorization": f"Bearer {await get_token(client, admin_id, admin_secret)}"}
    assert (await client.get("/v1/data-sources", headers=full)).status_code == 200
