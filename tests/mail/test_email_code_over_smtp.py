"""The whole email-code flow over a real SMTP server: API -> mail outbox -> worker -> inbox."""

import re

from httpx import AsyncClient

from app.worker import Worker
from tests.factories import create_request
from tests.mail.helpers import SENDER
from tests.smtp_server import SmtpServer

SUBJECT_EMAIL = "olwen.codes@example.com"


def _code_in(text: str) -> str:
    """The code stands alone on its line (the reference elsewhere may hold digit runs)."""
    codes = re.findall(r"^\s*(\d{6})\s*$", text, flags=re.MULTILINE)
    assert len(codes) == 1, codes
    return str(codes[0])


async def test_subject_receives_a_code_by_email_and_confirming_it_starts_the_clock(
    client: AsyncClient,
    worker: Worker,
    smtp: SmtpServer,
    integration_headers: dict[str, str],
) -> None:
    created = await create_request(
        client, integration_headers, subject={"email": SUBJECT_EMAIL, "name": "Olwen Codes"}
    )
    base = f"/v1/requests/{created['id']}/verification"
    sent = await client.post(base, headers=integration_headers, json={"method": "email_code"})
    assert sent.status_code == 200, sent.text
    await worker.run_once(sweep=False)

    assert {message.rcpt_tos[0] for message in smtp.messages} == {SUBJECT_EMAIL}
    subjects = sorted(str(message.message["Subject"]) for message in smtp.messages)
    assert subjects == ["We have received your data protection request", "Your verification code"]
    (mail,) = [m for m in smtp.messages if m.message["Subject"] == "Your verification code"]
    assert mail.mail_from == SENDER
    code = _code_in(mail.part("text/plain"))
    assert code in mail.part("text/html")
    assert code not in str(mail.message["Subject"])

    wrong = "000000" if code != "000000" else "111111"
    refused = await client.post(
        f"{base}/confirm", headers=integration_headers, json={"code": wrong}
    )
    assert refused.status_code == 422
    confirmed = await client.post(
        f"{base}/confirm", headers=integration_headers, json={"code": code}
    )
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "in_progress"
    assert body["verification"] == {
        **body["verification"],
        "status": "verified",
        "method": "email_code",
    }
    assert body["deadline"]["clock_started_on"] is not None
    assert body["deadline"]["due_date"] is not None
