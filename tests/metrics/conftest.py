"""Metrics tests: the fulfilment fixtures (demo CRM, SMTP catcher, worker) with a metrics
token, and a scrape parsed the way Prometheus reads it."""

from pathlib import Path

import pytest
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from tests.conftest import make_settings
from tests.fulfilment.conftest import crm, crm_url, demo_crm_file, smtp, worker
from tests.smtp_server import SmtpServer

__all__ = ["crm", "crm_url", "demo_crm_file", "smtp", "worker"]

METRICS_TOKEN = "metrics-token-0123456789abcdef"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def source_backend() -> str:
    return "sqlite"  # the CRM's own backend is the fulfilment tests' concern


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return make_settings(
        database_url,
        export_dir=str(tmp_path / "exports"),
        public_url="http://testserver",
        fulfilment_max_attempts=1,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="privacy@controller.example",
        metrics_token=METRICS_TOKEN,
    )


def parse(text: str) -> Samples:
    """Every sample by (name, sorted labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: AsyncClient) -> Samples:
    response = await client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)
