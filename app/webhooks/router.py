"""Webhook subscriptions: register endpoints, rotate secrets, read and replay deliveries."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response

from app.auth.deps import TokenFirstRoute, WebhookManager
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND, VALIDATION
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.core.time import utcnow
from app.webhooks import endpoints
from app.webhooks.deps import EndpointDep, LockedEndpoint
from app.webhooks.schemas import (
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookSecretRotated,
)

router = APIRouter(prefix="/v1/webhooks", tags=["Webhooks"], route_class=TokenFirstRoute)

ENDPOINT_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**NOT_FOUND[404], "description": "No such webhook endpoint, or it is not yours."}
}
ENDPOINT_DISABLED: dict[int | str, dict[str, Any]] = {
    409: {**CONFLICT[409], "description": "The endpoint is disabled; enable it first."}
}
URL_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        **VALIDATION[422],
        "description": "Invalid body, unknown event type, or a URL we may not deliver to "
        "(not https in production, credentials in the URL, a private or metadata address, "
        "or a host name that does not resolve).",
    }
}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: {"description": "Invalid cursor."}}
ENDPOINT_ERRORS = {**AUTH_ERRORS, **ENDPOINT_NOT_FOUND, **VALIDATION}

DeliveryId = Annotated[
    uuid.UUID, Path(description="The delivery's id (the `webhook-id` header it was sent with).")
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    summary="Subscribe an endpoint to events",
    responses={**AUTH_ERRORS, **URL_REFUSED, 409: {"description": "Too many endpoints."}},
)
async def create_webhook(
    body: WebhookCreate, principal: WebhookManager, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    """Register a URL to receive signed event notifications as they happen.

    Choose `events` by exact type or by family (`request.*`, the default). Your endpoint
    receives the events of the requests **you submitted**; an admin's endpoint receives
    every request's events. Payloads carry the request's id, type, status and deadline,
    never the data subject's identity.

    **The `secret` is shown only in this response.** Every delivery is signed with it per
    the Standard Webhooks specification (`webhook-id`, `webhook-timestamp` and
    `webhook-signature` headers): verify the signature before trusting a delivery.
    Answer with a 2xx status; anything else is retried with backoff for about three days.
    """
    endpoint, secret = await endpoints.create_endpoint(
        session,
        settings=settings,
        principal=principal,
        url=body.url,
        events=body.events,
        description=body.description,
        now=utcnow(),
    )
    return WebhookCreated(**endpoints.endpoint_public(endpoint).model_dump(), secret=secret)


@router.get(
    "",
    response_model=Page[WebhookPublic],
    summary="List webhook endpoints",
    responses={**AUTH_ERRORS, **VALIDATION, **BAD_CURSOR},
)
async def list_webhooks(
    principal: WebhookManager,
    _strict: StrictQuery,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[WebhookPublic]:
    """Your webhook endpoints, newest first (admins: every client's); secrets are never shown.

    Disabled endpoints are listed with `active: false` and the reason; deleted ones are not.
    Pass `next_cursor` back as `cursor` for the next page.
    """
    rows, next_cursor = await endpoints.list_endpoints(
        session, principal=principal, limit=limit, cursor=cursor
    )
    return Page[WebhookPublic](
        items=[endpoints.endpoint_public(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{webhook_id:uuid}",
    response_model=WebhookPublic,
    summary="Get one webhook endpoint",
    responses=ENDPOINT_ERRORS,
)
async def get_webhook(endpoint: EndpointDep) -> WebhookPublic:
    """The endpoint's URL, event filters and state; the secret is never shown again."""
    return endpoints.endpoint_public(endpoint)


@router.delete(
    "/{webhook_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook endpoint",
    responses=ENDPOINT_ERRORS,
)
async def delete_webhook(endpoint: LockedEndpoint, session: SessionDep) -> Response:
    """Stop sending events to this endpoint, for good.

    Deliveries not yet made are cancelled and the signing secrets are destroyed. The
    endpoint then no longer appears in any answer; register a new one to subscribe again.
    """
    await endpoints.delete_endpoint(session, endpoint=endpoint, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id:uuid}/rotate-secret",
    response_model=WebhookSecretRotated,
    summary="Rotate the signing secret",
    responses=ENDPOINT_ERRORS,
)
async def rotate_webhook_secret(
    endpoint: LockedEndpoint, session: SessionDep, settings: SettingsDep
) -> WebhookSecretRotated:
    """Issue a new signing secret, **shown only in this response**.

    For 24 hours (until `previous_secret_expires_at`) each delivery carries two signatures
    in `webhook-signature`, one per secret, so you can switch your verifier without losing
    events. Rotating again within that window retires the older secret at once.
    """
    now = utcnow()
    secret = await endpoints.rotate_secret(session, settings=settings, endpoint=endpoint, now=now)
    return WebhookSecretRotated(
        id=endpoint.id,
        secret=secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at
        or now + endpoints.SECRET_OVERLAP,
    )


