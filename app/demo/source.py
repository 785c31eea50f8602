"""The demo CRM registered as the data source ``demo_crm`` (``DSR_DEMO``)."""

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.data_sources.service import put_sql_source
from app.demo import load_dataset_map
from app.models import DataSource

logger = logging.getLogger("app.data_sources")

DEMO_SOURCE_NAME = "demo_crm"


async def ensure_demo_source(
    session: AsyncSession, *, settings: Settings, now: datetime
) -> DataSource | None:
    """With ``DSR_DEMO``, the ``demo_crm`` source for the demo CRM at ``DSR_DEMO_CRM_PATH``.

    Idempotent: an existing live ``demo_crm`` source is brought up to date (URL, dataset
    map) rather than duplicated. The connection test runs only if the database file exists;
    a failing test is logged, not raised, so the service still starts.
    """
    if not settings.demo:
        return None
    path = await asyncio.to_thread(Path(settings.demo_crm_path).resolve)
    source, problem = await put_sql_source(
        session,
        settings=settings,
        name=DEMO_SOURCE_NAME,
        description="The built-in demo CRM (fictional UK customers, including Jane Doe).",
        url=f"sqlite+aiosqlite:///{path}",
        dataset_map=load_dataset_map(),
        test_connection=await asyncio.to_thread(path.is_file),
        now=now,
    )
    if problem:
        logger.warning("the demo CRM source failed its connection test: %s", problem)
    return source
