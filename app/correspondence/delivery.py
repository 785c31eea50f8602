"""Keeping each outbound message's delivery outcome on the message itself.

The mail outbox row carrying a message is wiped once sent and may be cleaned up later; this
worker sweep copies its final status (``sent`` or ``failed``), when and after how many
attempts, onto the message, so the thread shows it for as long as the message exists.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.models import MailMessage, RequestMessage

FINAL = ("sent", "failed")


async def record_delivery(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 500
) -> int:
    """Copy final mail outcomes onto messages still shown as queued; returns how many."""
    rows = (
        await session.execute(
            select(RequestMessage, MailMessage)
            .join(MailMessage, col(MailMessage.id) == col(RequestMessage.mail_id))
            .where(
                col(RequestMessage.delivery_status) == "queued",
                col(MailMessage.status).in_(FINAL),
            )
            .order_by(col(RequestMessage.created_at))
            .limit(limit)
            .with_for_update(of=RequestMessage, skip_locked=True)
        )
    ).all()
    for message, mail in rows:
        message.delivery_status = mail.status
        message.delivered_at = mail.sent_at
        message.delivery_attempts = mail.attempt_count
        session.add(message)
    return len(rows)
