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

Erasure of a row: it is deleted when every column's category erases by ``delete``;
otherwise it is kept (some column is retained, nulled or masked) and each column is handled
by its category: ``delete`` and ``null`` set NULL, ``mask`` overwrites, ``retain`` keeps.
In the demo, orders are retained as financial records while their delivery address
(``contact``) is nulled.
"""

import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

from app.demo.crm import JANE_DOE, create_demo_crm

__all__ = [
    "ERASURE_STRATEGIES",
    "JANE_DOE",
    "DatasetMapError",
    "create_demo_crm",
    "load_dataset_map",
    "validate_dataset_map",
]

ERASURE_STRATEGIES = ("delete", "null", "mask", "retain")


class DatasetMapError(ValueError):
    """A dataset map that does not describe its database; ``problems`` lists every fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid dataset map: " + "; ".join(problems))
        self.problems = problems


def load_dataset_map() -> dict[str, Any]:
    """The demo CRM's dataset map, as a fresh dict the caller may change."""
    text = resources.files(__package__).joinpath("dataset_map.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate_dataset_map(dataset_map: dict[str, Any], db_path: str | Path) -> None:
    """Check the map against the SQLite database at ``db_path``; raise DatasetMapError.

    Every table and column named must exist, every database column of a mapped table must be
    mapped (an unmapped column would escape access and erasure), every category must have a
    strategy, and ``retain`` must give its reason.
    """
    problems = _category_problems(dataset_map.get("categories"))
    categories = dataset_map.get("categories") or {}
    schema = _read_schema(Path(db_path), problems)
    tables = dataset_map.get("tables") or {}
    if not tables:
        problems.append("no tables")
    if dataset_map.get("subject_table") not in tables:
        problems.append(f"subject_table {dataset_map.get('subject_table')!r} is not a mapped table")
    for table, spec in tables.items():
        if schema is not None and table not in schema:
            problems.append(f"table {table} is not in the database")
            continue
        columns: dict[str, Any] = spec.get("columns") or {}
        db_columns = schema[table] if schema is not None else set(columns)
        for column, column_spec in columns.items():
            if column not in db_columns:
                problems.append(f"column {table}.{column} is not in the database")
            if column_spec.get("category") not in categories:
                problems.append(
                    f"column {table}.{column} has unknown category {column_spec.get('category')!r}"
                )
            if not isinstance(column_spec.get("provided_by_subject"), bool):
                problems.append(f"column {table}.{column} lacks provided_by_subject (true/false)")
        problems += [
            f"column {table}.{column} is in the database but not in the map"
            for column in sorted(db_columns - set(columns))
        ]
        if spec.get("primary_key") not in columns:
            problems.append(f"table {table}: primary_key {spec.get('primary_key')!r} is not mapped")
        identity_columns = spec.get("identity_columns") or {}
        if not identity_columns:
            problems.append(f"table {table} has no identity column")
        for kind, column in identity_columns.items():
            if column not in columns:
                problems.append(f"table {table}: identity {kind} column {column!r} is not mapped")
    for relation in dataset_map.get("relations") or []:
        for end in ("from", "to"):
            table, _, column = str(relation.get(end, "")).partition(".")
            if column not in (tables.get(table) or {}).get("columns", {}):
                problems.append(f"relation {end} {relation.get(end)!r} is not a mapped column")
    if problems:
        raise DatasetMapError(problems)


def _category_problems(categories: Any) -> list[str]:
    if not categories:
        return ["no categories"]
    problems = []
    for name, spec in categories.items():
        strategy = spec.get("erasure")
        if strategy not in ERASURE_STRATEGIES:
            known = ", ".join(ERASURE_STRATEGIES)
            problems.append(f"category {name}: erasure {strategy!r} is not one of {known}")
        if strategy == "retain" and not str(spec.get("retain_reason") or "").strip():
            problems.append(f"category {name} is retained without a retain_reason")
    return problems


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
