"""The ``sql`` connector: any database SQLAlchemy reaches asynchronously, through a dataset map.

The subject's rows are found by SQL alone: the subject table by any identity, the other tables
through their own identity columns and through relations as ``IN (SELECT ...)`` subqueries,
so a million-row subject is never held in memory. Rows stream from a server-side cursor in
batches of ``DSR_FULFILMENT_BATCH_SIZE``; for exports, PostgreSQL writes bigger tables in the
export formats itself (``pg_copy``). Erasure, rectification and restriction each run in one
transaction. Errors name the source, tables and columns, never the URL or a value.
"""

import asyncio
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

import asyncpg
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Dialect,
    MetaData,
    Select,
    String,
    Table,
    case,
    delete,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.sqltypes import NullType

from app.core.config import Settings
from app.data_sources.connectors import pg_copy
from app.data_sources.connectors.base import (
    AccessPlan,
    ColumnInfo,
    EncodedTable,
    ErasureOutcome,
    ErasurePlan,
    ErasureRecorder,
    FieldChange,
    PlannedChange,
    RecordBatch,
    RectificationOutcome,
    RectificationPlan,
    RestrictionOutcome,
    RestrictionPlan,
    RetainedCategory,
    RetainedKeys,
    SourceError,
    SubjectIdentity,
    TableErasurePlan,
)
from app.data_sources.dataset_map import (
    DatasetMap,
    DatasetMapError,
    MappedTable,
    parse_dataset_map,
    schema_problems,
)

__all__ = ["ASYNC_DRIVERS", "MASK", "SqlConnector", "normalise_sql_url"]

MASK = "[erased]"
# Drivers that create_async_engine can use; only asyncpg and aiosqlite ship with the service.
ASYNC_DRIVERS = frozenset(
    {
        "postgresql+asyncpg",
        "postgresql+psycopg",
        "postgresql+psycopg_async",
        "sqlite+aiosqlite",
        "mysql+aiomysql",
        "mysql+asyncmy",
        "mariadb+aiomysql",
        "mariadb+asyncmy",
        "mssql+aioodbc",
        "oracle+oracledb",
        "oracle+oracledb_async",
    }
)
# Synchronous spellings we can swap for the async driver shipped with the service.
ASYNC_EQUIVALENTS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}
BEFORE_VALUES_SHOWN = 5
# Distinct values of one identity column an erasure reports (a person has a handful).
IDENTITIES_PER_COLUMN = 100
# Kept rows read by key per statement: within every driver's limit on bound parameters.
KEYS_PER_QUERY = 500
IDENTITY_UNMATCHABLE = object()
# Raised by asyncpg itself on the streaming fast path (no SQLAlchemy wrapping there).
ASYNCPG_ERRORS = pg_copy.ASYNCPG_ERRORS
# Reads one table's rows: batches of at most DSR_FULFILMENT_BATCH_SIZE, or COPY streams.
_Reader = Callable[["_TableRows"], AsyncGenerator[RecordBatch | EncodedTable, None]]


def normalise_sql_url(url: str) -> str:
    """The async form of a SQLAlchemy URL; SourceError(retryable=False) when there is none.

    ``postgresql://``, ``postgres://`` and ``postgresql+psycopg2://`` become asyncpg,
    ``sqlite://`` becomes aiosqlite; URLs naming an async driver are kept. The URL (which
    holds the password) never appears in an error.
    """
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError, TypeError):
        raise SourceError(
            "the database URL is not a valid SQLAlchemy URL", retryable=False
        ) from None
    drivername = parsed.drivername.lower()
    target = ASYNC_EQUIVALENTS.get(drivername, drivername)
    if target not in ASYNC_DRIVERS:
        dialect = drivername.partition("+")[0]
        raise SourceError(
            f"no async driver for dialect {dialect} (driver {drivername}); use "
            "postgresql+asyncpg://, sqlite+aiosqlite:// or another async driver",
            retryable=False,
        )
    converted = parsed.set(drivername=target)
    if target == "postgresql+asyncpg" and "sslmode" in converted.query:
        # libpq spells it sslmode; asyncpg takes the same values as ssl.
        query = dict(converted.query)
        query["ssl"] = query.pop("sslmode")
        converted = converted.set(query=query)
    return converted.render_as_string(hide_password=False)


