"""Typed dependencies every route may take: the session, the settings, the time, and the
shared intake machinery (sessionmaker and group committer) held by the app."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import get_session
from app.core.group_commit import GroupCommitter

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_settings_from_app(request: Request) -> Settings:
    # async: a plain def would cost a thread-pool hop on every request.
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]


async def get_now(request: Request) -> datetime:
    """The current time from the app's clock (tests replace ``app.state.clock``)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


NowDep = Annotated[datetime, Depends(get_now)]


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """For work outside the route's own transaction (intake's idempotency and assertion reads)."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_committer(request: Request) -> GroupCommitter:
    """The app's group committer: concurrent intakes share one transaction."""
    committer: GroupCommitter = request.app.state.committer
    return committer


CommitterDep = Annotated[GroupCommitter, Depends(get_committer)]
