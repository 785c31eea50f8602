"""Streaming export writer: one pass over the subject's records writes every format at once.

Memory stays constant whatever the row count: each batch is encoded and written to disk as
it arrives and then dropped. JSON goes straight into its file; CSV rows go to one temporary
part file per (category, table), assembled into the zip at the end. Files appear under their
final name only when complete (written under a temporary name, then renamed), and are
readable by the service's user alone.

Never log or raise with record values: messages name formats and counts only.
"""

import asyncio
import base64
import csv
import hashlib
import io
import json
import math
import operator
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import repeat
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, Protocol

from app.services.sources.base import ColumnInfo, RecordBatch

FORMATS = ("json", "csv")
SUFFIXES = {"json": ".json", "csv": ".zip"}
MEDIA_TYPES = {"json": "application/json", "csv": "application/zip"}
MANIFEST_VERSION = 1

_CHUNK = 1 << 20
# Level 1: several times faster than the default for a little more size.
_ZIP_LEVEL = 1


@dataclass(frozen=True)
class ExportFile:
    """A finished export file, ready to be recorded (``exports.record_exports``)."""

    export_id: uuid.UUID
    format: str
    path: Path
    file_name: str
    size_bytes: int
    sha256: str


# ---------------------------------------------------------------- values
#
# Batches are encoded column by column: one type check per column picks a chain of C-level
# conversions (``map(date.isoformat, ...)``) for the whole column, and rows are then
# assembled with ``str.join`` / ``%``. Only columns mixing types go value by value.

_NoneType = type(None)
_BOOL_TEXT = {True: "true", False: "false"}
_NON_FINITE = frozenset({"nan", "inf", "-inf"})
_quote = '"%s"'.__mod__

ColumnEncoder = Callable[[Sequence[Any]], Iterable[str]]


def json_default(value: Any) -> Any:
    """JSON for values the encoder does not know: ISO dates, exact decimals, base64 bytes."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _json_safe(value: Any) -> Any:
    """Slow path for what the encoder refused: non-finite floats, odd keys."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else str(json_default(key)): _json_safe(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


_ENCODER = json.JSONEncoder(
    default=json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
)


def json_text(value: Any) -> str:
    """Any value as JSON text (the per-value path)."""
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError):
        return _ENCODER.encode(_json_safe(value))


def _utf8(text: str) -> bytes:
    # A lone surrogate (undecodable text from a source) becomes its valid JSON escape.
    return text.encode("utf-8", "backslashreplace")


def _json_floats(values: Sequence[float]) -> Iterable[str]:
    cells = list(map(float.__repr__, values))
    # NaN and infinities are not JSON: they become strings.
    return cells if _NON_FINITE.isdisjoint(cells) else list(map(json_text, values))


_JSON_COLUMNS: dict[type, ColumnEncoder] = {
    str: lambda values: map(encode_basestring, values),
    int: lambda values: map(int.__repr__, values),
    float: _json_floats,
    bool: lambda values: map(_BOOL_TEXT.__getitem__, values),
    datetime: lambda values: map(_quote, map(datetime.isoformat, values)),
    date: lambda values: map(_quote, map(date.isoformat, values)),
    time: lambda values: map(_quote, map(time.isoformat, values)),
    Decimal: lambda values: map(_quote, values),
    uuid.UUID: lambda values: map(_quote, values),
}


# Types whose equal values always print the same (unlike 1.0/1.00 or two time zones).
_SAME_TEXT_WHEN_EQUAL = frozenset({str, int, bool, date, uuid.UUID})


def _encode_column(
    values: Sequence[Any],
    encoders: dict[type, ColumnEncoder],
    one_value: Callable[[Any], str],
    null: str,
) -> Sequence[str]:
    """A column's cells: a whole-column encoder when the column holds one type (and nulls)."""
    kinds = set(map(type, values))
    has_null = _NoneType in kinds
    kinds.discard(_NoneType)
    if not kinds:
        return [null] * len(values)
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    encode = encoders.get(kind) if kind is not None else None
    if encode is None:
        return [null if value is None else one_value(value) for value in values]
    if kind in _SAME_TEXT_WHEN_EQUAL and len(set(values[:64])) <= 16:
        # Few distinct values (the subject's own email on every row, a status, a date):
        # encode each once and look the rest up.
        distinct = dict.fromkeys(values)
        distinct.pop(None, None)
        lookup = dict(zip(distinct, encode(list(distinct)), strict=True))
        lookup[None] = null
        return list(map(lookup.__getitem__, values))
    if not has_null:
        return list(encode(values))
    encoded = iter(encode([value for value in values if value is not None]))
    return [null if value is None else next(encoded) for value in values]


