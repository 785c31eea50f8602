"""Group commit: concurrent writes of new rows share one transaction.

Intake is the hot path and its cost was the transaction, not the rows: a begin, four INSERTs
and a commit per request. Here each caller hands over its rows as a ``Write`` and waits; a
drainer task takes every write queued so far, inserts them table by table in one transaction
(one executemany per table) and commits, then takes what queued meanwhile. Every caller is
answered only after the transaction that holds its rows has committed, so nothing is
acknowledged that is not durable.

Writes stay atomic and independent: when a shared transaction fails on one write's rows (a
reused idempotency key, a replayed assertion, a value out of range), each write is retried in
a transaction of its own, so only the offending caller gets the error. When the database
itself cannot serve (unreachable, starting up, recovering: ``database_unavailable``), no
write is to blame: every caller in the batch gets that error (503) and nothing is retried.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from pydantic_core import PydanticUndefined
from sqlalchemy import JSON, Insert, Table, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import class_mapper

from app.core.db import database_unavailable

Model = TypeVar("Model")

# Bounds one transaction's statements (PostgreSQL allows 32,767 parameters per statement).
MAX_WRITES_PER_TRANSACTION = 64


@dataclass
class Write:
    """Rows for several tables, inserted in the order given, all or nothing.

    ``on_conflict`` maps a table to the error its caller should see when that table's rows
    break a uniqueness constraint (the database's IntegrityError otherwise).

    ``prepare`` reads what the rows depend on, in the transaction that inserts them: it is
    called once for all the writes of a transaction that name it (one query for the batch,
    not one per caller) and may change their rows. ``finish`` then completes the write's own
    rows from what it found, before they are inserted (no I/O). Both run again when a write
    is retried in a transaction of its own, so they must set values, not accumulate them.
    """

    rows: list[tuple[Table, list[dict[str, Any]]]]
    on_conflict: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    prepare: "Prepare | None" = None
    finish: Callable[[], None] | None = None


Prepare = Callable[[AsyncConnection, list[Write]], Awaitable[None]]


@dataclass
class _Pending:
    write: Write
    done: asyncio.Future[None]


class GroupCommitter:
    """One per engine; safe to share between the requests of one event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: list[_Pending] = []
        # Commits the queue batch by batch and ends when it is empty; started by the next write.
        self._drainer: asyncio.Task[None] | None = None

    async def write(self, write: Write) -> None:
        """Insert the rows; returns once they are committed, raises what their insert raised."""
        loop = asyncio.get_running_loop()
        if self._drainer is not None and self._drainer.get_loop() is not loop:
            # A new event loop (a test, a restarted server): the old one's queue died with it.
            self._queue, self._drainer = [], None
        pending = _Pending(write, loop.create_future())
        self._queue.append(pending)
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        # A caller cancelled here cancels its future, and a cancelled write is never started.
        await pending.done

    async def _drain(self) -> None:
        try:
            # Writes queued while a transaction commits form the next one: the busier, the bigger.
            while self._queue:
                batch = self._queue[:MAX_WRITES_PER_TRANSACTION]
                del self._queue[:MAX_WRITES_PER_TRANSACTION]
                batch = [pending for pending in batch if not pending.done.done()]
                if batch:
                    await self._commit(batch)
        except BaseException as exc:
            # Only a shutdown gets here (_commit answers its own errors): answer the rest too.
            queued, self._queue = self._queue, []
            _settle(queued, exc)
            raise

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                await self._commit_alone(batch[0])
                return
            try:
                async with self._engine.begin() as connection:
                    writes = [p.write for p in batch]
                    await _prepare(connection, writes)
                    await _insert(connection, writes)
            except DBAPIError as exc:
                if database_unavailable(exc):
                    # The database failed, not a write: every caller hears so (503), and a
                    # recovering server is not hit once more per write.
                    raise
                # One write's rows were refused: find out whose, each in its own transaction.
                for pending in batch:
                    await self._commit_alone(pending)
                return
            _settle(batch, None)
        except BaseException as exc:
            _settle(batch, exc)
            if not isinstance(exc, Exception):
                raise

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            async with self._engine.begin() as connection:
                await _prepare(connection, [pending.write])
                for table, rows in pending.write.rows:
                    if not rows:
                        continue
                    try:
                        await _insert_rows(connection, table, rows)
                    except IntegrityError:
                        conflict = pending.write.on_conflict.get(table.name)
                        if conflict is None:
                            raise
                        raise conflict() from None
        except Exception as exc:
            _settle([pending], exc)
        else:
            _settle([pending], None)


async def _prepare(connection: AsyncConnection, writes: list[Write]) -> None:
    """Each ``prepare`` once for the writes naming it, then each write's ``finish``."""
    by_hook: dict[Prepare, list[Write]] = {}
    for write in writes:
        if write.prepare is not None:
            by_hook.setdefault(write.prepare, []).append(write)
    for prepare, group in by_hook.items():
        await prepare(connection, group)
    for write in writes:
        if write.finish is not None:
            write.finish()


async def _insert(connection: AsyncConnection, writes: list[Write]) -> None:
    """Each table's rows from every write together, tables in first-seen order."""
    by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for write in writes:
        for table, rows in write.rows:
            by_table.setdefault(table.name, (table, []))[1].extend(rows)
    for table, rows in by_table.values():
        await _insert_rows(connection, table, rows)


async def _insert_rows(
    connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]
) -> None:
    """One executemany per set of columns given (an executemany binds the same columns)."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(row), []).append(row)
    for same_columns in shapes.values():
        await connection.execute(_insert_into(table), same_columns)


@lru_cache(maxsize=64)
def _insert_into(table: Table) -> Insert:
    # One statement object per table: building it again per batch cost a cache-key walk.
    return insert(table)


def _settle(batch: list[_Pending], error: BaseException | None) -> None:
    for pending in batch:
        if pending.done.done():
            continue
        if error is None:
            pending.done.set_result(None)
        else:
            pending.done.set_exception(error)


def table_row(table: Table, instance: Any) -> dict[str, Any]:
    """A ``transient`` instance as a plain row for a Core INSERT (intake skips the unit of
    work). It reads the instance's own values, which a loaded instance may not all hold.

    Columns left NULL are left out, so the statement binds only what the row holds (a new
    request fills 15 of its 45 columns); the database stores NULL for them all the same.
    """
    values = instance.__dict__
    return {
        name: value
        for name in _insert_columns(table)
        if (value := values.get(name)) is not None or name not in _nullable_unset(table)
    }


@lru_cache(maxsize=64)
def _insert_columns(table: Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.c)


@lru_cache(maxsize=64)
def _nullable_unset(table: Table) -> frozenset[str]:
    """Columns that store NULL when left out of an INSERT: no default of ours or the
    database's, and not JSON (whose None is stored as JSON null, not NULL)."""
    return frozenset(
        column.name
        for column in table.c
        if column.default is None
        and column.server_default is None
        and not isinstance(column.type, JSON)
    )


# Per table model: its class manager (makes bare instances) and its plain field defaults.
_blueprints: dict[type[Any], tuple[Any, dict[str, Any]]] = {}


def _blueprint(model: type[Any]) -> tuple[Any, dict[str, Any]]:
    found = _blueprints.get(model)
    if found is None:
        defaults = {
            name: info.default
            for name, info in model.model_fields.items()
            if info.default_factory is None and info.default is not PydanticUndefined
        }
        # class_mapper configures the mappers first, as constructing any instance would.
        found = _blueprints[model] = (class_mapper(model).class_manager, defaults)
    return found


def transient(model: type[Model], values: dict[str, Any]) -> Model:
    """An unsaved instance of a table model holding ``values`` over its defaults, for the code
    that reads a model (views, deadline arithmetic) on a path that inserts with Core.

    Skips SQLModel's validating ``__init__`` (130 µs for a request, 5 % of an intake): the
    values come from a validated body and our own code. Factory defaults are not applied, so
    give every such field (ids) in ``values``. Never add the instance to a session.
    """
    manager, defaults = _blueprint(model)
    instance = manager.new_instance()
    instance.__dict__.update(defaults)
    instance.__dict__.update(values)
    return instance  # type: ignore[no-any-return]