class SqlConnector:
    """A ``sql`` data source; create one per fulfilment run and ``close()`` it after."""

    def __init__(
        self,
        name: str,
        url: str,
        dataset_map: DatasetMap | Mapping[str, Any] | str,
        settings: Settings,
        request_id: uuid.UUID | None = None,
    ) -> None:
        self.name = name
        self.request_id = request_id
        try:
            self._url = make_url(normalise_sql_url(url))
        except SourceError as exc:
            raise SourceError(f"source {name}: {exc}", retryable=exc.retryable) from None
        if isinstance(dataset_map, DatasetMap):
            self.dataset_map = dataset_map
        else:
            try:
                self.dataset_map = parse_dataset_map(dataset_map)
            except DatasetMapError as exc:
                raise SourceError(f"source {name}: {exc}", retryable=False) from None
        self._batch_size = settings.fulfilment_batch_size
        self._timeout = settings.source_timeout
        self._engine: AsyncEngine | None = None
        self._tables: dict[str, Table] | None = None
        self._prepare_lock = asyncio.Lock()

    # -- connection, schema --------------------------------------------------------------

    def _error(self, message: str, *, retryable: bool) -> SourceError:
        return SourceError(f"source {self.name}: {message}", retryable=retryable)

    def _engine_or_create(self) -> AsyncEngine:
        if self._engine is not None:
            return self._engine
        backend = self._url.get_backend_name()
        options: dict[str, Any] = {"hide_parameters": True}  # values never reach exceptions
        if backend == "sqlite":
            database = self._url.database or ""
            in_memory = database in {"", ":memory:"} or database.startswith("file:")
            if not in_memory and not Path(database).is_file():
                # Connecting would create an empty database file.
                raise self._error("the SQLite database file does not exist", retryable=False)
            options.update(poolclass=NullPool, connect_args={"timeout": self._timeout})
        else:
            options.update(pool_size=2, max_overflow=2, pool_timeout=self._timeout)
            if self._url.drivername == "postgresql+asyncpg":
                options["connect_args"] = {
                    "timeout": self._timeout,
                    "server_settings": {"application_name": "dsr-service"},
                }
        try:
            self._engine = create_async_engine(self._url, **options)
        except (NoSuchModuleError, ImportError):
            raise self._error(
                f"the database driver {self._url.drivername} is not installed", retryable=False
            ) from None
        except (ArgumentError, TypeError, ValueError):
            raise self._error("the database URL has invalid options", retryable=False) from None
        return self._engine

    def _translate(self, exc: BaseException, action: str) -> SourceError:
        """A SourceError for a database failure: its kind, never its text (it may hold data)."""
        if isinstance(exc, SourceError):
            return exc
        kind = type(getattr(exc, "orig", None) or exc).__name__
        unreachable = (
            OperationalError,
            InterfaceError,
            PoolTimeoutError,
            OSError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.QueryCanceledError,
        )
        if isinstance(exc, unreachable):
            return self._error(f"cannot reach the database to {action} ({kind})", retryable=True)
        if isinstance(exc, TimeoutError):
            return self._error(f"the database timed out during {action}", retryable=True)
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return self._error(f"lost the database connection during {action}", retryable=True)
        return self._error(f"the database refused to {action} ({kind})", retryable=False)

    async def _reflect(self, connection: AsyncConnection) -> dict[str, Table]:
        schema = self.dataset_map.schema
        names = list(self.dataset_map.tables)

        def reflect(sync_connection: Connection) -> dict[str, Table]:
            inspector = inspect(sync_connection)
            present = set(inspector.get_table_names(schema=schema))
            present |= set(inspector.get_view_names(schema=schema))
            metadata = MetaData()
            return {
                name: Table(name, metadata, schema=schema, autoload_with=sync_connection)
                for name in names
                if name in present
            }

        return await connection.run_sync(reflect)

    async def _check(self) -> dict[str, Table]:
        try:
            async with self._engine_or_create().connect() as connection:
                tables = await self._reflect(connection)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._translate(exc, "read the schema") from None
        schema = {name: {column.name for column in table.columns} for name, table in tables.items()}
        problems = schema_problems(self.dataset_map, schema)
        if problems:
            raise self._error(
                "the dataset map does not match the database: " + "; ".join(problems),
                retryable=False,
            )
        return tables

    async def _prepared(self) -> dict[str, Table]:
        """The mapped tables, reflected once; refuses to work on a database the map misses."""
        async with self._prepare_lock:
            if self._tables is None:
                self._tables = await self._check()
            return self._tables

    async def test(self) -> None:
        """Connect, reflect the mapped tables and compare them with the dataset map."""
        async with self._prepare_lock:
            self._tables = await self._check()

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # -- finding the subject ---------------------------------------------------------------

    def _where(
        self, name: str, identity: SubjectIdentity, tables: Mapping[str, Table]
    ) -> ColumnElement[bool]:
        """The subject's rows of table ``name``, as SQL (subqueries, no materialised ids)."""
        spec, table = self.dataset_map.tables[name], tables[name]
        clauses: list[ColumnElement[bool]] = []
        for kind, column_name in spec.identity_columns.items():
            value = getattr(identity, kind, None)
            if value is None or value == "":
                continue
            column = table.c[column_name]
            if kind == "email":
                clauses.append(func.lower(column) == func.lower(literal(str(value), String())))
                continue
            coerced = _coerce(value, column.type)
            if coerced is not IDENTITY_UNMATCHABLE:
                clauses.append(column == coerced)
        for relation in self.dataset_map.relations_from(name):
            inner = self._where(relation.to_table, identity, tables)
            target = tables[relation.to_table]
            subquery = select(target.c[relation.to_column]).where(inner).correlate(None)
            clauses.append(table.c[relation.from_column].in_(subquery))
        return or_(false(), *clauses)

    def _columns(self, spec: MappedTable, provided_only: bool) -> tuple[ColumnInfo, ...]:
        links = {relation.from_column for relation in self.dataset_map.relations_from(spec.name)}
        return tuple(
            ColumnInfo(
                column.name, column.category, column.provided_by_subject, column.name in links
            )
            for column in spec.columns
            if not provided_only or column.provided_by_subject or column.name == spec.primary_key
        )

    def _table_order(self) -> list[str]:
        subject = self.dataset_map.subject_table
        return [subject, *(name for name in self.dataset_map.tables if name != subject)]

    def collect(
        self,
        identity: SubjectIdentity,
        *,
        provided_only: bool = False,
        retained: RetainedKeys | None = None,
    ) -> AsyncIterator[RecordBatch]:
        """The subject's rows, table by table (subject table first), in bounded batches.

        ``provided_only`` keeps the columns the subject provided (plus the primary key, the
        record id) and skips tables with none. Tables without rows yield nothing.
        ``retained``: the keys of rows earlier erasures of the subject kept; those the
        identities no longer reach follow the table's other rows.
        """
        # Without encoding, only batches come.
        return cast(
            AsyncIterator[RecordBatch], self._collect(identity, provided_only, False, retained)
        )

    def collect_for_export(
        self,
        identity: SubjectIdentity,
        *,
        provided_only: bool = False,
        retained: RetainedKeys | None = None,
    ) -> AsyncIterator[RecordBatch | EncodedTable]:
        """What ``collect`` streams, except that on PostgreSQL a table with more rows than one
        batch comes as an EncodedTable: the database writes its rows in the export formats
        (``pg_copy``), unless a column's type needs the generic path.
        """
        return self._collect(identity, provided_only, True, retained)

    async def _collect(
        self,
        identity: SubjectIdentity,
        provided_only: bool,
        encode: bool,
        retained: RetainedKeys | None,
    ) -> AsyncIterator[RecordBatch | EncodedTable]:
        tables = await self._prepared()
        engine = self._engine_or_create()
        try:
            async with engine.connect() as connection, self._reader(connection, encode) as read:
                for name in self._table_order():
                    spec = self.dataset_map.tables[name]
                    columns = self._columns(spec, provided_only)
                    if provided_only and not any(c.provided_by_subject for c in columns):
                        continue
                    table = tables[name]
                    selected = select(*(_raw(table.c[column.name]) for column in columns))
                    where = self._where(name, identity, tables)
                    record_id_index = [c.name for c in columns].index(spec.primary_key)
                    rows = _TableRows(name, table, columns, record_id_index, selected.where(where))
                    # Closed here even when the consumer stops early: its cursor goes too.
                    async with aclosing(read(rows)) as items:
                        async for item in items:
                            yield item
                    if retained is None:
                        continue
                    kept = self._kept_rows(read, rows, selected, where, retained)
                    async with aclosing(kept) as items:
                        async for item in items:
                            yield item
        except (SQLAlchemyError, OSError, TimeoutError, *ASYNCPG_ERRORS) as exc:
            raise self._translate(exc, "read the subject's records") from None

    async def _kept_rows(
        self,
        read: _Reader,
        rows: "_TableRows",
        selected: Select[Any],
        where: ColumnElement[bool],
        retained: RetainedKeys,
    ) -> AsyncGenerator[RecordBatch | EncodedTable, None]:
        """Rows of the table an earlier erasure kept that ``where`` no longer reaches, by key."""
        key = rows.table.c[self.dataset_map.tables[rows.name].primary_key]
        # Rows the identities found are not read twice (an unknown match counts as none).
        not_found = case((where, 1), else_=0) == 0
        async for page in retained.keys(rows.name):
            for start in range(0, len(page), KEYS_PER_QUERY):
                keys = [_coerce(value, key.type) for value in page[start : start + KEYS_PER_QUERY]]
                keys = [value for value in keys if value is not IDENTITY_UNMATCHABLE]
                if not keys:
                    continue
                # One parameter per key: the asyncpg path runs the compiled text as it is.
                statement = selected.where(
                    key.in_([literal(value, key.type) for value in keys]), not_found
                )
                by_key = _TableRows(
                    rows.name, rows.table, rows.columns, rows.record_id_index, statement
                )
                async with aclosing(read(by_key)) as items:
                    async for item in items:
                        yield item

    @asynccontextmanager
    async def _reader(self, connection: AsyncConnection, encode: bool) -> AsyncIterator[_Reader]:
        """A read-only snapshot on ``connection`` and a function reading a table's rows in it.

        Generic path: ``conn.stream(...).partitions(n)``, a server-side cursor. On asyncpg the
        compiled statement runs on the driver's own cursor instead: one round trip per batch
        (SQLAlchemy's adapter makes two) and no Result layer, about a third faster on a
        million rows. With ``encode``, a table with more rows than one batch becomes COPY
        streams (``pg_copy``) in the same snapshot.
        """
        size = self._batch_size
        if connection.dialect.driver != "asyncpg":

            async def read(rows: _TableRows) -> AsyncGenerator[RecordBatch | EncodedTable, None]:
                statement = rows.statement.execution_options(yield_per=size)
                result = await connection.stream(statement)
                async for partition in result.partitions(size):
                    yield rows.batch(self.name, list(map(tuple, partition)))

            yield read
            return
        dialect = connection.dialect
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        async with AsyncExitStack() as stack:
            stack.push_async_exit(pg_copy.discard_unless_clean(connection, driver))
            # One snapshot for every table: the pack is consistent with itself.
            export: pg_copy.PgExport | None = None
            if encode:
                engine = self._engine_or_create()
                export = await pg_copy.PgExport.begin(driver, engine.connect, stack)
            else:
                await stack.enter_async_context(pg_copy.read_only(driver))
            # A peek one row past a batch tells a big table (for COPY) from a small one.
            first = size + 1 if encode else size

            async def read_asyncpg(
                rows: _TableRows,
            ) -> AsyncGenerator[RecordBatch | EncodedTable, None]:
                compiled = rows.statement.compile(dialect=dialect)
                names = compiled.positiontup or ()
                processors = getattr(compiled, "_bind_processors", {})
                values = compiled.construct_params()
                arguments = [
                    processors[name](values[name]) if name in processors else values[name]
                    for name in names
                ]
                prepared = await driver.prepare(str(compiled))
                cursor = await prepared.cursor(*arguments)
                pending = list(await cursor.fetch(first))
                if export is not None and len(pending) > size:
                    encoded = await pg_copy.encode_table(
                        self._subject_rows(rows, dialect),
                        export=export,
                        prepared=prepared,
                        binds=[compiled.binds[name] for name in names],
                        arguments=arguments,
                        translate=lambda exc: self._translate(exc, "read the subject's records"),
                    )
                    if encoded is not None:
                        yield encoded
                        return
                exhausted = len(pending) < first
                while pending:
                    batch, pending = pending[:size], pending[size:]
                    yield rows.batch(self.name, list(map(tuple, batch)))
                    if not exhausted and len(pending) < size:
                        more = await cursor.fetch(size)
                        exhausted = len(more) < size
                        pending += more

            yield read_asyncpg

    def _subject_rows(self, rows: "_TableRows", dialect: Dialect) -> pg_copy.SubjectRows:
        where = rows.statement.whereclause
        assert where is not None
        return pg_copy.SubjectRows(
            source=self.name,
            table=rows.name,
            columns=rows.columns,
            record_id_index=rows.record_id_index,
            from_clause=rows.table,
            where=where,
            column_sql=tuple(
                str(rows.table.c[column.name].compile(dialect=dialect)) for column in rows.columns
            ),
            dialect=dialect,
        )

    async def count(self, identity: SubjectIdentity) -> int:
        """How many rows the subject has over every mapped table (exact)."""
        tables = await self._prepared()
        try:
            async with self._engine_or_create().connect() as connection:
                total = 0
                for name, table in tables.items():
                    statement = (
                        select(func.count())
                        .select_from(table)
                        .where(self._where(name, identity, tables))
                    )
                    total += int((await connection.execute(statement)).scalar_one())
                return total
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._translate(exc, "count the subject's records") from None

    # -- dry runs (the plan): SELECTs only, in a transaction never committed ------------------

    @asynccontextmanager
    async def _read_only(self, action: str) -> AsyncIterator[AsyncConnection]:
        """A connection for a dry run: it only reads, and its transaction is rolled back."""
        try:
            async with self._engine_or_create().connect() as connection:
                try:
                    yield connection
                finally:
                    await connection.rollback()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._translate(exc, action) from None

    async def _subject_count(
        self, connection: AsyncConnection, name: str, tables: Mapping[str, Table], identity: Any
    ) -> int:
        statement = (
            select(func.count())
            .select_from(tables[name])
            .where(self._where(name, identity, tables))
        )
        return int((await connection.execute(statement)).scalar_one())

    async def plan_erasure(self, identity: SubjectIdentity) -> ErasurePlan:
        """What ``erase`` would do, counted on the data as it is now, without changing it.

        Erasure changes dependants before the tables they point to, and each table's rows
        are found through tables changed after it: so counting every table now gives the
        numbers ``erase`` would report.
        """
        tables = await self._prepared()
        plan = ErasurePlan(source=self.name)
        retained_in: dict[str, list[str]] = {}
        categories = self.dataset_map.categories
        async with self._read_only("plan the erasure") as connection:
            for name in self.dataset_map.dependency_order():
                rows = await self._subject_count(connection, name, tables, identity)
                if not rows:
                    continue
                spec = self.dataset_map.tables[name]
                strategies = {
                    column.name: categories[column.category].erasure for column in spec.columns
                }
                table_plan = TableErasurePlan(
                    table=name,
                    rows=rows,
                    categories=tuple(dict.fromkeys(column.category for column in spec.columns)),
                )
                values = self._erasure_values(name, tables[name])
                if values is None:
                    table_plan.deleted = rows
                else:
                    masked = tuple(c for c in values if strategies[c] == "mask")
                    nulled = tuple(c for c in values if strategies[c] != "mask")
                    kept = tuple(c for c, strategy in strategies.items() if strategy == "retain")
                    table_plan.nulled_columns, table_plan.masked_columns = nulled, masked
                    table_plan.retained_columns = kept
                    table_plan.anonymised = rows if values else 0
                    table_plan.nulled = rows if nulled else 0
                    table_plan.masked = rows if masked else 0
                    retained_categories = self._retained_categories(name)
                    table_plan.retained = rows if retained_categories else 0
                    for category in retained_categories:
                        retained_in.setdefault(category, []).append(name)
                plan.tables.append(table_plan)
        for category, names in retained_in.items():
            reason = categories[category].retain_reason or ""
            plan.retained.append(RetainedCategory(category, reason, tuple(names)))
        return plan

    async def plan_rectification(
        self, identity: SubjectIdentity, changes: list[dict[str, Any]]
    ) -> RectificationPlan:
        """Per requested field this source holds: its table, the subject's rows there and
        their current value (up to five distinct values), as ``rectify`` would find them."""
        tables = await self._prepared()
        plan = RectificationPlan(source=self.name)
        async with self._read_only("plan the rectification") as connection:
            for change in changes:
                field = str(change.get("field") or "")
                located = self._locate(field)
                if located is None:
                    plan.not_held.append(field)
                    continue
                name, column_name = located
                table = tables[name]
                where = self._where(name, identity, tables)
                rows = await self._subject_count(connection, name, tables, identity)
                if not rows:
                    plan.not_held.append(field)
                    continue
                statement = (
                    select(_raw(table.c[column_name]))
                    .where(where)
                    .distinct()
                    .limit(BEFORE_VALUES_SHOWN + 1)
                )
                values = [_json_safe(value) for value in (await connection.execute(statement))
                          .scalars()][:BEFORE_VALUES_SHOWN]  # fmt: skip
                current = values[0] if len(values) == 1 else values
                plan.changes.append(PlannedChange(field, name, rows, current))
        return plan

    async def plan_restriction(self, identity: SubjectIdentity) -> RestrictionPlan:
        """The rows of the map's restriction table ``restrict`` would flag."""
        restriction = self.dataset_map.restriction
        if restriction is None:
            return RestrictionPlan(source=self.name, supported=False)
        tables = await self._prepared()
        async with self._read_only("plan the restriction") as connection:
            rows = await self._subject_count(connection, restriction.table, tables, identity)
        return RestrictionPlan(source=self.name, rows=rows, table=restriction.table)

    async def plan_access(self, identity: SubjectIdentity, *, provided_only: bool) -> AccessPlan:
        """Rows per table, and per data category the rows holding it (a row counts once in
        each category it has facts of; links alone count nowhere, as in the CSV pack)."""
        tables = await self._prepared()
        plan = AccessPlan(source=self.name)
        async with self._read_only("count the subject's records") as connection:
            for name in self._table_order():
                columns = self._columns(self.dataset_map.tables[name], provided_only)
                if provided_only and not any(c.provided_by_subject for c in columns):
                    continue
                rows = await self._subject_count(connection, name, tables, identity)
                if not rows:
                    continue
                plan.tables[name] = rows
                facts = {column.category for column in columns if not column.link}
                for category in facts or {column.category for column in columns}:
                    plan.categories[category] = plan.categories.get(category, 0) + rows
        return plan

    # -- erasure -------------------------------------------------------------------------

    async def erase(
        self, identity: SubjectIdentity, *, recorder: ErasureRecorder | None = None
    ) -> ErasureOutcome:
        """Erase per category strategy, dependants before the tables they point to, atomically.

        A row goes when every column's category erases by ``delete``; otherwise it stays
        with ``delete``/``null`` columns set NULL, ``mask`` columns masked (text: "[erased]",
        other types: NULL) and ``retain`` columns and the primary key kept. Before a table
        changes, ``recorder`` learns the identity values its rows hold and the keys of the
        rows it keeps for a ``retain`` category (they may be unreachable afterwards), and
        before the commit, every identity value the erased rows held.
        """
        tables = await self._prepared()
        outcome = ErasureOutcome(source=self.name)
        retained_in: dict[str, list[str]] = {}
        found: list[tuple[str, Any]] = []
        try:
            async with self._engine_or_create().begin() as connection:
                for name in self.dataset_map.dependency_order():
                    if recorder is not None:
                        found += await self._record(connection, name, tables, identity, recorder)
                    try:
                        kept = await self._erase_table(connection, name, tables, identity, outcome)
                    except IntegrityError as exc:
                        raise self._constraint_error(exc, name, tables[name]) from None
                    if kept:
                        for category in self._retained_categories(name):
                            retained_in.setdefault(category, []).append(name)
                if recorder is not None and found:
                    # Once, still before the commit: one write for the whole erasure.
                    await recorder.found(list(dict.fromkeys(found)))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._translate(exc, "erase the subject's records") from None
        for category, names in retained_in.items():
            reason = self.dataset_map.categories[category].retain_reason or ""
            outcome.retained.append(RetainedCategory(category, reason, tuple(names)))
        return outcome

    async def _record(
        self,
        connection: AsyncConnection,
        name: str,
        tables: Mapping[str, Table],
        identity: SubjectIdentity,
        recorder: ErasureRecorder,
    ) -> list[tuple[str, Any]]:
        """Give ``recorder`` the keys of the rows the table keeps, before they change, and
        answer the identity values the subject's rows hold there."""
        table, spec = tables[name], self.dataset_map.tables[name]
        where = self._where(name, identity, tables)
        found: list[tuple[str, Any]] = []
        for kind, column_name in spec.identity_columns.items():
            column = table.c[column_name]
            statement = (
                select(_raw(column))
                .where(where, column.is_not(None))
                .distinct()
                .limit(IDENTITIES_PER_COLUMN)
            )
            found += [(kind, value) for value in (await connection.execute(statement)).scalars()]
        if not self._retained_categories(name):
            return found
        key = _raw(table.c[spec.primary_key])
        statement = select(key).where(where).execution_options(yield_per=self._batch_size)
        result = await connection.stream(statement)
        try:
            async for partition in result.partitions(self._batch_size):
                await recorder.retained(name, [row[0] for row in partition])
        finally:
            await result.close()
        return found

    def _retained_categories(self, name: str) -> list[str]:
        categories = self.dataset_map.categories
        return list(
            dict.fromkeys(
                column.category
                for column in self.dataset_map.tables[name].columns
                if categories[column.category].erasure == "retain"
            )
        )

    async def _erase_table(
        self,
        connection: AsyncConnection,
        name: str,
        tables: Mapping[str, Table],
        identity: SubjectIdentity,
        outcome: ErasureOutcome,
    ) -> int:
        """Erase one table's rows; answers how many rows were kept."""
        table = tables[name]
        where = self._where(name, identity, tables)
        values = self._erasure_values(name, table)
        if values is None:
            deleted = (await connection.execute(delete(table).where(where))).rowcount
            if deleted:
                outcome.deleted_rows[name] = deleted
            return 0
        if not values:
            statement = select(func.count()).select_from(table).where(where)
            return int((await connection.execute(statement)).scalar_one())
        changed = (await connection.execute(update(table).where(where).values(values))).rowcount
        if changed:
            outcome.anonymised_rows[name] = changed
        return int(changed)

    def _erasure_values(self, name: str, table: Table) -> dict[str, Any] | None:
        """What a kept row's columns become; None when the whole row is deleted."""
        spec = self.dataset_map.tables[name]
        strategies = {
            column.name: self.dataset_map.categories[column.category].erasure
            for column in spec.columns
        }
        if all(strategy == "delete" for strategy in strategies.values()):
            return None
        return {
            column_name: _mask_for(table.c[column_name].type) if strategy == "mask" else None
            for column_name, strategy in strategies.items()
            # A kept row keeps its key and its retained columns.
            if column_name != spec.primary_key and strategy != "retain"
        }

    def _constraint_error(self, exc: IntegrityError, name: str, table: Table) -> SourceError:
        """Which column refused the erasure (from the driver's structured fields)."""
        columns = sorted(self._erasure_values(name, table) or {})
        origin = getattr(exc.orig, "__cause__", None) or exc.orig
        column = getattr(origin, "column_name", None)
        if column is None:
            # SQLite says "NOT NULL constraint failed: table.column": identifiers only.
            found = re.search(r"constraint failed: [\w\"]+\.([\w\"]+)", str(exc.orig))
            column = found.group(1).strip('"') if found else None
        if column in columns:
            where = f"column {name}.{column}"
        else:
            where = f"table {name} (columns {', '.join(columns)})" if columns else f"table {name}"
        return self._error(
            f"erasure was refused by a database constraint on {where} "
            f"({type(origin).__name__}); nothing was changed, fix the dataset map's strategy",
            retryable=False,
        )

    # -- rectification and restriction ---------------------------------------------------

    def _locate(self, field: str) -> tuple[str, str] | None:
        """The (table, column) a requested field names, or None when this source lacks it."""
        tables = self.dataset_map.tables
        table_name, dot, column_name = field.partition(".")
        if dot:
            candidates = [table_name] if table_name in tables else []
        else:
            column_name = table_name
            subject = self.dataset_map.subject_table
            holders = [name for name, spec in tables.items() if spec.column(column_name)]
            candidates = [subject] if subject in holders else holders
        if len(candidates) != 1 or tables[candidates[0]].column(column_name) is None:
            return None
        name = candidates[0]
        # A key or a link to another row is a reference, not a fact about the person.
        links = {r.from_column for r in self.dataset_map.relations if r.from_table == name}
        if column_name == tables[name].primary_key or column_name in links:
            return None
        return name, column_name

    def _linked_copies(self, table: str, column: str) -> list[tuple[str, str]]:
        """The ``from`` columns that hold this column's value (links follow a rectification)."""
        copies = []
        for relation in self.dataset_map.relations:
            if (relation.to_table, relation.to_column) == (table, column):
                copies.append((relation.from_table, relation.from_column))
                copies += self._linked_copies(relation.from_table, relation.from_column)
        return copies

    async def rectify(
        self, identity: SubjectIdentity, changes: list[dict[str, Any]]
    ) -> RectificationOutcome:
        """Apply ``[{"field", "current", "requested"}]`` to the subject's rows, atomically.

        ``field`` is ``table.column`` or a bare column (the subject table's, else the one
        table holding it). A column other rows link to (a relation's ``to``) carries the new
        value to the linking columns too, so the links hold. Unknown fields, primary keys,
        linking columns themselves and fields of tables where the subject has no row are
        reported in ``not_held``.
        """
        tables = await self._prepared()
        outcome = RectificationOutcome(source=self.name)
        planned: dict[str, dict[str, _PlannedChange]] = {}
        for change in changes:
            field = str(change.get("field") or "")
            located = self._locate(field)
            if located is None:
                outcome.not_held.append(field)
                continue
            requested = change.get("requested")
            planned.setdefault(located[0], {})[located[1]] = _PlannedChange(field, requested)
            for table, column in self._linked_copies(*located):
                copy = _PlannedChange(field, requested, follows_link=True)
                planned.setdefault(table, {}).setdefault(column, copy)
        try:
            async with self._engine_or_create().begin() as connection:
                # Dependants first: their rows are found through the values about to change.
                for name in self.dataset_map.dependency_order():
                    if name in planned:
                        await self._rectify_table(
                            connection, name, planned[name], tables, identity, outcome
                        )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._translate(exc, "rectify the subject's records") from None
        return outcome

    async def _rectify_table(
        self,
        connection: AsyncConnection,
        name: str,
        columns: dict[str, "_PlannedChange"],
        tables: Mapping[str, Table],
        identity: SubjectIdentity,
        outcome: RectificationOutcome,
    ) -> None:
        table = tables[name]
        where = self._where(name, identity, tables)
        values: dict[str, Any] = {}
        for column_name, change in columns.items():
            coerced = _coerce(change.requested, table.c[column_name].type)
            if coerced is IDENTITY_UNMATCHABLE:
                raise self._error(
                    f"the requested value for {name}.{column_name} does not fit the column's type",
                    retryable=False,
                )
            values[column_name] = coerced
        befores = {}
        for column_name in columns:
            column = _raw(table.c[column_name])
            statement = select(column).where(where).distinct().limit(BEFORE_VALUES_SHOWN + 1)
            befores[column_name] = list((await connection.execute(statement)).scalars())
        # One UPDATE per table: every change matches the rows as they were.
        changed = (await connection.execute(update(table).where(where).values(values))).rowcount
        for column_name, change in columns.items():
            if not changed:
                if not change.follows_link:
                    outcome.not_held.append(change.field)
                continue
            before = [_json_safe(value) for value in befores[column_name][:BEFORE_VALUES_SHOWN]]
            outcome.applied.append(
                FieldChange(
                    field=change.field,
                    table=name,
                    rows=int(changed),
                    before=before[0] if len(before) == 1 else before,
                    after=_json_safe(values[column_name]),
                )
            )

    async def restrict(self, identity: SubjectIdentity, *, restricted: bool) -> RestrictionOutcome:
        """Set (or clear) the map's restriction column on the subject's rows."""
        restriction = self.dataset_map.restriction
        if restriction is None:
            return RestrictionOutcome(source=self.name, supported=False)
        tables = await self._prepared()
        table = tables[restriction.table]
        column = table.c[restriction.column]
        flag: Any = restricted if isinstance(column.type, Boolean) else int(restricted)
        statement = (
            update(table)
            .where(self._where(restriction.table, identity, tables))
            .values({restriction.column: flag})
        )
        try:
            async with self._engine_or_create().begin() as connection:
                flagged = (await connection.execute(statement)).rowcount
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._translate(exc, "record the restriction") from None
        return RestrictionOutcome(source=self.name, flagged_rows=int(flagged))