def _json_column(values: Sequence[Any]) -> Sequence[str]:
    return _encode_column(values, _JSON_COLUMNS, json_text, "null")


# Cells a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_AFTER_NUL = tuple(f"\x00{start}" for start in _FORMULA_STARTS)
_CSV_QUOTE = re.compile('[",\r\n]')


def neutralise(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_text(text: str) -> str:
    """A text cell: neutralised, then quoted per RFC 4180 when it needs to be."""
    text = neutralise(text)
    if _CSV_QUOTE.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_texts(values: Sequence[str]) -> Iterable[str]:
    # Whole-column scans (C speed) decide; a false hit only costs the per-value path.
    joined = "\x00".join(values)
    if joined.startswith(_FORMULA_STARTS) or any(mark in joined for mark in _FORMULA_AFTER_NUL):
        return map(csv_text, values)
    if '"' in joined:
        return map(_quote, map(operator.methodcaller("replace", '"', '""'), values))
    if "," in joined or "\n" in joined or "\r" in joined:
        return map(_quote, values)
    return values


def _csv_cell(value: Any) -> str:
    """One CSV cell of any type: numbers untouched, dates ISO 8601, bytes base64."""
    if isinstance(value, bool):
        return _BOOL_TEXT[value]
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict | list | tuple):
        return csv_text(json_text(value))
    return csv_text(str(value))


_CSV_COLUMNS: dict[type, ColumnEncoder] = {
    str: _csv_texts,
    int: lambda values: map(int.__repr__, values),
    float: lambda values: map(float.__repr__, values),
    bool: lambda values: map(_BOOL_TEXT.__getitem__, values),
    datetime: lambda values: map(datetime.isoformat, values),
    date: lambda values: map(date.isoformat, values),
    time: lambda values: map(time.isoformat, values),
    Decimal: lambda values: map(Decimal.__str__, values),
    uuid.UUID: lambda values: map(uuid.UUID.__str__, values),
}


def _csv_column(values: Sequence[Any]) -> Sequence[str]:
    return _encode_column(values, _CSV_COLUMNS, _csv_cell, "")


def _csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    """Rows of ready cells as RFC 4180 lines (CRLF-terminated)."""
    lines = list(map(",".join, rows))
    return _utf8("\r\n".join(lines) + "\r\n") if lines else b""


# ---------------------------------------------------------------- files


