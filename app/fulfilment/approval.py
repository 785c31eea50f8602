"""Approval of the fulfilment plan (``DSR_APPROVAL_REQUIRED``, ``DSR_APPROVAL_FOUR_EYES``).

``approve`` plans the request afresh, checks the plan is the one the officer looked at (when
they name its hash), applies the four-eyes rule, and records who approved what: the plan's
hash and its row counts (never the subject's data) on the request and in the audit trail.
``ensure_approved`` is the gate ``fulfil`` passes for the types that need approval.
``compare_with_approval`` sets the approved counts beside what fulfilment then did: it acts
on the data as it is when it runs, which may differ from what was approved.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.auth.scopes import Role
from app.core.config import Settings
from app.core.errors import Conflict, InvalidTransition, NotFound
from app.enums import RequestStatus
from app.fulfilment import plan as planning
from app.models import Client, DsrRequest, RequestEvent
from app.requests import lifecycle

APPROVED_EVENT = "request.approved"
ASSIGNED_EVENT = "request.assigned"
# Not "acting on the case" for the four-eyes rule: writing a note, and approving itself.
NOT_ACTIONS = frozenset({"request.note_added", APPROVED_EVENT})
ACTING_ROLES = (Role.OFFICER, Role.ADMIN)


def needs_approval(settings: Settings, dsr: DsrRequest) -> bool:
    return dsr.type in settings.approval_required


def ensure_approved(settings: Settings, dsr: DsrRequest) -> None:
    """409 while a request of a type in ``DSR_APPROVAL_REQUIRED`` has no approval."""
    if needs_approval(settings, dsr) and dsr.approved_at is None:
        raise Conflict(
            f"{dsr.type.capitalize()} requests need an officer's approval before fulfilment: "
            f"look at GET /v1/requests/{dsr.id}/plan, then POST /v1/requests/{dsr.id}/approve.",
            title="Approval required",
        )


async def _latest_actor(
    session: AsyncSession, dsr: DsrRequest, *, event_type: str | None
) -> tuple[str, str] | None:
    """(actor, event type) of the request's latest audit event of ``event_type``, or else of
    the latest one an officer or admin wrote acting on the case."""
    statement = select(col(RequestEvent.actor), col(RequestEvent.type)).where(
        col(RequestEvent.request_id) == dsr.id
    )
    if event_type is not None:
        statement = statement.where(col(RequestEvent.type) == event_type)
    else:
        statement = statement.join(Client, col(Client.client_id) == col(RequestEvent.actor)).where(
            col(Client.role).in_(ACTING_ROLES), col(RequestEvent.type).not_in(NOT_ACTIONS)
        )
    row = (await session.execute(statement.order_by(col(RequestEvent.id).desc()).limit(1))).first()
    return (row[0], row[1]) if row is not None else None


async def check_four_eyes(session: AsyncSession, *, dsr: DsrRequest, actor: str) -> None:
    """The approver neither owns the case, nor assigned it, nor last acted on it (else 409)."""
    if dsr.assignee == actor:
        raise Conflict(
            "Four-eyes approval: this case is assigned to you, so another officer must approve "
            "its fulfilment plan.",
            title="Approval needs another officer",
            extra={"rule": "owns_the_case"},
        )
    assigned = await _latest_actor(session, dsr, event_type=ASSIGNED_EVENT)
    if assigned is not None and assigned[0] == actor:
        raise Conflict(
            "Four-eyes approval: you assigned this case, so another officer must approve "
            "its fulfilment plan.",
            title="Approval needs another officer",
            extra={"rule": "assigned_the_case"},
        )
    acted = await _latest_actor(session, dsr, event_type=None)
    if acted is not None and acted[0] == actor:
        raise Conflict(
            f"Four-eyes approval: you were the last to act on this case ({acted[1]}), so "
            "another officer must approve its fulfilment plan.",
            title="Approval needs another officer",
            extra={"rule": "last_acted", "last_action": acted[1]},
        )


def _in_progress(dsr: DsrRequest) -> None:
    if dsr.status != RequestStatus.IN_PROGRESS:
        raise InvalidTransition(
            f"Cannot approve a request whose status is {dsr.status}.",
            extra={"current_status": dsr.status, "allowed_from": [RequestStatus.IN_PROGRESS]},
        )


async def approve(
    session: AsyncSession,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    request_id: uuid.UUID,
    plan_sha256: str | None,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Approve the request's fulfilment plan as it is now; answers the request.

    The plan is computed first, with no transaction held (the sources may be slow); then
    the request is locked in ``session`` and the approval checked and recorded there.
    """
    plan = await planning.plan_request(
        sessionmaker, settings=settings, request_id=request_id, now=now, check=_in_progress
    )
    dsr = await session.get(DsrRequest, request_id, with_for_update=True)
    if dsr is None:
        raise NotFound("No request with this id is visible to you.")
    _in_progress(dsr)  # again, under the lock: it may have moved while the sources answered
    if settings.approval_four_eyes:
        await check_four_eyes(session, dsr=dsr, actor=actor)
    if plan_sha256 is not None and plan_sha256 != plan["plan_sha256"]:
        raise Conflict(
            "The plan has changed since you looked at it (the data in the sources, or the "
            "sources themselves): read GET /plan again and approve what it shows now.",
            title="Plan changed",
            extra={"plan_sha256": plan["plan_sha256"]},
        )
    failed = [entry["source"] for entry in plan["sources"] if entry["status"] == "error"]
    if failed:
        raise Conflict(
            "These sources could not be planned, so the plan is incomplete: "
            + ", ".join(failed)
            + ". Approve when every source answers (see GET /plan for why).",
            title="Plan incomplete",
        )
    dsr.approved_at = now
    dsr.approved_by = actor
    dsr.approved_plan = {
        "plan_sha256": plan["plan_sha256"],
        "counts": plan["counts"],
        "comparable": planning.comparable_counts(dsr.type, plan["sources"]),
    }
    return lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event=APPROVED_EVENT,
        data={"plan_sha256": plan["plan_sha256"], "counts": plan["counts"]},
        announce=False,
    )


def compare_with_approval(dsr: DsrRequest, result: dict[str, Any]) -> dict[str, Any]:
    """The fulfilment result with the approved counts, the actual ones and whether they
    differ (fulfilment acts on the data as it is when it runs); unchanged without approval."""
    if dsr.approved_at is None or not dsr.approved_plan:
        return result
    approved = dict(dsr.approved_plan.get("comparable") or {})
    actual = planning.actual_counts(dsr.type, result)
    return {
        **result,
        "approved_plan_sha256": dsr.approved_plan.get("plan_sha256"),
        "approved_counts": approved,
        "actual_counts": actual,
        "differs_from_approved_plan": actual != approved,
    }
