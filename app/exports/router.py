"""Access and portability packs: list them, download them, and the subject's own link."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from app.auth.deps import Reader, TokenFirstRoute
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import AUTH_ERRORS, NOT_FOUND, VALIDATION, problem_response
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.exports import download, service
from app.exports.schemas import ExportFormat, ExportPublic
from app.requests.deps import RequestDep

router = APIRouter(tags=["Exports"], route_class=TokenFirstRoute)

FILE_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"type": "string", "format": "binary"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
}


@router.get(
    "/v1/requests/{request_id:uuid}/exports",
    response_model=Page[ExportPublic],
    summary="List a request's export files",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION},
)
async def list_exports(
    dsr: RequestDep,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Page[ExportPublic]:
    """The access and portability files fulfilment produced for this request, newest first.

    Each comes with its size, SHA-256 and expiry, and while it has not expired, the signed
    `download_url` to send to the data subject: anyone holding that link can download the
    file without logging in until `expires_at`, so send it only to the verified subject.
    Expired files are deleted and listed with `expired: true`. Integrations see only the
    exports of requests they submitted.
    """
    exports = await service.list_exports(session, request_id=dsr.id)
    return Page[ExportPublic](
        items=[service.export_public(export, settings, now) for export in exports]
    )


@router.get(
    "/v1/requests/{request_id:uuid}/export",
    summary="Download a request's export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file, as an attachment.", "content": FILE_CONTENT},
        **AUTH_ERRORS,
        404: problem_response(
            "No such request visible to you, or no export of that format yet. While "
            "fulfilment is queued, running or waiting for tasks, the title is `Export not "
            "ready`, the problem's `fulfilment` member holds its `status` and `progress`, "
            "and `Retry-After` (queued, running) says when to ask again."
        ),
        410: problem_response("The export expired and its file was deleted."),
        **VALIDATION,
    },
)
async def download_export(
    principal: Reader,
    dsr: RequestDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    export_format: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="`json` (one document) or `csv` (a zip: one CSV per data category "
            "and a manifest with each file's SHA-256).",
        ),
    ] = ExportFormat.JSON,
) -> StreamingResponse:
    """Stream the newest export of the request in the chosen format.

    The JSON document holds every record, table by table with each column's data category,
    plus the supplementary information (purposes, recipients, retention, your rights). The
    CSV zip holds one file per data category, `manifest.json` with each file's SHA-256, and
    `supplementary_information.json`. In CSV cells, text a spreadsheet would run as a formula
    gets a leading apostrophe (numbers such as `+441632960001` stay as they are; the rule is
    in docs/exports.md).
    The download is recorded on the request's audit trail.

    `fulfil` answers at once and the worker writes the files afterwards: wait until the
    request's `fulfilment.status` is `succeeded` before downloading. Until then this answers
    404: while fulfilment is queued or running it says so, with its progress (`step`,
    `records` written so far) and `Retry-After`; with no fulfilment under way it says to
    fulfil the request first. 410 once the export has expired (fulfil again to produce a new
    one).
    """
    export = await service.latest_export(
        session, dsr=dsr, export_format=export_format.value, now=now
    )
    return await download.stream_export(
        export, dsr, session=session, settings=settings, now=now, actor=principal.client_id
    )


@router.get(
    "/v1/exports/{token}",
    summary="Download by the subject's link",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file, as an attachment.", "content": FILE_CONTENT},
        404: problem_response("Not a valid download link."),
        410: problem_response("The link has expired, or the file was deleted."),
    },
)
async def download_by_link(
    token: Annotated[str, Path(description="The token at the end of the emailed link.")],
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> StreamingResponse:
    """The data subject's personal download link, as sent in the "your data is ready" email.

    No login: the signed link itself is the permission, valid until the export expires
    (`DSR_EXPORT_TTL_HOURS`, 7 days by default). Each download is counted and recorded on
    the request's audit trail.
    """
    export, dsr = await service.export_by_link(session, token=token, settings=settings, now=now)
    return await download.stream_export(
        export, dsr, session=session, settings=settings, now=now, actor=service.DOWNLOAD_ACTOR
    )
