"""The streaming export writer: formats, CSV neutralisation, atomic files, constant memory."""

import asyncio
import base64
import csv
import hashlib
import io
import json
import os
import stat
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core import encoding
from app.data_sources.connectors.base import ColumnInfo, RecordBatch
from app.exports import csv_zip, writer
from app.exports.writer import ExportFile, write_exports

HEADER = {
    "export": {"request_id": "r-1", "type": "access", "generated_at": "2026-11-22T10:00:00Z"},
    "supplementary_information": {"purposes": ["Customer service"], "retention": "6 years"},
}

CONTACT_COLUMNS = (
    ColumnInfo("id", "identifiers", False),
    ColumnInfo("email", "contact", True),
    ColumnInfo("name", "contact", True),
    ColumnInfo("born", "profile", True),
)
ORDER_COLUMNS = (
    ColumnInfo("order_id", "identifiers", False),
    ColumnInfo("email", "contact", False),
    ColumnInfo("delivery_phone", "contact", True),
    ColumnInfo("total", "financial", False),
    ColumnInfo("placed_at", "financial", False),
)


def batch(
    table: str, columns: tuple[ColumnInfo, ...], rows: list[tuple[Any, ...]], source: str = "crm"
) -> RecordBatch:
    return RecordBatch(source=source, table=table, columns=columns, record_id_index=0, rows=rows)


async def stream(batches: Iterable[RecordBatch]) -> AsyncIterator[RecordBatch]:
    for item in batches:
        await asyncio.sleep(0)
        yield item


async def export(
    tmp_path: Path, batches: Iterable[RecordBatch], formats: tuple[str, ...] = ("json", "csv")
) -> dict[str, ExportFile]:
    return await write_exports(
        stream(batches), directory=tmp_path / "out", formats=formats, header=HEADER
    )


def sample_batches() -> list[RecordBatch]:
    placed = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)
    return [
        batch(
            "contacts",
            CONTACT_COLUMNS,
            [(1, "jane.doe@example.com", "Jane Doe", date(1980, 1, 2))],
        ),
        batch(
            "orders",
            ORDER_COLUMNS,
            [
                (10, "jane.doe@example.com", "+441632960001", Decimal("12.50"), placed),
                (11, "jane.doe@example.com", None, Decimal("-3.00"), placed + timedelta(days=1)),
            ],
        ),
        # The same table again, in a second batch: still one block of rows.
        batch(
            "orders",
            ORDER_COLUMNS,
            [(12, "jane.doe@example.com", "+441632960001", Decimal("0.99"), placed)],
        ),
    ]


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# ---------------------------------------------------------------- JSON


async def test_json_document_has_header_tables_and_summary(tmp_path: Path) -> None:
    files = await export(tmp_path, sample_batches(), formats=("json",))
    document = json.loads(files["json"].path.read_bytes())

    assert list(document) == ["export", "supplementary_information", "tables", "summary"]
    assert document["export"] == HEADER["export"]
    assert [(block["source"], block["table"]) for block in document["tables"]] == [
        ("crm", "contacts"),
        ("crm", "orders"),
    ]
    contacts, orders = document["tables"]
    assert contacts["columns"]["email"] == {"category": "contact", "provided_by_subject": True}
    assert contacts["rows"] == [
        {"id": 1, "email": "jane.doe@example.com", "name": "Jane Doe", "born": "1980-01-02"}
    ]
    assert [row["order_id"] for row in orders["rows"]] == [10, 11, 12]
    assert orders["rows"][1] == {
        "order_id": 11,
        "email": "jane.doe@example.com",
        "delivery_phone": None,
        "total": "-3.00",
        "placed_at": "2026-03-02T09:30:15.250000+00:00",
    }
    assert document["summary"] == {
        "records": 4,
        "tables": [
            {"source": "crm", "table": "contacts", "records": 1},
            {"source": "crm", "table": "orders", "records": 3},
        ],
    }


