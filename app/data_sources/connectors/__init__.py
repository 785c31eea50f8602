"""Data source connectors: build the right one from a ``DataSource`` row.

``sql`` sources read ``config["dataset_map"]`` and the secret ``{"url"}``; ``http`` sources
read ``config["base_url"]`` and the optional secret ``{"auth_token"}``. ``task`` sources are
worked by a webhook consumer and have no connector. See ``docs/data-sources.md``.
"""

import json
import uuid
from typing import TYPE_CHECKING, Any

from app.data_sources.connectors.base import (
    AccessPlan,
    ColumnInfo,
    Connector,
    ErasureOutcome,
    ErasurePlan,
    ErasureRecorder,
    FieldChange,
    NotPreviewable,
    PlannedChange,
    RecordBatch,
    RectificationOutcome,
    RectificationPlan,
    RestrictionOutcome,
    RestrictionPlan,
    RetainedCategory,
    RetainedKeys,
    SourceError,
    SubjectIdentity,
    TableErasurePlan,
)
from app.data_sources.connectors.sql import normalise_sql_url
from app.data_sources.dataset_map import (
    DatasetMap,
    DatasetMapError,
    parse_dataset_map,
    schema_problems,
)

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.models import DataSource

__all__ = [
    "AccessPlan",
    "ColumnInfo",
    "Connector",
    "DatasetMap",
    "DatasetMapError",
    "ErasureOutcome",
    "ErasurePlan",
    "ErasureRecorder",
    "FieldChange",
    "NotPreviewable",
    "PlannedChange",
    "RecordBatch",
    "RectificationOutcome",
    "RectificationPlan",
    "RestrictionOutcome",
    "RestrictionPlan",
    "RetainedCategory",
    "RetainedKeys",
    "SourceError",
    "SubjectIdentity",
    "TableErasurePlan",
    "connector_for",
    "normalise_sql_url",
    "parse_dataset_map",
    "schema_problems",
    "secret_config",
]


def secret_config(source: "DataSource", settings: "Settings") -> dict[str, Any]:
    """The decrypted secret part of a source's configuration (``{}`` when there is none)."""
    from app.core.crypto import decrypt_secret

    if not source.secret_config_encrypted:
        return {}
    text = decrypt_secret(source.secret_config_encrypted, secret_keys=settings.reading_keys)
    if text is None:
        raise SourceError(
            f"source {source.name}: its credentials cannot be decrypted (was DSR_SECRET_KEY "
            "changed?); register the source again",
            retryable=False,
        )
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        raise SourceError(
            f"source {source.name}: its stored credentials are not a JSON object",
            retryable=False,
        )
    return loaded


def connector_for(
    source: "DataSource", settings: "Settings", *, request_id: uuid.UUID | None = None
) -> Connector:
    """The connector for a ``sql`` or ``http`` source; SourceError(retryable=False) otherwise.

    The caller owns the connector and must ``await connector.close()``.
    """
    from app.data_sources.connectors.http import HttpConnector
    from app.data_sources.connectors.sql import SqlConnector

    config = source.config or {}
    if source.kind == "task":
        raise SourceError(
            f"source {source.name}: task sources are worked by a webhook consumer, not a connector",
            retryable=False,
        )
    if source.kind == "sql":
        url = secret_config(source, settings).get("url")
        if not isinstance(url, str) or not url:
            raise SourceError(f"source {source.name}: no database URL stored", retryable=False)
        dataset_map = config.get("dataset_map")
        if not isinstance(dataset_map, dict | str):
            raise SourceError(f"source {source.name}: no dataset map", retryable=False)
        return SqlConnector(source.name, url, dataset_map, settings, request_id)
    if source.kind == "http":
        base_url = config.get("base_url")
        if not isinstance(base_url, str) or not base_url:
            raise SourceError(f"source {source.name}: no base_url configured", retryable=False)
        token = secret_config(source, settings).get("auth_token")
        return HttpConnector(
            source.name,
            base_url,
            settings,
            auth_token=str(token) if token else None,
            request_id=request_id,
        )
    raise SourceError(f"source {source.name}: unknown kind {source.kind!r}", retryable=False)
