"""The deployment files: compose.yaml, the Dockerfile and .env.example keep their promises.

``docker compose config`` (or ``docker-compose config``) validates compose.yaml with
.env.example where a compose client is installed; the other tests read the files directly.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "-dev ")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_is_valid_with_the_example_env(tmp_path: Path) -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no compose client (neither `docker compose` nor `docker-compose`)")
    # compose.yaml reads `.env`: a scratch copy of the example stands in for it.
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = subprocess.run(
        [*client, "-f", "compose.yaml", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_healthcheck() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "api", "worker", "mailpit"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "pg_isready" in str(services["db"]["healthcheck"]["test"])
    assert "/readyz" in str(services["api"]["healthcheck"]["test"])


def test_two_workers_from_the_same_image_and_the_api_migrates_first() -> None:
    services = compose()["services"]
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["image"] == services["api"]["image"]
    assert services["api"]["command"][0] == "serve"
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert "8025:8025" in services["mailpit"]["ports"]


def test_database_and_exports_live_in_named_volumes() -> None:
    document = compose()
    assert set(document["volumes"]) == {"db-data", "exports"}
    services = document["services"]
    assert "db-data:/var/lib/postgresql/data" in services["db"]["volumes"]
    for name in ("api", "worker"):
        assert "exports:/data/exports" in services[name]["volumes"]
        assert services[name]["env_file"] == ".env"


def _stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE.read_text())[1:]


def test_dockerfile_is_multi_stage_with_no_compiler_in_the_final_image() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert "AS builder" in stages[0] and "build-essential" in stages[0]
    final = stages[-1]
    assert final.startswith("python:3.11-slim")
    instructions = [line for line in final.splitlines() if not line.lstrip().startswith("#")]
    assert not any(word in " ".join(instructions) + " " for word in COMPILERS)
    assert "apt-get install" not in final


def test_dockerfile_runs_as_non_root_with_healthcheck_and_volumes() -> None:
    final = _stages()[-1]
    users = re.findall(r"(?m)^USER (\S+)", final)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"(?m)^HEALTHCHECK .*", final)
    assert "/readyz" in final and "curl" not in final.split("HEALTHCHECK", 1)[1]
    assert re.search(r'(?m)^VOLUME \[.*"/data".*"/data/exports".*\]', final)
    assert re.search(r'(?m)^ENTRYPOINT \["dsr"\]', final)
    assert re.search(r'(?m)^CMD \["serve", "--host", "0.0.0.0"\]', final)


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", ".git", "*.db"):
        assert entry in ignored


def _example_env() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_env_example_is_complete_commented_and_holds_no_real_secret() -> None:
    values = _example_env()
    for name in (
        "DSR_ENV",
        "DSR_SECRET_KEY",
        "DSR_SECRET_KEY_PREVIOUS",
        "DSR_DATABASE_URL",
        "DSR_PUBLIC_URL",
        "DSR_SMTP_HOST",
        "DSR_SMTP_FROM",
        "DSR_ADMIN_CLIENT_ID",
        "DSR_ADMIN_CLIENT_SECRET",
    ):
        assert name in values, name
    for name in ("DSR_SECRET_KEY", "DSR_ADMIN_CLIENT_SECRET", "POSTGRES_PASSWORD"):
        assert "change-me" in values[name], f"{name} must be an obvious placeholder"
    assert values["DSR_SMTP_HOST"] == "mailpit"
    # The settings the example gives are accepted as they are (development mode).
    env = {name.removeprefix("DSR_").lower(): value for name, value in values.items()}
    dsr = {name: value for name, value in env.items() if f"DSR_{name.upper()}" in values}
    Settings(**dsr)  # type: ignore[arg-type]


def test_production_refuses_the_example_without_https_public_url() -> None:
    values = {
        name.removeprefix("DSR_").lower(): value
        for name, value in _example_env().items()
        if name.startswith("DSR_")
    }
    values["env"] = "production"
    with pytest.raises(ValueError, match="DSR_PUBLIC_URL must be an https"):
        Settings(**values)  # type: ignore[arg-type]
