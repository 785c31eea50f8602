#!/usr/bin/env python3
"""Exporting a 1,000,000-row subject from PostgreSQL (CSV, JSON) against COPY of the same rows.

Run from the project root:  .venv/bin/python bench/export.py [--rows 1000000] [--runs 3]

What it does (see bench/README.md):
 1. creates a scratch PostgreSQL database (default ``dsr_bench_export_<pid>``) with a
    ``contacts`` table and an ``orders`` table: ``--rows`` orders for the subject and
    ``--other-rows`` for other people (text, integer, numeric, timestamptz, boolean columns);
 2. per run, in this order: ``COPY (SELECT <the mapped columns> ... subject ...) TO STDOUT
    WITH (FORMAT csv)`` of both tables with psql into a file, the same with asyncpg's
    ``copy_from_query``; then the service's export path, ``SqlConnector.collect_for_export
    (provided_only=False)`` (as fulfilment calls it: big tables come as PostgreSQL COPY
    streams, ``sources.pg_copy``) piped into ``write_exports``, once for CSV only and once
    for JSON only, each in a fresh subprocess that reports its own peak RSS (VmHWM);
 3. checks the exports hold every row (the zip's manifest and each category file read back;
    the JSON summary and its rows counted) and that COPY wrote every row;
 4. prints rows, best-of-``--runs`` times, export/COPY ratios, output sizes, peak RSS and
    the goals (export <= 3 x COPY, peak RSS < 200 MB), PASS/MISS per figure;
 5. drops the database (``--keep-db`` to keep it).

All traffic stays on 127.0.0.1. Exit code: 0 goals met, 1 a goal missed, 2 an export or COPY
lacked rows, 3 the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ROOT, BenchError, drop_database, log, pg_dsn, recreate_database

GOAL_RATIO = 3.0  # export time <= 3 x COPY time
GOAL_RSS_MB = 200.0  # peak RSS of the exporting process
FORMATS = ("csv", "json")
SUBJECT_EMAIL = "jane.doe@example.com"
OTHER_PEOPLE = 1000

DATASET_MAP: dict[str, Any] = {
    "subject_table": "contacts",
    "categories": {
        "identity": {"description": "Customer number, name, date of birth.", "erasure": "delete"},
        "contact": {"description": "Email, phone, delivery addresses.", "erasure": "delete"},
        "financial": {
            "description": "Orders and payments.",
            "erasure": "retain",
            "retain_reason": "financial records, 6 years, HMRC",
        },
    },
    "relations": [{"from": "orders.customer_id", "to": "contacts.customer_id"}],
    "restriction": {"table": "contacts", "column": "processing_restricted"},
    "tables": {
        "contacts": {
            "primary_key": "customer_id",
            "identity_columns": {"email": "email", "phone": "phone", "customer_id": "customer_id"},
            "columns": {
                "customer_id": {"category": "identity", "provided_by_subject": False},
                "first_name": {"category": "identity", "provided_by_subject": True},
                "last_name": {"category": "identity", "provided_by_subject": True},
                "date_of_birth": {"category": "identity", "provided_by_subject": True},
                "email": {"category": "contact", "provided_by_subject": True},
                "phone": {"category": "contact", "provided_by_subject": True},
                "created_at": {"category": "identity", "provided_by_subject": False},
                "marketing_opt_in": {"category": "contact", "provided_by_subject": True},
            },
        },
        "orders": {
            "primary_key": "order_id",
            "identity_columns": {},
            "columns": {
                "order_id": {"category": "financial", "provided_by_subject": False},
                "customer_id": {"category": "financial", "provided_by_subject": False},
                "placed_at": {"category": "financial", "provided_by_subject": False},
                "product": {"category": "financial", "provided_by_subject": True},
                "quantity": {"category": "financial", "provided_by_subject": True},
                "amount": {"category": "financial", "provided_by_subject": False},
                "currency": {"category": "financial", "provided_by_subject": False},
                "paid": {"category": "financial", "provided_by_subject": False},
                "status": {"category": "financial", "provided_by_subject": False},
                "delivery_address": {"category": "contact", "provided_by_subject": True},
                "delivery_postcode": {"category": "contact", "provided_by_subject": True},
                "notes": {"category": "contact", "provided_by_subject": True},
            },
        },
    },
}

SCHEMA = """
CREATE TABLE contacts (
    customer_id integer PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    date_of_birth date,
    email text NOT NULL,
    phone text,
    created_at timestamptz NOT NULL,
    marketing_opt_in boolean NOT NULL,
    processing_restricted boolean NOT NULL DEFAULT false
);
CREATE INDEX contacts_email_lower ON contacts (lower(email));
CREATE TABLE orders (
    order_id bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES contacts (customer_id),
    placed_at timestamptz NOT NULL,
    product text NOT NULL,
    quantity integer NOT NULL,
    amount numeric(10, 2) NOT NULL,
    currency text NOT NULL,
    paid boolean NOT NULL,
    status text NOT NULL,
    delivery_address text NOT NULL,
    delivery_postcode text NOT NULL,
    notes text
);
"""

# $1: first order_id, $2: how many, $3: how many customers share them (from customer_id $4).
ORDERS_INSERT = """
INSERT INTO orders
SELECT $1::bigint + i,
       $4::integer + (i % $3::integer),
       timestamptz '2019-01-01 08:00:00+00' + i * interval '97 seconds',
       (ARRAY['Espresso beans 1kg', 'Oat milk 6-pack', 'Ceramic mug', 'Grinder burrs',
              'Gift card £25', 'Descaler', 'Filter papers x100', 'Cold brew kit',
              'Travel cup', 'Decaf 500g', 'Tea sampler', 'Brew guide (book)'])[1 + i % 12],
       1 + i % 5,
       round(1 + ((i * 7919) % 50000) / 100.0, 2),
       'GBP',
       i % 10 <> 0,
       (ARRAY['delivered', 'delivered', 'delivered', 'shipped', 'refunded'])[1 + i % 5],
       (ARRAY['1 Test Street, London', 'Flat 2, 10 High Road, Leeds',
              '5 "The Old Mill", Bath'])[1 + i % 3],
       (ARRAY['SW1A 1AA', 'LS1 4AP', 'BA1 1LZ'])[1 + i % 3],
       CASE WHEN i % 997 = 0 THEN '- ring the bell twice'
            WHEN i % 5 = 0 THEN 'Leave with neighbour at no. ' || (i % 40)
       END
