"""Logging in: sessions, fixation, cookie flags, TOTP, failure limits, timeouts, logout."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from app.accounts import service, sessions, totp
from app.auth.scopes import Role
from app.main import create_app
from app.models import BrowserSession, User
from tests.conftest import make_settings
from tests.console.helpers import PASSWORD, csrf_token, login, login_response, make_person

EMAIL = "olivia.officer@example.com"


def session_cookie(client: AsyncClient) -> str | None:
    return client.cookies.get(sessions.COOKIE_NAME)


def present_cookie(client: AsyncClient, value: str) -> None:
    """The browser holds ``value`` as its session cookie (where the server's would go)."""
    client.cookies.set(sessions.COOKIE_NAME, value, domain="testserver.local", path="/")


async def test_login_sets_a_new_httponly_lax_session_cookie_and_stores_only_its_hash(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    page = await client.get("/console")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=/console"
    response = await login_response(client, EMAIL, PASSWORD, next_path="/console/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/account"
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("dsr_session=")
    )
    flags = {part.strip().lower() for part in header.split(";")}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # development over http
    value = session_cookie(client)
    assert value
    async with app.state.sessionmaker() as session:
        stored = (await session.execute(select(BrowserSession.id))).scalars().all()
    assert stored == [sessions.session_id(value)]
    assert value not in stored


async def test_the_cookie_is_secure_in_production_settings(database_url: str) -> None:
    settings = make_settings(
        database_url,
        env="production",
        secret_key="p" * 40,
        smtp_host="localhost",
        smtp_from="privacy@example.com",
        public_url="https://dsr.example.com",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await make_person(app)
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="https://testserver") as browser:
            response = await login_response(browser, EMAIL, PASSWORD)
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("dsr_session=")
    )
    assert "secure" in {part.strip().lower() for part in header.split(";")}


async def test_a_cookie_presented_before_login_is_never_promoted(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    present_cookie(client, "attacker-chosen-value")
    await login(client, EMAIL)
    assert session_cookie(client) != "attacker-chosen-value"
    # An old session of the same browser is ended, not carried over.
    old = session_cookie(client)
    await login(client, EMAIL)
    new = session_cookie(client)
    assert new != old
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as other:
        present_cookie(other, old or "")
        assert (await other.get("/console")).status_code == 303
        present_cookie(other, "attacker-chosen-value")
        assert (await other.get("/console")).status_code == 303


async def test_wrong_passwords_and_unknown_accounts_get_the_same_answer(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    wrong = await login_response(client, EMAIL, "not the password at all")
    unknown = await login_response(client, "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "is not correct" in wrong.text
    assert wrong.text.replace(EMAIL, "X") == unknown.text.replace("nobody@example.com", "X")
    assert session_cookie(client) is None


async def test_five_failures_lock_the_account_for_15_minutes_known_or_not(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    start = datetime.now(UTC)
    app.state.clock = lambda: start
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(5):
            assert (await login_response(client, email, "wrong password!!")).status_code == 401
    locked = await login_response(client, EMAIL, PASSWORD)
    locked_unknown = await login_response(client, "nobody@example.com", PASSWORD)
    assert locked.status_code == locked_unknown.status_code == 429
    assert "Too many failed attempts" in locked.text
    assert locked.text.replace(EMAIL, "X") == locked_unknown.text.replace("nobody@example.com", "X")
    app.state.clock = lambda: start + timedelta(minutes=16)
    assert (await login_response(client, EMAIL, PASSWORD)).status_code == 303


async def test_twenty_failures_from_one_address_lock_that_address(
    app: FastAPI, client: AsyncClient
) -> None:
    await make_person(app)
    for n in range(20):
        response = await login_response(client, f"guess{n}@example.com", "wrong password!!")
        assert response.status_code == 401
    assert (await login_response(client, EMAIL, PASSWORD)).status_code == 429


async def test_totp_enrol_confirm_login_and_replay_refused(
    app: FastAPI, client: AsyncClient
) -> None:
    user_id = await make_person(app)
    start = datetime(2026, 12, 7, 9, 0, 5, tzinfo=UTC)
    app.state.clock = lambda: start
    token = await login(client, EMAIL)
    enrol = await client.post("/console/account/totp/start", data={"csrf_token": token})
    assert enrol.status_code == 200
    async with app.state.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None and not user.totp_enabled
        secret = service.totp_secret(user, app.state.settings)
        assert secret and user.totp_secret_encrypted and secret not in user.totp_secret_encrypted
    assert secret in enrol.text and "otpauth://totp/" in enrol.text
    wrong = await client.post(
        "/console/account/totp/confirm", data={"csrf_token": token, "code": "000000"}
    )
    assert wrong.status_code == 422
    confirmed = await client.post(
        "/console/account/totp/confirm",
        data={"csrf_token": token, "code": totp.code_at(secret, start)},
    )
    assert confirmed.status_code == 303, confirmed.text

    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as browser:
        # The password alone only opens the code step.
        app.state.clock = lambda: start + timedelta(seconds=60)
        first = await login_response(browser, EMAIL, PASSWORD)
        assert first.status_code == 303 and first.headers["location"].startswith(
            "/console/login/code"
        )
        pending = session_cookie(browser)
        assert (await browser.get("/console")).status_code == 303
        code_page = await browser.get("/console/login/code")
        token = csrf_token(code_page.text)
        code = totp.code_at(secret, start + timedelta(seconds=60))
        refused = await browser.post(
            "/console/login/code", data={"csrf_token": token, "code": "123456"}
        )
        assert refused.status_code == 401
        accepted = await browser.post(
            "/console/login/code", data={"csrf_token": token, "code": code, "next": "/console"}
        )
        assert accepted.status_code == 303 and accepted.headers["location"] == "/console"
        assert session_cookie(browser) != pending
        assert (await browser.get("/console")).status_code == 200

    async with AsyncClient(transport=transport, base_url="http://testserver") as replay:
        await login_response(replay, EMAIL, PASSWORD)
        token = csrf_token((await replay.get("/console/login/code")).text)
        again = await replay.post("/console/login/code", data={"csrf_token": token, "code": code})
        assert again.status_code == 401
        assert (await replay.get("/console")).status_code == 303


@pytest.mark.parametrize(
    ("idle", "expected"),
    [(timedelta(minutes=29), 200), (timedelta(minutes=31), 303)],
)
async def test_idle_timeout(
    app: FastAPI, client: AsyncClient, idle: timedelta, expected: int
) -> None:
    await make_person(app)
    start = datetime.now(UTC)
    app.state.clock = lambda: start
    await login(client, EMAIL)
    app.state.clock = lambda: start + idle
    assert (await client.get("/console")).status_code == expected


async def test_absolute_timeout_even_when_active(app: FastAPI, client: AsyncClient) -> None:
    await make_person(app)
    start = datetime.now(UTC)
    app.state.clock = lambda: start
    await login(client, EMAIL)
    statuses = []
    # A page every 20 minutes (never idle) up to 11 h 40 min: still signed in.
    for moment in [start + timedelta(minutes=20 * n) for n in range(1, 36)]:
        app.state.clock = lambda moment=moment: moment
        statuses.append((await client.get("/console")).status_code)
    assert set(statuses) == {200}
    app.state.clock = lambda: start + timedelta(hours=12, minutes=1)
    assert (await client.get("/console")).status_code == 303


async def test_logout_ends_the_session(app: FastAPI, client: AsyncClient) -> None:
    await make_person(app)
    token = await login(client, EMAIL)
    value = session_cookie(client)
    response = await client.post("/console/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    async with app.state.sessionmaker() as session:
        row = await session.get(BrowserSession, sessions.session_id(value or ""))
        assert row is not None and row.ended_at is not None
    present_cookie(client, value or "")
    assert (await client.get("/console")).status_code == 303


async def test_only_local_next_paths_are_followed(app: FastAPI, client: AsyncClient) -> None:
    await make_person(app)
    for evil in ("https://evil.example/", "//evil.example/console", "/console\\@evil", "/consolex"):
        response = await login_response(client, EMAIL, PASSWORD, next_path=evil)
        assert response.headers["location"] == "/console", evil


async def test_a_new_person_must_change_the_temporary_password_first(
    app: FastAPI, client: AsyncClient
) -> None:
    async with app.state.sessionmaker() as session:
        _user, temporary = await service.create_user(
            session,
            email="new@example.com",
            name="New Person",
            role=Role.OFFICER,
            actor="test",
            now=datetime.now(UTC),
        )
        await session.commit()
    await login_response(client, "new@example.com", temporary)
    account = await client.get("/console/account")
    assert "temporary password" in account.text
    token = csrf_token(account.text)
    weak = await client.post(
        "/console/account/password",
        data={
            "csrf_token": token,
            "current_password": temporary,
            "new_password": "password1234",
            "confirm_password": "password1234",
        },
    )
    assert weak.status_code == 422 and "common" in weak.text
    good = await client.post(
        "/console/account/password",
        data={
            "csrf_token": token,
            "current_password": temporary,
            "new_password": "tulip orbit canyon 7",
            "confirm_password": "tulip orbit canyon 7",
        },
    )
    assert good.status_code == 303
    assert (await client.get("/console")).status_code == 200
