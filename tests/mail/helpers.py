"""A queued message's contents as its subject will read them: an intent (the acknowledgement)
rendered through ``render_intent`` exactly as the worker renders it, any other message
decrypted."""

from dataclasses import dataclass

from fastapi import FastAPI

from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.mail.messages import render_intent
from app.models import DsrRequest, MailMessage

# The From address of the mail tests' SMTP settings (tests/mail/conftest.py).
SENDER = "privacy@controller.example"


@dataclass
class Contents:
    subject: str
    text: str
    html: str | None


async def contents(app: FastAPI, mail: MailMessage, settings: Settings | None = None) -> Contents:
    """What the worker sends for this row (with the app's settings unless others are given)."""
    settings = settings or app.state.settings
    assert settings is not None
    if mail.body_encrypted is None:
        assert mail.subject is None and mail.html_encrypted is None  # an intent stores neither
        assert mail.request_id is not None
        async with app.state.sessionmaker() as session:
            dsr = await session.get(DsrRequest, mail.request_id)
        assert dsr is not None
        subject, text, html = render_intent(mail, dsr, settings=settings)
        return Contents(subject, text, html)
    keys = list(settings.reading_keys)
    text = decrypt_secret(mail.body_encrypted, secret_keys=keys)
    assert text is not None
    html = decrypt_secret(mail.html_encrypted, secret_keys=keys) if mail.html_encrypted else None
    assert mail.subject is not None
    return Contents(mail.subject, text, html)
