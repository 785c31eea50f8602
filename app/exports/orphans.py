"""The sweep for export files that no live export record owns.

A worker killed mid-export leaves its temporary files (``.<export id>.json.part``,
``.<export id>.zip.part`` and a ``.<export id>.<random>`` folder of CSV parts). A fulfilment
whose concluding transaction fails leaves finished files (``<export id>.json|.zip``) that were
never recorded. Neither is reached by the expiry sweep, which works from the records, so
either would keep a subject's data past every expiry. This sweep deletes such files once they
have been left untouched for ``ORPHAN_GRACE``. Names the service does not write are left alone.
"""

import asyncio
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.models import Export

# Far longer than a writer ever goes without touching its files, or than a finished file
# waits for its record (written by the same job moments later).
ORPHAN_GRACE = timedelta(hours=24)
# How often a worker runs this sweep (its other sweeps run every DSR_SWEEP_INTERVAL).
SWEEP_EVERY_SECONDS = 3600.0
# IN lists stay well under every backend's parameter limit.
_LOOKUP_CHUNK = 500

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_FINISHED = re.compile(rf"^(?P<id>{_UUID})\.(?:json|zip)$")
_TEMPORARY = re.compile(rf"^\.(?P<id>{_UUID})\.")
_REQUEST_FOLDER = re.compile(rf"^{_UUID}$")


@dataclass(frozen=True)
class _Leftover:
    path: Path
    export_id: uuid.UUID
    finished: bool


def _last_touched(entry: os.DirEntry[str]) -> float:
    """Newest modification time of a file, or of a folder and the files in it."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        with os.scandir(entry.path) as inner:
            for child in inner:
                newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
    return newest


def _scan(export_dir: str, untouched_since: float) -> list[_Leftover]:
    """Our export files and folders under ``export_dir`` not modified since ``untouched_since``."""
    root = Path(export_dir).expanduser()
    if not root.is_dir():
        return []
    found: list[_Leftover] = []
    with os.scandir(root) as folders:
        for folder in folders:
            if not (folder.is_dir(follow_symlinks=False) and _REQUEST_FOLDER.match(folder.name)):
                continue
            with os.scandir(folder.path) as entries:
                for entry in entries:
                    finished = _FINISHED.match(entry.name)
                    match = finished or _TEMPORARY.match(entry.name)
                    if match is None or entry.is_symlink():
                        continue
                    try:
                        if _last_touched(entry) >= untouched_since:
                            continue
                    except FileNotFoundError:
                        continue  # removed meanwhile (the writer finished or another sweep)
                    export_id = uuid.UUID(match["id"])
                    found.append(_Leftover(Path(entry.path), export_id, finished is not None))
    return found


def _remove(leftovers: list[_Leftover]) -> None:
    for leftover in leftovers:
        if leftover.path.is_dir():
            shutil.rmtree(leftover.path, ignore_errors=True)
        else:
            leftover.path.unlink(missing_ok=True)


async def delete_orphaned_export_files(
    session: AsyncSession, *, settings: Settings, now: datetime
) -> int:
    """Delete leftover temporary files and unrecorded finished files; how many were removed.

    A finished file is kept while an export record that is not yet deleted owns it (the
    expiry sweep removes it in time). Several workers may run this at once: deleting a file
    twice is harmless.
    """
    untouched_since = (now - ORPHAN_GRACE).timestamp()
    leftovers = await asyncio.to_thread(_scan, settings.export_dir, untouched_since)
    finished = [leftover.export_id for leftover in leftovers if leftover.finished]
    owned: set[uuid.UUID] = set()
    for start in range(0, len(finished), _LOOKUP_CHUNK):
        chunk = finished[start : start + _LOOKUP_CHUNK]
        result = await session.execute(
            select(col(Export.id)).where(
                col(Export.id).in_(chunk), col(Export.deleted_at).is_(None)
            )
        )
        owned.update(result.scalars())
    orphans = [
        leftover
        for leftover in leftovers
        if not (leftover.finished and leftover.export_id in owned)
    ]
    await asyncio.to_thread(_remove, orphans)
    return len(orphans)
