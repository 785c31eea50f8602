"""Bulk actions: reject or cancel many requests at once, each answered on its own.

Each request goes through the same ``lifecycle`` function as the single action (same audit
entry, webhook event and subject mail), locked one at a time. A request that cannot be acted
on (missing, not visible, already closed) gets its own answer; the others still proceed.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scopes import Principal
from app.core.config import Settings
from app.core.errors import Conflict, NotFound
from app.enums import RejectReason
from app.requests import lifecycle
from app.requests.deps import visible_request

MAX_IDS = 100


@dataclass
class Outcome:
    """One id's answer: ``status`` 200 (done), 404, 409 or 422 (not a request id)."""

    id: uuid.UUID | None
    status: int
    request_status: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BulkAction:
    action: str  # "reject" | "cancel"
    reason: RejectReason | None = None
    explanation: str | None = None
    note: str | None = None


def _parse(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def _act_on(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    request_id: uuid.UUID,
    action: BulkAction,
    now: datetime,
) -> Outcome:
    try:
        dsr = await visible_request(session, principal, request_id, for_update=True)
    except NotFound as exc:
        return Outcome(id=request_id, status=404, detail=exc.detail)
    try:
        if action.action == "reject":
            assert action.reason is not None  # the body requires it
            await lifecycle.reject(
                session,
                settings=settings,
                dsr=dsr,
                reason=action.reason,
                explanation=action.explanation,
                actor=principal.client_id,
                now=now,
            )
        else:
            await lifecycle.cancel(
                session,
                settings=settings,
                dsr=dsr,
                note=action.note,
                actor=principal.client_id,
                now=now,
            )
    except Conflict as exc:
        # lifecycle checks the status before it changes anything: nothing to undo.
        return Outcome(id=request_id, status=409, request_status=dsr.status, detail=exc.detail)
    return Outcome(id=request_id, status=200, request_status=dsr.status)


async def run(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    ids: list[str],
    action: BulkAction,
    now: datetime,
) -> list[Outcome]:
    """Apply ``action`` to each id; the outcomes come back in the order of ``ids``.

    Rows are locked in id order, not the caller's, so two overlapping bulk calls never wait
    on each other in a cycle. An id listed twice (in any spelling) is acted on once.
    """
    parsed = [_parse(raw) for raw in ids]
    outcomes: dict[uuid.UUID, Outcome] = {}
    for unique_id in sorted({request_id for request_id in parsed if request_id is not None}):
        outcomes[unique_id] = await _act_on(
            session,
            settings=settings,
            principal=principal,
            request_id=unique_id,
            action=action,
            now=now,
        )
    answers = []
    seen: set[uuid.UUID] = set()
    for maybe_id in parsed:
        if maybe_id is None:
            answers.append(Outcome(id=None, status=422, detail="Not a request id (a UUID)."))
        elif maybe_id in seen:
            answers.append(
                Outcome(id=maybe_id, status=422, detail="Listed more than once; acted on once.")
            )
        else:
            seen.add(maybe_id)
            answers.append(outcomes[maybe_id])
    return answers
