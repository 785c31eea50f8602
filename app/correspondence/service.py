"""Writing to the subject from the case, recording their replies, and the thread.

A clarification stops the clock on the day it is sent (``lifecycle.pause``, reason
``awaiting_clarification``); the reply that answers it restarts the clock as of the local
date it was received (``lifecycle.resume(resumed_on=...)``), so the stopped days are exactly
the days the clock waited (DESIGN "Stop the clock"). Texts are encrypted at rest; the audit
trail records message ids and kinds, never text.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import pagination
from app.core.config import Settings
from app.core.crypto import decrypt_secret, encrypt_secret
from app.core.errors import Conflict, InvalidTransition, UnprocessableEntity
from app.core.time import iso_z
from app.correspondence.schemas import (
    Delivery,
    MessageChannel,
    MessageCreate,
    MessagePublic,
    OutboundKind,
    ReplyCreate,
)
from app.enums import PauseReason, RequestStatus
from app.mail import messages
from app.models import DsrRequest, MailMessage, RequestMessage
from app.register.service import load_register
from app.requests import audit, legal_clock, lifecycle

OUTBOUND = "outbound"
INBOUND = "inbound"
REPLY = "reply"

# Mail-outbox status -> the delivery status officers read.
_DELIVERY = {"pending": "queued", "sent": "sent", "failed": "failed"}


class NoEmailAddress(Conflict):
    title = "No email address"
    slug = "no-email-address-to-write-to"


def _awaiting_clarification(dsr: DsrRequest) -> bool:
    return (
        dsr.status == RequestStatus.PAUSED
        and dsr.pause_reason == PauseReason.AWAITING_CLARIFICATION
    )


def _ensure_clarification_allowed(dsr: DsrRequest) -> None:
    """A clarification stops a running clock, or joins a clarification pause already on."""
    if dsr.status == RequestStatus.IN_PROGRESS or _awaiting_clarification(dsr):
        return
    if dsr.status == RequestStatus.AWAITING_VERIFICATION:
        detail = (
            "The clock has not started (identity is not yet verified), so there is nothing to "
            "stop: send an information message instead."
        )
    elif dsr.status == RequestStatus.PAUSED:
        detail = "The request is paused awaiting a fee; resume it before asking for clarification."
    else:
        detail = f"The request is {dsr.status}: send an information message instead."
    raise InvalidTransition(
        detail,
        extra={
            "current_status": dsr.status,
            "allowed_from": [RequestStatus.IN_PROGRESS.value, RequestStatus.PAUSED.value],
        },
    )


async def send_message(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    body: MessageCreate,
    actor: str,
    now: datetime,
) -> RequestMessage:
    """Write to the subject: queue the mail (or record a letter) and, for a clarification
    on a running request, pause it ``awaiting_clarification`` today.

    Raises InvalidTransition (409) for a clarification the status does not allow, and
    NoEmailAddress (409) for an email to a subject the request holds no address for.
    """
    clarification = body.kind == OutboundKind.CLARIFICATION
    if clarification:
        _ensure_clarification_allowed(dsr)
    pauses = clarification and dsr.status == RequestStatus.IN_PROGRESS
    message = RequestMessage(
        id=uuid.uuid4(),
        request_id=dsr.id,
        direction=OUTBOUND,
        kind=body.kind.value,
        channel=body.channel.value,
        text_encrypted=encrypt_secret(body.text, secret_key=settings.secret_key),
        author=actor,
        created_at=now,
    )
    if body.channel == MessageChannel.EMAIL:
        if not dsr.subject_email:
            raise NoEmailAddress(
                "The request holds no email address for the subject. Write to them by post, "
                'then record the letter here with "channel": "post".'
            )
        row = messages.message_row(
            settings=settings,
            dsr=dsr,
            kind=messages.MessageKind(body.kind.value),
            context={
                "text": body.text,
                "controller_name": load_register(settings).controller.name,
                "clock_paused": clarification,
            },
            now=now,
        )
        assert row is not None  # the address was checked above
        session.add(MailMessage(**row))
        message.mail_id = row["id"]
        message.delivery_status = "queued"
    else:
        message.delivery_status = "sent"
    session.add(message)
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor=actor,
        audit_type="request.message_sent",
        audit_data={
            "message_id": str(message.id),
            "kind": message.kind,
            "channel": message.channel,
        },
    )
    if pauses:
        await lifecycle.pause(
            session,
            settings=settings,
            dsr=dsr,
            reason=PauseReason.AWAITING_CLARIFICATION,
            note=None,
            actor=actor,
            now=now,
        )
    else:
        # The request changed (its thread did) even when its status did not.
        dsr.updated_at = now
        session.add(dsr)
    return message


async def _answered_message(session: AsyncSession, dsr: DsrRequest) -> RequestMessage | None:
    """The message a reply answers: the latest clarification, else the latest message sent."""
    for kinds in ([OutboundKind.CLARIFICATION.value], [kind.value for kind in OutboundKind]):
        found = (
            await session.execute(
                select(RequestMessage)
                .where(
                    col(RequestMessage.request_id) == dsr.id,
                    col(RequestMessage.direction) == OUTBOUND,
                    col(RequestMessage.kind).in_(kinds),
                )
                .order_by(col(RequestMessage.created_at).desc(), col(RequestMessage.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if found is not None:
            return found
    return None


async def record_reply(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    body: ReplyCreate,
    actor: str,
    now: datetime,
) -> RequestMessage:
    """Record the subject's answer; a clarification pause ends on the day it was received.

    Raises Conflict (409) when nothing was sent for the subject to answer, and
    UnprocessableEntity (422) for a ``received_at`` in the future or before the message it
    answers.
    """
    received_at = body.received_at
    if received_at > now:
        raise UnprocessableEntity(
            "received_at is in the future.", title="Reply received in the future"
        )
    answered = await _answered_message(session, dsr)
    if answered is None:
        raise Conflict(
            "No message was sent to the subject on this request, so there is nothing to reply "
            "to. Record an answer to a question asked outside the service with "
            "POST /v1/requests/{id}/resume.",
            title="Nothing to reply to",
        )
    received_on = legal_clock.today(settings, received_at)
    # By day, as the clock counts: a letter's arrival is known to the day, not the minute.
    asked_on = legal_clock.today(settings, answered.created_at)
    if received_on < asked_on:
        raise UnprocessableEntity(
            f"received_at is before the day the message it answers was sent ({asked_on}).",
            title="Reply received before the question",
        )
    if _awaiting_clarification(dsr) and dsr.paused_on is not None and received_on < dsr.paused_on:
        raise UnprocessableEntity(
            f"received_at is before the day the clock was stopped ({dsr.paused_on}).",
            title="Reply received before the pause",
        )
    reply = RequestMessage(
        id=uuid.uuid4(),
        request_id=dsr.id,
        direction=INBOUND,
        kind=REPLY,
        channel=answered.channel,
        text_encrypted=encrypt_secret(body.text, secret_key=settings.secret_key),
        author=actor,
        received_at=received_at,
        created_at=now,
    )
    session.add(reply)
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor=actor,
        audit_type="request.reply_recorded",
        audit_data={
            "message_id": str(reply.id),
            "answers": str(answered.id),
            "received_on": received_on.isoformat(),
        },
    )
    if _awaiting_clarification(dsr):
        await lifecycle.resume(
            session, settings=settings, dsr=dsr, actor=actor, now=now, resumed_on=received_on
        )
    else:
        dsr.updated_at = now
        session.add(dsr)
    return reply


async def list_messages(
    session: AsyncSession, *, dsr: DsrRequest, limit: int, cursor: str | None
) -> tuple[list[tuple[RequestMessage, MailMessage | None]], str | None]:
    """The thread oldest first, each outbound message with the mail row carrying it."""
    query = (
        select(RequestMessage, MailMessage)
        .outerjoin(MailMessage, col(MailMessage.id) == col(RequestMessage.mail_id))
        .where(col(RequestMessage.request_id) == dsr.id)
    )
    if cursor:
        after_created, after_id = pagination.decode_cursor(cursor)
        query = query.where(
            (col(RequestMessage.created_at) > after_created)
            | (
                (col(RequestMessage.created_at) == after_created)
                & (col(RequestMessage.id) > after_id)
            )
        )
    query = query.order_by(col(RequestMessage.created_at), col(RequestMessage.id)).limit(limit + 1)
    rows: list[tuple[RequestMessage, MailMessage | None]] = [
        (message, mail) for message, mail in (await session.execute(query)).all()
    ]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1][0]
    return rows, pagination.encode_cursor(last.created_at, last.id)


def message_public(
    message: RequestMessage, mail: MailMessage | None, *, settings: Settings
) -> MessagePublic:
    delivery = None
    if message.direction == OUTBOUND:
        if mail is not None:
            delivery = Delivery(
                status=_DELIVERY.get(mail.status, "queued"),
                sent_at=mail.sent_at,
                attempts=mail.attempt_count,
            )
        elif message.channel == MessageChannel.POST:
            delivery = Delivery(status="sent", sent_at=message.created_at, attempts=0)
        else:
            # The outbox row is gone: what the delivery sweep recorded on the message.
            delivery = Delivery(
                status=message.delivery_status or "queued",
                sent_at=message.delivered_at,
                attempts=message.delivery_attempts,
            )
    return MessagePublic(
        id=message.id,
        direction=message.direction,
        kind=message.kind,
        channel=message.channel,
        text=decrypt_secret(message.text_encrypted, secret_keys=settings.reading_keys),
        author=message.author if message.direction == OUTBOUND else None,
        recorded_by=message.author,
        created_at=message.created_at,
        received_at=message.received_at,
        delivery=delivery,
    )


# The processing register's data category for correspondence about a request: an access
# pack carries the request's own thread only when the register declares it.
CORRESPONDENCE_CATEGORY = "correspondence"
# The columns of the thread in an access pack, in order.
PACK_COLUMNS = ("message_id", "direction", "kind", "channel", "date", "text")


def thread_records(rows: Sequence[RequestMessage], *, settings: Settings) -> list[tuple[Any, ...]]:
    """The thread as rows of ``PACK_COLUMNS``, as the subject reads it in their access pack."""
    return [
        (
            str(message.id),
            "from us to you" if message.direction == OUTBOUND else "from you to us",
            message.kind,
            message.channel,
            iso_z(message.received_at or message.created_at),
            decrypt_secret(message.text_encrypted, secret_keys=settings.reading_keys),
        )
        for message in rows
    ]


async def pack_thread(
    session: AsyncSession, *, settings: Settings, request_id: uuid.UUID
) -> list[tuple[Any, ...]]:
    """The request's own thread for its access pack, oldest first; empty unless the
    processing register declares the ``correspondence`` data category."""
    if CORRESPONDENCE_CATEGORY not in load_register(settings).data_categories:
        return []
    rows = await session.execute(
        select(RequestMessage)
        .where(col(RequestMessage.request_id) == request_id)
        .order_by(col(RequestMessage.created_at), col(RequestMessage.id))
    )
    return thread_records(list(rows.scalars()), settings=settings)
