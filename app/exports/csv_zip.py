"""The CSV pack: a zip with one ``<category>.csv`` per data category and its manifest.

While the export runs, each table's cells of each data category go to a part file (lines in
the category's columns as known when the table began): encoded here from batches, or
written by the source itself (an ``EncodedTable``'s row streams, one part each). At the end
each category becomes one zip entry: the header, then its parts, widened with blank cells
for columns that later tables added, CRLF line ends throughout, hashed as written.

A reader joins a record's lines across files by ``source,table,record_id``, so header names
are unique in each file (a clash is named ``<table>.<column>``), and a table's links to
other rows alone (the customer number every table repeats) make no line: every count in the
manifest is of records, as in the JSON document's summary.
"""

import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Awaitable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count, repeat
from pathlib import Path
from typing import IO, Any, cast

from app.core.encoding import csv_column, csv_lines, csv_text, json_default, neutralise, utf8
from app.data_sources.connectors.base import ColumnInfo, EncodedTable, RecordBatch, RowStream
from app.exports.files import (
    CHUNK,
    SUFFIXES,
    BlockKey,
    ExportFile,
    HashingFile,
    block_key,
    create_private,
    run_all,
    seal,
    unlink,
)

__all__ = ["LEAD", "MANIFEST_VERSION", "CsvWriter"]

# 2: each file lists its "records" (1 listed "rows", and counted links-only lines).
MANIFEST_VERSION = 2
# The first cells of every line: which record it is.
LEAD = ("source", "table", "record_id")
_LEAD_FOLDED = frozenset(name.casefold() for name in LEAD)
# Level 1: several times faster than the default for a little more size.
ZIP_LEVEL = 1
CRLF = b"\r\n"


@dataclass
class Part:
    """One table's cells of one category (or a share of them): CSV lines without a header.

    Lines are laid out in the category's columns as known when the table began (blank
    where the table lacks one); tables seen later can only append columns, which
    assembly adds as trailing blanks.
    """

    path: Path
    # Per category column so far: the table's column index, or None for a blank cell.
    slots: list[int | None]
    rows: int = 0
    # A cell holds a line break, so lines cannot be told apart without parsing.
    multiline: bool = False
    # CRLF as written by the service; LF as PostgreSQL's COPY writes it.
    line_end: bytes = CRLF


@dataclass
class Category:
    name: str
    # Header names: the union of its tables' columns, in first-seen order.
    columns: dict[str, None] = field(default_factory=dict)
    # Each header name case-folded: tools that ignore case must see no two alike.
    folded: dict[str, str] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)

    def header_for(self, table: str, column: str, taken: Collection[str]) -> str:
        """The column's header: its name, joining other tables' column of that name; or
        ``<table>.<column>`` where the name clashes with the lead, with a column of the
        table placed already (``taken``), or with another only differing in case."""
        for name in _header_candidates(table, column):
            folded = name.casefold()
            if folded in _LEAD_FOLDED or name in taken or self.folded.get(folded, name) != name:
                continue
            self.folded[folded] = name
            self.columns[name] = None
            return name
        raise AssertionError("unreachable: the candidates never end")


def _header_candidates(table: str, column: str) -> Iterator[str]:
    yield column
    yield f"{table}.{column}"
    # Only if a column is literally named "<table>.<column>" too.
    yield from (f"{table}.{column} ({number})" for number in count(2))


