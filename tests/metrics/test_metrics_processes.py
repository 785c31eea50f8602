"""The worker's own metrics port, and `dsr serve --workers 2` adding up both workers."""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.worker import run_worker
from tests.conftest import ADMIN_ID, ADMIN_SECRET, TEST_SECRET_KEY, scratch_database
from tests.live_server import free_port, live_service
from tests.metrics.conftest import METRICS_TOKEN, SCRAPER, parse, value


async def test_the_worker_serves_its_figures_on_its_own_port(settings: Settings) -> None:
    port = free_port()
    worker_settings = settings.model_copy(update={"worker_metrics_port": port})
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(worker_settings, stop))
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(100):
                try:
                    response = await client.get("/metrics", headers=SCRAPER)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert response.status_code == 200
            samples = parse(response.text)
            assert any(name == "dsr_webhook_deliveries_total" for name, _ in samples) or (
                "dsr_webhook_deliveries" in response.text
            )
            assert "dsr_fulfilment_job_duration_seconds" in response.text
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert (await client.get("/metrics")).status_code == 401
            assert (await client.get("/other", headers=SCRAPER)).status_code == 404
    finally:
        stop.set()
        await running


def test_the_worker_port_needs_the_token(database_url: str) -> None:
    with pytest.raises(ValueError, match="DSR_WORKER_METRICS_PORT needs DSR_METRICS_TOKEN"):
        Settings(database_url=database_url, worker_metrics_port=9100)


def _status(url: str) -> int:
    # A new connection each time, so the kernel hands them to either worker.
    return httpx.get(url, headers={"Connection": "close"}).status_code


def test_two_server_workers_report_the_whole_server(tmp_path: Path) -> None:
    folder = tmp_path / "multiproc"
    folder.mkdir()
    with scratch_database(f"dsr_metrics_{os.getpid()}") as url:
        environment = {
            "DSR_DATABASE_URL": url,
            "DSR_SECRET_KEY": TEST_SECRET_KEY,
            "DSR_ADMIN_CLIENT_ID": ADMIN_ID,
            "DSR_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
            "DSR_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(folder),
        }
        with live_service(tmp_path, environment, serve_args=["--workers", "2"]) as service:
            total = 0
            run_folder: list[Path] = []
            with ThreadPoolExecutor(max_workers=16) as pool:
                # Concurrent new connections until both workers have answered some.
                for _ in range(20):
                    answers = list(
                        pool.map(lambda _: _status(f"{service.base}/healthz"), range(64))
                    )
                    assert answers == [200] * 64
                    total += 64
                    run_folder = list(folder.glob("dsr-metrics-*"))
                    assert len(run_folder) == 1, "a fresh folder for this server start"
                    if len(list(run_folder[0].glob("counter_*.db"))) >= 2:
                        break
            assert len(list(run_folder[0].glob("counter_*.db"))) >= 2, "both workers answered"
            response = httpx.get(f"{service.base}/metrics", headers=SCRAPER)
            assert response.status_code == 200, response.text
            samples = parse(response.text)
            answered = value(
                samples, "dsr_http_requests_total", method="GET", route="/healthz", status="200"
            )
            assert answered == total
        assert not list(folder.glob("dsr-metrics-*")), "the server's folder is removed at exit"
