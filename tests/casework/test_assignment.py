"""Assigning a case: who may own it, the audit entry, the board's owner filters."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.models import OutboxEvent
from tests.auth.test_authorization import assert_problem
from tests.casework.helpers import officer
from tests.factories import create_request


async def assign(
    client: AsyncClient, headers: dict[str, str], request_id: str, assignee: str | None
) -> Any:
    return await client.post(
        f"/v1/requests/{request_id}/assign", headers=headers, json={"assignee": assignee}
    )


async def events(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[Any]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_assign_reassign_and_unassign_are_audited_without_a_webhook(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    alice, alice_headers = await officer(client, admin_headers)
    bob, _ = await officer(client, admin_headers)
    created = await create_request(client, alice_headers)
    assert created["assignee"] is None

    response = await assign(client, alice_headers, created["id"], alice)
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == alice
    assert response.json()["updated_at"] >= created["updated_at"]
    assert (await assign(client, alice_headers, created["id"], bob)).json()["assignee"] == bob
    # The same owner again: nothing changes, nothing is recorded.
    assert (await assign(client, alice_headers, created["id"], bob)).status_code == 200
    response = await assign(client, admin_headers, created["id"], None)
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] is None

    fetched = await client.get(f"/v1/requests/{created['id']}", headers=alice_headers)
    assert fetched.json()["assignee"] is None
    assigned = [
        e for e in await events(client, alice_headers, created["id"]) if "assign" in e["type"]
    ]
    assert [(e["type"], e["actor"], e["data"]) for e in assigned] == [
        ("request.assigned", alice, {"assignee": alice, "previous": None}),
        ("request.assigned", alice, {"assignee": bob, "previous": alice}),
        ("request.assigned", "test-admin", {"assignee": None, "previous": bob}),
    ]
    async with app.state.sessionmaker() as session:
        announced = (await session.execute(select(OutboxEvent.event_type))).scalars().all()
    assert "request.assigned" not in announced


async def test_admins_may_own_cases(client: AsyncClient, admin_headers: dict[str, str]) -> None:
    created = await create_request(client, admin_headers)
    response = await assign(client, admin_headers, created["id"], "test-admin")
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "test-admin"


@pytest.mark.parametrize("who", ["integration", "unknown", "disabled", "deleted", "too-long"])
async def test_assignee_must_be_an_active_officer_or_admin(
    client: AsyncClient, admin_headers: dict[str, str], who: str
) -> None:
    _, headers = await officer(client, admin_headers)
    created = await create_request(client, headers)
    if who == "integration":
        assignee, _ = await officer(client, admin_headers, role="integration")
    elif who == "unknown":
        assignee = "officer-nobody"
    elif who == "too-long":
        assignee = "x" * 65
    else:
        assignee, _ = await officer(client, admin_headers)
        if who == "disabled":
            response = await client.post(f"/v1/clients/{assignee}/disable", headers=admin_headers)
        else:
            response = await client.delete(f"/v1/clients/{assignee}", headers=admin_headers)
        assert response.status_code in (200, 204), response.text
    body = assert_problem(await assign(client, headers, created["id"], assignee), 422)
    assert body["errors"][0]["loc"] == ["body", "assignee"]
    assert assignee not in str(body)
    fetched = await client.get(f"/v1/requests/{created['id']}", headers=headers)
    assert fetched.json()["assignee"] is None
    assert "request.assigned" not in [
        e["type"] for e in await events(client, headers, created["id"])
    ]


@pytest.mark.parametrize(
    "body", [{}, {"assignee": ""}, {"assignee": 7}, {"assignee": None, "x": 1}]
)
async def test_malformed_assign_bodies_are_422(
    client: AsyncClient, officer_headers: dict[str, str], body: dict[str, Any]
) -> None:
    created = await create_request(client, officer_headers)
    response = await client.post(
        f"/v1/requests/{created['id']}/assign", headers=officer_headers, json=body
    )
    assert_problem(response, 422)


@pytest.mark.parametrize("action", ["reject", "cancel"])
async def test_closed_requests_cannot_be_assigned(
    client: AsyncClient, admin_headers: dict[str, str], action: str
) -> None:
    me, headers = await officer(client, admin_headers)
    created = await create_request(client, headers)
    body = {"reason": "excessive"} if action == "reject" else {}
    closed = await client.post(f"/v1/requests/{created['id']}/{action}", headers=headers, json=body)
    assert closed.status_code == 200, closed.text
    problem = assert_problem(await assign(client, headers, created["id"], me), 409)
    assert problem["current_status"] == closed.json()["status"]


async def test_integrations_may_not_assign_even_their_own_requests(
    client: AsyncClient, admin_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    me, _ = await officer(client, admin_headers)
    created = await create_request(client, integration_headers)
    assert_problem(await assign(client, integration_headers, created["id"], me), 403)


async def test_board_filters_by_owner_me_and_unassigned(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    alice, alice_headers = await officer(client, admin_headers)
    bob, bob_headers = await officer(client, admin_headers)
    mine = (await create_request(client, alice_headers))["id"]
    bobs = (await create_request(client, alice_headers))["id"]
    nobodys = (await create_request(client, alice_headers))["id"]
    assert (await assign(client, alice_headers, mine, alice)).status_code == 200
    assert (await assign(client, alice_headers, bobs, bob)).status_code == 200

    async def board(headers: dict[str, str], **params: Any) -> set[str]:
        query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        response = await client.get("/v1/requests", headers=headers, params=query)
        assert response.status_code == 200, response.text
        searched = await client.post("/v1/requests/search", headers=headers, json=params)
        assert searched.status_code == 200, searched.text
        listed = {item["id"] for item in response.json()["items"]}
        assert listed == {item["id"] for item in searched.json()["items"]}
        return listed

    assert await board(alice_headers, assignee="me") == {mine}
    assert await board(bob_headers, assignee="me") == {bobs}
    assert await board(alice_headers, assignee=bob) == {bobs}
    assert await board(admin_headers, assignee="me") == set()
    assert await board(alice_headers, assignee="officer-nobody") == set()
    assert await board(alice_headers, unassigned=True) == {nobodys}
    assert await board(alice_headers, unassigned=False) == {mine, bobs}


async def test_a_case_can_be_assigned_to_an_active_person(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    from tests.console.helpers import make_person

    alice, alice_headers = await officer(client, admin_headers)
    person = await make_person(app)
    created = await create_request(client, alice_headers)
    response = await assign(client, alice_headers, created["id"], person)
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == person
    assert (await assign(client, alice_headers, created["id"], alice)).json()["assignee"] == alice
    disabled = await client.post(f"/v1/users/{person}/disable", headers=admin_headers)
    assert disabled.status_code == 200
    assert_problem(await assign(client, alice_headers, created["id"], person), 422)
    assert_problem(await assign(client, alice_headers, created["id"], "usr_nobody"), 422)