FROM generate_series(0, $2::bigint - 1) AS i
"""


def mapped_columns(table: str) -> list[str]:
    return list(DATASET_MAP["tables"][table]["columns"])


def subject_queries() -> list[str]:
    """The connector's two SELECTs: the same columns of the same subject's rows."""
    subject = f"lower(email) = lower('{SUBJECT_EMAIL}')"
    contacts = f"SELECT {', '.join(mapped_columns('contacts'))} FROM contacts WHERE {subject}"
    orders = (
        f"SELECT {', '.join(mapped_columns('orders'))} FROM orders WHERE customer_id IN "
        f"(SELECT customer_id FROM contacts WHERE {subject})"
    )
    return [contacts, orders]


# ---------------------------------------------------------------- database


async def _populate(dsn: str, rows: int, other_rows: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(SCHEMA)
        await conn.execute(
            "INSERT INTO contacts VALUES (1, 'Jane', 'Doe', date '1987-04-12', $1, "
            "'+441632960001', timestamptz '2018-11-02 10:15:00+00', true, false)",
            SUBJECT_EMAIL,
        )
        await conn.execute(
            "INSERT INTO contacts SELECT n, 'First' || n, 'Last' || n, NULL, "
            "'customer' || n || '@example.org', NULL, now(), n % 2 = 0, false "
            "FROM generate_series(2, $1::integer + 1) AS n",
            OTHER_PEOPLE,
        )
        await conn.execute(ORDERS_INSERT, 0, rows, 1, 1)
        if other_rows:
            await conn.execute(ORDERS_INSERT, rows, other_rows, OTHER_PEOPLE, 2)
        await conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
        # Hint bits and statistics now, so no run pays for them.
        await conn.execute("VACUUM (FREEZE, ANALYZE) contacts, orders")
    finally:
        await conn.close()


def source_url(args: argparse.Namespace) -> str:
    """What an admin would register: a plain postgresql:// URL (the connector picks asyncpg)."""
    dsn, _ = pg_dsn(args.postgres_url)
    return dsn


