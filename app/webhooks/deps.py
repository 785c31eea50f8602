"""Load-or-404 dependencies for a webhook endpoint in the path: only its owner (or an admin)."""

import uuid
from typing import Annotated

from fastapi import Depends, Path

from app.auth.deps import WebhookManager
from app.core.deps import SessionDep
from app.models import WebhookEndpoint
from app.webhooks import endpoints

WebhookId = Annotated[uuid.UUID, Path(description="The webhook endpoint's id.")]


async def load_visible_endpoint(
    session: SessionDep, principal: WebhookManager, webhook_id: WebhookId
) -> WebhookEndpoint:
    """The endpoint if the caller may manage it: its own, or any for admins (else 404)."""
    return await endpoints.get_visible_endpoint(
        session, principal=principal, endpoint_id=webhook_id
    )


async def load_endpoint_for_update(
    session: SessionDep, principal: WebhookManager, webhook_id: WebhookId
) -> WebhookEndpoint:
    """As ``load_visible_endpoint``, locking the row so concurrent changes serialise."""
    return await endpoints.get_visible_endpoint(
        session, principal=principal, endpoint_id=webhook_id, for_update=True
    )


EndpointDep = Annotated[WebhookEndpoint, Depends(load_visible_endpoint)]

LockedEndpoint = Annotated[WebhookEndpoint, Depends(load_endpoint_for_update)]
