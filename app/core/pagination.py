"""Keyset pagination shared by every list: the page shape, opaque cursors, newest first on
(created_at, id)."""

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.errors import BadRequest

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """Every list answers with this shape; pass ``next_cursor`` back as ``cursor``."""

    items: list[ItemT]
    next_cursor: str | None = None


def _invalid() -> BadRequest:
    return BadRequest(
        "The cursor is not valid; use next_cursor from a previous page.", title="Invalid cursor"
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return _b64(json.dumps([created_at.isoformat(), str(row_id)]).encode())


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, row_id = json.loads(_unb64(cursor))
        # Any JSON can arrive here: uuid.UUID(1) raises AttributeError, not ValueError.
        if not isinstance(created_at, str) or not isinstance(row_id, str):
            raise ValueError("not a cursor")
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        # Rows are compared in UTC: an offset that moves the instant out of datetime's range
        # (year 1 at +14:00) raises OverflowError here, not later in the database driver.
        return parsed.astimezone(UTC), uuid.UUID(row_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise _invalid() from None


def encode_id_cursor(row_id: int) -> str:
    return _b64(f"e{row_id}".encode())


def decode_id_cursor(cursor: str) -> int:
    try:
        raw = _unb64(cursor).decode()
        if not raw.startswith("e") or not raw[1:].isascii():
            raise ValueError("not an id cursor")
        row_id = int(raw[1:])
        if not 0 <= row_id < 2**62:  # beyond BIGINT the database itself would fail
            raise ValueError("out of range")
        return row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid() from None


async def newest_first(
    session: AsyncSession, query: Select[Any], model: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``query`` ordered by (created_at, id) descending, and the next cursor."""
    created_at, row_id = col(model.created_at), col(model.id)
    if cursor:
        after_created, after_id = decode_cursor(cursor)
        query = query.where(
            or_(created_at < after_created, and_(created_at == after_created, row_id < after_id))
        )
    query = query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id)


async def oldest_first_by_id(
    session: AsyncSession, query: Select[Any], model: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``query`` ordered by its integer ``id`` ascending, and the next cursor."""
    row_id = col(model.id)
    if cursor:
        query = query.where(row_id > decode_id_cursor(cursor))
    query = query.order_by(row_id).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_id_cursor(rows[-1].id)
