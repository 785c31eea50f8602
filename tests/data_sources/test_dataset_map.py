"""Dataset maps: YAML and JSON parsing, every structural fault, and the schema comparison."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.data_sources.dataset_map import (
    DatasetMap,
    DatasetMapError,
    Restriction,
    dataset_map_problems,
    parse_dataset_map,
    schema_problems,
)
from app.demo import load_dataset_map

YAML_MAP = """
subject_table: customers
schema: crm
categories:
  identity: {erasure: delete, description: Who the person is}
  financial:
    erasure: retain
    retain_reason: financial records, 6 years, HMRC
  support: {erasure: mask}
  profile: {erasure: "null"}
relations:
  - {from: invoices.customer_id, to: customers.id}
  - {from: invoice_lines.invoice_no, to: invoices.invoice_no}
restriction: {table: customers, column: is_restricted}
tables:
  customers:
    primary_key: id
    identity_columns: {email: email, phone: phone, customer_id: id}
    columns:
      id: {category: identity, provided_by_subject: false}
      email: {category: identity, provided_by_subject: true}
      phone: {category: identity, provided_by_subject: true}
      notes: {category: support, provided_by_subject: false}
      segment: {category: profile, provided_by_subject: false}
  invoices:
    primary_key: invoice_no
    identity_columns: {customer_id: customer_id}
    columns:
      invoice_no: {category: financial, provided_by_subject: false}
      customer_id: {category: financial, provided_by_subject: false}
  invoice_lines:
    primary_key: id
    columns:
      id: {category: financial, provided_by_subject: false}
      invoice_no: {category: financial, provided_by_subject: false}
      sku: {category: financial, provided_by_subject: true}
