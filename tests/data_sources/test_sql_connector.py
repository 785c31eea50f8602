"""The ``sql`` connector against real databases: the demo CRM on SQLite and a CRM-like schema
on PostgreSQL (integer ids, a boolean restriction flag, a chained relation, masked columns).

Most tests run on both (the ``crm`` fixture); each case describes where Jane Doe's rows are.
"""

import asyncio
import copy
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.crypto import encrypt_secret
from app.data_sources.connectors import (
    RecordBatch,
    SourceError,
    SubjectIdentity,
    connector_for,
    normalise_sql_url,
)
from app.data_sources.connectors.sql import MASK, SqlConnector
from app.demo import JANE_DOE, create_demo_crm, load_dataset_map
from app.models import DataSource
from tests.conftest import (
    IN_CI,
    POSTGRES_URL,
    TEST_SECRET_KEY,
    _create_database,
    _drop_database,
    make_settings,
)

SECRET_PASSWORD = "hunter2-not-for-messages"


def settings(**overrides: Any) -> Any:
    return make_settings("sqlite+aiosqlite:///unused.db", **overrides)


# ------------------------------------------------------------------------------ the cases


@dataclass
class Crm:
    """One source database with Jane Doe in it, and what the tests expect of her."""

    backend: str
    url: str
    dataset_map: dict[str, Any]
    jane: dict[str, str]  # identity kind -> value as stored
    jane_rows: dict[str, int]  # table -> her rows
    deleted: dict[str, int]  # erasure: table -> rows deleted
    anonymised: dict[str, int]  # erasure: table -> rows kept with columns nulled/masked
    retained: dict[str, set[str]]  # erasure: category -> tables
    needles: list[str]  # her values that must not survive in non-retained columns
    restricted_sql: str  # her restriction flag
    # Tables where her kept rows can still be found by her identities after erasure.
    findable_after_erasure: set[str] = field(default_factory=set)

    def connector(self, **overrides: Any) -> SqlConnector:
        return SqlConnector(self.backend, self.url, self.dataset_map, settings(**overrides))

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        engine = create_async_engine(normalise_sql_url(self.url))
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(sql), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    async def snapshot(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every row of every mapped table, by primary key."""
        engine = create_async_engine(normalise_sql_url(self.url))
        tables: dict[str, dict[Any, dict[str, Any]]] = {}
        try:
            async with engine.connect() as connection:
                for name, spec in self.dataset_map["tables"].items():
                    result = await connection.execute(text(f'SELECT * FROM "{name}"'))
                    tables[name] = {
                        row[spec["primary_key"]]: dict(row) for row in result.mappings()
                    }
        finally:
            await engine.dispose()
        return tables


def demo_case(tmp_path: Path) -> Crm:
    db = create_demo_crm(tmp_path / "crm.db", contacts=60)
    return Crm(
        backend="sqlite",
        url=f"sqlite:///{db}",
        dataset_map=load_dataset_map(),
        jane={
            "email": JANE_DOE["email"],
            "phone": JANE_DOE["phone"],
            "customer_id": JANE_DOE["customer_id"],
        },
        jane_rows={
            "contacts": 1,
            "orders": 2,
            "marketing_preferences": 3,
            "call_recordings": 1,
            "survey_responses": 1,
            "event_attendance": 1,
            "web_activity": 1,
        },
        deleted={
            "contacts": 1,
            "marketing_preferences": 3,
            "call_recordings": 1,
            "survey_responses": 1,
            "event_attendance": 1,
            "web_activity": 1,
        },
        anonymised={"orders": 2},
        retained={"financial": {"orders"}},
        needles=[JANE_DOE["email"], JANE_DOE["phone"], "Jane", "Doe", "Brookfield", "QA1 4BZ"],
        restricted_sql="SELECT processing_restricted FROM contacts WHERE customer_id = 'C-1001'",
        findable_after_erasure={"orders"},
    )


PG_SCHEMA = """
CREATE TABLE customers (
    id integer PRIMARY KEY,
    email varchar(200) UNIQUE,
    phone varchar(20),
    first_name varchar(100) NOT NULL,
    last_name varchar(100),
    address text,
    postcode varchar(10),
    date_of_birth date,
    loyalty_points integer,
    is_restricted boolean NOT NULL DEFAULT false
);
CREATE TABLE invoices (
    invoice_no text PRIMARY KEY,
    customer_id integer NOT NULL,
    issued_on date NOT NULL,
    amount numeric(10, 2) NOT NULL,
    billing_name text,
    delivery_address text,
    delivery_postcode varchar(10)
);
CREATE INDEX ix_invoices_customer ON invoices (customer_id);
CREATE TABLE invoice_lines (
    id bigserial PRIMARY KEY,
    invoice_no text NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL
);
CREATE INDEX ix_invoice_lines_invoice ON invoice_lines (invoice_no);
CREATE TABLE support_notes (
    id bigserial PRIMARY KEY,
    customer_id integer,
    written_at timestamptz NOT NULL,
    body text,
    agent_code varchar(4)
);
CREATE TABLE "Consents" (
    id bigserial PRIMARY KEY,
    "customerEmail" text NOT NULL,
    channel text NOT NULL,
    granted boolean NOT NULL
);
"""

JANE_LINES = 250


def _pg_data() -> list[str]:
    lines = ", ".join(
        f"('INV-{1 + index % 3}', 'SKU-{index}', {1 + index % 4})" for index in range(JANE_LINES)
    )
    return [
        "INSERT INTO customers VALUES "
        "(1001, 'Jane.Doe@Example.com', '+441632960001', 'Jane', 'Doe', '14 Brookfield Lane', "
        "'QA1 4BZ', '1984-03-17', 120, false), "
        "(1002, 'bob.smith@example.org', '+447700900123', 'Bob', 'Smith', '9 High Street', "
        "'QB2 7DW', NULL, 5, false)",
        "INSERT INTO invoices VALUES "
        "('INV-1', 1001, '2024-01-02', 149.99, 'Jane Doe', '14 Brookfield Lane', 'QA1 4BZ'), "
        "('INV-2', 1001, '2024-03-04', 36.50, 'Jane Doe', '14 Brookfield Lane', 'QA1 4BZ'), "
        "('INV-3', 1001, '2025-05-06', 12.00, 'Jane Doe', '2 Market Street', 'QB7 2DW'), "
        "('INV-9', 1002, '2025-01-01', 10.00, 'Bob Smith', '9 High Street', 'QB2 7DW')",
        f"INSERT INTO invoice_lines (invoice_no, sku, quantity) VALUES {lines}",
        "INSERT INTO invoice_lines (invoice_no, sku, quantity) VALUES "
        "('INV-9', 'SKU-B1', 1), ('INV-9', 'SKU-B2', 2), ('INV-9', 'SKU-B3', 3)",
        "INSERT INTO support_notes (customer_id, written_at, body, agent_code) VALUES "
        "(1001, '2025-01-01T10:00:00Z', 'Jane Doe asked about 14 Brookfield Lane', 'HA01'), "
        "(1001, '2025-02-01T10:00:00Z', 'Call back on +441632960001', 'TC02'), "
        "(1002, '2025-02-03T10:00:00Z', 'Bob Smith asked for a refund', 'HA01')",
        'INSERT INTO "Consents" ("customerEmail", channel, granted) VALUES '
        "('Jane.Doe@Example.com', 'email', true), ('Jane.Doe@Example.com', 'sms', false), "
        "('bob.smith@example.org', 'email', true)",
    ]


def _column(category: str, provided: bool = False) -> dict[str, Any]:
    return {"category": category, "provided_by_subject": provided}


PG_MAP: dict[str, Any] = {
    "subject_table": "customers",
    "categories": {
        "identity": {"erasure": "delete"},
        "contact": {"erasure": "delete"},
        "financial": {"erasure": "retain", "retain_reason": "financial records, 6 years, HMRC"},
        "support": {"erasure": "mask"},
        "support_log": {"erasure": "retain", "retain_reason": "complaints handling, 2 years"},
        "marketing": {"erasure": "delete"},
    },
    "relations": [
        {"from": "invoices.customer_id", "to": "customers.id"},
        {"from": "invoice_lines.invoice_no", "to": "invoices.invoice_no"},
        {"from": "support_notes.customer_id", "to": "customers.id"},
        {"from": "Consents.customerEmail", "to": "customers.email"},
    ],
    "restriction": {"table": "customers", "column": "is_restricted"},
    "tables": {
        "customers": {
            "primary_key": "id",
            "identity_columns": {"email": "email", "phone": "phone", "customer_id": "id"},
            "columns": {
                "id": _column("identity"),
                "email": _column("contact", True),
                "phone": _column("contact", True),
                "first_name": _column("identity", True),
                "last_name": _column("identity", True),
                "address": _column("contact", True),
                "postcode": _column("contact", True),
                "date_of_birth": _column("identity", True),
                "loyalty_points": _column("marketing"),
            },
        },
        "invoices": {
            "primary_key": "invoice_no",
            "identity_columns": {"customer_id": "customer_id"},
            "columns": {
                "invoice_no": _column("financial"),
                "customer_id": _column("financial"),
                "issued_on": _column("financial"),
                "amount": _column("financial", True),
                "billing_name": _column("financial", True),
                "delivery_address": _column("contact", True),
                "delivery_postcode": _column("contact", True),
            },
        },
        "invoice_lines": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _column("financial"),
                "invoice_no": _column("financial"),
                "sku": _column("financial", True),
                "quantity": _column("financial", True),
            },
        },
        "support_notes": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _column("support"),
                "customer_id": _column("support"),
                "written_at": _column("support_log"),
                "body": _column("support"),
                "agent_code": _column("support"),
            },
        },
        "Consents": {
            "primary_key": "id",
            "identity_columns": {"email": "customerEmail"},
            "columns": {
                "id": _column("marketing"),
                "customerEmail": _column("marketing"),
                "channel": _column("marketing", True),
                "granted": _column("marketing", True),
            },
        },
    },
}


def _unreachable(exc: BaseException) -> None:
    reason = f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}: {exc})"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires PostgreSQL", pytrace=False)
    pytest.skip(f"{reason}; set DSR_TEST_POSTGRES_URL to run the PostgreSQL tests")


@pytest.fixture(scope="module")
def pg_source_server() -> Iterator[str]:
    """A scratch PostgreSQL database for this module's source tables (not the service's)."""
    name = f"dsr_sql_source_{os.getpid()}"
    try:
        asyncio.run(_create_database(POSTGRES_URL, name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unreachable(exc)
    url = make_url(POSTGRES_URL).set(database=name)
    # A plain postgresql:// URL, as an admin would paste it: the connector picks asyncpg.
    yield url.set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_drop_database(POSTGRES_URL, name))


async def pg_case(server_url: str) -> Crm:
    engine = create_async_engine(normalise_sql_url(server_url))
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
        for statement in [*PG_SCHEMA.split(";"), *_pg_data()]:
            if statement.strip():
                await connection.execute(text(statement))
    await engine.dispose()
    return Crm(
        backend="postgresql",
        url=server_url,
        dataset_map=copy.deepcopy(PG_MAP),
        jane={"email": "Jane.Doe@Example.com", "phone": "+441632960001", "customer_id": "1001"},
        jane_rows={
            "customers": 1,
            "invoices": 3,
            "invoice_lines": JANE_LINES,
            "support_notes": 2,
            "Consents": 2,
        },
        deleted={"customers": 1, "Consents": 2},
        anonymised={"invoices": 3, "support_notes": 2},
        retained={
            "financial": {"invoices", "invoice_lines"},
            "support_log": {"support_notes"},
        },
        needles=["jane.doe@example.com", "+441632960001", "Jane", "Doe", "Brookfield", "QA1 4BZ"],
        restricted_sql="SELECT is_restricted FROM customers WHERE id = 1001",
        # Support notes lose their link to her (customer_id is masked to NULL).
        findable_after_erasure={"invoices", "invoice_lines"},
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def pg_server_or_none(request: pytest.FixtureRequest) -> str | None:
    # Resolved here, outside the event loop: the module fixture uses asyncio.run.
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_source_server"))
    return None


@pytest.fixture
async def crm(pg_server_or_none: str | None, tmp_path: Path) -> Crm:
    if pg_server_or_none is None:
        return demo_case(tmp_path)
    return await pg_case(pg_server_or_none)


@pytest.fixture
async def connector(crm: Crm) -> AsyncIterator[SqlConnector]:
    source = crm.connector()
    yield source
    await source.close()


async def collect_all(
    connector: SqlConnector, identity: SubjectIdentity, *, provided_only: bool = False
) -> list[RecordBatch]:
    return [batch async for batch in connector.collect(identity, provided_only=provided_only)]


def rows_per_table(batches: list[RecordBatch]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for batch in batches:
        counts[batch.table] = counts.get(batch.table, 0) + len(batch.rows)
    return counts


# ------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db/crm", "postgresql+asyncpg://u:p@db/crm"),
        ("postgres://u:p@db:5433/crm", "postgresql+asyncpg://u:p@db:5433/crm"),
        ("postgresql+psycopg2://u:p@db/crm", "postgresql+asyncpg://u:p@db/crm"),
        ("postgresql+asyncpg://u:p@db/crm", "postgresql+asyncpg://u:p@db/crm"),
        ("postgresql://u:p@db/crm?sslmode=require", "postgresql+asyncpg://u:p@db/crm?ssl=require"),
        ("sqlite:///./crm.db", "sqlite+aiosqlite:///./crm.db"),
        ("sqlite+aiosqlite:////data/crm.db", "sqlite+aiosqlite:////data/crm.db"),
        ("mysql+aiomysql://u:p@db/crm", "mysql+aiomysql://u:p@db/crm"),
    ],
)
def test_urls_are_normalised_to_an_async_driver(url: str, expected: str) -> None:
    assert normalise_sql_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"mysql+pymysql://admin:{SECRET_PASSWORD}@db/crm", "no async driver for dialect mysql"),
        (
            f"oracle+cx_oracle://admin:{SECRET_PASSWORD}@db/crm",
            "no async driver for dialect oracle",
        ),
        (f"mssql+pyodbc://admin:{SECRET_PASSWORD}@db/crm", "no async driver for dialect mssql"),
        (f"not a url {SECRET_PASSWORD}", "not a valid SQLAlchemy URL"),
    ],
)
def test_urls_without_an_async_driver_are_refused(url: str, message: str) -> None:
    with pytest.raises(SourceError) as raised:
        normalise_sql_url(url)
    assert message in str(raised.value)
    assert SECRET_PASSWORD not in str(raised.value)
    assert raised.value.retryable is False


async def test_an_async_driver_that_is_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    source = SqlConnector(
        "crm", f"mysql+asyncmy://u:{SECRET_PASSWORD}@db/crm", load_dataset_map(), settings()
    )
    with pytest.raises(SourceError, match="driver mysql\\+asyncmy is not installed") as raised:
        await source.test()
    assert raised.value.retryable is False
    assert SECRET_PASSWORD not in str(raised.value)


# ------------------------------------------------------------------------------ finding Jane


@pytest.mark.parametrize("kind", ["email", "email_upper", "phone", "customer_id"])
async def test_collect_finds_jane_by_any_identity(
    crm: Crm, connector: SqlConnector, kind: str
) -> None:
    if kind == "email_upper":
        identity = SubjectIdentity(email=crm.jane["email"].upper())
    elif kind == "email":
        identity = SubjectIdentity(email=crm.jane["email"].lower())
    else:
        identity = SubjectIdentity(**{kind: crm.jane[kind]})
    batches = await collect_all(connector, identity)
    assert rows_per_table(batches) == crm.jane_rows
    subject = crm.dataset_map["subject_table"]
    assert batches[0].table == subject  # the person first, then what hangs off them
    (row,) = batches[0].rows
    email_index = [column.name for column in batches[0].columns].index("email")
    assert row[email_index].lower() == crm.jane["email"].lower()
    assert await connector.count(identity) == sum(crm.jane_rows.values())


async def test_every_identity_together_finds_her_once(crm: Crm, connector: SqlConnector) -> None:
    identity = SubjectIdentity(**crm.jane, name="Jane Doe")
    assert rows_per_table(await collect_all(connector, identity)) == crm.jane_rows


@pytest.mark.parametrize(
    "identity",
    [
        SubjectIdentity(email="nobody@example.com"),
        SubjectIdentity(phone="+441632960999"),
        SubjectIdentity(customer_id="C-0000"),
        SubjectIdentity(customer_id="not-a-number"),  # PostgreSQL ids are integers
        SubjectIdentity(name="Jane Doe"),  # a name alone identifies no one
        SubjectIdentity(),
    ],
)
async def test_nobody_is_found_for_unknown_identities(
    connector: SqlConnector, identity: SubjectIdentity
) -> None:
    assert await collect_all(connector, identity) == []
    assert await connector.count(identity) == 0


async def test_records_carry_columns_categories_and_the_record_id(
    crm: Crm, connector: SqlConnector
) -> None:
    batches = await collect_all(connector, SubjectIdentity(email=crm.jane["email"]))
    for batch in batches:
        spec = crm.dataset_map["tables"][batch.table]
        assert [column.name for column in batch.columns] == list(spec["columns"])
        for column in batch.columns:
            assert column.category == spec["columns"][column.name]["category"]
            assert column.provided_by_subject == spec["columns"][column.name]["provided_by_subject"]
        assert batch.columns[batch.record_id_index].name == spec["primary_key"]
        assert batch.source == crm.backend
        assert all(isinstance(row, tuple) and len(row) == len(batch.columns) for row in batch.rows)


async def test_provided_only_keeps_what_she_provided_and_the_record_id(
    crm: Crm, connector: SqlConnector
) -> None:
    batches = await collect_all(
        connector, SubjectIdentity(email=crm.jane["email"]), provided_only=True
    )
    expected_tables = {
        name
        for name, spec in crm.dataset_map["tables"].items()
        if any(column["provided_by_subject"] for column in spec["columns"].values())
    }
    assert {batch.table for batch in batches} == expected_tables
    for batch in batches:
        spec = crm.dataset_map["tables"][batch.table]
        provided = [name for name, c in spec["columns"].items() if c["provided_by_subject"]]
        names = [column.name for column in batch.columns]
        assert set(names) == {*provided, spec["primary_key"]}
        assert batch.columns[batch.record_id_index].name == spec["primary_key"]
    assert rows_per_table(batches) == {
        table: rows for table, rows in crm.jane_rows.items() if table in expected_tables
    }


@pytest.mark.parametrize("batch_size", [1, 2, 100])
async def test_batches_are_bounded_and_each_table_is_contiguous(crm: Crm, batch_size: int) -> None:
    source = crm.connector(fulfilment_batch_size=batch_size)
    try:
        batches = await collect_all(source, SubjectIdentity(email=crm.jane["email"]))
    finally:
        await source.close()
    assert all(0 < len(batch.rows) <= batch_size for batch in batches)
    assert rows_per_table(batches) == crm.jane_rows
    tables = [batch.table for batch in batches]
    # Table by table: once a table's batches end, it never comes back.
    assert tables == sorted(tables, key=tables.index)
    for table, rows in crm.jane_rows.items():
        expected = -(-rows // batch_size)
        assert tables.count(table) == expected, table
    record_ids = [
        (batch.table, row[batch.record_id_index]) for batch in batches for row in batch.rows
    ]
    assert len(set(record_ids)) == len(record_ids)


async def test_stopping_early_releases_the_connection(crm: Crm) -> None:
    source = crm.connector(fulfilment_batch_size=1)
    try:
        for _ in range(3):
            stream = source.collect(SubjectIdentity(email=crm.jane["email"]))
            async for _batch in stream:
                break
            await stream.aclose()  # type: ignore[attr-defined]
        assert await source.count(SubjectIdentity(email=crm.jane["email"])) > 0
    finally:
        await source.close()


# ------------------------------------------------------------------------------ erasure


def _cells_with(
    snapshot: dict[str, dict[Any, dict[str, Any]]],
    needles: list[str],
    columns: dict[str, set[str]],
    skip: dict[str, set[Any]] | None = None,
) -> set[tuple[str, Any, str]]:
    """(table, key, column) of every listed cell holding one of the needles."""
    found = set()
    lowered = [needle.lower() for needle in needles]
    for table, rows in snapshot.items():
        for key, row in rows.items():
            if skip and key in skip.get(table, set()):
                continue
            for column in columns[table]:
                value = row.get(column)
                if value is not None and any(n in str(value).lower() for n in lowered):
                    found.add((table, key, column))
    return found


async def test_erasure_removes_her_keeps_what_must_be_kept_and_touches_no_one_else(
    crm: Crm, connector: SqlConnector
) -> None:
    identity = SubjectIdentity(email=crm.jane["email"])
    hers: dict[str, set[Any]] = {table: set() for table in crm.dataset_map["tables"]}
    for batch in await collect_all(connector, identity):
        hers[batch.table] |= {row[batch.record_id_index] for row in batch.rows}
    before = await crm.snapshot()

    outcome = await connector.erase(identity)

    assert outcome.source == crm.backend
    assert outcome.deleted_rows == crm.deleted
    assert outcome.anonymised_rows == crm.anonymised
    categories = crm.dataset_map["categories"]
    assert {item.category: set(item.tables) for item in outcome.retained} == crm.retained
    for item in outcome.retained:
        assert item.reason == categories[item.category]["retain_reason"]

    after = await crm.snapshot()
    tables = crm.dataset_map["tables"]
    retained_columns = {
        name: {c for c, spec in table["columns"].items() if spec["category"] in crm.retained}
        for name, table in tables.items()
    }
    for name, spec in tables.items():
        others_before = {key: row for key, row in before[name].items() if key not in hers[name]}
        others_after = {key: row for key, row in after[name].items() if key not in hers[name]}
        assert others_after == others_before, f"{name}: someone else's rows changed"
        kept = {key: row for key, row in after[name].items() if key in hers[name]}
        if name in crm.deleted:
            assert kept == {}, name
        for key, row in kept.items():
            for column in spec["columns"]:
                if column == spec["primary_key"]:
                    continue
                if column in retained_columns[name]:
                    assert row[column] == before[name][key][column], (name, column)
                else:
                    assert row[column] in (None, MASK, "****"), (name, column)
    # No identity value of hers survives outside retained columns (beyond other people's own).
    erasable = {
        name: set(table["columns"]) - retained_columns[name] for name, table in tables.items()
    }
    baseline = _cells_with(before, crm.needles, erasable, skip=hers)
    assert _cells_with(after, crm.needles, erasable) <= baseline
    # Found again, she has only retained rows.
    remaining = rows_per_table(await collect_all(connector, SubjectIdentity(**crm.jane)))
    assert set(remaining) == crm.findable_after_erasure


class Recorder:
    """What the service's index would keep of an erasure (``ErasureRecorder``), in memory."""

    def __init__(self) -> None:
        self.found: set[tuple[str, Any]] = set()
        self.keys: dict[str, list[Any]] = {}

    async def found_identities(self, identities: Any) -> None:
        self.found |= set(identities)

    async def retained(self, table: str, keys: Any) -> None:
        self.keys.setdefault(table, []).extend(keys)

    async def pages(self, table: str) -> AsyncIterator[list[str]]:
        """``RetainedKeys.keys``: the keys as text, in pages smaller than a table's rows."""
        keys = [str(key) for key in self.keys.get(table, [])]
        for start in range(0, len(keys), 40):
            yield keys[start : start + 40]


