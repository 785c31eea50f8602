"""Reading requests: the request as shown, the deadline board and the audit trail."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.scopes import Principal, Scope
from app.core import pagination
from app.core.config import Settings
from app.core.errors import Forbidden
from app.core.schemas import normalise_email
from app.enums import RequestStatus
from app.models import DsrRequest, RequestEvent
from app.requests import duplicates, legal_clock
from app.requests.rejection import rejection_notice
from app.requests.schemas import (
    ApprovalPublic,
    EventPublic,
    FulfilmentPublic,
    RequestPublic,
    RequestSearch,
    SubjectHistory,
    SubjectPublic,
    VerificationPublic,
)


def request_public(
    dsr: DsrRequest,
    settings: Settings,
    now: datetime,
    *,
    history: dict[str, int] | None = None,
    viewer: Principal | None = None,
) -> RequestPublic:
    """A request as officers and integrations see it, its deadline as of ``now``; with
    ``history`` (counts by type from ``duplicates.subject_history``) its subject's history.

    A ``viewer`` who sees only its own requests (an integration) is not shown what concerns
    other requests: ``possible_duplicate_of`` may name one it cannot see, and the history
    counts requests of every channel and client.
    """
    sees_others = viewer is None or viewer.sees_all_requests
    rejection = None
    if dsr.status == RequestStatus.REJECTED and dsr.outcome_reason:
        rejection = rejection_notice(dsr.regulation, dsr.outcome_reason, dsr.outcome_note)
    return RequestPublic(
        id=dsr.id,
        type=dsr.type,
        status=dsr.status,
        regulation=dsr.regulation,
        channel=dsr.channel,
        received_at=dsr.received_at,
        external_ref=dsr.external_ref,
        subject=SubjectPublic(
            email=dsr.subject_email,
            phone=dsr.subject_phone,
            name=dsr.subject_name,
            customer_id=dsr.subject_customer_id,
        ),
        details=dsr.details,
        verification=VerificationPublic(
            status=dsr.verification_status,
            method=dsr.verification_method,
            verified_at=dsr.verified_at,
        ),
        deadline=legal_clock.deadline_view(dsr, settings, now),
        rejection=rejection,
        completion_summary=dsr.outcome_note if dsr.status == RequestStatus.COMPLETED else None,
        fulfilment=_fulfilment_view(dsr),
        restricted=dsr.restricted_at is not None,
        assignee=dsr.assignee,
        possible_duplicate_of=dsr.possible_duplicate_of if sees_others else None,
        subject_history=None
        if history is None or not sees_others
        else SubjectHistory(
            window_days=duplicates.HISTORY_WINDOW_DAYS,
            by_type=history,
            total=sum(history.values()),
        ),
        approval=_approval_view(dsr),
        created_at=dsr.created_at,
        updated_at=dsr.updated_at,
    )


def _approval_view(dsr: DsrRequest) -> ApprovalPublic | None:
    if dsr.approved_at is None:
        return None
    approved = dsr.approved_plan or {}
    return ApprovalPublic(
        approved_at=dsr.approved_at,
        approved_by=dsr.approved_by or "",
        plan_sha256=str(approved.get("plan_sha256") or ""),
        counts=approved.get("counts") or {},
    )


def _fulfilment_view(dsr: DsrRequest) -> FulfilmentPublic | None:
    if dsr.fulfilment_status is None:
        return None
    state = dsr.fulfilment or {}
    return FulfilmentPublic(
        status=dsr.fulfilment_status,  # type: ignore[arg-type]
        progress=state.get("progress") or {},
        result=state.get("result"),
        error=state.get("error"),
        requested_at=state.get("requested_at"),
        started_at=state.get("started_at"),
        finished_at=state.get("finished_at"),
    )


@dataclass(frozen=True)
class RequestFilters:
    status: str | None = None
    type: str | None = None
    overdue: bool | None = None
    due_soon: bool | None = None
    due_before: date | None = None
    subject_email: str | None = None
    assignee: str | None = None
    unassigned: bool | None = None
    duplicates: bool | None = None
    # True: open requests only (awaiting verification, in progress, paused).
    open_only: bool | None = None


def _holds(condition: ColumnElement[bool], wanted: bool) -> ColumnElement[bool]:
    """``condition``, or its exact complement (a NULL due date counts as not holding)."""
    return condition if wanted else or_(not_(condition), condition.is_(None))


async def list_requests(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: RequestFilters,
    settings: Settings,
    now: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[list[DsrRequest], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = filtered_query(principal=principal, filters=filters, settings=settings, now=now)
    return await pagination.newest_first(session, query, DsrRequest, limit=limit, cursor=cursor)


def filtered_query(
    *, principal: Principal, filters: RequestFilters, settings: Settings, now: datetime
) -> Select[Any]:
    """The requests ``principal`` may see that match ``filters`` (unordered)."""
    query = select(DsrRequest)
    if not principal.sees_all_requests:
        query = query.where(col(DsrRequest.submitted_by) == principal.client_id)
    if filters.status:
        query = query.where(col(DsrRequest.status) == filters.status)
    if filters.type:
        query = query.where(col(DsrRequest.type) == filters.type)
    if filters.overdue is not None:
        query = query.where(_holds(legal_clock.overdue_clause(now), filters.overdue))
    if filters.due_soon is not None:
        due_soon = legal_clock.due_soon_clause(settings, now)
        query = query.where(_holds(due_soon, filters.due_soon))
    if filters.due_before:
        query = query.where(col(DsrRequest.due_date) < filters.due_before)
    if filters.subject_email:
        # Case-insensitive: people and CRMs rarely agree on the case of the local part.
        query = query.where(
            func.lower(col(DsrRequest.subject_email)) == filters.subject_email.lower()
        )
    if filters.assignee:
        query = query.where(col(DsrRequest.assignee) == filters.assignee)
    if filters.unassigned is not None:
        owner = col(DsrRequest.assignee)
        query = query.where(owner.is_(None) if filters.unassigned else owner.is_not(None))
    if filters.duplicates is not None:
        flag = col(DsrRequest.possible_duplicate_of)
        query = query.where(flag.is_not(None) if filters.duplicates else flag.is_(None))
    if filters.open_only:
        query = query.where(col(DsrRequest.status).in_(legal_clock.OPEN_STATUSES))
    return query


async def list_by_urgency(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: RequestFilters,
    settings: Settings,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[DsrRequest], bool]:
    """One page of the matching requests, soonest due first (overdue ones lead, those with
    no clock yet come last; then oldest received), and whether more follow.

    Paged by offset, not keyset: officers page through a board of a few hundred open cases,
    and a due date that is NULL for many rows makes a keyset awkward.
    """
    due_date = col(DsrRequest.due_date)
    query = (
        filtered_query(principal=principal, filters=filters, settings=settings, now=now)
        .order_by(due_date.is_(None), due_date, col(DsrRequest.received_at), col(DsrRequest.id))
        .offset(max(offset, 0))
        .limit(limit + 1)
    )
    rows = list((await session.execute(query)).scalars())
    return rows[:limit], len(rows) > limit


async def list_events(
    session: AsyncSession, *, dsr: DsrRequest, limit: int, cursor: str | None
) -> tuple[list[RequestEvent], str | None]:
    """Audit trail, oldest first."""
    query = select(RequestEvent).where(col(RequestEvent.request_id) == dsr.id)
    return await pagination.oldest_first_by_id(
        session, query, RequestEvent, limit=limit, cursor=cursor
    )


async def search_requests(
    session: AsyncSession,
    *,
    principal: Principal,
    search: RequestSearch,
    settings: Settings,
    now: datetime,
) -> tuple[list[DsrRequest], str | None]:
    """One page of the deadline board, for both the GET and the search route.

    An address that is not one matches nothing (the caller learns nothing about it).
    """
    email = None
    if search.subject_email is not None:
        try:
            email = normalise_email(search.subject_email)
        except ValueError:
            return [], None
    if search.duplicates is not None and not principal.sees_all_requests:
        # The flag is about the subject's other requests, which such a caller may not see.
        raise Forbidden(
            f"The duplicates filter needs the `{Scope.REQUESTS_READ_ALL}` scope (officers)."
        )
    filters = RequestFilters(
        status=search.status.value if search.status else None,
        type=search.type.value if search.type else None,
        overdue=search.overdue,
        due_soon=search.due_soon,
        due_before=search.due_before,
        subject_email=email,
        # "me": the caller's own cases, so one saved board works for every officer.
        assignee=principal.client_id if search.assignee == "me" else search.assignee,
        unassigned=search.unassigned,
        duplicates=search.duplicates,
    )
    return await list_requests(
        session,
        principal=principal,
        filters=filters,
        settings=settings,
        now=now,
        limit=search.limit,
        cursor=search.cursor,
    )


def event_public(row: RequestEvent) -> EventPublic:
    return EventPublic(id=row.id or 0, type=row.type, actor=row.actor, at=row.at, data=row.data)
