"""Webhook subscriptions API, on SQLite and PostgreSQL.

No test here sends a webhook: the in-process worker is off, URLs are loopback or literal
addresses, and the only host name ever resolved is ``localhost``.
"""

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from standardwebhooks import Webhook

from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.time import utcnow
from app.main import create_app
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks import endpoints
from app.webhooks.endpoints import signing_secrets
from app.webhooks.event_types import EVENT_TYPES
from tests.conftest import (
    ADMIN_ID,
    ADMIN_SECRET,
    TEST_SECRET_KEY,
    get_token,
    new_client,
)
from tests.conftest import make_settings as base_settings

PROBLEM_JSON = "application/problem+json"
HOOK_URL = "http://127.0.0.1:9/hooks/dsr"  # the discard port: nothing listens there
PUBLIC_URL = "https://93.184.216.34/hooks/dsr"  # literal: never resolved, never contacted


def make_settings(database_url: str, **overrides: Any) -> Settings:
    # No background worker: deliveries inserted here must stay as the test left them.
    return base_settings(database_url, run_worker_in_process=False, **overrides)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@asynccontextmanager
async def app_client(
    settings: Settings,
) -> AsyncIterator[tuple[FastAPI, AsyncClient, dict[str, str]]]:
    """A separately configured app, its client, and admin headers."""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://testserver") as c,
    ):
        token = await get_token(c, ADMIN_ID, ADMIN_SECRET)
        yield application, c, {"Authorization": f"Bearer {token}"}


async def create_webhook(
    client: AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": HOOK_URL, "description": "Acme CRM"}
    body.update(overrides)
    response = await client.post("/v1/webhooks", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def headers_for(
    client: AsyncClient, admin_headers: dict[str, str], role: str
) -> dict[str, str]:
    client_id, secret = await new_client(client, admin_headers, role)
    return {"Authorization": f"Bearer {await get_token(client, client_id, secret)}"}


async def load_endpoint(app: FastAPI, webhook_id: str) -> WebhookEndpoint:
    async with app.state.sessionmaker() as session:
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(webhook_id))
        assert endpoint is not None
        return endpoint


async def insert_delivery(
    app: FastAPI,
    webhook_id: str,
    *,
    status: str = "failed",
    failed_attempts: int = 2,
    created_at: datetime | None = None,
) -> str:
    """A delivery as the worker leaves it, with its failed attempts."""
    created_at = created_at or utcnow()
    async with app.state.sessionmaker() as session:
        delivery = WebhookDelivery(
            endpoint_id=uuid.UUID(webhook_id),
            event_type="request.received",
            payload={
                "type": "request.received",
                "timestamp": created_at.isoformat(),
                "data": {"id": str(uuid.uuid4()), "type": "access", "status": "in_progress"},
            },
            status=status,
            attempt_count=failed_attempts,
            next_attempt_at=created_at + timedelta(hours=1),
            claimed_until=created_at + timedelta(minutes=1) if status == "pending" else None,
            last_status_code=500 if failed_attempts else None,
            last_error="HTTP 500" if failed_attempts else None,
            created_at=created_at,
            completed_at=created_at + timedelta(hours=2) if status != "pending" else None,
        )
        session.add(delivery)
        await session.flush()
        for number in range(failed_attempts):
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempted_at=created_at + timedelta(seconds=5 * number),
                    status_code=500,
                    latency_ms=12 + number,
                    error="HTTP 500",
                    succeeded=False,
                )
            )
        await session.commit()
        return str(delivery.id)


async def set_disabled(app: FastAPI, webhook_id: str, reason: str) -> None:
    async with app.state.sessionmaker() as session:
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(webhook_id))
        assert endpoint is not None
        endpoint.active = False
        endpoint.disabled_reason = reason
        endpoint.disabled_at = utcnow()
        endpoint.failing_since = utcnow() - timedelta(days=5)
        await session.commit()


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = dict(response.json())
    assert body["status"] == status
    return body


# ------------------------------------------------------------------------------ create