class _AsRecorder:
    def __init__(self, recorder: Recorder) -> None:
        self.found, self.retained = recorder.found_identities, recorder.retained


class _AsKeys:
    def __init__(self, recorder: Recorder) -> None:
        self.keys = recorder.pages


async def test_rows_an_erasure_keeps_are_recorded_and_found_again_by_key(crm: Crm) -> None:
    email_only = SubjectIdentity(email=crm.jane["email"])
    source = crm.connector(fulfilment_batch_size=100)
    recorder = Recorder()
    try:
        await source.erase(email_only, recorder=_AsRecorder(recorder))
        # The identities her erased rows held, as stored, each kind once per value.
        assert {(kind, str(value)) for kind, value in recorder.found} == set(crm.jane.items())
        assert {table: len(keys) for table, keys in recorder.keys.items()} == {
            table: crm.jane_rows[table] for tables in crm.retained.values() for table in tables
        }
        # Her email no longer reaches the kept rows (the row linking them is gone)...
        assert rows_per_table(await collect_all(source, email_only)) == {}
        for identity in (email_only, SubjectIdentity(**crm.jane)):
            batches = [
                batch async for batch in source.collect(identity, retained=_AsKeys(recorder))
            ]
            # ...but their keys do, once each, even where her identities still find them.
            found: dict[str, list[Any]] = {}
            for batch in batches:
                found.setdefault(batch.table, []).extend(
                    r[batch.record_id_index] for r in batch.rows
                )
            assert {table: sorted(map(str, ids)) for table, ids in found.items()} == {
                table: sorted(map(str, keys)) for table, keys in recorder.keys.items()
            }
    finally:
        await source.close()


