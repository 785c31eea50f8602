"""Messages to data subjects: rendered from templates and queued in the caller's transaction.

Delivery is the worker's job (``app.mail.sender``): a change that rolls back queues
nothing, and a queued message survives a crash.

Most messages are rendered when queued (``message_row``). The acknowledgement, on the intake
hot path, is queued as an *intent* (``intent_row``): the encrypted recipient and a context
free of personal data; the worker renders it at send time (``render_intent``) with the
request as it reads it then, giving the same text as ``message_row`` would have.
"""

import uuid
from collections.abc import MutableMapping
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.crypto import encrypt_secret
from app.core.logs import current_request_id
from app.mail.status_link import status_url
from app.models import DsrRequest, MailMessage

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"


class MessageKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    VERIFICATION_CODE = "verification_code"
    VERIFICATION_FAILED = "verification_failed"
    EXTENSION = "extension"
    REJECTION = "rejection"
    COMPLETION = "completion"
    EXPORT_READY = "export_ready"
    RESTRICTION_LIFTED = "restriction_lifted"
    # An officer's own words to the subject (app.correspondence), in a fixed wrapper.
    CLARIFICATION = "clarification"
    INFORMATION = "information"
    VERIFICATION_REMINDER = "verification_reminder"
    # To the officers (DSR_ALERT_EMAIL), not to a subject: never names the subject.
    ALERT = "alert"


class _Environment(jinja2.Environment):
    """Template globals as a plain dict: every render copies them, and copying Jinja's default
    ChainMap cost about 5 % of an intake's CPU. Our globals never change after start-up, the
    one thing the ChainMap exists for."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


@lru_cache(maxsize=8)
def _environment(override_dir: str | None) -> jinja2.Environment:
    """Operator templates (DSR_MAIL_TEMPLATE_DIR) first, then the built-in ones."""
    folders = [override_dir] if override_dir else []
    return _Environment(
        loader=jinja2.FileSystemLoader([*folders, str(BUILTIN_TEMPLATES)]),
        # Templates are read once: a stat() per render was measurable on the intake path.
        auto_reload=False,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(
    kind: MessageKind, context: dict[str, Any], *, settings: Settings
) -> tuple[str, str, str | None]:
    """(subject, plain text, HTML or None) for a message kind."""
    environment = _environment(settings.mail_template_dir)
    subject = environment.get_template(f"{kind}.subject.txt").render(context).strip()
    text = environment.get_template(f"{kind}.txt").render(context)
    try:
        html: str | None = environment.get_template(f"{kind}.html").render(context)
    except jinja2.TemplateNotFound:
        html = None
    return subject, text, html


def _render_for(
    kind: MessageKind,
    dsr: DsrRequest,
    context: dict[str, Any],
    *,
    settings: Settings,
    queued_at: datetime,
) -> tuple[str, str, str | None]:
    # Every message to a subject links their status page (the shared layouts show it); the
    # link's validity counts from when the message was queued.
    link = status_url(dsr.id, settings=settings, now=queued_at)
    return render(kind, {"request": dsr, "status_url": link, **context}, settings=settings)


def message_row(
    *,
    settings: Settings,
    dsr: DsrRequest,
    kind: MessageKind,
    context: dict[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """The mail-outbox row for a message to the request's subject; None without an email."""
    if not dsr.subject_email:
        return None
    subject, text, html = _render_for(kind, dsr, context, settings=settings, queued_at=now)
    key = settings.secret_key
    return {
        "id": uuid.uuid4(),
        "request_id": dsr.id,
        "kind": kind.value,
        "recipient_encrypted": encrypt_secret(dsr.subject_email, secret_key=key),
        "subject": subject,
        "body_encrypted": encrypt_secret(text, secret_key=key),
        "html_encrypted": encrypt_secret(html, secret_key=key) if html else None,
        "status": "pending",
        "attempt_count": 0,
        "next_attempt_at": now,
        "created_at": now,
        # The worker logs the sending under the id of the HTTP request that queued it.
        "trace_id": current_request_id(),
    }


