"""Export files once written: their records, signed download links, downloads and expiry.

The files themselves are produced by ``app.exports.writer``. Each lives at
``<DSR_EXPORT_DIR>/<request id>/<export id>.json|.zip`` until ``expires_at``; a worker
sweep then deletes it and marks the record. Download links carry a JWT signed with a key
derived for this purpose alone, so an access token can never serve as a link (or back).
"""

import logging
import os
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from jose import JWTError, jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.crypto import derived_key, derived_keys
from app.core.errors import Gone, NotFound
from app.core.time import utcnow
from app.exports.not_ready import FULFILMENT_UNDER_WAY, ExportNotReady
from app.exports.schemas import ExportFormat, ExportPublic
from app.exports.writer import MEDIA_TYPES, SUFFIXES, ExportFile
from app.models import DsrRequest, Export
from app.requests import audit

logger = logging.getLogger("app.exports")

DOWNLOAD_AUDIENCE = "dsr-export"
# Only the algorithm links are signed with; anything else in a token header is refused.
LINK_ALGORITHMS = ["HS256"]
DOWNLOAD_ACTOR = "download-link"
_TOKEN_PURPOSE = "export-download-link"
# A link token is ~200 characters; anything far longer is not one of ours.
_MAX_TOKEN_LENGTH = 1024


# ---------------------------------------------------------------- storage


def export_directory(settings: Settings, request_id: uuid.UUID) -> Path:
    """Where a request's export files are written (``DSR_EXPORT_DIR/<request id>``)."""
    return Path(settings.export_dir).expanduser() / str(request_id)


def export_path(export: Export, settings: Settings) -> Path:
    return export_directory(settings, export.request_id) / f"{export.id}{SUFFIXES[export.format]}"


def media_type(export: Export) -> str:
    return MEDIA_TYPES[export.format]


def is_available(export: Export, now: datetime) -> bool:
    """Not yet expired nor deleted."""
    return export.deleted_at is None and export.expires_at > now


async def record_exports(
    session: AsyncSession,
    *,
    request_id: uuid.UUID,
    files: dict[str, ExportFile],
    settings: Settings,
    now: datetime,
) -> list[Export]:
    """Add an Export row per written file, downloadable for DSR_EXPORT_TTL_HOURS from now."""
    expires_at = now + timedelta(hours=settings.export_ttl_hours)
    exports = [
        Export(
            id=file.export_id,
            request_id=request_id,
            format=file.format,
            file_name=file.file_name,
            size_bytes=file.size_bytes,
            sha256=file.sha256,
            created_at=now,
            expires_at=expires_at,
        )
        for file in files.values()
    ]
    session.add_all(exports)
    return exports


async def list_exports(session: AsyncSession, *, request_id: uuid.UUID) -> list[Export]:
    """Every export of a request, newest first (expired and deleted ones included)."""
    result = await session.execute(
        select(Export)
        .where(col(Export.request_id) == request_id)
        .order_by(col(Export.created_at).desc(), col(Export.id).desc())
    )
    return list(result.scalars())


async def latest_export(
    session: AsyncSession, *, dsr: DsrRequest, export_format: str, now: datetime
) -> Export:
    """The newest available export of this format.

    404 if none was made: saying so, with its progress, while fulfilment is on its way
    (``ExportNotReady``); 410 if all that were made have expired.
    """
    result = await session.execute(
        select(Export)
        .where(col(Export.request_id) == dsr.id, col(Export.format) == export_format)
        .order_by(col(Export.created_at).desc(), col(Export.id).desc())
    )
    newest = None
    for export in result.scalars():
        newest = newest or export
        if is_available(export, now):
            return export
    if dsr.fulfilment_status in FULFILMENT_UNDER_WAY:
        raise ExportNotReady(dsr, export_format)
    if newest is None:
        raise NotFound(
            f"No {export_format} export of this request exists yet; fulfil the request first.",
            title="No export yet",
        )
    raise Gone(
        f"The {export_format} export of this request has expired and its file was deleted; "
        "fulfil the request again to produce a new one.",
        title="Export expired",
    )


def open_export(export: Export, settings: Settings) -> tuple[IO[bytes], int]:
    """The open file and its size; 410 when the file has gone from disk.

    Opened before the response starts, so an expiry sweep deleting it mid-download cannot
    cut the transfer short (the open file outlives its name).
    """
    try:
        file = open(export_path(export, settings), "rb")  # noqa: SIM115 - closed by the stream
    except FileNotFoundError:
        # Usually DSR_EXPORT_DIR is not shared between the worker and this API replica.
        logger.warning("export file missing: export %s", export.id)
        raise Gone(
            "The export file is no longer available; fulfil the request again to produce a "
            "new one.",
            title="Export unavailable",
        ) from None
    return file, os.fstat(file.fileno()).st_size


