"""Fulfilment routes: the ``fulfil`` and ``lift-restriction`` actions, and the task API through
which the consumer of a ``task`` data source reads its task and reports back."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from app.auth.deps import Officer, Reader, TokenFirstRoute
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import ACTION_ERRORS, AUTH_ERRORS, VALIDATION, problem_response
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.fulfilment import consumer_tasks, service
from app.fulfilment.schemas import (
    FULFIL_EXAMPLES,
    TASK_RESULT_EXAMPLES,
    FulfilBody,
    LiftRestrictionBody,
    TaskPublic,
    TaskResultBody,
)
from app.requests.deps import LockedRequest, RequestId
from app.requests.schemas import RequestPublic
from app.requests.service import request_public

actions = APIRouter(prefix="/v1/requests", tags=["Request actions"], route_class=TokenFirstRoute)


@actions.post(
    "/{request_id:uuid}/fulfil",
    response_model=RequestPublic,
    summary="Run fulfilment against the data sources",
    responses={
        **ACTION_ERRORS,
        409: problem_response(
            "Not allowed in the request's status; fulfilment already under way; no data "
            "sources configured; or no identity to search the sources by."
        ),
    },
)
async def fulfil(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[FulfilBody | None, Body(openapi_examples=FULFIL_EXAMPLES)] = None,
) -> RequestPublic:
    """Do what the request asks in every connected data source; the worker runs it.

    The request shows `fulfilment.status` (`queued`, `running`, `waiting_for_tasks`,
    `succeeded`, `failed`) and its progress. Per type:

    - **access**: every record of the subject, with the Art. 15 supplementary information
      from the processing register, as JSON and as a CSV zip; the subject is emailed
      expiring download links and `export.ready` is raised.
    - **portability**: only the data the subject provided, in the formats asked for, and
      sent to `transmit_to` when given.
    - **erasure**: each data category erased by its strategy (delete, null, mask); retained
      categories are listed with their legal reason; the subject goes on the suppression
      list; `subject.erased` tells recipients (Art. 19).
    - **rectification**: the requested changes applied in the sources; before and after
      values are kept in the audit trail only; `subject.rectified`.
    - **restriction**: the subject flagged as restricted in the sources and suppressed;
      `subject.restricted`; end it with `lift-restriction`.
    - **objection**: direct marketing is absolute: the subject is suppressed on the named
      channels. Legitimate interests or profiling need your decision in the body:
      `uphold` (processing stopped, flagged in the sources) or `override` with the
      compelling `grounds`.

    `task` sources get a `task.created` event each; the request completes when all tasks are
    reported. When the work succeeds the request is completed and the subject told. A failed
    run (`fulfilment.status` = `failed`, with `error`) can be run again.
    """
    await service.request_fulfilment(
        session,
        settings=settings,
        dsr=dsr,
        body=body or FulfilBody(),
        actor=officer.client_id,
        now=now,
    )
    return request_public(dsr, settings, now)


@actions.post(
    "/{request_id:uuid}/lift-restriction",
    response_model=RequestPublic,
    summary="End a restriction of processing",
    responses=ACTION_ERRORS,
)
async def lift_restriction(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: LiftRestrictionBody,
) -> RequestPublic:
    """Lift the restriction this request put in place (a restriction, or an upheld objection).

    The subject is emailed first, with your `reason` (Art. 18(3)); then the worker unflags
    the sources and raises `subject.restriction_lifted`, and the suppression entries the
    restriction added are removed. 409 when the request restricts nothing.
    """
    await service.request_lift(
        session, settings=settings, dsr=dsr, reason=body.reason, actor=officer.client_id, now=now
    )
    return request_public(dsr, settings, now)


router = APIRouter(prefix="/v1/requests", tags=["Fulfilment tasks"], route_class=TokenFirstRoute)

TaskId = Annotated[uuid.UUID, Path(description="The task's id (from `task.created`).")]
TASK_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem_response("No such task, or you are neither its assignee nor an officer.")
}


@router.get(
    "/{request_id:uuid}/tasks",
    response_model=Page[TaskPublic],
    summary="List a request's fulfilment tasks",
    responses={**AUTH_ERRORS, **TASK_NOT_FOUND},
)
async def list_tasks(
    principal: Reader, _strict: StrictQuery, request_id: RequestId, session: SessionDep
) -> Page[TaskPublic]:
    """The tasks created for `task` data sources. Assignees see their own tasks only; the
    submitter of a request and officers see an empty list while it has none."""
    found = await consumer_tasks.visible_tasks(session, principal, request_id)
    return Page(items=[await consumer_tasks.task_public(session, task) for task in found])


@router.get(
    "/{request_id:uuid}/tasks/{task_id:uuid}",
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
    task = await consumer_tasks.visible_task(session, principal, request_id, task_id)
    return await consumer_tasks.task_public(session, task)


@router.post(
    "/{request_id:uuid}/tasks/{task_id:uuid}",
    response_model=TaskPublic,
    summary="Report a fulfilment task's result",
    responses={
        **AUTH_ERRORS,
        **TASK_NOT_FOUND,
        **VALIDATION,
        409: problem_response("The task is already closed."),
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
    task = await consumer_tasks.visible_task(
        session, principal, request_id, task_id, for_update=True
    )
    await consumer_tasks.report(
        session, settings=settings, task=task, body=body, actor=principal.client_id, now=now
    )
    return await consumer_tasks.task_public(session, task)