# An intent's context is stored as JSON: a date is tagged so that it comes back a date
# (templates call strftime on it), under any key and at any depth.
DATE_TAG = "__date__"


def _encoded(value: Any) -> Any:
    if isinstance(value, datetime):
        # A datetime is a date too; tagging it as one would drop its time.
        raise TypeError("a mail intent's context holds dates, not datetimes")
    if isinstance(value, date):
        return {DATE_TAG: value.isoformat()}
    if isinstance(value, list | tuple):
        return [_encoded(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("a mail intent's context has string keys only")
        return {key: _encoded(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"a mail intent's context cannot hold a {type(value).__name__}")


def _revived(value: Any) -> Any:
    if isinstance(value, list):
        return [_revived(item) for item in value]
    if isinstance(value, dict):
        if value.keys() == {DATE_TAG}:
            return date.fromisoformat(value[DATE_TAG])
        return {key: _revived(item) for key, item in value.items()}
    return value


def encode_context(context: dict[str, Any]) -> dict[str, Any]:
    """The context as JSON: dates as ``{"__date__": "YYYY-MM-DD"}``; JSON's own types as they
    are (tuples become lists); anything else is a TypeError at queue time, not at send time."""
    encoded: dict[str, Any] = _encoded(context)
    return encoded


def decode_context(stored: dict[str, Any] | None) -> dict[str, Any]:
    """What ``encode_context`` stored, with its dates revived."""
    revived: dict[str, Any] = _revived(stored or {})
    return revived


def intent_row(
    *,
    settings: Settings,
    request_id: uuid.UUID,
    recipient: str | None,
    kind: MessageKind,
    context: dict[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """The mail-outbox row for a message the worker renders at send time; None without a
    recipient.

    ``context`` is what the templates need besides the request and the status link, and must
    hold no personal data (dates, flags, method names, numbers): it is stored unencrypted.
    The recipient is encrypted; subject and bodies stay NULL (that marks an intent).
    """
    if not recipient:
        return None
    return {
        "id": uuid.uuid4(),
        "request_id": request_id,
        "kind": kind.value,
        "recipient_encrypted": encrypt_secret(recipient, secret_key=settings.secret_key),
        "subject": None,
        "body_encrypted": None,
        "html_encrypted": None,
        "render_context": encode_context(context),
        "status": "pending",
        "attempt_count": 0,
        "next_attempt_at": now,
        "created_at": now,
        "trace_id": current_request_id(),
    }


def render_intent(
    message: MailMessage, dsr: DsrRequest, *, settings: Settings
) -> tuple[str, str, str | None]:
    """(subject, plain text, HTML or None) of an intent, for the request it belongs to.

    The same templates and context as ``message_row`` at the time it was queued
    (``created_at``), so the same text; raises whatever the templates raise.
    """
    return _render_for(
        MessageKind(message.kind),
        dsr,
        decode_context(message.render_context),
        settings=settings,
        queued_at=message.created_at,
    )


async def queue_message(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    kind: MessageKind,
    context: dict[str, Any],
    now: datetime,
) -> bool:
    """Queue a message to the request's subject; False when there is no email address."""
    row = message_row(settings=settings, dsr=dsr, kind=kind, context=context, now=now)
    if row is None:
        return False
    session.add(MailMessage(**row))
    return True


def queue_officer_alert(
    session: AsyncSession,
    *,
    settings: Settings,
    recipient: str,
    context: dict[str, Any],
    now: datetime,
) -> None:
    """Queue an alert to the officers' address; no request row is attached, so it never
    appears among a subject's messages."""
    subject, text, html = render(MessageKind.ALERT, context, settings=settings)
    key = settings.secret_key
    session.add(
        MailMessage(
            id=uuid.uuid4(),
            request_id=None,
            kind=MessageKind.ALERT.value,
            recipient_encrypted=encrypt_secret(recipient, secret_key=key),
            subject=subject[:300],
            body_encrypted=encrypt_secret(text, secret_key=key),
            html_encrypted=encrypt_secret(html, secret_key=key) if html else None,
            status="pending",
            attempt_count=0,
            next_attempt_at=now,
            created_at=now,
            trace_id=current_request_id(),
        )
    )
