"""PostgreSQL writes big tables in the export formats itself: COPY of pre-formatted rows.

Encoding a million rows in Python costs the worker seconds of CPU that the database, in C
and on cores of its own, spends in a fraction of it. So for a table with more rows than one
batch, the ``sql`` connector hands the export writer a ``PgEncodedTable``
(``sources.base.EncodedTable``) instead of batches, and the rows arrive ready to write:

- JSON: ``COPY (SELECT '{', 'id', ':' || id || ',', 'email', ':', email, '}' ...) TO STDOUT
  WITH (FORMAT text, DELIMITER '"')``. Every double quote of a row is a column delimiter,
  so COPY's own escaping (``\\\\ \\" \\n \\r \\t \\b \\f``) is JSON's; the rest (``\\v``, other
  control characters, ``"\\N"`` for a NULL string) is fixed here at C speed.
- CSV: ``COPY (SELECT <source>, <table>, <record id>, <cells>) TO STDOUT WITH (FORMAT csv)``
  per data category, with text cells neutralised in SQL.

The rows are shared between two connections on the same snapshot (``pg_export_snapshot``),
so two database cores format them. COPY takes no parameters and its text is visible in
``pg_stat_activity`` and ``pg_stat_statements``: the subject's identity is passed with
``set_config()`` and read back with ``current_setting()``, never written into the SQL.

Types this does not cover exactly (JSON, which the generic path nests; arrays, composites,
ranges, ``char(n)``, intervals, ``timetz``, geometric and bit strings; floats holding NaN or
infinities) leave their table to the generic path. Values otherwise match
``export_encoding``; docs/exports.md lists the differences (fractional seconds, float
digits).
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from asyncpg.types import Type
from sqlalchemy import (
    ColumnElement,
    Dialect,
    FromClause,
    exists,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from app.data_sources.connectors.base import ColumnInfo, LineSink, RowStream, SourceError

__all__ = [
    "SESSION_SETTINGS",
    "PgEncodedTable",
    "PgExport",
    "SubjectRows",
    "discard_unless_clean",
    "encode_table",
    "read_only",
]

logger = logging.getLogger("app.sources")

# Connections formatting one table's rows at once (the connector's own and one more).
EXPORT_CONNECTIONS = 2
# How the export's transactions print values: UTC offsets, ISO dates, shortest exact floats.
SESSION_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL extra_float_digits = 1"
)
ASYNCPG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)
_SETTING = "dsr.export_"
# After a chunk smaller than this, pause briefly so that the socket fills meanwhile: at
# ~8 KB a read, waking the event loop costs more than the bytes (fewer, larger reads).
_SMALL_CHUNK = 64 * 1024
_PAUSE_SECONDS = 0.0005


def sql_string(value: str) -> str:
    """A string literal, whatever ``standard_conforming_strings`` says."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _sql_type(kind: Type) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (kind.schema, kind.name))


# ---------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """How one column is written: SQL for its JSON value (a string or not) and its CSV cell."""

    json_sql: str
    json_string: bool
    csv_sql: str
    # Floats: a NaN or an infinity is no JSON number, so its table takes the generic path.
    not_finite_sql: str | None = None
    integer: bool = False


_INTEGERS = frozenset({"int2", "int4", "int8", "oid"})
_FLOATS = frozenset({"float4", "float8"})
_TEXTS = frozenset(
    {"text", "varchar", "name", "char", "citext", "xml", "money"}
    | {"inet", "cidr", "macaddr", "macaddr8"}
)
# JSON strings that never start a formula, so CSV leaves them alone (as the generic path).
_VERBATIM = {
    "numeric": "{0}",
    "date": "{0}",
    "time": "{0}",
    "uuid": "{0}",
    "timestamp": "replace({0}::text, ' ', 'T')",
    "timestamptz": "replace({0}::text, ' ', 'T') || CASE WHEN isfinite({0}) THEN ':00' ELSE '' END",
    "bytea": "translate(encode({0}, 'base64'), E'\\n', '')",
}
# core.encoding.FORMULA as a PostgreSQL pattern, and the codes of the characters a match
# can start with (FORMULA_FIRST: ' tab LF CR space + - = @), tested first as it is cheap.
# (An E'' string: the same text whatever standard_conforming_strings says.)
_FORMULA_PATTERN = r"E'^''*[\\t\\r\\n ]*([=@]|[-+](?![0-9]+(\\.[0-9]+)?$))'"
_FORMULA_CODES = "9, 10, 13, 32, 39, 43, 45, 61, 64"


