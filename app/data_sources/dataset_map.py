"""Dataset maps: how a ``sql`` source finds, exports, erases and restricts one person's data.

A map arrives as a dict or as YAML/JSON text. ``parse_dataset_map`` checks its structure
without a database and returns a typed ``DatasetMap``; ``schema_problems`` compares a map with
a database's reflected schema. The format is documented in ``docs/data-sources.md``.
Problems name categories, tables and columns only: a map holds no personal data.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "ERASURE_STRATEGIES",
    "IDENTITY_KINDS",
    "Category",
    "DatasetMap",
    "DatasetMapError",
    "MappedColumn",
    "MappedTable",
    "Relation",
    "Restriction",
    "dataset_map_problems",
    "parse_dataset_map",
    "schema_problems",
]

ERASURE_STRATEGIES = ("delete", "null", "mask", "retain")
IDENTITY_KINDS = ("email", "phone", "customer_id")


class DatasetMapError(ValueError):
    """A dataset map that does not describe its database; ``problems`` lists every fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid dataset map: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Category:
    name: str
    erasure: str
    retain_reason: str | None = None
    description: str | None = None
    special_category: bool = False


@dataclass(frozen=True)
class MappedColumn:
    name: str
    category: str
    provided_by_subject: bool


@dataclass(frozen=True)
class MappedTable:
    name: str
    primary_key: str
    identity_columns: dict[str, str]
    columns: tuple[MappedColumn, ...]

    def column(self, name: str) -> MappedColumn | None:
        return next((column for column in self.columns if column.name == name), None)


@dataclass(frozen=True)
class Relation:
    """Rows of ``from_table`` belong to the person whose ``to_table.to_column`` they hold."""

    from_table: str
    from_column: str
    to_table: str
    to_column: str


@dataclass(frozen=True)
class Restriction:
    """The column (not a mapped one) the service sets to 1 while processing is restricted."""

    table: str
    column: str


@dataclass(frozen=True)
class DatasetMap:
    subject_table: str
    categories: dict[str, Category]
    tables: dict[str, MappedTable]
    relations: tuple[Relation, ...] = ()
    restriction: Restriction | None = None
    schema: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def relations_from(self, table: str) -> list[Relation]:
        return [relation for relation in self.relations if relation.from_table == table]

    def dependency_order(self) -> list[str]:
        """Tables with every table that depends on it first: the order erasure must follow.

        A table's rows may be found through another table's rows (a relation), so the table
        pointed to must still hold them while the dependants are changed.
        """
        remaining = list(self.tables)
        ordered: list[str] = []
        while remaining:
            ready = [
                name
                for name in remaining
                if not any(
                    relation.to_table == name and relation.from_table in remaining
                    for relation in self.relations
                    if relation.from_table != name
                )
            ]
            # The subject table goes as late as it can; a cycle (refused by parsing) stops here.
            ready.sort(key=lambda name: name == self.subject_table)
            chosen = ready[0] if ready else remaining[0]
            ordered.append(chosen)
            remaining.remove(chosen)
        return ordered


