"""The CSV pack as a reader sees it: unique column names, records counted as the JSON counts
them, and only the cells a spreadsheet would run neutralised (reversibly)."""

import asyncio
import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from app.core import encoding
from app.data_sources.connectors.base import ColumnInfo, RecordBatch
from app.exports.writer import ExportFile, write_exports

HEADER = {"export": {"request_id": "r-1", "request_type": "access"}}


def batch(table: str, columns: tuple[ColumnInfo, ...], rows: list[tuple[Any, ...]]) -> RecordBatch:
    return RecordBatch(source="crm", table=table, columns=columns, record_id_index=0, rows=rows)


async def stream(batches: Iterable[RecordBatch]) -> AsyncIterator[RecordBatch]:
    for item in batches:
        await asyncio.sleep(0)
        yield item


async def export(tmp_path: Path, batches: Iterable[RecordBatch]) -> dict[str, ExportFile]:
    return await write_exports(
        stream(batches), directory=tmp_path / "out", formats=("json", "csv"), header=HEADER
    )


def read_pack(file: ExportFile) -> dict[str, bytes]:
    with zipfile.ZipFile(file.path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def restored(cell: str) -> str:
    """docs/exports.md's rule for undoing neutralisation: drop the apostrophe that was added."""
    rest = cell[1:]
    return rest if cell.startswith("'") and encoding.neutralise(rest) == cell else cell


# ---------------------------------------------------------------- column names


async def test_column_names_are_unique_and_say_which_table_a_clash_came_from(
    tmp_path: Path,
) -> None:
    preferences = (
        ColumnInfo("id", "marketing", False),
        ColumnInfo("channel", "marketing", True),
        ColumnInfo("source", "marketing", False),  # clashes with the leading "source"
        ColumnInfo("Table", "marketing", False),  # and with "table", but for its case
    )
    signups = (
        ColumnInfo("signup_id", "marketing", False),
        ColumnInfo("channel", "marketing", True),  # the same column: one column for both
        ColumnInfo("SOURCE", "marketing", False),
    )
    tickets = (
        ColumnInfo("record_id", "marketing", False),  # the record's own key, named as the lead
        ColumnInfo("subject", "marketing", True),
    )
    files = await export(
        tmp_path,
        [
            batch("preferences", preferences, [(1, "email", "web form", "t")]),
            batch("signups", signups, [(7, "post", "trade fair")]),
            batch("tickets", tickets, [("T-9", "Refund")]),
        ],
    )
    rows = csv_rows(read_pack(files["csv"])["marketing.csv"])

    assert rows[0] == [
        "source",
        "table",
        "record_id",
        "id",
        "channel",
        "preferences.source",
        "preferences.Table",
        "signup_id",
        "signups.SOURCE",
        "subject",
    ]
    assert len({name.casefold() for name in rows[0]}) == len(rows[0])
    assert rows[1:] == [
        ["crm", "preferences", "1", "1", "email", "web form", "t", "", "", ""],
        ["crm", "signups", "7", "", "post", "", "", "7", "trade fair", ""],
        ["crm", "tickets", "T-9", "", "", "", "", "", "", "Refund"],
    ]
    # The JSON document keeps every table's own column names.
    document = json.loads(files["json"].path.read_bytes())
    assert [list(block["columns"]) for block in document["tables"]] == [
        ["id", "channel", "source", "Table"],
        ["signup_id", "channel", "SOURCE"],
        ["record_id", "subject"],
    ]


# ---------------------------------------------------------------- what a record is


CONTACTS = (
    ColumnInfo("customer_id", "identity", False),
    ColumnInfo("name", "identity", True),
    ColumnInfo("email", "contact", True),
)
PREFERENCES = (
    ColumnInfo("id", "marketing", False),
    ColumnInfo("customer_id", "identity", False, link=True),  # only a link to the contact
    ColumnInfo("channel", "marketing", True),
)
MEMBERSHIPS = (
    ColumnInfo("id", "groups", False),
    ColumnInfo("customer_id", "identity", False, link=True),
    ColumnInfo("group_id", "groups", False, link=True),
)
# A table of nothing but links (a list of VIP customers) still shows its records.
VIPS = (ColumnInfo("customer_id", "identity", False, link=True),)


def linked_batches() -> list[RecordBatch]:
    return [
        batch("contacts", CONTACTS, [("C-1", "Jane Doe", "jane@example.com")]),
        batch("preferences", PREFERENCES, [(1, "C-1", "email"), (2, "C-1", "sms")]),
        batch("memberships", MEMBERSHIPS, [(5, "C-1", 40)]),
        batch("vips", VIPS, [("C-1",)]),
    ]


async def test_links_alone_add_no_rows_to_a_category_file(tmp_path: Path) -> None:
    files = await export(tmp_path, linked_batches())
    pack = read_pack(files["csv"])

    # The preferences' customer_id only repeats the contact's: no echo rows in identity.csv.
    assert csv_rows(pack["identity.csv"]) == [
        ["source", "table", "record_id", "customer_id", "name"],
        ["crm", "contacts", "C-1", "C-1", "Jane Doe"],
        ["crm", "vips", "C-1", "C-1", ""],
    ]
    assert csv_rows(pack["marketing.csv"])[1:] == [
        ["crm", "preferences", "1", "1", "email"],
        ["crm", "preferences", "2", "2", "sms"],
    ]
    assert csv_rows(pack["groups.csv"])[1:] == [["crm", "memberships", "5", "5", "40"]]
    # The JSON document holds every column of every row, links included.
    document = json.loads(files["json"].path.read_bytes())
    assert document["tables"][1]["rows"][0] == {"id": 1, "customer_id": "C-1", "channel": "email"}


async def test_the_manifest_counts_records_as_the_json_document_does(tmp_path: Path) -> None:
    files = await export(tmp_path, linked_batches())
    pack = read_pack(files["csv"])
    manifest = json.loads(pack["manifest.json"])
    summary = json.loads(files["json"].path.read_bytes())["summary"]

    assert manifest["format_version"] == 2
    assert manifest["summary"] == summary
    assert summary["records"] == 5
    seen: Counter[tuple[str, str]] = Counter()
    keys: set[tuple[str, ...]] = set()
    for entry in manifest["files"]:
        if not entry["name"].endswith(".csv"):
            assert entry["records"] is None
            continue
        rows = csv_rows(pack[entry["name"]])[1:]
        # A file's records: the records with data in it, one line each.
        assert entry["records"] == len(rows) == len({tuple(row[:3]) for row in rows})
        keys |= {tuple(row[:3]) for row in rows}
    # Every record is in some file, and the files hold no other.
    assert len(keys) == summary["records"]
    seen.update((source, table) for source, table, _ in keys)
    assert {(t["source"], t["table"]): t["records"] for t in summary["tables"]} == dict(seen)


# ---------------------------------------------------------------- formulas


# (text as held, CSV cell): only what a spreadsheet would evaluate gets the apostrophe.
NEUTRALISED = [
    ("=1+1", "'=1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("+44 20 7946 0000", "'+44 20 7946 0000"),
    ("+1-555-0100", "'+1-555-0100"),
    ("-12.5.1", "'-12.5.1"),
    ("-", "'-"),
    ("+", "'+"),
    ("\t=1+1", "'\t=1+1"),
    ("\r@SUM(A1)", "'\r@SUM(A1)"),
    ("\n-2+3", "'\n-2+3"),
    (" =1+1", "' =1+1"),
    # Apostrophes before a formula get one more, so that the rule can be undone exactly.
    ("'=1+1", "''=1+1"),
    ("''+cmd", "'''+cmd"),
]
# Numbers, and text that is no formula, as held.
UNTOUCHED = [
    "+441632960001",
    "-12.5",
    "+0.5",
    "-3",
    "\tcmd",
    "\rcmd",
    " plain",
    "'quoted",
    "'+441632960001",
    "'",
    "a=b",
    "1-2",
    "jane@example.com",
]


@pytest.mark.parametrize("repeat", [1, 50], ids=["distinct", "repeated"])
async def test_only_what_a_spreadsheet_would_evaluate_is_neutralised(
    tmp_path: Path, repeat: int
) -> None:
    cases = [*NEUTRALISED, *((text, text) for text in UNTOUCHED)]
    columns = (
        ColumnInfo("id", "misc", False),
        ColumnInfo("text", "misc", True),
        ColumnInfo("=HYPERLINK(1)", "misc", True),  # a hostile column name
        ColumnInfo("+44", "misc", True),
    )
    rows = [(index, text, text, None) for index, (text, _) in enumerate(cases * repeat)]
    files = await export(tmp_path, [batch("t", columns, rows)])
    parsed = csv_rows(read_pack(files["csv"])["misc.csv"])

    assert parsed[0][3:] == ["id", "text", "'=HYPERLINK(1)", "+44"]
    cells = [row[4] for row in parsed[1:]]
    assert cells == [cell for _, cell in cases] * repeat
    assert [restored(cell) for cell in cells] == [text for text, _ in cases] * repeat
    # The same rule value by value (header cells, sources that encode one value at a time).
    assert [encoding.neutralise(text) for text, _ in cases] == [cell for _, cell in cases]
    # JSON is never altered.
    (block,) = json.loads(files["json"].path.read_bytes())["tables"]
    assert [row["text"] for row in block["rows"]] == [text for text, _ in cases] * repeat


def cell_value(cell: str) -> str:
    (row,) = csv.reader(io.StringIO(cell, newline=""))
    return str(row[0])


@pytest.mark.parametrize("text", [text for text, _ in NEUTRALISED] + UNTOUCHED)
def test_a_column_is_neutralised_as_its_values_are_one_by_one(text: str) -> None:
    # Alone among plain text, and among numbers that look like formulas to a quick scan.
    for neighbours in (["plain", "a, b"], ["+441632960001", "-12.5"]):
        column = [*neighbours, text, *neighbours]
        cells = [cell_value(cell) for cell in encoding.csv_column(column)]
        assert cells == [encoding.neutralise(value) for value in column]


def test_text_holding_a_nul_is_neutralised_as_any_other() -> None:
    # The column is scanned joined by NULs: one inside a text must not hide a formula.
    for text in ("+12\x00abc", "-1\x00=x"):
        assert encoding.neutralise(text) == "'" + text
        assert list(encoding.csv_column([text, "plain"])) == ["'" + text, "plain"]