def cell_for(kind: Type, column: str) -> Cell | None:
    """The cell for a column of this type (``column``: its SQL); None when not covered."""
    if kind.kind != "scalar":
        return None
    name = kind.name if kind.schema == "pg_catalog" else "text"
    if name in _INTEGERS:
        return Cell(f"{column}::text", False, column, integer=True)
    if name == "bool":
        return Cell(f"{column}::text", False, f"{column}::text")
    if name in _FLOATS:
        not_finite = f"{column} IN ('NaN', 'Infinity', '-Infinity')"
        return Cell(f"{column}::text", False, column, not_finite)
    if name in _VERBATIM:
        value = _VERBATIM[name].format(column)
        return Cell(value, True, value)
    if name in _TEXTS:
        plain = kind.schema == "pg_catalog" and kind.name in {"text", "varchar"}
        # abbrev(): as inet prints (192.168.0.1), where ::text adds the mask (/32).
        text = column if plain else f"abbrev({column})" if name == "inet" else f"{column}::text"
        # Neutralised as csv_text does; empty text as an empty cell (COPY would write "").
        csv = (
            f"CASE WHEN ascii({text}) IN ({_FORMULA_CODES}) AND {text} ~ {_FORMULA_PATTERN} "
            f"THEN '''' || {text} "
            f"WHEN {text} = '' THEN NULL ELSE {text} END"
        )
        return Cell(column, True, csv)
    return None


def json_attributes(names: Sequence[str], cells: Sequence[Cell]) -> list[str]:
    """The SELECT list whose COPY text (DELIMITER '"') is a row's JSON object."""
    attributes = ["'{'"]
    for index, (name, cell) in enumerate(zip(names, cells, strict=True)):
        end = "'}'" if index == len(cells) - 1 else "','"
        attributes.append(sql_string(name))
        if cell.json_string:
            attributes += ["':'", cell.json_sql, end]
        else:
            attributes.append(f"':' || coalesce({cell.json_sql}, 'null') || {end}")
    return attributes


# Control characters COPY leaves raw (a row's own LF ends it). Deleting them and comparing
# lengths finds one at C speed; a regular expression scans ten times slower.
_RAW_CONTROLS = bytes(byte for byte in range(0x20) if byte != 0x0A)
# Escape pairs are matched whole, so the "v" of an escaped backslash before a "v" stays.
_FIXABLE = re.compile(rb"\\[\s\S]|[\x00-\x09\x0b-\x1f]")


def _fixed(match: re.Match[bytes]) -> bytes:
    found = match.group()
    if len(found) == 2:
        return b"\\u000b" if found == b"\\v" else found
    return b"\\u%04x" % found[0]


def json_lines(chunk: bytes) -> bytes:
    """COPY text lines of ``json_attributes`` as JSON object lines."""
    if b"\\v" in chunk or len(chunk.translate(None, _RAW_CONTROLS)) != len(chunk):
        chunk = _FIXABLE.sub(_fixed, chunk)
    # Only a NULL string between its quotes reads \N: data's backslashes come doubled.
    return chunk.replace(b'"\\N"', b"null")


# ---------------------------------------------------------------- connections


