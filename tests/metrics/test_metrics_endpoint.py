"""GET /metrics after a scripted run: intake, a fulfilment through the worker, a webhook
endpoint answering 500; each series with its value. And who may scrape."""

import uuid
from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlmodel import col

from app.core.time import utcnow
from app.demo import JANE_DOE
from app.models import (
    DsrRequest,
    FulfilmentJob,
    MailMessage,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.worker import Worker
from tests.conftest import make_settings
from tests.factories import create_request, verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait
from tests.metrics.conftest import SCRAPER, parse, scrape, value
from tests.webhook_receiver import Receiver, Reply


async def test_a_scripted_run_shows_in_every_series(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    # Counters live as long as the process (other tests ran before): compare differences.
    before = await scrape(client)
    async with Receiver(default=Reply(status=500)) as receiver:
        response = await client.post(
            "/v1/webhooks",
            headers=integration_headers,
            json={"url": receiver.url, "events": ["request.*"]},
        )
        assert response.status_code == 201, response.text
        jane = {"email": JANE_DOE["email"]}
        fulfilled = await verified_request(
            client, integration_headers, officer_headers, subject=jane
        )
        overdue = await verified_request(client, integration_headers, officer_headers)
        due_soon = await verified_request(
            client, integration_headers, officer_headers, type="erasure"
        )
        await create_request(client, integration_headers, type="erasure", channel="post")
        done = await fulfil_and_wait(client, officer_headers, fulfilled["id"], worker)
        assert done["status"] == "completed"
        await worker.run_once(sweep=False)  # the webhook events: each attempt answered 500
        assert receiver.received
    missing = await client.get(
        "/v1/requests/00000000-0000-0000-0000-000000000000", headers=officer_headers
    )
    assert missing.status_code == 404
    assert (await client.get("/no/such/jane.doe@example.com")).status_code == 404

    now = utcnow()
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(DsrRequest)
            .where(col(DsrRequest.id) == uuid.UUID(overdue["id"]))
            .values(due_at=now - timedelta(days=1), due_date=(now - timedelta(days=1)).date())
        )
        await session.execute(
            update(DsrRequest)
            .where(col(DsrRequest.id) == uuid.UUID(due_soon["id"]))
            .values(due_at=now + timedelta(days=2), due_date=(now + timedelta(days=2)).date())
        )
        # Waiting items of a known age in every queue.
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.status) == "pending")
            .values(created_at=now - timedelta(seconds=600))
        )
        session.add(
            OutboxEvent(
                event_type="request.created", payload={}, created_at=now - timedelta(seconds=700)
            )
        )
        await session.execute(update(WebhookEndpoint).values(active=False))
    waiting = await create_request(client, integration_headers, type="erasure", channel="phone")
    queued = await verified_request(client, integration_headers, officer_headers)
    response = await client.post(f"/v1/requests/{queued['id']}/fulfil", headers=officer_headers)
    assert response.status_code == 200, response.text
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(MailMessage)
            .where(col(MailMessage.request_id) == uuid.UUID(waiting["id"]))
            .values(created_at=now - timedelta(seconds=800))
        )
        await session.execute(
            update(FulfilmentJob)
            .where(col(FulfilmentJob.request_id) == uuid.UUID(queued["id"]))
            .values(created_at=now - timedelta(seconds=900))
        )

    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # HTTP, by route template and status; never a raw path.
    assert grew("dsr_http_requests_total", method="POST", route="/v1/requests", status="201") == 6
    assert (
        grew(
            "dsr_http_requests_total", method="GET", route="/v1/requests/{request_id}", status="404"
        )
        == 1
    )
    assert grew("dsr_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert (
        grew(
            "dsr_http_request_duration_seconds_count",
            method="POST",
            route="/v1/requests",
            status="201",
        )
        == 6
    )
    routes = {dict(labels).get("route", "") for _name, labels in after}
    assert not any("jane" in route or "0000" in route for route in routes)
    # The lifecycle's counters.
    assert grew("dsr_requests_received_total", type="access", channel="email") == 3
    assert grew("dsr_requests_received_total", type="erasure", channel="email") == 1
    assert grew("dsr_requests_received_total", type="erasure", channel="post") == 1
    assert grew("dsr_requests_received_total", type="erasure", channel="phone") == 1
    assert grew("dsr_requests_completed_total", type="access", timeliness="on_time") == 1
    assert grew("dsr_requests_completed_total", type="access", timeliness="late") == 0
    # The worker's: deliveries answered 500, the fulfilment job timed, mail sent.
    assert grew("dsr_webhook_deliveries_total", outcome="http_error") >= 1
    assert grew("dsr_webhook_deliveries_total", outcome="succeeded") == 0
    assert grew("dsr_fulfilment_job_duration_seconds_count", phase="run") == 1
    assert grew("dsr_mail_messages_total", outcome="sent") >= 1
    # Figures read from the database at scrape time: this test's database only.
    assert value(after, "dsr_requests_open", status="in_progress", type="access") == 2
    assert value(after, "dsr_requests_open", status="in_progress", type="erasure") == 1
    assert value(after, "dsr_requests_open", status="awaiting_verification", type="erasure") == 2
    assert value(after, "dsr_requests_open", status="completed", type="access") == 0
    assert value(after, "dsr_requests_overdue", type="access") == 1
    assert value(after, "dsr_requests_overdue", type="erasure") == 0
    assert value(after, "dsr_requests_due_soon", type="erasure") == 1
    assert value(after, "dsr_requests_due_soon", type="access") == 0
    assert value(after, "dsr_requests_awaiting_verification") == 2
    assert 600 <= value(after, "dsr_webhook_delivery_oldest_pending_age_seconds") < 660
    assert 700 <= value(after, "dsr_webhook_outbox_oldest_age_seconds") < 760
    assert 800 <= value(after, "dsr_mail_oldest_pending_age_seconds") < 860
    assert 900 <= value(after, "dsr_fulfilment_job_oldest_queued_age_seconds") < 960
    assert value(after, "dsr_webhook_endpoints_disabled") == 1


async def test_without_a_token_setting_there_is_no_metrics_route(
    database_url: str,
) -> None:
    from app.main import create_app

    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        from httpx import ASGITransport

        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/metrics", headers=SCRAPER)
            assert response.status_code == 404
            assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_a_wrong_or_missing_token_is_refused(client: AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-the-metrics-token-at-all"},
        {"Authorization": f"Basic {SCRAPER['Authorization'].split()[1]}"},
    ):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "dsr_" not in response.text
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]
    ok = await client.get("/metrics", headers=SCRAPER)
    assert ok.status_code == 200
    assert "dsr_requests_awaiting_verification" in parse(ok.text).__repr__()