async def test_demo_erasure_retains_orders_with_the_delivery_address_nulled(
    tmp_path: Path,
) -> None:
    crm = demo_case(tmp_path)
    source = crm.connector()
    try:
        outcome = await source.erase(SubjectIdentity(customer_id="C-1001"))
    finally:
        await source.close()
    (financial,) = outcome.retained
    assert financial.category == "financial" and "HMRC" in financial.reason
    assert await crm.rows(
        "SELECT order_id, billing_name, delivery_address, delivery_postcode FROM orders "
        "WHERE customer_id = 'C-1001' ORDER BY order_id"
    ) == [("O-100001", "Jane Doe", None, None), ("O-100002", "Jane Doe", None, None)]
    assert await crm.rows("SELECT count(*) FROM contacts WHERE customer_id = 'C-1001'") == [(0,)]


async def test_pg_erasure_masks_by_type_and_keeps_chained_rows(pg_source_server: str) -> None:
    crm = await pg_case(pg_source_server)
    source = crm.connector()
    try:
        await source.erase(SubjectIdentity(phone=crm.jane["phone"]))
    finally:
        await source.close()
    # Text is masked (cut to fit a short column), other types nulled, retained kept.
    assert await crm.rows(
        "SELECT customer_id, body, agent_code, written_at IS NOT NULL FROM support_notes "
        "WHERE agent_code = '****' ORDER BY id"
    ) == [(None, MASK, "****", True), (None, MASK, "****", True)]
    assert await crm.rows(
        "SELECT count(*) FROM invoice_lines WHERE invoice_no IN ('INV-1', 'INV-2', 'INV-3')"
    ) == [(JANE_LINES,)]


