#!/usr/bin/env python3
"""Throughput and latency of POST /v1/requests against the durable floor and a bare endpoint.

Run from the project root:  .venv/bin/python bench/intake.py [--duration 20] [--rounds 2]

What it does (see bench/README.md):
 1. for the service and for bench/durable_floor_app.py (the cheapest intake that keeps the
    same guarantees) each: a fresh PostgreSQL database, ``dsr migrate``, an integration
    client (``dsr clients create``), uvicorn on a free loopback port, a bearer token;
 2. starts bench/hello_app.py (one ``GET /hello``) with the same uvicorn flags;
 3. after a warm-up each, runs wrk against the bare endpoint once, then against the floor and
    the service in turn, ``--rounds`` times;
 4. prints requests/s, p50, p99, non-2xx and server CPU per request for every run, the
    intake/floor ratio (goal >= 0.85) and the intake p99 (goal < 50 ms), and checks for both
    durable targets that every 201 response has its row in the ``requests`` table;
 5. stops the servers and drops the databases.

All traffic stays on 127.0.0.1. Exit code: 0 goals met and nothing lost, 1 a goal missed,
2 a request was lost (201 without a row), 3 the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from harness import (
    BENCH_DIR,
    HOST,
    ROOT,
    BenchError,
    cpu_seconds,
    drop_database,
    free_port,
    http_json,
    log,
    pg_dsn,
    recreate_database,
    run_checked,
)

GOAL_FLOOR_RATIO = 0.85  # intake requests/s >= 0.85 x the durable floor's, in the same run
GOAL_P99_MS = 50.0  # intake p99 < 50 ms

SAMPLE_BODY = {
    "type": "access",
    "subject": {
        "email": "Jane.Doe@Example.com",
        "name": "Jane Doe",
        "phone": "+44 20 7946 0018",
    },
    "channel": "email",
    "external_ref": "sanity-check",
    "details": {"note": "Copy of all personal data held, including call recordings."},
}


# ---------------------------------------------------------------- database


async def _fetch_refs(url: str, prefix: str) -> list[str]:
    dsn, _ = pg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT external_ref FROM requests WHERE external_ref LIKE $1", prefix + "%"
        )
        return [row["external_ref"] for row in rows]
    finally:
        await conn.close()


async def _analyze(url: str) -> None:
    dsn, _ = pg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def settled_refs(url: str, prefix: str, timeout: float = 15.0) -> list[str]:
    """The run's rows once the server has finished what wrk left in flight."""
    deadline = time.monotonic() + timeout
    previous = -1
    stable = 0
    refs: list[str] = []
    while time.monotonic() < deadline:
        refs = asyncio.run(_fetch_refs(url, prefix))
        stable = stable + 1 if len(refs) == previous else 0
        if stable >= 2:
            break
        previous = len(refs)
        time.sleep(0.5)
    return refs


# ---------------------------------------------------------------- processes


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        # The server was started in its own session: signal its process group (our own children).
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def start_server(
    name: str, app: str, *, workers: int, env: dict[str, str], logs: Path, app_dir: Path | None
) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name=name, port=port, proc=proc, log_path=log_path)


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
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


def get_token(server: Server, client_id: str, client_secret: str) -> str:
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    ).encode()
    status, body = http_json(
        "POST",
        server.base + "/v1/oauth/token",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise BenchError(f"token request failed: {status} {body}")
    return str(body["access_token"])


# ---------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    target: str
    round: int = 0
    values: dict[str, float] = field(default_factory=dict)
    raw: str = ""

    @property
    def rps(self) -> float:
        return self.values["requests"] / (self.values["duration_us"] / 1e6)

    @property
    def p50_ms(self) -> float:
        return self.values["p50_us"] / 1000

    @property
    def p99_ms(self) -> float:
        return self.values["p99_us"] / 1000

    @property
    def non2xx(self) -> int:
        return int(self.values["non2xx"])

    @property
    def cpu_ms_per_request(self) -> float | None:
        """Server CPU (all its processes) per completed request during the measured run."""
        cpu = self.values.get("server_cpu_s")
        return None if cpu is None else 1000 * cpu / self.values["requests"]

    @property
    def socket_errors(self) -> int:
        return int(
            sum(self.values.get(f"errors_{k}", 0) for k in ("connect", "read", "write", "timeout"))
        )


def run_wrk(
    target: str,
    script: Path,
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    env: dict[str, str],
) -> WrkResult:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s"]
    cmd += ["--timeout", "10s", "--latency", "-s", str(script), url]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 120)
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    values: dict[str, float] = {}
    for line in result.stdout.splitlines():
        if line.startswith("BENCH ") and "=" in line:
            key, _, value = line[len("BENCH ") :].partition("=")
            values[key.strip()] = float(value)
    missing = {"requests", "duration_us", "p50_us", "p99_us", "non2xx"} - values.keys()
    if missing or values["requests"] <= 0:
        raise BenchError(f"could not parse wrk output (missing {missing}):\n{result.stdout}")
    return WrkResult(target=target, values=values, raw=result.stdout)


