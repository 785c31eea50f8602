"""Every list refuses query parameters it does not know: a misspelt filter must not list
everything. The answer names the parameter, never its value (nor a name that looks like
personal data)."""

from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import create_request

PROBLEM_JSON = "application/problem+json"
SECRET_VALUE = "zebulon-quixote-secret"

# Each list route, as an officer or admin calls it, with a parameter it does accept.
LIST_ROUTES = [
    ("/v1/requests", {"status": "in_progress"}),
    ("/v1/requests/{request_id}/events", {"limit": "10"}),
    ("/v1/requests/{request_id}/exports", {}),
    ("/v1/requests/{request_id}/tasks", {}),
    ("/v1/webhooks", {"limit": "10"}),
    ("/v1/webhooks/{webhook_id}/deliveries", {"status": "pending"}),
    ("/v1/suppressions", {"limit": "10"}),
    ("/v1/data-sources", {"limit": "10"}),
]


@pytest.fixture
async def ids(client: AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    request = await create_request(client, admin_headers)
    webhook = await client.post(
        "/v1/webhooks",
        headers=admin_headers,
        json={"url": "http://127.0.0.1:9/hook", "events": ["request.*"]},
    )
    assert webhook.status_code == 201, webhook.text
    return {"request_id": request["id"], "webhook_id": webhook.json()["id"]}


def assert_refused(response: Any, *loc: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == 422
    assert [error["loc"] for error in body["errors"]] == [["query", *loc]]
    assert body["errors"][0]["type"] == "extra_forbidden"
    assert SECRET_VALUE not in response.text


@pytest.mark.parametrize(("route", "accepted"), LIST_ROUTES, ids=[r for r, _ in LIST_ROUTES])
async def test_every_list_refuses_an_unknown_parameter_naming_it(
    client: AsyncClient,
    admin_headers: dict[str, str],
    ids: dict[str, str],
    route: str,
    accepted: dict[str, str],
) -> None:
    path = route.format(**ids)
    known = await client.get(path, headers=admin_headers, params=accepted)
    assert known.status_code == 200, known.text
    misspelt = await client.get(
        path, headers=admin_headers, params={**accepted, "staus": SECRET_VALUE}
    )
    assert_refused(misspelt, "staus")


async def test_the_board_refuses_misspelt_filters_instead_of_listing_everything(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await create_request(client, officer_headers)
    for params in ({"overdu": "true"}, {"due-soon": "true"}, {"Status": "completed"}):
        response = await client.get("/v1/requests", headers=officer_headers, params=params)
        assert_refused(response, next(iter(params)))


async def test_a_parameter_name_that_looks_like_personal_data_is_not_echoed(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/v1/requests",
        headers=officer_headers,
        params={"zebulon.quixote@example.org": SECRET_VALUE},
    )
    assert_refused(response, "<redacted>")
    assert "zebulon" not in response.text.lower()


async def test_the_search_route_takes_its_filters_in_the_body_only(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/requests/search",
        headers=officer_headers,
        params={"subject_email": SECRET_VALUE},
        json={},
    )
    assert_refused(response, "subject_email")


async def test_a_caller_without_a_token_is_401_before_its_parameters_are_judged(
    client: AsyncClient,
) -> None:
    response = await client.get("/v1/requests", params={"staus": SECRET_VALUE})
    assert response.status_code == 401, response.text
