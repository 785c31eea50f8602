"""PostgreSQL writes big tables itself (``sources.pg_copy``): the same export as the generic path.

The generic path reads typed rows in batches and encodes them in Python; for a table with
more rows than a batch, ``collect_for_export`` hands the writer COPY streams instead. Both
run here on the same PostgreSQL data, every kind of value included, and must produce the
same records (modulo what docs/exports.md documents: fractional seconds and float digits).
"""

import asyncio
import csv
import io
import json
import os
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from app.data_sources.connectors import pg_copy
from app.data_sources.connectors.base import RecordBatch, SubjectIdentity
from app.data_sources.connectors.sql import SqlConnector
from app.exports import writer
from app.exports.writer import ExportFile, write_exports
from tests.conftest import _asyncpg_dsn, make_settings, scratch_database

EMAIL = "Jane.Doe@Example.com"
HEADER = {"export": {"request_id": "r-1", "request_type": "access"}}

SCHEMA = '''
CREATE TYPE mood AS ENUM ('calm', 'cross');
CREATE TABLE people (id integer PRIMARY KEY, email text NOT NULL, "display name" text);
CREATE TABLE records (
    id bigint PRIMARY KEY,
    person_id integer NOT NULL,
    note text,
    nick varchar(40),
    visits integer,
    big bigint,
    balance numeric(14, 2),
    score double precision,
    active boolean,
    seen_at timestamptz,
    local_at timestamp,
    born date,
    alarm time,
    ref uuid,
    photo bytea,
    prefs text,
    address inet,
    feeling mood
);
CREATE TABLE "Odd ""notes""" (
    code text PRIMARY KEY,
    person_id integer NOT NULL,
    "100%s :x" text,
    written_at timestamptz
);
CREATE TABLE measures (id integer PRIMARY KEY, person_id integer NOT NULL, ratio real);
CREATE TABLE tagged (id integer PRIMARY KEY, person_id integer NOT NULL, tags text[]);
CREATE TABLE settings (id integer PRIMARY KEY, person_id integer NOT NULL, prefs jsonb);
CREATE TABLE visits (id integer PRIMARY KEY, person_id integer NOT NULL, page text);
INSERT INTO visits SELECT n, 1001, '/page/' || n FROM generate_series(1, 300000) AS n;
'''

TEXTS = [
    "plain",
    "=HYPERLINK(1)",
    "+441632960001",
    "-2+3",
    "@SUM(A1)",
    "\tcmd",
    "\rcmd",
    "comma, inside",
    'say "hi"',
    "two\r\nlines",
    "line\nbreak",
    "Zoë 😀 ünïcödé",
    "",
    None,
    "back\\slash",
    "\\N",
    '"\\N"',
    "vertical\x0btab",
    "control\x01char",
    "it's",
    "trailing space ",
    # Formulas only: numbers and text behind apostrophes or whitespace as documented.
    "-12.5",
    "+44 20",
    "\t=1+1",
    " =1+1",
    "'=1+1",
    "'+441632960001",
]


def _record(number: int) -> tuple[Any, ...]:
    text = TEXTS[number % len(TEXTS)]
    optional = number % 5 == 4  # every fifth row has its optional columns empty
    return (
        number,
        1001,
        text,
        None if optional else f"nick-{number}",
        None if optional else number * 7 - 20,
        9_007_199_254_740_993 + number,  # beyond a double's exact integers
        None if optional else f"{(number * 37) % 10_000 - 5_000}.{number % 100:02d}",
        None if optional else [1.5, -0.25, 1e20, 0.1, 3.0, 1e-7][number % 6],
        None if optional else number % 2 == 0,
        None if optional else f"2026-03-01 09:30:{number % 60:02d}.{number % 3 * 25}+02",
        None if optional else f"2026-03-01 09:30:{number % 60:02d}",
        None if optional else "2000-02-29",
        None if optional else ["23:59:58", "08:00:00.5"][number % 2],
        None if optional else f"00000000-0000-4000-8000-{number:012d}",
        None if optional else bytes([number % 256, 0, 255]) * (number % 40),
        None if optional else json.dumps({"n": number, "tags": ["a", 'q"uote']}),
        None if optional else f"192.168.0.{number % 256}",
        None if optional else ["calm", "cross"][number % 2],
    )


RECORDS = [_record(number) for number in range(1, 121)]


def _category(name: str, provided: bool = False) -> dict[str, Any]:
    return {"category": name, "provided_by_subject": provided}


