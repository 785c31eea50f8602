"""Streaming export writer: one pass over the subject's records writes every format at once.

Memory stays constant whatever the row count: each batch is encoded and written to disk as
it arrives and then dropped. JSON goes straight into its file; CSV rows go to temporary part
files per (category, table), assembled into the zip at the end (``export_csv``). Tables a
source encodes itself (``EncodedTable``: PostgreSQL's COPY) stream into the same files.
Files appear under their final name only when complete (written under a temporary name,
then renamed), are hashed as they are written, and are readable by the service's user alone
(``export_files``).

Never log or raise with record values: messages name formats and counts only.
"""

import asyncio
import gc
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from app.core.encoding import encode_basestring, json_column, json_text, utf8
from app.data_sources.connectors.base import EncodedTable, RecordBatch
from app.exports.csv_zip import CsvWriter
from app.exports.files import (
    FORMATS,
    MEDIA_TYPES,
    SUFFIXES,
    BlockKey,
    ExportFile,
    HashingFile,
    block_key,
    private_directory,
    run_all,
    seal,
    unlink,
)

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "SUFFIXES",
    "ExportFile",
    "private_directory",
    "write_exports",
]

# Progress is reported at least this often while a pre-encoded table streams.
_PROGRESS_SECONDS = 1.0
# Batches allocate many short-lived objects; collecting every 700 allocations costs ~10 %.
_GC_GEN0_THRESHOLD = 50_000


# ---------------------------------------------------------------- format writers


class _FormatWriter(Protocol):
    format: str
    # Rows written so far of the EncodedTable being streamed (for progress).
    streamed: int

    def write(self, batch: RecordBatch, values: list[tuple[Any, ...]]) -> None: ...

    async def write_encoded(self, table: EncodedTable) -> int: ...

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
        self.file = HashingFile(self.temp)
        self.block: BlockKey | None = None
        self.row_template = ""
        self.rows_in_block = 0
        self.blocks = 0
        self.streamed = 0
        try:
            opening = "".join(
                f"{json_text(key)}:{json_text(value)},\n" for key, value in header.items()
            )
            self.file.write(utf8("{" + opening + '"tables":['))
        except BaseException:
            self.abort()
            raise

    def _start_block(self, key: BlockKey) -> None:
        if self.block is not None:
            self.file.write(b"\n]}")
        self.block = key
        source, table, columns = key
        self.rows_in_block = 0
        # '{"id":%s,"email":%s}': each row is one %-formatting of its encoded cells.
        keys = (encode_basestring(column.name).replace("%", "%%") for column in columns)
        self.row_template = "{" + ",".join(f"{key}:%s" for key in keys) + "}"
        described = {
            column.name: {
                "category": column.category,
                "provided_by_subject": column.provided_by_subject,
            }
            for column in columns
        }
        start = json_text({"source": source, "table": table, "columns": described})
        # The block's opening without its closing brace, then the rows array.
        prefix = ",\n" if self.blocks else "\n"
        self.file.write(utf8(prefix + start[:-1] + ',"rows":[\n'))
        self.blocks += 1

    def write(self, batch: RecordBatch, values: list[tuple[Any, ...]]) -> None:
        if block_key(batch) != self.block:
            self._start_block(block_key(batch))
        if not batch.rows:
            return
        if values:
            cells = [json_column(column) for column in values]
            text = ",\n".join(map(self.row_template.__mod__, zip(*cells, strict=True)))
        else:
            text = ",\n".join(["{}"] * len(batch.rows))
        self.file.write(utf8(",\n" + text if self.rows_in_block else text))
        self.rows_in_block += len(batch.rows)

    def _write_lines(self, lines: bytes) -> None:
        """Whole JSON object lines from any of a table's streams, as rows of the block."""
        rows = lines.count(b"\n")
        if not rows:
            return
        body = lines[:-1].replace(b"\n", b",\n")
        if self.rows_in_block:
            self.file.write(b",\n")
        self.file.write(body)
        self.rows_in_block += rows
        self.streamed += rows

    async def write_encoded(self, table: EncodedTable) -> int:
        if block_key(table) != self.block:
            self._start_block(block_key(table))
        self.streamed = 0
        counts = await run_all([stream(self._write_lines) for stream in table.json_streams()])
        return sum(counts)

    def finish(self, summary: dict[str, Any]) -> ExportFile:
        if self.block is not None:
            self.file.write(b"\n]}")
        self.file.write(utf8('\n],\n"summary":' + json_text(summary) + "}\n"))
        size, sha256 = seal(self.file, self.temp, self.final)
        return ExportFile(self.export_id, "json", self.final, self.file_name, size, sha256)

    def abort(self) -> None:
        self.file.close()
        unlink(self.temp)
        unlink(self.final)