@router.post(
    "/{webhook_id:uuid}/enable",
    response_model=WebhookPublic,
    summary="Re-enable a disabled endpoint",
    responses={**AUTH_ERRORS, **ENDPOINT_NOT_FOUND, **URL_REFUSED},
)
async def enable_webhook(
    endpoint: LockedEndpoint, session: SessionDep, settings: SettingsDep
) -> WebhookPublic:
    """Start sending events again to an endpoint that was disabled after failing.

    An endpoint is disabled when it answers 410 Gone or fails every attempt for five days.
    Events raised while it was disabled are not sent; retry the ones you need from its
    delivery log. The URL is checked again (422 if it is no longer allowed). Enabling an
    active endpoint changes nothing.
    """
    await endpoints.enable_endpoint(session, settings=settings, endpoint=endpoint, now=utcnow())
    return endpoints.endpoint_public(endpoint)


@router.get(
    "/{webhook_id:uuid}/deliveries",
    response_model=Page[WebhookDeliveryPublic],
    summary="Delivery log of an endpoint",
    responses={**ENDPOINT_ERRORS, **BAD_CURSOR},
)
async def list_webhook_deliveries(
    endpoint: EndpointDep,
    _strict: StrictQuery,
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[WebhookDeliveryPublic]:
    """Events sent or queued for this endpoint, newest first, with every attempt.

    Each attempt shows when it was made, the HTTP status your endpoint answered (null when
    none: timeout or connection error), how long it took and the error. Filter by `status`
    (`pending`, `succeeded`, `failed`); pass `next_cursor` back as `cursor` for more.
    """
    rows, next_cursor = await endpoints.list_deliveries(
        session, endpoint=endpoint, status=status_, limit=limit, cursor=cursor
    )
    return Page[WebhookDeliveryPublic](
        items=[endpoints.delivery_public(delivery, attempts) for delivery, attempts in rows],
        next_cursor=next_cursor,
    )


@router.post(
    "/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryPublic,
    summary="Send a delivery again",
    responses={
        **AUTH_ERRORS,
        404: {
            **NOT_FOUND[404],
            "description": "No such endpoint or delivery, or the endpoint is not yours.",
        },
        **ENDPOINT_DISABLED,
        **VALIDATION,
    },
)
async def retry_webhook_delivery(
    endpoint: LockedEndpoint, delivery_id: DeliveryId, session: SessionDep
) -> WebhookDeliveryPublic:
    """Queue the delivery for another attempt now, whatever its status.

    It is sent with the same `webhook-id`, so a receiver that de-duplicates on it can
    ignore a copy it already processed. The attempt appears in the delivery log shortly.
    """
    delivery, attempts = await endpoints.retry_delivery(
        session, endpoint=endpoint, delivery_id=delivery_id, now=utcnow()
    )
    return endpoints.delivery_public(delivery, attempts)
