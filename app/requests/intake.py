"""Intake: log a new request (idempotently), acknowledge it, and start its clock at once when
an integration vouched for the person with an identity assertion."""

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.assertions import assertion_replayed, verify_identity_assertion
from app.auth.scopes import Principal
from app.core.config import Settings
from app.core.errors import Conflict, UnprocessableEntity
from app.core.group_commit import GroupCommitter, Write, table_row, transient
from app.enums import RequestStatus, VerificationMethod
from app.mail import messages
from app.metrics.instruments import REQUESTS_RECEIVED
from app.models import DsrRequest, IdempotencyKey, metadata
from app.requests import audit, duplicates, legal_clock
from app.requests.identity_policy import (
    allowed_methods,
    ensure_identifiable,
    ensure_method_allowed,
)
from app.requests.schemas import RequestCreateBase, RequestPublic
from app.requests.service import request_public

# Clocks of callers drift; a received_at this far ahead is read as "now", further is refused.
FUTURE_TOLERANCE = timedelta(seconds=60)


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
    ensure_identifiable(
        email=subject.email,
        phone=subject.phone,
        customer_id=subject.customer_id,
        channel=payload.channel,
    )
    details = payload.details.model_dump(mode="json") if hasattr(payload, "details") else {}
    hashes = duplicates.subject_hashes(
        settings, email=subject.email, phone=subject.phone, customer_id=subject.customer_id
    )
    dsr = transient(
        DsrRequest,
        {
            "id": uuid.uuid4(),
            "type": payload.type,  # type: ignore[attr-defined]
            "status": RequestStatus.AWAITING_VERIFICATION.value,
            "regulation": payload.regulation.value,
            "channel": payload.channel.value,
            "received_at": received_at,
            "external_ref": payload.external_ref,
            "submitted_by": principal.client_id,
            "subject_email": subject.email,
            "subject_phone": subject.phone,
            "subject_name": subject.name,
            "subject_customer_id": subject.customer_id,
            "subject_email_hash": hashes.email,
            "subject_phone_hash": hashes.phone,
            "subject_customer_id_hash": hashes.customer_id,
            "details": details,
            "created_at": now,
            "updated_at": now,
        },
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
                    subject_email=subject.email,
                    subject_customer_id=subject.customer_id,
                    now=now,
                )
            )
        dsr.status = RequestStatus.IN_PROGRESS.value
        dsr.verification_status = "verified"
        dsr.verification_method = "identity_assertion"
        dsr.verified_at = now
        # Identity came with the request, so the clock runs from receipt.
        legal_clock.start_clock(dsr, settings, started_on=legal_clock.today(settings, received_at))
    received: dict[str, Any] = {"channel": dsr.channel, "verification": dsr.verification_method}
    audit_rows = [
        audit.audit_row(
            dsr=dsr,
            now=now,
            actor=principal.client_id,
            audit_type="request.received",
            audit_data=received,
        )
    ]
    outbox_rows = [
        audit.outbox_row(dsr=dsr, settings=settings, now=now, webhook_event="request.received")
    ]
    if dsr.status == RequestStatus.IN_PROGRESS:
        audit_rows.append(
            audit.audit_row(
                dsr=dsr,
                now=now,
                actor=principal.client_id,
                audit_type="request.verified",
                audit_data={"method": "identity_assertion"},
            )
        )
        outbox_rows.append(
            audit.outbox_row(dsr=dsr, settings=settings, now=now, webhook_event="request.verified")
        )
    # Queued as an intent: the worker renders it at send time, off this hot path.
    acknowledgement = messages.intent_row(
        settings=settings,
        request_id=dsr.id,
        recipient=dsr.subject_email,
        kind=messages.MessageKind.ACKNOWLEDGEMENT,
        context={
            "due_date": dsr.due_date,
            "verification_needed": dsr.status == RequestStatus.AWAITING_VERIFICATION,
            # What the subject may be asked for: the policy's methods they take part in.
            "identity_proofs": [
                str(method)
                for method in allowed_methods(settings, dsr.type)
                if method != VerificationMethod.IDENTITY_ASSERTION
            ],
            # What happens if identity is not confirmed: one reminder, then closure.
            "reminder_days": settings.verification_reminder_days,
            "expiry_days": settings.verification_expiry_days,
        },
        now=now,
    )
    idempotency_rows: list[dict[str, Any]] = []
    if idempotency_key is not None and fingerprint is not None:
        idempotency_rows.append(
            {
                "client_id": principal.client_id,
                "key": idempotency_key,
                "body_sha256": fingerprint,
                "request_id": dsr.id,
                "response_body": None,  # set by finish(), once duplicates are known
                "created_at": now,
            }
        )
    tables = metadata.tables
    request_row = table_row(tables["requests"], dsr)
    answered: list[RequestPublic] = []

    def finish() -> None:
        # duplicates.flag_duplicates ran in the insert's transaction: one query per batch.
        dsr.possible_duplicate_of = request_row.get("possible_duplicate_of")
        received.pop("possible_duplicate_of", None)  # a retried write finishes again
        if dsr.possible_duplicate_of is not None:
            received["possible_duplicate_of"] = str(dsr.possible_duplicate_of)
        audit_rows[0]["data"] = received
        public = request_public(dsr, settings, now, viewer=principal)
        answered[:] = [public]
        for row in idempotency_rows:
            row["response_body"] = public.model_dump(mode="json")

    await committer.write(
        Write(
            rows=[
                (tables["used_assertions"], spent_assertions),
                (tables["requests"], [request_row]),
                (tables["request_events"], audit_rows),
                (tables["outbox"], outbox_rows),
                (tables["mail_outbox"], [acknowledgement] if acknowledgement else []),
                (tables["idempotency_keys"], idempotency_rows),
            ],
            on_conflict={
                "used_assertions": assertion_replayed,
                "idempotency_keys": idempotency_key_in_use,
            },
            prepare=duplicates.flag_duplicates if hashes.any() else None,
            finish=finish,
        )
    )
    # Committed by now (write returns after its group's commit): count it.
    REQUESTS_RECEIVED.labels(dsr.type, dsr.channel).inc()
    return dsr, answered[0]