# ---------------------------------------------------------------- entry point


_gc_holders = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the gen-0 GC threshold while exports run (restored when the last one ends)."""
    global _gc_holders, _gc_saved
    if _gc_holders == 0:
        _gc_saved = gc.get_threshold()
        gc.set_threshold(max(_gc_saved[0], _GC_GEN0_THRESHOLD), *_gc_saved[1:])
    _gc_holders += 1
    try:
        yield
    finally:
        _gc_holders -= 1
        if _gc_holders == 0 and _gc_saved is not None:
            gc.set_threshold(*_gc_saved)


async def _write_encoded(
    table: EncodedTable,
    writers: list[_FormatWriter],
    progress: Callable[[int], Awaitable[None]] | None,
) -> int:
    """Stream a pre-encoded table into every format; report progress about once a second."""
    running = asyncio.ensure_future(run_all([writer.write_encoded(table) for writer in writers]))
    try:
        while not running.done():
            await asyncio.wait([running], timeout=_PROGRESS_SECONDS)
            if not running.done() and progress is not None:
                await progress(writers[0].streamed)
        counts = running.result()
    except BaseException:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        raise
    if len(set(counts)) > 1:
        raise RuntimeError(f"the export formats disagree on the rows of a table: {counts}")
    return counts[0]


async def write_exports(
    batches: AsyncIterable[RecordBatch | EncodedTable],
    *,
    directory: Path,
    formats: Collection[str],
    header: dict[str, Any],
    on_progress: Callable[[int], Awaitable[None]] | None = None,
    file_stem: str = "personal-data",
) -> dict[str, ExportFile]:
    """Write the subject's records in every requested format ("json", "csv") in one pass.

    ``batches`` holds RecordBatches and, for tables a source encodes itself, EncodedTables.
    ``header`` is the caller's metadata, written first in the JSON document (and into the
    CSV pack's ``manifest.json``; its ``supplementary_information`` becomes a file of its
    own). ``on_progress`` is awaited with the number of records written after each batch
    (and about once a second while an encoded table streams). Answers the finished files by
    format; on any failure no file is left behind.
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
                writer_class = _JsonWriter if export_format == "json" else CsvWriter
                file_name = f"{file_stem}{SUFFIXES[export_format]}"
                writers.append(writer_class(directory, uuid.uuid4(), header, file_name))
        records = 0
        tables: dict[tuple[str, str], int] = {}

        async def streamed(rows: int) -> None:
            if on_progress is not None:
                await on_progress(records + rows)

        with _fewer_collections():
            async for item in batches:
                if isinstance(item, RecordBatch):
                    # Column-wise once for every format: each encodes a column in one go.
                    values = list(zip(*item.rows, strict=True))
                    if values and len(values) != len(item.columns):
                        raise ValueError("a batch's rows do not have one value per column")
                    for writer in writers:
                        writer.write(item, values)
                    rows = len(item.rows)
                else:
                    rows = await _write_encoded(item, writers, streamed)
                key = (item.source, item.table)
                tables[key] = tables.get(key, 0) + rows
                records += rows
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
        # Ends the sources' transactions now rather than whenever the stream is collected.
        close = getattr(batches, "aclose", None)
        if close is not None:
            with suppress(Exception):
                await close()
        raise