def download_headers(export: Export) -> dict[str, str]:
    """Attachment, never cached or sniffed, with the digest the manifest also lists."""
    file_name = re.sub(r"[^A-Za-z0-9._-]", "_", export.file_name) or "export"
    return {
        "Content-Disposition": f'attachment; filename="{file_name}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "ETag": f'"{export.sha256}"',
    }


async def record_download(
    session: AsyncSession,
    *,
    export: Export,
    dsr: DsrRequest,
    settings: Settings,
    now: datetime,
    actor: str,
) -> None:
    """Count the download and put it on the request's audit trail (no webhook)."""
    # One UPDATE, so concurrent downloads are all counted.
    await session.execute(
        update(Export)
        .where(col(Export.id) == export.id)
        .values(download_count=col(Export.download_count) + 1)
    )
    audit.record(
        session,
        dsr=dsr,
        settings=settings,
        now=now,
        actor=actor,
        audit_type="export.downloaded",
        audit_data={"export_id": str(export.id), "format": export.format},
    )


# ---------------------------------------------------------------- download links


def _link_key(settings: Settings) -> bytes:
    return derived_key(settings.secret_key, _TOKEN_PURPOSE)


def issue_download_token(export_id: uuid.UUID, expires_at: datetime, settings: Settings) -> str:
    """A signed token naming the export, valid until ``expires_at``."""
    claims = {"aud": DOWNLOAD_AUDIENCE, "sub": str(export_id), "exp": int(expires_at.timestamp())}
    return str(jwt.encode(claims, _link_key(settings), algorithm="HS256"))


def download_url(export: Export, settings: Settings) -> str:
    """The subject's personal link: ``DSR_PUBLIC_URL/v1/exports/<token>``."""
    token = issue_download_token(export.id, export.expires_at, settings)
    return f"{settings.public_url.rstrip('/')}/v1/exports/{token}"


def verify_download_token(
    token: str, settings: Settings, *, now: datetime | None = None
) -> uuid.UUID | None:
    """The export id of a genuine link; None for anything forged, garbled or not ours.

    A genuine link past its expiry raises ``Gone``, so its holder learns it expired rather
    than that it never existed.
    """
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    # Links mailed before a key rotation keep working: the current key, then retired ones.
    for key in derived_keys(settings.reading_keys, _TOKEN_PURPOSE):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=LINK_ALGORITHMS,
                audience=DOWNLOAD_AUDIENCE,
                # Expiry is checked below against the service's clock, after the signature.
                # Not "require_exp": python-jose then checks exp itself, and an expired link
                # would read as forged (404) instead of expired (410).
                options={"verify_exp": False, "require_sub": True},
            )
            export_id = uuid.UUID(str(claims["sub"]))
            expires = float(claims["exp"])
        except (JWTError, ValueError, TypeError, KeyError):
            continue
        break
    else:
        return None
    if expires <= (now or utcnow()).timestamp():
        raise Gone("This download link has expired.", title="Download link expired")
    return export_id


async def export_by_link(
    session: AsyncSession, *, token: str, settings: Settings, now: datetime
) -> tuple[Export, DsrRequest]:
    """The export a subject's link names, with its request: 404 unless genuine, 410 if expired."""
    export_id = verify_download_token(token, settings, now=now)
    export = await session.get(Export, export_id) if export_id is not None else None
    dsr = await session.get(DsrRequest, export.request_id) if export is not None else None
    if export is None or dsr is None:
        raise NotFound("This is not a valid download link.", title="Unknown download link")
    if not is_available(export, now):
        raise Gone("This download link has expired.", title="Download link expired")
    return export, dsr


# ---------------------------------------------------------------- expiry


async def delete_expired_exports(
    session: AsyncSession, *, settings: Settings, now: datetime, limit: int = 500
) -> int:
    """Delete the files of exports past ``expires_at`` and mark them; how many were swept.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several workers share the work.
    A file already gone is not an error: a rolled-back sweep is simply done again.
    """
    result = await session.execute(
        select(Export)
        .where(col(Export.deleted_at).is_(None), col(Export.expires_at) <= now)
        .order_by(col(Export.expires_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    expired = list(result.scalars())
    for export in expired:
        # The request's folder stays: a new export may be being written into it right now.
        export_path(export, settings).unlink(missing_ok=True)
        export.deleted_at = now
    return len(expired)


def export_public(export: Export, settings: Settings, now: datetime) -> ExportPublic:
    """An export as listed on its request; the subject's link only while it lives."""
    available = is_available(export, now)
    return ExportPublic(
        id=export.id,
        format=ExportFormat(export.format),
        file_name=export.file_name,
        size_bytes=export.size_bytes,
        sha256=export.sha256,
        created_at=export.created_at,
        expires_at=export.expires_at,
        expired=not available,
        download_count=export.download_count,
        download_url=download_url(export, settings) if available else None,
    )
