"""The service's vocabularies: one enum per name or state machine, importing nothing of the app.

Configuration, tables, API schemas and services all speak these, so they live below them all.
"""

from enum import StrEnum


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


class VerificationMethod(StrEnum):
    """How a subject's identity may be confirmed (see the verification policy)."""

    EMAIL_CODE = "email_code"
    DOCUMENT = "document"
    IDENTITY_ASSERTION = "identity_assertion"
    OFFICER_ATTESTATION = "officer_attestation"


class PauseReason(StrEnum):
    AWAITING_CLARIFICATION = "awaiting_clarification"
    AWAITING_FEE = "awaiting_fee"


class RejectReason(StrEnum):
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    EXEMPTION = "exemption"


class FulfilmentStatus(StrEnum):
    """A request's fulfilment, as shown on the request (``fulfilment.status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_FOR_TASKS = "waiting_for_tasks"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobStatus(StrEnum):
    """A row of the fulfilment job queue (what the worker leases and runs)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TaskStatus(StrEnum):
    """A task a ``task`` source's consumer does and reports back."""

    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"
