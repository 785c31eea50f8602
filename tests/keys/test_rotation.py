"""Key rotation: DSR_SECRET_KEY_PREVIOUS is accepted for reading while DSR_SECRET_KEY writes,
and ``dsr keys rotate`` moves everything stored under it to the current key."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import clients
from app.auth.scopes import ROLE_SCOPES, Role
from app.auth.tokens import issue_access_token, verify_access_token
from app.core.config import Settings
from app.core.crypto import decrypt_secret, encrypt_secret
from app.core.db import create_engine, create_sessionmaker
from app.core.time import utcnow
from app.exports.service import issue_download_token, verify_download_token
from app.keys import rotation
from app.mail import sender, status_link
from app.mail.messages import render_intent
from app.main import create_app
from app.models import Client, DsrRequest, MailMessage, RetiredHashKey
from app.requests.duplicates import hashes_of
from app.suppression import service as suppression
from tests.conftest import ADMIN_ID, ADMIN_SECRET, get_token, make_settings
from tests.factories import create_request

OLD_KEY = "old-secret-key-0123456789abcdef0123456789"
NEW_KEY = "new-secret-key-0123456789abcdef0123456789"
PRODUCTION = {
    "env": "production",
    "smtp_host": "smtp.example.com",
    "smtp_from": "privacy@example.com",
    "public_url": "https://dsr.example.com",
}


# Mail is queued (encrypted) only where SMTP is configured; nothing is sent in these tests.
MAIL = {"smtp_host": "127.0.0.1", "smtp_from": "privacy@example.com"}


def rotated(database_url: str = "sqlite+aiosqlite://") -> Settings:
    return make_settings(database_url, secret_key=NEW_KEY, secret_key_previous=[OLD_KEY], **MAIL)


# ---------------------------------------------------------------- settings


def test_previous_keys_are_a_comma_list_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DSR_SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("DSR_SECRET_KEY_PREVIOUS", f" {OLD_KEY} , second-{OLD_KEY},")
    settings = Settings()
    assert settings.secret_key_previous == [OLD_KEY, f"second-{OLD_KEY}"]
    assert settings.reading_keys == (NEW_KEY, OLD_KEY, f"second-{OLD_KEY}")


def test_production_refuses_a_previous_key_equal_to_the_current() -> None:
    with pytest.raises(ValidationError, match="DSR_SECRET_KEY_PREVIOUS"):
        Settings(secret_key=NEW_KEY, secret_key_previous=[OLD_KEY, NEW_KEY], **PRODUCTION)  # type: ignore[arg-type]
    Settings(secret_key=NEW_KEY, secret_key_previous=[OLD_KEY], **PRODUCTION)  # type: ignore[arg-type]


def test_production_requires_the_public_url() -> None:
    without = {name: value for name, value in PRODUCTION.items() if name != "public_url"}
    with pytest.raises(ValidationError, match="DSR_PUBLIC_URL must be set"):
        Settings(secret_key=NEW_KEY, **without)  # type: ignore[arg-type]


# ---------------------------------------------------------------- readers (pure)


def test_encrypted_under_the_old_key_still_decrypts_and_new_values_use_the_new_key() -> None:
    settings = rotated()
    old = encrypt_secret("s3cret", secret_key=OLD_KEY)
    assert decrypt_secret(old, secret_keys=settings.reading_keys) == "s3cret"
    new = encrypt_secret("s3cret", secret_key=settings.secret_key)
    assert decrypt_secret(new, secret_keys=[NEW_KEY]) == "s3cret"
    assert decrypt_secret(old, secret_keys=[NEW_KEY]) is None


def test_access_token_signed_under_the_old_key_is_accepted_until_the_key_goes() -> None:
    token = issue_access_token(
        client_id="c1",
        role=Role.OFFICER,
        scopes=ROLE_SCOPES[Role.OFFICER],
        secret_key=OLD_KEY,
        ttl_seconds=600,
    )
    principal = verify_access_token(token, secret_keys=rotated().reading_keys)
    assert principal is not None and principal.client_id == "c1"
    assert verify_access_token(token, secret_keys=[NEW_KEY]) is None


def test_status_link_and_form_token_under_the_old_key_are_accepted() -> None:
    old = make_settings("sqlite+aiosqlite://", secret_key=OLD_KEY)
    request_id = uuid.uuid4()
    now = utcnow()
    token = status_link.issue_status_token(request_id, now + timedelta(days=1), old)
    form = status_link.form_token(token, old)
    assert status_link.verify_status_token(token, rotated(), now=now) == request_id
    assert status_link.form_token_valid(token, form, rotated())
    alone = make_settings("sqlite+aiosqlite://", secret_key=NEW_KEY)
    assert status_link.verify_status_token(token, alone, now=now) is None
    assert not status_link.form_token_valid(token, form, alone)


def test_download_link_under_the_old_key_is_accepted() -> None:
    old = make_settings("sqlite+aiosqlite://", secret_key=OLD_KEY)
    export_id = uuid.uuid4()
    now = utcnow()
    token = issue_download_token(export_id, now + timedelta(hours=1), old)
    assert verify_download_token(token, rotated(), now=now) == export_id
    alone = make_settings("sqlite+aiosqlite://", secret_key=NEW_KEY)
    assert verify_download_token(token, alone, now=now) is None


def test_client_secret_hashed_under_the_old_key_matches() -> None:
    stored = clients.hash_secret("client-secret", secret_key=OLD_KEY)
    assert clients.secret_matches("client-secret", stored, secret_keys=rotated().reading_keys)
    assert not clients.secret_matches("client-secret", stored, secret_keys=[NEW_KEY])


# ---------------------------------------------------------------- stored data, then rotate


@pytest.fixture
async def old_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url, secret_key=OLD_KEY, **MAIL))
    async with application.router.lifespan_context(application):
        yield application


async def _sessions(settings: Settings) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(create_engine(settings))


async def _suppressed(settings: Settings, email: str) -> bool:
    sessionmaker = await _sessions(settings)
    async with sessionmaker() as session:
        found, _ = await suppression.check(session, settings=settings, email=email)
    return found


async def _mail_read(settings: Settings, keys: list[str]) -> dict[str, tuple[str | None, ...]]:
    """Each queued mail's recipient and text, by kind, as read with these keys alone; an
    intent (no stored body) rendered as the worker renders it."""
    sessionmaker = await _sessions(settings)
    read: dict[str, tuple[str | None, ...]] = {}
    async with sessionmaker() as session:
        for row in (await session.execute(select(MailMessage))).scalars().all():
            recipient = decrypt_secret(row.recipient_encrypted, secret_keys=keys)
            if row.body_encrypted is None:
                dsr = await session.get(DsrRequest, row.request_id)
                assert dsr is not None
                text: str | None = render_intent(row, dsr, settings=settings)[1]
            else:
                text = decrypt_secret(row.body_encrypted, secret_keys=keys)
            read[row.kind] = (recipient, text)
    return read


async def _authenticates(settings: Settings, client_id: str, secret: str) -> bool:
    sessionmaker = await _sessions(settings)
    async with sessionmaker() as session:
        return (
            await clients.authenticate(
                session, settings=settings, client_id=client_id, client_secret=secret
            )
            is not None
        )


async def test_everything_reads_after_rotation_and_with_the_new_key_alone_after_rotate(
    old_app: FastAPI, database_url: str
) -> None:
    old = make_settings(database_url, secret_key=OLD_KEY)
    async with AsyncClient(transport=ASGITransport(app=old_app), base_url="http://t") as http:
        headers = {"Authorization": f"Bearer {await get_token(http, ADMIN_ID, ADMIN_SECRET)}"}
        created = await create_request(http, headers)
        # Its acknowledgement is an intent (no body); a code mail is rendered when queued.
        sent = await http.post(
            f"/v1/requests/{created['id']}/verification",
            headers=headers,
            json={"method": "email_code"},
        )
        assert sent.status_code == 200, sent.text
    sessionmaker = await _sessions(old)
    async with sessionmaker() as session:
        await suppression.suppress(
            session,
            settings=old,
            email="Objector@Example.com",
            channels=["email"],
            reason="objection",
            now=utcnow(),
        )
        await session.commit()

    # Rotated: the new key writes, the old one still reads.
    new = rotated(database_url)
    assert await _suppressed(new, "objector@example.com")
    mail = await _mail_read(new, list(new.reading_keys))
    assert set(mail) == {"acknowledgement", "verification_code"}
    assert all(all(read) for read in mail.values())
    assert await _authenticates(new, ADMIN_ID, ADMIN_SECRET)

    report = await rotation.rotate(await _sessions(new), settings=new, batch_size=1)
    assert not report.unreadable, report.lines()
    assert report.reencrypted["mail_outbox.recipient_encrypted"] >= 2
    assert report.reencrypted["mail_outbox.body_encrypted"] >= 1
    assert report.reencrypted["clients.secret_encrypted"] >= 1
    assert report.rehashed["requests.subject_email_hash"] == 1
    assert report.hash_keys_kept == 3

    # After `dsr keys rotate` the new key alone reads everything.
    alone = make_settings(database_url, secret_key=NEW_KEY)
    mail = await _mail_read(alone, [NEW_KEY])
    assert set(mail) == {"acknowledgement", "verification_code"}
    assert all(all(read) for read in mail.values())
    assert await _authenticates(alone, ADMIN_ID, ADMIN_SECRET)
    assert await _suppressed(alone, "objector@example.com")
    assert not await _suppressed(alone, "someone.else@example.com")
    async with (await _sessions(alone))() as session:
        dsr = (await session.execute(select(DsrRequest))).scalars().one()
        assert dsr.subject_email_hash == hashes_of(alone, dsr).email
        for client in (await session.execute(select(Client))).scalars():
            assert decrypt_secret(client.secret_encrypted, secret_keys=[NEW_KEY]) is not None
        kept = (await session.execute(select(RetiredHashKey))).scalars().all()
        assert {row.purpose for row in kept} == {"suppression", "retained-records", "calendar-feed"}
        # The kept hashing keys are encrypted under the new key too.
        assert all(decrypt_secret(row.key_encrypted, secret_keys=[NEW_KEY]) for row in kept)

    # Running it again finds nothing left to move.
    again = await rotation.rotate(await _sessions(new), settings=new)
    assert not again.reencrypted and not again.rehashed and again.hash_keys_kept == 0


async def test_suppressing_again_rehashes_an_old_entry_under_the_current_key(
    database_url: str,
) -> None:
    old = make_settings(database_url, secret_key=OLD_KEY)
    new = rotated(database_url)
    for settings in (old, new):
        async with (await _sessions(settings))() as session:
            await suppression.suppress(
                session,
                settings=settings,
                email="objector@example.com",
                channels=["email"] if settings is old else ["sms"],
                reason="objection",
                now=utcnow(),
            )
            await session.commit()
    alone = make_settings(database_url, secret_key=NEW_KEY)
    async with (await _sessions(alone))() as session:
        found, channels = await suppression.check(
            session, settings=alone, email="objector@example.com"
        )
    # One entry, merged, now under the new key (no retired key was kept: rotate never ran).
    assert found and channels == ["email", "sms"]


async def test_a_sent_mail_wiped_of_its_recipient_and_body_is_not_unreadable(
    database_url: str,
) -> None:
    """Sent mail keeps no recipient or body (empty strings): nothing to re-encrypt, and
    nothing for `dsr keys rotate` to report as opening under no key."""
    new = rotated(database_url)
    now = utcnow()
    sessionmaker = await _sessions(new)
    async with sessionmaker() as session:
        session.add(
            MailMessage(
                id=uuid.uuid4(),
                request_id=None,
                kind="alert",
                recipient_encrypted="",
                subject="Sent",
                body_encrypted="",
                status="sent",
                attempt_count=1,
                next_attempt_at=now,
                created_at=now,
            )
        )
        await session.commit()
    report = await rotation.rotate(sessionmaker, settings=new)
    assert not report.unreadable, report.lines()
    assert not report.reencrypted


async def test_an_acknowledgement_intent_moves_its_recipient_and_renders_under_the_new_key(
    old_app: FastAPI, database_url: str
) -> None:
    """An intent stores no bodies (NULL): rotation re-encrypts its recipient alone, reports
    nothing unreadable, and the worker holding only the new key renders and addresses it."""
    async with AsyncClient(transport=ASGITransport(app=old_app), base_url="http://t") as http:
        headers = {"Authorization": f"Bearer {await get_token(http, ADMIN_ID, ADMIN_SECRET)}"}
        await create_request(http, headers)
    new = rotated(database_url)
    sessionmaker = await _sessions(new)
    async with sessionmaker() as session:
        (before,) = (await session.execute(select(MailMessage))).scalars().all()
    assert before.body_encrypted is None and before.render_context

    report = await rotation.rotate(sessionmaker, settings=new)
    assert not report.unreadable, report.lines()
    assert report.reencrypted["mail_outbox.recipient_encrypted"] == 1
    assert "mail_outbox.body_encrypted" not in report.reencrypted
    assert "mail_outbox.html_encrypted" not in report.reencrypted

    alone = make_settings(database_url, secret_key=NEW_KEY, **MAIL)
    async with (await _sessions(alone)).begin() as session:
        (after,) = (await session.execute(select(MailMessage))).scalars().all()
        assert (after.subject, after.body_encrypted, after.html_encrypted) == (None, None, None)
        assert after.render_context == before.render_context
        (claim,) = await sender.claim_due(session, settings=alone, now=utcnow())
    assert claim.failure is None and claim.recipient == "jane.doe@example.com"
    assert claim.subject == "We have received your data protection request"
    assert claim.text and "We have received your" in claim.text
