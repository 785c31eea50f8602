"""The demo CRM registered as the data source ``demo_crm`` (``DSR_DEMO``)."""

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.time import utcnow
from app.data_sources import service as data_sources
from app.demo import JANE_DOE, create_demo_crm, load_dataset_map
from app.demo.source import ensure_demo_source
from app.main import create_app
from app.models import DataSource
from app.worker import Worker
from tests.conftest import ADMIN_ID, ADMIN_SECRET, TEST_SECRET_KEY, get_token, make_settings
from tests.factories import create_request
from tests.fulfilment.conftest import fulfil_and_wait


async def test_ensure_demo_source(app: FastAPI, settings: Settings, tmp_path: Path) -> None:
    crm = tmp_path / "demo" / "demo_crm.db"
    demo = make_settings(settings.database_url, demo=True, demo_crm_path=str(crm))
    async with app.state.sessionmaker() as session:
        assert await ensure_demo_source(session, settings=settings, now=utcnow()) is None

        # No file yet: it is built where the source is registered, then tested.
        first = await ensure_demo_source(session, settings=demo, now=utcnow())
        assert first is not None and first.name == "demo_crm" and first.kind == "sql"
        assert crm.is_file() and _contacts(crm) == 300
        assert data_sources.last_test(first) == (True, None)
        await session.commit()

        create_demo_crm(crm, contacts=5)
        second = await ensure_demo_source(session, settings=demo, now=utcnow())
        assert second is not None and second.id == first.id
        assert _contacts(crm) == 5  # an existing file is kept as it is
        assert second.last_tested_at is not None
        assert data_sources.last_test(second) == (True, None)
        await session.commit()

        rows = (await session.scalars(select(DataSource))).all()
        assert len(rows) == 1
        assert [s.id for s in await data_sources.active_sources(session)] == [first.id]
        secret = decrypt_secret(second.secret_config_encrypted or "", secret_keys=[TEST_SECRET_KEY])
        assert json.loads(secret or "{}") == {"url": f"sqlite+aiosqlite:///{crm.resolve()}"}
        assert second.config["dataset_map"] == load_dataset_map()


def _contacts(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("SELECT count(*) FROM contacts").fetchone()[0])


async def test_a_service_started_without_dsr_serve_builds_and_serves_the_demo(
    database_url: str, tmp_path: Path
) -> None:
    """`uvicorn app.main:app` with DSR_DEMO=true: the demo CRM exists and fulfilment finds Jane."""
    settings = make_settings(
        database_url,
        demo=True,
        demo_crm_path=str(tmp_path / "crm" / "demo_crm.db"),
        export_dir=str(tmp_path / "exports"),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"Authorization": f"Bearer {await get_token(client, ADMIN_ID, ADMIN_SECRET)}"}
            created = await create_request(client, headers, subject={"email": JANE_DOE["email"]})
            verified = await client.post(
                f"/v1/requests/{created['id']}/verification",
                headers=headers,
                json={
                    "method": "document",
                    "document_type": "passport",
                    "business_address_confirmed": True,
                    "result": "passed",
                },
            )
            assert verified.status_code == 200, verified.text
            worker = Worker(settings, app.state.sessionmaker)
            try:
                done = await fulfil_and_wait(client, headers, created["id"], worker)
            finally:
                await worker.close()
    assert done["status"] == "completed", done["fulfilment"]
    assert done["fulfilment"]["result"]["records"] > 0
