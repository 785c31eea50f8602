"""The OpenAPI document is written for privacy officers and integrators."""

from typing import Any

import pytest

from app.core.config import Settings
from app.main import create_app

PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/v1/oauth/token",
    "/v1/exports/{token}",
    "/v1/calendar/{token}.ics",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]


def test_description_explains_lifecycle_and_deadlines(spec: dict[str, Any]) -> None:
    description = spec["info"]["description"]
    for phrase in [
        "awaiting_verification",
        "calendar month",
        "Stop the clock",
        "CCPA",
        "Extension",
        "problem+json",
    ]:
        assert phrase in description


def test_every_operation_has_summary_docstring_tag_and_errors(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert len(op.get("description", "")) > 20, where
        assert op.get("tags"), where
        if path not in PUBLIC_PATHS:
            assert {"401", "403"} <= set(op["responses"]), where
            assert op.get("security"), where
        if "{request_id}" in path:
            assert "404" in op["responses"], where


def test_request_creation_has_examples_for_every_type(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/requests"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {
        "access",
        "rectification",
        "erasure",
        "restriction",
        "portability",
        "objection",
    }


def test_swagger_authorize_uses_client_credentials(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["OAuth2"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/v1/oauth/token"


def test_tags_are_described(spec: dict[str, Any]) -> None:
    described = {tag["name"] for tag in spec["tags"]}
    used = {tag for _, _, op in _operations(spec) for tag in op["tags"]}
    assert used <= described


def test_every_webhook_event_is_documented_with_its_payload(spec: dict[str, Any]) -> None:
    from app.webhooks.event_types import EVENT_TYPES

    assert set(spec["webhooks"]) == set(EVENT_TYPES)
    for event_type, item in spec["webhooks"].items():
        operation = item["post"]
        assert "webhook-signature" in operation["description"], event_type
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].rsplit("/", 1)[-1] in spec["components"]["schemas"], event_type
    data = spec["components"]["schemas"]["RequestEventData"]["properties"]
    assert {"id", "type", "status", "deadline"} <= set(data)
    assert not {"email", "phone", "name", "subject"} & set(data)


def test_webhook_events_document_what_the_consumer_answers(spec: dict[str, Any]) -> None:
    for event_type, item in spec["webhooks"].items():
        responses = item["post"]["responses"]
        assert set(responses) == {"204", "410", "default"}, event_type
        assert "2xx" in responses["204"]["description"], event_type
        assert "disables" in responses["410"]["description"], event_type
        assert "retried" in responses["default"]["description"], event_type


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    # ReDoc renders nothing but an error when one $ref points nowhere.
    references = set(_references(spec))
    assert references, "the document uses references"
    for reference in references:
        node: Any = spec
        assert reference.startswith("#/"), reference
        for part in reference[2:].split("/"):
            assert isinstance(node, dict) and part in node, reference
            node = node[part]


def test_request_event_payload_documents_the_per_request_sequence(spec: dict[str, Any]) -> None:
    data = spec["components"]["schemas"]["RequestEventData"]
    assert "sequence" in data["required"]
    assert data["properties"]["sequence"]["type"] == "integer"
    assert "order" in data["properties"]["sequence"]["description"]


def test_every_error_is_documented_as_problem_json_only(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert list(response.get("content", {})) == ["application/problem+json"], (
                    f"{method.upper()} {path} {status}"
                )
    # FastAPI's own validation body is never what the service sends.
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_body_routes_document_unreadable_large_and_foreign_bodies(spec: dict[str, Any]) -> None:
    with_body = [
        (path, method, op) for path, method, op in _operations(spec) if "requestBody" in op
    ]
    assert len(with_body) > 15
    for path, method, op in with_body:
        assert {"400", "413", "415"} <= set(op["responses"]), f"{method.upper()} {path}"


def test_ids_in_paths_are_documented_as_uuids(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"].endswith(
                (
                    "request_id",
                    "task_id",
                    "webhook_id",
                    "delivery_id",
                    "suppression_id",
                    "source_id",
                )
            ):
                assert parameter["schema"].get("format") == "uuid", f"{method.upper()} {path}"


def test_identities_and_dates_say_what_the_service_accepts(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    subject = schemas["Subject"]["properties"]
    assert subject["email"]["format"] == "email"
    assert subject["phone"]["format"] == "phone"
    # At least one identity; and one to find the person by unless it came by post or phone.
    assert len(schemas["Subject"]["anyOf"]) == 4
    assert schemas["AccessCreate"]["if"] == {
        "properties": {"channel": {"not": {"enum": ["post", "phone"]}}}
    }
