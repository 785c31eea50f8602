"""The board: tabs, filters, urgency order, the traffic light, paging."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.console.board import Light, traffic_light
from tests.console.helpers import login, make_person
from tests.factories import create_request, verified_request

OFFICER = "olivia.officer@example.com"


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


async def test_smoke(app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]) -> None:
    await make_person(app)
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    overdue = await verified_request(client, officer_headers, officer_headers, received_at=old)
    await create_request(client, officer_headers, type="erasure")
    await login(client, OFFICER)
    page = await client.get("/console")
    assert page.status_code == 200, page.text
    print(page.text)
    one = await client.get(f"/console/requests/{overdue['id']}")
    assert one.status_code == 200, one.text
    print(one.text)
