"""Reading the status link out of the mail a subject was sent, and using the page as they do."""

import re
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlmodel import col

from app.models import MailMessage
from tests.mail.helpers import contents

LINK = re.compile(r"https?://[^\s\"<>]+/status/([A-Za-z0-9._-]+)")
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


async def mails(app: FastAPI, request_id: str, kind: str | None = None) -> list[MailMessage]:
    async with app.state.sessionmaker() as session:
        query = select(MailMessage).where(col(MailMessage.request_id) == uuid.UUID(request_id))
        if kind is not None:
            query = query.where(col(MailMessage.kind) == kind)
        rows = await session.execute(query.order_by(col(MailMessage.created_at)))
        return list(rows.scalars())


async def text_of(app: FastAPI, mail: MailMessage) -> str:
    """The plain text the subject receives (an acknowledgement rendered as the worker does)."""
    return (await contents(app, mail)).text


async def html_of(app: FastAPI, mail: MailMessage) -> str:
    html = (await contents(app, mail)).html
    assert html is not None
    return html


async def status_path(app: FastAPI, request_id: str, kind: str = "acknowledgement") -> str:
    """``/status/<token>`` from the latest mail of this kind to the request's subject."""
    found = await mails(app, request_id, kind)
    assert found, f"no {kind} mail"
    text = await text_of(app, found[-1])
    match = LINK.search(text)
    assert match, text
    return f"/status/{match.group(1)}"


def token_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


async def page(client: AsyncClient, path: str) -> Response:
    return await client.get(path)


def form_token(html: str) -> str:
    match = FORM_TOKEN.search(html)
    assert match, "no form on the page"
    return match.group(1)


def status_text(html: str) -> str:
    match = re.search(r'id="status">([^<]*)<', html)
    assert match, "no status on the page"
    return match.group(1).strip()


async def post_form(client: AsyncClient, path: str, action: str, **fields: Any) -> Response:
    """Post a form of the page as a browser does (urlencoded), with the page's form token
    unless one is given."""
    if "form_token" not in fields:
        fields["form_token"] = form_token((await client.get(path)).text)
    return await client.post(f"{path}/{action}", data=fields)