async def test_a_refused_erasure_changes_nothing_and_names_the_column(crm: Crm) -> None:
    broken = copy.deepcopy(crm.dataset_map)
    retained_table = sorted(crm.anonymised)[0]
    # Classify a NOT NULL column of a kept table as deletable: NULL is refused.
    column = "customer_id"
    broken["tables"][retained_table]["columns"][column]["category"] = "identity"
    source = SqlConnector(crm.backend, crm.url, broken, settings())
    before = await crm.snapshot()
    try:
        with pytest.raises(SourceError) as raised:
            await source.erase(SubjectIdentity(**crm.jane))
    finally:
        await source.close()
    assert raised.value.retryable is False
    message = str(raised.value)
    assert f"{retained_table}.{column}" in message
    for needle in crm.needles:
        assert needle.lower() not in message.lower()
    assert await crm.snapshot() == before  # one transaction: all or nothing


# ------------------------------------------------------------------------------ rectification


async def test_rectify_reports_before_and_after(crm: Crm, connector: SqlConnector) -> None:
    identity = SubjectIdentity(email=crm.jane["email"])
    subject = crm.dataset_map["subject_table"]
    retained_table = sorted(crm.anonymised)[0]
    changes = [
        {"field": "first_name", "current": "Jane", "requested": "Janet"},
        {"field": f"{retained_table}.delivery_address", "requested": "1 New Road"},
        {"field": "shoe_size", "requested": "5"},
        {"field": "nowhere.first_name", "requested": "x"},
        {"field": "id", "requested": "x"},  # a key (PostgreSQL) or ambiguous (the demo)
        {"field": f"{subject}.email", "requested": "janet@example.com"},
    ]
    outcome = await connector.rectify(identity, changes)
    applied = {(change.field, change.table): change for change in outcome.applied}
    first = applied["first_name", subject]
    assert (first.rows, first.before, first.after) == (1, "Jane", "Janet")
    delivery = applied[f"{retained_table}.delivery_address", retained_table]
    assert delivery.rows == crm.jane_rows[retained_table]
    assert isinstance(delivery.before, list) and "14 Brookfield Lane" in str(delivery.before)
    assert delivery.after == "1 New Road"
    email = applied[f"{subject}.email", subject]
    assert (email.before, email.after) == (crm.jane["email"], "janet@example.com")
    assert sorted(outcome.not_held) == sorted(["shoe_size", "nowhere.first_name", "id"])
    # Every change matched her rows as they were; she is found by her new email, and rows
    # linked to her by email (PostgreSQL's consents) followed the change.
    found = rows_per_table(await collect_all(connector, SubjectIdentity(email="JANET@example.com")))
    assert found == crm.jane_rows
    assert await collect_all(connector, identity) == []