"""


def _problems(raw: Any) -> str:
    with pytest.raises(DatasetMapError) as raised:
        parse_dataset_map(raw)
    return "\n".join(raised.value.problems)


def _yaml_map() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(YAML_MAP)
    return loaded


def test_parses_yaml_into_a_typed_map() -> None:
    parsed = parse_dataset_map(YAML_MAP)
    assert isinstance(parsed, DatasetMap)
    assert parsed.subject_table == "customers"
    assert parsed.schema == "crm"
    assert parsed.categories["financial"].retain_reason == "financial records, 6 years, HMRC"
    assert parsed.categories["profile"].erasure == "null"
    customers = parsed.tables["customers"]
    assert customers.primary_key == "id"
    assert customers.identity_columns == {"email": "email", "phone": "phone", "customer_id": "id"}
    assert [column.name for column in customers.columns] == [
        "id",
        "email",
        "phone",
        "notes",
        "segment",
    ]
    assert customers.column("email") is not None
    assert customers.column("email").provided_by_subject is True  # type: ignore[union-attr]
    assert parsed.tables["invoice_lines"].identity_columns == {}
    assert parsed.restriction == Restriction("customers", "is_restricted")
    assert [relation.to_table for relation in parsed.relations_from("invoice_lines")] == [
        "invoices"
    ]
    assert parsed.raw["subject_table"] == "customers"


def test_json_text_and_dict_parse_the_same() -> None:
    as_dict = _yaml_map()
    from_json = parse_dataset_map(json.dumps(as_dict))
    assert from_json == parse_dataset_map(as_dict) == parse_dataset_map(YAML_MAP)


def test_demo_map_parses() -> None:
    parsed = parse_dataset_map(load_dataset_map())
    assert parsed.subject_table == "contacts"
    assert parsed.restriction == Restriction("contacts", "processing_restricted")
    assert parsed.categories["financial"].erasure == "retain"


def test_dependency_order_puts_dependants_first_and_the_subject_last() -> None:
    order = parse_dataset_map(YAML_MAP).dependency_order()
    assert order.index("invoice_lines") < order.index("invoices") < order.index("customers")
    demo_order = parse_dataset_map(load_dataset_map()).dependency_order()
    assert demo_order[-1] == "contacts"
    assert sorted(demo_order) == sorted(load_dataset_map()["tables"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"subject_table": "a",', "not valid JSON (line 1"),
        ("subject_table: [a\ntables: {", "not valid YAML (line"),
        ("- just\n- a list", "must be a mapping"),
        ("", "must be a mapping"),
    ],
)
def test_unreadable_text(text: str, expected: str) -> None:
    assert expected in _problems(text)


def test_yaml_is_loaded_safely() -> None:
    hostile = "subject_table: !!python/object/apply:os.system ['true']"
    assert "not valid YAML" in _problems(hostile)


def _broken(change: Any) -> str:
    raw = _yaml_map()
    change(raw)
    return _problems(raw)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.pop("categories"), "no categories"),
        (lambda m: m.update(tables={}), "no tables"),
        (lambda m: m.update(subject_table="people"), "subject_table 'people' is not a mapped"),
        (lambda m: m.update(schema=5), "schema must be a name"),
        (
            lambda m: m["categories"]["support"].update(erasure="shred"),
            "category support: erasure 'shred' is not one of delete, null, mask, retain",
        ),
        (
            lambda m: m["categories"]["financial"].pop("retain_reason"),
            "category financial is retained without a retain_reason",
        ),
        (
            lambda m: m["categories"]["financial"].update(retain_reason="  "),
            "category financial is retained without a retain_reason",
        ),
        (
            lambda m: m["tables"]["customers"]["columns"]["email"].update(category="contact"),
            "column customers.email has unknown category 'contact'",
        ),
        (
            lambda m: m["tables"]["customers"]["columns"]["email"].pop("provided_by_subject"),
            "column customers.email lacks provided_by_subject",
        ),
        (
            lambda m: m["tables"]["customers"]["columns"]["email"].update(
                provided_by_subject="yes"
            ),
            "column customers.email lacks provided_by_subject",
        ),
        (
            lambda m: m["tables"]["customers"].update(primary_key="uuid"),
            "table customers: primary_key 'uuid' is not mapped",
        ),
        (
            lambda m: m["tables"]["customers"].update(columns={}),
            "table customers has no columns",
        ),
        (
            lambda m: m["tables"]["customers"]["identity_columns"].update(ssn="ssn"),
            "identity kind 'ssn' is not one of email, phone, customer_id",
        ),
        (
            lambda m: m["tables"]["customers"]["identity_columns"].update(phone="mobile"),
            "table customers: identity phone column 'mobile' is not mapped",
        ),
        (
            lambda m: m["tables"]["customers"].update(identity_columns=["email"]),
            "identity_columns must map a kind to a column",
        ),
        (lambda m: m["tables"].update(ghost="nope"), "table ghost must be a mapping"),
        (
            lambda m: m["relations"].append({"from": "invoices.nope", "to": "customers.id"}),
            "relation from 'invoices.nope' is not a mapped column",
        ),
        (
            lambda m: m["relations"].append({"from": "invoices.customer_id", "to": "people.id"}),
            "relation to 'people.id' is not a mapped column",
        ),
        (lambda m: m.update(relations={"a": "b"}), "relations must be a list"),
        (
            lambda m: m["relations"].append(
                {"from": "invoices.invoice_no", "to": "invoice_lines.invoice_no"}
            ),
            "relations form a cycle through table invoices",
        ),
        (
            lambda m: m.update(relations=[]),
            "table invoice_lines has no identity column and no relation to a table that has one",
        ),
        (
            lambda m: m.update(restriction={"table": "people", "column": "flag"}),
            "restriction table 'people' is not a mapped table",
        ),
        (
            lambda m: m.update(restriction={"table": "customers"}),
            "restriction on table customers names no column",
        ),
        (
            lambda m: m.update(restriction={"table": "customers", "column": "email"}),
            "restriction column customers.email must not be a mapped column",
        ),
    ],
)
def test_each_structural_problem_is_named(change: Any, expected: str) -> None:
    assert expected in _broken(change)


def test_every_problem_is_listed_at_once() -> None:
    raw = _yaml_map()
    raw["categories"]["support"]["erasure"] = "shred"
    raw["tables"]["customers"]["primary_key"] = "uuid"
    raw["relations"].append({"from": "invoices.nope", "to": "customers.id"})
    problems = dataset_map_problems(raw)
    assert len(problems) == 3
    with pytest.raises(DatasetMapError, match=r"invalid dataset map: .*shred.*uuid.*nope"):
        parse_dataset_map(raw)


def test_a_sound_map_has_no_problems() -> None:
    assert dataset_map_problems(_yaml_map()) == []
    assert dataset_map_problems(load_dataset_map()) == []


SCHEMA = {
    "customers": {"id", "email", "phone", "notes", "segment", "is_restricted"},
    "invoices": {"invoice_no", "customer_id"},
    "invoice_lines": {"id", "invoice_no", "sku"},
    "unrelated": {"anything"},
}


def test_schema_matching_the_map_has_no_problems() -> None:
    assert schema_problems(parse_dataset_map(YAML_MAP), SCHEMA) == []
    assert schema_problems(_yaml_map(), SCHEMA) == []


def test_schema_drift_is_reported() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["customers"] |= {"nickname"}  # added later: would escape access and erasure
    schema["invoices"].discard("customer_id")
    del schema["invoice_lines"]
    schema["customers"].discard("is_restricted")
    problems = schema_problems(parse_dataset_map(YAML_MAP), schema)
    assert problems == [
        "restriction column customers.is_restricted is not in the database",
        "column customers.nickname is in the database but not in the map",
        "column invoices.customer_id is not in the database",
        "table invoice_lines is not in the database",
    ]
    # The raw dict gives the same answer, even when it is otherwise broken.
    assert schema_problems(_yaml_map(), schema) == problems
    broken = _yaml_map()
    broken["tables"]["invoices"] = "nonsense"
    assert "table invoice_lines is not in the database" in schema_problems(broken, schema)


def test_the_restriction_column_may_be_unmapped_but_no_other() -> None:
    parsed = parse_dataset_map(YAML_MAP)
    assert schema_problems(parsed, SCHEMA) == []
    without = _yaml_map()
    del without["restriction"]
    assert schema_problems(parse_dataset_map(without), SCHEMA) == [
        "column customers.is_restricted is in the database but not in the map"
    ]


def test_the_documented_example_is_a_valid_map() -> None:
    docs = Path(__file__).parents[2] / "docs" / "data-sources.md"
    match = re.search(r"```yaml\n(.*?)```", docs.read_text("utf-8"), re.S)
    assert match is not None
    parsed = parse_dataset_map(match.group(1))
    assert parsed.restriction == Restriction("customers", "is_restricted")
    assert parsed.dependency_order()[-1] == "customers"
