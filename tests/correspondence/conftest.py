"""Correspondence tests: a real SMTP server, the app's clock under the test's control."""

from datetime import datetime, timedelta

import pytest

from tests.mail_fixtures import settings, smtp, worker  # noqa: F401 (fixtures)

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
def mail_sender() -> str:
    return SENDER