def start_py_spy(output: str, pid: int, duration: float) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        log("py-spy not found (.venv/bin/pip install py-spy); profiling skipped")
        return None
    fmt = (
        "speedscope"
        if output.endswith(".json")
        else ("raw" if output.endswith(".txt") else "flamegraph")
    )
    cmd = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", "250"]
    cmd += ["--duration", str(max(1, round(duration))), "--format", fmt, "--output", output]
    log(f"py-spy recording the intake server to {output} ({fmt})")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=2, help="measured runs per durable target, alternating"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/dsr_bench",
        help="database to create, use and drop (its name is the benchmark database)",
    )
    parser.add_argument(
        "--maintenance-db", default="postgres", help="database to connect to for CREATE/DROP"
    )
    parser.add_argument("--only", choices=["intake", "floor", "bare"], help="run one target only")
    parser.add_argument(
        "--intake-app",
        default="app.main:app",
        help="ASGI app of the service (for A/B experiments; "
        "modules are looked up in the project root and bench/)",
    )
    parser.add_argument(
        "--floor-app",
        default="durable_floor_app:app",
        help="ASGI app of the durable floor (looked up in bench/)",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="profile the intake server with py-spy during its measured run "
        "(.svg flamegraph, .json speedscope, .txt collapsed stacks)",
    )
    args = parser.parse_args(argv)
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    return args


def service_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
    env.update(
        # The project root stays importable when uvicorn --app-dir points at bench/.
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        DSR_DATABASE_URL=database_url,
        DSR_SECRET_KEY=secrets.token_urlsafe(48),
        DSR_ENV="production",
        DSR_PUBLIC_URL="https://dsr.bench.invalid",
        # Production needs a relay; no worker runs here, so queued mail is never sent.
        DSR_SMTP_HOST="127.0.0.1",
        DSR_SMTP_FROM="privacy@bench.example",
        PYTHONUNBUFFERED="1",
    )
    return env


def format_table(results: list[WrkResult]) -> str:
    head = (
        f"{'target':<9} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'sock err':>8} {'srv CPU ms/req':>15}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        cpu = r.cpu_ms_per_request
        label = f"{r.target}#{r.round}" if r.round else r.target
        lines.append(
            f"{label:<9} {r.rps:>10.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.non2xx:>8d} {r.socket_errors:>8d} {'-' if cpu is None else f'{cpu:.3f}':>15}"
        )
    return "\n".join(lines)


@dataclass
class Durable:
    """A target that stores what it acknowledges: the service, or the durable floor."""

    name: str
    database_url: str
    server: Server
    token: str = ""


def start_durable(
    name: str, app: str, database_url: str, args: argparse.Namespace, logs: Path
) -> Durable:
    """A fresh migrated database with an integration client, and the app serving it."""
    recreate_database(database_url, args.maintenance_db)
    env = service_env(database_url)
    dsr = str(Path(sys.executable).parent / "dsr")
    run_checked([dsr, "migrate"], env, f"dsr migrate ({name})")
    out = run_checked(
        [dsr, "clients", "create", "--name", "bench", "--role", "integration"],
        env,
        "dsr clients create",
    )
    creds = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("client_"))
    if not {"client_id", "client_secret"} <= creds.keys():
        raise BenchError(f"unexpected `dsr clients create` output:\n{out}")
    server = start_server(
        name,
        app,
        workers=args.workers,
        env=env,
        logs=logs,
        app_dir=None if app.startswith("app.") else BENCH_DIR,
    )
    target = Durable(name=name, database_url=database_url, server=server)
    wait_ready(server, "/healthz")
    wait_ready(server, "/readyz")
    target.token = get_token(server, creds["client_id"], creds["client_secret"])
    status, body = http_json(
        "POST",
        server.base + "/v1/requests",
        data=json.dumps(SAMPLE_BODY).encode(),
        headers={"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"},
    )
    if status != 201:
        raise BenchError(f"{name}: sanity POST /v1/requests answered {status}: {body}")
    return target


