"""Effects fulfilment writes in its concluding transaction: tasks and published exports."""

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.time import iso_z
from app.exports import service as exports
from app.exports.writer import ExportFile
from app.mail import messages
from app.models import DataSource, DsrRequest, FulfilmentTask
from app.requests import audit


def task_summary(task: FulfilmentTask) -> dict[str, Any]:
    source = (task.result or {}).get("source") or f"task:{task.data_source_id}"
    return {"task_id": str(task.id), "source": source, "status": task.status}


def task_records(task: FulfilmentTask, settings: Settings) -> list[dict[str, Any]]:
    if not task.records_encrypted:
        return []
    text = decrypt_secret(task.records_encrypted, secret_keys=settings.reading_keys)
    records: list[dict[str, Any]] = json.loads(text) if text else []
    return records


async def create_tasks(
    session: AsyncSession,
    dsr: DsrRequest,
    task_sources: list[DataSource],
    *,
    settings: Settings,
    now: datetime,
) -> None:
    for source in task_sources:
        task = FulfilmentTask(
            request_id=dsr.id,
            data_source_id=source.id,
            assignee_client_id=str(source.config.get("assignee_client_id")),
            result={"source": source.name},
            created_at=now,
        )
        session.add(task)
        extra = {"task": {"id": str(task.id), "source": source.name, "request_type": dsr.type}}
        audit.record(
            session,
            dsr=dsr,
            settings=settings,
            now=now,
            actor="worker",
            audit_type="task.created",
            audit_data=extra["task"],
            webhook_event="task.created",
            webhook_extra=extra,
            webhook_owner=task.assignee_client_id,
        )


async def publish_exports(
    session: AsyncSession,
    dsr: DsrRequest,
    files: dict[str, ExportFile],
    settings: Settings,
    now: datetime,
) -> list[dict[str, Any]]:
    """Record the files, announce ``export.ready`` and email the subject their links."""
    rows = await exports.record_exports(
        session, request_id=dsr.id, files=files, settings=settings, now=now
    )
    listed = [
        {
            "id": str(row.id),
            "format": row.format,
            "size_bytes": row.size_bytes,
            "sha256": row.sha256,
            "expires_at": iso_z(row.expires_at),
        }
        for row in rows
    ]
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor="worker",
        audit_type="export.ready",
        audit_data={"exports": listed},
        webhook_event="export.ready",
        webhook_extra={"exports": listed},
    )
    await messages.queue_message(
        session,
        settings=settings,
        dsr=dsr,
        kind=messages.MessageKind.EXPORT_READY,
        context={
            "links": [
                {"format": row.format, "url": exports.download_url(row, settings)} for row in rows
            ],
            "expires_at": rows[0].expires_at if rows else None,
        },
        now=now,
    )
    return listed
