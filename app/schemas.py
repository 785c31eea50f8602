"""Request and response models of the API, with the examples shown in ``/docs``."""

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from app.security import Role
from app.services.deadlines import Regulation

ItemT = TypeVar("ItemT")


class RequestType(StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    PORTABILITY = "portability"
    OBJECTION = "objection"


class RequestStatus(StrEnum):
    AWAITING_VERIFICATION = "awaiting_verification"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Channel(StrEnum):
    API = "api"
    WEB = "web"
    EMAIL = "email"
    POST = "post"
    PHONE = "phone"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def normalise_email(value: str) -> str:
    """Normalised address; the error never echoes the input (it is personal data)."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None


def normalise_phone(value: str, default_region: str = "GB") -> str:
    """E.164 form; national numbers are read in the controller's default region."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a valid phone number") from None
    # "Possible", not "valid": Ofcom's drama ranges (01632 960xxx) are real test numbers.
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---------------------------------------------------------------- subject


class Subject(StrictModel):
    """Who the request is about. At least one identity is required."""

    email: str | None = Field(default=None, max_length=320, examples=["jane@example.com"])
    phone: str | None = Field(default=None, max_length=40, examples=["+441632960001"])
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


class RequestCreateBase(StrictModel):
    subject: Subject
    regulation: Regulation = Regulation.UK_GDPR
    received_at: AwareDatetime | None = Field(
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


class RegulatorContact(BaseModel):
    name: str
    url: str


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
    "created_at": "2026-09-03T09:12:01Z",
    "updated_at": "2026-09-03T11:40:00Z",
}


class FulfilmentPublic(BaseModel):
    """The work done in the data sources, as it progresses."""

    status: Literal["queued", "running", "waiting_for_tasks", "succeeded", "failed"]
    progress: dict[str, Any] = Field(
        default_factory=dict,
        description="`step` (what is happening), `records` (records written so far), "
        "`sources_done`.",
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
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[ItemT]):
    """Every list answers with this shape; pass ``next_cursor`` back as ``cursor``."""

    items: list[ItemT]
    next_cursor: str | None = None


class EventPublic(BaseModel):
    id: int
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]


# ---------------------------------------------------------------- actions


class PauseReason(StrEnum):
    AWAITING_CLARIFICATION = "awaiting_clarification"
    AWAITING_FEE = "awaiting_fee"


class PauseBody(StrictModel):
    reason: PauseReason
    note: str | None = Field(default=None, max_length=4000)


class ExtendBody(StrictModel):
    reason: str = Field(
        min_length=1, max_length=2000, examples=["Complex request spanning several systems"]
    )


class RejectReason(StrEnum):
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    EXEMPTION = "exemption"


class RejectBody(StrictModel):
    reason: RejectReason
    explanation: str | None = Field(default=None, max_length=4000)


class CancelBody(StrictModel):
    note: str | None = Field(default=None, max_length=4000)


class CompleteBody(StrictModel):
    summary: str | None = Field(default=None, max_length=4000)


class FulfilBody(StrictModel):
    """Input to ``fulfil``; only objections on legitimate interests or profiling need it."""

    objection_decision: Literal["uphold", "override"] | None = Field(
        default=None,
        description="For an objection to processing on legitimate interests or profiling: "
        "`uphold` stops the processing (flagged in the sources); `override` continues it on "
        "compelling legitimate grounds, which you must give in `grounds`.",
    )
    grounds: str | None = Field(
        default=None,
        max_length=4000,
        description="The compelling legitimate grounds that override the subject's interests "
        "(required with `override`; kept in the audit trail and told to the subject).",
    )
    note: str | None = Field(default=None, max_length=4000)