class CsvWriter:
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
        self.categories: dict[str, Category] = {}
        self.block: BlockKey | None = None
        # The current table's parts, open for appending.
        self.open_parts: list[tuple[Part, IO[bytes]]] = []
        self.part_count = 0
        self.prefix_cells: tuple[str, str] = ("", "")
        self.record_id_index = 0
        self.streamed = 0

    def _close_parts(self) -> None:
        for _part, file in self.open_parts:
            file.close()
        self.open_parts = []

    def _layouts(
        self, table: str, columns: tuple[ColumnInfo, ...], record_id_index: int
    ) -> list[tuple[Category, list[int | None]]]:
        """Per category of a new table: the category's cells as the table's column indexes."""
        by_category: dict[str, list[int]] = {}
        for index, column in enumerate(columns):
            by_category.setdefault(column.category, []).append(index)
        # Links alone say nothing new: no line for them, unless the table holds nothing else.
        facts = {
            name
            for name, indices in by_category.items()
            if any(not columns[index].link for index in indices)
        }
        layouts = []
        for name, indices in by_category.items():
            if facts and name not in facts:
                continue
            category = self.categories.setdefault(name, Category(name))
            placed: dict[str, int] = {}
            for index in indices:
                column_name = columns[index].name
                if index == record_id_index and column_name.casefold() == LEAD[2]:
                    continue  # the record's key under the lead's own name: the lead holds it
                placed[category.header_for(table, column_name, placed)] = index
            position = {header: slot for slot, header in enumerate(category.columns)}
            slots: list[int | None] = [None] * len(position)
            for header, index in placed.items():
                slots[position[header]] = index
            layouts.append((category, slots))
        return layouts

    def _new_part(self, category: Category, slots: list[int | None]) -> Part:
        part = Part(self.parts_dir / f"{self.part_count}.csv", slots)
        self.part_count += 1
        category.parts.append(part)
        return part

    def _start_block(self, batch: RecordBatch) -> None:
        self._close_parts()
        self.block = block_key(batch)
        self.prefix_cells = (csv_text(batch.source), csv_text(batch.table))
        self.record_id_index = batch.record_id_index
        for category, slots in self._layouts(batch.table, batch.columns, batch.record_id_index):
            part = self._new_part(category, slots)
            self.open_parts.append((part, create_private(part.path, 1 << 18)))

    def write(self, batch: RecordBatch, values: list[tuple[Any, ...]]) -> None:
        if block_key(batch) != self.block:
            self._start_block(batch)
        if not batch.rows:
            return
        cells: dict[int, Sequence[str]] = {}

        def column(index: int) -> Sequence[str]:
            if index not in cells:
                cells[index] = csv_column(values[index])
            return cells[index]

        # "source,table,record_id" once per row, shared by every category's part.
        lead = ",".join(self.prefix_cells) + ","
        prefixes = list(map(lead.__add__, column(self.record_id_index)))
        blanks = [""] * len(batch.rows)
        for part, file in self.open_parts:
            columns = [blanks if index is None else column(index) for index in part.slots]
            lines = csv_lines(zip(prefixes, *columns, strict=True))
            # One line break per row unless some cell holds one.
            part.multiline = part.multiline or lines.count(b"\n") != len(batch.rows)
            file.write(lines)
            part.rows += len(batch.rows)

    async def write_encoded(self, table: EncodedTable) -> int:
        self._close_parts()
        # A later batch of the same table must not append to these parts.
        self.block = None
        self.streamed = 0
        lead = (neutralise(table.source), neutralise(table.table))
        runs: list[Awaitable[int]] = []
        shares = 0
        layouts = self._layouts(table.table, table.columns, table.record_id_index)
        for index, (category, slots) in enumerate(layouts):
            first = index == 0
            streams = table.csv_streams(slots, lead)
            shares = shares or len(streams)
            for stream in streams:
                runs.append(self._run_share(stream, self._new_part(category, slots), first))
        counts = await run_all(runs)
        # Every category holds every row: the first one's shares count them.
        return sum(counts[:shares])

    async def _run_share(self, stream: RowStream, part: Part, counted: bool) -> int:
        """One row stream into a part file of its own (LF line ends, as COPY writes them)."""
        part.line_end = b"\n"
        newlines = 0

        def write(chunk: bytes) -> None:
            nonlocal newlines
            file.write(chunk)
            count = chunk.count(b"\n")
            newlines += count
            if counted:
                self.streamed += count

        with create_private(part.path, 1 << 18) as file:
            part.rows = await stream(write)
        part.multiline = newlines != part.rows
        return part.rows

    def finish(self, summary: dict[str, Any]) -> ExportFile:
        self._close_parts()
        try:
            file = HashingFile(self.temp)
            try:
                # Enough of a file for zipfile (write, tell, flush).
                write_pack(cast(IO[bytes], file), self.categories.values(), self.header, summary)
            except BaseException:
                file.close()
                raise
            size, sha256 = seal(file, self.temp, self.final)
        finally:
            shutil.rmtree(self.parts_dir, ignore_errors=True)
        return ExportFile(self.export_id, "csv", self.final, self.file_name, size, sha256)

    def abort(self) -> None:
        self._close_parts()
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        unlink(self.temp)
        unlink(self.final)


