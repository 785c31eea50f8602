"""Webhook delivery and deadline sweeps, end to end: API -> outbox -> worker -> real receiver."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlmodel import col

from app.core.config import Settings
from app.core.time import utcnow
from app.models import DsrRequest, OutboxEvent, WebhookDelivery, WebhookEndpoint
from app.requests import sweeps
from app.worker import Worker
from tests.factories import create_request, identity_assertion, verified_request
from tests.webhook_receiver import Receiver, Reply

EMAIL = "webhook.subject@example.com"
NAME = "Wilhelmina Hookworth"
PHONE = "+442079460123"
SUBJECT = {"email": EMAIL, "name": NAME, "phone": PHONE}


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> Any:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()


async def subscribe(
    client: AsyncClient, headers: dict[str, str], url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks", headers=headers, json={"url": url, "events": events or ["request.*"]}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def drain(worker: Worker, rounds: int = 3) -> None:
    for _ in range(rounds):
        await worker.run_once(sweep=False)


async def make_due_now(app: FastAPI) -> None:
    """Stand-in for the passing of time: every scheduled retry becomes due."""
    async with app.state.sessionmaker.begin() as session:
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))


async def test_every_lifecycle_event_is_delivered_signed_and_without_identities(
    client: AsyncClient,
    worker: Worker,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        endpoint = await subscribe(client, integration_headers, receiver.url)
        waiting = await create_request(client, integration_headers, subject=SUBJECT)
        await client.post(
            f"/v1/requests/{waiting['id']}/verification",
            headers=officer_headers,
            json={"method": "document", "document_type": "passport", "result": "failed"},
        )
        await client.post(
            f"/v1/requests/{waiting['id']}/reject",
            headers=officer_headers,
            json={"reason": "identity_not_verified"},
        )
        running = await verified_request(
            client, integration_headers, officer_headers, subject=SUBJECT
        )
        base = f"/v1/requests/{running['id']}"
        for action, body in [
            ("pause", {"reason": "awaiting_clarification"}),
            ("resume", None),
            ("extend", {"reason": "complex"}),
            ("complete", None),
        ]:
            response = await client.post(f"{base}/{action}", headers=officer_headers, json=body)
            assert response.status_code == 200, response.text
        cancelled = await create_request(client, integration_headers, subject=SUBJECT)
        await client.post(f"/v1/requests/{cancelled['id']}/cancel", headers=integration_headers)
        await drain(worker)
        received = await receiver.wait_for(11)
    types = [item.json["type"] for item in received]
    assert len(types) == 11
    assert sorted(set(types)) == sorted(
        {
            "request.received",
            "request.verification_failed",
            "request.rejected",
            "request.verified",
            "request.paused",
            "request.resumed",
            "request.extended",
            "request.completed",
            "request.cancelled",
        }
    )
    for item in received:
        assert item.verifies_with(endpoint["secret"])
        assert {"type", "timestamp", "data"} == set(item.json)
        assert {"id", "type", "status", "external_ref", "deadline"} <= set(item.json["data"])
        for identity in (EMAIL, NAME, PHONE, "Wilhelmina"):
            assert identity.encode() not in item.body
            assert identity not in str(item.headers)


async def test_failed_attempt_is_retried_with_the_same_webhook_id(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        receiver.reply_with(Reply(status=500))
        endpoint = await subscribe(client, admin_headers, receiver.url)
        await create_request(client, admin_headers)
        started = utcnow()
        await drain(worker, 1)
        async with app.state.sessionmaker() as session:
            delivery = (await session.execute(select(WebhookDelivery))).scalar_one()
        assert delivery.status == "pending" and delivery.attempt_count == 1
        # First retry after 5 s, with up to 10 % jitter.
        assert timedelta(seconds=4.4) <= delivery.next_attempt_at - started <= timedelta(seconds=6)
        await drain(worker, 1)
        assert len(receiver.received) == 1  # not due yet
        await make_due_now(app)
        await drain(worker, 1)
        first, second = await receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.verifies_with(endpoint["secret"])
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=admin_headers)
    item = log.json()["items"][0]
    assert item["status"] == "succeeded" and item["attempt_count"] == 2
    assert [a["status_code"] for a in item["attempts"]] == [500, 200]
    assert item["attempts"][0]["error"] == "HTTP 500"


async def test_a_consumer_orders_events_by_their_sequence_whatever_the_arrival(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    integration_credentials: tuple[str, str],
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    """Delivery is at least once with retries, so arrival order is not the order of events:
    here a failed first delivery is retried after a later event went through."""
    client_id, secret = integration_credentials
    async with Receiver() as receiver:
        await subscribe(client, integration_headers, receiver.url)
        token = identity_assertion(client_id, secret, sub=EMAIL)
        created = await create_request(
            client, integration_headers, subject=SUBJECT, identity_assertion=token
        )
        receiver.reply_with(Reply(status=500))  # whichever of the intake's two comes first
        await drain(worker, 1)
        completed = await client.post(
            f"/v1/requests/{created['id']}/complete", headers=officer_headers
        )
        assert completed.status_code == 200, completed.text
        await drain(worker, 1)
        await make_due_now(app)
        await drain(worker, 1)
        failed, *delivered = await receiver.wait_for(4)
    arrived = [(item.json["data"]["sequence"], item.json["type"]) for item in delivered]
    assert arrived[-1] == (failed.json["data"]["sequence"], failed.json["type"])  # the retry
    assert arrived[-2] == (3, "request.completed")  # arrived before an earlier event
    assert sorted(arrived) == [
        (1, "request.received"),
        (2, "request.verified"),
        (3, "request.completed"),
    ]
    assert delivered[-1].headers["webhook-id"] == failed.headers["webhook-id"]
    assert {item.json["data"]["id"] for item in delivered} == {created["id"]}


async def test_retry_after_is_honoured(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        receiver.reply_with(Reply(status=503, headers={"Retry-After": "120"}))
        await subscribe(client, admin_headers, receiver.url)
        await create_request(client, admin_headers)
        started = utcnow()
        await drain(worker, 1)
    async with app.state.sessionmaker() as session:
        delivery = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert delivery.next_attempt_at - started >= timedelta(seconds=119)


async def test_gone_disables_the_endpoint_and_tells_admins(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    async with Receiver(default=Reply(status=410)) as gone, Receiver() as admin_receiver:
        endpoint = await subscribe(client, integration_headers, gone.url)
        admin = await subscribe(
            client, admin_headers, admin_receiver.url, events=["webhook.endpoint_disabled"]
        )
        await create_request(client, integration_headers)
        await drain(worker)
        await create_request(client, integration_headers)
        await drain(worker)
        notices = await admin_receiver.wait_for(1)
    assert len(gone.received) == 1  # nothing more goes to a disabled endpoint
    assert notices[0].json["type"] == "webhook.endpoint_disabled"
    assert notices[0].json["data"]["endpoint_id"] == endpoint["id"]
    assert notices[0].verifies_with(admin["secret"])
    async with app.state.sessionmaker() as session:
        row = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
    assert row is not None and row.active is False and "410" in (row.disabled_reason or "")


async def test_endpoint_failing_for_five_days_is_disabled(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Receiver(default=Reply(status=500)) as receiver:
        endpoint = await subscribe(client, admin_headers, receiver.url)
        await create_request(client, admin_headers)
        await drain(worker, 1)
        async with app.state.sessionmaker.begin() as session:
            # Its first failure was five days ago (the stand-in for five days of retries).
            await session.execute(
                update(WebhookEndpoint).values(
                    failing_since=utcnow() - timedelta(days=5, minutes=1)
                )
            )
        await make_due_now(app)
        await drain(worker, 1)
    async with app.state.sessionmaker() as session:
        row = (await session.execute(select(WebhookEndpoint))).scalar_one()
        notices = list(
            (
                await session.execute(
                    select(OutboxEvent).where(
                        col(OutboxEvent.event_type) == "webhook.endpoint_disabled"
                    )
                )
            ).scalars()
        )
    assert str(row.id) == endpoint["id"] and row.active is False
    assert len(notices) == 1
    assert any("disabled" in record.getMessage() for record in caplog.records)


async def test_delivery_fails_for_good_after_the_last_retry(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
) -> None:
    async with Receiver(default=Reply(status=500)) as receiver:
        await subscribe(client, admin_headers, receiver.url)
        await create_request(client, admin_headers)
        await drain(worker, 1)
        async with app.state.sessionmaker.begin() as session:
            await session.execute(update(WebhookDelivery).values(attempt_count=9))
        await make_due_now(app)
        await drain(worker, 1)
    async with app.state.sessionmaker() as session:
        delivery = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert delivery.status == "failed" and delivery.attempt_count == 10


async def test_rotated_secret_and_previous_both_sign_during_overlap(
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        endpoint = await subscribe(client, admin_headers, receiver.url)
        rotated = await client.post(
            f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=admin_headers
        )
        assert rotated.status_code == 200, rotated.text
        await create_request(client, admin_headers)
        await drain(worker)
        (item,) = await receiver.wait_for(1)
    assert rotated.json()["secret"] != endpoint["secret"]
    assert item.verifies_with(endpoint["secret"])
    assert item.verifies_with(rotated.json()["secret"])
    assert len(item.headers["webhook-signature"].split()) == 2


async def test_integration_endpoints_get_only_their_own_requests(
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    async with Receiver() as mine, Receiver() as everything:
        await subscribe(client, integration_headers, mine.url)
        await subscribe(client, admin_headers, everything.url)
        own = await create_request(client, integration_headers)
        await create_request(client, officer_headers)
        await drain(worker)
        await everything.wait_for(2)
    assert [item.json["data"]["id"] for item in mine.received] == [own["id"]]


async def test_event_filters_select_event_types(
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        await subscribe(client, admin_headers, receiver.url, events=["request.verified"])
        await verified_request(client, officer_headers, officer_headers)
        await drain(worker)
        received = await receiver.wait_for(1)
    assert [item.json["type"] for item in received] == ["request.verified"]


async def test_private_destination_is_refused_at_delivery(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    admin_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        await subscribe(client, admin_headers, receiver.url)  # allowed when registered (dev)
        await create_request(client, admin_headers)
        strict = Worker(
            settings.model_copy(update={"webhook_allow_private": False}), app.state.sessionmaker
        )
        try:
            await strict.run_once(sweep=False)
            await strict.run_once(sweep=False)
        finally:
            await strict.close()
    assert receiver.received == []
    async with app.state.sessionmaker() as session:
        delivery = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert delivery.last_error == "destination address not allowed"


async def test_rolled_back_change_sends_nothing(
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    async with Receiver() as receiver:
        await subscribe(client, admin_headers, receiver.url)
        waiting = await create_request(client, officer_headers)
        refused = await client.post(
            f"/v1/requests/{waiting['id']}/complete", headers=officer_headers
        )
        assert refused.status_code == 409
        await drain(worker)
        received = await receiver.wait_for(1)
    assert [item.json["type"] for item in received] == ["request.received"]


# ---------------------------------------------------------------- sweeps


async def _backdate(app: FastAPI, request_id: str, **values: Any) -> None:
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(DsrRequest).where(col(DsrRequest.id) == uuid.UUID(request_id)).values(**values)
        )


async def _events(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[str]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    return [event["type"] for event in response.json()["items"]]


async def _numbered(app: FastAPI, request_id: str) -> list[tuple[int, str]]:
    """(data.sequence, type) of the request's outbox rows, by sequence."""
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.execute(
                select(OutboxEvent.payload).where(
                    col(OutboxEvent.request_id) == uuid.UUID(request_id)
                )
            )
        ).scalars()
        return sorted((payload["data"]["sequence"], payload["type"]) for payload in payloads)


