"""Calendar feeds: create (token once), list (no tokens), the ICS parsed back, revoke."""

from datetime import date

from fastapi import FastAPI
from httpx import AsyncClient
from icalendar import Calendar

from tests.factories import create_request, verified_request
from tests.reports.helpers import add_request, at


async def _create(client: AsyncClient, headers: dict[str, str], name: str) -> dict[str, str]:
    response = await client.post("/v1/calendar-feeds", headers=headers, json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


async def test_feed_lists_open_requests_due_dates(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    running = await verified_request(client, integration_headers, officer_headers)
    erasure = await verified_request(
        client, integration_headers, officer_headers, type="erasure",
        details={"grounds": "no longer needed"},
    )  # fmt: skip
    await create_request(client, integration_headers)  # unverified: no due date yet
    await add_request(
        app, status="completed", received_at=at("2026-03-02"), due_date="2026-04-02"
    )  # closed: not in the feed

    feed = await _create(client, officer_headers, "Privacy team deadlines")
    assert feed["token"].startswith("cal_") and feed["url"].endswith(f"/{feed['token']}.ics")
    response = await client.get(_path(feed["url"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "jane.doe@example.com" not in response.text and "Jane Doe" not in response.text

    calendar = Calendar.from_ical(response.content)
    assert str(calendar["X-WR-CALNAME"]) == "Privacy team deadlines"
    events = {str(event["UID"]): event for event in calendar.walk("VEVENT")}
    assert set(events) == {f"{running['id']}@dsr-due-date", f"{erasure['id']}@dsr-due-date"}
    event = events[f"{erasure['id']}@dsr-due-date"]
    assert str(event["SUMMARY"]) == f"Due: erasure request {erasure['id']}"
    due = date.fromisoformat(erasure["deadline"]["due_date"])
    assert event.decoded("DTSTART") == due
    assert (event.decoded("DTEND") - due).days == 1
    assert str(event["URL"]).endswith(f"/v1/requests/{erasure['id']}")
    assert "DTSTAMP" in event

    again = Calendar.from_ical((await client.get(_path(feed["url"]))).content)
    assert {str(e["UID"]) for e in again.walk("VEVENT")} == set(events)


async def test_feeds_are_listed_without_tokens_and_revoked(
    client: AsyncClient, officer_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    first = await _create(client, officer_headers, "Mine")
    second = await _create(client, admin_headers, "Audit")
    listed = await client.get("/v1/calendar-feeds", headers=officer_headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert {item["id"] for item in items} == {first["id"], second["id"]}
    assert all(set(item) == {"id", "name", "created_by", "created_at"} for item in items)
    assert first["token"] not in listed.text

    revoked = await client.delete(f"/v1/calendar-feeds/{first['id']}", headers=officer_headers)
    assert revoked.status_code == 204
    gone = await client.get(_path(first["url"]))
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert (await client.get(_path(second["url"]))).status_code == 200
    again = await client.delete(f"/v1/calendar-feeds/{first['id']}", headers=officer_headers)
    assert again.status_code == 404
    listed = await client.get("/v1/calendar-feeds", headers=officer_headers)
    assert [item["id"] for item in listed.json()["items"]] == [second["id"]]


async def test_wrong_tokens_are_one_neutral_404(client: AsyncClient) -> None:
    for token in ("cal_wrong", "nope", "cal_" + "x" * 500, "%00"):
        response = await client.get(f"/v1/calendar/{token}.ics")
        assert response.status_code == 404, token
        assert response.json()["detail"] == "Not a calendar feed address."


async def test_feeds_are_for_officers(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    assert (
        await client.post("/v1/calendar-feeds", headers=integration_headers, json={"name": "x"})
    ).status_code == 403
    assert (await client.get("/v1/calendar-feeds", headers=integration_headers)).status_code == 403
    for body in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "ok", "extra": 1}):
        response = await client.post("/v1/calendar-feeds", headers=officer_headers, json=body)
        assert response.status_code == 422, body
