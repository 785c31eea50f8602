"""What a generated client relies on: the service refuses exactly what the document refuses.

Each case here is one schemathesis found (tests/test_api_contract.py runs it whole).
"""

import json
from typing import Any

from httpx import AsyncClient, Response

from app.core.errors import PROBLEM_JSON
from tests.factories import create_request, request_body

JSON = {"Content-Type": "application/json"}


def _problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    return body


async def test_an_unreadable_body_has_one_shape_whatever_broke(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    for raw in (b'{"type": "access",', b'{"type": "\xff\xfe"}', b"[" * 100_000):
        response = await client.post(
            "/v1/requests", headers={**officer_headers, **JSON}, content=raw
        )
        body = _problem(response, 400)
        assert body["title"] == "Malformed JSON"
        assert body["errors"][0]["type"] == "json_invalid"
    broken_form = await client.post(
        "/v1/oauth/token",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nnot closed",
    )
    body = _problem(broken_form, 400)
    assert body["title"] == "Malformed body" and body["errors"][0]["type"] == "body_invalid"
    assert "There was an error parsing the body" not in broken_form.text


async def test_a_key_given_twice_is_refused(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    raw = b'{"type": "access", "type": "erasure", "subject": {"email": "jane@example.com"}}'
    response = await client.post("/v1/requests", headers={**officer_headers, **JSON}, content=raw)
    body = _problem(response, 422)
    assert body["errors"] == [{"loc": ["body"], "msg": "duplicate key", "type": "duplicate_key"}]


async def test_literal_paths_are_not_taken_for_ids(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    for path, allowed in (("/v1/requests/search", "POST"), ("/v1/suppressions/check", "POST")):
        options = await client.options(path, headers=officer_headers)
        assert options.status_code == 405 and options.headers["allow"] == allowed, path
        wrong = await client.get(path, headers=officer_headers)
        assert wrong.status_code == 405 and wrong.headers["allow"] == allowed, path


async def test_booleans_and_dates_are_json_booleans_and_iso_text(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    for confirmed in (0, "yes", "true"):
        response = await client.post(
            f"/v1/requests/{request_id}/verification",
            headers=officer_headers,
            json={
                "method": "document",
                "document_type": "passport",
                "business_address_confirmed": confirmed,
                "result": "passed",
            },
        )
        assert _problem(response, 422)["errors"][0]["loc"][-1] == "business_address_confirmed"
    search = await client.post(
        "/v1/requests/search", headers=officer_headers, json={"overdue": "true"}
    )
    assert _problem(search, 422)["errors"][0]["loc"] == ["body", "overdue"]
    for value in (0, "0", 1_700_000_000):
        listed = await client.get(
            "/v1/requests", headers=officer_headers, params={"due_before": value}
        )
        assert _problem(listed, 422)["errors"][0]["loc"] == ["query", "due_before"]
    created = await client.post(
        "/v1/requests", headers=officer_headers, json=request_body(received_at=1_700_000_000)
    )
    assert _problem(created, 422)["errors"][0]["loc"][-1] == "received_at"


async def test_max_length_counts_what_was_sent_and_text_is_still_trimmed(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    too_long = await client.post(
        "/v1/requests",
        headers=officer_headers,
        json=request_body(subject={"email": "jane@example.com", "name": "J" * 199 + "  "}),
    )
    assert _problem(too_long, 422)["errors"][0]["type"] == "string_too_long"
    trimmed = await client.post(
        "/v1/requests",
        headers=officer_headers,
        json=request_body(subject={"email": "jane@example.com", "name": "  Jane Doe  "}),
    )
    assert trimmed.status_code == 201, trimmed.text
    assert trimmed.json()["subject"]["name"] == "Jane Doe"
    blank = await client.post(
        "/v1/requests",
        headers=officer_headers,
        json=request_body(subject={"email": "jane@example.com", "name": "   "}),
    )
    assert _problem(blank, 422)["errors"][0]["type"] == "string_too_short"


async def test_a_request_with_no_tasks_lists_none_to_its_submitter(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    own = (await create_request(client, integration_headers))["id"]
    listed = await client.get(f"/v1/requests/{own}/tasks", headers=integration_headers)
    assert listed.status_code == 200 and listed.json()["items"] == []
    foreign = (await create_request(client, officer_headers))["id"]
    hidden = await client.get(f"/v1/requests/{foreign}/tasks", headers=integration_headers)
    assert _problem(hidden, 404)["detail"] == "No task of this request is visible to you."
    missing = await client.get(
        "/v1/requests/00000000-0000-0000-0000-000000000000/tasks", headers=officer_headers
    )
    _problem(missing, 404)


def test_duplicate_detection_keeps_nested_values_intact() -> None:
    from app.core.json_body import parse_json_body

    body = {"a": [{"b": 1, "c": {"d": "x"}}], "e": None}
    assert parse_json_body(json.dumps(body).encode()) == body
