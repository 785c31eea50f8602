"""Console pages: CSRF on every form, admin-only pages, security headers, acting as the person."""

from fastapi import FastAPI
from httpx import AsyncClient

from app.auth.scopes import Role
from tests.console.helpers import csrf_token, login, make_person
from tests.factories import create_request

OFFICER = "olivia.officer@example.com"
ADMIN = "ada.admin@example.com"


async def test_every_console_post_needs_the_sessions_csrf_token(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app, email=ADMIN, role=Role.ADMIN, name="Ada Admin")
    token = await login(client, ADMIN)
    for url in (
        "/console/logout",
        "/console/account/password",
        "/console/account/totp/start",
        "/console/users",
    ):
        missing = await client.post(url, data={})
        wrong = await client.post(url, data={"csrf_token": token[:-2] + "xx"})
        assert missing.status_code == wrong.status_code == 403, url
        assert "text/html" in missing.headers["content-type"]
    # Still signed in: the refused logout did nothing.
    assert (await client.get("/console")).status_code == 200
    # The login form has its own token too.
    refused = await client.post("/console/login", data={"email": ADMIN, "password": "x" * 12})
    assert refused.status_code == 403


async def test_an_officer_cannot_reach_the_users_pages_nor_the_admin_api(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    token = await login(client, OFFICER)
    page = await client.get("/console/users")
    assert page.status_code == 403 and "for admins" in page.text
    created = await client.post(
        "/console/users",
        data={"csrf_token": token, "email": "x@example.com", "role": "admin"},
    )
    assert created.status_code == 403
    # A console session is not an API credential.
    assert (await client.get("/v1/users")).status_code == 401
    board = await client.get("/console")
    assert 'href="/console/users"' not in board.text


async def test_admin_creates_resets_and_disables_people_in_the_console(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_person(app, email=ADMIN, role=Role.ADMIN, name="Ada Admin")
    token = await login(client, ADMIN)
    page = await client.get("/console/users")
    assert page.status_code == 200 and 'href="/console/users"' in page.text
    created = await client.post(
        "/console/users",
        data={"csrf_token": token, "email": "Sam@Example.com", "name": "Sam", "role": "officer"},
    )
    assert created.status_code == 201, created.text
    listed = (await client.get("/v1/users", headers=admin_headers)).json()["items"]
    sam = next(u for u in listed if u["email"] == "sam@example.com")
    reset = await client.post(
        f"/console/users/{sam['id']}/reset-password", data={"csrf_token": token}
    )
    assert reset.status_code == 200 and "Password reset" in reset.text
    disabled = await client.post(f"/console/users/{sam['id']}/disable", data={"csrf_token": token})
    assert disabled.status_code == 303
    got = await client.get(f"/v1/users/{sam['id']}", headers=admin_headers)
    assert got.json()["active"] is False
    own = next(u for u in listed if u["email"] == ADMIN)
    refused = await client.post(f"/console/users/{own['id']}/disable", data={"csrf_token": token})
    assert refused.status_code == 409
    duplicate = await client.post(
        "/console/users",
        data={"csrf_token": token, "email": "sam@example.com", "role": "officer"},
    )
    assert duplicate.status_code == 409


async def test_console_pages_carry_the_security_headers(app: FastAPI, client: AsyncClient) -> None:
    await make_person(app)
    login_page = await client.get("/console/login")
    await login(client, OFFICER)
    for response in (
        login_page,
        await client.get("/console"),
        await client.get("/console/account"),
    ):
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
        assert '<html lang="en">' in response.text and 'name="viewport"' in response.text
        assert "<script" not in response.text and "style=" not in response.text
    css = await client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await client.get("/console/static/../models.py")).status_code == 404


async def test_every_input_has_a_label(app: FastAPI, client: AsyncClient) -> None:
    import re

    await make_person(app, email=ADMIN, role=Role.ADMIN, name="Ada Admin")
    pages = [(await client.get("/console/login")).text]
    await login(client, ADMIN)
    for url in ("/console", "/console/account", "/console/users"):
        pages.append((await client.get(url)).text)
    for html in pages:
        for field in re.findall(r"<input [^>]*>", html):
            # Hidden inputs (the CSRF token, the account name for password managers) are
            # never shown, so nobody needs a label for them.
            if 'type="hidden"' in field or re.search(r"\shidden[\s>]", field):
                continue
            field_id = re.search(r'id="([^"]+)"', field)
            assert field_id and f'for="{field_id.group(1)}"' in html, field
        assert 'class="skip-link" href="#main"' in html and '<main id="main"' in html


async def test_a_console_action_is_audited_as_the_person(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    user_id = await make_person(app)
    created = await create_request(client, officer_headers)
    token = await login(client, OFFICER)
    board = await client.get("/console")
    assert board.status_code == 200 and "<h1>Board</h1>" in board.text
    assert created["type"] in board.text
    taken = await client.post(
        f"/console/requests/{created['id']}/assign", data={"csrf_token": token, "assignee": "me"}
    )
    assert taken.status_code == 303, taken.text
    events = await client.get(f"/v1/requests/{created['id']}/events", headers=officer_headers)
    assigned = [e for e in events.json()["items"] if e["type"] == "request.assigned"]
    assert [(e["actor"], e["data"]["assignee"]) for e in assigned] == [(user_id, user_id)]
    fetched = await client.get(f"/v1/requests/{created['id']}", headers=officer_headers)
    assert fetched.json()["assignee"] == user_id
    assert csrf_token((await client.get("/console")).text) == token
