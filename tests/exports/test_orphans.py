"""The orphaned-export sweep on SQLite and PostgreSQL: leftovers go, recorded files stay."""

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import Settings
from app.exports.files import ExportFile
from app.exports.orphans import ORPHAN_GRACE, SWEEP_EVERY_SECONDS, delete_orphaned_export_files
from app.exports.service import export_directory, record_exports
from app.models import Export
from app.worker import Worker
from tests.conftest import make_settings
from tests.factories import create_request

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LONG_AGO = NOW - ORPHAN_GRACE - timedelta(minutes=1)
LATELY = NOW - ORPHAN_GRACE + timedelta(minutes=1)
CONTENT = b'{"subject": "jane.doe@example.com"}'


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, export_dir=str(tmp_path / "exports"))


def touched_at(path: Path, when: datetime) -> Path:
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def a_file(path: Path, when: datetime = LONG_AGO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CONTENT)
    return touched_at(path, when)


async def folder_of_new_request(
    client: AsyncClient, headers: dict[str, str], settings: Settings
) -> tuple[uuid.UUID, Path]:
    request_id = uuid.UUID((await create_request(client, headers))["id"])
    return request_id, export_directory(settings, request_id)


async def record(app: FastAPI, request_id: uuid.UUID, path: Path, *, deleted: bool) -> None:
    export_id = uuid.UUID(path.name.split(".")[0])
    exported = ExportFile(export_id, "json", path, "export.json", len(CONTENT), "0" * 64)
    async with app.state.sessionmaker.begin() as session:
        (row,) = await record_exports(
            session,
            request_id=request_id,
            files={"json": exported},
            settings=app.state.settings,
            now=NOW,
        )
        if deleted:
            row.deleted_at = NOW


async def sweep(app: FastAPI, now: datetime = NOW) -> int:
    async with app.state.sessionmaker.begin() as session:
        return await delete_orphaned_export_files(session, settings=app.state.settings, now=now)


async def test_leftovers_untouched_for_the_grace_period_are_deleted(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    request_id, folder = await folder_of_new_request(client, officer_headers, settings)
    recorded = a_file(folder / f"{uuid.uuid4()}.json")
    await record(app, request_id, recorded, deleted=False)
    unrecorded_json = a_file(folder / f"{uuid.uuid4()}.json")
    unrecorded_zip = a_file(folder / f"{uuid.uuid4()}.zip")
    swept_record = a_file(folder / f"{uuid.uuid4()}.json")
    await record(app, request_id, swept_record, deleted=True)
    dead_part = a_file(folder / f".{uuid.uuid4()}.json.part")
    dead_parts_folder = folder / f".{uuid.uuid4()}.k2j4x9"
    a_file(dead_parts_folder / "0.csv")
    touched_at(dead_parts_folder, LONG_AGO)

    assert await sweep(app) == 5
    assert recorded.exists()
    for gone in (unrecorded_json, unrecorded_zip, swept_record, dead_part, dead_parts_folder):
        assert not gone.exists(), gone.name
    assert await sweep(app) == 0


async def test_files_still_within_the_grace_period_and_foreign_files_are_kept(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    _request_id, folder = await folder_of_new_request(client, officer_headers, settings)
    unrecorded_lately = a_file(folder / f"{uuid.uuid4()}.zip", LATELY)
    part_being_written = a_file(folder / f".{uuid.uuid4()}.zip.part", LATELY)
    # The folder itself is old, but a part inside it was written lately: a writer is busy.
    busy_parts_folder = folder / f".{uuid.uuid4()}.p0q1r2"
    a_file(busy_parts_folder / "0.csv", LONG_AGO)
    a_file(busy_parts_folder / "1.csv", LATELY)
    touched_at(busy_parts_folder, LONG_AGO)
    foreign = a_file(folder / "operator-notes.txt")
    foreign_folder_file = a_file(Path(settings.export_dir) / "backups" / f"{uuid.uuid4()}.json")

    assert await sweep(app) == 0
    for kept in (unrecorded_lately, part_being_written, busy_parts_folder, foreign):
        assert kept.exists(), kept.name
    assert foreign_folder_file.exists()
    # A day later the leftovers have aged past the grace period; foreign names never do.
    assert await sweep(app, NOW + timedelta(days=1)) == 3
    assert foreign.exists() and foreign_folder_file.exists()


async def test_a_missing_export_folder_is_no_error(app: FastAPI) -> None:
    assert await sweep(app) == 0


async def test_the_worker_sweeps_orphans_hourly(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    _request_id, folder = await folder_of_new_request(client, officer_headers, settings)
    # The worker uses the real clock.
    long_ago = datetime.now(UTC) - ORPHAN_GRACE * 2
    orphan = a_file(folder / f"{uuid.uuid4()}.json", long_ago)
    worker = Worker(settings, app.state.sessionmaker)
    try:
        await worker.run_once(sweep=True)
        assert not orphan.exists()
        # Within the hour, the worker's next sweeps leave the folder alone...
        later = a_file(folder / f"{uuid.uuid4()}.zip", long_ago)
        await worker.run_once(sweep=True)
        assert later.exists()
        # ...and an hour on, they look again.
        assert worker.last_orphan_sweep is not None
        worker.last_orphan_sweep -= SWEEP_EVERY_SECONDS
        await worker.run_once(sweep=True)
        assert not later.exists()
    finally:
        await worker.close()
    async with app.state.sessionmaker() as session:
        assert await session.get(Export, uuid.UUID(orphan.name.split(".")[0])) is None
