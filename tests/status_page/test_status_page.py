"""The data subject's status page end to end on SQLite and PostgreSQL: the link in their
mail, what the page shows (and never shows), its actions through the same services as the
API, and its defences (neutral page for any bad link, form tokens, CSP)."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app import deadlines
from app.core.config import Settings
from app.core.time import utcnow
from app.mail.status_link import issue_status_token
from app.models import Export
from app.status_page.pages import contrast_ratio, text_on
from tests.conftest import make_settings
from tests.correspondence.conftest import FakeClock
from tests.factories import create_request, verified_request
from tests.status_page.helpers import (
    html_of,
    mails,
    page,
    post_form,
    status_path,
    status_text,
    text_of,
    token_of,
)

NAME = "Philippa <b>Statusworth</b>"
EMAIL = "philippa.status@example.com"
PHONE = "+442079460457"
QUESTION = "Which store did you buy from? Reference Q-55-internal."
NOTE = "Internal: officer suspects a journalist; check with legal."
DAY_0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

SUBJECT = {"email": EMAIL, "name": NAME, "phone": PHONE}


async def events(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[dict]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def get_request(client: AsyncClient, headers: dict[str, str], request_id: str) -> dict:
    response = await client.get(f"/v1/requests/{request_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


# ---------------------------------------------------------------- the link in the mail


async def test_the_acknowledgement_links_the_page_of_its_request(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str], settings: Settings
) -> None:
    dsr = await create_request(client, integration_headers, subject=SUBJECT)
    [acknowledgement] = await mails(app, dsr["id"], "acknowledgement")
    text, html = await text_of(app, acknowledgement), await html_of(app, acknowledgement)
    path = await status_path(app, dsr["id"])
    assert f"{settings.public_url}{path}" in text
    assert f'href="{settings.public_url}{path}"' in html

    response = await page(client, path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert dsr["id"] in body
    assert status_text(body) == "Waiting for you to confirm your identity"
    assert "Copy of your personal data" in body
    assert '<html lang="en-GB">' in body and 'name="viewport"' in body
    # Nothing the subject told us, beyond the request itself.
    for personal in (EMAIL, "Philippa", "Statusworth", PHONE, "7946", "CRM-4411"):
        assert personal not in body


async def test_every_subject_mail_links_the_page_and_the_officer_alert_does_not(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    dsr = await create_request(client, integration_headers, subject=SUBJECT)
    sent = await client.post(
        f"/v1/requests/{dsr['id']}/verification",
        headers=integration_headers,
        json={"method": "email_code"},
    )
    assert sent.status_code == 200, sent.text
    rejected = await client.post(
        f"/v1/requests/{dsr['id']}/reject",
        headers=officer_headers,
        json={"reason": "excessive", "explanation": "Same as last week's request."},
    )
    assert rejected.status_code == 200, rejected.text
    kinds = set()
    for mail in await mails(app, dsr["id"]):
        kinds.add(mail.kind)
        path = await status_path(app, dsr["id"], mail.kind)
        assert path in await html_of(app, mail)
        assert (await page(client, path)).status_code == 200
    assert kinds == {"acknowledgement", "verification_code", "rejection"}


# ---------------------------------------------------------------- links that open nothing


async def test_bad_links_all_get_the_same_neutral_page(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    mine = await create_request(client, integration_headers, subject=SUBJECT)
    other = await create_request(
        client, integration_headers, subject={"email": "someone.else@example.com"}
    )
    token = token_of(await status_path(app, mine["id"]))
    request_hex, expires, mac = token.split(".")
    other_hex = uuid.UUID(other["id"]).hex
    unknown = issue_status_token(uuid.uuid4(), utcnow() + timedelta(days=1), app.state.settings)
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    candidates = {
        "another request's id": f"{other_hex}.{expires}.{mac}",
        "a later expiry": f"{request_hex}.{int(expires) + 86400}.{mac}",
        "a changed signature": f"{request_hex}.{expires}.{flipped}",
        "garbage": "not-a-token",
        "an unknown request": unknown,
        "an over-long token": "a" * 5000,
    }
    bodies = set()
    for label, candidate in candidates.items():
        response = await client.get(f"/status/{candidate}")
        assert response.status_code == 404, label
        assert "Content-Security-Policy" in response.headers, label
        assert other["id"] not in response.text and mine["id"] not in response.text
        bodies.add(response.text)
    # The other request's own link still opens it, and only it.
    assert other["id"] in (await page(client, await status_path(app, other["id"]))).text
    # An expired genuine link: the very same page.
    app.state.clock = lambda: utcnow() + timedelta(days=91)
    expired = await client.get(f"/status/{token}")
    assert expired.status_code == 404
    bodies.add(expired.text)
    assert len(bodies) == 1, "the neutral page must not differ between bad links"
    # And the actions behind a bad link answer the same page too.
    refused = await client.post(f"/status/{token}/cancel", data={"confirm": "yes"})
    assert refused.status_code == 404 and refused.text in bodies


async def test_the_link_lives_for_the_configured_days(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    dsr = await create_request(client, integration_headers, subject=SUBJECT)
    path = await status_path(app, dsr["id"])
    app.state.clock = lambda: utcnow() + timedelta(days=89)
    assert (await page(client, path)).status_code == 200
    app.state.clock = lambda: utcnow() + timedelta(days=90, minutes=1)
    assert (await page(client, path)).status_code == 404


# ---------------------------------------------------------------- actions


async def test_the_emailed_code_entered_on_the_page_verifies_the_request(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    dsr = await create_request(client, integration_headers, subject=SUBJECT)
    path = await status_path(app, dsr["id"])
    # No code sent yet: nothing to enter.
    assert 'id="code-form"' not in (await page(client, path)).text
    sent = await client.post(
        f"/v1/requests/{dsr['id']}/verification",
        headers=integration_headers,
        json={"method": "email_code"},
    )
    assert sent.status_code == 200, sent.text
    [code_mail] = await mails(app, dsr["id"], "verification_code")
    code = re.search(r"\b(\d{6})\b", await text_of(app, code_mail))
    assert code
    body = (await page(client, path)).text
    assert 'id="code-form"' in body and '<label for="code">Verification code</label>' in body
    assert ">Confirm code</button>" in body

    # A forged form (no token from the page) is refused and changes nothing.
    forged = await post_form(client, path, "verify", code=code.group(1), form_token="x" * 22)
    assert forged.status_code == 403
    assert "Content-Security-Policy" in forged.headers
    assert (await get_request(client, officer_headers, dsr["id"]))["status"] == (
        "awaiting_verification"
    )

    wrong = "000000" if code.group(1) != "000000" else "111111"
    missed = await post_form(client, path, "verify", code=wrong)
    assert missed.status_code == 303
    assert missed.headers["location"] == f"{path}?done=wrong_code"
    shown = await client.get(missed.headers["location"])
    assert "That code is not right" in shown.text

    right = await post_form(client, path, "verify", code=code.group(1))
    assert right.status_code == 303
    assert right.headers["location"] == f"{path}?done=verified"
    after = await client.get(right.headers["location"])
    assert status_text(after.text) == "In progress"
    assert 'id="due-date"' in after.text and 'id="code-form"' not in after.text

    dsr_now = await get_request(client, officer_headers, dsr["id"])
    assert dsr_now["status"] == "in_progress"
    assert dsr_now["verification"]["method"] == "email_code"
    trail = await events(client, officer_headers, dsr["id"])
    attempts = [(event["type"], event["actor"]) for event in trail[-2:]]
    assert attempts == [
        ("request.verification_code_rejected", "subject"),
        ("request.verified", "subject"),
    ]


async def test_the_subject_asks_for_a_code_on_the_page_and_confirms_it(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    dsr = await create_request(client, integration_headers, subject=SUBJECT)
    path = await status_path(app, dsr["id"])
    before = (await page(client, path)).text
    assert ">Email me a code</button>" in before and 'id="code-form"' not in before
    forged = await post_form(client, path, "send-code", form_token="x" * 22)
    assert forged.status_code == 403
    assert await mails(app, dsr["id"], "verification_code") == []

    sent = await post_form(client, path, "send-code")
    assert sent.status_code == 303
    assert sent.headers["location"] == f"{path}?done=code_sent"
    [code_mail] = await mails(app, dsr["id"], "verification_code")
    code = re.search(r"\b(\d{6})\b", await text_of(app, code_mail))
    assert code
    shown = (await client.get(sent.headers["location"])).text
    assert "We have emailed you a code" in shown
    assert 'id="code-form"' in shown and ">Email me a new code</button>" in shown
    # Asking again at once is held back by the resend cooldown, as through the API.
    again = await post_form(client, path, "send-code")
    assert again.headers["location"] == f"{path}?done=code_wait"
    assert len(await mails(app, dsr["id"], "verification_code")) == 1

    right = await post_form(client, path, "verify", code=code.group(1))
    assert right.headers["location"] == f"{path}?done=verified"
    assert (await get_request(client, officer_headers, dsr["id"]))["status"] == "in_progress"
    trail = [
        (event["type"], event["actor"])
        for event in await events(client, officer_headers, dsr["id"])
    ]
    assert ("request.verification_requested", "subject") in trail
    # Verified: nothing more to ask for.
    assert "Email me" not in (await page(client, path)).text


async def test_an_answer_on_the_page_restarts_the_clock_as_a_recorded_reply_does(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    clock = FakeClock(DAY_0)
    app.state.clock = clock
    dsr = await verified_request(client, integration_headers, officer_headers, subject=SUBJECT)
    started_on = date(2026, 11, 2)
    path = await status_path(app, dsr["id"])
    assert 'id="reply-form"' not in (await page(client, path)).text

    clock.set(datetime(2026, 11, 10, 11, 0, tzinfo=UTC))
    sent = await client.post(
        f"/v1/requests/{dsr['id']}/messages",
        headers=officer_headers,
        json={"kind": "clarification", "text": QUESTION},
    )
    assert sent.status_code == 201, sent.text
    paused = (await page(client, path)).text
    assert status_text(paused) == "On hold: waiting for your answer to our question"
    assert '<label for="answer">Your answer</label>' in paused
    assert ">Send answer</button>" in paused
    assert QUESTION not in paused and "Q-55" not in paused

    # The answer arrives six days later, typed on the page: the clock restarts that day.
    clock.set(datetime(2026, 11, 16, 15, 30, tzinfo=UTC))
    empty = await post_form(client, path, "reply", answer="   ")
    assert empty.headers["location"] == f"{path}?done=empty_answer"
    answered = await post_form(client, path, "reply", answer="The Leeds store, in May.")
    assert answered.status_code == 303
    assert answered.headers["location"] == f"{path}?done=answered"

    resumed = await get_request(client, officer_headers, dsr["id"])
    stopped = deadlines.paused_day_count(date(2026, 11, 10), date(2026, 11, 16))
    expected_due = deadlines.compute_due_date(
        regulation="uk_gdpr", clock_started_on=started_on, paused_days=stopped
    )
    assert resumed["status"] == "in_progress"
    assert resumed["deadline"]["paused_days"] == 7
    assert resumed["deadline"]["due_date"] == expected_due.isoformat() == "2026-12-09"
    assert "Wednesday 9 December 2026" in (await page(client, path)).text

    thread = await client.get(f"/v1/requests/{dsr['id']}/messages", headers=officer_headers)
    reply = thread.json()["items"][-1]
    assert (reply["direction"], reply["text"]) == ("inbound", "The Leeds store, in May.")
    assert reply["received_at"].startswith("2026-11-16T15:30:00")
    trail = await events(client, officer_headers, dsr["id"])
    assert [(event["type"], event["actor"]) for event in trail[-2:]] == [
        ("request.reply_recorded", "subject"),
        ("request.resumed", "subject"),
    ]


async def test_the_subject_cancels_after_confirming_and_it_is_audited(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=SUBJECT)
    path = await status_path(app, dsr["id"])
    body = (await page(client, path)).text
    assert f'href="{path}/cancel"' in body
    confirm = await client.get(f"{path}/cancel")
    assert confirm.status_code == 200
    assert ">Cancel my request</button>" in confirm.text
    # Nothing is cancelled by looking at the question.
    assert (await get_request(client, officer_headers, dsr["id"]))["status"] == "in_progress"
    token = re.search(r'name="form_token" value="([^"]+)"', confirm.text)
    assert token
    # Without the confirmation field, or with another page's form token, it is refused.
    for fields in (
        {"form_token": token.group(1)},
        {"form_token": token.group(1)[::-1], "confirm": "yes"},
        {"confirm": "yes"},
    ):
        refused = await client.post(f"{path}/cancel", data=fields)
        assert refused.status_code == 403, fields
    assert (await get_request(client, officer_headers, dsr["id"]))["status"] == "in_progress"
    done = await client.post(
        f"{path}/cancel", data={"form_token": token.group(1), "confirm": "yes"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"{path}?done=cancelled"
    after = await client.get(done.headers["location"])
    assert status_text(after.text) == "Cancelled"
    assert "Your request is cancelled." in after.text
    assert 'id="cancel-link"' not in after.text

    cancelled = await get_request(client, officer_headers, dsr["id"])
    assert cancelled["status"] == "cancelled"
    last = (await events(client, officer_headers, dsr["id"]))[-1]
    assert (last["type"], last["actor"]) == ("request.cancelled", "subject")
    again = await client.post(
        f"{path}/cancel", data={"form_token": token.group(1), "confirm": "yes"}
    )
    assert again.headers["location"] == f"{path}?done=not_allowed"
    assert (await client.get(f"{path}/cancel")).headers["location"] == (f"{path}?done=not_allowed")


async def test_the_download_link_is_shown_only_while_the_export_lives(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=SUBJECT)
    path = await status_path(app, dsr["id"])
    assert 'id="downloads"' not in (await page(client, path)).text
    now = utcnow()
    async with app.state.sessionmaker.begin() as session:
        for export_format, age in (("json", 0), ("csv", 0), ("csv", 2)):
            session.add(
                Export(
                    request_id=uuid.UUID(dsr["id"]),
                    format=export_format,
                    file_name=f"export.{export_format}",
                    size_bytes=10,
                    sha256="0" * 64,
                    created_at=now - timedelta(hours=age),
                    expires_at=now + timedelta(days=7) - timedelta(hours=age),
                )
            )
    body = (await page(client, path)).text
    links = re.findall(r'id="download-(\w+)" href="([^"]+)"', body)
    assert [fmt for fmt, _url in links] == ["csv", "json"]
    for _fmt, url in links:
        assert url.startswith(f"{app.state.settings.public_url}/v1/exports/")
    app.state.clock = lambda: now + timedelta(days=8)
    assert 'id="downloads"' not in (await page(client, path)).text


async def test_the_page_shows_no_officer_note_and_escapes_what_it_shows(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    dsr = await create_request(
        client, integration_headers, subject=SUBJECT, external_ref="<i>CRM-9</i>"
    )
    path = await status_path(app, dsr["id"])
    noted = await client.post(
        f"/v1/requests/{dsr['id']}/notes", headers=officer_headers, json={"text": NOTE}
    )
    assert noted.status_code == 201, noted.text
    explanation = '<script>alert("x")</script> You asked <b>twice</b> & we answered.'
    rejected = await client.post(
        f"/v1/requests/{dsr['id']}/reject",
        headers=officer_headers,
        json={"reason": "excessive", "explanation": explanation},
    )
    assert rejected.status_code == 200, rejected.text
    body = (await page(client, path)).text
    assert status_text(body) == "Refused"
    # The notice they were mailed: the explanation, escaped, and the right to complain.
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
    assert "<script" not in body and "<b>twice" not in body
    assert "Information Commissioner" in body
    for hidden in ("Internal", "journalist", "CRM-9", EMAIL, "Statusworth"):
        assert hidden not in body


# ---------------------------------------------------------------- security and branding


async def test_pages_carry_a_strict_content_security_policy(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    dsr = await create_request(client, integration_headers, subject=SUBJECT)
    path = await status_path(app, dsr["id"])
    for response in (await page(client, path), await client.get("/status/nothing")):
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text and " style=" not in response.text
    css = await client.get("/status/static/status.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "--brand: #1d4ed8;" in css.text and "--on-brand: #ffffff;" in css.text
    assert ":focus-visible" in css.text


def test_text_on_the_brand_colour_is_the_more_readable_of_white_and_black() -> None:
    assert text_on("#1d4ed8") == "#ffffff"
    assert text_on("#ffd700") == "#000000"
    assert contrast_ratio("#1d4ed8", "#ffffff") >= 4.5
    with pytest.raises(ValueError, match="brand_colour"):
        make_settings("sqlite+aiosqlite:///:memory:", brand_colour="blue")


async def test_branding_and_operator_templates(database_url: str, tmp_path: Path) -> None:
    from httpx import ASGITransport

    from app.main import create_app

    (tmp_path / "not_found.html").write_text(
        '{% extends "_base.html" %}{% block content %}<h1>Link expired: write to '
        "dpo@controller.example</h1>{% endblock %}"
    )
    settings = make_settings(
        database_url,
        brand_name="Acme <Privacy>",
        brand_colour="#FFD700",
        page_template_dir=str(tmp_path),
    )
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as client,
    ):
        response = await client.get("/status/nothing")
        assert response.status_code == 404
        assert "Link expired: write to dpo@controller.example" in response.text
        assert "Acme &lt;Privacy&gt;" in response.text
        css = (await client.get("/status/static/status.css")).text
        assert "--brand: #ffd700;" in css and "--on-brand: #000000;" in css
