"""Fulfilment routes: the plan (a dry run) and its approval, the ``fulfil`` and
``lift-restriction`` actions, and the task API through which the consumer of a ``task`` data
source reads its task and reports back."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from app.auth.deps import Officer, Reader, TokenFirstRoute
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.core.errors import ACTION_ERRORS, AUTH_ERRORS, NOT_FOUND, VALIDATION, problem_response
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.fulfilment import approval, consumer_tasks, service
from app.fulfilment import plan as planning
from app.fulfilment.schemas import (
    APPROVE_EXAMPLES,
    FULFIL_EXAMPLES,
    PLAN_EXAMPLE,
    TASK_RESULT_EXAMPLES,
    ApproveBody,
    FulfilBody,
    LiftRestrictionBody,
    PlanPublic,
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
            "Not allowed in the request's status; the request's type needs an approved plan "
            "first (`approve`); fulfilment already under way; no data sources configured; or "
            "no identity to search the sources by."
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

    Types listed in `DSR_APPROVAL_REQUIRED` answer 409 until the plan is approved
    (`approve`). Fulfilment acts on the data as it is when it runs: the result then shows
    `approved_counts`, `actual_counts` and `differs_from_approved_plan`.
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


@actions.get(
    "/{request_id:uuid}/plan",
    response_model=PlanPublic,
    response_model_exclude_none=True,
    summary="Preview what fulfilment would do (dry run)",
    responses={
        200: {"content": {"application/json": {"example": PLAN_EXAMPLE}}},
        **AUTH_ERRORS,
        **NOT_FOUND,
        409: problem_response(
            "The request is closed (completed, rejected or cancelled), or names no identity "
            "to search the sources by."
        ),
    },
)
async def plan(
    _officer: Officer,
    response: Response,
    request_id: RequestId,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """Look before you erase: what fulfilment would do in every data source, changing nothing.

    Each `sql` and `http` source is asked, read-only, what fulfilment would do for this
    request's type:

    - **erasure**: per table, the subject's rows that would be `deleted`, or kept and
      `anonymised` (`nulled`, `masked` columns), and those `retained` with the category
      and its legal reason; the channels the subject would be suppressed on.
    - **rectification**: per field and source, the table, rows, the `current` value(s) and
      the `requested` one. These are the subject's data: the plan is for officers only.
    - **restriction** and **objection**: the rows that would be flagged per source (and the
      suppression channels); a direct marketing objection only suppresses.
    - **access** and **portability**: the records per table and per data category.

    `task` sources cannot be previewed: they are listed as `not_previewable` with what
    their consumer would be asked. A source that cannot be reached is marked `error` (with
    why) and the others are still planned. `plan_sha256` identifies the plan: send it to
    `approve` to approve exactly what you saw. Fulfilment acts on the data as it is when it
    runs, which may by then differ from this plan. Open requests only (409 when closed).
    """
    # A rectification plan holds the subject's current values: no cache keeps a copy.
    response.headers["Cache-Control"] = "no-store"
    return await planning.plan_request(
        sessionmaker, settings=settings, request_id=request_id, now=now
    )


@actions.post(
    "/{request_id:uuid}/approve",
    response_model=RequestPublic,
    summary="Approve the fulfilment plan",
    responses={
        **ACTION_ERRORS,
        409: problem_response(
            "The request is not in progress; the plan changed since you read it "
            "(`plan_sha256` differs); a source could not be planned; or, with four-eyes "
            "approval, you assigned or last acted on the case."
        ),
    },
)
async def approve(
    officer: Officer,
    request_id: RequestId,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[ApproveBody | None, Body(openapi_examples=APPROVE_EXAMPLES)] = None,
) -> RequestPublic:
    """Approve what fulfilment will do, so that `fulfil` may run (`DSR_APPROVAL_REQUIRED`).

    The plan is computed again now; with `plan_sha256` (from `GET /plan`) the approval is
    refused with 409 if the plan is no longer the one you looked at. The audit trail
    records `request.approved` with the plan's hash and its counts per action (never the
    subject's data), and the request shows `approval`. With `DSR_APPROVAL_FOUR_EYES=true`
    the approver must be neither the officer who assigned the case nor the one who last
    acted on it.

    Fulfilment then acts on the data as it is when it runs: its result sets
    `approved_counts` beside `actual_counts`, with `differs_from_approved_plan`.
    """
    dsr = await approval.approve(
        session,
        sessionmaker=sessionmaker,
        settings=settings,
        request_id=request_id,
        plan_sha256=body.plan_sha256 if body is not None else None,
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
