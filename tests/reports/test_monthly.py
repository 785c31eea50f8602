"""Requests received and completed on time per local month, on SQLite and PostgreSQL."""

from fastapi import FastAPI
from httpx import AsyncClient

from tests.reports.helpers import NOW, add_request, at, end_of


async def test_months_are_local_months_cut_to_the_period(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    app.state.clock = lambda: NOW
    # 23:30 UTC on 31 March is 00:30 on 1 April in London (summer time): April's.
    await add_request(app, received_at=at("2026-03-31", hour=23).replace(minute=30))
    await add_request(
        app, status="completed", received_at=at("2026-03-20"), closed_at=at("2026-03-25"),
        due_date="2026-04-20", due_at=end_of("2026-04-20"),
    )  # fmt: skip
    await add_request(
        app, status="completed", received_at=at("2026-04-02"), closed_at=at("2026-06-01"),
        due_date="2026-05-05", due_at=end_of("2026-05-05"),
    )  # fmt: skip
    await add_request(
        app, status="completed", received_at=at("2026-04-03"), closed_at=at("2026-04-04"),
        due_date="2026-05-05", due_at=end_of("2026-05-05"),
    )  # fmt: skip
    # Outside the period: before its first day, and after its last.
    await add_request(app, received_at=at("2026-03-14"))
    await add_request(app, received_at=at("2026-05-11"))

    response = await client.get(
        "/v1/reports/monthly",
        headers=officer_headers,
        params={"from": "2026-03-15", "to": "2026-05-10"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {"from": "2026-03-15", "to": "2026-05-10", "timezone": "Europe/London"}
    assert body["months"] == [
        {"month": "2026-03", "received": 1, "completed": 1, "on_time": 1, "late": 0,
         "on_time_rate": 1.0},
        {"month": "2026-04", "received": 3, "completed": 2, "on_time": 1, "late": 1,
         "on_time_rate": 0.5},
        {"month": "2026-05", "received": 0, "completed": 0, "on_time": 0, "late": 0,
         "on_time_rate": None},
    ]  # fmt: skip
    summary = (
        await client.get(
            "/v1/reports/summary",
            headers=officer_headers,
            params={"from": "2026-03-15", "to": "2026-05-10"},
        )
    ).json()
    assert sum(month["received"] for month in body["months"]) == summary["received"]["total"]
    assert sum(month["on_time"] for month in body["months"]) == summary["completed"]["on_time"]


async def test_the_default_is_the_last_twelve_months_and_bad_periods_are_refused(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    app.state.clock = lambda: NOW
    body = (await client.get("/v1/reports/monthly", headers=officer_headers)).json()
    # 8 December 2025 to 7 December 2026: thirteen months touched, both ends cut.
    assert [month["month"] for month in body["months"]][:2] == ["2025-12", "2026-01"]
    assert body["months"][-1]["month"] == "2026-12"
    assert len(body["months"]) == 13
    refused = await client.get(
        "/v1/reports/monthly",
        headers=officer_headers,
        params={"from": "2026-05-01", "to": "2026-04-01"},
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