def load_dataset_map_text(text: str) -> Any:
    """Read YAML or JSON text (JSON first: it is the stricter of the two)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DatasetMapError(
                [f"not valid JSON (line {exc.lineno}, column {exc.colno})"]
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise DatasetMapError([f"not valid YAML{where}"]) from None


def parse_dataset_map(source: Mapping[str, Any] | str) -> DatasetMap:
    """The typed map from a dict or YAML/JSON text; raise DatasetMapError listing every fault."""
    raw = load_dataset_map_text(source) if isinstance(source, str) else source
    problems = dataset_map_problems(raw)
    if problems:
        raise DatasetMapError(problems)
    categories = {
        name: Category(
            name=name,
            erasure=spec["erasure"],
            retain_reason=str(spec["retain_reason"]).strip() if spec.get("retain_reason") else None,
            description=spec.get("description"),
            special_category=bool(spec.get("special_category", False)),
        )
        for name, spec in raw["categories"].items()
    }
    tables = {
        name: MappedTable(
            name=name,
            primary_key=spec["primary_key"],
            identity_columns=dict(spec.get("identity_columns") or {}),
            columns=tuple(
                MappedColumn(column, column_spec["category"], column_spec["provided_by_subject"])
                for column, column_spec in spec["columns"].items()
            ),
        )
        for name, spec in raw["tables"].items()
    }
    relations = tuple(
        Relation(*_split(relation["from"]), *_split(relation["to"]))
        for relation in raw.get("relations") or []
    )
    restriction_spec = raw.get("restriction")
    restriction = (
        Restriction(restriction_spec["table"], restriction_spec["column"])
        if restriction_spec
        else None
    )
    return DatasetMap(
        subject_table=raw["subject_table"],
        categories=categories,
        tables=tables,
        relations=relations,
        restriction=restriction,
        schema=raw.get("schema"),
        raw=dict(raw),
    )


def _split(reference: str) -> tuple[str, str]:
    table, _, column = reference.partition(".")
    return table, column


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _mapped_columns(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{table: {column: spec}}`` from a raw map, tolerating any fault in it."""
    return {
        str(table): _mapping(_mapping(spec).get("columns"))
        for table, spec in _mapping(raw.get("tables")).items()
    }


def dataset_map_problems(raw: Any) -> list[str]:
    """Every structural fault of a raw map (no database needed); empty when it is sound."""
    if not isinstance(raw, Mapping):
        return ["the dataset map must be a mapping (an object) at the top level"]
    problems = _category_problems(raw.get("categories"))
    categories = _mapping(raw.get("categories"))
    tables = _mapping(raw.get("tables"))
    columns_by_table = _mapped_columns(raw)
    if not tables:
        problems.append("no tables")
    if raw.get("subject_table") not in tables:
        problems.append(f"subject_table {raw.get('subject_table')!r} is not a mapped table")
    if raw.get("schema") is not None and not isinstance(raw.get("schema"), str):
        problems.append("schema must be a name (text)")
    for table, spec in tables.items():
        problems += _table_problems(str(table), spec, columns_by_table, categories)
    relations = raw.get("relations") or []
    if not isinstance(relations, list):
        problems.append("relations must be a list")
        relations = []
    edges: list[tuple[str, str]] = []
    for relation in relations:
        relation = _mapping(relation)
        ends = []
        for end in ("from", "to"):
            table, _, column = str(relation.get(end, "")).partition(".")
            if column not in columns_by_table.get(table, {}):
                problems.append(f"relation {end} {relation.get(end)!r} is not a mapped column")
            ends.append(table)
        edges.append((ends[0], ends[1]))
    problems += _graph_problems(raw, columns_by_table, edges)
    problems += _restriction_problems(raw.get("restriction"), columns_by_table)
    return problems


def _category_problems(categories: Any) -> list[str]:
    if not categories or not isinstance(categories, Mapping):
        return ["no categories"]
    problems = []
    for name, spec in categories.items():
        spec = _mapping(spec)
        strategy = spec.get("erasure")
        if strategy not in ERASURE_STRATEGIES:
            known = ", ".join(ERASURE_STRATEGIES)
            problems.append(f"category {name}: erasure {strategy!r} is not one of {known}")
        if strategy == "retain" and not str(spec.get("retain_reason") or "").strip():
            problems.append(f"category {name} is retained without a retain_reason")
    return problems