async def test_create_returns_the_secret_once_and_stores_it_encrypted(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["url"] == HOOK_URL
    assert created["events"] == ["request.*"]
    assert created["description"] == "Acme CRM"
    assert created["active"] is True
    assert created["receives_all"] is False
    assert created["created_at"]
    Webhook(secret)  # a valid Standard Webhooks secret

    fetched = await client.get(f"/v1/webhooks/{created['id']}", headers=integration_headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == {key: value for key, value in created.items() if key != "secret"}
    listed = await client.get("/v1/webhooks", headers=integration_headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    for response in (fetched, listed):
        assert "secret" not in response.text
        assert secret.removeprefix("whsec_") not in response.text

    row = await load_endpoint(app, created["id"])
    assert secret not in row.secret_encrypted
    assert secret.removeprefix("whsec_") not in row.secret_encrypted
    assert decrypt_secret(row.secret_encrypted, secret_keys=[TEST_SECRET_KEY]) == secret
    assert decrypt_secret(row.secret_encrypted, secret_keys=["another-key" * 4]) is None


async def test_each_endpoint_gets_its_own_secret(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    first = await create_webhook(client, integration_headers)
    second = await create_webhook(client, integration_headers)
    assert first["secret"] != second["secret"]


async def test_events_are_kept_in_order_without_duplicates(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(
        client,
        integration_headers,
        events=["request.completed", "task.created", "request.completed", "subject.*"],
        description=None,
    )
    assert created["events"] == ["request.completed", "task.created", "subject.*"]
    assert created["description"] is None


async def test_admin_endpoints_receive_all_and_may_watch_endpoint_health(
    client: AsyncClient, admin_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    admin = await create_webhook(client, admin_headers, events=["*", "webhook.endpoint_disabled"])
    assert admin["receives_all"] is True
    officer = await create_webhook(client, officer_headers, events=["*"])
    assert officer["receives_all"] is False


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "events",
    [
        ["request.recieved"],
        ["request.*", "nope"],
        ["request"],
        ["req*"],
        ["*.*"],
        ["request.[a-z]*"],
        ["Request.Received"],
        ["unknown.*"],
    ],
)
async def test_unknown_event_is_422_listing_the_valid_types(
    client: AsyncClient, integration_headers: dict[str, str], events: list[str]
) -> None:
    response = await client.post(
        "/v1/webhooks", headers=integration_headers, json={"url": HOOK_URL, "events": events}
    )
    body = assert_problem(response, 422)
    assert body["valid_event_types"] == list(EVENT_TYPES)
    assert "request.received" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "events", len(events) - 1]


@pytest.mark.parametrize("events", [["webhook.endpoint_disabled"], ["webhook.*"]])
async def test_endpoint_health_events_are_for_admins_only(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    events: list[str],
) -> None:
    for headers in (integration_headers, officer_headers):
        response = await client.post(
            "/v1/webhooks", headers=headers, json={"url": HOOK_URL, "events": events}
        )
        assert "admins" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": ""},
        {"url": "https://93.184.216.34/" + "a" * 2000},
        {"url": HOOK_URL, "events": []},
        {"url": HOOK_URL, "events": ["request.received"] * 51},
        {"url": HOOK_URL, "events": ["x" * 101]},
        {"url": HOOK_URL, "events": "request.*"},
        {"url": HOOK_URL, "description": "d" * 501},
        {"url": HOOK_URL, "secret": "whsec_mine"},
    ],
    ids=[
        "no-url",
        "empty-url",
        "long-url",
        "no-events",
        "too-many-events",
        "long-pattern",
        "events-not-a-list",
        "long-description",
        "own-secret",
    ],
)
async def test_invalid_bodies_are_422(
    client: AsyncClient, integration_headers: dict[str, str], body: dict[str, Any]
) -> None:
    assert_problem(await client.post("/v1/webhooks", headers=integration_headers, json=body), 422)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/hooks",
        "javascript:alert(1)",
        "https://crm:hunter2@93.184.216.34/hooks",
        "https:///hooks",
        "not a url",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:9/hooks",
    ],
)
async def test_bad_urls_are_refused(
    client: AsyncClient, integration_headers: dict[str, str], url: str
) -> None:
    response = await client.post("/v1/webhooks", headers=integration_headers, json={"url": url})
    body = assert_problem(response, 422)
    assert body["title"] == "Webhook URL not allowed"
    assert "hunter2" not in body["detail"]


