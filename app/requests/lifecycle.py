"""Request lifecycle: one transition table, one function per action.

Every action writes the new state, an audit entry, (where announced) an outbox row and (where
the subject must be told) a queued message in the caller's transaction. Identity checks live
in ``app.verification``.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import deadlines
from app.core.config import Settings
from app.core.errors import Conflict, InvalidTransition
from app.enums import PauseReason, RejectReason, RequestStatus
from app.mail import messages
from app.metrics.instruments import request_completed
from app.models import DsrRequest
from app.requests import audit, legal_clock
from app.requests.rejection import rejection_notice

# A request completed by hand: the completion message says how the result will arrive.
HOW_TO_COLLECT = (
    "We will send the result to you by a secure method. If it has not reached you within a "
    "few days, contact us quoting the reference of your request."
)


class Action(StrEnum):
    VERIFY = "verify"
    PAUSE = "pause"
    RESUME = "resume"
    EXTEND = "extend"
    REJECT = "reject"
    CANCEL = "cancel"
    COMPLETE = "complete"
    FULFIL = "fulfil"


_AWAITING = RequestStatus.AWAITING_VERIFICATION
_RUNNING = RequestStatus.IN_PROGRESS
_PAUSED = RequestStatus.PAUSED

# The statuses each action may start from; anything else answers 409.
ALLOWED_FROM: dict[Action, frozenset[RequestStatus]] = {
    Action.VERIFY: frozenset({_AWAITING}),
    Action.PAUSE: frozenset({_RUNNING}),
    Action.RESUME: frozenset({_PAUSED}),
    Action.EXTEND: frozenset({_RUNNING, _PAUSED}),
    Action.REJECT: frozenset({_AWAITING, _RUNNING, _PAUSED}),
    Action.CANCEL: frozenset({_AWAITING, _RUNNING, _PAUSED}),
    Action.COMPLETE: frozenset({_RUNNING}),
    Action.FULFIL: frozenset({_RUNNING}),
}


def allowed_actions(dsr: DsrRequest) -> frozenset[Action]:
    """The actions the request's current status allows (the console offers only these)."""
    return frozenset(action for action, allowed in ALLOWED_FROM.items() if dsr.status in allowed)


def ensure_allowed(dsr: DsrRequest, action: Action) -> None:
    allowed = ALLOWED_FROM[action]
    if action not in allowed_actions(dsr):
        raise InvalidTransition(
            f"Cannot {action.value} a request whose status is {dsr.status}.",
            extra={"current_status": dsr.status, "allowed_from": sorted(allowed)},
        )


def record_change(
    session: AsyncSession,
    dsr: DsrRequest,
    *,
    settings: Settings,
    now: datetime,
    actor: str,
    event: str,
    data: dict[str, Any] | None = None,
    announce: bool = True,
    webhook_extra: dict[str, Any] | None = None,
) -> DsrRequest:
    """Stamp the change and write its audit entry (and, when announced, its outbox row)."""
    dsr.updated_at = now
    session.add(dsr)
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor=actor,
        audit_type=event,
        audit_data=data,
        webhook_event=event if announce else None,
        webhook_extra=webhook_extra,
    )
    return dsr


