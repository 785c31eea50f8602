"""A full run with JSON logs: intake, email-code verification, fulfilment by the worker, an
export, webhook and mail delivery. Every line is one JSON object with the required keys, none
names the subject, and the worker's lines for queued work carry the id of the request that
queued it (the rows' ``trace_id``)."""

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.core.config import Settings
from app.demo import JANE_DOE, create_demo_crm
from app.models import FulfilmentJob, MailMessage, OutboxEvent
from app.worker import Worker
from tests.conftest import make_settings
from tests.fulfilment.conftest import drain, register_crm
from tests.logging.conftest import REQUIRED_KEYS, JsonLog
from tests.smtp_server import SmtpServer
from tests.webhook_receiver import Receiver

NAME = f"{JANE_DOE['first_name']} {JANE_DOE['last_name']}"
IDENTITIES = [
    JANE_DOE["email"],
    "jane.doe",  # the address's local part alone
    JANE_DOE["phone"],
    JANE_DOE["phone"].lstrip("+"),
    "01632 960001",  # the phone number as written in the UK
    NAME,
    JANE_DOE["customer_id"],
]


@pytest.fixture
def smtp() -> SmtpServer:
    with SmtpServer() as server:
        yield server  # type: ignore[misc]


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
    )


def _code_in(text: str) -> str:
    (code,) = re.findall(r"^\s*(\d{6})\s*$", text, flags=re.MULTILINE)
    return str(code)


async def _trace_ids(app: FastAPI, table: type, **where: object) -> set[str | None]:
    async with app.state.sessionmaker() as session:
        statement = select(table.trace_id)  # type: ignore[attr-defined]
        for column, value in where.items():
            statement = statement.where(getattr(table, column) == value)
        return set((await session.execute(statement)).scalars())


async def test_full_run_logs_json_lines_without_personal_data_under_request_ids(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    tmp_path: Path,
    smtp: SmtpServer,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    json_log: JsonLog,
) -> None:
    crm = create_demo_crm(tmp_path / "demo_crm.db")
    await register_crm(client, admin_headers, f"sqlite:///{crm}")
    worker = Worker(settings, app.state.sessionmaker)
    try:
        async with Receiver() as receiver:
            hooked = await client.post(
                "/v1/webhooks",
                headers=integration_headers,
                json={"url": f"{receiver.url}/hooks", "events": ["request.*"]},
            )
            assert hooked.status_code == 201, hooked.text
            created = await client.post(
                "/v1/requests",
                headers={**integration_headers, "X-Request-ID": "intake-1"},
                json={
                    "type": "access",
                    "subject": {
                        "email": JANE_DOE["email"],
                        "phone": JANE_DOE["phone"],
                        "name": NAME,
                        "customer_id": JANE_DOE["customer_id"],
                    },
                    "channel": "email",
                    "external_ref": "CRM-LOGS-1",
                },
            )
            assert created.status_code == 201, created.text
            request_id = created.json()["id"]
            base = f"/v1/requests/{request_id}/verification"
            asked = await client.post(
                base,
                headers={**integration_headers, "X-Request-ID": "verify-1"},
                json={"method": "email_code"},
            )
            assert asked.status_code == 200, asked.text
            await worker.run_once(sweep=False)
            (code_mail,) = [
                m for m in smtp.messages if m.message["Subject"] == "Your verification code"
            ]
            confirmed = await client.post(
                f"{base}/confirm",
                headers={**integration_headers, "X-Request-ID": "confirm-1"},
                json={"code": _code_in(code_mail.part("text/plain"))},
            )
            assert confirmed.status_code == 200, confirmed.text
            fulfil = await client.post(
                f"/v1/requests/{request_id}/fulfil",
                headers={**officer_headers, "X-Request-ID": "fulfil-1"},
            )
            assert fulfil.status_code == 200, fulfil.text
            await drain(worker)
            await worker.run_once(sweep=False)  # the completion's webhooks and mail
            done = await client.get(f"/v1/requests/{request_id}", headers=officer_headers)
            assert done.json()["status"] == "completed", done.json()
            for export_format in ("json", "csv"):
                export = await client.get(
                    f"/v1/requests/{request_id}/export",
                    params={"format": export_format},
                    headers=officer_headers,
                )
                assert export.status_code == 200
            assert receiver.received, "no webhook was delivered"
    finally:
        await worker.close()

    # Every line: one JSON object with the required keys, and no identity of the subject.
    assert json_log.service_lines
    for line in json_log.service_lines:
        entry = json.loads(line)
        assert set(entry) >= REQUIRED_KEYS, entry
        for identity in IDENTITIES:
            assert identity.lower() not in line.lower(), (identity, line)
    access = json_log.entries("app.access")
    assert {"intake-1", "verify-1", "confirm-1", "fulfil-1"} <= {e["request_id"] for e in access}
    assert all({"method", "route", "status", "duration_ms"} <= set(e) for e in access)
    assert "/v1/requests/{request_id}/fulfil" in {e["route"] for e in access}

    # The rows a request queued carry its id...
    assert await _trace_ids(app, OutboxEvent, event_type="request.received") == {"intake-1"}
    assert await _trace_ids(app, MailMessage, kind="acknowledgement") == {"intake-1"}
    assert await _trace_ids(app, MailMessage, kind="verification_code") == {"verify-1"}
    assert await _trace_ids(app, FulfilmentJob) == {"fulfil-1"}
    # ... and so does what the job itself queued.
    assert await _trace_ids(app, OutboxEvent, event_type="request.completed") == {"fulfil-1"}

    # ... and the worker's lines for that work carry it back.
    fulfilment = [e for e in json_log.entries() if e["message"].startswith("fulfilment job")]
    assert fulfilment and {e["request_id"] for e in fulfilment} == {"fulfil-1"}
    mail = {e["request_id"] for e in json_log.entries("app.mail") if " sent" in e["message"]}
    assert {"intake-1", "verify-1"} <= mail
    deliveries = [e for e in json_log.entries("app.webhooks") if "webhook delivery" in e["message"]]
    received = [e for e in deliveries if "(request.received)" in e["message"]]
    assert received and {e["request_id"] for e in received} == {"intake-1"}
    completed = [e for e in deliveries if "(request.completed)" in e["message"]]
    assert completed and {e["request_id"] for e in completed} == {"fulfil-1"}