async def test_production_requires_https_and_public_addresses(database_url: str) -> None:
    settings = make_settings(
        database_url,
        env="production",
        smtp_host="mail.example",
        smtp_from="privacy@example.com",
        public_url="https://privacy.example.com",
    )
    assert settings.allow_private_webhooks is False
    async with app_client(settings) as (_app, client, admin_headers):
        refused = await client.post(
            "/v1/webhooks", headers=admin_headers, json={"url": "http://93.184.216.34/hooks"}
        )
        assert "https" in assert_problem(refused, 422)["detail"]
        refused = await client.post(
            "/v1/webhooks", headers=admin_headers, json={"url": "https://127.0.0.1/hooks"}
        )
        assert "loopback" in assert_problem(refused, 422)["detail"]
        await create_webhook(client, admin_headers, url=PUBLIC_URL)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hooks", "loopback"),
        ("http://localhost:9/hooks", "loopback"),
        ("http://[::1]:9/hooks", "loopback"),
        ("http://[::ffff:127.0.0.1]:9/hooks", "loopback"),
        ("http://10.0.0.8/hooks", "private"),
        ("http://172.16.4.2/hooks", "private"),
        ("http://192.168.1.10/hooks", "private"),
        ("http://100.64.0.1/hooks", "shared"),
        ("http://169.254.1.1/hooks", "link-local"),
        ("http://169.254.169.254/hooks", "metadata"),
    ],
)
async def test_private_addresses_refused_unless_allowed(
    database_url: str, url: str, reason: str
) -> None:
    settings = make_settings(database_url, webhook_allow_private=False)
    async with app_client(settings) as (_app, client, admin_headers):
        response = await client.post("/v1/webhooks", headers=admin_headers, json={"url": url})
        assert reason in assert_problem(response, 422)["detail"]
        await create_webhook(client, admin_headers, url="http://93.184.216.34/hooks")


