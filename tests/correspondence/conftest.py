"""Correspondence tests: a real SMTP server, the app's clock under the test's control."""

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.worker import Worker
from tests.conftest import make_settings
from tests.smtp_server import SmtpServer

SENDER = "Privacy Team <privacy@controller.example>"


class FakeClock:
    """Stands in for ``app.state.clock``: time moves only when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(database_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from=SENDER)


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()
