"""The register CSV: one row per request received in the period, on-time flags, hygiene."""

import csv
import io

from fastapi import FastAPI
from httpx import AsyncClient

from app.models import DsrRequest
from app.reports.register_csv import HEADER
from tests.reports.helpers import NOW, add_request, at, end_of

PERIOD = {"from": "2026-01-01", "to": "2026-12-07"}


async def test_register_of_three_requests(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    app.state.clock = lambda: NOW
    on_time = await add_request(
        app, status="completed", received_at=at("2026-03-02"), closed_at=at("2026-03-12", 15),
        clock_started_on="2026-03-02", due_date="2026-04-02", due_at=end_of("2026-04-02"),
        channel="api",
    )  # fmt: skip
    late = await add_request(
        app, status="completed", type="erasure", received_at=at("2026-04-01"),
        closed_at=at("2026-05-11"), clock_started_on="2026-04-01", due_date="2026-05-05",
        due_at=end_of("2026-05-05"), paused_days=3,
    )  # fmt: skip
    still_open = await add_request(
        app, status="paused", received_at=at("2026-11-30", 23), pause_reason="awaiting_fee",
        clock_started_on="2026-11-30", due_date="2027-03-01", due_at=end_of("2027-03-01"),
        extended=True, extension_reason='=HYPERLINK("http://evil.example","click"), then more',
    )  # fmt: skip
    await add_request(app, received_at=at("2025-12-31"))  # before the period: not listed

    response = await client.get("/v1/reports/register.csv", headers=officer_headers, params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="dsr-register-2026-01-01-to-2026-12-07.csv"'
    )
    text = response.text
    assert "report.subject@example.com" not in text and "Report Subject" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == HEADER
    assert [row["id"] for row in rows] == [str(on_time), str(late), str(still_open)]
    first, second, third = rows
    assert first == {
        "id": str(on_time),
        "type": "access",
        "regulation": "uk_gdpr",
        "channel": "api",
        "received_on": "2026-03-02",
        "clock_started_on": "2026-03-02",
        "due_date": "2026-04-02",
        "extended": "no",
        "extension_reason": "",
        "paused_days": "0",
        "closed_on": "2026-03-12",
        "outcome": "completed",
        "on_time": "yes",
        "days_taken": "10.3",  # 10.25 days, rounded half up
        "reason_codes": "",
    }
    assert second["on_time"] == "no" and second["extended"] == "no"
    assert second["paused_days"] == "3" and second["days_taken"] == "40.0"
    # The formula is neutralised (a leading apostrophe), as exports do it.
    assert third["extended"] == "yes"
    assert third["extension_reason"] == "'" + '=HYPERLINK("http://evil.example","click"), then more'
    # Received at 23:00 UTC on 30 November = 30 November in London (UTC+0 in winter).
    assert third["received_on"] == "2026-11-30"
    assert third["on_time"] == "" and third["closed_on"] == "" and third["days_taken"] == ""
    assert third["outcome"] == "paused" and third["reason_codes"] == "awaiting_fee"


async def test_register_streams_many_rows_in_order(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """More rows than one partition of the cursor: all come, oldest first."""
    async with app.state.sessionmaker.begin() as session:
        for index in range(5100):
            session.add(
                DsrRequest(
                    type="access", status="awaiting_verification", regulation="uk_gdpr",
                    channel="web", submitted_by="test", received_at=at("2026-02-01", 0).replace(
                        minute=index // 100, second=index % 60, microsecond=index
                    ), created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
    response = await client.get("/v1/reports/register.csv", headers=admin_headers, params=PERIOD)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 5100
    assert all(row["outcome"] == "awaiting_verification" for row in rows)


async def test_register_is_for_officers_and_checks_its_period(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    refused = await client.get("/v1/reports/register.csv", headers=integration_headers)
    assert refused.status_code == 403
    backwards = await client.get(
        "/v1/reports/register.csv",
        headers=officer_headers,
        params={"from": "2026-02-01", "to": "2026-01-01"},
    )
    assert backwards.status_code == 422
    empty = await client.get("/v1/reports/register.csv", headers=officer_headers)
    assert empty.status_code == 200
    assert empty.text == ",".join(HEADER) + "\r\n"