def pretty_json(document: Any) -> bytes:
    return utf8(json.dumps(document, indent=2, ensure_ascii=False, default=json_default) + "\n")


def write_pack(
    file: IO[bytes],
    categories: Iterable[Category],
    header: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    """The zip: ``<category>.csv`` per category, supplementary information, ``manifest.json``."""
    categories = list(categories)
    with zipfile.ZipFile(
        file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL
    ) as archive:
        names = _category_file_names([category.name for category in categories])
        files = [
            _write_category(archive, category, name)
            for category, name in zip(categories, names, strict=True)
        ]
        extra = dict(header)
        if "supplementary_information" in extra:
            document = pretty_json(extra.pop("supplementary_information"))
            files.append(_write_entry(archive, "supplementary_information.json", document))
        manifest = {"format_version": MANIFEST_VERSION, **extra, "summary": summary, "files": files}
        archive.writestr("manifest.json", pretty_json(manifest))


def _category_file_names(categories: list[str]) -> list[str]:
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


def _write_category(archive: zipfile.ZipFile, category: Category, name: str) -> dict[str, Any]:
    header = list(category.columns)
    rows = sum(part.rows for part in category.parts)
    # Widened rows gain one comma and a CR per added column; zip64 only when it could be needed.
    bound = sum(part.path.stat().st_size for part in category.parts) + rows * (len(header) + 1)
    with archive.open(name, "w", force_zip64=bound + CHUNK >= zipfile.ZIP64_LIMIT) as entry:
        sink = _HashingSink(entry)
        sink.write(csv_lines([[*LEAD, *map(csv_text, header)]]))
        for part in category.parts:
            _copy_part(part, missing=len(header) - len(part.slots), sink=sink)
    # Each line is one record's cells of this category.
    return {"name": name, "sha256": sink.digest.hexdigest(), "bytes": sink.size, "records": rows}


def _copy_part(part: Part, *, missing: int, sink: _HashingSink) -> None:
    """A part's lines into its category file: CRLF ends, ``missing`` blank cells added."""
    if part.multiline and (missing or part.line_end != CRLF):
        # Rare: line breaks inside cells, so parse to find the rows.
        with open(part.path, encoding="utf-8", newline="") as source:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in csv.reader(source):
                writer.writerow([*row, *repeat("", missing)])
                if buffer.tell() >= CHUNK:
                    sink.write(utf8(buffer.getvalue()))
                    buffer.seek(0)
                    buffer.truncate()
            sink.write(utf8(buffer.getvalue()))
        return
    line_end, widened = part.line_end, b"," * missing + CRLF
    rewrite = line_end != widened
    with open(part.path, "rb") as source:
        carried = b""
        while chunk := source.read(CHUNK):
            chunk = carried + chunk
            # A CRLF split across two reads is finished in the next one.
            carried = b"\r" if rewrite and line_end == CRLF and chunk.endswith(b"\r") else b""
            chunk = chunk[: len(chunk) - len(carried)]
            sink.write(chunk.replace(line_end, widened) if rewrite else chunk)
        sink.write(carried)


def _write_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> dict[str, Any]:
    archive.writestr(name, data)
    digest = hashlib.sha256(data).hexdigest()
    return {"name": name, "sha256": digest, "bytes": len(data), "records": None}