async def test_rectify_holds_no_keys_relations_or_rows_she_lacks(pg_source_server: str) -> None:
    crm = await pg_case(pg_source_server)
    await crm.rows("DELETE FROM support_notes WHERE customer_id = 1001")
    source = crm.connector()
    try:
        outcome = await source.rectify(
            SubjectIdentity(customer_id="1001"),
            [
                {"field": "customers.id", "requested": "7"},  # a key
                {"field": "invoices.customer_id", "requested": "7"},  # a relation
                {"field": "support_notes.body", "requested": "x"},  # she has no notes now
                {"field": "loyalty_points", "requested": "250"},  # text to integer
            ],
        )
        assert [(c.field, c.before, c.after) for c in outcome.applied] == [
            ("loyalty_points", 120, 250)
        ]
        assert outcome.not_held == ["customers.id", "invoices.customer_id", "support_notes.body"]
        # The email links consents to her: the linking column follows the rectification.
        outcome = await source.rectify(
            SubjectIdentity(customer_id="1001"),
            [{"field": "email", "requested": "jane@new.example"}],
        )
        assert sorted((c.table, c.rows, c.before) for c in outcome.applied) == [
            ("Consents", 2, "Jane.Doe@Example.com"),
            ("customers", 1, "Jane.Doe@Example.com"),
        ]
        assert await crm.rows(
            'SELECT DISTINCT "customerEmail" FROM "Consents" WHERE channel = \'sms\''
        ) == [("jane@new.example",)]
        with pytest.raises(SourceError, match=r"customers\.loyalty_points does not fit") as raised:
            await source.rectify(
                SubjectIdentity(customer_id="1001"),
                [{"field": "loyalty_points", "requested": "lots"}],
            )
        assert raised.value.retryable is False
        assert "lots" not in str(raised.value)
    finally:
        await source.close()