def _table_problems(
    table: str,
    spec: Any,
    columns_by_table: dict[str, dict[str, Any]],
    categories: dict[str, Any],
) -> list[str]:
    if not isinstance(spec, Mapping):
        return [f"table {table} must be a mapping with primary_key, identity_columns, columns"]
    problems = []
    columns = columns_by_table[table]
    if not columns:
        problems.append(f"table {table} has no columns")
    for column, column_spec in columns.items():
        column_spec = _mapping(column_spec)
        if column_spec.get("category") not in categories:
            problems.append(
                f"column {table}.{column} has unknown category {column_spec.get('category')!r}"
            )
        if not isinstance(column_spec.get("provided_by_subject"), bool):
            problems.append(f"column {table}.{column} lacks provided_by_subject (true/false)")
    if spec.get("primary_key") not in columns:
        problems.append(f"table {table}: primary_key {spec.get('primary_key')!r} is not mapped")
    identity_columns = spec.get("identity_columns") or {}
    if not isinstance(identity_columns, Mapping):
        return [*problems, f"table {table}: identity_columns must map a kind to a column"]
    for kind, column in identity_columns.items():
        if kind not in IDENTITY_KINDS:
            known = ", ".join(IDENTITY_KINDS)
            problems.append(f"table {table}: identity kind {kind!r} is not one of {known}")
        if column not in columns:
            problems.append(f"table {table}: identity {kind} column {column!r} is not mapped")
    return problems


def _graph_problems(
    raw: Mapping[str, Any],
    columns_by_table: dict[str, dict[str, Any]],
    edges: list[tuple[str, str]],
) -> list[str]:
    """Relations must not loop, and every table must be reachable from the person."""
    problems = []
    known = [edge for edge in edges if set(edge) <= set(columns_by_table)]
    for table in columns_by_table:
        if _reaches(table, table, known):
            problems.append(f"relations form a cycle through table {table}")
    found = {
        table
        for table, spec in _mapping(raw.get("tables")).items()
        if _mapping(_mapping(spec).get("identity_columns"))
    }
    grown = True
    while grown:
        reached = {source for source, target in known if target in found} - found
        found |= reached
        grown = bool(reached)
    for table in columns_by_table:
        if table not in found:
            problems.append(
                f"table {table} has no identity column and no relation to a table that has one"
            )
    return problems


def _reaches(start: str, goal: str, edges: list[tuple[str, str]]) -> bool:
    seen: set[str] = set()
    frontier = [target for source, target in edges if source == start]
    while frontier:
        table = frontier.pop()
        if table == goal:
            return True
        if table not in seen:
            seen.add(table)
            frontier += [target for source, target in edges if source == table]
    return False


def _restriction_problems(
    restriction: Any, columns_by_table: dict[str, dict[str, Any]]
) -> list[str]:
    if restriction is None:
        return []
    restriction = _mapping(restriction)
    table, column = restriction.get("table"), restriction.get("column")
    if table not in columns_by_table:
        return [f"restriction table {table!r} is not a mapped table"]
    if not isinstance(column, str) or not column:
        return [f"restriction on table {table} names no column"]
    if column in columns_by_table[table]:
        return [
            f"restriction column {table}.{column} must not be a mapped column "
            "(it is a flag the service sets, not the person's data)"
        ]
    return []


def schema_problems(
    dataset_map: DatasetMap | Mapping[str, Any], schema: Mapping[str, set[str]]
) -> list[str]:
    """Where the map and a database schema (``{table: {column, ...}}``) disagree.

    Every mapped table and column must exist, and every database column of a mapped table
    must be mapped (an unmapped column would escape access and erasure), except the
    restriction column, which must exist.
    """
    if isinstance(dataset_map, DatasetMap):
        mapped = {
            name: {column.name for column in table.columns}
            for name, table in dataset_map.tables.items()
        }
        restriction = dataset_map.restriction
    else:
        mapped = {table: set(columns) for table, columns in _mapped_columns(dataset_map).items()}
        spec = _mapping(dataset_map.get("restriction"))
        restriction = Restriction(str(spec.get("table")), str(spec.get("column"))) if spec else None
    problems = []
    for table, columns in mapped.items():
        if table not in schema:
            problems.append(f"table {table} is not in the database")
            continue
        db_columns = set(schema[table])
        problems += [
            f"column {table}.{column} is not in the database"
            for column in columns
            if column not in db_columns
        ]
        flag = restriction.column if restriction and restriction.table == table else None
        if flag is not None and flag not in db_columns:
            problems.append(f"restriction column {table}.{flag} is not in the database")
        problems += [
            f"column {table}.{column} is in the database but not in the map"
            for column in sorted(db_columns - columns - {flag})
        ]
    return problems