def private_directory(directory: Path) -> None:
    """Create ``directory`` (and missing parents) readable by the service's user only."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)


def _create_private(path: Path, buffering: int = _CHUNK) -> IO[bytes]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return open(descriptor, "wb", buffering=buffering)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _seal(file: IO[bytes], temp: Path, final: Path) -> tuple[int, str]:
    """Flush to disk and move under the final name: (size, sha256)."""
    file.flush()
    os.fsync(file.fileno())
    file.close()
    size, sha256 = temp.stat().st_size, _sha256_of(temp)
    os.replace(temp, final)
    return size, sha256


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


# ---------------------------------------------------------------- format writers


BlockKey = tuple[str, str, tuple[ColumnInfo, ...]]


class _FormatWriter(Protocol):
    format: str

    def write(self, batch: RecordBatch, values: list[tuple[Any, ...]]) -> None: ...

    def finish(self, summary: dict[str, Any]) -> ExportFile: ...

    def abort(self) -> None: ...


class _JsonWriter:
    """``{<header keys>, "tables": [{source, table, columns, rows}], "summary": {...}}``."""

    format = "json"

    def __init__(
        self, directory: Path, export_id: uuid.UUID, header: dict[str, Any], file_name: str
    ) -> None:
        self.export_id = export_id
        self.file_name = file_name
        self.final = directory / f"{export_id}{SUFFIXES['json']}"
        self.temp = directory / f".{export_id}.json.part"
        self.file = _create_private(self.temp)
        self.block: BlockKey | None = None
        self.row_template = ""
        self.rows_in_block = 0
        self.blocks = 0
        try:
            opening = "".join(
                f"{json_text(key)}:{json_text(value)},\n" for key, value in header.items()
            )
            self.file.write(_utf8("{" + opening + '"tables":['))
        except BaseException:
            self.abort()
            raise

    def _start_block(self, batch: RecordBatch) -> None:
        if self.block is not None:
            self.file.write(b"\n]}")
        self.block = (batch.source, batch.table, batch.columns)
        self.rows_in_block = 0
        # '{"id":%s,"email":%s}': each row is one %-formatting of its encoded cells.
        keys = (encode_basestring(column.name).replace("%", "%%") for column in batch.columns)
        self.row_template = "{" + ",".join(f"{key}:%s" for key in keys) + "}"
        columns = {
            column.name: {
                "category": column.category,
                "provided_by_subject": column.provided_by_subject,
            }
            for column in batch.columns
        }
        start = json_text({"source": batch.source, "table": batch.table, "columns": columns})
        # The block's opening without its closing brace, then the rows array.
        prefix = ",\n" if self.blocks else "\n"
        self.file.write(_utf8(prefix + start[:-1] + ',"rows":[\n'))
        self.blocks += 1

    def write(self, batch: RecordBatch, values: list[tuple[Any, ...]]) -> None:
        if (batch.source, batch.table, batch.columns) != self.block:
            self._start_block(batch)
        if not batch.rows:
            return
        if values:
            cells = [_json_column(column) for column in values]
            text = ",\n".join(map(self.row_template.__mod__, zip(*cells, strict=True)))
        else:
            text = ",\n".join(["{}"] * len(batch.rows))
        self.file.write(_utf8(",\n" + text if self.rows_in_block else text))
        self.rows_in_block += len(batch.rows)

    def finish(self, summary: dict[str, Any]) -> ExportFile:
        if self.block is not None:
            self.file.write(b"\n]}")
        self.file.write(_utf8('\n],\n"summary":' + json_text(summary) + "}\n"))
        size, sha256 = _seal(self.file, self.temp, self.final)
        return ExportFile(self.export_id, "json", self.final, self.file_name, size, sha256)

    def abort(self) -> None:
        self.file.close()
        _unlink(self.temp)
        _unlink(self.final)


@dataclass
class _Part:
    """One table's cells of one category: CSV lines without a header, in a temp file.

    Lines are laid out in the category's columns as known when the table began (blank
    where the table lacks one); tables seen later can only append columns, which
    assembly adds as trailing blanks.
    """

    path: Path
    # Per category column so far: the batch's column index, or None for a blank cell.
    slots: list[int | None]
    rows: int = 0
    # A cell holds a line break, so lines cannot be told apart without parsing.
    multiline: bool = False


@dataclass
class _Category:
    name: str
    # Union of the column names of every table in this category, in first-seen order.
    columns: dict[str, None] = field(default_factory=dict)
    parts: list[_Part] = field(default_factory=list)


class _CsvWriter:
    """A zip: ``<category>.csv`` per data category, ``manifest.json``, supplementary info."""

    format = "csv"

    def __init__(
        self, directory: Path, export_id: uuid.UUID, header: dict[str, Any], file_name: str
    ) -> None:
        self.export_id = export_id
        self.file_name = file_name
        self.header = header
        self.final = directory / f"{export_id}{SUFFIXES['csv']}"
        self.temp = directory / f".{export_id}.zip.part"
        self.parts_dir = Path(tempfile.mkdtemp(prefix=f".{export_id}.", dir=directory))
        self.categories: dict[str, _Category] = {}
        self.block: BlockKey | None = None
        # The current table's parts, open for appending.
        self.open_parts: list[tuple[_Part, IO[bytes]]] = []
        self.part_count = 0
        self.prefix_cells: tuple[str, str] = ("", "")
        self.record_id_index = 0

    def _close_parts(self) -> None:
        for _part, file in self.open_parts:
            file.close()
        self.open_parts = []

    def _start_block(self, batch: RecordBatch) -> None:
        self._close_parts()
        self.block = (batch.source, batch.table, batch.columns)
        self.prefix_cells = (csv_text(batch.source), csv_text(batch.table))
        self.record_id_index = batch.record_id_index
        by_category: dict[str, list[int]] = {}
        for index, column in enumerate(batch.columns):
            by_category.setdefault(column.category, []).append(index)
        for name, indices in by_category.items():
            category = self.categories.setdefault(name, _Category(name))
            category.columns.update(dict.fromkeys(batch.columns[i].name for i in indices))
            position = {column: slot for slot, column in enumerate(category.columns)}
            slots: list[int | None] = [None] * len(position)
            for index in indices:
                slots[position[batch.columns[index].name]] = index
            part = _Part(self.parts_dir / f"{self.part_count}.csv", slots)
            self.part_count += 1
            category.parts.append(part)
            self.open_parts.append((part, _create_private(part.path, 1 << 18)))

    def write(self, batch: RecordBatch, values: list[tuple[Any, ...]]) -> None:
        if (batch.source, batch.table, batch.columns) != self.block:
            self._start_block(batch)
        if not batch.rows:
            return
        cells: dict[int, Sequence[str]] = {}

        def column(index: int) -> Sequence[str]:
            if index not in cells:
                cells[index] = _csv_column(values[index])
            return cells[index]

        # "source,table,record_id" once per row, shared by every category's part.
        lead = ",".join(self.prefix_cells) + ","
        prefixes = list(map(lead.__add__, column(self.record_id_index)))
        blanks = [""] * len(batch.rows)
        for part, file in self.open_parts:
            columns = [blanks if index is None else column(index) for index in part.slots]
            lines = _csv_lines(zip(prefixes, *columns, strict=True))
            # One line break per row unless some cell holds one.
            part.multiline = part.multiline or lines.count(b"\n") != len(batch.rows)
            file.write(lines)
            part.rows += len(batch.rows)

    def finish(self, summary: dict[str, Any]) -> ExportFile:
        self._close_parts()
        try:
            file = _create_private(self.temp)
            with zipfile.ZipFile(
                file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL
            ) as archive:
                names = _category_file_names(self.categories)
                files = [
                    _write_category(archive, category, name)
                    for category, name in zip(self.categories.values(), names, strict=True)
                ]
                extra = dict(self.header)
                if "supplementary_information" in extra:
                    document = _pretty_json(extra.pop("supplementary_information"))
                    files.append(_write_entry(archive, "supplementary_information.json", document))
                manifest = {
                    "format_version": MANIFEST_VERSION,
                    **extra,
                    "summary": summary,
                    "files": files,
                }
                archive.writestr("manifest.json", _pretty_json(manifest))
            size, sha256 = _seal(file, self.temp, self.final)
        finally:
            shutil.rmtree(self.parts_dir, ignore_errors=True)
        return ExportFile(self.export_id, "csv", self.final, self.file_name, size, sha256)

    def abort(self) -> None:
        self._close_parts()
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        _unlink(self.temp)
        _unlink(self.final)


def _pretty_json(document: Any) -> bytes:
    return _utf8(json.dumps(document, indent=2, ensure_ascii=False, default=json_default) + "\n")


def _category_file_names(categories: dict[str, _Category]) -> list[str]:
    """``<category>.csv``, made safe as a file name and unique."""
    names: list[str] = []
    taken = {"manifest.json", "supplementary_information.json"}
    for category in categories:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", category).strip("._") or "uncategorised"
        name, number = f"{stem}.csv", 2
        while name.lower() in taken:
            name, number = f"{stem}-{number}.csv", number + 1
        taken.add(name.lower())
        names.append(name)
    return names


class _HashingSink:
    """Counts and hashes the bytes of one zip entry as they are written into it."""

    def __init__(self, entry: IO[bytes]) -> None:
        self.entry = entry
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.entry.write(data)


def _write_category(archive: zipfile.ZipFile, category: _Category, name: str) -> dict[str, Any]:
    header = list(category.columns)
    rows = sum(part.rows for part in category.parts)
    # Widened rows gain one comma per added column; zip64 only when it could be needed.
    bound = sum(part.path.stat().st_size for part in category.parts) + rows * len(header)
    with archive.open(name, "w", force_zip64=bound + _CHUNK >= zipfile.ZIP64_LIMIT) as entry:
        sink = _HashingSink(entry)
        sink.write(_csv_lines([["source", "table", "record_id", *map(csv_text, header)]]))
        for part in category.parts:
            _copy_part(part, missing=len(header) - len(part.slots), sink=sink)
    return {"name": name, "sha256": sink.digest.hexdigest(), "bytes": sink.size, "rows": rows}


def _copy_part(part: _Part, *, missing: int, sink: _HashingSink) -> None:
    """A part's lines into its category file, with ``missing`` blank cells added to each."""
    if missing and part.multiline:
        # Rare: line breaks inside cells, so parse to find the rows.
        with open(part.path, encoding="utf-8", newline="") as source:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in csv.reader(source):
                writer.writerow([*row, *repeat("", missing)])
                if buffer.tell() >= _CHUNK:
                    sink.write(_utf8(buffer.getvalue()))
                    buffer.seek(0)
                    buffer.truncate()
            sink.write(_utf8(buffer.getvalue()))
        return
    line_end, widened = b"\r\n", b"," * missing + b"\r\n"
    with open(part.path, "rb") as source:
        carried = b""
        while chunk := source.read(_CHUNK):
            chunk = carried + chunk
            # A CRLF split across two reads is finished in the next one.
            carried = b"\r" if missing and chunk.endswith(b"\r") else b""
            chunk = chunk[: len(chunk) - len(carried)]
            sink.write(chunk.replace(line_end, widened) if missing else chunk)
        sink.write(carried)