# ------------------------------------------------------------------------------ restriction


async def test_restriction_flag_goes_on_and_off_for_her_only(
    crm: Crm, connector: SqlConnector
) -> None:
    identity = SubjectIdentity(phone=crm.jane["phone"])
    on = await connector.restrict(identity, restricted=True)
    assert (on.flagged_rows, on.supported) == (1, True)
    assert await crm.rows(crm.restricted_sql) in ([(1,)], [(True,)])
    restriction = crm.dataset_map["restriction"]
    flagged = await crm.rows(
        f'SELECT count(*) FROM "{restriction["table"]}" WHERE "{restriction["column"]}" '
        f"= {'true' if crm.backend == 'postgresql' else '1'}"
    )
    assert flagged == [(1,)]
    off = await connector.restrict(identity, restricted=False)
    assert off.flagged_rows == 1
    assert await crm.rows(crm.restricted_sql) in ([(0,)], [(False,)])


async def test_restriction_needs_a_flag_in_the_map(crm: Crm) -> None:
    without = copy.deepcopy(crm.dataset_map)
    restriction = without.pop("restriction")
    # The flag column is now an unmapped column: map it so the schema still matches.
    without["tables"][restriction["table"]]["columns"][restriction["column"]] = _column("identity")
    source = SqlConnector(crm.backend, crm.url, without, settings())
    try:
        outcome = await source.restrict(SubjectIdentity(**crm.jane), restricted=True)
    finally:
        await source.close()
    assert (outcome.supported, outcome.flagged_rows) == (False, 0)


