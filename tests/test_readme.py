"""The README's "A first request" commands, pasted into a shell as a new user would.

A real ``dsr serve`` (embedded SQLite, demo CRM, in-process worker) runs on a free port;
the README's shell blocks run in bash with only the port and the printed secret put in.
The download must be the CSV pack, never an error saved under ``jane.zip``. SQLite only:
the README describes the embedded default (with PostgreSQL the worker is a process of its
own, see docs/fulfilment.md).
"""

import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.live_server import live_service

ROOT = Path(__file__).resolve().parent.parent
README_BASE = "http://127.0.0.1:8000"
COMMANDS_TIMEOUT = 120.0


@dataclass
class Server:
    base: str
    secret: str
    log: Path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``dsr serve`` as ``./scripts/run`` starts it, in a scratch folder; killed afterwards."""
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        reason = f"the README's commands need {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires them", pytrace=False)
        pytest.skip(reason)
    environment = {
        "DSR_DEMO": "true",
        "DSR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dsr.db'}",
        "DSR_DEMO_CRM_PATH": str(tmp_path / "demo_crm.db"),
        "DSR_EXPORT_DIR": str(tmp_path / "exports"),
    }
    with live_service(tmp_path, environment, cwd=ROOT) as service:
        secret = re.search(r"client_secret=(\S+)", service.printed())
        assert secret is not None, service.printed()
        yield Server(service.base, secret.group(1), service.log)


def first_request_commands() -> str:
    """The shell blocks of the README's "A first request" section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## A first request\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL))


def test_the_first_request_commands_download_the_csv_pack(server: Server, tmp_path: Path) -> None:
    commands = first_request_commands()
    assert README_BASE in commands and "<" in commands
    # Only what a reader types in: the service's address and the secret it printed.
    script = commands.replace(README_BASE, server.base)
    script = re.sub(r"<[^>]*secret[^>]*>", server.secret, script)
    work = tmp_path / "shell"
    work.mkdir()

    shell = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=COMMANDS_TIMEOUT,
    )

    output = f"stdout:\n{shell.stdout}\nstderr:\n{shell.stderr}"
    download = work / "jane.zip"
    assert download.exists(), output
    assert zipfile.is_zipfile(download), download.read_bytes()[:300]
    with zipfile.ZipFile(download) as archive:
        assert {"manifest.json", "identity.csv", "contact.csv"} <= set(archive.namelist())
    assert "succeeded" in shell.stdout, output
