"""The board: tabs, filters, the most urgent first, the traffic light, paging."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.console import board
from app.console.board import Light, traffic_light
from tests.console.helpers import login, make_person
from tests.factories import create_request, identity_assertion

OFFICER = "olivia.officer@example.com"
_ROW = re.compile(r'<a href="/console/requests/([0-9a-f-]{36})" title="\1">')


@pytest.mark.parametrize(
    ("days_left", "overdue", "expected"),
    [
        (None, False, Light.NO_CLOCK),
        (None, True, Light.OVERDUE),
        (-1, False, Light.OVERDUE),
        (0, True, Light.OVERDUE),
        (0, False, Light.RED),
        (4, False, Light.RED),
        (5, False, Light.AMBER),
        (9, False, Light.AMBER),
        (10, False, Light.GREEN),
        (40, False, Light.GREEN),
    ],
)
def test_traffic_light(days_left: int | None, overdue: bool, expected: Light) -> None:
    assert traffic_light(days_left, overdue) is expected


def row_ids(html: str) -> list[str]:
    return _ROW.findall(html)


async def asserted(
    client: AsyncClient,
    headers: dict[str, str],
    credentials: tuple[str, str],
    *,
    days_ago: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    """A request vouched for at intake: in progress, its clock from the (back-dated) receipt."""
    client_id, secret = credentials
    subject = overrides.get("subject") or {"email": "jane.doe@example.com"}
    token = identity_assertion(
        client_id, secret, sub=subject.get("email") or subject["customer_id"]
    )
    received = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return await create_request(
        client, headers, identity_assertion=token, received_at=received, **overrides
    )


async def test_tabs_filters_and_order(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    me = await make_person(app)
    other = await make_person(app, email="sam@example.com", name="Sam Smith")
    creds = integration_credentials
    late = await asserted(client, integration_headers, creds, days_ago=61, type="erasure")
    soon = await asserted(client, integration_headers, creds, days_ago=26)
    fresh = await asserted(client, integration_headers, creds, subject={"email": "amy@example.com"})
    unverified = await create_request(
        client, integration_headers, subject={"email": "bo@example.com"}
    )
    paused = await asserted(
        client,
        integration_headers,
        creds,
        type="portability",
        subject={"phone": "+441632960001", "customer_id": "C-9"},
    )
    response = await client.post(
        f"/v1/requests/{paused['id']}/pause",
        headers=officer_headers,
        json={"reason": "awaiting_clarification"},
    )
    assert response.status_code == 200
    closed = await asserted(client, integration_headers, creds, subject={"email": "cy@example.com"})
    await client.post(f"/v1/requests/{closed['id']}/cancel", headers=officer_headers)
    for request_id, owner in ((soon["id"], me), (fresh["id"], other)):
        assigned = await client.post(
            f"/v1/requests/{request_id}/assign", headers=officer_headers, json={"assignee": owner}
        )
        assert assigned.status_code == 200, assigned.text
    due_soon = await client.get("/v1/requests?due_soon=true", headers=officer_headers)
    assert [item["id"] for item in due_soon.json()["items"]] == [soon["id"]]
    await login(client, OFFICER)

    async def board_ids(**params: str) -> list[str]:
        page = await client.get("/console", params=params)
        assert page.status_code == 200, page.text
        return row_ids(page.text)

    page = await client.get("/console")
    for label in (
        "Overdue",
        "Due within 7 days",
        "Awaiting verification",
        "Paused",
        "Unassigned",
        "Mine",
        "All open",
    ):
        assert f">{label}</a>" in page.text
    assert 'href="/console?tab=open" aria-current="page">All open</a>' in page.text
    # All open: the most urgent first, the request with no clock last; nothing closed.
    everything = row_ids(page.text)
    assert everything[:2] == [late["id"], soon["id"]]
    assert everything[-1] == unverified["id"]
    assert set(everything) == {late["id"], soon["id"], fresh["id"], unverified["id"], paused["id"]}
    assert '<span class="light light-overdue">Overdue</span>' in page.text
    assert '<span class="light light-no-clock">No clock</span>' in page.text
    assert "Sam Smith" in page.text and "Olivia Officer" in page.text
    assert f">{late['id'][:8]}<" in page.text

    assert await board_ids(tab="overdue") == [late["id"]]
    assert await board_ids(tab="due-soon") == [soon["id"]]
    assert await board_ids(tab="awaiting-verification") == [unverified["id"]]
    assert await board_ids(tab="paused") == [paused["id"]]
    assert set(await board_ids(tab="unassigned")) == {late["id"], unverified["id"], paused["id"]}
    assert await board_ids(tab="mine") == [soon["id"]]
    # Filters narrow the tab.
    assert await board_ids(tab="open", type="erasure") == [late["id"]]
    assert await board_ids(tab="open", status="paused") == [paused["id"]]
    assert await board_ids(tab="open", status="cancelled") == [closed["id"]]
    assert await board_ids(tab="paused", status="in_progress") == []
    assert await board_ids(tab="open", assignee="me") == [soon["id"]]
    assert await board_ids(tab="open", assignee=other) == [fresh["id"]]
    # An unknown tab or value shows the default board, never an error.
    assert set(await board_ids(tab="nope", type="x", page="y")) == set(everything)


async def test_duplicates_filter_and_paging(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_person(app)
    first = await asserted(client, integration_headers, integration_credentials, days_ago=20)
    second = await asserted(client, integration_headers, integration_credentials, days_ago=10)
    third = await asserted(client, integration_headers, integration_credentials)
    await login(client, OFFICER)
    duplicates = await client.get("/console", params={"tab": "open", "duplicates": "1"})
    assert set(row_ids(duplicates.text)) == {second["id"], third["id"]}
    assert "Possible duplicate" in duplicates.text

    monkeypatch.setattr(board, "PAGE_SIZE", 2)
    one = await client.get("/console")
    assert row_ids(one.text) == [first["id"], second["id"]]
    assert "Next page" in one.text and "Previous page" not in one.text
    two = await client.get("/console", params={"tab": "open", "page": "2"})
    assert row_ids(two.text) == [third["id"]]
    assert "Previous page" in two.text and "Next page" not in two.text


async def test_the_board_needs_a_login(client: AsyncClient) -> None:
    response = await client.get("/console?tab=overdue")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")
