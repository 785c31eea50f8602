"""A PostgreSQL server of a test's own, which the test may crash and restart.

The shared test server must never be stopped (other test processes use it), so tests of what
clients see while PostgreSQL crashes, recovers or starts up run their own: ``initdb`` in a
temporary directory, on a free port, driven with ``pg_ctl``. PostgreSQL refuses to run as
root, so as root every command runs as the ``postgres`` OS user (``runuser``).

Without the binaries the test skips, unless ``CI=true``, where it fails.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.smtp_server import free_port

SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 40
shared_buffers = 16MB
# A killed process, not a lost machine: the operating system still holds every write.
fsync = off
# Only matters in standby mode, which the tests use to hold the server "starting up".
hot_standby = off
"""


def _binaries_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
    pytest.skip(reason)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


class PostgresServer:
    """One throwaway server; ``url`` is its SQLAlchemy URL for the database ``postgres``."""

    def __init__(self, binaries: Path, root: Path, run_as: list[str]) -> None:
        self.binaries = binaries
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.run_as = run_as
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 30) -> None:
        command = [*self.run_as, str(self.binaries / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr or result.stdout}\n{self.log()}")

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(SERVER_SETTINGS.format(port=self.port, socket_dir=self.root))

    def start(self, *, standby: bool = False) -> None:
        """Start and wait until it accepts connections (or, in standby, refuses them).

        In standby mode with ``hot_standby = off`` the server finishes crash recovery and then
        answers every connection with SQLSTATE 57P03, as during a long startup, until
        ``promote``.
        """
        if standby:
            (self.data / "standby.signal").touch()
            self._chown(self.data / "standby.signal")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "start"
        )

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def crash(self) -> None:
        """SIGKILL the postmaster, as the kernel's OOM killer would, and wait until its
        children have noticed and exited (a restart needs their shared memory released)."""
        pid = self.postmaster_pid()
        assert pid is not None and _alive(pid), "the server is not running"
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while any(_alive(process) for process in (pid, *children)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes outlived their postmaster\n{self.log()}")
            time.sleep(0.02)
        # Until its parent reaps it, the dead postmaster's PID still answers kill(pid, 0), and
        # a new postmaster would take its lock files for a running server's.
        (self.data / "postmaster.pid").unlink()
        (self.root / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop whatever runs, however it is (used in cleanup: never raises)."""
        pid = self.postmaster_pid()
        if pid is None or not _alive(pid):
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=15)
        except (RuntimeError, subprocess.TimeoutExpired):
            for process in (pid, *_children(pid)):
                with suppress(ProcessLookupError):
                    os.kill(process, signal.SIGKILL)

    def _chown(self, path: Path) -> None:
        if self.run_as:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """An initialised, running server, stopped and removed afterwards even on failure."""
    binaries = _binaries_dir()
    if binaries is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
        raise AssertionError("unreachable")
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root.
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no postgres user to run PostgreSQL as")
        if shutil.which("runuser") is None:
            _unavailable("running as root and runuser is not installed")
        run_as = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="dsr-test-postgres-"))
    server = PostgresServer(binaries, root, run_as)
    try:
        server._chown(root)
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