# ---------------------------------------------------------------- COPY


def copy_psql(args: argparse.Namespace, output: Path) -> float:
    dsn, _ = pg_dsn(args.postgres_url)
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    for query in subject_queries():
        cmd += ["-c", f"COPY ({query}) TO STDOUT WITH (FORMAT csv)"]
    with output.open("wb") as out:
        started = time.perf_counter()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, timeout=600)
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"psql COPY failed: {result.stderr.decode(errors='replace')}")
    return elapsed


async def _copy_asyncpg(dsn: str, output: Path) -> float:
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        with output.open("wb") as out:
            for query in subject_queries():
                await conn.copy_from_query(query, output=out, format="csv")
    finally:
        await conn.close()
    return time.perf_counter() - started


def copy_asyncpg(args: argparse.Namespace, output: Path) -> float:
    dsn, _ = pg_dsn(args.postgres_url)
    return asyncio.run(_copy_asyncpg(dsn, output))


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


# ---------------------------------------------------------------- the export (child process)


def proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class Phases:
    # Awaiting the connector's next item: queries and typed batches. A COPY-encoded table's
    # rows stream while the writer writes them, so they count as writing.
    collect: float = 0.0
    exhausted_at: float = 0.0
    first_batch_at: float = 0.0
    batches: int = 0
    encoded_tables: int = 0


def gc_timer() -> Callable[[], float]:
    """Start adding up the time spent in garbage collections; call the answer to read it."""
    spent = [0.0, 0.0]  # total, start of the current collection

    def callback(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]

    gc.callbacks.append(callback)
    return lambda: spent[0]


async def timed(batches: AsyncIterator[Any], phases: Phases) -> AsyncIterator[Any]:
    """The connector's items, with the time spent waiting for them added up."""
    iterator = batches.__aiter__()
    while True:
        started = time.perf_counter()
        try:
            batch = await iterator.__anext__()
        except StopAsyncIteration:
            phases.exhausted_at = time.perf_counter()
            phases.collect += phases.exhausted_at - started
            return
        now = time.perf_counter()
        phases.collect += now - started
        phases.first_batch_at = phases.first_batch_at or now
        phases.batches += 1
        phases.encoded_tables += not hasattr(batch, "rows")  # an EncodedTable
        yield batch


async def export_once(args: argparse.Namespace) -> dict[str, Any]:
    from app.core.config import Settings
    from app.data_sources.connectors.base import SubjectIdentity
    from app.data_sources.connectors.sql import SqlConnector
    from app.exports.writer import write_exports
    from app.register import service as register

    overrides: dict[str, Any] = {}
    if args.batch_size:
        overrides["fulfilment_batch_size"] = args.batch_size
    settings = Settings(
        env="development",
        secret_key="bench-export-dummy-secret-key-not-for-production",
        database_url="sqlite+aiosqlite:///:memory:",  # the service's own database is not used
        export_dir=args.out,
        **overrides,
    )
    # The header an access pack carries (fulfilment._export), Art. 15 information included.
    header = {
        "export": {
            "request_id": "00000000-0000-4000-8000-000000000000",
            "request_type": "access",
            "regulation": "uk_gdpr",
            "reference": "bench",
            "generated_at": "2026-11-22T00:00:00Z",
            "sources": ["shop"],
        },
        "supplementary_information": register.supplementary_information(
            register.load_register(settings), categories=list(DATASET_MAP["categories"])
        ),
    }
    identity = SubjectIdentity(email=SUBJECT_EMAIL)
    rss_before_kb = proc_status_kb("VmRSS")
    phases = Phases()
    gc_seconds = gc_timer()
    cpu_started = time.process_time()  # every thread: the zip is written off the event loop
    started = time.perf_counter()
    connector = SqlConnector("shop", args.source_url, DATASET_MAP, settings)
    try:
        files = await write_exports(
            timed(connector.collect_for_export(identity, provided_only=False), phases),
            directory=Path(args.out),
            formats=[args.child],
            header=header,
        )
    finally:
        await connector.close()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    exported = files[args.child]
    return {
        "format": args.child,
        "seconds": elapsed,
        "collect_s": phases.collect,
        "finish_s": time.perf_counter() - phases.exhausted_at,
        # Connecting, reflecting the schema and the first round trip.
        "first_batch_s": phases.first_batch_at - started,
        "cpu_s": cpu,
        "gc_s": gc_seconds(),
        "batches": phases.batches,
        "encoded_tables": phases.encoded_tables,
        "batch_size": settings.fulfilment_batch_size,
        "path": str(exported.path),
        "size_bytes": exported.size_bytes,
        "rss_before_kb": rss_before_kb,
        "peak_rss_kb": proc_status_kb("VmHWM"),
    }