# ------------------------------------------------------------------------------ test()


async def test_connection_test_passes_then_reports_schema_drift(
    crm: Crm, connector: SqlConnector
) -> None:
    await connector.test()
    subject = crm.dataset_map["subject_table"]
    await crm.rows(f'ALTER TABLE "{subject}" ADD COLUMN nickname TEXT')
    fresh = crm.connector()
    try:
        with pytest.raises(SourceError) as raised:
            await fresh.test()
        assert raised.value.retryable is False
        assert f"column {subject}.nickname is in the database but not in the map" in str(
            raised.value
        )
        # Work is refused too: the new column would escape access and erasure.
        with pytest.raises(SourceError, match="does not match the database"):
            await fresh.erase(SubjectIdentity(**crm.jane))
        with pytest.raises(SourceError, match="does not match the database"):
            await collect_all(fresh, SubjectIdentity(**crm.jane))
    finally:
        await fresh.close()


async def test_missing_tables_and_columns_are_reported(crm: Crm) -> None:
    broken = copy.deepcopy(crm.dataset_map)
    subject = broken["subject_table"]
    broken["tables"][subject]["columns"]["favourite_colour"] = _column("identity", True)
    broken["tables"]["ghosts"] = {
        "primary_key": "id",
        "identity_columns": {"email": "email"},
        "columns": {"id": _column("identity"), "email": _column("contact")},
    }
    source = SqlConnector(crm.backend, crm.url, broken, settings())
    try:
        with pytest.raises(SourceError) as raised:
            await source.test()
    finally:
        await source.close()
    assert f"column {subject}.favourite_colour is not in the database" in str(raised.value)
    assert "table ghosts is not in the database" in str(raised.value)


async def test_unreachable_postgresql_is_retryable_and_hides_the_password() -> None:
    url = f"postgresql://dsr:{SECRET_PASSWORD}@127.0.0.1:1/crm"
    source = SqlConnector("crm", url, PG_MAP, settings(source_timeout=5))
    try:
        with pytest.raises(SourceError) as raised:
            await source.test()
        assert raised.value.retryable is True
        assert SECRET_PASSWORD not in str(raised.value)
        assert "127.0.0.1" not in str(raised.value)
        with pytest.raises(SourceError) as raised_again:
            await collect_all(source, SubjectIdentity(email="jane.doe@example.com"))
        assert raised_again.value.retryable is True
        assert raised_again.value.__cause__ is None
    finally:
        await source.close()


async def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    source = SqlConnector("crm", f"sqlite:///{missing}", load_dataset_map(), settings())
    with pytest.raises(SourceError, match="file does not exist") as raised:
        await source.test()
    assert raised.value.retryable is False
    assert str(missing) not in str(raised.value)
    assert not missing.exists()


