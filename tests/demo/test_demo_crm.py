"""The demo CRM: generated database, Jane Doe, determinism, dataset map, CLI."""

import copy
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.demo import (
    ERASURE_STRATEGIES,
    JANE_DOE,
    DatasetMapError,
    create_demo_crm,
    load_dataset_map,
    validate_dataset_map,
)
from app.demo.crm import TABLES


def _count(db: Path, sql: str, *params: object) -> int:
    connection = sqlite3.connect(db)
    try:
        return int(connection.execute(sql, params).fetchone()[0])
    finally:
        connection.close()


def _dump(db: Path) -> list[str]:
    connection = sqlite3.connect(db)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def test_creates_every_table_with_a_few_hundred_contacts(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db")
    assert _count(db, "SELECT count(*) FROM contacts") == 300
    for table in TABLES:
        assert _count(db, f"SELECT count(*) FROM {table}") > 50, table
    assert _count(db, "SELECT count(DISTINCT email) FROM contacts") == 300


def test_jane_doe_has_rows_in_every_table(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db", contacts=50, seed=7)
    connection = sqlite3.connect(db)
    try:
        jane = connection.execute(
            "SELECT customer_id, first_name, last_name, phone FROM contacts WHERE email = ?",
            (JANE_DOE["email"],),
        ).fetchone()
        assert jane == ("C-1001", "Jane", "Doe", "+441632960001")
        # Her identities are hers alone, so lookups find exactly one person.
        assert connection.execute(
            "SELECT count(*) FROM contacts WHERE phone = ? OR email = ?",
            (JANE_DOE["phone"], JANE_DOE["email"]),
        ).fetchone() == (1,)
        for table in TABLES:
            rows = connection.execute(
                f"SELECT count(*) FROM {table} WHERE customer_id = 'C-1001'"
            ).fetchone()[0]
            assert rows >= 1, table
    finally:
        connection.close()


def test_generated_data_stays_in_the_fictional_ranges(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db")
    connection = sqlite3.connect(db)
    try:
        for email, phone, postcode in connection.execute(
            "SELECT email, phone, postcode FROM contacts"
        ):
            assert email.rsplit("@", 1)[1] in {"example.com", "example.org", "example.net"}
            assert phone is None or phone.startswith(("+441632960", "+447700900"))
            assert postcode.startswith("Q")
        for (ip_address,) in connection.execute("SELECT ip_address FROM web_activity"):
            assert ip_address.startswith(("192.0.2.", "198.51.100.", "203.0.113.", "2001:db8:"))
    finally:
        connection.close()


def test_same_seed_same_data_and_rebuild_replaces_the_file(tmp_path: Path) -> None:
    first = create_demo_crm(tmp_path / "a.db", seed=42)
    second = create_demo_crm(tmp_path / "b.db", seed=42)
    other = create_demo_crm(tmp_path / "c.db", seed=43)
    assert _dump(first) == _dump(second)
    assert _dump(first) != _dump(other)
    create_demo_crm(first, contacts=20, seed=42)
    assert _count(first, "SELECT count(*) FROM contacts") == 20


def test_refuses_more_contacts_than_the_drama_ranges_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contacts"):
        create_demo_crm(tmp_path / "crm.db", contacts=1001)


def test_dataset_map_validates_against_the_generated_database(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db", contacts=20)
    dataset_map = load_dataset_map()
    validate_dataset_map(dataset_map, db)
    assert set(dataset_map["tables"]) == set(TABLES)
    assert dataset_map["tables"]["contacts"]["identity_columns"] == {
        "email": "email",
        "phone": "phone",
        "customer_id": "customer_id",
    }
    related = {relation["from"].split(".")[0] for relation in dataset_map["relations"]}
    assert related == set(TABLES) - {"contacts"}


def test_every_category_has_a_strategy_and_retain_has_a_reason() -> None:
    categories = load_dataset_map()["categories"]
    assert set(categories) >= {
        "contact",
        "identity",
        "financial",
        "marketing",
        "communications",
        "feedback",
        "events",
        "device",
        "special_category",
    }
    for name, spec in categories.items():
        assert spec["erasure"] in ERASURE_STRATEGIES, name
        if spec["erasure"] == "retain":
            assert spec["retain_reason"].strip(), name
    assert categories["financial"]["erasure"] == "retain"
    assert "HMRC" in categories["financial"]["retain_reason"]
    assert categories["special_category"]["special_category"] is True


def test_validation_reports_every_problem(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db", contacts=5)
    broken = copy.deepcopy(load_dataset_map())
    broken["categories"]["financial"].pop("retain_reason")
    broken["categories"]["device"]["erasure"] = "shred"
    broken["tables"]["orders"]["columns"]["coupon"] = {
        "category": "financial",
        "provided_by_subject": True,
    }
    del broken["tables"]["web_activity"]["columns"]["ip_address"]
    broken["tables"]["ghost"] = {"columns": {}}
    broken["relations"].append({"from": "orders.nope", "to": "contacts.customer_id"})
    with pytest.raises(DatasetMapError) as raised:
        validate_dataset_map(broken, db)
    problems = "\n".join(raised.value.problems)
    for expected in (
        "financial is retained without a retain_reason",
        "erasure 'shred'",
        "orders.coupon is not in the database",
        "web_activity.ip_address is in the database but not in the map",
        "table ghost is not in the database",
        "'orders.nope'",
    ):
        assert expected in problems
    with pytest.raises(DatasetMapError, match="does not exist"):
        validate_dataset_map(load_dataset_map(), tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_contacts_carry_a_restriction_flag_the_map_names(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db", contacts=30)
    assert _count(db, "SELECT count(*) FROM contacts WHERE processing_restricted = 0") == 30
    dataset_map = load_dataset_map()
    assert dataset_map["restriction"] == {"table": "contacts", "column": "processing_restricted"}
    # A flag the service sets, not the person's data: it is not among the mapped columns.
    assert "processing_restricted" not in dataset_map["tables"]["contacts"]["columns"]
    connection = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute("UPDATE contacts SET processing_restricted = 2")
    finally:
        connection.close()


def test_validation_knows_the_restriction_flag(tmp_path: Path) -> None:
    db = create_demo_crm(tmp_path / "crm.db", contacts=5)
    without = copy.deepcopy(load_dataset_map())
    del without["restriction"]
    with pytest.raises(DatasetMapError) as raised:
        validate_dataset_map(without, db)
    assert raised.value.problems == [
        "column contacts.processing_restricted is in the database but not in the map"
    ]
    misnamed = copy.deepcopy(load_dataset_map())
    misnamed["restriction"]["column"] = "restricted"
    with pytest.raises(DatasetMapError) as raised:
        validate_dataset_map(misnamed, db)
    assert "restriction column contacts.restricted is not in the database" in raised.value.problems
    mapped = copy.deepcopy(load_dataset_map())
    mapped["restriction"]["column"] = "email"
    with pytest.raises(DatasetMapError, match="must not be a mapped column"):
        validate_dataset_map(mapped, db)


def test_validation_reports_structure_without_a_database(tmp_path: Path) -> None:
    broken = copy.deepcopy(load_dataset_map())
    broken["relations"].append({"from": "orders.order_id", "to": "orders.order_id"})
    with pytest.raises(DatasetMapError) as raised:
        validate_dataset_map(broken, tmp_path / "missing.db")
    problems = "\n".join(raised.value.problems)
    assert "relations form a cycle through table orders" in problems
    assert "does not exist" in problems


def test_cli_demo_create(tmp_path: Path) -> None:
    target = tmp_path / "demo.db"
    target.write_text("not a database")  # rebuilt, not appended to
    command = ["demo", "create", "--path", str(target), "--contacts", "40", "--seed", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *command],
        env={**os.environ, "DSR_SECRET_KEY": "cli-test-key-" * 3},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert _count(target, "SELECT count(*) FROM contacts") == 40
    validate_dataset_map(load_dataset_map(), target)
