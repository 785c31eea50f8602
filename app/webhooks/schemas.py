"""Request and response models of the webhook subscription API, with examples for ``/docs``."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import StrictModel
from app.webhooks.event_types import EVENT_TYPES

EventPattern = Annotated[str, Field(min_length=1, max_length=100)]

_EVENTS_DESCRIPTION = (
    "Event types to receive: exact types, a family wildcard such as `request.*`, or `*` for "
    "everything you may receive. Known types: "
    + ", ".join(f"`{event_type}`" for event_type in EVENT_TYPES)
    + ". `webhook.endpoint_disabled` is for admins only."
)

WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": "0b8f3c2e-54a1-4c55-9d1e-6f0d2a3b4c5d",
    "url": "https://crm.example.com/hooks/dsr",
    "events": ["request.*"],
    "description": "Acme CRM: close tickets when requests finish",
    "active": True,
    "receives_all": False,
    "disabled_reason": None,
    "disabled_at": None,
    "created_at": "2026-09-03T09:12:01Z",
}


class WebhookCreate(StrictModel):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="Where events are POSTed. https in production; loopback, private and "
        "cloud metadata addresses are refused unless the service allows them.",
        examples=["https://crm.example.com/hooks/dsr"],
    )
    events: list[EventPattern] = Field(
        default_factory=lambda: ["request.*"],
        min_length=1,
        max_length=50,
        description=_EVENTS_DESCRIPTION,
        examples=[["request.*"], ["request.completed", "request.rejected", "task.created"]],
    )
    description: str | None = Field(
        default=None, max_length=500, examples=["Acme CRM: close tickets when requests finish"]
    )


class WebhookPublic(BaseModel):
    """A webhook subscription; its signing secret is never shown here."""

    model_config = ConfigDict(json_schema_extra={"examples": [WEBHOOK_EXAMPLE]})

    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None = None
    active: bool = Field(description="False once disabled (HTTP 410 or persistent failure).")
    receives_all: bool = Field(
        description="True for admins' endpoints: events of every request, not only the "
        "requests the owner submitted."
    )
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    created_at: datetime


class WebhookCreated(WebhookPublic):
    """The new subscription with its signing secret: **shown only in this response**."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]
        }
    )

    secret: str = Field(
        description="Standard Webhooks signing secret (`whsec_` + base64). Store it safely: "
        "it is shown only once."
    )


class WebhookSecretRotated(BaseModel):
    """The new signing secret; the previous one keeps signing until the time given."""

    id: uuid.UUID
    secret: str = Field(description="The new signing secret, shown only in this response.")
    previous_secret_expires_at: datetime = Field(
        description="Until then every delivery carries signatures with both secrets."
    )


class WebhookAttemptPublic(BaseModel):
    """One HTTP attempt of a delivery."""

    attempted_at: datetime
    status_code: int | None = Field(description="Null when no HTTP answer arrived.")
    latency_ms: int
    error: str | None = None
    succeeded: bool


DeliveryStatus = Literal["pending", "succeeded", "failed"]


class WebhookDeliveryPublic(BaseModel):
    """One event sent (or to be sent) to one endpoint; `id` is the `webhook-id` header."""

    id: uuid.UUID
    event_type: str
    status: str = Field(description="`pending`, `succeeded` or `failed`.")
    attempt_count: int
    next_attempt_at: datetime | None = Field(
        description="When the next attempt is due; null once the delivery is finished."
    )
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    attempts: list[WebhookAttemptPublic] = Field(description="Oldest first.")