def child_main(args: argparse.Namespace) -> int:
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, export_once(args))
        profiler.dump_stats(args.profile)
        with open(args.profile + ".txt", "w") as text:
            stats = pstats.Stats(profiler, stream=text).strip_dirs()
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
    else:
        result = asyncio.run(export_once(args))
    print(json.dumps(result), flush=True)
    return 0


def run_export(
    args: argparse.Namespace, export_format: str, out: Path, profile: Path | None = None
) -> dict[str, Any]:
    """One export in a fresh interpreter, so its peak RSS is its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", export_format]
    cmd += ["--source-url", source_url(args), "--out", str(out)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise BenchError(f"{export_format} export failed ({result.returncode}):\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- checks


def expected_category_rows(rows: int) -> dict[str, int]:
    """Records per category file: every table with a column in the category, other than
    its links to other tables, adds its rows (docs/exports.md)."""
    per_table = {"contacts": 1, "orders": rows}
    links = {tuple(relation["from"].split(".")) for relation in DATASET_MAP["relations"]}
    expected: dict[str, int] = {}
    for table, spec in DATASET_MAP["tables"].items():
        columns = spec["columns"].items()
        facts = dict.fromkeys(c["category"] for n, c in columns if (table, n) not in links)
        for category in facts:
            expected[category] = expected.get(category, 0) + per_table[table]
    return expected


def check_csv(path: Path, rows: int, deep: bool) -> list[str]:
    """Problems with a CSV pack: manifest counts, and (deep) each file read back and hashed."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        tables = {t["table"]: t["records"] for t in manifest["summary"]["tables"]}
        if tables != {"contacts": 1, "orders": rows}:
            problems.append(f"csv manifest records per table {tables}")
        files = {
            f["name"].removesuffix(".csv"): f for f in manifest["files"] if f["records"] is not None
        }
        counts = {name: entry["records"] for name, entry in files.items()}
        if counts != expected_category_rows(rows):
            problems.append(f"csv manifest records per file {counts}")
        for entry in files.values() if deep else ():
            digest = hashlib.sha256()
            with archive.open(entry["name"]) as raw:
                hashing = io.BufferedReader(_Hashing(raw, digest), 1 << 20)
                text = io.TextIOWrapper(hashing, encoding="utf-8", newline="")
                read = sum(1 for _ in csv.reader(text)) - 1  # less the header
            if digest.hexdigest() != entry["sha256"] or read != entry["records"]:
                problems.append(
                    f"csv {entry['name']}: {read} rows read, manifest {entry['records']}"
                )
    return problems


class _Hashing(io.RawIOBase):
    """A readable stream that hashes what passes through it."""

    def __init__(self, raw: Any, digest: Any) -> None:
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def check_json(path: Path, rows: int, deep: bool) -> list[str]:
    """Problems with a JSON pack: its summary (read from the tail) and (deep) its rows counted."""
    problems = []
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 65536))
        tail = file.read()
    summary = json.loads(tail[tail.rindex(b'"summary":') + len(b'"summary":') : -2])
    tables = {t["table"]: t["records"] for t in summary["tables"]}
    if summary["records"] != rows + 1 or tables != {"contacts": 1, "orders": rows}:
        problems.append(f"json summary records {summary['records']}, per table {tables}")
    if deep:
        found = 0
        with path.open("rb") as file:
            for line in file:
                found += line.startswith(b'{"order_id":')
        if found != rows:
            problems.append(f"json holds {found} order rows")
    return problems


# ---------------------------------------------------------------- main


