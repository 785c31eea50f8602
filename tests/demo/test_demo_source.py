"""The demo CRM registered as the data source ``demo_crm`` (``DSR_DEMO``)."""

import json
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.time import utcnow
from app.data_sources import service as data_sources
from app.demo import create_demo_crm, load_dataset_map
from app.demo.source import ensure_demo_source
from app.models import DataSource
from tests.conftest import TEST_SECRET_KEY, make_settings


async def test_ensure_demo_source(app: FastAPI, settings: Settings, tmp_path: Path) -> None:
    crm = tmp_path / "demo" / "demo_crm.db"
    demo = make_settings(settings.database_url, demo=True, demo_crm_path=str(crm))
    async with app.state.sessionmaker() as session:
        assert await ensure_demo_source(session, settings=settings, now=utcnow()) is None

        # Before the file exists: registered, not tested.
        first = await ensure_demo_source(session, settings=demo, now=utcnow())
        assert first is not None and first.name == "demo_crm" and first.kind == "sql"
        assert first.last_tested_at is None
        await session.commit()

        create_demo_crm(crm, contacts=5)
        second = await ensure_demo_source(session, settings=demo, now=utcnow())
        assert second is not None and second.id == first.id
        assert second.last_tested_at is not None
        assert data_sources.last_test(second) == (True, None)
        await session.commit()

        rows = (await session.scalars(select(DataSource))).all()
        assert len(rows) == 1
        assert [s.id for s in await data_sources.active_sources(session)] == [first.id]
        secret = decrypt_secret(second.secret_config_encrypted or "", secret_key=TEST_SECRET_KEY)
        assert json.loads(secret or "{}") == {"url": f"sqlite+aiosqlite:///{crm.resolve()}"}
        assert second.config["dataset_map"] == load_dataset_map()