DATASET_MAP: dict[str, Any] = {
    "subject_table": "people",
    "categories": {
        "identity": {"erasure": "delete"},
        "details": {"erasure": "delete"},
        "notes": {"erasure": "delete"},
        "technical": {"erasure": "delete"},
    },
    "relations": [
        {"from": "records.person_id", "to": "people.id"},
        {"from": 'Odd "notes".person_id', "to": "people.id"},
        {"from": "measures.person_id", "to": "people.id"},
        {"from": "tagged.person_id", "to": "people.id"},
        {"from": "settings.person_id", "to": "people.id"},
    ],
    "tables": {
        "people": {
            "primary_key": "id",
            "identity_columns": {"email": "email"},
            "columns": {
                "id": _category("identity"),
                "email": _category("identity", True),
                "display name": _category("identity", True),
            },
        },
        "records": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _category("details"),
                "person_id": _category("details"),
                "note": _category("notes", True),
                "nick": _category("identity", True),
                "visits": _category("details"),
                "big": _category("details"),
                "balance": _category("details"),
                "score": _category("details"),
                "active": _category("details", True),
                "seen_at": _category("details"),
                "local_at": _category("details"),
                "born": _category("identity", True),
                "alarm": _category("details"),
                "ref": _category("technical"),
                "photo": _category("technical"),
                "prefs": _category("technical"),
                "address": _category("technical"),
                "feeling": _category("notes"),
            },
        },
        # Adds columns to "notes" after records: the encoded parts are widened.
        'Odd "notes"': {
            "primary_key": "code",
            "identity_columns": {},
            "columns": {
                "code": _category("notes"),
                "person_id": _category("notes"),
                "100%s :x": _category("notes", True),
                "written_at": _category("notes"),
            },
        },
        "measures": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _category("details"),
                "person_id": _category("details"),
                "ratio": _category("details"),
            },
        },
        "tagged": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _category("details"),
                "person_id": _category("details"),
                "tags": _category("details"),
            },
        },
        "settings": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _category("technical"),
                "person_id": _category("technical"),
                "prefs": _category("technical", True),
            },
        },
    },
}


@pytest.fixture(scope="module")
def source_url() -> Iterator[str]:
    """A scratch PostgreSQL database holding Jane's records and someone else's."""
    with scratch_database(f"dsr_pg_copy_{os.getpid()}") as url:
        dsn = _asyncpg_dsn(url)
        asyncio.run(_load(dsn))
        yield dsn


