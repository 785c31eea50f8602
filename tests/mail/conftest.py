"""Mail tests send through a real SMTP server on loopback, driven by an explicit worker."""

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.worker import Worker
from tests.conftest import make_settings
from tests.mail.helpers import SENDER
from tests.smtp_server import SmtpServer


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
