"""Typed dependencies every route may take: the session, the settings, the time, and the
shared intake machinery (sessionmaker and group committer) held by the app."""

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Intake:
    """What intake takes from the app, as one dependency: FastAPI solves each dependency on
    every request, and intake is the hot path."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    # Concurrent intakes share one transaction.
    committer: GroupCommitter
    now: datetime


async def get_intake(request: Request) -> Intake:
    state = request.app.state
    return Intake(state.settings, state.sessionmaker, state.committer, state.clock())


IntakeDep = Annotated[Intake, Depends(get_intake)]
