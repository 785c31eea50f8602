"""The request API's models: intake bodies per type, the request as shown, action bodies,
the board's search, and the webhook payload of request events, with the examples in ``/docs``."""

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    field_validator,
    model_validator,
)

from app.core.schemas import (
    EMAIL_FORMAT,
    PHONE_FORMAT,
    StrictModel,
    TextAwareDatetime,
    TextDate,
    at_least_one_of,
    normalise_email,
    normalise_phone,
)
from app.deadlines import Regulation
from app.enums import Channel, PauseReason, RejectReason, RequestStatus, RequestType
from app.register.schemas import RegulatorContact

# ---------------------------------------------------------------- subject


class Subject(StrictModel):
    """Who the request is about: an email, phone or customer id to find them by (a name
    alone only for requests received by post or phone, where an officer verifies them)."""

    model_config = ConfigDict(
        json_schema_extra=at_least_one_of("email", "phone", "name", "customer_id")
    )

    email: str | None = Field(
        default=None, max_length=320, json_schema_extra=EMAIL_FORMAT, examples=["jane@example.com"]
    )
    phone: str | None = Field(
        default=None, max_length=40, json_schema_extra=PHONE_FORMAT, examples=["+441632960001"]
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, examples=["Jane Doe"])
    customer_id: str | None = Field(default=None, min_length=1, max_length=200, examples=["C-1001"])

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalise_email(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else normalise_phone(value)

    @model_validator(mode="after")
    def _at_least_one_identity(self) -> "Subject":
        if not (self.email or self.phone or self.name or self.customer_id):
            raise ValueError("subject needs at least one of email, phone, name, customer_id")
        return self


# ---------------------------------------------------------------- details per type


class AccessDetails(StrictModel):
    """Nothing required; free-text scope notes may be added."""

    note: str | None = Field(default=None, max_length=4000)


class RectificationChange(StrictModel):
    field: str = Field(min_length=1, max_length=100, examples=["address"])
    current: str | None = Field(default=None, max_length=2000)
    requested: str = Field(max_length=2000)


class RectificationDetails(StrictModel):
    changes: list[RectificationChange] = Field(min_length=1, max_length=100)


class ErasureDetails(StrictModel):
    grounds: str | None = Field(default=None, max_length=4000)


class RestrictionDetails(StrictModel):
    reason: str | None = Field(default=None, max_length=4000)


class PortabilityDetails(StrictModel):
    formats: list[Literal["json", "csv"]] = Field(default=["json", "csv"], min_length=1)
    transmit_to: HttpUrl | None = None


class ObjectionDetails(StrictModel):
    scope: Literal["direct_marketing", "legitimate_interests", "profiling"]
    channels: list[Literal["email", "phone", "post", "sms"]] = Field(
        default=["email", "phone", "post", "sms"], min_length=1
    )


# ---------------------------------------------------------------- create


# Earliest receipt date accepted: older dates are typing errors, not back-dated post.
EARLIEST_RECEIPT = datetime(2000, 1, 1, tzinfo=UTC)


# The rule intake applies (ensure_identifiable), stated for generated clients: unless the
# request came by post or phone, the subject needs something to find them by.
FINDABLE_SUBJECT: dict[str, Any] = {
    "if": {"properties": {"channel": {"not": {"enum": ["post", "phone"]}}}},
    "then": {"properties": {"subject": at_least_one_of("email", "phone", "customer_id")}},
}


class RequestCreateBase(StrictModel):
    model_config = ConfigDict(json_schema_extra=FINDABLE_SUBJECT)

    subject: Subject
    regulation: Regulation = Regulation.UK_GDPR
    received_at: TextAwareDatetime | None = Field(
        default=None,
        description="When the controller received the request; defaults to now. May be "
        "back-dated (post, phone), never in the future. Must carry a UTC offset.",
    )
    channel: Channel = Channel.API
    external_ref: str | None = Field(default=None, min_length=1, max_length=200)
    identity_assertion: str | None = Field(
        default=None,
        max_length=4096,
        description="HS256 JWT signed with your client secret: `iss` = your client_id, "
        "`sub` = the subject's email or customer_id, `iat`, `exp` at most 10 minutes after "
        "`iat`, a single-use `jti`. When valid, the request starts `in_progress`.",
    )

    @field_validator("received_at")
    @classmethod
    def _plausible_receipt(cls, value: datetime | None) -> datetime | None:
        if value is not None and value < EARLIEST_RECEIPT:
            raise ValueError("must be on or after 2000-01-01")
        return value


class AccessCreate(RequestCreateBase):
    type: Literal[RequestType.ACCESS]
    details: AccessDetails = Field(default_factory=AccessDetails)


class RectificationCreate(RequestCreateBase):
    type: Literal[RequestType.RECTIFICATION]
    details: RectificationDetails


class ErasureCreate(RequestCreateBase):
    type: Literal[RequestType.ERASURE]
    details: ErasureDetails = Field(default_factory=ErasureDetails)


class RestrictionCreate(RequestCreateBase):
    type: Literal[RequestType.RESTRICTION]
    details: RestrictionDetails = Field(default_factory=RestrictionDetails)


class PortabilityCreate(RequestCreateBase):
    type: Literal[RequestType.PORTABILITY]
    details: PortabilityDetails = Field(default_factory=PortabilityDetails)


class ObjectionCreate(RequestCreateBase):
    type: Literal[RequestType.OBJECTION]
    details: ObjectionDetails


RequestCreate = Annotated[
    AccessCreate
    | RectificationCreate
    | ErasureCreate
    | RestrictionCreate
    | PortabilityCreate
    | ObjectionCreate,
    Field(discriminator="type"),
]

REQUEST_CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "access": {
        "summary": "Subject access request by email",
        "value": {
            "type": "access",
            "subject": {"email": "jane@example.com", "name": "Jane Doe"},
            "channel": "email",
            "received_at": "2026-11-21T10:15:00Z",
            "external_ref": "CRM-4411",
        },
    },
    "rectification": {
        "summary": "Rectification of an address",
        "value": {
            "type": "rectification",
            "subject": {"email": "jane@example.com", "customer_id": "C-1001"},
            "details": {
                "changes": [
                    {"field": "address", "current": "1 Old Road", "requested": "2 New Street"}
                ]
            },
        },
    },
    "erasure": {
        "summary": "Erasure after withdrawing consent",
        "value": {
            "type": "erasure",
            "subject": {"email": "jane@example.com"},
            "details": {"grounds": "consent withdrawn"},
        },
    },
    "objection": {
        "summary": "Objection to direct marketing by email and SMS",
        "value": {
            "type": "objection",
            "subject": {"phone": "+441632960001"},
            "details": {"scope": "direct_marketing", "channels": ["email", "sms"]},
        },
    },
    "portability": {
        "summary": "Portability as JSON",
        "value": {
            "type": "portability",
            "subject": {"customer_id": "C-1001"},
            "details": {"formats": ["json"], "transmit_to": None},
        },
    },
    "restriction": {
        "summary": "Restriction while accuracy is contested",
        "value": {
            "type": "restriction",
            "subject": {"email": "jane@example.com"},
            "details": {"reason": "accuracy contested"},
        },
    },
}


