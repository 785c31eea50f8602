"""The demo CRM registered as the data source ``demo_crm`` (``DSR_DEMO``)."""

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.data_sources.service import put_sql_source
from app.demo import create_demo_crm, load_dataset_map
from app.models import DataSource

logger = logging.getLogger("app.data_sources")

DEMO_SOURCE_NAME = "demo_crm"


def ensure_demo_database(settings: Settings) -> Path:
    """The demo CRM file at ``DSR_DEMO_CRM_PATH``, built if it does not exist yet."""
    path = Path(settings.demo_crm_path).resolve()
    if not path.exists():
        create_demo_crm(path)
        logger.info("built the demo CRM database (DSR_DEMO_CRM_PATH)")
    return path


async def ensure_demo_source(
    session: AsyncSession, *, settings: Settings, now: datetime
) -> DataSource | None:
    """With ``DSR_DEMO``, the ``demo_crm`` source for the demo CRM at ``DSR_DEMO_CRM_PATH``.

    Builds the database first when the file does not exist, however the service was started
    (``dsr serve`` or ``uvicorn app.main:app``). Idempotent: an existing live ``demo_crm``
    source is brought up to date (URL, dataset map) rather than duplicated. A failing
    connection test is logged, not raised, so the service still starts.
    """
    if not settings.demo:
        return None
    path = await asyncio.to_thread(ensure_demo_database, settings)
    source, problem = await put_sql_source(
        session,
        settings=settings,
        name=DEMO_SOURCE_NAME,
        description="The built-in demo CRM (fictional UK customers, including Jane Doe).",
        url=f"sqlite+aiosqlite:///{path}",
        dataset_map=load_dataset_map(),
        test_connection=True,
        now=now,
    )
    if problem:
        logger.warning("the demo CRM source failed its connection test: %s", problem)
    return source
