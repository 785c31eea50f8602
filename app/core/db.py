"""Async engine, the session dependency that owns each request's transaction, and which
database errors mean "cannot serve now"."""

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings

# SQLSTATEs of a server that cannot serve now but will: admin shutdown (57P01, also "unexpected
# postmaster exit"), crash shutdown (57P02), cannot connect now (57P03: starting up, shutting
# down, in recovery), too many connections (53300). Class 08 (connection exception) as well.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE the server answered, where the driver reports one (asyncpg, psycopg)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve now (retry shortly), not that this
    request is at fault: a lost, refused or timed-out connection, no free connection in the
    pool, or a server that is starting up, recovering, shutting down or full."""
    if isinstance(exc, OSError | PoolTimeout):
        # Refused, reset or timed out before the driver wrapped it; or every pooled
        # connection stayed busy for the pool's whole timeout.
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return True
    code = sqlstate(exc)
    return code is not None and (code.startswith("08") or code in _UNAVAILABLE_SQLSTATES)


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the engine for ``DSR_DATABASE_URL`` with backend-appropriate options."""
    url = settings.database_url
    if url.startswith("sqlite"):
        # The driver logs every statement with its parameters at DEBUG: personal data.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers proceed while the single writer commits.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # Let SQLAlchemy, not the driver, decide when transactions begin (see below).
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin_immediate(connection: Any) -> None:
            # Take the write lock up front: SQLite has no row locks, so this serialises
            # read-modify-write actions exactly as FOR UPDATE does on PostgreSQL.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # No pre-ping (three round trips per checkout); recycle instead, and a connection
        # lost anyway answers 503 (see errors.py) so the caller retries.
        pool_recycle=1800,
        # Bound values are personal data: keep them out of logs and exception messages.
        hide_parameters=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per HTTP request: commit on success, roll back on any error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
