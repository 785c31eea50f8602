"""An export's file, downloaded from the request page (officers only)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from app.console.deps import ConsoleError
from app.console.requests import CasePageDep
from app.core.errors import AppError
from app.exports import download
from app.exports import service as exports
from app.models import Export

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/requests/{request_id}/exports/{export_id}")
async def download_export(case: CasePageDep, export_id: Annotated[uuid.UUID, Path()]) -> Response:
    """Download one export file (officers); the download is audited as the person's."""
    dsr = await case.load()
    export = await case.session.get(Export, export_id)
    if export is None or export.request_id != dsr.id:
        raise ConsoleError(404, "No such export.")
    if not exports.is_available(export, case.now):
        raise ConsoleError(410, "This export has expired; fulfil the request again for a new one.")
    try:
        return await download.stream_export(
            export,
            dsr,
            session=case.session,
            settings=case.settings,
            now=case.now,
            actor=case.person.principal.client_id,
        )
    except AppError as refused:
        raise ConsoleError(refused.status, refused.detail) from None
