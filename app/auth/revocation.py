"""Which clients' access tokens are still honoured, as seen by one process.

A token is a signed statement valid for up to ``DSR_ACCESS_TOKEN_TTL``; revoking it means
consulting the clients table, and doing so on every call would put a query on every request.
So each process keeps the active clients in memory (client_id -> revocation mark) and reads
them again once the copy is older than ``DSR_CLIENT_REFRESH_INTERVAL``: a client disabled,
deleted or rotated in another process loses its older tokens here within that interval.

It is an allowlist, not a list of disabled clients, so a client disabled or deleted in the
database by hand is refused too. A client created since the last read (a miss) is looked up
on its own; a miss that is not an active client is remembered until the next read, so a
revoked client's tokens cost at most one query per interval.
"""

import asyncio
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from app.auth.scopes import Principal
from app.auth.tokens import revocation_mark
from app.models import Client


class ActiveClients:
    """The active clients and their revocation marks, re-read every ``refresh_interval`` s."""

    def __init__(self, engine: AsyncEngine, *, refresh_interval: float) -> None:
        self.engine = engine
        self.refresh_interval = refresh_interval
        self._marks: dict[str, int] = {}
        self._refused: set[str] = set()
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()

    async def admits(self, principal: Principal) -> bool:
        """Whether the principal's client is active and its token not older than a revocation."""
        if time.monotonic() >= self._fresh_until:
            await self._refresh()
        mark = self._marks.get(principal.client_id)
        if mark is None:
            mark = await self._look_up(principal.client_id)
            if mark is None:
                return False
        return principal.revocation_mark >= mark

    def invalidate(self) -> None:
        """Read the clients again before the next decision (this process changed one)."""
        self._fresh_until = 0.0

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() < self._fresh_until:
                return  # another request refreshed while this one waited
            started = time.monotonic()
            async with self.engine.connect() as connection:
                rows = await connection.execute(
                    select(col(Client.client_id), col(Client.tokens_revoked_at)).where(
                        col(Client.active)
                    )
                )
                marks = {client_id: revocation_mark(revoked) for client_id, revoked in rows}
            self._marks, self._refused = marks, set()
            self._fresh_until = started + self.refresh_interval

    async def _look_up(self, client_id: str) -> int | None:
        if client_id in self._refused:
            return None
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(col(Client.tokens_revoked_at)).where(
                        col(Client.client_id) == client_id, col(Client.active)
                    )
                )
            ).first()
        if row is None:
            self._refused.add(client_id)
            return None
        self._marks[client_id] = revocation_mark(row[0])
        return self._marks[client_id]
