"""Fulfilment tasks: the consumer of a ``task`` data source reads its task and reports back."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from app.deps import NowDep, Reader, RequestId, SessionDep, SettingsDep
from app.errors import NotFound
from app.routers.common import AUTH_ERRORS, VALIDATION, Problem
from app.schemas import Page
from app.services import tasks as service
from app.task_schemas import TaskPublic, TaskResultBody

router = APIRouter(prefix="/v1/requests", tags=["Fulfilment tasks"])

TaskId = Annotated[uuid.UUID, Path(description="The task's id (from `task.created`).")]
TASK_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "model": Problem,
        "description": "No such task, or you are neither its assignee nor an officer.",
        "content": {"application/problem+json": {}},
    }
}
TASK_RESULT_EXAMPLES = {
    "erased": {
        "summary": "Erasure done, invoices kept",
        "value": {
            "status": "done",
            "note": "Helpdesk account closed",
            "retained": [{"category": "financial", "reason": "financial records, 6 years, HMRC"}],
        },
    },
    "access": {
        "summary": "Access: records for the export",
        "value": {
            "status": "done",
            "records": [
                {
                    "table": "tickets",
                    "category": "communications",
                    "record_id": "T-2211",
                    "provided_by_subject": True,
                    "data": {"subject": "Late delivery", "opened_at": "2026-08-01"},
                }
            ],
        },
    },
    "failed": {
        "summary": "Could not do it",
        "value": {"status": "failed", "note": "System offline until Monday"},
    },
}


@router.get(
    "/{request_id}/tasks",
    response_model=Page[TaskPublic],
    summary="List a request's fulfilment tasks",
    responses={**AUTH_ERRORS, **TASK_NOT_FOUND},
)
async def list_tasks(
    principal: Reader, request_id: RequestId, session: SessionDep
) -> Page[TaskPublic]:
    """The tasks created for `task` data sources. Assignees see their own tasks only."""
    found = await service.list_tasks(session, principal, request_id)
    if not found and not principal.sees_all_requests:
        raise NotFound("No task of this request is visible to you.")
    return Page(items=[await service.to_public(session, task) for task in found])


@router.get(
    "/{request_id}/tasks/{task_id}",
    response_model=TaskPublic,
    summary="Read a fulfilment task",
    responses={**AUTH_ERRORS, **TASK_NOT_FOUND},
)
async def get_task(
    principal: Reader, request_id: RequestId, task_id: TaskId, session: SessionDep
) -> TaskPublic:
    """What to do and for whom: the subject's identities, the request type and its details.

    Only the source's assignee (the client named when the source was registered) and
    officers can read a task: it names the subject.
    """
    task = await service.visible_task(session, principal, request_id, task_id)
    return await service.to_public(session, task)


@router.post(
    "/{request_id}/tasks/{task_id}",
    response_model=TaskPublic,
    summary="Report a fulfilment task's result",
    responses={
        **AUTH_ERRORS,
        **TASK_NOT_FOUND,
        **VALIDATION,
        409: {
            "model": Problem,
            "description": "The task is already closed.",
            "content": {"application/problem+json": {}},
        },
    },
)
async def report_task(
    principal: Reader,
    request_id: RequestId,
    task_id: TaskId,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[TaskResultBody, Body(openapi_examples=TASK_RESULT_EXAMPLES)],
) -> TaskPublic:
    """Say the task is `done` (with `records` for access and portability, `retained` for
    erasure) or `failed` (with a `note`).

    When the last task of a request is done, the service finishes the fulfilment (builds the
    export, completes the request). A failed task stops it with `fulfilment.status`
    `failed`, so an officer can look, then fulfil again or complete by hand.
    """
    task = await service.visible_task(session, principal, request_id, task_id, for_update=True)
    await service.report(
        session, settings=settings, task=task, body=body, actor=principal.client_id, now=now
    )
    return await service.to_public(session, task)