async def _load(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(SCHEMA)
        await connection.executemany(
            "INSERT INTO people VALUES ($1, $2, $3)",
            [(1001, EMAIL, '=Jane, "JD" Doe'), (1002, "bob@example.org", "Bob")],
        )
        columns = ", ".join(f"${index}" for index in range(1, 19))
        insert = await connection.prepare(f"INSERT INTO records VALUES ({columns})")
        # Bob's rows must stay out of Jane's export.
        rows = [*RECORDS, *((10_000 + n, 1002, "bob", *(None,) * 15) for n in range(5))]
        await insert.executemany([_typed(row) for row in rows])
        await connection.executemany(
            'INSERT INTO "Odd ""notes""" VALUES ($1, $2, $3, $4)',
            [
                (f"N-{n}", 1001, TEXTS[n % len(TEXTS)], datetime(2026, 1, 2, 3, 4, 5, 600000))
                for n in range(30)
            ],
        )
        # More rows than a batch each: their types, not their size, keep them typed.
        ratios = [0.5, float("nan"), float("inf"), float("-inf"), None, 1e30, -0.0]
        await connection.executemany(
            "INSERT INTO measures VALUES ($1, 1001, $2)",
            [(n, ratios[n % len(ratios)]) for n in range(15)],
        )
        tags = [["a", "b,c"], [], None, ['q"uote']]
        await connection.executemany(
            "INSERT INTO tagged VALUES ($1, 1001, $2)", [(n, tags[n % 4]) for n in range(15)]
        )
        await connection.executemany(
            "INSERT INTO settings VALUES ($1, 1001, $2)",
            [(n, json.dumps({"n": n, "tags": ["a", 'q"uote']})) for n in range(15)],
        )
    finally:
        await connection.close()


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with each column's value as asyncpg takes it (its Python type)."""
    (number, person, note, nick, visits, big, balance, score, active) = row[:9]
    seen_at, local_at, born, alarm, ref, photo, prefs, address, feeling = row[9:]
    return (
        number,
        person,
        note,
        nick,
        visits,
        big,
        None if balance is None else Decimal(balance),
        score,
        active,
        None if seen_at is None else datetime.fromisoformat(seen_at + ":00"),
        None if local_at is None else datetime.fromisoformat(local_at),
        None if born is None else date.fromisoformat(born),
        None if alarm is None else time.fromisoformat(alarm),
        None if ref is None else UUID(ref),
        photo,
        prefs,
        address,
        feeling,
    )


@pytest.fixture(params=[2, 1], ids=["two-connections", "one-connection"])
def connections(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pg_copy, "EXPORT_CONNECTIONS", request.param)
    return int(request.param)


async def _export(
    source_url: str, directory: Path, *, encoded: bool, provided_only: bool = False
) -> tuple[dict[str, ExportFile], list[Any]]:
    # Batches of 10: every table with more than ten of Jane's rows is COPY-encoded.
    connector = SqlConnector(
        "crm", source_url, DATASET_MAP, make_settings("sqlite://", fulfilment_batch_size=10)
    )
    seen: list[Any] = []
    identity = SubjectIdentity(email=EMAIL.lower())

    async def items() -> AsyncIterator[Any]:
        stream = (
            connector.collect_for_export(identity, provided_only=provided_only)
            if encoded
            else connector.collect(identity, provided_only=provided_only)
        )
        async for item in stream:
            seen.append(item)
            yield item

    try:
        files = await write_exports(
            items(), directory=directory, formats=["json", "csv"], header=HEADER
        )
    finally:
        await connector.close()
    return files, seen


# Where docs/exports.md allows the two paths to differ: fractional seconds, float digits.
LOOSE = {"seen_at", "local_at", "alarm", "written_at", "score"}


def _comparable(column: str, value: Any) -> Any:
    """A JSON value or CSV cell, read as its value where the formatting may differ."""
    if column not in LOOSE or value in (None, ""):
        return value
    if column == "score":
        return float(value)
    return time.fromisoformat(value) if column == "alarm" else datetime.fromisoformat(value)


def _json_tables(file: ExportFile) -> dict[str, list[dict[str, Any]]]:
    document = json.loads(file.path.read_bytes())
    tables = {}
    for block in document["tables"]:
        rows = [
            {key: _comparable(key, value) for key, value in row.items()} for row in block["rows"]
        ]
        tables[block["table"]] = sorted(rows, key=lambda row: json.dumps(row, default=str))
    return tables


def _csv_files(file: ExportFile) -> dict[str, list[list[Any]]]:
    with zipfile.ZipFile(file.path) as archive:
        files = {}
        for name in archive.namelist():
            if not name.endswith(".csv"):
                continue
            data = archive.read(name)
            header, *rows = csv.reader(io.StringIO(data.decode(), newline=""))
            # RFC 4180 line ends (CRLF) after every row, whoever wrote it.
            assert data.endswith(b"\r\n") and data.count(b"\r\n") > len(rows), name
            names = ["source", "table", "record_id", *header[3:]]
            cells = [
                [_comparable(n, cell) for n, cell in zip(names, row, strict=True)] for row in rows
            ]
            files[name] = [header, *sorted(cells, key=repr)]
        return files


@pytest.mark.parametrize("provided_only", [False, True], ids=["access", "portability"])
async def test_copy_encoded_tables_export_the_same_records_as_typed_batches(
    source_url: str, tmp_path: Path, connections: int, provided_only: bool
) -> None:
    generic, batches = await _export(
        source_url, tmp_path / "generic", encoded=False, provided_only=provided_only
    )
    fast, items = await _export(
        source_url, tmp_path / "fast", encoded=True, provided_only=provided_only
    )

    kinds = {item.table: type(item).__name__ for item in items}
    assert all(isinstance(item, RecordBatch) for item in batches)
    # Big tables come from COPY; small ones, NaN floats and arrays stay typed batches.
    assert kinds["records"] == "PgEncodedTable"
    assert kinds['Odd "notes"'] == "PgEncodedTable"
    assert kinds["people"] == "RecordBatch"
    if not provided_only:
        assert kinds["measures"] == "RecordBatch" and kinds["tagged"] == "RecordBatch"
    assert kinds["settings"] == "RecordBatch"

    assert _json_tables(fast["json"]) == _json_tables(generic["json"])
    fast_summary = json.loads(fast["json"].path.read_bytes())["summary"]
    assert fast_summary == json.loads(generic["json"].path.read_bytes())["summary"]
    assert _csv_files(fast["csv"]) == _csv_files(generic["csv"])


async def test_values_are_formatted_as_documented(source_url: str, tmp_path: Path) -> None:
    fast, _ = await _export(source_url, tmp_path, encoded=True)
    document = json.loads(fast["json"].path.read_bytes())
    records = {row["id"]: row for row in document["tables"][1]["rows"]}
    assert document["tables"][1]["table"] == "records"
    # Only Jane's rows, every one of them.
    assert sorted(records) == [row[0] for row in RECORDS]
    assert {row["person_id"] for row in records.values()} == {1001}
    first = records[1]
    assert first["note"] == TEXTS[1] and first["nick"] == "nick-1"
    assert first["big"] == 9_007_199_254_740_994  # an exact JSON number
    assert first["balance"] == "-4963.01"  # exact decimals as strings
    assert first["seen_at"] == "2026-03-01T07:30:01.25+00:00"  # UTC, ISO 8601
    assert first["local_at"] == "2026-03-01T09:30:01"
    assert first["born"] == "2000-02-29" and first["alarm"] == "08:00:00.5"
    assert first["active"] is False and first["feeling"] == "cross"
    assert first["photo"] == "AQD/" and first["address"] == "192.168.0.1"
    assert json.loads(first["prefs"]) == {"n": 1, "tags": ["a", 'q"uote']}  # text, here
    settings = document["tables"][-1]
    assert settings["table"] == "settings" and settings["rows"][0]["prefs"]["tags"] == [
        "a",
        'q"uote',
    ]
    assert records[4]["visits"] is None and records[4]["seen_at"] is None
    by_note = {row["note"]: row for row in records.values()}
    assert set(TEXTS) - {None} <= set(by_note)

    with zipfile.ZipFile(fast["csv"].path) as archive:
        notes = archive.read("notes.csv").decode()
    # Text that a spreadsheet would run is neutralised; empty text is an empty cell.
    hostile = ["'=HYPERLINK(1)", "'-2+3", "'@SUM(A1)", "'+44 20", "''=1+1", "' =1+1", "'\t=1+1"]
    for cell in hostile:
        assert f",{cell}," in notes, cell
    # Numbers, and text no spreadsheet would run, as they are.
    for kept in ("+441632960001", "-12.5", '"\rcmd"', "'+441632960001"):
        assert f",{kept}," in notes, kept
    assert TEXTS[12] == "" and "\r\ncrm,records,12,,calm,,,,\r\n" in notes  # not ""


async def test_the_subjects_identity_is_not_written_into_copy_statements(
    source_url: str,
) -> None:
    connector = SqlConnector(
        "crm", source_url, DATASET_MAP, make_settings("sqlite://", fulfilment_batch_size=10)
    )
    statements = []
    try:
        async for item in connector.collect_for_export(SubjectIdentity(email=EMAIL.lower())):
            if isinstance(item, pg_copy.PgEncodedTable):
                statements.append(str(item.compiled(["1"], 0, 2)))
    finally:
        await connector.close()
    assert statements
    for statement in statements:
        assert "jane" not in statement.lower() and "current_setting" in statement


VISITS_MAP: dict[str, Any] = {
    "subject_table": "people",
    "categories": {"identity": {"erasure": "delete"}, "activity": {"erasure": "delete"}},
    "relations": [{"from": "visits.person_id", "to": "people.id"}],
    "tables": {
        "people": DATASET_MAP["tables"]["people"],
        "visits": {
            "primary_key": "id",
            "identity_columns": {},
            "columns": {
                "id": _category("activity"),
                "person_id": _category("activity"),
                "page": _category("activity", True),
            },
        },
    },
}


async def test_a_cancelled_export_leaves_no_file_and_the_source_usable(
    source_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "_PROGRESS_SECONDS", 0.01)
    connector = SqlConnector("crm", source_url, VISITS_MAP, make_settings("sqlite://"))
    identity = SubjectIdentity(email=EMAIL)
    directory = tmp_path / "out"
    running: asyncio.Task[Any] | None = None

    async def on_progress(records: int) -> None:
        # Mid-table: the COPY streams are running.
        if running is not None and 1 < records < 300_000:
            running.cancel()

    try:
        running = asyncio.create_task(
            write_exports(
                connector.collect_for_export(identity),
                directory=directory,
                formats=["json", "csv"],
                header=HEADER,
                on_progress=on_progress,
            )
        )
        with pytest.raises(asyncio.CancelledError):
            await running
        assert list(directory.iterdir()) == []

        # The cancelled COPYs closed their connections; none went back to the pool.
        files = await write_exports(
            connector.collect_for_export(identity),
            directory=directory,
            formats=["json"],
            header=HEADER,
        )
        summary = json.loads(files["json"].path.read_bytes())["summary"]
        assert summary["records"] == 300_001
    finally:
        await connector.close()