async def test_due_soon_and_overdue_are_announced_once_each(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    settings: Settings,
    officer_headers: dict[str, str],
) -> None:
    soon = await verified_request(client, officer_headers, officer_headers)
    late = await verified_request(client, officer_headers, officer_headers)
    far = await verified_request(client, officer_headers, officer_headers)
    today = utcnow().date()
    await _backdate(app, soon["id"], due_date=today + timedelta(days=settings.due_soon_days))
    await _backdate(
        app, late["id"], due_date=today - timedelta(days=1), due_at=utcnow() - timedelta(hours=1)
    )
    second = Worker(settings, app.state.sessionmaker)
    try:
        for _ in range(2):  # two passes, and a second worker: still one notice each
            await worker.sweep()
            await second.sweep()
    finally:
        await second.close()
    assert (await _events(client, officer_headers, soon["id"])).count("request.due_soon") == 1
    late_events = await _events(client, officer_headers, late["id"])
    assert late_events.count("request.overdue") == 1
    assert "request.due_soon" not in late_events  # a late request is overdue, not "due soon"
    assert "request.due_soon" not in await _events(client, officer_headers, far["id"])
    listed = await client.get("/v1/requests", params={"overdue": "true"}, headers=officer_headers)
    assert [item["id"] for item in listed.json()["items"]] == [late["id"]]