async def test_private_addresses_allowed_in_development(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    for url in ("http://localhost:9/hooks", "http://[::1]:9/hooks", "http://10.0.0.8/hooks"):
        await create_webhook(client, integration_headers, url=url)


async def test_endpoints_per_client_are_bounded(
    client: AsyncClient,
    integration_headers: dict[str, str],
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(endpoints, "MAX_ENDPOINTS_PER_CLIENT", 2)
    first = await create_webhook(client, integration_headers)
    await create_webhook(client, integration_headers)
    response = await client.post(
        "/v1/webhooks", headers=integration_headers, json={"url": HOOK_URL}
    )
    assert assert_problem(response, 409)["title"] == "Too many webhook endpoints"
    await create_webhook(client, admin_headers)  # another client's count
    deleted = await client.delete(f"/v1/webhooks/{first['id']}", headers=integration_headers)
    assert deleted.status_code == 204
    await create_webhook(client, integration_headers)


# ------------------------------------------------------------------------------ visibility


async def test_clients_see_only_their_own_endpoints_and_admins_see_all(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    other_headers = await headers_for(client, admin_headers, "integration")
    mine = await create_webhook(client, integration_headers)
    theirs = await create_webhook(client, other_headers)
    officers = await create_webhook(client, officer_headers)
    admins = await create_webhook(client, admin_headers)
    delivery_id = await insert_delivery(app, mine["id"])

    base = f"/v1/webhooks/{mine['id']}"
    calls = [
        ("GET", base),
        ("DELETE", base),
        ("POST", f"{base}/rotate-secret"),
        ("POST", f"{base}/enable"),
        ("GET", f"{base}/deliveries"),
        ("POST", f"{base}/deliveries/{delivery_id}/retry"),
    ]
    missing = f"/v1/webhooks/{uuid.uuid4()}"
    for headers in (other_headers, officer_headers):
        for method, path in calls:
            foreign = await client.request(method, path, headers=headers)
            unknown = await client.request(method, path.replace(base, missing), headers=headers)
            # A foreign endpoint is indistinguishable from one that does not exist.
            assert assert_problem(foreign, 404) == assert_problem(unknown, 404), path

    async def listed(headers: dict[str, str]) -> set[str]:
        response = await client.get("/v1/webhooks", headers=headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await listed(integration_headers) == {mine["id"]}
    assert await listed(other_headers) == {theirs["id"]}
    assert await listed(officer_headers) == {officers["id"]}
    assert await listed(admin_headers) == {mine["id"], theirs["id"], officers["id"], admins["id"]}

    # Nothing the refused calls tried happened.
    row = await load_endpoint(app, mine["id"])
    assert row.active and row.previous_secret_encrypted is None
    assert decrypt_secret(row.secret_encrypted, secret_keys=[TEST_SECRET_KEY]) == mine["secret"]

    # Admins manage every client's endpoints.
    assert (await client.get(base, headers=admin_headers)).status_code == 200
    rotated = await client.post(f"{base}/rotate-secret", headers=admin_headers)
    assert rotated.status_code == 200, rotated.text
    deliveries = await client.get(f"{base}/deliveries", headers=admin_headers)
    assert [item["id"] for item in deliveries.json()["items"]] == [delivery_id]
    assert (await client.delete(base, headers=admin_headers)).status_code == 204


async def test_list_endpoints_newest_first_with_cursor(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = [(await create_webhook(client, integration_headers))["id"] for _ in range(3)]
    first = await client.get("/v1/webhooks?limit=2", headers=integration_headers)
    assert first.status_code == 200
    page = first.json()
    assert [item["id"] for item in page["items"]] == created[::-1][:2]
    assert page["next_cursor"]
    second = await client.get(
        "/v1/webhooks", headers=integration_headers, params={"cursor": page["next_cursor"]}
    )
    assert [item["id"] for item in second.json()["items"]] == created[:1]
    assert second.json()["next_cursor"] is None
    bad = await client.get("/v1/webhooks?cursor=garbage", headers=integration_headers)
    assert assert_problem(bad, 400)["title"] == "Invalid cursor"


# ------------------------------------------------------------------------------ delete


async def test_delete_is_final_and_forgets_the_secrets(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    pending = await insert_delivery(app, created["id"], status="pending", failed_attempts=1)
    succeeded = await insert_delivery(app, created["id"], status="succeeded", failed_attempts=0)
    path = f"/v1/webhooks/{created['id']}"
    assert (await client.post(f"{path}/rotate-secret", headers=integration_headers)).is_success

    response = await client.delete(path, headers=integration_headers)
    assert response.status_code == 204
    assert response.content == b""

    assert_problem(await client.get(path, headers=integration_headers), 404)
    assert_problem(await client.delete(path, headers=integration_headers), 404)
    assert_problem(await client.post(f"{path}/enable", headers=integration_headers), 404)
    listed = await client.get("/v1/webhooks", headers=integration_headers)
    assert listed.json()["items"] == []

    row = await load_endpoint(app, created["id"])
    assert row.active is False
    assert row.disabled_reason == "deleted"
    assert row.disabled_at is not None
    assert row.secret_encrypted == "" and row.previous_secret_encrypted is None
    assert signing_secrets(row, settings=app.state.settings, now=utcnow()) == []
    async with app.state.sessionmaker() as session:
        closed = await session.get(WebhookDelivery, uuid.UUID(pending))
        kept = await session.get(WebhookDelivery, uuid.UUID(succeeded))
    assert closed is not None and kept is not None
    assert closed.status == "failed"
    assert closed.last_error == "endpoint deleted"
    assert closed.completed_at is not None and closed.claimed_until is None
    assert kept.status == "succeeded"


# ------------------------------------------------------------------------------ rotation


async def test_rotation_keeps_the_old_secret_signing_for_24_hours(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    old_secret = created["secret"]
    row = await load_endpoint(app, created["id"])
    settings = app.state.settings
    assert signing_secrets(row, settings=settings, now=utcnow()) == [old_secret]

    before = utcnow()
    response = await client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", headers=integration_headers
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    new_secret = rotated["secret"]
    assert rotated["id"] == created["id"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    expires_at = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(hours=24) <= expires_at <= utcnow() + timedelta(hours=24)

    row = await load_endpoint(app, created["id"])
    assert row.previous_secret_expires_at == expires_at
    assert new_secret not in row.secret_encrypted
    assert signing_secrets(row, settings=settings, now=utcnow()) == [new_secret, old_secret]
    assert signing_secrets(row, settings=settings, now=expires_at - timedelta(seconds=1)) == [
        new_secret,
        old_secret,
    ]
    assert signing_secrets(row, settings=settings, now=expires_at) == [new_secret]
    assert signing_secrets(row, settings=settings, now=expires_at + timedelta(days=1)) == [
        new_secret
    ]

    # Both signatures verify during the overlap, each with its own secret.
    msg_id, timestamp, body = "msg_1", utcnow(), '{"type":"x"}'
    signatures = " ".join(
        Webhook(secret).sign(msg_id, timestamp, body) for secret in [new_secret, old_secret]
    )
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
    for secret in (new_secret, old_secret):
        Webhook(secret).verify(body, headers)

    # The secret stays out of every other answer.
    fetched = await client.get(f"/v1/webhooks/{created['id']}", headers=integration_headers)
    assert new_secret not in fetched.text and "secret" not in fetched.json()

    # A second rotation inside the overlap retires the oldest secret at once.
    again = await client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", headers=integration_headers
    )
    newest = again.json()["secret"]
    row = await load_endpoint(app, created["id"])
    assert signing_secrets(row, settings=settings, now=utcnow()) == [newest, new_secret]


# ------------------------------------------------------------------------------ deliveries


async def test_deliveries_of_a_new_endpoint_are_empty(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    response = await client.get(
        f"/v1/webhooks/{created['id']}/deliveries", headers=integration_headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_deliveries_show_each_attempt(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    other = await create_webhook(client, integration_headers)
    start = utcnow() - timedelta(hours=3)
    older = await insert_delivery(app, created["id"], created_at=start)
    newer = await insert_delivery(
        app,
        created["id"],
        status="pending",
        failed_attempts=1,
        created_at=start + timedelta(hours=1),
    )
    await insert_delivery(app, other["id"])
    path = f"/v1/webhooks/{created['id']}/deliveries"

    response = await client.get(path, headers=integration_headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["id"] for item in items] == [newer, older]
    pending, failed = items
    assert failed["status"] == "failed"
    assert failed["event_type"] == "request.received"
    assert failed["attempt_count"] == 2
    assert failed["last_status_code"] == 500
    assert failed["last_error"] == "HTTP 500"
    assert failed["next_attempt_at"] is None
    assert failed["completed_at"] is not None
    assert failed["attempts"] == [
        {
            "attempted_at": failed["attempts"][number]["attempted_at"],
            "status_code": 500,
            "latency_ms": 12 + number,
            "error": "HTTP 500",
            "succeeded": False,
        }
        for number in range(2)
    ]
    first, second = (datetime.fromisoformat(a["attempted_at"]) for a in failed["attempts"])
    assert second - first == timedelta(seconds=5)
    assert pending["status"] == "pending"
    assert pending["next_attempt_at"] is not None
    assert pending["completed_at"] is None
    assert "payload" not in pending

    page = (await client.get(f"{path}?limit=1", headers=integration_headers)).json()
    assert [item["id"] for item in page["items"]] == [newer]
    rest = await client.get(
        path, headers=integration_headers, params={"limit": 1, "cursor": page["next_cursor"]}
    )
    assert [item["id"] for item in rest.json()["items"]] == [older]
    assert rest.json()["next_cursor"] is None

    only_failed = await client.get(f"{path}?status=failed", headers=integration_headers)
    assert [item["id"] for item in only_failed.json()["items"]] == [older]
    assert_problem(await client.get(f"{path}?status=bogus", headers=integration_headers), 422)


async def test_retry_queues_the_delivery_again(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    delivery_id = await insert_delivery(app, created["id"], status="failed")
    before = utcnow()

    response = await client.post(
        f"/v1/webhooks/{created['id']}/deliveries/{delivery_id}/retry",
        headers=integration_headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["id"] == delivery_id
    assert body["status"] == "pending"
    assert body["completed_at"] is None
    assert body["attempt_count"] == 2
    assert len(body["attempts"]) == 2
    assert before <= datetime.fromisoformat(body["next_attempt_at"]) <= utcnow()

    async with app.state.sessionmaker() as session:
        row = await session.get(WebhookDelivery, uuid.UUID(delivery_id))
    assert row is not None
    assert row.status == "pending"
    assert row.claimed_until is None
    assert row.completed_at is None
    assert before <= row.next_attempt_at <= utcnow()
    assert row.payload["type"] == "request.received"


async def test_retry_resets_a_claimed_pending_delivery(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    delivery_id = await insert_delivery(app, created["id"], status="pending")
    response = await client.post(
        f"/v1/webhooks/{created['id']}/deliveries/{delivery_id}/retry",
        headers=integration_headers,
    )
    assert response.status_code == 202, response.text
    async with app.state.sessionmaker() as session:
        row = await session.get(WebhookDelivery, uuid.UUID(delivery_id))
    assert row is not None and row.claimed_until is None and row.next_attempt_at <= utcnow()


async def test_retry_of_an_unknown_or_foreign_delivery_is_404(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    other = await create_webhook(client, integration_headers)
    elsewhere = await insert_delivery(app, other["id"])
    for delivery_id in (str(uuid.uuid4()), elsewhere):
        response = await client.post(
            f"/v1/webhooks/{created['id']}/deliveries/{delivery_id}/retry",
            headers=integration_headers,
        )
        assert assert_problem(response, 404)["detail"] == (
            "No delivery with this id for this webhook endpoint."
        )
    # Not an id at all: no route takes it (the path parameter is a UUID), so 404.
    response = await client.post(
        f"/v1/webhooks/{created['id']}/deliveries/not-a-uuid/retry", headers=integration_headers
    )
    assert_problem(response, 404)


async def test_disabled_endpoint_refuses_retry_until_enabled(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_webhook(client, integration_headers)
    delivery_id = await insert_delivery(app, created["id"])
    await set_disabled(app, created["id"], "endpoint answered 410 Gone")
    path = f"/v1/webhooks/{created['id']}"

    fetched = (await client.get(path, headers=integration_headers)).json()
    assert fetched["active"] is False
    assert fetched["disabled_reason"] == "endpoint answered 410 Gone"
    listed = (await client.get("/v1/webhooks", headers=integration_headers)).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]

    retry = f"{path}/deliveries/{delivery_id}/retry"
    assert_problem(await client.post(retry, headers=integration_headers), 409)

    enabled = await client.post(f"{path}/enable", headers=integration_headers)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    assert enabled.json()["disabled_reason"] is None
    row = await load_endpoint(app, created["id"])
    assert row.failing_since is None and row.disabled_at is None
    again = await client.post(f"{path}/enable", headers=integration_headers)
    assert again.status_code == 200 and again.json() == enabled.json()

    assert (await client.post(retry, headers=integration_headers)).status_code == 202


async def test_enable_checks_the_url_again(database_url: str) -> None:
    """An endpoint registered while private addresses were allowed stays disabled after."""
    async with app_client(make_settings(database_url)) as (_app, client, admin_headers):
        created = await create_webhook(client, admin_headers)
    strict = make_settings(database_url, webhook_allow_private=False)
    async with app_client(strict) as (app, client, admin_headers):
        await set_disabled(app, created["id"], "failing for 5 days")
        response = await client.post(f"/v1/webhooks/{created['id']}/enable", headers=admin_headers)
        assert "loopback" in assert_problem(response, 422)["detail"]
        fetched = await client.get(f"/v1/webhooks/{created['id']}", headers=admin_headers)
        assert fetched.json()["active"] is False
