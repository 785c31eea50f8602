"""Failure alerts: one mail per event to DSR_ALERT_EMAIL, over a real SMTP server, with no
subject identity in it; each event mailed once, even by two workers at once."""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlmodel import col

from app.core.config import Settings
from app.core.time import utcnow
from app.demo import JANE_DOE, create_demo_crm
from app.models import MailMessage, OutboxEvent
from app.webhooks import outbox
from app.worker import Worker
from tests.conftest import make_settings
from tests.factories import verified_request
from tests.fulfilment.conftest import drain, register_crm
from tests.reports.helpers import add_request, at, end_of
from tests.smtp_server import SmtpServer

ALERTS_TO = "privacy-team@controller.example"
SENDER = "dsr@controller.example"
JANE = {"email": JANE_DOE["email"], "name": "Jane Doe", "phone": JANE_DOE["phone"]}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return make_settings(
        database_url,
        export_dir=str(tmp_path / "exports"),
        public_url="https://dsr.controller.example",
        fulfilment_max_attempts=1,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=SENDER,
        alert_email=ALERTS_TO,
    )


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()


def _alerts(smtp: SmtpServer) -> list[tuple[str, str]]:
    return [
        (str(mail.message["Subject"]), mail.part("text/plain"))
        for mail in smtp.messages
        if mail.rcpt_tos == [ALERTS_TO]
    ]


async def test_an_overdue_request_is_alerted_once(
    app: FastAPI, worker: Worker, smtp: SmtpServer
) -> None:
    request_id = await add_request(
        app, type="erasure", received_at=at("2026-10-01"), due_date="2026-11-02",
        due_at=end_of("2026-11-02"),
    )  # fmt: skip
    await worker.sweep()
    await worker.run_once(sweep=False)
    await worker.sweep()
    await worker.run_once(sweep=False)

    ((subject, text),) = _alerts(smtp)
    assert subject == "[DSR alert] Request overdue"
    assert f"Reference: {request_id}" in text and "Request type: erasure" in text
    assert "passed its due date (2026-11-02)" in text
    assert f"https://dsr.controller.example/v1/requests/{request_id}" in text
    assert "report.subject@example.com" not in text and "Report Subject" not in text
    assert smtp.messages[0].mail_from == SENDER


async def test_a_failed_fulfilment_raises_its_event_and_one_alert(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    worker: Worker,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    crm_file = create_demo_crm(tmp_path / "demo_crm.db")
    await register_crm(client, admin_headers, f"sqlite:///{crm_file}")
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )
    os.replace(crm_file, str(crm_file) + ".away")  # the source cannot be reached
    fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
    assert fulfil.status_code == 200
    await drain(worker)
    await worker.sweep()
    await worker.run_once(sweep=False)

    async with app.state.sessionmaker() as session:
        (event,) = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.event_type) == "fulfilment.failed")
            )
        ).scalars()
    assert event.payload["data"]["id"] == dsr["id"]
    assert event.payload["data"]["fulfilment"] == {"phase": "run"}
    ((subject, text),) = _alerts(smtp)
    assert subject == "[DSR alert] Fulfilment failed"
    assert f"Reference: {dsr['id']}" in text and "Request type: erasure" in text
    for identity in JANE.values():
        assert identity not in text


async def test_a_disabled_webhook_endpoint_is_alerted(
    app: FastAPI, worker: Worker, smtp: SmtpServer
) -> None:
    async with app.state.sessionmaker.begin() as session:
        session.add(
            OutboxEvent(
                **outbox.outbox_row(
                    event_type="webhook.endpoint_disabled",
                    data={
                        "endpoint_id": "0f5c3c1e-0000-4000-8000-000000000001",
                        "reason": "endpoint answered 410 Gone",
                    },
                    now=utcnow(),
                    owner_client_id="test-admin",
                )
            )
        )
    await worker.sweep()
    await worker.run_once(sweep=False)
    ((subject, text),) = _alerts(smtp)
    assert subject == "[DSR alert] Webhook endpoint disabled"
    assert "0f5c3c1e-0000-4000-8000-000000000001 was disabled (endpoint answered 410 Gone)" in text


async def test_two_workers_mail_each_alert_once(
    app: FastAPI, settings: Settings, smtp: SmtpServer
) -> None:
    for day in range(1, 21):
        await add_request(
            app, received_at=at("2026-10-01"), due_date=f"2026-11-{day:02d}",
            due_at=end_of(f"2026-11-{day:02d}"),
        )  # fmt: skip
    first, second = (
        Worker(settings, app.state.sessionmaker),
        Worker(settings, app.state.sessionmaker),
    )
    try:
        await asyncio.gather(first.sweep(), second.sweep())
        await asyncio.gather(first.sweep(), second.sweep())
        async with app.state.sessionmaker() as session:
            queued = (
                await session.execute(select(func.count()).where(col(MailMessage.kind) == "alert"))
            ).scalar_one()
        assert queued == 20
        await first.run_once(sweep=False)
        await second.run_once(sweep=False)
    finally:
        await first.close()
        await second.close()
    assert len(_alerts(smtp)) == 20


async def test_without_an_alert_address_events_are_marked_and_nothing_is_sent(
    app: FastAPI, database_url: str, smtp: SmtpServer
) -> None:
    quiet = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from=SENDER
    )
    await add_request(
        app, received_at=at("2026-10-01"), due_date="2026-11-02", due_at=end_of("2026-11-02")
    )
    worker = Worker(quiet, app.state.sessionmaker)
    try:
        await worker.sweep()
        await worker.run_once(sweep=False)
    finally:
        await worker.close()
    assert _alerts(smtp) == []
    async with app.state.sessionmaker() as session:
        (event,) = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.event_type) == "request.overdue")
            )
        ).scalars()
    assert event.alerted_at is not None
