"""The console's Webhook health: endpoints as the API shows them to the person, their failing
deliveries (made by the real worker against a local receiver), and Retry."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlmodel import col

from app.auth.scopes import ROLE_SCOPES, Principal, Role
from app.core.config import Settings
from app.core.time import utcnow
from app.models import WebhookDelivery
from app.webhooks import endpoints
from app.worker import Worker
from tests.console.helpers import login, make_person
from tests.factories import create_request
from tests.webhook_receiver import Receiver, Reply

OFFICER = "olivia.officer@example.com"
ADMIN = "ada.admin@example.com"


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    try:
        yield instance
    finally:
        await instance.close()


async def subscribe(client: AsyncClient, headers: dict[str, str], url: str) -> str:
    created = await client.post(
        "/v1/webhooks", headers=headers, json={"url": url, "events": ["request.*"]}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def load_delivery(app: FastAPI, webhook_id: str) -> WebhookDelivery:
    """The endpoint's only delivery, as stored."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == uuid.UUID(webhook_id))
        )
        (delivery,) = rows.scalars().all()
        return delivery


async def test_admin_sees_failing_deliveries_and_retry_requeues_them(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    await make_person(app, email=ADMIN, role=Role.ADMIN, name="Ada Admin")
    token = await login(client, ADMIN)
    async with Receiver(Reply(status=500)) as receiver:
        webhook_id = await subscribe(client, integration_headers, receiver.url)
        await create_request(client, integration_headers)
        await worker.run_once(sweep=False)
        await receiver.wait_for(1)

        listing = await client.get("/console/webhooks")
        assert listing.status_code == 200
        html = listing.text
        assert "<h1>Webhook health</h1>" in html
        assert f'href="/console/webhooks/{webhook_id}">{receiver.url}</a>' in html
        assert "request.*" in html and "active" in html
        assert "retrying</strong> (HTTP 500)" in html
        assert '<td class="number"><strong class="overdue">1</strong></td>' in html
        assert "Webhooks need attention" in html and "1 delivery is failing" in html

        details = await client.get(f"/console/webhooks/{webhook_id}")
        assert details.status_code == 200
        delivery = await load_delivery(app, webhook_id)
        assert delivery.status == "pending" and delivery.attempt_count == 1
        assert delivery.next_attempt_at > utcnow()  # backing off
        assert "request.received" in details.text and "HTTP 500" in details.text
        retry_url = f"/console/webhooks/{webhook_id}/deliveries/{delivery.id}/retry"
        assert f'action="{retry_url}"' in details.text

        assert (await client.post(retry_url, data={})).status_code == 403
        receiver.reply_with(Reply(status=200))
        retried = await client.post(retry_url, data={"csrf_token": token})
        assert retried.status_code == 303
        assert retried.headers["location"] == f"/console/webhooks/{webhook_id}?retried=1"
        # The API's retry effect: pending, due now, unclaimed, past attempts kept.
        again = await load_delivery(app, webhook_id)
        assert again.status == "pending" and again.claimed_until is None
        assert again.next_attempt_at <= utcnow() and again.attempt_count == 1
        shown = await client.get(retried.headers["location"])
        assert "queued to be sent again" in shown.text

        await worker.run_once(sweep=False)
        await receiver.wait_for(2)
        assert (await load_delivery(app, webhook_id)).status == "succeeded"
        healthy = await client.get("/console/webhooks")
        assert "Webhooks need attention" not in healthy.text
        assert "succeeded" in healthy.text
        api = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin_headers)
        assert [attempt["status_code"] for attempt in api.json()["items"][0]["attempts"]] == [
            500,
            200,
        ]


async def test_a_disabled_endpoint_is_flagged_and_refuses_retry(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    integration_headers: dict[str, str],
) -> None:
    await make_person(app, email=ADMIN, role=Role.ADMIN, name="Ada Admin")
    token = await login(client, ADMIN)
    async with Receiver(Reply(status=410)) as receiver:
        webhook_id = await subscribe(client, integration_headers, receiver.url)
        await create_request(client, integration_headers)
        await worker.run_once(sweep=False)
        await receiver.wait_for(1)
    listing = await client.get("/console/webhooks")
    assert "1 endpoint is disabled" in listing.text
    assert "disabled</strong>: endpoint answered 410 Gone" in listing.text
    assert "failed</strong> (HTTP 410)" in listing.text
    details = await client.get(f"/console/webhooks/{webhook_id}")
    assert "This endpoint needs attention" in details.text and "/retry" not in details.text
    delivery = await load_delivery(app, webhook_id)
    assert delivery.status == "failed"
    refused = await client.post(
        f"/console/webhooks/{webhook_id}/deliveries/{delivery.id}/retry",
        data={"csrf_token": token},
    )
    assert refused.status_code == 409 and "enable it" in refused.text
    assert (await load_delivery(app, webhook_id)).status == "failed"


async def test_officers_see_only_their_own_endpoints_as_in_the_api(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    theirs = await subscribe(client, integration_headers, "http://127.0.0.1:9/theirs")
    user_id = await make_person(app)
    async with app.state.sessionmaker() as session:
        own, _secret = await endpoints.create_endpoint(
            session,
            settings=app.state.settings,
            principal=Principal(
                client_id=user_id,
                role=Role.OFFICER,
                scopes=ROLE_SCOPES[Role.OFFICER],
            ),
            url="http://127.0.0.1:9/mine",
            events=["request.*"],
            description=None,
            now=utcnow() - timedelta(seconds=1),
        )
        await session.commit()
    token = await login(client, OFFICER)
    listing = await client.get("/console/webhooks")
    assert listing.status_code == 200
    assert "http://127.0.0.1:9/mine" in listing.text and "/theirs" not in listing.text
    assert (await client.get(f"/console/webhooks/{own.id}")).status_code == 200
    hidden = await client.get(f"/console/webhooks/{theirs}")
    assert hidden.status_code == 404
    retry = await client.post(
        f"/console/webhooks/{theirs}/deliveries/{uuid.uuid4()}/retry", data={"csrf_token": token}
    )
    assert retry.status_code == 404
    assert (await client.get("/console/webhooks/not-a-uuid")).status_code == 404
    # An admin, in the console as in the API, sees both.
    api = await client.get("/v1/webhooks", headers=admin_headers)
    assert {item["url"] for item in api.json()["items"]} >= {
        "http://127.0.0.1:9/mine",
        "http://127.0.0.1:9/theirs",
    }
    await client.post("/console/logout", data={"csrf_token": token})
    await make_person(app, email=ADMIN, role=Role.ADMIN, name="Ada Admin")
    await login(client, ADMIN)
    admin_view = await client.get("/console/webhooks")
    assert "/mine" in admin_view.text and "/theirs" in admin_view.text


async def test_anonymous_browsers_go_to_login(client: AsyncClient) -> None:
    for url in ("/console/webhooks", f"/console/webhooks/{uuid.uuid4()}"):
        response = await client.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=/console/webhooks")