async def pause(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    reason: PauseReason,
    note: str | None,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Stop the clock while waiting for clarification or a fee."""
    ensure_allowed(dsr, Action.PAUSE)
    dsr.status = RequestStatus.PAUSED.value
    dsr.paused_on = legal_clock.today(settings, now)
    dsr.pause_reason = reason.value
    return record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.paused",
        data={"reason": reason.value, "note": note},
    )


async def resume(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    actor: str,
    now: datetime,
    resumed_on: date | None = None,
) -> DsrRequest:
    """Restart the clock: clarification adds the paused days; a fee restarts it today.

    ``resumed_on`` (default: today) is the local date the clock restarts, such as the day
    the subject's answer was received; never before the pause, never after today.
    """
    ensure_allowed(dsr, Action.RESUME)
    today = legal_clock.today(settings, now)
    paused_on = dsr.paused_on or today
    resumed_on = min(max(resumed_on or today, paused_on), today)
    data: dict[str, Any] = {
        "reason": dsr.pause_reason,
        "paused_on": paused_on.isoformat(),
        "resumed_on": resumed_on.isoformat(),
    }
    if dsr.pause_reason == PauseReason.AWAITING_FEE:
        # The fee is a clock start: earlier stops belong to the superseded clock.
        dsr.paused_days = 0
        legal_clock.start_clock(dsr, settings, started_on=resumed_on)
        data["clock_started_on"] = resumed_on.isoformat()
    else:
        stopped = deadlines.paused_day_count(paused_on, resumed_on)
        dsr.paused_days += stopped
        legal_clock.recompute(dsr, settings)
        data["days_not_counted"] = stopped
    dsr.status = RequestStatus.IN_PROGRESS.value
    dsr.paused_on = None
    dsr.pause_reason = None
    return record_change(
        session, dsr, settings=settings, now=now, actor=actor, event="request.resumed", data=data
    )


async def extend(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    reason: str,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Extend once by two further months (CCPA: 45 days), before the original due date."""
    ensure_allowed(dsr, Action.EXTEND)
    if dsr.extended:
        raise Conflict(
            "This request has already been extended; it can be extended only once.",
            title="Already extended",
        )
    if not legal_clock.extension_allowed(dsr, settings, now):
        raise Conflict(
            "The extension must be made on or before the original due date.",
            title="Too late to extend",
        )
    dsr.extended = True
    dsr.extension_reason = reason
    legal_clock.recompute(dsr, settings)
    assert dsr.due_date is not None  # extension_allowed() needs a running clock
    # The law requires telling the subject of the extension and why within the first month.
    await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.EXTENSION,
        context={"due_date": dsr.due_date, "reason": reason},
        now=now,
    )
    return record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.extended",
        data={"reason": reason, "due_date": str(dsr.due_date)},
    )


def _close(dsr: DsrRequest, status: RequestStatus, *, actor: str, now: datetime) -> None:
    dsr.status = status.value
    dsr.closed_at = now
    dsr.closed_by = actor
    dsr.paused_on = None


async def reject(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    reason: RejectReason,
    explanation: str | None,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Refuse the request; the answer carries the subject's remedies."""
    ensure_allowed(dsr, Action.REJECT)
    _close(dsr, RequestStatus.REJECTED, actor=actor, now=now)
    dsr.outcome_reason = reason.value
    dsr.outcome_note = explanation
    if reason == RejectReason.IDENTITY_NOT_VERIFIED and dsr.verification_status == "pending":
        dsr.verification_status = "failed"
    await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.REJECTION,
        context={"rejection": rejection_notice(dsr.regulation, reason.value, explanation)},
        now=now,
    )
    return record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.rejected",
        data={"reason": reason.value, "explanation": explanation},
    )


async def cancel(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    note: str | None,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Withdraw the request (the subject withdrew it, or it was logged in error)."""
    ensure_allowed(dsr, Action.CANCEL)
    _close(dsr, RequestStatus.CANCELLED, actor=actor, now=now)
    dsr.outcome_note = note
    return record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.cancelled",
        data={"note": note},
    )


async def complete(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    summary: str | None,
    actor: str,
    now: datetime,
    how_to_collect: str = HOW_TO_COLLECT,
) -> DsrRequest:
    """Record that the request has been answered (by hand, or by fulfilment)."""
    ensure_allowed(dsr, Action.COMPLETE)
    _close(dsr, RequestStatus.COMPLETED, actor=actor, now=now)
    dsr.outcome_note = summary
    on_time = dsr.due_at is None or now <= dsr.due_at
    request_completed(session, request_type=dsr.type, on_time=on_time)
    await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.COMPLETION,
        context={"summary": summary, "how_to_collect": how_to_collect},
        now=now,
    )
    return record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.completed",
        data={"summary": summary, "on_time": on_time},
    )