async def test_json_round_trips_every_kind_of_value(tmp_path: Path) -> None:
    identifier = uuid.uuid4()
    columns = tuple(
        ColumnInfo(name, "misc", False)
        for name in ("id", "text", "when", "day", "at", "amount", "raw", "flag", "ratio", "extra")
    )
    odd_zone = timezone(timedelta(hours=-5, minutes=-30))
    rows = [
        (
            1,
            'Zoë "quoted" \\ back\nslash 😀 \x01',
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=odd_zone),
            date(2000, 2, 29),
            time(23, 59, 58),
            Decimal("1234567890.123456789"),
            b"\x00\xffbytes",
            True,
            0.1,
            {"nested": [1, "two", date(2026, 1, 1)]},
        ),
        (2, None, None, None, None, None, None, False, float("nan"), identifier),
        (3, "", datetime(2026, 1, 2, 3, 4, 5), None, None, Decimal("-0"), b"", None, -2.5, None),
    ]
    files = await export(tmp_path, [batch("kinds", columns, rows)], formats=("json",))
    [block] = json.loads(files["json"].path.read_bytes())["tables"]
    first, second, third = block["rows"]

    assert first == {
        "id": 1,
        "text": 'Zoë "quoted" \\ back\nslash 😀 \x01',
        "when": "2026-01-02T03:04:05-05:30",
        "day": "2000-02-29",
        "at": "23:59:58",
        "amount": "1234567890.123456789",
        "raw": base64.b64encode(b"\x00\xffbytes").decode(),
        "flag": True,
        "ratio": 0.1,
        "extra": {"nested": [1, "two", "2026-01-01"]},
    }
    assert second["text"] is None and second["when"] is None and second["flag"] is False
    assert second["ratio"] == "nan"  # NaN is not JSON: kept as text
    assert second["extra"] == str(identifier)
    assert third["when"] == "2026-01-02T03:04:05" and third["amount"] == "-0"
    assert third["raw"] == "" and third["ratio"] == -2.5 and third["text"] == ""


async def test_json_keys_with_percent_signs_and_quotes(tmp_path: Path) -> None:
    columns = (
        ColumnInfo("id", "misc", False),
        ColumnInfo("100%s done", "misc", False),
        ColumnInfo('say "hi"', "misc", False),
    )
    files = await export(tmp_path, [batch("t", columns, [(1, "a", "b")])], formats=("json",))
    [block] = json.loads(files["json"].path.read_bytes())["tables"]
    assert block["rows"] == [{"id": 1, "100%s done": "a", 'say "hi"': "b"}]


async def test_undecodable_text_still_gives_valid_json_and_csv(tmp_path: Path) -> None:
    columns = (ColumnInfo("id", "misc", False), ColumnInfo("note", "misc", False))
    files = await export(tmp_path, [batch("t", columns, [(1, "bad \udc80 text")])])
    [block] = json.loads(files["json"].path.read_bytes())["tables"]
    assert block["rows"][0]["note"] == "bad \udc80 text"
    data = read_zip(files["csv"].path)["misc.csv"]
    assert csv_rows(data)[1][-1] == "bad \\udc80 text"


async def test_nothing_to_export_gives_empty_but_valid_files(tmp_path: Path) -> None:
    files = await export(tmp_path, [])
    document = json.loads(files["json"].path.read_bytes())
    assert document["tables"] == [] and document["summary"] == {"records": 0, "tables": []}
    entries = read_zip(files["csv"].path)
    assert set(entries) == {"manifest.json", "supplementary_information.json"}


# ---------------------------------------------------------------- CSV


