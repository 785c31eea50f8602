"""Intake, lookup and listing of requests."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.config import Settings
from app.errors import Conflict, UnprocessableEntity
from app.models import DsrRequest, IdempotencyKey, RequestEvent, metadata
from app.schemas import (
    FulfilmentPublic,
    RequestCreateBase,
    RequestPublic,
    RequestStatus,
    SubjectPublic,
    VerificationMethod,
    VerificationPublic,
)
from app.security import Principal
from app.services import clock, events, mail, pagination
from app.services.group_commit import GroupCommitter, Write
from app.services.identity import assertion_replayed, verify_identity_assertion
from app.services.rejection import rejection_notice
from app.services.verification import ensure_method_allowed

# Clocks of callers drift; a received_at this far ahead is read as "now", further is refused.
FUTURE_TOLERANCE = timedelta(seconds=60)


def to_public(dsr: DsrRequest, settings: Settings, now: datetime) -> RequestPublic:
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
        deadline=clock.deadline_view(dsr, settings, now),
        rejection=rejection,
        completion_summary=dsr.outcome_note if dsr.status == RequestStatus.COMPLETED else None,
        fulfilment=_fulfilment_view(dsr),
        restricted=dsr.restricted_at is not None,
        created_at=dsr.created_at,
        updated_at=dsr.updated_at,
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


def body_fingerprint(raw_body: bytes) -> str:
    """Hash of the JSON body, insensitive to key order and whitespace."""
    try:
        canonical = json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        canonical = raw_body.decode("utf-8", "replace")
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find_idempotent_response(
    session: AsyncSession, *, principal: Principal, key: str, fingerprint: str
) -> dict[str, Any] | None:
    """The stored first response for this key, or None; 409 if the body differs."""
    stored = await session.get(IdempotencyKey, (principal.client_id, key))
    if stored is None:
        return None
    if stored.body_sha256 != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different body.",
            title="Idempotency key reused",
        )
    if stored.response_body is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            title="Idempotency key in use",
        )
    return stored.response_body


def idempotency_key_in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key was submitted concurrently; "
        "retry to receive its response.",
        title="Idempotency key in use",
    )


async def create_request(
    committer: GroupCommitter,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    principal: Principal,
    payload: RequestCreateBase,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> tuple[DsrRequest, RequestPublic]:
    """Log a new request and acknowledge it to the subject.

    With a valid identity assertion (where the policy allows one) its clock starts at once.
    The request, its audit entries, webhook events, acknowledgement, spent assertion and
    idempotency record are committed together (sharing a transaction with concurrent intakes).
    """
    received_at = payload.received_at or now
    if received_at > now + FUTURE_TOLERANCE:
        raise UnprocessableEntity(
            "received_at cannot be in the future.",
            extra={
                "errors": [
                    {
                        "loc": ["body", "received_at"],
                        "msg": "must not be in the future",
                        "type": "value_error",
                    }
                ]
            },
        )
    received_at = min(received_at, now)
    subject = payload.subject
    details = payload.details.model_dump(mode="json") if hasattr(payload, "details") else {}
    dsr = DsrRequest(
        # Explicit id: SQLModel's default_factory path inspects signatures on every call.
        id=uuid.uuid4(),
        type=payload.type,  # type: ignore[attr-defined]
        status=RequestStatus.AWAITING_VERIFICATION.value,
        regulation=payload.regulation.value,
        channel=payload.channel.value,
        received_at=received_at,
        external_ref=payload.external_ref,
        submitted_by=principal.client_id,
        subject_email=subject.email,
        subject_phone=subject.phone,
        subject_name=subject.name,
        subject_customer_id=subject.customer_id,
        details=details,
        created_at=now,
        updated_at=now,
    )
    spent_assertions: list[dict[str, Any]] = []
    if payload.identity_assertion:
        ensure_method_allowed(settings, dsr.type, VerificationMethod.IDENTITY_ASSERTION)
        async with sessionmaker() as session:
            spent_assertions.append(
                await verify_identity_assertion(
                    session,
                    settings=settings,
                    token=payload.identity_assertion,
                    caller_client_id=principal.client_id,
                    subject=subject,
                    now=now,
                )
            )
        dsr.status = RequestStatus.IN_PROGRESS.value
        dsr.verification_status = "verified"
        dsr.verification_method = "identity_assertion"
        dsr.verified_at = now
        # Identity came with the request, so the clock runs from receipt.
        clock.start_clock(dsr, settings, started_on=clock.today(settings, received_at))
    received = {"channel": dsr.channel, "verification": dsr.verification_method}
    audit_rows = [
        events.audit_row(
            dsr=dsr,
            now=now,
            actor=principal.client_id,
            audit_type="request.received",
            audit_data=received,
        )
    ]
    outbox_rows = [
        events.outbox_row(dsr=dsr, settings=settings, now=now, webhook_event="request.received")
    ]
    if dsr.status == RequestStatus.IN_PROGRESS:
        audit_rows.append(
            events.audit_row(
                dsr=dsr,
                now=now,
                actor=principal.client_id,
                audit_type="request.verified",
                audit_data={"method": "identity_assertion"},
            )
        )
        outbox_rows.append(
            events.outbox_row(dsr=dsr, settings=settings, now=now, webhook_event="request.verified")
        )
    acknowledgement = mail.message_row(
        settings=settings,
        dsr=dsr,
        kind=mail.MessageKind.ACKNOWLEDGEMENT,
        context={
            "due_date": dsr.due_date,
            "verification_needed": dsr.status == RequestStatus.AWAITING_VERIFICATION,
        },
        now=now,
    )
    public = to_public(dsr, settings, now)
    idempotency_rows = []
    if idempotency_key is not None and fingerprint is not None:
        idempotency_rows.append(
            {
                "client_id": principal.client_id,
                "key": idempotency_key,
                "body_sha256": fingerprint,
                "request_id": dsr.id,
                "response_body": public.model_dump(mode="json"),
                "created_at": now,
            }
        )
    tables = metadata.tables
    await committer.write(
        Write(
            rows=[
                (tables["used_assertions"], spent_assertions),
                (tables["requests"], [events.table_row(tables["requests"], dsr)]),
                (tables["request_events"], audit_rows),
                (tables["outbox"], outbox_rows),
                (tables["mail_outbox"], [acknowledgement] if acknowledgement else []),
                (tables["idempotency_keys"], idempotency_rows),
            ],
            on_conflict={
                "used_assertions": assertion_replayed,
                "idempotency_keys": idempotency_key_in_use,
            },
        )
    )
    return dsr, public


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class RequestFilters:
    status: str | None = None
    type: str | None = None
    overdue: bool | None = None
    due_before: date | None = None
    subject_email: str | None = None


async def list_requests(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: RequestFilters,
    now: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[list[DsrRequest], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(DsrRequest)
    if not principal.sees_all_requests:
        query = query.where(col(DsrRequest.submitted_by) == principal.client_id)
    if filters.status:
        query = query.where(col(DsrRequest.status) == filters.status)
    if filters.type:
        query = query.where(col(DsrRequest.type) == filters.type)
    if filters.overdue is True:
        query = query.where(
            col(DsrRequest.status).in_(clock.RUNNING_STATUSES), col(DsrRequest.due_at) < now
        )
    elif filters.overdue is False:
        query = query.where(
            or_(
                col(DsrRequest.status).not_in(clock.RUNNING_STATUSES),
                col(DsrRequest.due_at).is_(None),
                col(DsrRequest.due_at) >= now,
            )
        )
    if filters.due_before:
        query = query.where(col(DsrRequest.due_date) < filters.due_before)
    if filters.subject_email:
        # Case-insensitive: people and CRMs rarely agree on the case of the local part.
        query = query.where(
            func.lower(col(DsrRequest.subject_email)) == filters.subject_email.lower()
        )
    return await pagination.newest_first(session, query, DsrRequest, limit=limit, cursor=cursor)


async def list_events(
    session: AsyncSession, *, dsr: DsrRequest, limit: int, cursor: str | None
) -> tuple[list[RequestEvent], str | None]:
    """Audit trail, oldest first."""
    query = select(RequestEvent).where(col(RequestEvent.request_id) == dsr.id)
    if cursor:
        query = query.where(col(RequestEvent.id) > pagination.decode_id_cursor(cursor))
    query = query.order_by(col(RequestEvent.id)).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = pagination.encode_id_cursor(rows[-1].id or 0)
    return rows, next_cursor