# ---------------------------------------------------------------- responses


class SubjectPublic(BaseModel):
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    customer_id: str | None = None


class VerificationPublic(BaseModel):
    status: Literal["pending", "verified", "failed"] = "pending"
    method: str | None = None
    verified_at: datetime | None = None


class DeadlinePublic(BaseModel):
    clock_started_on: date | None = None
    due_date: date | None = None
    due_at: datetime | None = None
    extended: bool = False
    paused_days: int = 0
    paused_since: date | None = None
    days_left: int | None = None
    overdue: bool = False


class RejectionPublic(BaseModel):
    reason: str
    explanation: str | None = None
    right_to_complain: RegulatorContact
    judicial_remedy: str
    notice: str


REQUEST_PUBLIC_EXAMPLE: dict[str, Any] = {
    "id": "5f0c6a8e-3b7d-4c1e-9a51-2b8f0d3e6c11",
    "type": "access",
    "status": "in_progress",
    "regulation": "uk_gdpr",
    "channel": "email",
    "received_at": "2026-09-03T09:12:00Z",
    "external_ref": "CRM-4411",
    "subject": {
        "email": "jane@example.com",
        "phone": None,
        "name": "Jane Doe",
        "customer_id": None,
    },
    "details": {"note": None},
    "verification": {
        "status": "verified",
        "method": "document",
        "verified_at": "2026-09-03T11:40:00Z",
    },
    "deadline": {
        "clock_started_on": "2026-09-03",
        "due_date": "2026-10-05",
        "due_at": "2026-10-05T22:59:59Z",
        "extended": False,
        "paused_days": 0,
        "paused_since": None,
        "days_left": 32,
        "overdue": False,
    },
    "rejection": None,
    "completion_summary": None,
    "fulfilment": None,
    "restricted": False,
    "assignee": "offic_472465fb73812f91",
    "possible_duplicate_of": None,
    "subject_history": {"window_days": 365, "by_type": {"access": 1}, "total": 1},
    "created_at": "2026-09-03T09:12:01Z",
    "updated_at": "2026-09-03T11:40:00Z",
}


