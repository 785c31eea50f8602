"""The README's commands: `./scripts/setup` installs only when the project's dependencies change."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def _run_setup(project: Path) -> None:
    subprocess.run(["bash", str(project / "scripts" / "setup")], check=True, timeout=60)


def _installs(project: Path) -> int:
    log = project / ".venv" / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    return sum("install" in call and "-e" in call.split() for call in calls)


def test_setup_installs_again_only_when_pyproject_changes(tmp_path: Path) -> None:
    # A copy of the project's setup with a stand-in interpreter that records its calls.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup", tmp_path / "scripts" / "setup")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)

    _run_setup(tmp_path)
    assert _installs(tmp_path) == 1
    _run_setup(tmp_path)
    assert _installs(tmp_path) == 1  # nothing changed: no reinstall
    with (tmp_path / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# a changed dependency\n")
    _run_setup(tmp_path)
    assert _installs(tmp_path) == 2
