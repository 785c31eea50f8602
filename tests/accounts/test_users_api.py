"""The /v1/users API (admins): create, list, read, disable, enable, reset password."""

import logging

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.auth.test_authorization import assert_problem
from tests.console.helpers import login, login_response


async def create(client: AsyncClient, headers: dict[str, str], **body: str) -> dict[str, str]:
    payload = {"email": "Sam.Officer@Example.com", "name": "Sam Officer", "role": "officer"}
    response = await client.post("/v1/users", headers=headers, json={**payload, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_admin_creates_a_person_who_logs_in_with_the_temporary_password(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="app.audit"):
        created = await create(client, admin_headers)
    assert created["id"].startswith("usr_")
    assert created["email"] == "sam.officer@example.com"
    assert created["must_change_password"] is True and created["active"] is True
    assert len(created["temporary_password"]) >= 12
    # Audited as the admin client, naming the account by id only.
    assert any(
        "user.created" in r.message
        and created["id"] in r.message
        and "test-admin" in r.message
        and "sam.officer" not in r.message
        for r in caplog.records
    )

    listed = await client.get("/v1/users", headers=admin_headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert listed.json()["next_cursor"] is None
    assert "temporary_password" not in listed.json()["items"][0]
    one = await client.get(f"/v1/users/{created['id']}", headers=admin_headers)
    assert one.status_code == 200 and one.json()["email"] == created["email"]

    # The temporary password works once, and leads to the password change.
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as browser:
        response = await login_response(
            browser, "sam.officer@example.com", created["temporary_password"]
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/console/account"
        board = await browser.get("/console")
        assert board.status_code == 303 and board.headers["location"] == "/console/account"


async def test_duplicates_bad_roles_and_unknown_ids(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    await create(client, admin_headers)
    duplicate = await client.post(
        "/v1/users",
        headers=admin_headers,
        json={"email": "SAM.OFFICER@example.com", "role": "admin"},
    )
    assert_problem(duplicate, 409)
    for body in (
        {"email": "x@example.com", "role": "integration"},
        {"email": "not-an-address", "role": "officer"},
        {"email": "x@example.com", "role": "officer", "extra": 1},
    ):
        assert_problem(await client.post("/v1/users", headers=admin_headers, json=body), 422)
    assert_problem(await client.get("/v1/users/usr_nobody", headers=admin_headers), 404)
    assert_problem(await client.post("/v1/users/usr_x/disable", headers=admin_headers), 404)
    assert_problem(
        await client.get("/v1/users", headers=admin_headers, params={"cursor": "!"}), 400
    )


async def test_list_pages_newest_first(client: AsyncClient, admin_headers: dict[str, str]) -> None:
    ids = [(await create(client, admin_headers, email=f"p{n}@example.com"))["id"] for n in range(3)]
    first = await client.get("/v1/users", headers=admin_headers, params={"limit": 2})
    second = await client.get(
        "/v1/users",
        headers=admin_headers,
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    listed = [i["id"] for i in first.json()["items"] + second.json()["items"]]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == 3
    assert second.json()["next_cursor"] is None


async def test_disable_enable_and_reset_end_the_persons_sessions(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await create(client, admin_headers)
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as browser:
        email, temporary = created["email"], created["temporary_password"]
        await login_response(browser, email, temporary)
        token = (await browser.get("/console/account")).text
        from tests.console.helpers import csrf_token

        changed = await browser.post(
            "/console/account/password",
            data={
                "csrf_token": csrf_token(token),
                "current_password": temporary,
                "new_password": "tulip orbit canyon 7",
                "confirm_password": "tulip orbit canyon 7",
            },
        )
        assert changed.status_code == 303, changed.text
        assert (await browser.get("/console")).status_code == 200

        disabled = await client.post(f"/v1/users/{created['id']}/disable", headers=admin_headers)
        assert disabled.status_code == 200 and disabled.json()["active"] is False
        assert (await browser.get("/console")).status_code == 303
        refused = await login_response(browser, email, "tulip orbit canyon 7")
        assert refused.status_code == 401

        enabled = await client.post(f"/v1/users/{created['id']}/enable", headers=admin_headers)
        assert enabled.json()["active"] is True
        await login(browser, email, "tulip orbit canyon 7")
        assert (await browser.get("/console")).status_code == 200

        reset = await client.post(
            f"/v1/users/{created['id']}/reset-password", headers=admin_headers
        )
        assert reset.status_code == 200, reset.text
        assert reset.headers["cache-control"] == "no-store"
        assert (await browser.get("/console")).status_code == 303
        assert (await login_response(browser, email, "tulip orbit canyon 7")).status_code == 401
        again = await login_response(browser, email, reset.json()["temporary_password"])
        assert again.headers["location"] == "/console/account"


async def test_officers_and_integrations_cannot_manage_people(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    created = await create(client, admin_headers)
    for headers in (officer_headers, integration_headers):
        assert_problem(
            await client.post(
                "/v1/users", headers=headers, json={"email": "z@example.com", "role": "admin"}
            ),
            403,
        )
        assert_problem(await client.get("/v1/users", headers=headers), 403)
        assert_problem(
            await client.post(f"/v1/users/{created['id']}/reset-password", headers=headers), 403
        )
    assert_problem(await client.get("/v1/users"), 401)
