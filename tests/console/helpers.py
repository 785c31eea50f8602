"""Shared by the console tests: people with known passwords, logging in, posting forms."""

import re
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response

from app.accounts import passwords, service
from app.auth.scopes import Role
from app.core.time import utcnow

PASSWORD = "correct horse battery staple 42"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_person(
    app: FastAPI,
    *,
    email: str = "olivia.officer@example.com",
    role: Role = Role.OFFICER,
    password: str = PASSWORD,
    name: str = "Olivia Officer",
    now: datetime | None = None,
) -> str:
    """A person with ``password`` as their own password (no change asked); their user id."""
    async with app.state.sessionmaker() as session:
        user, _temporary = await service.create_user(
            session, email=email, name=name, role=role, actor="test", now=now or utcnow()
        )
        user.password_hash = passwords.hash_password(password)
        user.must_change_password = False
        await session.commit()
        return user.id


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "no csrf_token on the page"
    return found.group(1)


async def login_response(
    client: AsyncClient, email: str, password: str, *, next_path: str = "/console"
) -> Response:
    """Post the login form as a browser would (the form's token from the login page)."""
    page = await client.get("/console/login")
    assert page.status_code == 200, page.text
    return await client.post(
        "/console/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_token(page.text),
            "next": next_path,
        },
    )


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Log ``client`` in (its cookie jar keeps the session) and return the session's CSRF
    token, to post with: ``client.post(url, data={"csrf_token": token, ...})``."""
    response = await login_response(client, email, password)
    assert response.status_code == 303, response.text
    board = await client.get("/console/account")
    assert board.status_code == 200, board.text
    return csrf_token(board.text)


async def post_form(client: AsyncClient, url: str, token: str | None, **fields: Any) -> Response:
    data = {**fields}
    if token is not None:
        data["csrf_token"] = token
    return await client.post(url, data=data)