def _write_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> dict[str, Any]:
    archive.writestr(name, data)
    digest = hashlib.sha256(data).hexdigest()
    return {"name": name, "sha256": digest, "bytes": len(data), "rows": None}


# ---------------------------------------------------------------- entry point


async def write_exports(
    batches: AsyncIterable[RecordBatch],
    *,
    directory: Path,
    formats: Collection[str],
    header: dict[str, Any],
    on_progress: Callable[[int], Awaitable[None]] | None = None,
    file_stem: str = "personal-data",
) -> dict[str, ExportFile]:
    """Write the subject's records in every requested format ("json", "csv") in one pass.

    ``header`` is the caller's metadata, written first in the JSON document (and into the
    CSV pack's ``manifest.json``; its ``supplementary_information`` becomes a file of its
    own). ``on_progress`` is awaited with the number of records written after each batch.
    Answers the finished files by format; on any failure no file is left behind.
    """
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"formats must be some of {FORMATS}")
    if {"tables", "summary"} & header.keys():
        raise ValueError("header keys 'tables' and 'summary' are reserved")
    private_directory(directory)
    writers: list[_FormatWriter] = []
    try:
        for export_format in FORMATS:
            if export_format in formats:
                writer_class = _JsonWriter if export_format == "json" else _CsvWriter
                file_name = f"{file_stem}{SUFFIXES[export_format]}"
                writers.append(writer_class(directory, uuid.uuid4(), header, file_name))
        records = 0
        tables: dict[tuple[str, str], int] = {}
        async for batch in batches:
            # Column-wise once for every format: each encodes a column in one go.
            values = list(zip(*batch.rows, strict=True))
            if values and len(values) != len(batch.columns):
                raise ValueError("a batch's rows do not have one value per column")
            for writer in writers:
                writer.write(batch, values)
            key = (batch.source, batch.table)
            tables[key] = tables.get(key, 0) + len(batch.rows)
            records += len(batch.rows)
            if on_progress is not None:
                await on_progress(records)
        summary = {
            "records": records,
            "tables": [
                {"source": source, "table": table, "records": count}
                for (source, table), count in tables.items()
            ],
        }
        # Zipping can take seconds: off the event loop, which keeps serving meanwhile.
        finishing = asyncio.ensure_future(
            asyncio.to_thread(lambda: {w.format: w.finish(summary) for w in writers})
        )
        try:
            return await asyncio.shield(finishing)
        except asyncio.CancelledError:
            # The thread cannot be stopped: let it end before its files are removed.
            await asyncio.wait([finishing])
            raise
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
