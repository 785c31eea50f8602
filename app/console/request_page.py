"""The request page's view-model: everything one case shows, read through the same services
as the API (request_public, the audit trail, notes, messages, tasks, exports, the plan), and
which actions its status allows (``lifecycle.allowed_actions``)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.scopes import Principal
from app.casework import notes
from app.console.board import Light, assignable_people, display_name, people_names, traffic_light
from app.core.config import Settings
from app.core.errors import AppError
from app.correspondence import service as correspondence
from app.enums import FulfilmentStatus, PauseReason, RejectReason, RequestStatus, RequestType
from app.exports import service as exports
from app.fulfilment import approval, consumer_tasks
from app.fulfilment import plan as planning
from app.fulfilment.service import BUSY
from app.models import DsrRequest
from app.requests import legal_clock, lifecycle
from app.requests import service as requests
from app.requests.duplicates import subject_history

# Types whose fulfilment changes or reads the sources: the plan is worth a look first.
PLANNED_TYPES = frozenset(RequestType)
# While the job is queued or running the page reloads itself (no script: a meta refresh).
REFRESHING = frozenset({FulfilmentStatus.QUEUED.value, FulfilmentStatus.RUNNING.value})

# The actions section, in the order offered.
ACTION_ORDER = (
    lifecycle.Action.FULFIL,
    lifecycle.Action.COMPLETE,
    lifecycle.Action.PAUSE,
    lifecycle.Action.RESUME,
    lifecycle.Action.EXTEND,
    lifecycle.Action.REJECT,
    lifecycle.Action.CANCEL,
)

# Flash messages after an action: the query parameter is a key, the text is fixed here.
DONE_MESSAGES = {
    "email-code": "A code was emailed to the subject.",
    "document": "The document check was recorded.",
    "assigned": "The owner was changed.",
    "note": "Your note was added.",
    "message": "Your message was recorded and queued.",
    "reply": "Their answer was recorded.",
    "approved": "The plan was approved.",
    "pause": "The request is paused.",
    "resume": "The request is running again.",
    "extend": "The deadline was extended.",
    "reject": "The request was refused; the subject is told their rights.",
    "cancel": "The request was cancelled.",
    "complete": "The request is completed; the subject is told.",
    "fulfil": "Fulfilment was queued; this page follows its progress.",
}

PAUSE_REASONS = [
    (PauseReason.AWAITING_CLARIFICATION.value, "Awaiting clarification (stops the clock)"),
    (PauseReason.AWAITING_FEE.value, "Awaiting a fee (the clock restarts when it arrives)"),
]
REJECT_REASONS = [
    (RejectReason.MANIFESTLY_UNFOUNDED.value, "Manifestly unfounded"),
    (RejectReason.EXCESSIVE.value, "Excessive"),
    (RejectReason.IDENTITY_NOT_VERIFIED.value, "Identity not verified"),
    (RejectReason.EXEMPTION.value, "An exemption applies"),
]


def clock_state(dsr: DsrRequest) -> tuple[str, str]:
    """The clock in words (the exact phrase, then a line saying why)."""
    if dsr.status == RequestStatus.PAUSED and dsr.pause_reason == PauseReason.AWAITING_FEE:
        return "Waiting for the fee", "The clock restarts on the day the fee arrives."
    if dsr.status == RequestStatus.PAUSED:
        return "Clock stopped", "Paused for clarification: these days do not count."
    if dsr.clock_started_on is None:
        if dsr.status in legal_clock.OPEN_STATUSES:
            return "Clock not started", "It starts when the subject's identity is confirmed."
        return "Clock not started", f"The request was {dsr.status} before its clock started."
    if dsr.status == RequestStatus.IN_PROGRESS:
        return "Clock running", "Every day counts towards the deadline."
    return "Clock stopped", f"The request is {dsr.status}."


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    type: str
    actor: str
    data: dict[str, Any]


async def load_plan(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    request_id: uuid.UUID,
    settings: Settings,
    now: datetime,
) -> tuple[dict[str, Any] | None, str | None]:
    """The dry-run plan (as ``GET /v1/requests/{id}/plan``), or why there is none.

    It asks every source, in a short transaction of its own: call it while the page's own
    session holds no transaction (SQLite's write lock would make it wait).
    """
    try:
        plan = await planning.plan_request(
            sessionmaker, settings=settings, request_id=request_id, now=now
        )
    except AppError as refused:
        return None, refused.detail
    return plan, None


async def page_context(
    session: AsyncSession,
    *,
    dsr: DsrRequest,
    principal: Principal,
    settings: Settings,
    now: datetime,
    plan: dict[str, Any] | None = None,
    plan_error: str | None = None,
) -> dict[str, Any]:
    """Everything the request page shows (with the plan, when ``load_plan`` was asked)."""
    history = await subject_history(session, settings=settings, dsr=dsr, now=now)
    public = requests.request_public(dsr, settings, now, history=history)
    names = await people_names(session)
    events, _next = await requests.list_events(session, dsr=dsr, limit=500, cursor=None)
    note_rows, _next = await notes.list_notes(session, dsr=dsr, limit=200, cursor=None)
    thread, _next = await correspondence.list_messages(session, dsr=dsr, limit=200, cursor=None)
    tasks = await consumer_tasks.visible_tasks(session, principal, dsr.id)
    export_rows = await exports.list_exports(session, request_id=dsr.id)
    allowed = lifecycle.allowed_actions(dsr)
    offered = [action for action in ACTION_ORDER if action in allowed]
    if lifecycle.Action.EXTEND in offered and not legal_clock.extension_allowed(dsr, settings, now):
        offered.remove(lifecycle.Action.EXTEND)
    if lifecycle.Action.FULFIL in offered and dsr.fulfilment_status in BUSY:
        offered.remove(lifecycle.Action.FULFIL)
    needs_approval = approval.needs_approval(settings, dsr)
    state, state_detail = clock_state(dsr)
    return {
        "dsr": public,
        "short_id": str(dsr.id)[:8],
        "light": traffic_light(public.deadline.days_left, public.deadline.overdue),
        "Light": Light,
        "clock_state": state,
        "clock_state_detail": state_detail,
        "extension_reason": dsr.extension_reason,
        "pause_reason": dsr.pause_reason,
        "owner": display_name(dsr.assignee, names) if dsr.assignee else None,
        "people": await assignable_people(session),
        "timeline": [
            TimelineEntry(
                at=row.at, type=row.type, actor=display_name(row.actor, names), data=row.data
            )
            for row in events
        ],
        "notes": [
            {
                "author": display_name(row.author, names),
                "created_at": row.created_at,
                "text": notes.note_text(row, settings),
            }
            for row in note_rows
        ],
        "messages": [
            (
                correspondence.message_public(message, mail, settings=settings),
                display_name(message.author, names),
            )
            for message, mail in thread
        ],
        "can_verify": lifecycle.Action.VERIFY in allowed,
        "can_assign": dsr.status in legal_clock.OPEN_STATUSES,
        "actions": [action.value for action in offered],
        "pause_reasons": PAUSE_REASONS,
        "reject_reasons": REJECT_REASONS,
        "planned_type": dsr.type in PLANNED_TYPES,
        "plan_possible": dsr.status in legal_clock.OPEN_STATUSES,
        "plan": plan,
        "plan_error": plan_error,
        "needs_approval": needs_approval,
        "can_approve": needs_approval
        and dsr.approved_at is None
        and dsr.status == RequestStatus.IN_PROGRESS,
        "approved_by": display_name(dsr.approved_by, names) if dsr.approved_by else None,
        "fulfilment_requested_by": display_name(
            str((dsr.fulfilment or {}).get("requested_by") or ""), names
        ),
        "tasks": [await consumer_tasks.task_public(session, task) for task in tasks],
        "refresh": dsr.fulfilment_status in REFRESHING,
        "exports": [exports.export_public(row, settings, now) for row in export_rows],
    }
