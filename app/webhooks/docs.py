"""Every webhook event type documented in the OpenAPI document (``app.webhooks``).

Request events carry the request's payload, which the requests capability defines; the app
factory passes its model in, so webhooks stay below the capabilities that raise events.
"""

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from fastapi import APIRouter, Body, FastAPI
from pydantic import BaseModel, Field

from app.webhooks.event_types import ADMIN_EVENT_TYPES, EVENT_TYPES

SIGNATURE_NOTE = """
Signed per the Standard Webhooks specification: verify the `webhook-signature` header over
`webhook-id`, `webhook-timestamp` and the raw body with your endpoint's `whsec_` secret (for
example with the `standardwebhooks` package). `webhook-id` stays the same across retries, so
use it to ignore duplicates. Answer any 2xx quickly; anything else is retried with backoff
for about three days; 410 disables the endpoint.
"""


# What the consumer's endpoint answers, as the delivery loop reads it. Declaring "default"
# also keeps FastAPI from documenting its own 422, which a consumer never sends us.
CONSUMER_ANSWERS = {
    "2XX": "Received: any 2xx answer (204 shown) ends the deliveries of this event.",
    "410": "Gone: the service disables the endpoint and stops sending to it.",
    "default": (
        "Anything else, or no answer within DSR_WEBHOOK_TIMEOUT, is retried with backoff for "
        "about three days."
    ),
}
CONSUMER_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description}
    for status, description in CONSUMER_ANSWERS.items()
    if status != "2XX"
}


class EndpointDisabledData(BaseModel):
    endpoint_id: uuid.UUID
    reason: str


class EndpointDisabledEvent(BaseModel):
    type: str = Field(default="webhook.endpoint_disabled")
    timestamp: datetime
    data: EndpointDisabledData


def _document(
    router: APIRouter, event_type: str, description: str, request_event: type[BaseModel]
) -> None:
    model: Any = EndpointDisabledEvent if event_type in ADMIN_EVENT_TYPES else request_event

    async def receive(event: Any = Body()) -> None:  # documentation only, never routed
        return None

    receive.__annotations__["event"] = model
    receive.__doc__ = f"{description}\n{SIGNATURE_NOTE}"
    router.post(
        event_type,
        summary=description,
        tags=["Webhook events"],
        status_code=204,
        response_description=CONSUMER_ANSWERS["2XX"],
        responses=CONSUMER_RESPONSES,
    )(receive)


@cache
def _event_docs(request_event: type[BaseModel]) -> APIRouter:
    # Built once per process: the routes only feed the OpenAPI document, and building them
    # was most of the cost of creating an app.
    router = APIRouter()
    for event_type, description in EVENT_TYPES.items():
        _document(router, event_type, description, request_event)
    return router


def register_webhook_docs(app: FastAPI, *, request_event: type[BaseModel]) -> None:
    """Document each event type: admin events with their own model, the rest with
    ``request_event`` (the body of every event about a request)."""
    app.webhooks.routes.extend(_event_docs(request_event).routes)