class FulfilmentPublic(BaseModel):
    """The work done in the data sources, as it progresses."""

    status: Literal["queued", "running", "waiting_for_tasks", "succeeded", "failed"]
    progress: dict[str, Any] = Field(
        default_factory=dict,
        description="`step` (what is happening), `records` (records written so far), "
        "`sources_done` of `sources_total` (data sources worked through).",
    )
    result: dict[str, Any] | None = Field(
        default=None,
        description="What was done, per source: rows erased or anonymised, categories "
        "retained with their legal reason, fields rectified, exports produced, tasks. Never "
        "the subject's data.",
    )
    error: str | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SubjectHistory(BaseModel):
    """The subject's other requests: counts only, to judge whether one is excessive."""

    window_days: int = Field(
        description="Requests received in this many days up to now are counted.", examples=[365]
    )
    by_type: dict[str, int] = Field(
        description="Count per request type; types with none are left out.",
        examples=[{"access": 2, "erasure": 1}],
    )
    total: int = Field(examples=[3])


class ApprovalPublic(BaseModel):
    """An officer's approval of the fulfilment plan (``DSR_APPROVAL_REQUIRED``)."""

    approved_at: datetime
    approved_by: str = Field(description="The approving officer's client id.")
    plan_sha256: str
    counts: dict[str, int] = Field(description="The approved plan's totals per action.")


class RequestPublic(BaseModel):
    """A request as officers and integrations see it."""

    model_config = ConfigDict(json_schema_extra={"examples": [REQUEST_PUBLIC_EXAMPLE]})

    id: uuid.UUID
    type: RequestType
    status: RequestStatus
    regulation: Regulation
    channel: Channel
    received_at: datetime
    external_ref: str | None = None
    subject: SubjectPublic
    details: dict[str, Any] = Field(default_factory=dict)
    verification: VerificationPublic
    deadline: DeadlinePublic
    rejection: RejectionPublic | None = None
    completion_summary: str | None = None
    fulfilment: FulfilmentPublic | None = Field(
        default=None, description="Null until `fulfil` is called."
    )
    restricted: bool = Field(
        default=False,
        description="True while processing is restricted in the sources (restriction "
        "requests and upheld objections) until `lift-restriction`.",
    )
    assignee: str | None = Field(
        default=None,
        description="The `client_id` of the officer who owns the case; null when unassigned "
        "(`POST /v1/requests/{id}/assign`).",
    )
    possible_duplicate_of: uuid.UUID | None = Field(
        default=None,
        description="When logged, the same subject (by email, phone or customer id) already "
        "had this open request of the same type. A hint for the officer: never acted on "
        "automatically. Null for integrations (it may name a request they cannot see).",
    )
    subject_history: SubjectHistory | None = Field(
        default=None,
        description="The subject's OTHER requests received in the last 365 days, by type "
        "(this one not counted). Shown to officers by `GET /v1/requests/{id}` only; null in "
        "lists, action answers and for integrations.",
    )
    approval: ApprovalPublic | None = Field(
        default=None, description="Null until an officer approves the fulfilment plan."
    )
    created_at: datetime
    updated_at: datetime


class EventPublic(BaseModel):
    id: int
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]


# ---------------------------------------------------------------- actions


class PauseBody(StrictModel):
    reason: PauseReason
    note: str | None = Field(default=None, max_length=4000)


class ExtendBody(StrictModel):
    reason: str = Field(
        min_length=1, max_length=2000, examples=["Complex request spanning several systems"]
    )


class RejectBody(StrictModel):
    reason: RejectReason
    explanation: str | None = Field(default=None, max_length=4000)


class CancelBody(StrictModel):
    note: str | None = Field(default=None, max_length=4000)


class CompleteBody(StrictModel):
    summary: str | None = Field(default=None, max_length=4000)


