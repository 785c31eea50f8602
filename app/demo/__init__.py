"""The demo CRM and its dataset map.

The dataset map (``dataset_map.json``) tells a ``sql`` data source how to find, export and
erase one person's data. Its shape:

* ``subject_table``: where a person is looked up by their identities.
* ``categories``: ``{name: {"description", "erasure", "retain_reason"?, "special_category"?}}``;
  ``erasure`` is ``delete``, ``null``, ``mask`` or ``retain``, and ``retain`` names its legal
  reason in ``retain_reason`` (listed in the erasure result).
* ``relations``: ``[{"from": "orders.customer_id", "to": "contacts.customer_id"}]``: rows of
  ``from`` belong to the person whose ``to`` value they hold.
* ``tables``: ``{name: {"primary_key", "identity_columns", "columns"}}``;
  ``identity_columns`` maps an identity kind (``email``, ``phone``, ``customer_id``) to the
  column holding it; ``columns`` gives every column's ``category`` and
  ``provided_by_subject`` (what goes into a portability pack).
* ``restriction`` (optional): ``{"table": "contacts", "column": "processing_restricted"}``,
  a column outside ``columns`` that the service sets to 1 while processing is restricted
  (Art. 18) and back to 0 when the restriction is lifted.

Erasure of a row: it is deleted when every column's category erases by ``delete``;
otherwise it is kept (some column is retained, nulled or masked) and each column is handled
by its category: ``delete`` and ``null`` set NULL, ``mask`` overwrites, ``retain`` keeps; a
kept row keeps its primary key. In the demo, orders are retained as financial records while
their delivery address (``contact``) is nulled.

The full format is in ``docs/data-sources.md``; ``app.data_sources.dataset_map`` parses
and checks it.
"""

import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

from app.data_sources.dataset_map import (
    ERASURE_STRATEGIES,
    DatasetMapError,
    dataset_map_problems,
    schema_problems,
)
from app.demo.crm import JANE_DOE, create_demo_crm

__all__ = [
    "ERASURE_STRATEGIES",
    "JANE_DOE",
    "DatasetMapError",
    "create_demo_crm",
    "load_dataset_map",
    "validate_dataset_map",
]


def load_dataset_map() -> dict[str, Any]:
    """The demo CRM's dataset map, as a fresh dict the caller may change."""
    text = resources.files(__package__).joinpath("dataset_map.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate_dataset_map(dataset_map: dict[str, Any], db_path: str | Path) -> None:
    """Check the map against the SQLite database at ``db_path``; raise DatasetMapError.

    The map's structure is checked as ``app.data_sources.dataset_map`` does for every
    ``sql`` source; then every table and column named must exist and every database column of
    a mapped table must be mapped (an unmapped column would escape access and erasure).
    """
    problems = dataset_map_problems(dataset_map)
    schema = _read_schema(Path(db_path), problems)
    if schema is not None:
        problems += schema_problems(dataset_map, schema)
    if problems:
        raise DatasetMapError(problems)


def _read_schema(db_path: Path, problems: list[str]) -> dict[str, set[str]] | None:
    if not db_path.is_file():
        problems.append(f"database {db_path} does not exist")
        return None
    # Read-only: validating must never create or change the database.
    connection = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: {row[1] for row in connection.execute(f'PRAGMA table_info("{name}")')}
            for name in names
        }
    finally:
        connection.close()
