"""What the subject is told when fulfilment completes a request."""

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.time import hours_in_words
from app.demo import JANE_DOE
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait


async def test_completion_summary_says_how_long_the_links_live_in_words(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    subject = {"email": JANE_DOE["email"]}
    dsr = await verified_request(client, integration_headers, officer_headers, subject=subject)
    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed"
    assert done["completion_summary"].endswith("expire after 7 days.")  # DSR_EXPORT_TTL_HOURS=168


@pytest.mark.parametrize(
    ("hours", "words"),
    [(1, "1 hour"), (12, "12 hours"), (24, "1 day"), (36, "36 hours"), (168, "7 days")],
)
def test_link_lifetimes_read_as_a_person_says_them(hours: int, words: str) -> None:
    assert hours_in_words(hours) == words