@asynccontextmanager
async def read_only(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """A REPEATABLE READ, READ ONLY transaction: one snapshot for everything read in it.

    A COPY cancelled mid-stream closes its connection: then there is nothing to end (and
    the error or cancellation that closed it is what the caller sees).
    """
    transaction = connection.transaction(isolation="repeatable_read", readonly=True)
    await transaction.start()
    try:
        yield
    finally:
        if not connection.is_closed():
            await transaction.rollback()


def discard_unless_clean(
    pooled: AsyncConnection, connection: asyncpg.Connection
) -> Callable[..., Awaitable[bool]]:
    """An exit callback that keeps a COPY's connection out of the pool unless it ended cleanly.

    A COPY interrupted by an error or a cancellation may leave its connection closed or still
    mid-protocol (asyncpg cancels the server side asynchronously); SQLAlchemy's pool cannot
    tell, and the next checkout would fail.
    """

    async def exit_callback(exc_type: type[BaseException] | None, *_exc: object) -> bool:
        if exc_type is not None or connection.is_closed():
            await pooled.invalidate()
        return False

    return exit_callback


class PgExport:
    """The export's snapshot: the connector's connection and, when needed, a second one.

    The second connection is opened on first need, joins the snapshot the first one
    exported, and is released with ``stack``. If it cannot be had, one connection does all.
    """

    def __init__(
        self,
        main: asyncpg.Connection,
        snapshot: str | None,
        open_connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        stack: AsyncExitStack,
    ) -> None:
        self._idle: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
        self._idle.put_nowait(main)
        self._snapshot = snapshot
        self._open_connection = open_connection
        self._stack = stack
        self._connections = 1

    @property
    def shares(self) -> int:
        """How many parts to split a table's rows into (one per connection)."""
        return EXPORT_CONNECTIONS if self._snapshot is not None else 1

    @classmethod
    async def begin(
        cls,
        main: asyncpg.Connection,
        open_connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        stack: AsyncExitStack,
    ) -> "PgExport":
        """Start the export's read-only transaction on ``main`` (ended by ``stack``)."""
        transaction = AsyncExitStack()
        await transaction.enter_async_context(read_only(main))
        snapshot: str | None = None
        try:
            # First in the transaction: a snapshot cannot be exported from a savepoint.
            snapshot = await main.fetchval("SELECT pg_export_snapshot()")
        except ASYNCPG_ERRORS as exc:
            logger.warning("export: no shared snapshot (%s); one connection", type(exc).__name__)
            await transaction.aclose()
            transaction = AsyncExitStack()
            await transaction.enter_async_context(read_only(main))
        stack.push_async_exit(transaction)
        await main.execute(SESSION_SETTINGS)
        return cls(main, snapshot, open_connection, stack)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection on the export's snapshot, for one statement at a time."""
        connection = None
        spare = self._connections < EXPORT_CONNECTIONS and self._snapshot is not None
        if spare and self._idle.empty():
            self._connections += 1
            connection = await self._join()
        if connection is None:
            connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)

    async def _join(self) -> asyncpg.Connection | None:
        assert self._snapshot is not None
        joined = AsyncExitStack()
        try:
            pooled = await joined.enter_async_context(self._open_connection())
            connection = (await pooled.get_raw_connection()).driver_connection
            assert connection is not None
            joined.push_async_exit(discard_unless_clean(pooled, connection))
            await joined.enter_async_context(read_only(connection))
            await connection.execute(f"SET TRANSACTION SNAPSHOT {sql_string(self._snapshot)}")
            await connection.execute(SESSION_SETTINGS)
        except (*ASYNCPG_ERRORS, SQLAlchemyError, OSError, TimeoutError) as exc:
            self._snapshot = None  # no more attempts
            logger.warning("export: no second connection (%s); one connection", type(exc).__name__)
            try:
                await joined.aclose()
            except (*ASYNCPG_ERRORS, SQLAlchemyError, OSError, TimeoutError):
                pass
            return None
        except BaseException:
            # Cancelled while joining: the connection must not stay checked out.
            await joined.aclose()
            raise
        self._stack.push_async_exit(joined)
        return connection


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class SubjectRows:
    """One table's rows of the subject, as the connector selects them."""

    source: str
    table: str
    columns: tuple[ColumnInfo, ...]
    record_id_index: int
    from_clause: FromClause
    where: ColumnElement[bool]
    # Each column as SQL, in ``columns`` order.
    column_sql: tuple[str, ...]
    dialect: Dialect


def _parameterless(
    where: ColumnElement[bool], binds: Sequence[BindParameter[Any]], types: Sequence[Type]
) -> tuple[ColumnElement[bool], str]:
    """``where`` reading its parameters from settings, and the set_config() query setting them."""
    positions = {id(bind): index for index, bind in enumerate(binds)}

    def replace(element: Any, **_: Any) -> Any:
        index = positions.get(id(element))
        if index is None:
            return None
        return literal_column(f"(current_setting('{_SETTING}{index}')::{_sql_type(types[index])})")

    settings = ", ".join(
        f"set_config('{_SETTING}{index}', ${index + 1}::{_sql_type(kind)}::text, true)"
        for index, kind in enumerate(types)
    )
    return replacement_traverse(where, {}, replace), f"SELECT {settings}" if settings else ""


async def encode_table(
    rows: SubjectRows,
    *,
    export: PgExport,
    prepared: PreparedStatement,
    binds: Sequence[BindParameter[Any]],
    arguments: Sequence[Any],
    translate: Callable[[BaseException], SourceError],
) -> "PgEncodedTable | None":
    """The table as COPY streams, or None when a column's values need the generic path.

    ``prepared`` is the connector's SELECT of the rows (its result and parameter types),
    ``binds`` and ``arguments`` its parameters in order.
    """
    attributes = prepared.get_attributes()
    cells = [
        cell_for(attribute.type, column)
        for attribute, column in zip(attributes, rows.column_sql, strict=True)
    ]
    if any(cell is None for cell in cells):
        return None
    ready = [cell for cell in cells if cell is not None]
    not_finite: list[ColumnElement[Any]] = [
        literal_column(c.not_finite_sql) for c in ready if c.not_finite_sql
    ]
    where, settings = _parameterless(rows.where, binds, prepared.get_parameters())
    table = PgEncodedTable(rows, ready, where, settings, list(arguments), export, translate)
    if not_finite and await table.any_row(or_(*not_finite)):
        return None
    # Everything the COPYs will say must be parameterless SQL (checked once, here).
    if table.compiled(["1"], 0, 1).params:
        return None
    return table


