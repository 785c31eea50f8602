"""The 404 for an export asked for while fulfilment is still producing it.

``fulfil`` answers at once and the worker writes the files later, so a client that downloads
straight after fulfilling (a pasted script, an impatient integration) must learn that the
export is on its way, and how far along, rather than to "fulfil the request first".
"""

from typing import Any

from app.core.errors import NotFound
from app.enums import FulfilmentStatus
from app.models import DsrRequest

# Fulfilment states in which the export is still to come.
FULFILMENT_UNDER_WAY = frozenset(
    {FulfilmentStatus.QUEUED, FulfilmentStatus.RUNNING, FulfilmentStatus.WAITING_FOR_TASKS}
)
# Seconds a client should wait before asking again while the worker runs the job.
RETRY_AFTER_SECONDS = 2
# The progress fields the runner shows; nothing else of the state is echoed back.
_PROGRESS_FIELDS = ("step", "sources_done", "records")


def _progress(dsr: DsrRequest) -> dict[str, Any]:
    progress = (dsr.fulfilment or {}).get("progress") or {}
    return {name: progress[name] for name in _PROGRESS_FIELDS if name in progress}


def _progress_text(progress: dict[str, Any]) -> str:
    """``collecting from demo_crm, 120 records written so far``: for the detail."""
    parts = []
    if progress.get("step"):
        parts.append(str(progress["step"]))
    if isinstance(progress.get("records"), int):
        parts.append(f"{progress['records']} records written so far")
    return ", ".join(parts)


class ExportNotReady(NotFound):
    """404 with the request's fulfilment status and progress (``fulfilment`` member)."""

    def __init__(self, dsr: DsrRequest, export_format: str) -> None:
        status = str(dsr.fulfilment_status)
        progress = _progress(dsr)
        follow = f"Follow it on GET /v1/requests/{dsr.id} (`fulfilment`)."
        headers: dict[str, str] = {}
        if status == FulfilmentStatus.WAITING_FOR_TASKS:
            detail = (
                "Fulfilment of this request is waiting for its tasks: other systems are "
                f"doing their part (GET /v1/requests/{dsr.id}/tasks). The {export_format} "
                f"export will be here once they have reported back. {follow}"
            )
        else:
            doing = _progress_text(progress) if status == FulfilmentStatus.RUNNING else ""
            detail = (
                f"Fulfilment of this request is {status}{f' ({doing})' if doing else ''}: the "
                f"{export_format} export will be here when it has succeeded. {follow}"
            )
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        super().__init__(
            detail,
            title="Export not ready",
            headers=headers,
            extra={"fulfilment": {"status": status, "progress": progress}},
        )
