"""Data sources: registration with a connection test, the safe view, soft deletion.

Credentials (an ``sql`` source's URL, an ``http`` source's bearer token) are stored only
encrypted, in ``secret_config_encrypted``; ``config`` holds what may be shown. Neither the
URL nor the token is ever put in an error, a log line or a response: errors about them say
what is wrong, not what was sent.

Deleting is a soft delete: fulfilment tasks and results keep pointing at the row. A deleted
source loses its credentials and is renamed out of the way (``<name>~deleted~<id>``, which
no live name can match), so its name can be registered again.
"""

import asyncio
import ipaddress
import json
import logging
import math
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.clients import get_by_client_id
from app.core import pagination
from app.core.config import Settings
from app.core.crypto import encrypt_secret
from app.core.errors import Conflict, NotFound, UnprocessableEntity
from app.core.ssrf import METADATA_ADDRESSES
from app.data_sources.connectors import connector_for
from app.data_sources.connectors.base import SourceError
from app.data_sources.dataset_map import DatasetMap, DatasetMapError, parse_dataset_map
from app.data_sources.schemas import (
    DatasetMapSummary,
    DataSourceCreate,
    DataSourcePublic,
    HttpConfigPublic,
    HttpSourceCreate,
    SqlConfigPublic,
    SqlSourceCreate,
    TaskConfigPublic,
    TaskSourceCreate,
)
from app.models import DataSource

logger = logging.getLogger("app.data_sources")

DELETED_MARK = "~deleted~"
# Query parameters safe to show in a redacted URL; any other could carry a credential.
SAFE_URL_QUERY_KEYS = frozenset(
    {"sslmode", "ssl", "charset", "application_name", "connect_timeout", "mode", "timeout"}
)
# A real map has hundreds of entries; YAML aliases could otherwise expand one enormously.
MAX_MAP_NODES = 100_000
# Beyond the connector's own timeout: a test must answer even if a driver hangs.
TEST_GRACE_SECONDS = 5.0


def _invalid(field: str, message: str, *, title: str) -> UnprocessableEntity:
    return UnprocessableEntity(
        message,
        title=title,
        extra={"errors": [{"loc": ["body", field], "msg": message, "type": "value_error"}]},
    )


# ------------------------------------------------------------------------------ URLs


