"""Streaming an export file to whoever may download it (the API, the subject's link and the
console all answer through this), recording the download on the audit trail."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO

from anyio import to_thread
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.exports import service
from app.models import DsrRequest, Export

_CHUNK = 1 << 20


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    # Reads off the event loop, a chunk at a time: memory stays flat whatever the size.
    try:
        while chunk := await to_thread.run_sync(file.read, _CHUNK):
            yield chunk
    finally:
        file.close()


async def stream_export(
    export: Export,
    dsr: DsrRequest,
    *,
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    actor: str,
) -> StreamingResponse:
    """The file as an attachment; the download is counted and audited as ``actor``'s."""
    file, size = service.open_export(export, settings)
    try:
        await service.record_download(
            session, export=export, dsr=dsr, settings=settings, now=now, actor=actor
        )
    except BaseException:
        file.close()
        raise
    headers = {**service.download_headers(export), "Content-Length": str(size)}
    return StreamingResponse(_chunks(file), media_type=service.media_type(export), headers=headers)
