"""Fulfilment tasks: work a ``task`` source's consumer does and reports back.

The consumer (the source's assignee client) receives ``task.created``, reads the task (which
names the subject and what to do), acts in its own system and posts the result. When the last
open task of a request is in, a ``finalise`` job completes the fulfilment.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.scopes import Principal
from app.core.config import Settings
from app.core.crypto import encrypt_secret
from app.core.errors import Conflict, NotFound, UnprocessableEntity
from app.enums import FulfilmentStatus, RequestType, TaskStatus
from app.fulfilment import jobs
from app.fulfilment.schemas import TaskPublic, TaskResultBody, TaskSubject
from app.models import DataSource, DsrRequest, FulfilmentTask
from app.requests import audit

EXPORTING_TYPES = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


def _may_work_on(principal: Principal, task: FulfilmentTask) -> bool:
    return principal.sees_all_requests or principal.client_id == task.assignee_client_id


async def visible_task(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    task_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> FulfilmentTask:
    """The task, if this caller is its assignee or sees every request (else 404)."""
    task = await session.get(FulfilmentTask, task_id, with_for_update=for_update)
    if task is None or task.request_id != request_id or not _may_work_on(principal, task):
        raise NotFound("No task with this id is visible to you.")
    return task


async def list_tasks(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> list[FulfilmentTask]:
    """The request's tasks this caller may see (assignees see only theirs)."""
    rows = await session.execute(
        select(FulfilmentTask)
        .where(col(FulfilmentTask.request_id) == request_id)
        .order_by(col(FulfilmentTask.created_at), col(FulfilmentTask.id))
    )
    return [task for task in rows.scalars() if _may_work_on(principal, task)]


async def visible_tasks(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> list[FulfilmentTask]:
    """The caller's view of a request's tasks: empty for a request it may see that has none;
    404 when it may see neither the request nor any of its tasks."""
    found = await list_tasks(session, principal, request_id)
    if found:
        return found
    dsr = await session.get(DsrRequest, request_id)
    if dsr is None or not (principal.sees_all_requests or dsr.submitted_by == principal.client_id):
        raise NotFound("No task of this request is visible to you.")
    return []


async def task_public(session: AsyncSession, task: FulfilmentTask) -> TaskPublic:
    dsr = await session.get(DsrRequest, task.request_id)
    source = await session.get(DataSource, task.data_source_id)
    assert dsr is not None and source is not None  # neither is ever deleted outright
    return TaskPublic(
        id=task.id,
        request_id=task.request_id,
        source=source.name,
        instructions=source.config.get("instructions"),
        status=task.status,
        request_type=dsr.type,
        request_status=dsr.status,
        details=dsr.details,
        subject=TaskSubject(
            email=dsr.subject_email,
            phone=dsr.subject_phone,
            name=dsr.subject_name,
            customer_id=dsr.subject_customer_id,
        ),
        due_at=dsr.due_at,
        note=task.note,
        created_at=task.created_at,
        completed_at=task.completed_at,
    )


async def supersede_open(session: AsyncSession, request_id: uuid.UUID) -> None:
    """A new fulfilment run replaces every earlier task of the request."""
    await session.execute(
        update(FulfilmentTask)
        .where(
            col(FulfilmentTask.request_id) == request_id,
            col(FulfilmentTask.status) != TaskStatus.SUPERSEDED,
        )
        .values(status=TaskStatus.SUPERSEDED.value)
    )


async def report(
    session: AsyncSession,
    *,
    settings: Settings,
    task: FulfilmentTask,
    body: TaskResultBody,
    actor: str,
    now: datetime,
) -> FulfilmentTask:
    """Record a task's result; the last one in queues the finalising job."""
    if task.status != TaskStatus.OPEN:
        raise Conflict(f"This task is already {task.status}.", title="Task closed")
    dsr = await session.get(DsrRequest, task.request_id, with_for_update=True)
    assert dsr is not None
    if body.records and dsr.type not in EXPORTING_TYPES:
        raise UnprocessableEntity("`records` apply to access and portability tasks only.")
    task.status = body.status
    task.note = body.note
    task.completed_at = now
    if body.records:
        records = [record.model_dump(mode="json") for record in body.records]
        task.records_encrypted = encrypt_secret(json.dumps(records), secret_key=settings.secret_key)
    result: dict[str, Any] = dict(task.result or {})
    result["records"] = len(body.records or [])
    result["retained"] = [item.model_dump() for item in body.retained or []]
    task.result = result
    session.add(task)
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor=actor,
        audit_type=f"task.{body.status}",
        audit_data={"task_id": str(task.id), "source": result.get("source"), "note": body.note},
    )
    await session.flush()
    await _maybe_finalise(session, dsr=dsr, settings=settings, now=now, actor=actor)
    return task


async def _maybe_finalise(
    session: AsyncSession, *, dsr: DsrRequest, settings: Settings, now: datetime, actor: str
) -> None:
    rows = await session.execute(
        select(col(FulfilmentTask.status)).where(
            col(FulfilmentTask.request_id) == dsr.id,
            col(FulfilmentTask.status) != TaskStatus.SUPERSEDED,
        )
    )
    statuses = [status for (status,) in rows]
    if TaskStatus.OPEN in statuses or dsr.fulfilment_status != FulfilmentStatus.WAITING_FOR_TASKS:
        return
    state = dict(dsr.fulfilment or {})
    if TaskStatus.FAILED in statuses:
        state["error"] = "a task failed; see the audit trail, then fulfil again or complete by hand"
        state["progress"] = {**(state.get("progress") or {}), "step": "failed"}
        dsr.fulfilment_status = FulfilmentStatus.FAILED.value
        dsr.fulfilment = state
        return
    state["progress"] = {**(state.get("progress") or {}), "step": "tasks done; finishing"}
    dsr.fulfilment_status = FulfilmentStatus.QUEUED.value
    dsr.fulfilment = state
    session.add(jobs.new_job(request_id=dsr.id, phase="finalise", params={}, actor=actor, now=now))