class PgEncodedTable:
    """A table of the subject's records as COPY streams (``sources.base.EncodedTable``)."""

    def __init__(
        self,
        rows: SubjectRows,
        cells: list[Cell],
        where: ColumnElement[bool],
        settings: str,
        arguments: list[Any],
        export: PgExport,
        translate: Callable[[BaseException], SourceError],
    ) -> None:
        self.source = rows.source
        self.table = rows.table
        self.columns = rows.columns
        self.record_id_index = rows.record_id_index
        self._rows = rows
        self._cells = cells
        self._where = where
        self._settings = settings
        self._arguments = arguments
        self._export = export
        self._translate = translate
        self._shares = export.shares
        # The writer runs one CSV stream per category at once: shares only if too few.
        categories = len({column.category for column in self.columns})
        self._csv_shares = max(1, self._shares // categories)

    def compiled(self, attributes: list[str], share: int, shares: int) -> Any:
        columns: list[ColumnElement[Any]] = [literal_column(sql) for sql in attributes]
        statement = select(*columns).select_from(self._rows.from_clause).where(self._where)
        if shares > 1:
            record_id = self._rows.column_sql[self.record_id_index]
            if not self._cells[self.record_id_index].integer:
                record_id = f"hashtext(({record_id})::text)"
            share_of = f"coalesce(abs(mod({record_id}, {shares})), 0)"
            statement = statement.where(literal_column(f"{share_of} = {share}"))
        return statement.compile(dialect=self._rows.dialect)

    async def any_row(self, condition: ColumnElement[bool]) -> bool:
        """Whether some of the subject's rows meet ``condition`` (SQL without parameters)."""
        one: ColumnElement[Any] = literal_column("1")
        query = select(one).select_from(self._rows.from_clause).where(self._where, condition)
        sql = str(select(exists(query)).compile(dialect=self._rows.dialect))
        try:
            async with self._export.connection() as connection:
                if self._settings:
                    await connection.execute(self._settings, *self._arguments)
                return bool(await connection.fetchval(sql))
        except (*ASYNCPG_ERRORS, OSError, TimeoutError) as exc:
            raise self._translate(exc) from None

    def json_streams(self) -> list[RowStream]:
        names = [column.name for column in self.columns]
        attributes = json_attributes(names, self._cells)
        shares = self._shares
        return [self._json_stream(attributes, share, shares) for share in range(shares)]

    def csv_streams(self, cells: Sequence[int | None], lead: tuple[str, str]) -> list[RowStream]:
        attributes = [
            sql_string(lead[0]),
            sql_string(lead[1]),
            self._cells[self.record_id_index].csv_sql,
            *("NULL" if index is None else self._cells[index].csv_sql for index in cells),
        ]
        shares = self._csv_shares
        return [self._csv_stream(attributes, share, shares) for share in range(shares)]

    def _json_stream(self, attributes: list[str], share: int, shares: int) -> RowStream:
        async def stream(sink: LineSink) -> int:
            carried = b""

            async def output(chunk: bytes) -> None:
                nonlocal carried
                if carried:
                    chunk, carried = carried + chunk, b""
                end = chunk.rfind(b"\n") + 1
                if end < len(chunk):
                    # Keep a row's beginning until its end arrives: sinks take whole lines.
                    chunk, carried = chunk[:end], bytes(chunk[end:])
                if chunk:
                    sink(json_lines(chunk))
                await _let_data_gather(len(chunk))

            rows = await self._copy(
                attributes, (share, shares), output, format="text", delimiter='"'
            )
            if carried:
                sink(json_lines(carried + b"\n"))
            return rows

        return stream

    def _csv_stream(self, attributes: list[str], share: int, shares: int) -> RowStream:
        async def stream(sink: LineSink) -> int:
            async def output(chunk: bytes) -> None:
                sink(chunk)
                await _let_data_gather(len(chunk))

            return await self._copy(attributes, (share, shares), output, format="csv")

        return stream

    async def _copy(
        self,
        attributes: list[str],
        share: tuple[int, int],
        output: Callable[[bytes], Awaitable[None]],
        **options: str,
    ) -> int:
        sql = str(self.compiled(attributes, *share))
        try:
            async with self._export.connection() as connection:
                if self._settings:
                    await connection.execute(self._settings, *self._arguments)
                status = await connection.copy_from_query(sql, output=output, **options)
        except (*ASYNCPG_ERRORS, OSError, TimeoutError) as exc:
            raise self._translate(exc) from None
        # "COPY 1000000"
        return int(status.rsplit(" ", 1)[-1])


async def _let_data_gather(size: int) -> None:
    if size < _SMALL_CHUNK:
        await asyncio.sleep(_PAUSE_SECONDS)