def parse_sql_url(url: str) -> URL:
    """The parsed database URL; 422 that never repeats it (it may hold a password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or not parsed.drivername:
        raise _invalid(
            "url",
            "Not a valid SQLAlchemy database URL, such as "
            "postgresql+asyncpg://user:password@host:5432/database.",
            title="Invalid database URL",
        )
    return parsed


def redacted_url(url: URL) -> str:
    """The URL as it may be shown: no password, no query parameter that could hold one."""
    query = {key: value for key, value in url.query.items() if key in SAFE_URL_QUERY_KEYS}
    safe = URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=query,
    )
    return safe.render_as_string(hide_password=False)


def check_base_url(base_url: str) -> str:
    """An http source's base URL, checked for shape; 422 says what is wrong, not the URL."""

    def refuse(message: str) -> UnprocessableEntity:
        return _invalid("base_url", message, title="Invalid base URL")

    if any(character.isspace() or ord(character) < 32 for character in base_url):
        raise refuse("The base URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(base_url)
        _ = parts.port  # parsing the port validates it
    except ValueError:
        raise refuse("The base URL is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise refuse("The base URL must use http or https.")
    if "@" in parts.netloc:
        raise refuse("The base URL must not contain credentials; send them as auth_token.")
    if not parts.hostname:
        raise refuse("The base URL has no host.")
    if parts.query or parts.fragment:
        raise refuse("The base URL must not have a query string or fragment.")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None
    # Sources may be internal, but a cloud metadata endpoint hands out credentials.
    if address is not None and address in METADATA_ADDRESSES:
        raise refuse("The base URL points at a cloud metadata address.")
    return base_url


# ------------------------------------------------------------------------------ safe view


def _json_safe(value: Any) -> Any:
    """A copy a JSON column can hold: YAML may yield dates, non-text keys, NaN, and aliases
    repeating a subtree many times (bounded here, so a map cannot expand without limit)."""
    budget = MAX_MAP_NODES

    def copy(node: Any) -> Any:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise _invalid(
                "dataset_map",
                f"The dataset map has more than {MAX_MAP_NODES} entries.",
                title="Invalid dataset map",
            )
        if isinstance(node, dict):
            return {str(key): copy(item) for key, item in node.items()}
        if isinstance(node, list | tuple):
            return [copy(item) for item in node]
        if isinstance(node, float) and not math.isfinite(node):
            return str(node)
        if node is None or isinstance(node, bool | int | float | str):
            return node
        return str(node)

    return copy(value)


def _summary(dataset_map: DatasetMap) -> DatasetMapSummary:
    return DatasetMapSummary(
        subject_table=dataset_map.subject_table,
        tables=list(dataset_map.tables),
        categories={name: category.erasure for name, category in dataset_map.categories.items()},
        retained={
            name: category.retain_reason
            for name, category in dataset_map.categories.items()
            if category.erasure == "retain" and category.retain_reason
        },
    )


def public_config(source: DataSource) -> SqlConfigPublic | HttpConfigPublic | TaskConfigPublic:
    """What may be shown of a source's configuration (never a credential)."""
    config = source.config
    if source.kind == "sql":
        try:
            summary = _summary(parse_dataset_map(config.get("dataset_map") or {}))
        except DatasetMapError:
            # Stored maps were valid when registered; show what can be shown.
            summary = DatasetMapSummary(tables=[], categories={})
        return SqlConfigPublic(url=str(config.get("display_url") or ""), dataset_map=summary)
    if source.kind == "http":
        return HttpConfigPublic(base_url=str(config.get("base_url") or ""))
    return TaskConfigPublic(
        assignee_client_id=str(config.get("assignee_client_id") or ""),
        instructions=config.get("instructions"),
    )


def last_test(source: DataSource) -> tuple[bool | None, str | None]:
    """The outcome of the source's last connection test: (ok, why not)."""
    outcome = source.config.get("last_test") or {}
    ok = outcome.get("ok")
    return (ok if isinstance(ok, bool) else None), outcome.get("detail")


# ------------------------------------------------------------------------------ testing


async def connection_problem(source: DataSource, *, settings: Settings) -> str | None:
    """None when the source answers its connection test, else why not (no credentials).

    ``task`` sources have no connection: their assignee must still exist and be active,
    which the caller checks (it needs the database).
    """
    try:
        connector = connector_for(source, settings)
    except SourceError as exc:
        return str(exc)
    except ValueError as exc:  # a stored map or setting the connector cannot use
        logger.warning(
            "data source %s: cannot build a connector (%s)", source.name, type(exc).__name__
        )
        return f"source {source.name}: its stored configuration is not usable"
    try:
        async with asyncio.timeout(settings.source_timeout + TEST_GRACE_SECONDS):
            await connector.test()
    except SourceError as exc:
        return str(exc)
    except TimeoutError:
        return f"source {source.name}: the connection test timed out"
    except Exception as exc:  # an answer, not a 500: "does it work?" deserves one
        # The type only: a driver's message may quote the URL.
        logger.warning("data source %s: test failed with %s", source.name, type(exc).__name__)
        return f"source {source.name}: the connection test failed ({type(exc).__name__})"
    finally:
        try:
            await connector.close()
        except Exception as exc:  # closing must not hide the test's answer
            logger.warning("data source %s: close failed: %s", source.name, type(exc).__name__)
    return None


async def _assignee_problem(session: AsyncSession, client_id: str) -> str | None:
    assignee = await get_by_client_id(session, client_id)
    if assignee is None or not assignee.active:
        return "the assignee client does not exist or is disabled"
    return None


def _record_test(source: DataSource, *, problem: str | None, now: datetime) -> None:
    source.last_tested_at = now
    # A new dict: JSON columns do not notice in-place changes.
    source.config = {**source.config, "last_test": {"ok": problem is None, "detail": problem}}


async def test_source(
    session: AsyncSession, *, settings: Settings, source: DataSource, now: datetime
) -> str | None:
    """Run the source's test again and record when and how it went; None when it passed."""
    if source.kind == "task":
        problem = await _assignee_problem(session, str(source.config.get("assignee_client_id")))
    else:
        problem = await connection_problem(source, settings=settings)
    _record_test(source, problem=problem, now=now)
    session.add(source)
    await session.flush()
    return problem


# ------------------------------------------------------------------------------ registration


def _secret(values: dict[str, str], settings: Settings) -> str:
    return encrypt_secret(json.dumps(values), secret_key=settings.secret_key)


def _parse_map(value: dict[str, Any] | str) -> DatasetMap:
    try:
        return parse_dataset_map(value)
    except RecursionError:
        raise _invalid(
            "dataset_map", "The dataset map is nested too deeply.", title="Invalid dataset map"
        ) from None
    except DatasetMapError as exc:
        raise UnprocessableEntity(
            f"The dataset map has {len(exc.problems)} problem(s); see `errors`.",
            title="Invalid dataset map",
            extra={
                "errors": [
                    {"loc": ["body", "dataset_map"], "msg": problem, "type": "dataset_map"}
                    for problem in exc.problems
                ]
            },
        ) from None


def _new_source(spec: DataSourceCreate, *, settings: Settings, now: datetime) -> DataSource:
    """The row for ``spec``, not yet added: everything checked that needs no I/O."""
    source = DataSource(
        name=spec.name, kind=spec.kind, description=spec.description or None, created_at=now
    )
    if isinstance(spec, SqlSourceCreate):
        dataset_map = _parse_map(spec.dataset_map)
        url = parse_sql_url(spec.url)
        source.config = {
            "dataset_map": _json_safe(dataset_map.raw),
            "display_url": redacted_url(url),
        }
        source.secret_config_encrypted = _secret({"url": spec.url}, settings)
    elif isinstance(spec, HttpSourceCreate):
        source.config = {"base_url": check_base_url(spec.base_url)}
        if spec.auth_token:
            source.secret_config_encrypted = _secret({"auth_token": spec.auth_token}, settings)
    elif isinstance(spec, TaskSourceCreate):
        source.config = {
            "assignee_client_id": spec.assignee_client_id,
            "instructions": spec.instructions or None,
        }
    return source


async def _ensure_name_free(session: AsyncSession, name: str) -> None:
    taken = await session.scalar(
        select(col(DataSource.id)).where(
            col(DataSource.name) == name, col(DataSource.deleted_at).is_(None)
        )
    )
    if taken is not None:
        raise Conflict(
            "A data source with this name already exists; choose another name or delete it first.",
            title="Data source name taken",
        )


async def register_source(
    session: AsyncSession, *, settings: Settings, spec: DataSourceCreate, now: datetime
) -> DataSource:
    """Check, test and store a new data source.

    422 when the dataset map, URL or assignee is unusable, or when the connection test
    fails (with the connector's reason, which never contains credentials); 409 when the
    name is taken.
    """
    source = _new_source(spec, settings=settings, now=now)
    if source.kind == "task":
        problem = await _assignee_problem(session, str(source.config["assignee_client_id"]))
        if problem:
            raise _invalid(
                "assignee_client_id",
                "No active API client has this client_id; create the client first.",
                title="Unknown assignee",
            )
    else:
        # Before any query: a test may take seconds and must not hold a transaction open.
        problem = await connection_problem(source, settings=settings)
        if problem:
            raise UnprocessableEntity(problem, title="Connection test failed")
    await _ensure_name_free(session, source.name)
    _record_test(source, problem=None, now=now)
    session.add(source)
    await session.flush()
    return source


# ------------------------------------------------------------------------------ reading


def _live() -> ColumnElement[bool]:
    return col(DataSource.deleted_at).is_(None)


async def get_source(
    session: AsyncSession, *, source_id: uuid.UUID, for_update: bool = False
) -> DataSource:
    """The source, unless it does not exist or was deleted (404)."""
    source = await session.get(DataSource, source_id, with_for_update=for_update)
    if source is None or source.deleted_at is not None:
        raise NotFound("No data source with this id.")
    return source


async def list_sources(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[DataSource], str | None]:
    """Registered sources, newest first, keyset-paginated; never deleted ones."""
    query = select(DataSource).where(_live())
    return await pagination.newest_first(session, query, DataSource, limit=limit, cursor=cursor)


async def active_sources(session: AsyncSession) -> list[DataSource]:
    """The sources fulfilment works through: not deleted, active, oldest first."""
    rows = await session.execute(
        select(DataSource)
        .where(_live(), col(DataSource.active).is_(True))
        .order_by(col(DataSource.created_at), col(DataSource.id))
    )
    return list(rows.scalars())


async def delete_source(session: AsyncSession, *, source: DataSource, now: datetime) -> None:
    """Retire the source for good: inactive, credentials destroyed, name freed."""
    source.deleted_at = now
    source.active = False
    source.secret_config_encrypted = None
    suffix = f"{DELETED_MARK}{source.id.hex}"
    source.name = source.name[: 100 - len(suffix)] + suffix
    session.add(source)
    await session.flush()


# ------------------------------------------------------------------------------ upsert


async def put_sql_source(
    session: AsyncSession,
    *,
    settings: Settings,
    name: str,
    description: str,
    url: str,
    dataset_map: dict[str, Any],
    test_connection: bool,
    now: datetime,
) -> tuple[DataSource, str | None]:
    """Register the ``sql`` source ``name``, or bring the live one up to date (URL, map).

    Returns it with the connection test's problem (None when it passed or did not run). A
    failing test is recorded on the source, not raised: the caller decides what it means.
    """
    source = await session.scalar(select(DataSource).where(col(DataSource.name) == name, _live()))
    if source is None:
        source = DataSource(name=name, kind="sql", description=description, created_at=now)
    source.kind = "sql"
    source.active = True
    source.config = {
        **source.config,
        "dataset_map": dataset_map,
        "display_url": redacted_url(make_url(url)),
    }
    source.secret_config_encrypted = _secret({"url": url}, settings)
    problem = None
    if test_connection:
        problem = await connection_problem(source, settings=settings)
        _record_test(source, problem=problem, now=now)
    session.add(source)
    await session.flush()
    return source, problem


def source_public(source: DataSource) -> DataSourcePublic:
    """A source as admins see it: what it is and how its last test went, never credentials."""
    ok, detail = last_test(source)
    return DataSourcePublic(
        id=source.id,
        name=source.name,
        kind=source.kind,  # type: ignore[arg-type]
        description=source.description,
        config=public_config(source),
        has_credentials=bool(source.secret_config_encrypted),
        active=source.active,
        last_tested_at=source.last_tested_at,
        last_test_ok=ok,
        last_test_detail=detail,
        created_at=source.created_at,
    )