@dataclass
class Series:
    """One measured path over the runs."""

    name: str
    seconds: list[float] = field(default_factory=list)
    size_bytes: int = 0
    peak_rss_kb: list[int] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the subject's orders")
    parser.add_argument(
        "--other-rows", type=int, default=100_000, help=f"orders of {OTHER_PEOPLE} other people"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per path; the best is kept")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="DSR_FULFILMENT_BATCH_SIZE for the export (default: the service's default)",
    )
    parser.add_argument(
        "--postgres-url",
        default=f"postgresql+asyncpg://postgres@127.0.0.1:5432/dsr_bench_export_{os.getpid()}",
        help="database to create, use and drop (its name is the benchmark database)",
    )
    parser.add_argument(
        "--maintenance-db", default="postgres", help="database to connect to for CREATE/DROP"
    )
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="use the database as it is (one a --keep-db run left), without recreating it",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="after the measured runs, export each format once more under cProfile "
        "(DIR/export-<format>.prof, and .prof.txt with the top functions)",
    )
    # Internal: one export in this process (the parent starts these).
    parser.add_argument("--child", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--source-url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.runs < 1 or args.other_rows < 0 or args.batch_size < 0:
        parser.error("--rows and --runs must be positive, --other-rows and --batch-size >= 0")
    return args


def mb(kb: float) -> float:
    return kb / 1024


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench(args: argparse.Namespace, work: Path) -> int:
    db_created = False
    copies = {"psql": Series("COPY via psql"), "asyncpg": Series("COPY via asyncpg")}
    exports = {fmt: Series(f"export {fmt}") for fmt in FORMATS}
    problems: list[str] = []
    try:
        if not args.reuse_db:
            name = recreate_database(args.postgres_url, args.maintenance_db)
            db_created = True
            log(f"created database {name}; loading {args.rows:,} + {args.other_rows:,} orders")
            started = time.perf_counter()
            dsn, _ = pg_dsn(args.postgres_url)
            asyncio.run(_populate(dsn, args.rows, args.other_rows))
            log(f"loaded in {time.perf_counter() - started:.1f}s")
        for run in range(1, args.runs + 1):
            deep = run == 1  # read every file back once; later runs check the counts only
            for key, copy in (("psql", copy_psql), ("asyncpg", copy_asyncpg)):
                output = work / f"copy-{key}.csv"
                seconds = copy(args, output)
                copies[key].seconds.append(seconds)
                copies[key].size_bytes = output.stat().st_size
                if deep and (lines := count_lines(output)) != args.rows + 1:
                    problems.append(f"COPY via {key} wrote {lines} lines")
                output.unlink()
                log(f"run {run}: COPY via {key} {seconds:.2f}s")
            for fmt in FORMATS:
                out = work / f"export-{fmt}"
                result = run_export(args, fmt, out)
                series = exports[fmt]
                series.seconds.append(result["seconds"])
                series.size_bytes = result["size_bytes"]
                series.peak_rss_kb.append(result["peak_rss_kb"])
                series.details.append(result)
                check = check_csv if fmt == "csv" else check_json
                problems += check(Path(result["path"]), args.rows, deep)
                shutil.rmtree(out)
                log(
                    f"run {run}: export {fmt} {result['seconds']:.2f}s "
                    f"(waiting on the connector {result['collect_s']:.2f}s, "
                    f"finishing {result['finish_s']:.2f}s), "
                    f"peak RSS {mb(result['peak_rss_kb']):.0f} MB"
                )
        if args.profile:
            profile_dir = Path(args.profile)
            profile_dir.mkdir(parents=True, exist_ok=True)
            for fmt in FORMATS:
                path = profile_dir / f"export-{fmt}.prof"
                result = run_export(args, fmt, work / f"profile-{fmt}", profile=path)
                shutil.rmtree(work / f"profile-{fmt}")
                log(f"profiled export {fmt} ({result['seconds']:.2f}s under cProfile): {path}")
    finally:
        if db_created and not args.keep_db:
            try:
                drop_database(args.postgres_url, args.maintenance_db)
                log("dropped the benchmark database")
            except Exception as exc:
                log(f"could not drop the benchmark database: {exc}")
    return report(args, copies, exports, problems)


def report(
    args: argparse.Namespace,
    copies: dict[str, Series],
    exports: dict[str, Series],
    problems: list[str],
) -> int:
    baseline = min(copies.values(), key=lambda series: series.best)
    detail = exports["csv"].details[0]
    print()
    print(
        f"subject rows: {args.rows:,} orders + 1 contact (other people's orders: "
        f"{args.other_rows:,}); best of {args.runs} run(s); batch size {detail['batch_size']}; "
        f"{os.cpu_count()} CPUs"
    )
    head = (
        f"{'path':<18} {'best s':>8} {'runs s':<26} {'x COPY':>7} {'size MB':>9} "
        f"{'peak RSS MB':>12}"
    )
    print(head)
    print("-" * len(head))
    for series in (*copies.values(), *exports.values()):
        runs = " ".join(f"{seconds:.2f}" for seconds in series.seconds)
        ratio = series.best / baseline.best
        rss = f"{mb(max(series.peak_rss_kb)):.0f}" if series.peak_rss_kb else "-"
        print(
            f"{series.name:<18} {series.best:>8.2f} {runs:<26} {ratio:>7.2f} "
            f"{series.size_bytes / 1e6:>9.1f} {rss:>12}"
        )
    print()
    print(f"baseline: {baseline.name} (the faster COPY: the database's own fastest path)")
    code = 0
    results: dict[str, Any] = {}
    for fmt, series in exports.items():
        ratio = series.best / baseline.best
        peak = mb(max(series.peak_rss_kb))
        best = series.details[series.seconds.index(series.best)]
        ratio_ok, rss_ok = ratio <= GOAL_RATIO, peak < GOAL_RSS_MB
        code = code or (0 if ratio_ok and rss_ok else 1)
        print(
            f"export {fmt}: {ratio:.2f} x COPY (goal <= {GOAL_RATIO:g}): {verdict(ratio_ok)}; "
            f"peak RSS {peak:.0f} MB (goal < {GOAL_RSS_MB:g}): {verdict(rss_ok)}"
        )
        writing = best["seconds"] - best["collect_s"] - best["finish_s"]
        print(
            f"  best run: waiting on the connector {best['collect_s']:.2f}s (first batch "
            f"{best['first_batch_s']:.2f}s), streaming and writing {writing:.2f}s, finishing "
            f"{best['finish_s']:.2f}s; CPU {best['cpu_s']:.2f}s (GC {best['gc_s']:.2f}s); "
            f"RSS {mb(best['rss_before_kb']):.0f} MB before the export; "
            f"{best['encoded_tables']} of 2 tables encoded by PostgreSQL (COPY)"
        )
        results[fmt] = {
            "best_s": round(series.best, 3),
            "runs_s": [round(s, 3) for s in series.seconds],
            "ratio": round(ratio, 3),
            "size_bytes": series.size_bytes,
            "peak_rss_mb": round(peak, 1),
            "runs": series.details,
        }
    rows_ok = not problems
    print(
        f"rows exported: {'PASS' if rows_ok else 'FAIL'} (CSV manifest and files read back, "
        f"JSON summary and rows counted, COPY lines: {args.rows:,} orders + 1 contact)"
    )
    for problem in problems:
        print(f"  {problem}")
    if not rows_ok:
        code = 2
    if args.json:
        document = {
            "rows": args.rows,
            "other_rows": args.other_rows,
            "runs": args.runs,
            "cpus": os.cpu_count(),
            "copy": {
                key: {"best_s": round(s.best, 3), "runs_s": s.seconds, "size_bytes": s.size_bytes}
                for key, s in copies.items()
            },
            "baseline": baseline.name,
            "exports": results,
            "goals": {"ratio_max": GOAL_RATIO, "peak_rss_mb_max": GOAL_RSS_MB},
            "problems": problems,
            "exit_code": code,
        }
        Path(args.json).write_text(json.dumps(document, indent=2))
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)

    def _terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    if shutil.which("psql") is None:
        log("psql is not installed")
        return 3
    with tempfile.TemporaryDirectory(prefix="dsr-bench-export-") as tmp:
        try:
            return bench(args, Path(tmp))
        except BenchError as exc:
            log(str(exc))
            return 3


if __name__ == "__main__":
    sys.exit(main())
