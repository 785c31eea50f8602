"""A fault in the service's own code fails the job at once, logged without personal data.

Retrying cannot mend a bug, so the job must not go round the whole backoff (about an hour
and three quarters with the default five attempts); the worker log gets the traceback, but
never an exception's message, which may quote the subject's data.
"""

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.core.config import Settings
from app.demo import JANE_DOE
from app.models import FulfilmentJob
from app.register import service as register
from app.worker import Worker
from tests.conftest import make_settings
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait
from tests.smtp_server import SmtpServer

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe", "phone": JANE_DOE["phone"]}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    # The default attempts: a retryable failure would be queued again, not failed.
    return make_settings(
        database_url,
        export_dir=str(tmp_path / "exports"),
        public_url="http://testserver",
        fulfilment_max_attempts=5,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="privacy@controller.example",
    )


async def test_an_unexpected_exception_fails_the_job_at_once_without_personal_data_in_the_log(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        # A bug whose message quotes the subject, as a KeyError on a data value would.
        raise ValueError(f"no entry for {JANE_DOE['email']} / {JANE_DOE['phone']}")

    monkeypatch.setattr(register, "supplementary_information", broken)
    caplog.set_level(logging.DEBUG)
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "in_progress"
    assert done["fulfilment"]["status"] == "failed", done["fulfilment"]
    assert done["fulfilment"]["error"] == "internal error (ValueError)"
    async with app.state.sessionmaker() as session:
        (job,) = (await session.execute(select(FulfilmentJob))).scalars()
    assert (job.status, job.attempt_count) == ("failed", 1)

    (logged,) = [
        record
        for record in caplog.records
        if record.name == "app.fulfilment" and record.levelno >= logging.ERROR
    ]
    message = logged.getMessage()
    assert "Traceback" in message and "ValueError" in message
    assert "runner.py" in message and "broken" in message  # where it happened
    assert logged.exc_info is None  # the standard formatting would print the message
    # The service's own log lines (the test SMTP server logs its recipients itself).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app"))
    for value in (JANE_DOE["email"], JANE_DOE["phone"], "jane.doe"):
        assert value not in ours
