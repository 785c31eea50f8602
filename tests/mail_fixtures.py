"""Fixtures for tests that send mail through a real SMTP server on loopback, driven by an
explicit worker. Import them into a conftest or test module; override ``mail_sender`` there
to send from another address."""

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.worker import Worker
from tests.conftest import make_settings
from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def mail_sender() -> str:
    return "privacy@controller.example"


@pytest.fixture
def settings(database_url: str, smtp: SmtpServer, mail_sender: str) -> Settings:
    return make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from=mail_sender
    )


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()