async def test_sweep_events_are_delivered(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    late = await verified_request(client, officer_headers, officer_headers, subject=SUBJECT)
    await _backdate(
        app,
        late["id"],
        due_date=utcnow().date() - timedelta(days=1),
        due_at=utcnow() - timedelta(hours=1),
    )
    async with Receiver() as receiver:
        endpoint = await subscribe(
            client, admin_headers, receiver.url, events=["request.due_soon", "request.overdue"]
        )
        await worker.sweep()
        await drain(worker)
        received = await receiver.wait_for(1)
    assert [item.json["type"] for item in received] == ["request.overdue"]
    for item in received:
        assert item.verifies_with(endpoint["secret"])
        assert item.json["data"]["id"] == late["id"]
        assert item.json["data"]["deadline"]["overdue"] is True
        assert EMAIL.encode() not in item.body and NAME.encode() not in item.body


async def test_a_request_past_due_is_announced_overdue_and_never_due_soon(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    settings: Settings,
    officer_headers: dict[str, str],
) -> None:
    """Announced due soon in time, it later becomes overdue: due_soon, then overdue. Past due
    before any sweep saw it (worker down, or it slipped between sweeps): overdue alone, in any
    order of the sweeps and on any number of workers."""
    in_time = await verified_request(client, officer_headers, officer_headers)
    slipped = await verified_request(client, officer_headers, officer_headers)
    today = utcnow().date()
    await _backdate(app, in_time["id"], due_date=today + timedelta(days=1))
    await worker.sweep()
    assert await _events(client, officer_headers, in_time["id"]) == [
        "request.received",
        "request.verified",
        "request.due_soon",
    ]
    past = {"due_date": today - timedelta(days=1), "due_at": utcnow() - timedelta(minutes=1)}
    await _backdate(app, in_time["id"], **past)
    await _backdate(app, slipped["id"], **past)
    # The due-soon sweep alone, before the overdue one has run: a late request is not due soon.
    async with app.state.sessionmaker.begin() as session:
        assert await sweeps.announce_due_soon(session, settings=settings, now=utcnow()) == 0
    second = Worker(settings, app.state.sessionmaker)
    try:
        for _ in range(2):
            await worker.sweep()
            await second.sweep()
    finally:
        await second.close()
    assert (await _events(client, officer_headers, in_time["id"]))[2:] == [
        "request.due_soon",
        "request.overdue",
    ]
    assert (await _events(client, officer_headers, slipped["id"]))[2:] == ["request.overdue"]
    # Sweep events are numbered after the request's earlier events.
    assert await _numbered(app, in_time["id"]) == [
        (1, "request.received"),
        (2, "request.verified"),
        (3, "request.due_soon"),
        (4, "request.overdue"),
    ]
    assert (await _numbered(app, slipped["id"]))[2:] == [(3, "request.overdue")]


async def test_unverified_requests_expire_as_identity_not_verified(
    app: FastAPI,
    client: AsyncClient,
    worker: Worker,
    settings: Settings,
    officer_headers: dict[str, str],
) -> None:
    stale = await create_request(client, officer_headers)
    fresh = await create_request(client, officer_headers)
    await _backdate(
        app,
        stale["id"],
        received_at=utcnow() - timedelta(days=settings.verification_expiry_days, minutes=1),
    )
    assert await worker.sweep() >= 1
    expired = (await client.get(f"/v1/requests/{stale['id']}", headers=officer_headers)).json()
    assert expired["status"] == "rejected"
    assert expired["rejection"]["reason"] == "identity_not_verified"
    assert "request.rejected" in await _events(client, officer_headers, stale["id"])
    still = (await client.get(f"/v1/requests/{fresh['id']}", headers=officer_headers)).json()
    assert still["status"] == "awaiting_verification"
    async with app.state.sessionmaker() as session:
        rejected = list(
            (
                await session.execute(
                    select(OutboxEvent).where(col(OutboxEvent.event_type) == "request.rejected")
                )
            ).scalars()
        )
    assert len(rejected) == 1
    # The summary tells the sweep's expiries from an officer's rejection for the same reason.
    officer_rejection = await client.post(
        f"/v1/requests/{fresh['id']}/reject",
        headers=officer_headers,
        json={"reason": "identity_not_verified"},
    )
    assert officer_rejection.status_code == 200, officer_rejection.text
    summary = (await client.get("/v1/reports/summary", headers=officer_headers)).json()
    assert summary["rejections"]["by_reason"]["identity_not_verified"] == 2
    assert summary["verification_expiries"] == 1