async def test_csv_zip_has_one_file_per_category_and_a_manifest(tmp_path: Path) -> None:
    files = await export(tmp_path, sample_batches(), formats=("csv",))
    assert files["csv"].file_name == "personal-data.zip"
    entries = read_zip(files["csv"].path)
    assert set(entries) == {
        "identifiers.csv",
        "contact.csv",
        "profile.csv",
        "financial.csv",
        "supplementary_information.json",
        "manifest.json",
    }

    contact = csv_rows(entries["contact.csv"])
    # The union of both tables' contact columns, in first-seen order; blanks where absent.
    assert contact == [
        ["source", "table", "record_id", "email", "name", "delivery_phone"],
        ["crm", "contacts", "1", "jane.doe@example.com", "Jane Doe", ""],
        ["crm", "orders", "10", "jane.doe@example.com", "", "+441632960001"],
        ["crm", "orders", "11", "jane.doe@example.com", "", ""],
        ["crm", "orders", "12", "jane.doe@example.com", "", "+441632960001"],
    ]
    assert csv_rows(entries["financial.csv"]) == [
        ["source", "table", "record_id", "total", "placed_at"],
        ["crm", "orders", "10", "12.50", "2026-03-01T09:30:15.250000+00:00"],
        ["crm", "orders", "11", "-3.00", "2026-03-02T09:30:15.250000+00:00"],
        ["crm", "orders", "12", "0.99", "2026-03-01T09:30:15.250000+00:00"],
    ]
    assert csv_rows(entries["identifiers.csv"])[0] == [
        "source",
        "table",
        "record_id",
        "id",
        "order_id",
    ]
    # RFC 4180 line endings.
    assert entries["profile.csv"] == b"source,table,record_id,born\r\ncrm,contacts,1,1980-01-02\r\n"

    manifest = json.loads(entries["manifest.json"])
    assert manifest["format_version"] == 2
    assert manifest["export"] == HEADER["export"]
    assert manifest["summary"]["records"] == 4
    listed = {item["name"]: item for item in manifest["files"]}
    assert set(listed) == set(entries) - {"manifest.json"}
    for name, item in listed.items():
        assert item["sha256"] == hashlib.sha256(entries[name]).hexdigest(), name
        assert item["bytes"] == len(entries[name]), name
    assert listed["contact.csv"]["records"] == 4
    assert listed["supplementary_information.json"]["records"] is None
    assert (
        json.loads(entries["supplementary_information.json"])
        == (HEADER["supplementary_information"])
    )


async def test_csv_quotes_per_rfc_4180(tmp_path: Path) -> None:
    columns = (ColumnInfo("id", "notes", False), ColumnInfo("note", "notes", True))
    values = ["comma, inside", 'a "quote"', "two\r\nlines", "plain", None]
    rows = [(index, value) for index, value in enumerate(values)]
    files = await export(tmp_path, [batch("notes", columns, rows)], formats=("csv",))
    parsed = csv_rows(read_zip(files["csv"].path)["notes.csv"])
    assert [row[-1] for row in parsed[1:]] == [
        "comma, inside",
        'a "quote"',
        "two\r\nlines",
        "plain",
        "",
    ]


@pytest.mark.parametrize("chunk", [None, 3, 7], ids=["default", "3-byte-reads", "7-byte-reads"])
async def test_later_tables_widen_a_category_even_with_line_breaks_in_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk is not None:
        # Small reads split CRLFs between reads while the earlier parts are widened.
        monkeypatch.setattr(csv_zip, "CHUNK", chunk)
    notes = (ColumnInfo("id", "ids", False), ColumnInfo("note", "notes", True))
    plain = (ColumnInfo("id", "ids", False), ColumnInfo("text", "notes", True))
    wider = (
        ColumnInfo("id", "ids", False),
        ColumnInfo("note", "notes", True),
        ColumnInfo("extra", "notes", True),
    )
    batches = [
        batch("multiline", notes, [(1, "first\r\nsecond"), (2, 'say "hi"\nbye')]),
        batch("plain", plain, [(3, "a,b"), (4, "c\r")]),
        batch("wider", wider, [(5, "x", "y")]),
    ]
    files = await export(tmp_path, batches, formats=("csv",))
    entries = read_zip(files["csv"].path)
    assert csv_rows(entries["notes.csv"]) == [
        ["source", "table", "record_id", "note", "text", "extra"],
        ["crm", "multiline", "1", "first\r\nsecond", "", ""],
        ["crm", "multiline", "2", 'say "hi"\nbye', "", ""],
        ["crm", "plain", "3", "", "a,b", ""],
        ["crm", "plain", "4", "", "c\r", ""],
        ["crm", "wider", "5", "x", "", "y"],
    ]
    listed = {item["name"]: item for item in json.loads(entries["manifest.json"])["files"]}
    assert listed["notes.csv"]["sha256"] == hashlib.sha256(entries["notes.csv"]).hexdigest()
    assert listed["notes.csv"]["records"] == 5


