"""The webhook outbox: events written in the transaction of the change they announce.

The worker fans each row out to the matching endpoints (``app.webhooks.delivery``), so an
event is delivered at least once exactly when its change was committed.
"""

import uuid
from datetime import datetime
from typing import Any

from app.core.logs import current_request_id
from app.core.time import iso_z


def outbox_row(
    *,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    owner_client_id: str | None,
    request_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """An ``outbox`` row whose payload is the Standard Webhooks body ``{type, timestamp, data}``.

    ``owner_client_id``: whose endpoints receive it (others never see the event).
    """
    return {
        "id": uuid.uuid4(),
        "event_type": event_type,
        "request_id": request_id,
        "owner_client_id": owner_client_id,
        "payload": {"type": event_type, "timestamp": iso_z(now), "data": data},
        "created_at": now,
        "published_at": None,
        # The HTTP request (or job) that caused it: the worker logs its delivery under it.
        "trace_id": current_request_id(),
    }
