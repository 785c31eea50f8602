"""Reports over 1,000,000 requests on PostgreSQL: the summary's latency and the register's
streaming rate and memory.

    .venv/bin/python bench/reports.py [--rows 1000000] [--calls 20]

Creates its own database on the server at DSR_BENCH_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test), fills it with one INSERT ... SELECT over
generate_series (types, channels, statuses, extensions, rejections and dates spread over five
years), times the summary (the service function the route calls) for the default period, then
streams the register for the default period and for all five years, and drops the database.
Goals (issue 13): summary p50 under 200 ms; register over 50,000 rows/s, memory flat.
"""

import argparse
import asyncio
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.core.config import Settings
from app.models import metadata
from app.reports import register_csv, summary

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

FILL = """
INSERT INTO requests (
    id, type, status, regulation, channel, received_at, submitted_by, details,
    verification_status, identity_requested, clock_started_on, due_date, due_at, extended,
    extension_reason, paused_days, outcome_reason, closed_at, closed_by, event_sequence,
    created_at, updated_at
)
SELECT
    md5(i::text)::uuid,
    (ARRAY['access','erasure','access','rectification','objection','portability',
           'access','restriction'])[1 + i % 8],
    status,
    (ARRAY['uk_gdpr','uk_gdpr','uk_gdpr','eu_gdpr','ccpa'])[1 + i % 5],
    (ARRAY['api','web','email','post','phone'])[1 + (i / 7) % 5],
    received_at,
    'bench', '{}', 'verified', false,
    received_at::date, received_at::date + 31,
    received_at::date + 31 + interval '23 hours 59 minutes',
    i % 40 = 0,
    CASE WHEN i % 40 = 0 THEN
        (ARRAY['Complex request','Several systems','Number of requests'])[1 + i % 3] END,
    CASE WHEN i % 9 = 0 THEN 4 ELSE 0 END,
    CASE WHEN status = 'rejected' THEN
        (ARRAY['identity_not_verified','manifestly_unfounded','identity_not_verified',
               'excessive','exemption'])[1 + (i / 20) % 5] END,
    CASE WHEN status IN ('completed','rejected','cancelled') THEN
        received_at + (i % 43) * interval '1 day' + (i % 11) * interval '1 hour' END,
    -- Half the identity rejections were the expiry sweep's ("system").
    CASE WHEN status IN ('completed','rejected','cancelled') THEN
        CASE WHEN status = 'rejected' AND (i / 20) % 5 IN (0, 2) AND (i / 10) % 2 = 0
                  THEN 'system'
             ELSE 'officer' END END,
    0, received_at, received_at
FROM (
    SELECT
        i,
        now() - (i % 1826) * interval '1 day' - (i % 86400) * interval '1 second'
            AS received_at,
        CASE
            WHEN i % 1826 < 40 THEN
                (ARRAY['in_progress','awaiting_verification','paused'])[1 + i % 3]
            ELSE (ARRAY['completed','completed','completed','completed','completed',
                        'completed','completed','rejected','completed','cancelled'])[1 + i % 10]
        END AS status
    FROM generate_series(1, :rows) AS i
) AS generated
-- In order of receipt, as a live service writes them.
ORDER BY generated.received_at
"""
# An audit trail as large as the requests, with each rejection's entry by its closer.
EVENTS = """
INSERT INTO request_events (request_id, type, actor, at, data)
SELECT id, 'request.received', 'bench', received_at, '{}'::json FROM requests
UNION ALL
SELECT id, 'request.rejected', closed_by, closed_at, '{}'::json
FROM requests WHERE status = 'rejected'
"""


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _fill(url: str, rows: int) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(text(FILL).bindparams(rows=rows))
        await connection.execute(text(EVENTS))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE requests"))
        await connection.execute(text("VACUUM ANALYZE request_events"))
    print(f"filled {rows:,} requests in {time.perf_counter() - started:.1f} s")
    await engine.dispose()