async def test_a_bad_map_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="invalid dataset map") as raised:
        SqlConnector("crm", "sqlite:///x.db", {"subject_table": "x"}, settings())
    assert raised.value.retryable is False


# ------------------------------------------------------------------------------ connector_for


def _source(kind: str, config: dict[str, Any], secret: dict[str, Any] | None) -> DataSource:
    encrypted = (
        encrypt_secret(json.dumps(secret), secret_key=TEST_SECRET_KEY)
        if secret is not None
        else None
    )
    return DataSource(name="crm", kind=kind, config=config, secret_config_encrypted=encrypted)


async def test_connector_for_builds_a_working_sql_connector(tmp_path: Path) -> None:
    crm = demo_case(tmp_path)
    source = _source("sql", {"dataset_map": crm.dataset_map}, {"url": crm.url})
    connector = connector_for(source, settings())
    try:
        assert isinstance(connector, SqlConnector)
        await connector.test()
        assert await connector.count(SubjectIdentity(email=JANE_DOE["email"])) == 10
    finally:
        await connector.close()
    # The map may be stored as YAML text too.
    as_text = _source("sql", {"dataset_map": yaml.safe_dump(crm.dataset_map)}, {"url": crm.url})
    connector = connector_for(as_text, settings())
    await connector.close()


@pytest.mark.parametrize(
    ("kind", "config", "secret", "message"),
    [
        ("task", {}, None, "task sources are worked by a webhook consumer"),
        ("sql", {"dataset_map": {}}, None, "no database URL"),
        ("sql", {}, {"url": "sqlite:///x.db"}, "no dataset map"),
        ("sql", {"dataset_map": {}}, {"url": "sqlite:///x.db"}, "invalid dataset map"),
        ("sql", {"dataset_map": {}}, {"url": f"mysql://u:{SECRET_PASSWORD}@h/d"}, "no async"),
        ("ftp", {}, None, "unknown kind"),
    ],
)
def test_connector_for_refuses_what_it_cannot_build(
    kind: str, config: dict[str, Any], secret: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(SourceError, match=message) as raised:
        connector_for(_source(kind, config, secret), settings())
    assert raised.value.retryable is False
    assert SECRET_PASSWORD not in str(raised.value)


def test_connector_for_refuses_credentials_it_cannot_decrypt() -> None:
    source = _source("sql", {"dataset_map": load_dataset_map()}, {"url": "sqlite:///x.db"})
    with pytest.raises(SourceError, match="cannot be decrypted") as raised:
        connector_for(source, settings(secret_key="another-key-0123456789abcdef0123456789"))
    assert raised.value.retryable is False


# ------------------------------------------------------------------------------ dry runs


async def test_plans_change_nothing_and_match_what_the_work_then_does(
    crm: Crm, connector: SqlConnector
) -> None:
    identity = SubjectIdentity(email=crm.jane["email"])
    subject = crm.dataset_map["subject_table"]
    retained_table = sorted(crm.anonymised)[0]
    changes = [
        {"field": "first_name", "requested": "Janet"},
        {"field": f"{retained_table}.delivery_address", "requested": "1 New Road"},
        {"field": "shoe_size", "requested": "5"},
    ]
    before = await crm.snapshot()

    erasure = await connector.plan_erasure(identity)
    access = await connector.plan_access(identity, provided_only=False)
    rectification = await connector.plan_rectification(identity, changes)
    restriction = await connector.plan_restriction(identity)

    assert await crm.snapshot() == before, "a dry run changed the source"
    assert access.tables == rows_per_table(await collect_all(connector, identity))
    assert access.tables == crm.jane_rows
    assert sum(access.categories.values()) >= sum(access.tables.values())
    first = next(change for change in rectification.changes if change.field == "first_name")
    assert (first.table, first.rows, first.current) == (subject, 1, "Jane")
    delivery = next(c for c in rectification.changes if c.table == retained_table)
    assert delivery.rows == crm.jane_rows[retained_table]
    assert "14 Brookfield Lane" in str(delivery.current)
    assert rectification.not_held == ["shoe_size"]
    assert restriction.supported and restriction.rows == 1
    planned = {table.table: table for table in erasure.tables}
    assert set(planned) == set(crm.jane_rows)
    for table in planned.values():
        # Nulled or masked columns make a kept row anonymised; a row is deleted or kept.
        assert table.anonymised == max(table.nulled, table.masked)
        kept = table.anonymised > 0 or table.retained > 0
        assert (table.deleted == table.rows) != kept, table
    assert any(table.masked for table in planned.values()) == (crm.backend == "postgresql")
    assert {kept.category: set(kept.tables) for kept in erasure.retained} == crm.retained

    outcome = await connector.erase(identity)

    assert outcome.deleted_rows == {t.table: t.deleted for t in erasure.tables if t.deleted}
    assert outcome.anonymised_rows == {
        t.table: t.anonymised for t in erasure.tables if t.anonymised
    }
    assert [(k.category, k.reason, k.tables) for k in outcome.retained] == [
        (k.category, k.reason, k.tables) for k in erasure.retained
    ]