DUE_SOON_FILTER = (
    "true: running and due within DSR_DUE_SOON_DAYS (default 7, today included), not yet past due"
)


ASSIGNEE_FILTER = "Owned by this client_id; `me` for your own cases"
UNASSIGNED_FILTER = "true: nobody owns the case; false: someone does"
DUPLICATES_FILTER = (
    "true: flagged `possible_duplicate_of` at intake; false: not flagged (officers only: 403 "
    "for integrations)"
)


class RequestSearch(StrictModel):
    """The filters of ``GET /v1/requests``, in a body: an address in a URL ends up in the
    access logs of every proxy on the way."""

    status: RequestStatus | None = None
    type: RequestType | None = None
    overdue: StrictBool | None = Field(default=None, description="true: past due and running")
    due_soon: StrictBool | None = Field(default=None, description=DUE_SOON_FILTER)
    due_before: TextDate | None = Field(default=None, description="Due strictly before this date")
    subject_email: str | None = Field(
        default=None, max_length=320, description="Case-insensitive; an invalid address finds none"
    )
    assignee: str | None = Field(
        default=None, min_length=1, max_length=64, description=ASSIGNEE_FILTER
    )
    unassigned: StrictBool | None = Field(default=None, description=UNASSIGNED_FILTER)
    duplicates: StrictBool | None = Field(default=None, description=DUPLICATES_FILTER)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(
        default=None, max_length=500, description="`next_cursor` of the previous page"
    )


REQUEST_SEARCH_EXAMPLES: dict[str, dict[str, Any]] = {
    "by_email": {
        "summary": "Everything from one data subject",
        "value": {"subject_email": "jane.doe@example.com"},
    },
    "my_cases": {
        "summary": "My cases in progress that were flagged as possible duplicates",
        "value": {"assignee": "me", "status": "in_progress", "duplicates": True},
    },
    "overdue_erasures": {
        "summary": "Overdue erasure requests, 20 per page",
        "value": {"type": "erasure", "overdue": True, "limit": 20},
    },
}


# ---------------------------------------------------------------- webhook payload


class RequestEventData(BaseModel):
    """What a consumer learns about a request: never the subject's identities."""

    id: uuid.UUID
    type: RequestType
    status: RequestStatus
    regulation: Regulation
    external_ref: str | None = None
    deadline: DeadlinePublic
    sequence: int = Field(
        ge=1,
        description="The event's number among this request's events: 1, 2, 3… in the order "
        "they happened, with no gaps or repeats across all of the request's event types. "
        "Deliveries may arrive out of order (retries, parallel sending): order a request's "
        "events by this, not by arrival or `timestamp` (events of one change share a "
        "timestamp). A retry carries the same number and `webhook-id`. You see holes when "
        "your subscription filters types or an event went to another client (`task.created` "
        "goes to the task's assignee).",
        examples=[3],
    )
    exports: list[dict[str, Any]] | None = Field(
        default=None,
        description="`export.ready`: each file's `id`, `format`, `size_bytes`, `sha256` and "
        "`expires_at`. Download with `GET /v1/requests/{id}/export?format=`.",
    )
    task: dict[str, Any] | None = Field(
        default=None,
        description="`task.created`: `id`, `source`, `request_type`. Read the task (it names "
        "the subject) with `GET /v1/requests/{id}/tasks/{task_id}` and report back with "
        "`POST` to the same path.",
    )
    erasure: dict[str, Any] | None = Field(
        default=None,
        description="`subject.erased`: `sources` erased and `retained_categories`. If we "
        "shared the subject's data with you, erase your copy (Art. 19).",
    )
    rectification: dict[str, Any] | None = Field(
        default=None,
        description="`subject.rectified`: the `fields` corrected (names, never values): "
        "re-read the subject from your system of record.",
    )
    restriction: dict[str, Any] | None = Field(
        default=None,
        description="`subject.restricted` / `subject.restriction_lifted`: `restricted` "
        "true or false (and the objection `scope` when an objection was upheld).",
    )
    suppression: dict[str, Any] | None = Field(
        default=None,
        description="`subject.suppressed`: the `channels` on which the subject must not be "
        "contacted. Check contacts with `POST /v1/suppressions/check`.",
    )


class RequestWebhookEvent(BaseModel):
    type: str = Field(description="The event type, e.g. `request.received`.")
    timestamp: datetime
    data: RequestEventData