@dataclass(frozen=True)
class _TableRows:
    """One table's rows of the subject: what to select, and how its batches describe it."""

    name: str
    table: Table
    columns: tuple[ColumnInfo, ...]
    record_id_index: int
    statement: Select[Any]

    def batch(self, source: str, rows: list[tuple[Any, ...]]) -> RecordBatch:
        return RecordBatch(source, self.name, self.columns, self.record_id_index, rows)


@dataclass(frozen=True)
class _PlannedChange:
    field: str
    requested: Any
    # A linking column updated because the column it copies was rectified.
    follows_link: bool = False


def _raw(column: Any) -> Any:
    """The column as the driver returns it: no SQLAlchemy conversion per value.

    Faster on big exports, and faithful (SQLite NUMERIC would otherwise become a Decimal
    padded to ten places).
    """
    return type_coerce(column, NullType()).label(column.name)


def _mask_for(column_type: Any) -> Any:
    """A non-identifying value of the column's type: text is overwritten, the rest nulled."""
    if not isinstance(column_type, String):
        return None
    length = getattr(column_type, "length", None)
    return MASK if length is None or length >= len(MASK) else "*" * length


def _coerce(value: Any, column_type: Any) -> Any:
    """``value`` as the column's Python type (identities and requests arrive as text)."""
    if value is None:
        return None
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return value
    if isinstance(value, python_type) and not (python_type is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if python_type is bool:
            lowered = text.lower()
            if lowered in {"true", "1", "yes"}:
                return True
            if lowered in {"false", "0", "no"}:
                return False
            return IDENTITY_UNMATCHABLE
        if python_type is int:
            return int(text)
        if python_type is float:
            return float(text)
        if python_type is Decimal:
            return Decimal(text)
        if python_type is datetime:
            return datetime.fromisoformat(text)
        if python_type is date:
            return date.fromisoformat(text)
        if python_type is str:
            return str(value)
    except (ValueError, InvalidOperation):
        return IDENTITY_UNMATCHABLE
    return value


def _json_safe(value: Any) -> Any:
    """Before/after values go into the audit trail's JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
