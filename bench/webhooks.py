#!/usr/bin/env python3
"""Webhook delivery throughput and event-to-delivery latency with `dsr worker` processes.

Run from the project root:  .venv/bin/python bench/webhooks.py [--events 10000] [--workers 2]

What it does (see bench/README.md):
 1. creates a fresh PostgreSQL database (default ``dsr_bench_webhooks``), migrates it
    (``dsr migrate``) and creates an admin client (``dsr clients create``);
 2. starts a receiver process (this file, ``--serve-receiver``: a raw ASGI app under uvicorn
    that appends ``webhook-id, arrival time, signature headers, body`` per delivery to a file),
    starts the API with uvicorn just long enough to subscribe the receiver with
    ``POST /v1/webhooks`` (events ``request.*``), then stops it;
 3. starts ``--workers`` ``dsr worker`` processes (the service's default settings unless
    ``--worker-env`` overrides them) and warms them up with a few hundred events;
 4. steady phase: inserts ``--events`` outbox rows (the payload shape app/requests/audit.py
    writes) at ``--rate`` per second, in a batch every ``--tick`` seconds, so latency reflects
    the pipeline and not a backlog; backlog phase: inserts ``--backlog-events`` rows in one
    transaction and times the drain (the maximum deliveries per second);
 5. prints deliveries/s per phase, event-to-delivery latency p50/p90/p99 for the steady phase
    (receiver arrival time minus the outbox row's ``created_at``, joined through
    ``webhook_deliveries.outbox_id``), duplicates, lost deliveries, signatures that do not
    verify, and the goals (>= 500 deliveries/s; p50 < 500 ms);
 6. stops every process it started and drops the database (``--keep-db`` to keep it).

All traffic stays on 127.0.0.1. Exit code: 0 goals met and nothing lost, 1 a goal missed,
2 a delivery was lost or a signature did not verify, 3 the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    ROOT,
    BenchError,
    cpu_of,
    cpu_seconds,
    drop_database,
    free_port,
    http_json,
    log,
    pg_dsn,
    recreate_database,
    run_checked,
)

GOAL_RATE = 500.0  # deliveries per second
GOAL_P50_MS = 500.0  # event-to-delivery latency, steady phase

COLUMNS = [
    "id",
    "event_type",
    "request_id",
    "owner_client_id",
    "payload",
    "created_at",
    "published_at",
]


# ---------------------------------------------------------------- receiver process


def serve_receiver(port: int, out_path: str) -> None:
    """A fast webhook receiver: 200 to everything; one line per complete delivery.

    Line: ``webhook-id TAB arrival-epoch TAB webhook-timestamp TAB webhook-signature TAB body``
    (bodies are compact JSON: no raw tabs or newlines). Signatures are checked afterwards
    by the benchmark, off the hot path.
    """
    import uvicorn

    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        complete = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                complete = False
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        arrival = time.time()
        headers = dict(scope["headers"])
        webhook_id = headers.get(b"webhook-id")
        if webhook_id and complete:
            os.write(
                fd,
                b"\t".join(
                    [
                        webhook_id,
                        b"%.6f" % arrival,
                        headers.get(b"webhook-timestamp", b""),
                        headers.get(b"webhook-signature", b""),
                        b"".join(chunks),
                    ]
                )
                + b"\n",
            )
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        interface="asgi3",
    )


# ---------------------------------------------------------------- database


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM to its process group (started in its own session), SIGKILL if it hangs."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return self.proc.poll()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} ignored SIGTERM for {timeout:g}s: SIGKILL")
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=5)


def start_process(
    name: str, cmd: list[str], *, env: dict[str, str], logs: Path, port: int | None = None
) -> Proc:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(name=name, proc=proc, log_path=log_path, port=port)


def wait_http(server: Proc, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def wait_log(worker: Proc, marker: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise BenchError(f"{worker.name} exited early:\n{worker.log_tail()}")
        if marker in worker.log_tail(200):
            return
        time.sleep(0.1)
    raise BenchError(f"{worker.name} did not log {marker!r} in {timeout:.0f}s")


def postgres_cpu_seconds() -> float:
    """CPU of every local ``postgres`` process (the server shares this machine)."""
    pids = []
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/comm") as f:
                        if f.read().strip() == "postgres":
                            pids.append(int(entry))
                except OSError:
                    continue
        return cpu_of(pids)
    except (OSError, ValueError):
        return float("nan")


# ---------------------------------------------------------------- what arrives


@dataclass
class Arrivals:
    """Tails the receiver's file: first arrival per webhook-id, and every line."""

    path: Path
    first: dict[str, float] = field(default_factory=dict)
    lines: list[bytes] = field(default_factory=list)
    _offset: int = 0
    _partial: bytes = b""

    def poll(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return len(self.first)
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        for line in complete:
            parts = line.split(b"\t", 2)
            webhook_id, arrival = parts[0].decode(), float(parts[1])
            self.lines.append(line)
            if webhook_id not in self.first or arrival < self.first[webhook_id]:
                self.first[webhook_id] = arrival
        return len(self.first)

    @property
    def duplicates(self) -> int:
        return len(self.lines) - len(self.first)


# ---------------------------------------------------------------- events


def deadline_block() -> dict[str, Any]:
    """The deadline block of a new, unverified request, as the service renders it."""
    sys.path.insert(0, str(ROOT))
    try:
        from app.requests.schemas import DeadlinePublic

        return DeadlinePublic().model_dump(mode="json")
    except Exception:  # the shape as of Step 2, if the app cannot be imported
        return {
            "clock_started_on": None,
            "due_date": None,
            "due_at": None,
            "extended": False,
            "paused_days": 0,
            "paused_since": None,
            "days_left": None,
            "overdue": False,
        }


def outbox_records(
    count: int, *, phase: str, start: int, owner: str, deadline: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """``count`` rows shaped like app/requests/audit.py's ``outbox_row`` for a new request."""
    now = datetime.now(UTC)
    stamp = now.isoformat().replace("+00:00", "Z")
    rows = []
    for n in range(start, start + count):
        payload = {
            "type": "request.received",
            "timestamp": stamp,
            "data": {
                "id": str(uuid.uuid4()),
                "type": "access",
                "status": "awaiting_verification",
                "regulation": "uk_gdpr",
                "external_ref": f"bench-{phase}-{n}",
                "deadline": deadline,
            },
        }
        rows.append((uuid.uuid4(), "request.received", None, owner, json.dumps(payload), now, None))
    return rows


@dataclass
class Phase:
    name: str
    outbox_ids: list[uuid.UUID] = field(default_factory=list)
    started: float = 0.0  # epoch: first insert began (steady) / the insert committed (backlog)
    inserted_by: float = 0.0  # epoch: last insert committed
    done: float = 0.0  # epoch: every event of the phase had arrived (seen by the tail)
    timed_out: bool = False
    cpu: dict[str, float] = field(default_factory=dict)


async def insert_rows(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table("outbox", records=rows, columns=COLUMNS)


async def wait_delivered(
    arrivals: Arrivals, expected_total: int, phase: Phase, within: float
) -> None:
    """Until ``expected_total`` distinct webhook-ids have arrived (one endpoint: one delivery
    per event, so that is every event so far). Counting the receiver's file, not querying the
    database, keeps the measurement off PostgreSQL; the exact check comes at the end."""
    deadline = time.monotonic() + within
    # The receiver is another process writing a file: polling it is the simplest signal.
    while arrivals.poll() < expected_total and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    phase.done = time.time()
    missing = expected_total - len(arrivals.first)
    phase.timed_out = missing > 0
    if missing > 0:
        log(f"{phase.name}: {missing} events not delivered after {within:g}s")


# ---------------------------------------------------------------- the run


def worker_env(base: dict[str, str], overrides: list[str]) -> dict[str, str]:
    env = dict(base)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("DSR_"):
            raise BenchError(f"--worker-env wants DSR_NAME=value, got {item!r}")
        env[key] = value
    return env


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def drive(
    args: argparse.Namespace,
    *,
    dsn: str,
    owner: str,
    arrivals: Arrivals,
    workers: list[Proc],
    spies: list[subprocess.Popen[bytes]],
    start_spies: Any,
) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    watch = await asyncpg.connect(dsn)
    deadline = deadline_block()
    expected = 0
    try:

        def cpu_snapshot() -> dict[str, float]:
            snap = {w.name: cpu_seconds(w.proc.pid) for w in workers}
            snap["postgres"] = postgres_cpu_seconds()
            return snap

        # Warm-up: connections, pools, caches. Not measured.
        if args.warmup_events:
            warm = Phase("warm-up")
            rows = outbox_records(
                args.warmup_events, phase="warm", start=0, owner=owner, deadline=deadline
            )
            warm.outbox_ids = [row[0] for row in rows]
            await insert_rows(conn, rows)
            expected += len(rows)
            await wait_delivered(arrivals, expected, warm, args.phase_timeout)
            if warm.timed_out:
                raise BenchError("warm-up events were not delivered; see the worker logs")
            log(f"warm-up: {args.warmup_events} delivered")
        start_spies()

        phases: list[Phase] = []
        if args.events:
            steady = Phase("steady")
            phases.append(steady)
            log(f"steady: {args.events} events at {args.rate:g}/s, a batch every {args.tick:g}s")
            cpu_before = cpu_snapshot()
            t0 = time.monotonic()
            steady.started = time.time()
            sent = 0
            tick = 0
            while sent < args.events:
                tick += 1
                due = min(args.events, round(args.rate * args.tick * tick))
                if due > sent:
                    rows = outbox_records(
                        due - sent, phase="steady", start=sent, owner=owner, deadline=deadline
                    )
                    await insert_rows(conn, rows)
                    steady.outbox_ids.extend(row[0] for row in rows)
                    sent = due
                arrivals.poll()
                delay = t0 + tick * args.tick - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            steady.inserted_by = time.time()
            expected += len(steady.outbox_ids)
            await wait_delivered(arrivals, expected, steady, args.phase_timeout)
            steady.cpu = {k: v - cpu_before[k] for k, v in cpu_snapshot().items()}
            log(f"steady: done in {steady.done - steady.started:.1f}s")

        if args.backlog_events:
            backlog = Phase("backlog")
            phases.append(backlog)
            rows = outbox_records(
                args.backlog_events, phase="backlog", start=0, owner=owner, deadline=deadline
            )
            backlog.outbox_ids = [row[0] for row in rows]
            log(f"backlog: inserting {args.backlog_events} events in one transaction")
            cpu_before = cpu_snapshot()
            await insert_rows(conn, rows)
            backlog.started = backlog.inserted_by = time.time()
            expected += len(backlog.outbox_ids)
            await wait_delivered(arrivals, expected, backlog, args.phase_timeout)
            backlog.cpu = {k: v - cpu_before[k] for k, v in cpu_snapshot().items()}
            log(f"backlog: drained in {backlog.done - backlog.started:.1f}s")

        for spy in spies:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)

        # Let the workers record the last attempts, then read back what the database holds.
        settle_deadline = time.monotonic() + 30
        while time.monotonic() < settle_deadline:
            pending = await watch.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
            )
            if pending == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # a copy sent late would show up in this window
        arrivals.poll()
        rows = await watch.fetch(
            "SELECT d.id, d.outbox_id, d.status, d.attempt_count, o.created_at"
            " FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id"
        )
        attempts = await watch.fetchval("SELECT count(*) FROM webhook_attempts")
        outbox_total = await watch.fetchval("SELECT count(*) FROM outbox")
        return {
            "phases": phases,
            "deliveries": {
                row["outbox_id"]: (
                    str(row["id"]),
                    row["created_at"].timestamp(),
                    row["status"],
                    row["attempt_count"],
                )
                for row in rows
            },
            "attempts": int(attempts),
            "outbox_total": int(outbox_total),
        }
    finally:
        await conn.close()
        await watch.close()


def verify_signatures(lines: list[bytes], secret: str) -> int:
    """How many received deliveries do not verify with the endpoint's secret."""
    from standardwebhooks import Webhook, WebhookVerificationError

    verifier = Webhook(secret)
    bad = 0
    for line in lines:
        webhook_id, _arrival, ts, signature, body = line.split(b"\t", 4)
        headers = {
            "webhook-id": webhook_id.decode(),
            "webhook-timestamp": ts.decode(),
            "webhook-signature": signature.decode(),
        }
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError:
            bad += 1
    return bad


def summarise(
    args: argparse.Namespace, result: dict[str, Any], arrivals: Arrivals, secret: str
) -> tuple[dict[str, Any], int]:
    deliveries: dict[uuid.UUID, tuple[str, float, str, int]] = result["deliveries"]
    report: dict[str, Any] = {"phases": {}}
    lost_total = 0
    print()
    print(
        f"webhooks: {args.workers} dsr worker process(es), 1 endpoint, PostgreSQL, "
        f"{os.cpu_count()} CPUs; worker overrides: {args.worker_env or 'none'}"
    )
    head = (
        f"{'phase':<8} {'events':>7} {'lost':>5} {'deliv/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'worker CPU ms/deliv':>20} {'pg CPU ms/deliv':>16}"
    )
    print(head)
    print("-" * len(head))
    for phase in result["phases"]:
        latencies = []
        arrived_last = 0.0
        lost = 0
        for outbox_id in phase.outbox_ids:
            delivery = deliveries.get(outbox_id)
            arrival = arrivals.first.get(delivery[0]) if delivery else None
            if arrival is None or delivery is None:
                lost += 1
                continue
            latencies.append((arrival - delivery[1]) * 1000)
            arrived_last = max(arrived_last, arrival)
        lost_total += lost
        latencies.sort()
        delivered = len(latencies)
        elapsed = arrived_last - phase.started if delivered else float("nan")
        rate = delivered / elapsed if delivered and elapsed > 0 else 0.0
        worker_cpu = sum(v for k, v in phase.cpu.items() if k != "postgres")
        per = 1000 / delivered if delivered else float("nan")
        row = {
            "events": len(phase.outbox_ids),
            "delivered": delivered,
            "lost": lost,
            "deliveries_per_s": round(rate, 1),
            "elapsed_s": round(elapsed, 3),
            "offered_per_s": (
                round(len(phase.outbox_ids) / (phase.inserted_by - phase.started), 1)
                if phase.inserted_by > phase.started
                else None
            ),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p90_ms": round(percentile(latencies, 90), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(latencies[-1], 1) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
            "worker_cpu_ms_per_delivery": round(worker_cpu * per, 3),
            "postgres_cpu_ms_per_delivery": round(phase.cpu.get("postgres", 0) * per, 3),
            "timed_out": phase.timed_out,
        }
        report["phases"][phase.name] = row
        print(
            f"{phase.name:<8} {row['events']:>7} {lost:>5} {rate:>9.1f} {row['p50_ms']:>8.1f} "
            f"{row['p90_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['max_ms'] or 0:>8.1f} "
            f"{row['worker_cpu_ms_per_delivery']:>20.3f} "
            f"{row['postgres_cpu_ms_per_delivery']:>16.3f}"
        )
    steady = report["phases"].get("steady")
    backlog = report["phases"].get("backlog")
    if steady:
        print(
            f"steady: offered {steady['offered_per_s']}/s for "
            f"{len(result['phases'][0].outbox_ids)} events; achieved "
            f"{steady['deliveries_per_s']}/s (first insert to last arrival)"
        )
    if backlog:
        print(
            f"backlog: {backlog['events']} events inserted at once, drained in "
            f"{backlog['elapsed_s']} s; latency there is queueing time, not the pipeline's"
        )

    statuses: dict[str, int] = {}
    for _, _, status, _ in deliveries.values():
        statuses[status] = statuses.get(status, 0) + 1
    bad = verify_signatures(arrivals.lines, secret)
    resent = result["attempts"] - len(deliveries)
    print(
        f"received {len(arrivals.lines)} deliveries for {len(arrivals.first)} webhook-ids: "
        f"duplicates {arrivals.duplicates}; lost {lost_total}; bad signatures {bad}; "
        f"delivery rows {len(deliveries)} {statuses}; attempts recorded {result['attempts']} "
        f"(extra {resent}); outbox rows {result['outbox_total']}"
    )
    report.update(
        duplicates=arrivals.duplicates,
        lost=lost_total,
        bad_signatures=bad,
        statuses=statuses,
        attempts=result["attempts"],
    )

    code = 0
    # Throughput: the backlog drain is the capacity; the steady phase counts too when it
    # offered at least the goal rate (it cannot deliver faster than events are produced).
    rates = {}
    if backlog:
        rates["backlog"] = backlog["deliveries_per_s"]
    if steady and (steady["offered_per_s"] or 0) >= GOAL_RATE:
        rates["steady"] = steady["deliveries_per_s"]
    if rates:
        rate_ok = all(rate >= GOAL_RATE for rate in rates.values())
        shown = ", ".join(f"{name} {rate:.0f}/s" for name, rate in rates.items())
        print(f"goal >= {GOAL_RATE:g} deliveries/s ({shown}): {'PASS' if rate_ok else 'FAIL'}")
        code = code or (0 if rate_ok else 1)
    if steady:
        p50_ok = steady["p50_ms"] < GOAL_P50_MS
        print(
            f"goal p50 < {GOAL_P50_MS:g} ms (steady: {steady['p50_ms']:.1f} ms): "
            f"{'PASS' if p50_ok else 'FAIL'}"
        )
        code = code or (0 if p50_ok else 1)
    nothing_lost = lost_total == 0 and bad == 0
    print(f"lost 0 and every signature verifies: {'PASS' if nothing_lost else 'FAIL'}")
    if not nothing_lost:
        code = 2
    return report, code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="steady-phase events")
    parser.add_argument("--rate", type=float, default=600, help="steady-phase events per second")
    parser.add_argument("--tick", type=float, default=0.05, help="seconds between insert batches")
    parser.add_argument(
        "--backlog-events",
        type=int,
        default=None,
        help="events inserted at once for the drain phase (default: --events; 0 skips it)",
    )
    parser.add_argument("--warmup-events", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="dsr worker processes")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="DSR_NAME=VALUE",
        help="setting for the workers, e.g. DSR_WORKER_POLL_INTERVAL=0.05 (repeatable)",
    )
    parser.add_argument(
        "--phase-timeout", type=float, default=180, help="seconds a phase may take to deliver"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/dsr_bench_webhooks",
        help="database to create, use and drop (its name is the benchmark database)",
    )
    parser.add_argument(
        "--maintenance-db", default="postgres", help="database to connect to for CREATE/DROP"
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="profile each worker with py-spy after the warm-up until the end of the last "
        "phase: PREFIX-worker-N.svg (flamegraph), .json (speedscope) or .txt (collapsed "
        "stacks), by PREFIX's extension",
    )
    parser.add_argument(
        "--serve-receiver", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.backlog_events is None:
        args.backlog_events = args.events
    if args.rate <= 0 or args.tick <= 0 or args.workers < 1:
        parser.error("--rate, --tick and --workers must be positive")
    return args


def bench(args: argparse.Namespace, logs: Path) -> int:
    bin_dir = Path(sys.executable).parent
    dsr = str(bin_dir / "dsr")
    dsr_cmd = [dsr] if Path(dsr).exists() else [sys.executable, "-m", "app.cli"]
    processes: list[Proc] = []
    spies: list[subprocess.Popen[bytes]] = []
    db_created = False
    code = 3
    report: dict[str, Any] = {"workers": args.workers, "cpus": os.cpu_count()}
    try:
        name = recreate_database(args.postgres_url, args.maintenance_db)
        db_created = True
        log(f"created database {name}")
        dsn, _ = pg_dsn(args.postgres_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            DSR_DATABASE_URL=args.postgres_url,
            DSR_SECRET_KEY=secrets.token_urlsafe(48),
            # development: plain-http loopback receivers are allowed (production wants https).
            DSR_ENV="development",
            DSR_WEBHOOK_ALLOW_PRIVATE="true",
            DSR_RUN_WORKER_IN_PROCESS="false",
        )
        run_checked([*dsr_cmd, "migrate"], env, "dsr migrate")
        out = run_checked(
            [*dsr_cmd, "clients", "create", "--name", "bench-webhooks", "--role", "admin"],
            env,
            "dsr clients create",
        )
        creds = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("client_"))
        if not {"client_id", "client_secret"} <= creds.keys():
            raise BenchError(f"unexpected `dsr clients create` output:\n{out}")

        received_path = logs / "received.tsv"
        port = free_port()
        receiver = start_process(
            "receiver",
            [
                sys.executable,
                str(BENCH_DIR / "webhooks.py"),
                "--serve-receiver",
                str(port),
                str(received_path),
            ],
            env=env,
            logs=logs,
            port=port,
        )
        processes.append(receiver)
        api_port = free_port()
        api = start_process(
            "api",
            [
                *(sys.executable, "-m", "uvicorn", "app.main:app", "--host", HOST),
                *("--port", str(api_port), "--no-access-log", "--log-level", "warning"),
            ],
            env=env,
            logs=logs,
            port=api_port,
        )
        processes.append(api)
        wait_http(receiver, "/ready")
        wait_http(api, "/readyz")
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            }
        ).encode()
        status, body = http_json(
            "POST",
            api.base + "/v1/oauth/token",
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 200:
            raise BenchError(f"token request failed: {status} {body}")
        status, endpoint = http_json(
            "POST",
            api.base + "/v1/webhooks",
            data=json.dumps(
                {"url": f"{receiver.base}/hook", "events": ["request.*"], "description": "bench"}
            ).encode(),
            headers={
                "Authorization": f"Bearer {body['access_token']}",
                "Content-Type": "application/json",
            },
        )
        if status != 201:
            raise BenchError(f"POST /v1/webhooks answered {status}: {endpoint}")
        secret = endpoint["secret"]
        api.stop()  # not needed any more: leave the CPUs to the workers
        log(f"subscribed {receiver.base}/hook; starting {args.workers} worker(s)")

        wenv = worker_env(env, args.worker_env)
        workers = []
        for n in range(args.workers):
            worker = start_process(f"worker-{n + 1}", [*dsr_cmd, "worker"], env=wenv, logs=logs)
            processes.append(worker)
            workers.append(worker)
        for worker in workers:
            wait_log(worker, "worker started")

        def start_spies() -> None:
            if not args.py_spy:
                return
            py_spy = shutil.which("py-spy") or str(bin_dir / "py-spy")
            if not Path(py_spy).exists():
                log("py-spy not found (.venv/bin/pip install py-spy); profiling skipped")
                return
            prefix, ext = os.path.splitext(args.py_spy)
            fmt = {".json": "speedscope", ".txt": "raw"}.get(ext, "flamegraph")
            for worker in workers:
                output = f"{prefix}-{worker.name}{ext or '.svg'}"
                cmd = [py_spy, "record", "--pid", str(worker.proc.pid), "--rate", "200"]
                cmd += ["--nonblocking", "--format", fmt, "--output", output]
                spies.append(
                    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                )
                log(f"py-spy recording {worker.name} to {output}")

        arrivals = Arrivals(received_path)
        result = asyncio.run(
            drive(
                args,
                dsn=dsn,
                owner=creds["client_id"],
                arrivals=arrivals,
                workers=workers,
                spies=spies,
                start_spies=start_spies,
            )
        )
        for spy in spies:
            try:
                _, err = spy.communicate(timeout=60)
                if spy.returncode not in (0, -signal.SIGINT):
                    log(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        codes = {worker.name: worker.stop() for worker in workers}
        log(f"workers stopped with exit codes {codes}")
        summary, code = summarise(args, result, arrivals, secret)
        report.update(summary)
        report["worker_exit_codes"] = codes
        if any(c != 0 for c in codes.values()):
            log("a worker did not exit 0 on SIGTERM; see its log:\n" + workers[0].log_tail())
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
        for process in reversed(processes):
            process.stop()
        if db_created and not args.keep_db:
            try:
                drop_database(args.postgres_url, args.maintenance_db)
                log("dropped the benchmark database")
            except Exception as exc:
                log(f"could not drop the benchmark database: {exc}")
    if args.json:
        report["goals"] = {"deliveries_per_s_min": GOAL_RATE, "p50_max_ms": GOAL_P50_MS}
        report["exit_code"] = code
        Path(args.json).write_text(json.dumps(report, indent=2))
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_receiver:
        serve_receiver(int(args.serve_receiver[0]), args.serve_receiver[1])
        return 0

    def _terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="dsr-bench-webhooks-") as tmp:
        try:
            return bench(args, Path(tmp))
        except BenchError as exc:
            log(str(exc))
            return 3


if __name__ == "__main__":
    sys.exit(main())
