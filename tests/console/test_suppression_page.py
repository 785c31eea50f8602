"""The console's Suppression check: the API's check, posted (never in a URL), and the list."""

import logging

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.console.helpers import login, make_person

OFFICER = "olivia.officer@example.com"
SUPPRESSED = "Jane.Doe@Example.com"


async def suppress(client: AsyncClient, headers: dict[str, str], **identity: str) -> None:
    added = await client.post(
        "/v1/suppressions", headers=headers, json={**identity, "channels": ["post", "email"]}
    )
    assert added.status_code == 201, added.text


async def test_check_answers_as_the_api_without_the_address_in_any_url(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await suppress(client, officer_headers, email="jane.doe@example.com")
    await suppress(client, officer_headers, phone="+441632960001")
    await make_person(app)
    token = await login(client, OFFICER)
    page = await client.get("/console/suppression")
    assert page.status_code == 200
    assert "<h1>Suppression check</h1>" in page.text
    assert '<label for="check-email">Email address</label>' in page.text
    assert '<label for="check-phone">Phone number</label>' in page.text
    assert '<button type="submit">Check</button>' in page.text
    assert 'method="post" action="/console/suppression"' in page.text

    caplog.set_level(logging.DEBUG)
    checks = {
        "email": (SUPPRESSED, "On the suppression list (channels: email, post)"),
        "phone": ("01632 960001", "On the suppression list (channels: email, post)"),
    }
    for field, (value, answer) in checks.items():
        response = await client.post(
            "/console/suppression", data={"csrf_token": token, field: value}
        )
        assert response.status_code == 200, response.text
        assert answer in response.text
        api = await client.post(
            "/v1/suppressions/check", headers=officer_headers, json={field: value}
        )
        assert api.json() == {"suppressed": True, "channels": ["email", "post"]}
        assert value not in str(response.url) and "location" not in response.headers
        assert value not in response.text  # not shown back either
    clear = await client.post(
        "/console/suppression", data={"csrf_token": token, "email": "someone.else@example.com"}
    )
    assert clear.status_code == 200 and "Not on the suppression list" in clear.text
    assert "someone.else" not in str(clear.url) and "someone.else" not in clear.text
    logged = caplog.text.lower()
    assert "jane.doe" not in logged and "someone.else" not in logged and "960001" not in logged


async def test_invalid_or_missing_identities_are_422_without_the_value(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    token = await login(client, OFFICER)
    empty = await client.post("/console/suppression", data={"csrf_token": token, "email": " "})
    assert empty.status_code == 422 and "Enter an email address or a phone number." in empty.text
    for field, value in (("email", "not-an-address@@"), ("phone", "12abc")):
        refused = await client.post(
            "/console/suppression", data={"csrf_token": token, field: value}
        )
        assert refused.status_code == 422, value
        assert 'class="error"' in refused.text and value not in refused.text
    long = await client.post("/console/suppression", data={"csrf_token": token, "phone": "1" * 41})
    assert long.status_code == 422


async def test_check_needs_the_csrf_token_and_a_session(app: FastAPI, client: AsyncClient) -> None:
    anonymous = await client.post("/console/suppression", data={"email": SUPPRESSED})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=/console/suppression"
    await make_person(app)
    token = await login(client, OFFICER)
    missing = await client.post("/console/suppression", data={"email": SUPPRESSED})
    wrong = await client.post(
        "/console/suppression", data={"email": SUPPRESSED, "csrf_token": token[:-2] + "xx"}
    )
    assert missing.status_code == wrong.status_code == 403
    assert "Jane" not in missing.text


async def test_entries_are_listed_and_paged_as_the_api_lists_them(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    for number in range(52):
        await suppress(client, officer_headers, email=f"person{number}@example.com")
    await make_person(app)
    await login(client, OFFICER)
    first = await client.get("/console/suppression")
    api = (await client.get("/v1/suppressions", headers=officer_headers)).json()
    assert first.status_code == 200
    assert all(item["id"] in first.text for item in api["items"])
    assert "person" not in first.text  # no plaintext identity exists to show
    older = first.text.split('href="/console/suppression?cursor=')[1].split('"')[0]
    second = await client.get(f"/console/suppression?cursor={older}")
    assert second.status_code == 200 and second.text.count("      <td><code>") == 2
    bad = await client.get("/console/suppression", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
