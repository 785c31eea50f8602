"""The board's order (``service.list_by_urgency``) and the actions each status allows."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.auth.scopes import ROLE_SCOPES, Principal, Role
from app.core.time import utcnow
from app.enums import RequestStatus
from app.models import DsrRequest
from app.requests import lifecycle, service
from tests.factories import create_request, identity_assertion

OFFICER = Principal(client_id="officer", role=Role.OFFICER, scopes=ROLE_SCOPES[Role.OFFICER])


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("awaiting_verification", {"verify", "reject", "cancel"}),
        ("in_progress", {"pause", "extend", "reject", "cancel", "complete", "fulfil"}),
        ("paused", {"resume", "extend", "reject", "cancel"}),
        ("completed", set()),
        ("rejected", set()),
        ("cancelled", set()),
    ],
)
def test_allowed_actions_follow_the_transition_table(status: str, expected: set[str]) -> None:
    dsr = DsrRequest(
        type="access",
        status=RequestStatus(status).value,
        regulation="uk_gdpr",
        channel="api",
        received_at=datetime.now(UTC),
        submitted_by="x",
    )
    assert {action.value for action in lifecycle.allowed_actions(dsr)} == expected


async def test_list_by_urgency_soonest_due_first_no_clock_last(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    client_id, secret = integration_credentials

    async def asserted(days_ago: int) -> str:
        received = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
        token = identity_assertion(client_id, secret)
        created = await create_request(
            client, integration_headers, identity_assertion=token, received_at=received
        )
        return str(created["id"])

    no_clock = str((await create_request(client, integration_headers))["id"])
    recent = await asserted(1)
    oldest = await asserted(50)
    middle = await asserted(20)
    async with app.state.sessionmaker() as session:
        settings = app.state.settings

        async def page(offset: int, limit: int = 2) -> tuple[list[str], bool]:
            rows, more = await service.list_by_urgency(
                session,
                principal=OFFICER,
                filters=service.RequestFilters(open_only=True),
                settings=settings,
                now=utcnow(),
                limit=limit,
                offset=offset,
            )
            return [str(row.id) for row in rows], more

        assert await page(0, 10) == ([oldest, middle, recent, no_clock], False)
        assert await page(0) == ([oldest, middle], True)
        assert await page(2) == ([recent, no_clock], False)
