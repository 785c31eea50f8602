"""Calendar feeds: open requests' due dates as iCalendar, behind a secret URL per feed.

A calendar application cannot send a bearer token, so the URL itself is the permission: its
token is shown once and only its keyed hash is stored; revoking the feed ends it. Events
carry the request's reference and type, never the subject's identities.
"""

import secrets
import uuid
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import keyed_hash
from app.core.errors import NotFound
from app.keys import lookup
from app.models import CalendarFeed, DsrRequest
from app.reports.schemas import CalendarFeedCreated, CalendarFeedPublic
from app.requests import legal_clock

TOKEN_PURPOSE = "calendar-feed"
TOKEN_PREFIX = "cal_"
# Longer text cannot be a token we issued: refused before hashing.
MAX_TOKEN_LENGTH = 100
PRODID = "-//DSR service//Due dates//EN"


def _hash(token: str, settings: Settings) -> str:
    return keyed_hash(token, secret_key=settings.secret_key, purpose=TOKEN_PURPOSE)


def feed_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/v1/calendar/{token}.ics"


def feed_public(feed: CalendarFeed) -> CalendarFeedPublic:
    return CalendarFeedPublic(
        id=feed.id, name=feed.name, created_by=feed.created_by, created_at=feed.created_at
    )


async def create_feed(
    session: AsyncSession, *, settings: Settings, name: str, actor: str, now: datetime
) -> CalendarFeedCreated:
    """A new feed; the answer is the only place its token and URL ever appear."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    feed = CalendarFeed(
        name=name, token_hash=_hash(token, settings), created_by=actor, created_at=now
    )
    session.add(feed)
    await session.flush()
    return CalendarFeedCreated(
        **feed_public(feed).model_dump(), url=feed_url(settings, token), token=token
    )


async def list_feeds(session: AsyncSession) -> list[CalendarFeed]:
    """Feeds not revoked, newest first."""
    rows = await session.execute(
        select(CalendarFeed)
        .where(col(CalendarFeed.revoked_at).is_(None))
        .order_by(col(CalendarFeed.created_at).desc(), col(CalendarFeed.id))
    )
    return list(rows.scalars())


async def revoke_feed(session: AsyncSession, *, feed_id: uuid.UUID, now: datetime) -> None:
    """Its URL answers 404 from now on; 404 if there is no such feed (or it was revoked)."""
    feed = await session.get(CalendarFeed, feed_id, with_for_update=True)
    if feed is None or feed.revoked_at is not None:
        raise NotFound("No such calendar feed.")
    feed.revoked_at = now


async def feed_by_token(session: AsyncSession, *, settings: Settings, token: str) -> CalendarFeed:
    """The live feed behind a token; one neutral 404 for a wrong, revoked or odd token."""
    feed = None
    if token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH:
        feed = (
            await session.execute(
                select(CalendarFeed).where(
                    col(CalendarFeed.token_hash).in_(
                        await lookup.lookup_hashes(
                            session, settings=settings, purpose=TOKEN_PURPOSE, value=token
                        )
                    ),
                    col(CalendarFeed.revoked_at).is_(None),
                )
            )
        ).scalar_one_or_none()
    if feed is None:
        raise NotFound("Not a calendar feed address.")
    return feed


async def ics(
    session: AsyncSession, *, settings: Settings, feed: CalendarFeed, now: datetime
) -> bytes:
    """The feed: one all-day event on the due date of each open request that has one."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", feed.name)
    calendar.add("x-wr-timezone", settings.timezone)
    rows = await session.execute(
        select(col(DsrRequest.id), col(DsrRequest.type), col(DsrRequest.due_date))
        .where(
            col(DsrRequest.status).in_(legal_clock.OPEN_STATUSES),
            col(DsrRequest.due_date).is_not(None),
        )
        .order_by(col(DsrRequest.due_date), col(DsrRequest.id))
    )
    for request_id, request_type, due_date in rows:
        if due_date is None:  # excluded by the query; for the type checker
            continue
        event = Event()
        # Stable across fetches, so calendars update the event rather than duplicate it.
        event.add("uid", f"{request_id}@dsr-due-date")
        event.add("dtstamp", now)
        event.add("dtstart", due_date)
        event.add("dtend", due_date + timedelta(days=1))
        event.add("summary", f"Due: {request_type} request {request_id}")
        event.add("url", f"{settings.public_url}/v1/requests/{request_id}")
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return calendar.to_ical()
