"""What the benchmarks share: a throwaway PostgreSQL database, processes, HTTP and CPU time.

Imported as ``harness`` by the scripts beside it (they run as ``python bench/<name>.py``).
Heavy imports stay inside functions so a receiver subprocess can import this cheaply.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def pg_dsn(url: str, database: str | None = None) -> tuple[str, str]:
    """(asyncpg DSN, database name) for a SQLAlchemy URL; optionally another database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise BenchError("--postgres-url must be a postgresql URL")
    if parsed.host not in (None, "127.0.0.1", "localhost", "::1"):
        raise BenchError("the benchmark only talks to a loopback PostgreSQL")
    if not parsed.database:
        raise BenchError("--postgres-url must name the benchmark database")
    target = parsed.set(drivername="postgresql", database=database or parsed.database)
    return target.render_as_string(hide_password=False), parsed.database


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _admin(url: str, maintenance_db: str, *statements: str) -> None:
    import asyncpg

    dsn, _ = pg_dsn(url, maintenance_db)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def recreate_database(url: str, maintenance_db: str) -> str:
    _, name = pg_dsn(url)
    quoted = quote_ident(name)
    asyncio.run(
        _admin(
            url,
            maintenance_db,
            f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)",
            f"CREATE DATABASE {quoted}",
        )
    )
    return name


def drop_database(url: str, maintenance_db: str) -> None:
    _, name = pg_dsn(url)
    asyncio.run(
        _admin(url, maintenance_db, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_checked(cmd: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def http_json(
    method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, body.decode(errors="replace")


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_of(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its descendants (Linux /proc); NaN if unreadable."""
    try:
        return cpu_of(process_tree(root))
    except (OSError, ValueError):
        return float("nan")
