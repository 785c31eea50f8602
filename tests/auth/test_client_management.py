"""Managing API clients (admin): list, disable, enable, rotate the secret, delete.

A leaked secret must be revocable: a disabled, deleted or rotated client's tokens are refused
in this process at once and in every other process within ``DSR_CLIENT_REFRESH_INTERVAL``
(here 0.2 s), also when the client was disabled or deleted in the database by hand.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select, update
from sqlmodel import col

from app.core.config import Settings
from app.main import create_app
from app.models import Client, DsrRequest
from app.worker import Worker
from tests.conftest import ADMIN_ID, get_token, make_settings, new_client
from tests.factories import create_request, identity_assertion, request_body
from tests.webhook_receiver import Receiver

PROBLEM_JSON = "application/problem+json"
REFRESH = 0.2
DOCUMENT_PASSED = {
    "method": "document",
    "document_type": "passport",
    "business_address_confirmed": True,
    "result": "passed",
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, client_refresh_interval=REFRESH)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = dict(response.json())
    assert body["status"] == status
    return body


def assert_revoked(response: Any) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def token_answer(client: AsyncClient, client_id: str, secret: str) -> Any:
    return await client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


async def uses_of(client: AsyncClient, headers: dict[str, str]) -> list[int]:
    """What a client typically does with its token: list, submit, subscribe a webhook."""
    listed = await client.get("/v1/requests", headers=headers)
    submitted = await client.post("/v1/requests", headers=headers, json=request_body())
    subscribed = await client.post(
        "/v1/webhooks", headers=headers, json={"url": "http://127.0.0.1:9/hook"}
    )
    return [listed.status_code, submitted.status_code, subscribed.status_code]


async def act(
    client: AsyncClient, admin_headers: dict[str, str], client_id: str, action: str
) -> Any:
    return await client.post(f"/v1/clients/{client_id}/{action}", headers=admin_headers)


async def in_database(app: FastAPI, statement: Any) -> None:
    """A change made behind the service's back (a DBA, a script)."""
    async with app.state.sessionmaker.begin() as session:
        await session.execute(statement)


@asynccontextmanager
async def other_process(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A second app on the same database: its own caches, as another API process has."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://other") as other:
            yield other


# ---------------------------------------------------------------- listing


async def test_admin_lists_clients_without_their_secrets(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    integration_id, integration_secret = await new_client(
        client, admin_headers, "integration", "Acme CRM"
    )
    officer_id, officer_secret = await new_client(client, admin_headers, "officer", "Privacy desk")
    response = await client.get("/v1/clients", headers=admin_headers)
    assert response.status_code == 200, response.text
    items = {item["client_id"]: item for item in response.json()["items"]}
    assert set(items) == {ADMIN_ID, integration_id, officer_id}
    assert items[integration_id] == {
        "client_id": integration_id,
        "name": "Acme CRM",
        "role": "integration",
        "active": True,
        "created_at": items[integration_id]["created_at"],
        "disabled_at": None,
        "secret_rotated_at": None,
    }
    assert items[officer_id]["role"] == "officer"
    for secret in (integration_secret, officer_secret):
        assert secret not in response.text

    first = await client.get("/v1/clients", headers=admin_headers, params={"limit": 2})
    assert first.status_code == 200
    assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
    second = await client.get(
        "/v1/clients",
        headers=admin_headers,
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    paged = [item["client_id"] for item in first.json()["items"] + second.json()["items"]]
    assert sorted(paged) == sorted(items) and second.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("POST", "/disable"), ("POST", "/enable"), ("POST", "/rotate-secret"), ("DELETE", "")],
)
async def test_an_unknown_client_is_404(
    client: AsyncClient, admin_headers: dict[str, str], method: str, suffix: str
) -> None:
    for client_id in ("nobody", "x" * 300):
        response = await client.request(
            method, f"/v1/clients/{client_id}{suffix}", headers=admin_headers
        )
        assert_problem(response, 404)


# ---------------------------------------------------------------- disabling