FULFIL_EXAMPLES: dict[str, Any] = {
    "no_body": {"summary": "Most requests: no body needed", "value": {}},
    "uphold": {
        "summary": "Objection (legitimate interests): uphold",
        "value": {"objection_decision": "uphold"},
    },
    "override": {
        "summary": "Objection (legitimate interests): override",
        "value": {
            "objection_decision": "override",
            "grounds": "Fraud prevention checks on active accounts are required by our card "
            "scheme rules and protect other customers.",
        },
    },
}


class RequestSearch(StrictModel):
    """The filters of ``GET /v1/requests``, in a body: an address in a URL ends up in the
    access logs of every proxy on the way."""

    status: RequestStatus | None = None
    type: RequestType | None = None
    overdue: bool | None = Field(default=None, description="true: past due and running")
    due_before: date | None = Field(default=None, description="Due strictly before this date")
    subject_email: str | None = Field(
        default=None, max_length=320, description="Case-insensitive; an invalid address finds none"
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(
        default=None, max_length=500, description="`next_cursor` of the previous page"
    )


REQUEST_SEARCH_EXAMPLES: dict[str, dict[str, Any]] = {
    "by_email": {
        "summary": "Everything from one data subject",
        "value": {"subject_email": "jane.doe@example.com"},
    },
    "overdue_erasures": {
        "summary": "Overdue erasure requests, 20 per page",
        "value": {"type": "erasure", "overdue": True, "limit": 20},
    },
}


class LiftRestrictionBody(StrictModel):
    reason: str = Field(
        min_length=1,
        max_length=4000,
        description="Why the restriction ends (e.g. the accuracy check finished); the subject "
        "is told before the sources are unflagged (Art. 18(3)).",
    )


class VerificationMethod(StrEnum):
    """How a subject's identity may be confirmed (see the verification policy)."""

    EMAIL_CODE = "email_code"
    DOCUMENT = "document"
    IDENTITY_ASSERTION = "identity_assertion"
    OFFICER_ATTESTATION = "officer_attestation"


class DocumentVerification(StrictModel):
    """An officer records the result of a document check (officers only)."""

    method: Literal["document"]
    document_type: Literal["passport", "driving_licence"]
    business_address_confirmed: bool = False
    result: Literal["passed", "failed"]


class EmailCodeVerification(StrictModel):
    """Email the subject a one-time code (officers, and the submitting integration)."""

    method: Literal["email_code"]


class OfficerAttestation(StrictModel):
    """An officer confirms identity from context, e.g. the request came from the address
    on file (officers only)."""

    method: Literal["officer_attestation"]
    note: str = Field(
        min_length=1,
        max_length=2000,
        description="How you know it is the subject; kept in the audit trail.",
        examples=["Request sent from the email address on the customer record"],
    )


VerificationBody = Annotated[
    DocumentVerification | EmailCodeVerification | OfficerAttestation,
    Field(discriminator="method"),
]

VERIFICATION_EXAMPLES: dict[str, dict[str, Any]] = {
    "email_code": {
        "summary": "Email the subject a one-time code",
        "value": {"method": "email_code"},
    },
    "document": {
        "summary": "Record a passed document check",
        "value": {
            "method": "document",
            "document_type": "passport",
            "business_address_confirmed": True,
            "result": "passed",
        },
    },
    "officer_attestation": {
        "summary": "Confirm identity from context",
        "value": {
            "method": "officer_attestation",
            "note": "Request sent from the email address on the customer record",
        },
    },
}


class CodeConfirmBody(StrictModel):
    code: str = Field(
        min_length=1,
        max_length=20,
        description="The 6-digit code the subject received by email (spaces are ignored).",
        examples=["042917"],
    )

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        digits = "".join(value.split())
        # ASCII digits only: str.isdigit() would also admit other scripts' digits.
        if len(digits) != 6 or not all("0" <= char <= "9" for char in digits):
            raise ValueError("must be the 6 digits of the code")
        return digits


# ---------------------------------------------------------------- clients and tokens


class ClientCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["Acme CRM"])
    role: Role = Field(examples=["integration"])


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown only in this response; store it safely.")
    name: str
    role: Role


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str
