from httpx import AsyncClient

from tests.factories import create_request, verified_request


async def test_create_and_verify_flow(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    created = await create_request(client, integration_headers)
    assert created["status"] == "awaiting_verification"
    assert created["deadline"]["due_date"] is None
    verified = await verified_request(client, integration_headers, officer_headers)
    assert verified["status"] == "in_progress"
    assert verified["deadline"]["due_date"] is not None
    events = await client.get(f"/v1/requests/{verified['id']}/events", headers=officer_headers)
    assert [e["type"] for e in events.json()["items"]] == ["request.received", "request.verified"]