def verify_lossless(
    target: Durable, result: WrkResult, run_id: str, acked_file: Path
) -> dict[str, Any]:
    """Every 201 has its row; rows without a 201 can only be the requests wrk left in flight
    when it stopped (wrk abandons those responses, the server still commits them)."""
    acked = [line for line in acked_file.read_text().splitlines() if line]
    rows = settled_refs(target.database_url, run_id + "-")
    row_set, acked_set = set(rows), set(acked)
    answered = int(result.values.get("requests", 0))
    unanswered = max(0, int(result.values.get("sent", 0)) - answered)
    missing = acked_set - row_set
    unexpected = row_set - acked_set
    check: dict[str, Any] = {
        "responses_201": int(result.values.get("created", 0)),
        "acked_refs": len(acked),
        "rows_in_db": len(rows),
        "distinct_rows": len(row_set),
        "missing_rows": len(missing),
        "rows_without_201": len(unexpected),
        "unanswered_at_cutoff": unanswered,
    }
    check["lossless"] = (
        not missing
        and len(acked) == len(acked_set) == check["responses_201"]
        and len(rows) == len(row_set)
        and len(unexpected) <= unanswered
    )
    return check


def measure(
    target: str,
    server: Server,
    script: Path,
    url: str,
    args: argparse.Namespace,
    env: dict[str, str],
    py_spy: str | None = None,
) -> WrkResult:
    spy = start_py_spy(py_spy, server.proc.pid, args.duration) if py_spy else None
    log(f"{target}: measuring {args.duration:g}s")
    cpu_before = cpu_seconds(server.proc.pid)
    result = _wrk(target, script, url, args, env, duration=args.duration)
    result.values["server_cpu_s"] = cpu_seconds(server.proc.pid) - cpu_before
    if spy is not None:
        try:
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0:
                log(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    return result


def warm_up(
    target: str, script: Path, url: str, args: argparse.Namespace, env: dict[str, str]
) -> None:
    log(f"{target}: warm-up {args.warmup:g}s")
    _wrk(target, script, url, args, env, duration=args.warmup)


def _wrk(
    target: str,
    script: Path,
    url: str,
    args: argparse.Namespace,
    env: dict[str, str],
    *,
    duration: float,
) -> WrkResult:
    """wrk with the run's connections and threads."""
    return run_wrk(
        target,
        script,
        url,
        duration=duration,
        connections=args.connections,
        threads=args.threads,
        env=env,
    )


def with_database(url: str, suffix: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}{suffix}").render_as_string(hide_password=False)


def bench(args: argparse.Namespace, logs: Path) -> int:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed")
    servers: list[Server] = []
    databases: list[str] = []
    report: dict[str, Any] = {
        "duration_s": args.duration,
        "connections": args.connections,
        "threads": args.threads,
        "workers": args.workers,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
    }
    results: list[WrkResult] = []
    checks: dict[str, dict[str, Any]] = {}
    targets = [args.only] if args.only else ["bare", "floor", "intake"]
    try:
        durables: dict[str, Durable] = {}
        apps = {"floor": args.floor_app, "intake": args.intake_app}
        for name in ("floor", "intake"):
            if name in targets:
                url = (
                    args.postgres_url
                    if name == "intake"
                    else with_database(args.postgres_url, "_floor")
                )
                databases.append(url)
                target = start_durable(name, apps[name], url, args, logs)
                durables[name] = target
                servers.append(target.server)
        bare = None
        if "bare" in targets:
            bare = start_server(
                "bare",
                "hello_app:app",
                workers=args.workers,
                env=service_env(args.postgres_url),
                logs=logs,
                app_dir=BENCH_DIR,
            )
            servers.append(bare)
            wait_ready(bare, "/hello")
        log(f"servers up ({args.workers} worker(s) each); logs in {logs}")

        wrk_env = dict(os.environ)
        if bare is not None:
            hello = BENCH_DIR / "get_hello.lua"
            warm_up("bare", hello, bare.base + "/hello", args, wrk_env)
            results.append(measure("bare", bare, hello, bare.base + "/hello", args, wrk_env))
        script = BENCH_DIR / "post_request.lua"
        for name, target in durables.items():
            env = {**wrk_env, "BENCH_TOKEN": target.token, "BENCH_RUN": "warm"}
            warm_up(name, script, target.server.base + "/v1/requests", args, env)
            # A database in service has statistics (autovacuum analyzes within a minute of
            # the first rows); a fresh one has none and plans as if every table were empty.
            asyncio.run(_analyze(target.database_url))
        # Floor and intake alternate, round by round, so a slow patch of the machine
        # falls on both.
        for round_no in range(1, args.rounds + 1):
            for name, target in durables.items():
                run_id = f"m{round_no}{secrets.token_hex(4)}"
                acked_file = logs / f"acked-{name}-{round_no}.txt"
                env = {
                    **wrk_env,
                    "BENCH_TOKEN": target.token,
                    "BENCH_RUN": run_id,
                    "BENCH_ACKED_FILE": str(acked_file),
                }
                spy = args.py_spy if name == "intake" and round_no == 1 else None
                url = target.server.base + "/v1/requests"
                result = measure(name, target.server, script, url, args, env, spy)
                result.round = round_no
                results.append(result)
                checks[f"{name}#{round_no}"] = verify_lossless(target, result, run_id, acked_file)
    finally:
        for server in servers:
            server.stop()
        if not args.keep_db:
            for url in databases:
                try:
                    drop_database(url, args.maintenance_db)
                except Exception as exc:
                    log(f"could not drop a benchmark database: {exc}")
            if databases:
                log("dropped the benchmark databases")
    return report_results(args, report, results, checks)


def total_rps(results: list[WrkResult], target: str) -> float | None:
    """Requests/s over all rounds of a target: total requests over total time."""
    runs = [r for r in results if r.target == target]
    if not runs:
        return None
    return sum(r.values["requests"] for r in runs) / sum(
        r.values["duration_us"] / 1e6 for r in runs
    )


def report_results(
    args: argparse.Namespace,
    report: dict[str, Any],
    results: list[WrkResult],
    checks: dict[str, dict[str, Any]],
) -> int:
    print()
    print(
        f"wrk: {args.duration:g}s x {args.rounds} round(s), {args.connections} connections, "
        f"{args.threads} threads; uvicorn --workers {args.workers}; {os.cpu_count()} CPUs"
    )
    print(format_table(results))
    report["results"] = [
        {
            "target": r.target,
            "round": r.round,
            "rps": round(r.rps, 1),
            "p50_ms": round(r.p50_ms, 2),
            "p99_ms": round(r.p99_ms, 2),
            "non2xx": r.non2xx,
            "socket_errors": r.socket_errors,
            "server_cpu_ms_per_request": (
                None if r.cpu_ms_per_request is None else round(r.cpu_ms_per_request, 4)
            ),
            "raw": r.values,
        }
        for r in results
    ]
    code = 0
    print()
    intake_rps, floor_rps, bare_rps = (total_rps(results, t) for t in ("intake", "floor", "bare"))
    if intake_rps and floor_rps:
        ratio = intake_rps / floor_rps
        per_round = [
            i.rps / f.rps
            for i in results
            if i.target == "intake"
            for f in results
            if f.target == "floor" and f.round == i.round
        ]
        report["floor_ratio"] = round(ratio, 3)
        report["floor_ratio_per_round"] = [round(x, 3) for x in per_round]
        ok = ratio >= GOAL_FLOOR_RATIO
        rounds = ", ".join(f"{x:.3f}" for x in per_round)
        print(
            f"intake/durable floor: {ratio:.3f}  (rounds {rounds}; "
            f"goal >= {GOAL_FLOOR_RATIO:.2f}): {'PASS' if ok else 'FAIL'}"
        )
        code = code or (0 if ok else 1)
    if intake_rps and bare_rps:
        report["bare_ratio"] = round(intake_rps / bare_rps, 3)
        print(f"intake/bare endpoint: {intake_rps / bare_rps:.3f}  (for reference)")
    intake_runs = [r for r in results if r.target == "intake"]
    if intake_runs:
        worst = max(r.p99_ms for r in intake_runs)
        ok = worst < GOAL_P99_MS
        print(
            f"intake p99 (worst round): {worst:.2f} ms  (goal < {GOAL_P99_MS:g} ms): "
            f"{'PASS' if ok else 'FAIL'}"
        )
        code = code or (0 if ok else 1)
    for label, check in checks.items():
        print(
            f"never loses a request, {label}: {'PASS' if check['lossless'] else 'FAIL'}  "
            f"(201 responses {check['responses_201']}, rows in db {check['rows_in_db']}, "
            f"201 without row {check['missing_rows']}, rows without 201 "
            f"{check['rows_without_201']} <= in flight at wrk cutoff "
            f"{check['unanswered_at_cutoff']})"
        )
        if not check["lossless"]:
            code = 2
    report["verification"] = checks
    for r in results:
        if r.non2xx or r.socket_errors:
            statuses = {k: int(v) for k, v in r.values.items() if k.startswith("status_")}
            print(f"{r.target} status counts: {statuses}; socket errors: {r.socket_errors}")
    if args.json:
        report["goals"] = {"floor_ratio_min": GOAL_FLOOR_RATIO, "p99_max_ms": GOAL_P99_MS}
        report["exit_code"] = code
        Path(args.json).write_text(json.dumps(report, indent=2))
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def _terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="dsr-bench-") as tmp:
        try:
            return bench(args, Path(tmp))
        except BenchError as exc:
            log(str(exc))
            return 3


if __name__ == "__main__":
    sys.exit(main())
