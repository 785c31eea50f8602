"""The processing register: loading, validation, Art. 15 information, and its route."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from httpx import AsyncClient

from app.core.config import Settings
from app.demo import load_dataset_map
from app.register.service import ProcessingRegister, load_register, supplementary_information
from tests.conftest import make_settings

BUILT_IN = Path(__file__).parents[2] / "app" / "register" / "processing_register.yaml"


def built_in_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(BUILT_IN.read_text("utf-8"))
    return data


def settings_for(path: Path | None) -> Settings:
    return make_settings(
        "sqlite+aiosqlite:///:memory:", processing_register_path=str(path) if path else None
    )


@pytest.fixture
def register() -> ProcessingRegister:
    return load_register(settings_for(None))


# ------------------------------------------------------------------------------ loading


def test_built_in_register_loads_and_covers_the_demo_crm(register: ProcessingRegister) -> None:
    assert register.controller.name
    assert register.controller.dpo is not None and register.controller.dpo.email
    # The demo CRM's categories, and the service's own: correspondence about a request.
    demo_categories = set(load_dataset_map()["categories"]) | {"correspondence"}
    assert set(register.data_categories) == demo_categories
    used = {category for activity in register.activities for category in activity.categories}
    assert used == demo_categories
    assert register.data_categories["special_category"].special_category
    for activity in register.activities:
        if "special_category" in activity.categories:
            assert activity.lawful_basis.article_9 is not None, activity.id
    assert any(a.automated_decision_making.exists for a in register.activities)
    assert any(a.international_transfers for a in register.activities)


def test_register_is_cached_per_path(tmp_path: Path) -> None:
    assert load_register(settings_for(None)) is load_register(settings_for(None))
    path = tmp_path / "register.yaml"
    path.write_text(BUILT_IN.read_text("utf-8"), "utf-8")
    custom = load_register(settings_for(path))
    assert custom is load_register(settings_for(path))
    assert custom is not load_register(settings_for(None))


def test_yaml_override(tmp_path: Path) -> None:
    data = built_in_data()
    data["controller"]["name"] = "Ambridge Organics Ltd"
    path = tmp_path / "ambridge.yml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    assert load_register(settings_for(path)).controller.name == "Ambridge Organics Ltd"


def test_json_override(tmp_path: Path) -> None:
    data = built_in_data()
    data["controller"]["name"] = "Walford Motors Ltd"
    data["activities"] = data["activities"][:1]
    path = tmp_path / "walford.json"
    path.write_text(json.dumps(data), "utf-8")
    register = load_register(settings_for(path))
    assert register.controller.name == "Walford Motors Ltd"
    assert [activity.id for activity in register.activities] == ["customer_orders"]


def _activity(data: dict[str, Any], activity_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in data["activities"] if a["id"] == activity_id)
    return found


def _break_special_category(data: dict[str, Any]) -> None:
    del _activity(data, "events")["lawful_basis"]["article_9"]


def _break_legitimate_interests(data: dict[str, Any]) -> None:
    del _activity(data, "customer_service_calls")["lawful_basis"]["legitimate_interests"]


def _break_automated_decision(data: dict[str, Any]) -> None:
    del _activity(data, "payment_fraud_screening")["automated_decision_making"]["logic"]


def _break_unknown_category(data: dict[str, Any]) -> None:
    _activity(data, "customer_orders")["categories"].append("loyalty")


def _break_lawful_basis(data: dict[str, Any]) -> None:
    _activity(data, "customer_orders")["lawful_basis"]["article_6"] = "because_we_can"


def _break_missing_retention(data: dict[str, Any]) -> None:
    del _activity(data, "direct_marketing")["retention"]


def _break_duplicate_id(data: dict[str, Any]) -> None:
    data["activities"].append(dict(data["activities"][0]))


def _break_retention_category(data: dict[str, Any]) -> None:
    _activity(data, "direct_marketing")["retention"][0]["categories"] = ["financial"]


def _break_unknown_field(data: dict[str, Any]) -> None:
    data["controller"]["twitter"] = "@example"


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_break_special_category, "activity events processes special category data"),
        (_break_legitimate_interests, "legitimate_interests must say which interests"),
        (_break_automated_decision, "needs logic and significance"),
        (_break_unknown_category, "categories not described in data_categories: loyalty"),
        (_break_lawful_basis, "activities.0.lawful_basis.article_6"),
        (_break_missing_retention, "activities.3.retention: Field required"),
        (_break_duplicate_id, "activity ids must be unique: customer_orders"),
        (_break_retention_category, "retention names categories the activity does not list"),
        (_break_unknown_field, "controller.twitter: Extra inputs are not permitted"),
    ],
)
def test_invalid_register_is_refused_with_the_problem(
    tmp_path: Path, breaker: Any, expected: str
) -> None:
    data = built_in_data()
    breaker(data)
    path = tmp_path / f"{breaker.__name__}.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    with pytest.raises(ValueError) as caught:
        load_register(settings_for(path))
    message = str(caught.value)
    assert str(path) in message
    assert expected in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("broken.yaml", "controller: [unclosed", "is not valid YAML"),
        ("broken.json", '{"controller": ', "is not valid JSON"),
        ("list.yaml", "- just\n- a list\n", "must be a mapping at the top level"),
        ("empty.yaml", "", "must be a mapping at the top level"),
    ],
)
def test_unparsable_register_is_refused(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    with pytest.raises(ValueError, match=expected):
        load_register(settings_for(path))


def test_missing_register_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ValueError, match="does not exist"):
        load_register(settings_for(path))


def test_settings_from_environment_point_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.yaml"
    data = built_in_data()
    data["controller"]["name"] = "Env Ltd"
    path.write_text(yaml.safe_dump(data), "utf-8")
    monkeypatch.setenv("DSR_PROCESSING_REGISTER_PATH", str(path))
    assert load_register(Settings()).controller.name == "Env Ltd"


# ------------------------------------------------------------------------------ Art. 15


def test_supplementary_information_for_the_whole_register(register: ProcessingRegister) -> None:
    info = supplementary_information(register)
    assert info["regulation"] == "uk_gdpr"
    assert info["controller"]["name"] == register.controller.name
    assert {p["activity"] for p in info["purposes"]} == {a.id for a in register.activities}
    assert {c["name"] for c in info["categories"]} == set(register.data_categories)
    for purpose in info["purposes"]:
        assert purpose["purpose"]
        assert purpose["lawful_basis"]["description"].startswith("UK GDPR Art. 6(1)(")
    assert info["recipients"] and all(r["purposes"] for r in info["recipients"])
    assert info["retention"] and all(rule["period"] for rule in info["retention"])
    assert all(entry["sources"] for entry in info["sources"])
    decided = [d for d in info["automated_decision_making"] if d["exists"]]
    assert [d["activity"] for d in decided] == ["payment_fraud_screening"]
    assert decided[0]["logic"] and decided[0]["significance"]
    assert {t["country"] for t in info["international_transfers"]} >= {"United States"}
    assert all(t["safeguard"] for t in info["international_transfers"])
    rights = {right["right"]: right for right in info["rights"]}
    assert {"rectification", "erasure", "restriction", "objection", "portability"} <= set(rights)
    assert rights["erasure"]["reference"] == "UK GDPR Art. 17"
    assert "direct_marketing" in rights["objection"]["applies_to"]
    assert "customer_service_calls" in rights["objection"]["applies_to"]
    assert rights["human_review"]["applies_to"] == ["payment_fraud_screening"]
    assert "ico.org.uk" in info["right_to_complain"]["url"]
    assert "Information Commissioner" in info["right_to_complain"]["name"]
    json.dumps(info)  # JSON-ready as it is


def test_supplementary_information_is_filtered_by_categories(
    register: ProcessingRegister,
) -> None:
    info = supplementary_information(register, categories=["special_category"])
    assert [p["activity"] for p in info["purposes"]] == ["events"]
    purpose = info["purposes"][0]
    assert purpose["categories"] == ["special_category"]
    article_9 = purpose["lawful_basis"]["article_9"]
    assert article_9["condition"] == "explicit_consent"
    assert article_9["description"].startswith("UK GDPR Art. 9(2)(a)")
    assert info["categories"] == [
        {
            "name": "special_category",
            "description": register.data_categories["special_category"].description,
            "special_category": True,
        }
    ]
    # Only the retention rule about dietary requirements, not the one about attendance.
    assert [rule["categories"] for rule in info["retention"]] == [["special_category"]]
    assert {r["name"] for r in info["recipients"]} == {
        "Event venues and caterers",
        "Webinar platform",
    }
    assert info["international_transfers"] == []
    rights = {right["right"] for right in info["rights"]}
    assert "human_review" not in rights
    assert "withdraw_consent" not in rights


def test_filtering_by_financial_includes_the_retention_reason(
    register: ProcessingRegister,
) -> None:
    info = supplementary_information(register, categories={"financial", "device"})
    activities = {p["activity"] for p in info["purposes"]}
    assert activities == {
        "customer_orders",
        "statutory_accounts",
        "payment_fraud_screening",
        "website_analytics",
    }
    reasons = [rule.get("reason", "") for rule in info["retention"]]
    assert any("HMRC" in reason for reason in reasons)
    assert "human_review" in {right["right"] for right in info["rights"]}
    assert "withdraw_consent" in {right["right"] for right in info["rights"]}


def test_unregistered_category_is_still_listed(register: ProcessingRegister) -> None:
    info = supplementary_information(register, categories=["loyalty"])
    assert info["categories"] == [
        {"name": "loyalty", "description": None, "special_category": False}
    ]
    assert info["purposes"] == []
    assert {r["right"] for r in info["rights"]} >= {"erasure", "objection"}


def test_no_categories_means_no_activities(register: ProcessingRegister) -> None:
    info = supplementary_information(register, categories=[])
    assert info["purposes"] == [] and info["categories"] == []
    assert info["right_to_complain"]["url"]


@pytest.mark.parametrize(
    ("regulation", "law", "regulator"),
    [("eu_gdpr", "GDPR Art. 17", "edpb"), ("ccpa", "1798.105", "cppa.ca.gov")],
)
def test_other_regulations(
    register: ProcessingRegister, regulation: str, law: str, regulator: str
) -> None:
    info = supplementary_information(register, categories=["contact"], regulation=regulation)
    erasure = next(right for right in info["rights"] if right["right"] == "erasure")
    assert law in erasure["reference"]
    assert regulator in info["right_to_complain"]["url"]
    if regulation == "eu_gdpr":
        assert info["purposes"][0]["lawful_basis"]["description"].startswith("GDPR Art. 6(1)")


# ------------------------------------------------------------------------------ the route


async def test_route_returns_the_register(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    for headers in (integration_headers, officer_headers, admin_headers):
        response = await client.get("/v1/processing-register", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["controller"]["name"] == "Borchester Office Supplies Ltd"
        assert {a["id"] for a in body["activities"]} >= {"customer_orders", "events"}
        assert body["data_categories"]["special_category"]["special_category"] is True
    response = await client.get("/v1/processing-register")
    assert response.status_code == 401
