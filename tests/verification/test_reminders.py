"""The one reminder to confirm identity (DSR_VERIFICATION_REMINDER_DAYS), on SQLite and
PostgreSQL, delivered through a real SMTP server; and the acknowledgement that announces it."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.time import utcnow
from app.deadlines import local_date
from app.models import DsrRequest, MailMessage, RequestEvent
from app.verification import reminders
from app.worker import Worker
from tests.conftest import make_settings
from tests.factories import create_request, verified_request
from tests.mail.helpers import contents
from tests.smtp_server import SmtpServer

EMAIL = "jane.doe@example.com"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(database_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="privacy@ctl.example"
    )


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()


async def logged_days_ago(
    app: FastAPI, client: AsyncClient, headers: dict[str, str], days: float, **overrides: Any
) -> str:
    """A request received and logged ``days`` ago (the log time is moved back directly)."""
    then = utcnow() - timedelta(days=days)
    body = {"channel": "post", "received_at": then.isoformat(), **overrides}
    request_id = str((await create_request(client, headers, **body))["id"])
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(DsrRequest).where(DsrRequest.id == uuid.UUID(request_id)).values(created_at=then)  # type: ignore[arg-type]
        )
    return request_id


async def reminder_rows(app: FastAPI) -> list[MailMessage]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(MailMessage).where(MailMessage.kind == "verification_reminder")  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def test_one_reminder_per_unverified_request_once_due(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    worker: Worker,
    smtp: SmtpServer,
) -> None:
    due = await logged_days_ago(app, client, integration_headers, 8)
    await logged_days_ago(app, client, integration_headers, 3)  # not yet due
    await logged_days_ago(app, client, integration_headers, 8, subject={"phone": "+441632960001"})
    await logged_days_ago(app, client, integration_headers, 31)  # expires instead
    verified = await verified_request(
        client,
        integration_headers,
        officer_headers,
        channel="post",
        received_at=(utcnow() - timedelta(days=8)).isoformat(),
    )
    # Back-dated to its receipt 8 days ago, but logged today: not reminded yet.
    await create_request(
        client,
        integration_headers,
        channel="post",
        received_at=(utcnow() - timedelta(days=8)).isoformat(),
    )
    async with app.state.sessionmaker.begin() as session:
        await session.execute(
            update(DsrRequest)
            .where(DsrRequest.id == uuid.UUID(verified["id"]))  # type: ignore[arg-type]
            .values(created_at=utcnow() - timedelta(days=8))
        )

    await worker.sweep()
    (row,) = await reminder_rows(app)
    assert str(row.request_id) == due
    await worker.sweep()
    assert len(await reminder_rows(app)) == 1  # once

    async with app.state.sessionmaker() as session:
        (entry,) = (
            await session.execute(
                select(RequestEvent).where(
                    RequestEvent.type == "request.verification_reminder_sent"  # type: ignore[arg-type]
                )
            )
        ).scalars()
    assert str(entry.request_id) == due and entry.actor == "system"
    assert entry.data["queued"] is True and EMAIL not in str(entry.data)

    smtp.messages.clear()
    async with app.state.sessionmaker.begin() as session:
        for message in (await session.execute(select(MailMessage))).scalars():
            if message.kind != "verification_reminder":
                message.status = "sent"
    await worker.run_once(sweep=False)
    (mail,) = smtp.messages
    assert mail.rcpt_tos == [EMAIL]
    assert str(mail.message["Subject"]) == (
        "Please confirm your identity so that we can act on your request"
    )
    text = " ".join(mail.part("text/plain").split())
    assert "we have not yet been able to confirm your identity" in text
    assert "a one-time code that we email to this address" in text
    assert "or to ask us for a code" in text
    closes = local_date(utcnow() + timedelta(days=22), ZoneInfo("Europe/London"))
    assert f"{closes.day} {closes.strftime('%B %Y')}, we will close the request" in text
    assert f"Our reference: {due}" in text


async def test_concurrent_sweeps_send_the_reminder_once(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str], settings: Settings
) -> None:
    for _ in range(3):
        await logged_days_ago(app, client, integration_headers, 10)

    async def sweep() -> int:
        async with app.state.sessionmaker.begin() as session:
            return await reminders.send_verification_reminders(
                session, settings=settings, now=utcnow()
            )

    counts = await asyncio.gather(sweep(), sweep())
    assert sum(counts) == 3
    assert len(await reminder_rows(app)) == 3


async def test_zero_days_disables_the_reminder(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str], settings: Settings
) -> None:
    await logged_days_ago(app, client, integration_headers, 10)
    disabled = settings.model_copy(update={"verification_reminder_days": 0})
    async with app.state.sessionmaker.begin() as session:
        assert (
            await reminders.send_verification_reminders(session, settings=disabled, now=utcnow())
            == 0
        )
    assert await reminder_rows(app) == []


async def test_acknowledgement_announces_the_reminder_and_the_closure(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    await create_request(client, integration_headers)
    async with app.state.sessionmaker() as session:
        (ack,) = (
            await session.execute(
                select(MailMessage).where(MailMessage.kind == "acknowledgement")  # type: ignore[arg-type]
            )
        ).scalars()
    rendered = await contents(app, ack)
    assert rendered.html is not None
    for part in (rendered.text, rendered.html):
        body = " ".join(part.split())
        assert "If your identity is not confirmed within 30 days, we will close the request" in (
            body
        )
        assert "we will send you one reminder 7 days after this message" in body