@pytest.mark.parametrize("repeat", [1, 100], ids=["distinct", "repeated"])
async def test_formula_cells_are_neutralised_numbers_untouched(tmp_path: Path, repeat: int) -> None:
    columns = (
        ColumnInfo("id", "misc", False),
        ColumnInfo("=HYPERLINK(1)", "misc", False),  # a hostile column name
        ColumnInfo("text", "misc", False),
        ColumnInfo("mixed", "misc", False),
        ColumnInfo("number", "misc", False),
    )
    hostile = ["=1+1", "+44 20", "-2+3", "@SUM(A1)", "\t=cmd", "\r+cmd", "safe", "a=b"]
    rows = [
        (index, value, value, value if index % 2 else -index, -index - 0.5)
        for index, value in enumerate(hostile * repeat)
    ]
    files = await export(tmp_path, [batch("t", columns, rows)], formats=("csv",))
    parsed = csv_rows(read_zip(files["csv"].path)["misc.csv"])

    assert parsed[0][3:] == ["id", "'=HYPERLINK(1)", "text", "mixed", "number"]
    expected = ["'=1+1", "'+44 20", "'-2+3", "'@SUM(A1)", "'\t=cmd", "'\r+cmd", "safe", "a=b"]
    for index, row in enumerate(parsed[1 : len(hostile) + 1]):
        assert row[4] == expected[index]
        assert row[5] == expected[index]
        assert row[6] == (expected[index] if index % 2 else str(-index))
        assert row[7] == str(-index - 0.5)
    assert parsed[1][6] == "0" and parsed[3][6] == "-2"


async def test_csv_category_names_are_safe_file_names(tmp_path: Path) -> None:
    columns = (
        ColumnInfo("id", "../../etc/passwd", False),
        ColumnInfo("a", "manifest", False),
        ColumnInfo("b", "Manifest", False),
    )
    files = await export(tmp_path, [batch("t", columns, [(1, 2, 3)])], formats=("csv",))
    names = set(read_zip(files["csv"].path))
    assert {"etc_passwd.csv", "manifest.csv", "Manifest-2.csv", "manifest.json"} <= names


# ---------------------------------------------------------------- files