async def _p50_ms(run: Callable[[], Awaitable[None]], calls: int) -> tuple[float, float, float]:
    """p50, p95 and min in ms; the first two calls warm the caches and connections."""
    timings = []
    for _ in range(calls + 2):
        started = time.perf_counter()
        await run()
        timings.append((time.perf_counter() - started) * 1000)
    timings = sorted(timings[2:])
    p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
    return statistics.median(timings), p95, timings[0]


async def _time_summary(settings: Settings, sessionmaker: async_sessionmaker, calls: int) -> None:  # type: ignore[type-arg]
    now = datetime.now(UTC)
    window = summary.period(settings, now, from_date=None, to_date=None)
    reports = []

    async def whole_summary() -> None:
        async with sessionmaker() as session:
            reports.append(
                await summary.summary(session, settings=settings, window=window, now=now)
            )

    async def bare_count() -> None:
        async with sessionmaker() as session:
            await session.execute(
                text(
                    "SELECT count(*) FROM requests "
                    "WHERE received_at >= :start AND received_at < :end"
                ),
                {"start": window.start, "end": window.end},
            )

    p50, p95, fastest = await _p50_ms(whole_summary, calls)
    baseline, _, _ = await _p50_ms(bare_count, calls)
    report = reports[-1]
    print(
        f"summary (default 12 months, {report.received.total:,} received, "
        f"{report.open_now.total:,} open, {report.verification_expiries:,} expiries): "
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, min {fastest:.0f} ms over {calls} calls; "
        f"baseline: a bare count of the period's requests, p50 {baseline:.0f} ms"
    )


async def _time_register(
    settings: Settings,
    sessionmaker: async_sessionmaker,  # type: ignore[type-arg]
    label: str,
    window: summary.Period,
) -> None:
    before = _rss_mb()
    rows = size = 0
    started = time.perf_counter()
    async for chunk in register_csv.stream_register(sessionmaker, settings=settings, window=window):
        size += len(chunk)
        rows += chunk.count(b"\r\n")
    elapsed = time.perf_counter() - started
    rows -= 1  # the header
    print(
        f"register ({label}): {rows:,} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s = "
        f"{rows / elapsed:,.0f} rows/s; peak RSS {before:.0f} MB before, "
        f"{_rss_mb():.0f} MB after"
    )


async def _time_raw_fetch(dsn: str, label: str, window: summary.Period) -> None:
    """The baseline: the same rows through a bare asyncpg cursor, nothing encoded."""
    connection = await asyncpg.connect(dsn)
    rows = 0
    started = time.perf_counter()
    async with connection.transaction():
        cursor = connection.cursor(
            "SELECT id, type, regulation, channel, received_at, clock_started_on, due_date, "
            "due_at, extended, extension_reason, paused_days, closed_at, status, "
            "outcome_reason, pause_reason FROM requests "
            "WHERE received_at >= $1 AND received_at < $2 ORDER BY received_at, id",
            window.start,
            window.end,
            prefetch=register_csv.PARTITION,
        )
        async for _row in cursor:
            rows += 1
    elapsed = time.perf_counter() - started
    await connection.close()
    print(f"baseline: bare asyncpg cursor ({label}): {rows:,} rows = {rows / elapsed:,.0f} rows/s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    server = os.environ.get("DSR_BENCH_POSTGRES_URL", DEFAULT_URL)
    name = f"dsr_bench_reports_{os.getpid()}"
    admin = await asyncpg.connect(_asyncpg_dsn(server))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(drivername="postgresql+asyncpg", database=name)
    url_text = url.render_as_string(hide_password=False)
    try:
        await _fill(url_text, args.rows)
        settings = Settings(database_url=url_text)
        engine = create_async_engine(url_text)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        await _time_summary(settings, sessionmaker, args.calls)
        now = datetime.now(UTC)
        twelve_months = summary.period(settings, now, from_date=None, to_date=None)
        await _time_register(settings, sessionmaker, "12 months", twelve_months)
        today = twelve_months.to_date
        five_years = summary.period(
            settings, now, from_date=today.replace(year=today.year - 5), to_date=today
        )
        await _time_register(settings, sessionmaker, "5 years", five_years)
        await _time_raw_fetch(_asyncpg_dsn(url_text), "5 years", five_years)
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