async def test_disabling_a_client_refuses_its_tokens_and_its_secret(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    headers = bearer(await get_token(client, client_id, secret))
    assert await uses_of(client, headers) == [200, 201, 201]

    response = await act(client, admin_headers, client_id, "disable")
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False and response.json()["disabled_at"]
    for status in await uses_of(client, headers):
        assert status == 401
    assert_revoked(await client.get("/v1/requests", headers=headers))
    assert assert_problem(await token_answer(client, client_id, secret), 401)["error"] == (
        "invalid_client"
    )
    # Disabling twice is harmless.
    assert (await act(client, admin_headers, client_id, "disable")).status_code == 200

    response = await act(client, admin_headers, client_id, "enable")
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True and response.json()["disabled_at"] is None
    # Tokens issued before the disable stay revoked; a new one works.
    assert_revoked(await client.get("/v1/requests", headers=headers))
    fresh = bearer(await get_token(client, client_id, secret))
    assert (await client.get("/v1/requests", headers=fresh)).status_code == 200


async def test_a_client_disabled_in_the_database_loses_its_tokens_within_the_interval(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    headers = bearer(await get_token(client, client_id, secret))
    assert await uses_of(client, headers) == [200, 201, 201]
    await in_database(
        app, update(Client).where(col(Client.client_id) == client_id).values(active=False)
    )
    await asyncio.sleep(REFRESH * 1.5)
    assert await uses_of(client, headers) == [401, 401, 401]


async def test_an_officer_deleted_from_the_table_loses_its_tokens_within_the_interval(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    request_id = (await create_request(client, integration_headers))["id"]
    officer_id, secret = await new_client(client, admin_headers, "officer")
    headers = bearer(await get_token(client, officer_id, secret))
    assert (await client.get(f"/v1/requests/{request_id}", headers=headers)).status_code == 200
    await in_database(app, delete(Client).where(col(Client.client_id) == officer_id))
    await asyncio.sleep(REFRESH * 1.5)
    assert_revoked(await client.get(f"/v1/requests/{request_id}", headers=headers))
    assert_revoked(await client.get("/v1/requests", headers=headers))


async def test_a_disable_reaches_another_process_within_the_interval(
    settings: Settings, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    headers = bearer(await get_token(client, client_id, secret))
    async with other_process(settings) as other:
        assert (await other.get("/v1/requests", headers=headers)).status_code == 200
        assert (await act(client, admin_headers, client_id, "disable")).status_code == 200
        await asyncio.sleep(REFRESH * 1.5)
        assert_revoked(await other.get("/v1/requests", headers=headers))
        response = await other.post("/v1/requests", headers=headers, json=request_body())
        assert_revoked(response)


async def test_a_disabled_clients_identity_assertions_are_refused(
    database_url: str, app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    # A process whose view of the clients is five minutes old: the token still passes there, so
    # only the assertion check stands between a disabled client and a verified request.
    async with other_process(make_settings(database_url, client_refresh_interval=300)) as other:
        headers = bearer(await get_token(other, client_id, secret))
        body = request_body(identity_assertion=identity_assertion(client_id, secret))
        accepted = await other.post("/v1/requests", headers=headers, json=body)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["status"] == "in_progress"
        await in_database(
            app, update(Client).where(col(Client.client_id) == client_id).values(active=False)
        )
        body = request_body(identity_assertion=identity_assertion(client_id, secret))
        assert_problem(await other.post("/v1/requests", headers=headers, json=body), 422)


# ---------------------------------------------------------------- rotating


async def test_rotating_a_secret_shows_it_once_and_revokes_older_tokens(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, old_secret = await new_client(client, admin_headers, "integration", "Acme CRM")
    old_headers = bearer(await get_token(client, client_id, old_secret))

    response = await act(client, admin_headers, client_id, "rotate-secret")
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["client_id"] == client_id and rotated["name"] == "Acme CRM"
    assert rotated["role"] == "integration"
    new_secret = rotated["client_secret"]
    assert new_secret and new_secret != old_secret
    assert response.headers["cache-control"] == "no-store"

    assert_revoked(await client.get("/v1/requests", headers=old_headers))
    assert_problem(await token_answer(client, client_id, old_secret), 401)
    new_headers = bearer(await get_token(client, client_id, new_secret))
    assert await uses_of(client, new_headers) == [200, 201, 201]
    # Identity assertions follow the secret too.
    stale = request_body(identity_assertion=identity_assertion(client_id, old_secret))
    assert_problem(await client.post("/v1/requests", headers=new_headers, json=stale), 422)
    fresh = request_body(identity_assertion=identity_assertion(client_id, new_secret))
    assert (await client.post("/v1/requests", headers=new_headers, json=fresh)).status_code == 201

    listed = await client.get("/v1/clients", headers=admin_headers)
    assert new_secret not in listed.text
    (item,) = [item for item in listed.json()["items"] if item["client_id"] == client_id]
    assert item["secret_rotated_at"] and item["active"] is True


async def test_a_rotation_reaches_another_process_within_the_interval(
    settings: Settings, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, secret = await new_client(client, admin_headers, "officer")
    headers = bearer(await get_token(client, client_id, secret))
    async with other_process(settings) as other:
        assert (await other.get("/v1/requests", headers=headers)).status_code == 200
        rotated = await act(client, admin_headers, client_id, "rotate-secret")
        new_secret = rotated.json()["client_secret"]
        new_headers = bearer(await get_token(client, client_id, new_secret))
        # A token issued after the rotation is good everywhere at once.
        assert (await other.get("/v1/requests", headers=new_headers)).status_code == 200
        await asyncio.sleep(REFRESH * 1.5)
        assert_revoked(await other.get("/v1/requests", headers=headers))
        assert (await other.get("/v1/requests", headers=new_headers)).status_code == 200


# ---------------------------------------------------------------- deleting


async def test_deleting_a_client_keeps_its_requests_and_audit_trail(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    headers = bearer(await get_token(client, client_id, secret))
    request_id = (await create_request(client, headers))["id"]

    response = await client.delete(f"/v1/clients/{client_id}", headers=admin_headers)
    assert response.status_code == 204, response.text
    assert_revoked(await client.get("/v1/requests", headers=headers))
    assert_problem(await token_answer(client, client_id, secret), 401)
    listed = await client.get("/v1/clients", headers=admin_headers)
    assert client_id not in {item["client_id"] for item in listed.json()["items"]}
    for method, suffix in (("DELETE", ""), ("POST", "/enable"), ("POST", "/rotate-secret")):
        response = await client.request(
            method, f"/v1/clients/{client_id}{suffix}", headers=admin_headers
        )
        assert_problem(response, 404)

    # Its request is still there, still attributed to it.
    response = await client.get(f"/v1/requests/{request_id}", headers=officer_headers)
    assert response.status_code == 200, response.text
    events = await client.get(f"/v1/requests/{request_id}/events", headers=officer_headers)
    assert [event["actor"] for event in events.json()["items"]] == [client_id]
    async with app.state.sessionmaker() as session:
        dsr = await session.get(DsrRequest, uuid.UUID(request_id))
        assert dsr is not None and dsr.submitted_by == client_id
        # The row stays (secrets wiped), so its client_id can never be given to another.
        row = await session.scalar(select(Client).where(col(Client.client_id) == client_id))
        assert row is not None and not row.active and row.deleted_at is not None
        assert secret not in (row.secret_hash + row.secret_encrypted)
        assert not row.secret_encrypted


# ---------------------------------------------------------------- admins


async def test_an_admin_cannot_disable_or_delete_itself(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for method, suffix in (("POST", "/disable"), ("DELETE", "")):
        response = await client.request(
            method, f"/v1/clients/{ADMIN_ID}{suffix}", headers=admin_headers
        )
        body = assert_problem(response, 409)
        assert "calling" in body["detail"]
    assert (await client.get("/v1/clients", headers=admin_headers)).status_code == 200


async def test_another_admin_may_disable_an_admin_but_never_the_last_one(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    second_id, second_secret = await new_client(client, admin_headers, "admin")
    second = bearer(await get_token(client, second_id, second_secret))
    response = await act(client, second, ADMIN_ID, "disable")
    assert response.status_code == 200, response.text
    # The bootstrap admin, now disabled, can no longer act; the second admin is the last.
    assert_revoked(await act(client, admin_headers, second_id, "disable"))
    assert_problem(await act(client, second, second_id, "disable"), 409)
    assert (await act(client, second, ADMIN_ID, "enable")).status_code == 200


async def test_two_admins_disabling_each_other_at_once_leave_one_active(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    second_id, second_secret = await new_client(client, admin_headers, "admin")
    second = bearer(await get_token(client, second_id, second_secret))
    answers = await asyncio.gather(
        act(client, admin_headers, second_id, "disable"), act(client, second, ADMIN_ID, "disable")
    )
    statuses = sorted(answer.status_code for answer in answers)
    # The loser is told it is the last admin (409), or, if the winner's disable reached the
    # token check first, that it was itself just disabled (401).
    assert statuses[0] == 200 and statuses[1] in {401, 409}, [a.text for a in answers]
    async with app.state.sessionmaker() as session:
        admins = await session.scalars(
            select(Client).where(col(Client.role) == "admin", col(Client.active))
        )
        assert len(list(admins)) == 1


# ---------------------------------------------------------------- webhook endpoints


async def test_a_disabled_clients_webhook_endpoints_receive_nothing(
    app: FastAPI,
    settings: Settings,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    headers = bearer(await get_token(client, client_id, secret))
    worker = Worker(settings, app.state.sessionmaker)
    try:
        async with Receiver() as receiver:
            endpoint = await client.post(
                "/v1/webhooks", headers=headers, json={"url": receiver.url, "events": ["*"]}
            )
            assert endpoint.status_code == 201, endpoint.text
            webhook_id = endpoint.json()["id"]
            request_id = (await create_request(client, headers))["id"]
            await worker.run_once(sweep=False)
            await receiver.wait_for(1)

            assert (await act(client, admin_headers, client_id, "disable")).status_code == 200
            shown = await client.get(f"/v1/webhooks/{webhook_id}", headers=admin_headers)
            assert shown.json()["active"] is False
            assert shown.json()["disabled_reason"] == "client disabled"
            verified = await client.post(
                f"/v1/requests/{request_id}/verification",
                headers=officer_headers,
                json=DOCUMENT_PASSED,
            )
            assert verified.status_code == 200, verified.text
            for _ in range(3):
                await worker.run_once(sweep=False)
            await asyncio.sleep(0.2)
            assert [item.json["type"] for item in receiver.received] == ["request.received"]

            assert (await act(client, admin_headers, client_id, "enable")).status_code == 200
            shown = await client.get(f"/v1/webhooks/{webhook_id}", headers=admin_headers)
            assert shown.json()["active"] is True and shown.json()["disabled_reason"] is None
            paused = await client.post(
                f"/v1/requests/{request_id}/pause",
                headers=officer_headers,
                json={"reason": "awaiting_clarification"},
            )
            assert paused.status_code == 200, paused.text
            await worker.run_once(sweep=False)
            received = await receiver.wait_for(2)
            assert [item.json["type"] for item in received] == [
                "request.received",
                "request.paused",
            ]
    finally:
        await worker.close()


async def test_deleting_a_client_deletes_its_webhook_endpoints(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    client_id, secret = await new_client(client, admin_headers, "integration")
    headers = bearer(await get_token(client, client_id, secret))
    endpoint = await client.post(
        "/v1/webhooks", headers=headers, json={"url": "http://127.0.0.1:9/hook"}
    )
    assert endpoint.status_code == 201, endpoint.text
    assert (await client.delete(f"/v1/clients/{client_id}", headers=admin_headers)).status_code == (
        204
    )
    shown = await client.get(f"/v1/webhooks/{endpoint.json()['id']}", headers=admin_headers)
    assert_problem(shown, 404)
