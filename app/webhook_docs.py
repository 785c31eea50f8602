"""Every webhook event type documented in the OpenAPI document (``app.webhooks``)."""

import uuid
from datetime import datetime
from typing import Any

from fastapi import Body, FastAPI
from pydantic import BaseModel, Field

from app.schemas import DeadlinePublic, RequestStatus, RequestType
from app.services.deadlines import Regulation
from app.services.event_types import ADMIN_EVENT_TYPES, EVENT_TYPES

SIGNATURE_NOTE = """
Signed per the Standard Webhooks specification: verify the `webhook-signature` header over
`webhook-id`, `webhook-timestamp` and the raw body with your endpoint's `whsec_` secret (for
example with the `standardwebhooks` package). `webhook-id` stays the same across retries, so
use it to ignore duplicates. Answer any 2xx quickly; anything else is retried with backoff
for about three days; 410 disables the endpoint.
"""


class RequestEventData(BaseModel):
    """What a consumer learns about a request: never the subject's identities."""

    id: uuid.UUID
    type: RequestType
    status: RequestStatus
    regulation: Regulation
    external_ref: str | None = None
    deadline: DeadlinePublic
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


class EndpointDisabledData(BaseModel):
    endpoint_id: uuid.UUID
    reason: str


class EndpointDisabledEvent(BaseModel):
    type: str = Field(default="webhook.endpoint_disabled")
    timestamp: datetime
    data: EndpointDisabledData


def _document(app: FastAPI, event_type: str, description: str) -> None:
    model: Any = EndpointDisabledEvent if event_type in ADMIN_EVENT_TYPES else RequestWebhookEvent

    async def receive(event: Any = Body()) -> None:  # documentation only, never routed
        return None

    receive.__annotations__["event"] = model
    receive.__doc__ = f"{description}\n{SIGNATURE_NOTE}"
    app.webhooks.post(event_type, summary=description, tags=["Webhook events"])(receive)


def register_webhook_docs(app: FastAPI) -> None:
    for event_type, description in EVENT_TYPES.items():
        _document(app, event_type, description)
