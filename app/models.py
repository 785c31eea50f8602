"""Database tables (SQLModel): one metadata, so Alembic sees one schema.

API schemas live in each capability's ``schemas.py``; the API never returns a table object.
"""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

# Stable constraint names so Alembic migrations are reviewable and reproducible.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Client(SQLModel, table=True):
    """An API client (integration, officer or admin) using OAuth2 client credentials."""

    __tablename__ = "clients"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    secret_hash: str = Field(max_length=128)
    # Encrypted (not hashed) copy: needed to verify the HS256 identity assertions it signs.
    secret_encrypted: str = Field(max_length=512)
    active: bool = True
    created_at: datetime = timestamp()
    disabled_at: datetime | None = timestamp(nullable=True)
    secret_rotated_at: datetime | None = timestamp(nullable=True)
    # Tokens issued before this instant are refused (set by disable, rotation and deletion).
    tokens_revoked_at: datetime | None = timestamp(nullable=True)
    # Deleted clients keep their row (secrets wiped): requests and audit entries name them,
    # and their client_id must never be given to another client.
    deleted_at: datetime | None = timestamp(nullable=True)


class DsrRequest(SQLModel, table=True):
    """A data subject rights request and its legal clock."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_created_at_id", "created_at", "id"),
        Index("ix_requests_status_due_at", "status", "due_at"),
        # Reports select the requests received in a period, the register in this order.
        Index("ix_requests_received_at_id", "received_at", "id"),
        # The few extended requests, for the summary's extension reasons.
        Index(
            "ix_requests_extended_received_at",
            "received_at",
            postgresql_where=text("extended"),
            sqlite_where=text("extended"),
        ),
        # The completed requests' receipt and closure, for the days-taken percentiles: read
        # from the index alone on PostgreSQL.
        Index(
            "ix_requests_completed_received_at",
            "received_at",
            postgresql_include=["closed_at"],
            postgresql_where=text("status = 'completed'"),
            sqlite_where=text("status = 'completed'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(max_length=20, index=True)
    status: str = Field(max_length=30, index=True)
    regulation: str = Field(max_length=10)
    channel: str = Field(max_length=10)
    received_at: datetime = timestamp()
    external_ref: str | None = Field(default=None, max_length=200)
    submitted_by: str = Field(max_length=64, index=True)

    subject_email: str | None = Field(default=None, max_length=320, index=True)
    subject_phone: str | None = Field(default=None, max_length=32)
    subject_name: str | None = Field(default=None, max_length=200)
    subject_customer_id: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    verification_status: str = Field(default="pending", max_length=20)
    verification_method: str | None = Field(default=None, max_length=30)
    # True once the service asked for identity: its confirmation date then starts the clock.
    identity_requested: bool = False
    verified_at: datetime | None = timestamp(nullable=True)

    clock_started_on: date | None = None
    due_date: date | None = Field(default=None, index=True)
    due_at: datetime | None = timestamp(nullable=True)
    extended: bool = False
    extension_reason: str | None = Field(default=None, max_length=2000)
    paused_days: int = 0
    paused_on: date | None = None
    pause_reason: str | None = Field(default=None, max_length=40)

    outcome_reason: str | None = Field(default=None, max_length=40)
    outcome_note: str | None = Field(default=None, max_length=4000)
    closed_at: datetime | None = timestamp(nullable=True)
    # Who closed it: a client id, or "system" for a sweep (the summary counts expiries by it).
    closed_by: str | None = Field(default=None, max_length=64)
    # Sweeps announce each of these once, whichever worker gets there first.
    due_soon_notified_at: datetime | None = timestamp(nullable=True)
    overdue_notified_at: datetime | None = timestamp(nullable=True)
    # The one reminder to confirm identity (DSR_VERIFICATION_REMINDER_DAYS), sent once.
    verification_reminded_at: datetime | None = timestamp(nullable=True)
    # ``data.sequence`` of the request's latest webhook event (0: none yet); raised only by
    # whoever holds the row (FOR UPDATE), so each event gets the next number, no gaps.
    event_sequence: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    # Fulfilment: queued -> running -> waiting_for_tasks -> succeeded | failed (None: not run).
    fulfilment_status: str | None = Field(default=None, max_length=30)
    # Progress and result as shown on the request; never holds the subject's data.
    fulfilment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Set while processing is restricted (Art. 18) in the sources; cleared by lift-restriction.
    restricted_at: datetime | None = timestamp(nullable=True)
    # An officer's approval of the fulfilment plan (DSR_APPROVAL_REQUIRED): who, when, and
    # the plan's hash and row counts (never the subject's data).
    approved_at: datetime | None = timestamp(nullable=True)
    approved_by: str | None = Field(default=None, max_length=64)
    approved_plan: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

    # Casework: the officer or admin client that owns the case (None: unassigned).
    assignee: str | None = Field(default=None, max_length=64, index=True)
    # Keyed hashes (HMAC, purpose "request-subject") of the normalised identities, set at
    # intake: duplicates and the subject's history are found by them, never by plaintext.
    # Null for requests logged before they existed (the key is not known to migrations).
    subject_email_hash: str | None = Field(default=None, max_length=64, index=True)
    subject_phone_hash: str | None = Field(default=None, max_length=64, index=True)
    subject_customer_id_hash: str | None = Field(default=None, max_length=64, index=True)
    # The oldest open request of the same type and subject when this one was logged.
    possible_duplicate_of: uuid.UUID | None = Field(default=None)

    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class RequestEvent(SQLModel, table=True):
    """One entry of a request's audit trail. Never holds the subject's identities."""

    __tablename__ = "request_events"
    __table_args__ = (Index("ix_request_events_request_id_id", "request_id", "id"),)

    # Monotonic ids give the audit trail a total order even within one transaction.
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    request_id: uuid.UUID = Field(foreign_key="requests.id")
    type: str = Field(max_length=60)
    actor: str = Field(max_length=64)
    at: datetime = timestamp()
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RequestNote(SQLModel, table=True):
    """An officer's internal note on a request: never sent to the subject or to webhooks.

    The text is personal data as often as not, so it is encrypted at rest (Fernet, as the mail
    outbox); the audit trail records only that a note was added, and by whom.
    """

    __tablename__ = "request_notes"
    __table_args__ = (Index("ix_request_notes_request_id_id", "request_id", "id"),)

    # Monotonic ids: notes list oldest first with the same cursor as the audit trail.
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    request_id: uuid.UUID = Field(foreign_key="requests.id")
    author: str = Field(max_length=64)
    text_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = timestamp()


class OutboxEvent(SQLModel, table=True):
    """A webhook event written in the same transaction as the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "published_at", "created_at"),
        Index("ix_outbox_alert_pending", "event_type", "alerted_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_type: str = Field(max_length=60, index=True)
    request_id: uuid.UUID | None = Field(default=None, foreign_key="requests.id")
    # The submitting client: its own webhook subscriptions receive the event too.
    owner_client_id: str | None = Field(default=None, max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = timestamp(index=True)
    published_at: datetime | None = timestamp(nullable=True)
    # Set once the alerts sweep handled an event officers are alerted to (app.reports.alerts).
    alerted_at: datetime | None = timestamp(nullable=True)
    # The X-Request-ID of the HTTP request that queued it (app.core.logs): the worker logs
    # under it. Not the DSR request (request_id): an id for tracing log lines, nothing more.
    trace_id: str | None = Field(default=None, max_length=128)


class IdempotencyKey(SQLModel, table=True):
    """Remembers the first response to an ``Idempotency-Key`` per client."""

    __tablename__ = "idempotency_keys"

    client_id: str = Field(max_length=64, primary_key=True)
    key: str = Field(max_length=200, primary_key=True)
    body_sha256: str = Field(max_length=64)
    request_id: uuid.UUID | None = Field(default=None, foreign_key="requests.id")
    response_body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = timestamp()


class UsedAssertion(SQLModel, table=True):
    """Identity assertion ids already consumed (``jti`` is single-use per issuer)."""

    __tablename__ = "used_assertions"

    issuer: str = Field(max_length=64, primary_key=True)
    jti: str = Field(max_length=200, primary_key=True)
    expires_at: datetime = timestamp()


class WebhookEndpoint(SQLModel, table=True):
    """A subscriber URL with its event filters and signing secrets (encrypted at rest)."""

    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_client_id: str = Field(max_length=64, index=True)
    # Admins' endpoints receive every request's events; others only their own requests'.
    receives_all: bool = False
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str | None = Field(default=None, max_length=500)
    secret_encrypted: str = Field(max_length=512)
    previous_secret_encrypted: str | None = Field(default=None, max_length=512)
    previous_secret_expires_at: datetime | None = timestamp(nullable=True)
    active: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    disabled_at: datetime | None = timestamp(nullable=True)
    # Start of the current run of failed attempts; cleared by any success.
    failing_since: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint; its id is the stable ``webhook-id`` across retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoints.id")
    outbox_id: uuid.UUID | None = Field(default=None, foreign_key="outbox.id")
    event_type: str = Field(max_length=60)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # pending -> succeeded | failed (retries exhausted or endpoint disabled)
    status: str = Field(default="pending", max_length=20)
    attempt_count: int = 0
    next_attempt_at: datetime = timestamp()
    # Lease: a worker that dies mid-delivery loses its claim when this passes.
    claimed_until: datetime | None = timestamp(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = timestamp()
    completed_at: datetime | None = timestamp(nullable=True)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery, for the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    delivery_id: uuid.UUID = Field(foreign_key="webhook_deliveries.id")
    attempted_at: datetime = timestamp()
    status_code: int | None = None
    latency_ms: int = 0
    error: str | None = Field(default=None, max_length=500)
    succeeded: bool = False


class VerificationCode(SQLModel, table=True):
    """A one-time code emailed to the subject; only its keyed hash is kept."""

    __tablename__ = "verification_codes"
    __table_args__ = (Index("ix_verification_codes_request_id_sent_at", "request_id", "sent_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id")
    code_hash: str = Field(max_length=128)
    sent_at: datetime = timestamp()
    expires_at: datetime = timestamp()
    failed_attempts: int = 0
    # Set when the code is used, superseded by a newer one, or killed by too many attempts.
    closed_at: datetime | None = timestamp(nullable=True)


class MailMessage(SQLModel, table=True):
    """A message to a data subject, queued in the transaction that caused it.

    Recipient and bodies are encrypted at rest and wiped once sent: a verification code
    must not outlive its delivery in readable form. An *intent* (``body_encrypted`` NULL, the
    acknowledgement) stores no subject or bodies, only ``render_context``: the worker renders
    it at send time (``app.mail.messages.render_intent``).
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID | None = Field(default=None, foreign_key="requests.id")
    kind: str = Field(max_length=40)
    recipient_encrypted: str = Field(max_length=2000)
    # NULL for an intent until sent: rendered by the worker.
    subject: str | None = Field(default=None, max_length=300)
    body_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    html_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # An intent's template context besides the request: no personal data (dates as
    # {"__date__": "YYYY-MM-DD"}, see app.mail.messages.encode_context). SQL NULL (not JSON
    # null) on every rendered message.
    render_context: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    status: str = Field(default="pending", max_length=20)
    attempt_count: int = 0
    next_attempt_at: datetime = timestamp()
    claimed_until: datetime | None = timestamp(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = timestamp()
    sent_at: datetime | None = timestamp(nullable=True)
    # The X-Request-ID of the HTTP request that queued it (app.core.logs): the worker logs
    # under it. Not the DSR request (request_id): an id for tracing log lines, nothing more.
    trace_id: str | None = Field(default=None, max_length=128)


class SuppressionEntry(SQLModel, table=True):
    """Someone who must not be contacted on some channels; only a keyed hash identifies them.

    ``identity_hash`` is the HMAC (purpose "suppression") of the normalised email or phone
    number, so the list can answer "is this person suppressed?" without holding who they are.
    """

    __tablename__ = "suppression_entries"
    __table_args__ = (
        UniqueConstraint("identity_kind", "identity_hash", name="uq_suppression_entries_identity"),
        Index("ix_suppression_entries_created_at_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    identity_kind: str = Field(max_length=10)  # "email" | "phone"
    identity_hash: str = Field(max_length=64)
    # Subset of "email", "phone", "post", "sms"; repeat suppressions merge into it.
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=20)  # objection | erasure | restriction | manual
    request_id: uuid.UUID | None = Field(default=None, foreign_key="requests.id")
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class DataSource(SQLModel, table=True):
    """A system holding personal data: ``sql``, ``http`` or ``task``.

    Credentials (the SQL URL, the HTTP bearer token) live only in ``secret_config_encrypted``;
    ``config`` holds what is safe to show (dataset map, base URL, assignee).
    """

    __tablename__ = "data_sources"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    kind: str = Field(max_length=10)  # sql | http | task
    description: str | None = Field(default=None, max_length=500)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secret_config_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    active: bool = True
    last_tested_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()
    deleted_at: datetime | None = timestamp(nullable=True)


class FulfilmentJob(SQLModel, table=True):
    """Work the worker does for ``fulfil``: claimed with a lease, retried, never lost."""

    __tablename__ = "fulfilment_jobs"
    __table_args__ = (Index("ix_fulfilment_jobs_due", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id", index=True)
    # queued -> running -> done | failed; "finalise" jobs build the pack once tasks are in.
    status: str = Field(default="queued", max_length=20)
    phase: str = Field(default="run", max_length=20)  # run | finalise
    # The officer's input to ``fulfil`` (objection decision, grounds); no subject data.
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor: str = Field(max_length=64)
    attempt_count: int = 0
    next_attempt_at: datetime = timestamp()
    claimed_until: datetime | None = timestamp(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = timestamp()
    finished_at: datetime | None = timestamp(nullable=True)
    # The X-Request-ID of the HTTP request that queued it (app.core.logs): the worker logs
    # under it. Not the DSR request (request_id): an id for tracing log lines, nothing more.
    trace_id: str | None = Field(default=None, max_length=128)


class FulfilmentTask(SQLModel, table=True):
    """A piece of fulfilment a ``task`` source's consumer does and reports back."""

    __tablename__ = "fulfilment_tasks"
    __table_args__ = (
        Index("ix_fulfilment_tasks_request_id_created_at", "request_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id")
    data_source_id: uuid.UUID = Field(foreign_key="data_sources.id")
    assignee_client_id: str = Field(max_length=64)
    status: str = Field(default="open", max_length=20)  # open | done | failed
    note: str | None = Field(default=None, max_length=2000)
    # Records a consumer returns for access/portability: personal data, so encrypted.
    records_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = timestamp()
    completed_at: datetime | None = timestamp(nullable=True)


class Export(SQLModel, table=True):
    """A produced access or portability file, downloadable until it expires."""

    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_request_id_format", "request_id", "format"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id")
    format: str = Field(max_length=10)  # json | csv
    file_name: str = Field(max_length=200)
    size_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    created_at: datetime = timestamp()
    expires_at: datetime = timestamp(index=True)
    deleted_at: datetime | None = timestamp(nullable=True)
    download_count: int = 0


class ErasureIdentity(SQLModel, table=True):
    """An identity of a subject whose erasure kept records, as a keyed hash (no plaintext).

    The erasure deletes the rows that tied an email or phone to the records kept for a legal
    obligation; these hashes (HMAC, purpose "retained-records", of the normalised email,
    phone or customer id) let a later access or portability request by the same identity
    find them again (``retained_records``), as Art. 15 requires.
    """

    __tablename__ = "erasure_identities"
    __table_args__ = (
        UniqueConstraint(
            "request_id", "identity_kind", "identity_hash", name="uq_erasure_identities_identity"
        ),
        Index("ix_erasure_identities_kind_hash", "identity_kind", "identity_hash"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id")  # the erasure request
    identity_kind: str = Field(max_length=12)  # email | phone | customer_id
    identity_hash: str = Field(max_length=64)
    created_at: datetime = timestamp()


class RetainedRecord(SQLModel, table=True):
    """A row of a ``sql`` source that an erasure kept (a ``retain`` category), by its key.

    Recorded before the source commits the erasure, so the row can never become unfindable.
    """

    __tablename__ = "retained_records"
    __table_args__ = (
        UniqueConstraint(
            "data_source_id",
            "table_name",
            "record_key",
            "request_id",
            name="uq_retained_records_record",
        ),
        Index("ix_retained_records_request_id", "request_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id")  # the erasure request
    data_source_id: uuid.UUID = Field(foreign_key="data_sources.id")
    table_name: str = Field(max_length=200)
    # The row's primary key value as text (the source converts it back to the column's type).
    record_key: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = timestamp()


class RequestMessage(SQLModel, table=True):
    """Correspondence with the subject about one request, both directions.

    The text is personal data: encrypted at rest (like the mail outbox) and never copied
    into the audit trail, webhooks or logs. An outbound message sent by email links the
    mail-outbox row that carries it, whose status is its delivery status.
    """

    __tablename__ = "request_messages"
    __table_args__ = (
        Index("ix_request_messages_request_id_created_at", "request_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id")
    direction: str = Field(max_length=10)  # outbound | inbound
    kind: str = Field(max_length=20)  # clarification | information | reply
    channel: str = Field(max_length=10)  # email | post
    text_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    # The officer or admin client who wrote or recorded it.
    author: str = Field(max_length=64)
    # No foreign key: the mail row may be cleaned up later; ``delivery_status`` remains.
    mail_id: uuid.UUID | None = None
    # queued | sent | failed as last recorded: the mail row is read while it exists, and a
    # worker sweep copies its outcome here, so it outlives the row.
    delivery_status: str | None = Field(default=None, max_length=10)
    delivered_at: datetime | None = timestamp(nullable=True)
    delivery_attempts: int = 0
    received_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()


class CalendarFeed(SQLModel, table=True):
    """A subscribable calendar of open requests' due dates; only a keyed hash of its token."""

    __tablename__ = "calendar_feeds"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    # HMAC (purpose "calendar-feed") of the token in the feed's URL, shown once at creation.
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_by: str = Field(max_length=64)
    created_at: datetime = timestamp()
    # Revoked feeds keep their row (who made it, when) and answer 404 from then on.
    revoked_at: datetime | None = timestamp(nullable=True)


class User(SQLModel, table=True):
    """A person with a console account: an officer or an admin (not an API client).

    Acting in the console they act as a ``Principal`` whose ``client_id`` is this ``id``, so
    the audit trail names the person. Only an Argon2id hash of the password is kept; the TOTP
    secret is encrypted (it must be read back to check codes).
    """

    __tablename__ = "users"

    id: str = Field(sa_column=Column(String(64), primary_key=True))  # usr_ + random hex
    # Normalised (email-validator) and lower-cased: one account per address.
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)  # officer | admin
    password_hash: str = Field(max_length=255)
    must_change_password: bool = True
    password_changed_at: datetime = timestamp()
    # Fernet-encrypted base32 secret; set (and not yet enabled) while the person enrols.
    totp_secret_encrypted: str | None = Field(default=None, max_length=512)
    totp_enabled: bool = False
    # The last 30-second step whose code was accepted: a code is never accepted twice.
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = timestamp()
    disabled_at: datetime | None = timestamp(nullable=True)


class BrowserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random value, this row only its sha256."""

    __tablename__ = "browser_sessions"

    id: str = Field(sa_column=Column(String(64), primary_key=True))  # sha256 of the cookie
    user_id: str = Field(
        sa_column=Column(String(64), ForeignKey("users.id"), nullable=False, index=True)
    )
    csrf_token: str = Field(max_length=64)
    # Password accepted, TOTP code still to give: admits only the code step.
    pending_second_factor: bool = False
    # Keyed hash of the client address at login (never the address itself).
    client_address_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = timestamp()
    last_seen_at: datetime = timestamp()
    ended_at: datetime | None = timestamp(nullable=True)


class LoginFailure(SQLModel, table=True):
    """A failed console login, counted per account and per client address (both as keyed
    hashes), so every API process enforces the same limits."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_hash_created_at", "key_hash", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # account | address
    key_hash: str = Field(max_length=64)
    created_at: datetime = timestamp()


class StatusPageHit(SQLModel, table=True):
    """Fixed-window counters limiting hits on the subject's status page, shared by every API
    process. Keyed by a keyed hash of the client address or of the link: no address, no token,
    nothing personal is stored; windows older than a few minutes are deleted as pages are hit.
    """

    __tablename__ = "status_page_hits"
    __table_args__ = (Index("ix_status_page_hits_window_start", "window_start"),)

    # HMAC (purpose "status-page-rate") of "address:<ip>" or "link:<token>".
    key_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    hits: int = Field(default=0, sa_column=Column(Integer, nullable=False))


class RetiredHashKey(SQLModel, table=True):
    """The hashing key of a retired DSR_SECRET_KEY for one look-up purpose, kept after a key
    rotation (``dsr keys rotate``) for keyed hashes whose input is deliberately not stored
    (suppression list, erased subjects' identities, calendar feed tokens): those cannot be
    re-hashed, so their look-ups also try these keys. Each key only computes that purpose's
    hashes (it cannot decrypt or sign anything) and is itself Fernet-encrypted under the
    current key.
    """

    __tablename__ = "retired_hash_keys"

    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=40, index=True)
    key_encrypted: str = Field(max_length=512)
    retired_at: datetime = timestamp()