async def test_files_are_private_and_renamed_when_complete(tmp_path: Path) -> None:
    progress: list[int] = []

    async def on_progress(records: int) -> None:
        progress.append(records)

    directory = tmp_path / "exports" / "request"
    files = await write_exports(
        stream(sample_batches()),
        directory=directory,
        formats=["json", "csv"],
        header=HEADER,
        on_progress=on_progress,
    )
    assert progress == [1, 3, 4]
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [f"{files['json'].export_id}.json", f"{files['csv'].export_id}.zip"]
    )
    for folder in (directory, directory.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for file in files.values():
        assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
        assert file.size_bytes == file.path.stat().st_size
        assert file.sha256 == hashlib.sha256(file.path.read_bytes()).hexdigest()
    assert files["json"].export_id != files["csv"].export_id


async def test_a_failure_leaves_no_file_behind(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[RecordBatch]:
        for item in sample_batches():
            yield item
        raise RuntimeError("source went away")

    directory = tmp_path / "out"
    with pytest.raises(RuntimeError):
        await write_exports(failing(), directory=directory, formats=FORMATS, header=HEADER)
    assert list(directory.iterdir()) == []


async def test_cancelling_leaves_no_file_behind(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[RecordBatch]:
        number = 0
        while True:
            yield batch("t", CONTACT_COLUMNS, [(number, "x", "y", None)])
            number += 1
            started.set()
            await asyncio.sleep(0)

    directory = tmp_path / "out"
    task = asyncio.create_task(
        write_exports(endless(), directory=directory, formats=FORMATS, header=HEADER)
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(directory.iterdir()) == []


async def test_rejects_unknown_formats_and_reserved_header_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await write_exports(stream([]), directory=tmp_path, formats=["xml"], header={})
    with pytest.raises(ValueError):
        await write_exports(stream([]), directory=tmp_path, formats=[], header={})
    with pytest.raises(ValueError):
        await write_exports(stream([]), directory=tmp_path, formats=["json"], header={"tables": 1})


FORMATS = ("json", "csv")


# ---------------------------------------------------------------- memory


WIDE_COLUMNS = (
    ColumnInfo("id", "identifiers", False),
    ColumnInfo("email", "contact", True),
    ColumnInfo("name", "contact", True),
    ColumnInfo("visited_at", "activity", False),
    ColumnInfo("page", "activity", False),
    ColumnInfo("amount", "financial", False),
    ColumnInfo("note", "notes", True),
)


async def synthetic(rows: int, batch_size: int = 2000) -> AsyncIterator[RecordBatch]:
    """A subject with ``rows`` records, made on the fly (nothing held between batches)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, rows, batch_size):
        yield batch(
            "visits",
            WIDE_COLUMNS,
            [
                (
                    number,
                    "jane.doe@example.com",
                    "Jane Doe",
                    start + timedelta(seconds=number),
                    f"/products/{number % 977}?ref=mail",
                    Decimal(number % 10_000) / 100,
                    f"visit {number}, from a newsletter" if number % 3 else None,
                )
                for number in range(first, min(rows, first + batch_size))
            ],
        )


async def _peak_bytes(tmp_path: Path, rows: int) -> int:
    tracemalloc.start()
    try:
        files = await write_exports(
            synthetic(rows), directory=tmp_path / str(rows), formats=FORMATS, header=HEADER
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    manifest = json.loads(read_zip(files["csv"].path)["manifest.json"])
    assert manifest["summary"]["records"] == rows
    for file in files.values():
        os.unlink(file.path)
    return peak


async def test_memory_stays_flat_whatever_the_row_count(tmp_path: Path) -> None:
    small = await _peak_bytes(tmp_path, 10_000)
    large = await _peak_bytes(tmp_path, 100_000)
    assert large < 30 * 1024 * 1024, large
    # Ten times the rows, (about) the same peak: nothing accumulates per row.
    assert large < small * 1.25 + 2 * 1024 * 1024, (small, large)


# ---------------------------------------------------------------- pre-encoded tables


class LinesTable:
    """A source-encoded table (``EncodedTable``) that writes ready lines, as a source would.

    Its rows are cut into two streams, each in small chunks, to show that the writer takes
    interleaved chunks from concurrent streams.
    """

    def __init__(
        self,
        table: str,
        columns: tuple[ColumnInfo, ...],
        rows: list[tuple[Any, ...]],
        fail_after: int | None = None,
        pause: float = 0.0,
    ) -> None:
        self.source = "crm"
        # Seconds each chunk takes to arrive (a slow source), so progress can be observed.
        self.pause = pause
        self.table = table
        self.columns = columns
        self.record_id_index = 0
        self.rows = rows
        self.fail_after = fail_after

    def _stream(self, lines: list[bytes], *, whole_lines: bool) -> Any:
        """JSON streams send whole lines (two a chunk); CSV ones cut rows anywhere."""
        if whole_lines:
            chunks = [b"".join(lines[i : i + 2]) for i in range(0, len(lines), 2)]
        else:
            data = b"".join(lines)
            chunks = [data[i : i + 7] for i in range(0, len(data), 7)]

        async def stream(sink: Any) -> int:
            for number, chunk in enumerate(chunks):
                if self.fail_after is not None and number >= self.fail_after:
                    raise RuntimeError("the source went away")
                sink(chunk)
                await asyncio.sleep(self.pause)
            return len(lines)

        return stream

    def json_streams(self) -> list[Any]:
        names = [column.name for column in self.columns]
        lines = [
            (json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n").encode()
            for row in self.rows
        ]
        halves = (lines[::2], lines[1::2])
        return [self._stream(half, whole_lines=True) for half in halves]

    def csv_streams(self, cells: Any, lead: tuple[str, str]) -> list[Any]:
        def line(row: tuple[Any, ...]) -> bytes:
            buffer = io.StringIO()
            values = [row[0], *("" if index is None else row[index] for index in cells)]
            texts = ["" if value is None else encoding.neutralise(str(value)) for value in values]
            csv.writer(buffer, lineterminator="\n").writerow([*lead, *texts])
            return buffer.getvalue().encode()

        lines = [line(row) for row in self.rows]
        halves = (lines[::2], lines[1::2])
        return [self._stream(half, whole_lines=False) for half in halves]


NOTE_COLUMNS = (
    ColumnInfo("id", "ids", False),
    ColumnInfo("note", "notes", True),
    ColumnInfo("flag", "notes", False),
)
NOTES = [
    (1, "plain", "yes"),
    (2, "=1+1", None),
    (3, 'say "hi", twice', "no"),
    (4, "two\r\nlines", "yes"),
    (5, "line\nbreak", ""),
    (6, "Zoë 😀", "-1"),
]


@pytest.mark.parametrize("multiline", [True, False], ids=["line-breaks", "single-lines"])
async def test_encoded_tables_write_what_batches_of_the_same_rows_write(
    tmp_path: Path, multiline: bool
) -> None:
    notes = NOTES if multiline else [row for row in NOTES if "\n" not in row[1]]
    # A later table adds a column to the "notes" category: the encoded parts are widened.
    later = (ColumnInfo("id", "ids", False), ColumnInfo("extra", "notes", True))
    as_batches = [batch("notes", NOTE_COLUMNS, notes), batch("later", later, [(9, "x")])]
    as_encoded: list[Any] = [LinesTable("notes", NOTE_COLUMNS, notes), as_batches[1]]

    expected = await write_exports(
        stream(as_batches), directory=tmp_path / "batches", formats=FORMATS, header=HEADER
    )
    files = await write_exports(
        stream(as_encoded), directory=tmp_path / "encoded", formats=FORMATS, header=HEADER
    )

    document = json.loads(files["json"].path.read_bytes())
    wanted = json.loads(expected["json"].path.read_bytes())
    first = document["tables"][0]
    first["rows"].sort(key=lambda row: row["id"])  # the two streams interleave
    assert document == wanted
    entries, wanted_entries = read_zip(files["csv"].path), read_zip(expected["csv"].path)
    assert set(entries) == set(wanted_entries)
    for name in ("ids.csv", "notes.csv"):
        header, *rows = csv_rows(entries[name])
        wanted_header, *wanted_rows = csv_rows(wanted_entries[name])
        assert header == wanted_header and sorted(rows) == sorted(wanted_rows), name
        assert entries[name].count(b"\r\n") >= len(rows) + 1  # CRLF line ends
    manifest = json.loads(entries["manifest.json"])
    assert manifest["summary"] == json.loads(wanted_entries["manifest.json"])["summary"]
    for item in manifest["files"]:
        assert item["sha256"] == hashlib.sha256(entries[item["name"]]).hexdigest()
    for file in files.values():
        assert file.sha256 == hashlib.sha256(file.path.read_bytes()).hexdigest()


async def test_a_failing_encoded_table_leaves_no_file_and_keeps_its_error(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    failing = LinesTable("notes", NOTE_COLUMNS, NOTES, fail_after=2)
    with pytest.raises(RuntimeError, match="went away"):
        await write_exports(stream([failing]), directory=directory, formats=FORMATS, header=HEADER)
    assert list(directory.iterdir()) == []


async def test_progress_is_reported_while_an_encoded_table_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "_PROGRESS_SECONDS", 0.001)
    seen: list[int] = []

    async def on_progress(records: int) -> None:
        seen.append(records)

    rows = [(number, f"note {number}", "yes") for number in range(200)]
    await write_exports(
        stream([LinesTable("notes", NOTE_COLUMNS, rows, pause=0.005)]),
        directory=tmp_path / "out",
        formats=["json"],
        header=HEADER,
        on_progress=on_progress,
    )
    assert seen[-1] == 200
    assert any(0 < records < 200 for records in seen), seen
