"""Fulfilment: the officer asks, the worker does the work in the sources, the request completes.

``request_fulfilment`` (the ``fulfil`` action) checks and queues a job in the request's
transaction; ``app.fulfilment.runner`` is the worker's side. ``request_lift`` ends a
restriction: the subject is told first, then a job unflags the sources.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, UnprocessableEntity
from app.core.time import iso_z
from app.data_sources import service as data_sources
from app.data_sources.connectors import SubjectIdentity
from app.enums import FulfilmentStatus, RequestType
from app.fulfilment import approval, jobs
from app.fulfilment import consumer_tasks as task_service
from app.fulfilment.schemas import FulfilBody
from app.mail import messages
from app.models import DsrRequest
from app.requests import lifecycle
from app.suppression import service as suppression

# While fulfilment is in one of these, another ``fulfil`` would run the work twice.
BUSY = frozenset(
    {FulfilmentStatus.QUEUED, FulfilmentStatus.RUNNING, FulfilmentStatus.WAITING_FOR_TASKS}
)

NO_SOURCES = (
    "No data sources are configured, so there is nothing to fulfil against. Register one "
    "(POST /v1/data-sources), or fulfil the request by hand and record it with `complete`."
)


def identity_of(dsr: DsrRequest) -> SubjectIdentity:
    return SubjectIdentity(
        email=dsr.subject_email,
        phone=dsr.subject_phone,
        customer_id=dsr.subject_customer_id,
        name=dsr.subject_name,
    )


def _needs_sources(dsr: DsrRequest, body: FulfilBody) -> bool:
    if dsr.type != RequestType.OBJECTION:
        return True
    scope = dsr.details.get("scope")
    return scope != "direct_marketing" and body.objection_decision == "uphold"


def _check_objection(dsr: DsrRequest, body: FulfilBody) -> None:
    scope = dsr.details.get("scope")
    if dsr.type != RequestType.OBJECTION or scope == "direct_marketing":
        if body.objection_decision is not None:
            raise UnprocessableEntity(
                "objection_decision applies only to objections on legitimate interests or "
                "profiling (a direct marketing objection is absolute)."
            )
        return
    if body.objection_decision is None:
        raise UnprocessableEntity(
            "An objection on legitimate interests or profiling needs an officer decision: "
            'send {"objection_decision": "uphold"} or {"objection_decision": "override", '
            '"grounds": "..."}.'
        )
    if body.objection_decision == "override" and not (body.grounds or "").strip():
        raise UnprocessableEntity(
            "Overriding an objection needs the compelling legitimate grounds in `grounds`."
        )


async def request_fulfilment(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    body: FulfilBody,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Queue the work (the ``fulfil`` action); the worker picks it up within moments."""
    lifecycle.ensure_allowed(dsr, lifecycle.Action.FULFIL)
    if dsr.fulfilment_status in BUSY:
        raise Conflict(
            f"Fulfilment is already under way ({dsr.fulfilment_status}).",
            title="Fulfilment under way",
        )
    _check_objection(dsr, body)
    approval.ensure_approved(settings, dsr)
    sources = await data_sources.active_sources(session)
    if _needs_sources(dsr, body):
        if not sources:
            raise Conflict(NO_SOURCES, title="No data sources configured")
        identity = identity_of(dsr)
        if not (identity.email or identity.phone or identity.customer_id):
            raise Conflict(
                "The request names no email, phone or customer id to find the subject by; "
                "fulfil it by hand and record it with `complete`.",
                title="No identity to search by",
            )
    params = body.model_dump(exclude_none=True)
    await task_service.supersede_open(session, dsr.id)
    session.add(jobs.new_job(request_id=dsr.id, phase="run", params=params, actor=actor, now=now))
    dsr.fulfilment_status = FulfilmentStatus.QUEUED.value
    dsr.fulfilment = {
        "requested_at": iso_z(now),
        "requested_by": actor,
        "params": params,
        "progress": {"step": "queued"},
        "result": None,
        "error": None,
    }
    return lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="fulfilment.requested",
        data={**params, "sources": [source.name for source in sources], **_approved(dsr)},
        announce=False,
    )


def _approved(dsr: DsrRequest) -> dict[str, str]:
    """The approved plan the work goes ahead on, for the audit trail."""
    sha = (dsr.approved_plan or {}).get("plan_sha256")
    return {"approved_plan_sha256": str(sha)} if sha else {}


async def request_lift(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    reason: str,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """End a restriction: tell the subject first (Art. 18(3)), then unflag the sources."""
    if dsr.restricted_at is None:
        raise Conflict(
            "Processing of this subject's data is not restricted by this request.",
            title="Not restricted",
        )
    await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.RESTRICTION_LIFTED,
        context={"reason": reason},
        now=now,
    )
    removed = await suppression.remove_for_request(session, request_id=dsr.id, reason="restriction")
    dsr.restricted_at = None
    session.add(jobs.new_job(request_id=dsr.id, phase="lift", params={}, actor=actor, now=now))
    return lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="restriction.lift_requested",
        data={"reason": reason, "suppression_entries_removed": removed},
        announce=False,
    )
