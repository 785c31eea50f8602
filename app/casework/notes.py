"""Internal notes on a request: encrypted at rest, never sent to the subject or to webhooks.

The audit trail records that a note was added and by whom, never its text.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import pagination
from app.core.config import Settings
from app.core.crypto import decrypt_secret, encrypt_secret
from app.models import DsrRequest, RequestNote
from app.requests import audit

# Shown in place of a note whose text cannot be decrypted (DSR_SECRET_KEY was changed).
UNREADABLE = "[this note cannot be decrypted with the current DSR_SECRET_KEY]"


async def add_note(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    text: str,
    author: str,
    now: datetime,
) -> RequestNote:
    """Store the note (text encrypted) and audit ``request.note_added`` with its id only.

    Allowed in every status: a closed case still gathers notes (a complaint, a follow-up).
    """
    note = RequestNote(
        request_id=dsr.id,
        author=author,
        text_encrypted=encrypt_secret(text, secret_key=settings.secret_key),
        created_at=now,
    )
    session.add(note)
    await session.flush()  # the id, for the audit entry
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor=author,
        audit_type="request.note_added",
        audit_data={"note_id": note.id},
    )
    return note


async def list_notes(
    session: AsyncSession, *, dsr: DsrRequest, limit: int, cursor: str | None
) -> tuple[list[RequestNote], str | None]:
    """The request's notes, oldest first, keyset-paginated on the note id."""
    query = select(RequestNote).where(col(RequestNote.request_id) == dsr.id)
    return await pagination.oldest_first_by_id(
        session, query, RequestNote, limit=limit, cursor=cursor
    )


def note_text(note: RequestNote, settings: Settings) -> str:
    return decrypt_secret(note.text_encrypted, secret_keys=settings.reading_keys) or UNREADABLE
