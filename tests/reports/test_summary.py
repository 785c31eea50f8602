"""The summary's figures for a hand-built set of requests, on SQLite and PostgreSQL."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.reports.helpers import NOW, add_request, at, end_of

PERIOD = {"from": "2026-01-01", "to": "2026-12-07"}


async def _hand_built_set(app: FastAPI) -> None:
    # Completed: on time (10 days), late (40 days), extended and on time (31 days).
    await add_request(
        app, status="completed", received_at=at("2026-03-02"), closed_at=at("2026-03-12"),
        due_date="2026-04-02", due_at=end_of("2026-04-02"), channel="api",
    )  # fmt: skip
    await add_request(
        app, status="completed", received_at=at("2026-04-01"), closed_at=at("2026-05-11"),
        due_date="2026-05-01", due_at=end_of("2026-05-01"), type="erasure",
    )  # fmt: skip
    await add_request(
        app, status="completed", received_at=at("2026-05-01"), closed_at=at("2026-06-01"),
        due_date="2026-08-03", due_at=end_of("2026-08-03"), extended=True,
        extension_reason="  Complex request ",
    )  # fmt: skip
    await add_request(
        app, status="in_progress", received_at=at("2026-11-05"), due_date="2027-02-05",
        due_at=end_of("2027-02-05"), extended=True, extension_reason="complex request",
    )  # fmt: skip
    # Rejected: by an officer, by the expiry sweep, and unverified by an officer.
    await add_request(
        app, status="rejected", received_at=at("2026-06-01"), closed_at=at("2026-06-03"),
        outcome_reason="manifestly_unfounded", rejected_by="officer-1",
        due_date="2026-07-01", due_at=end_of("2026-07-01"),
    )  # fmt: skip
    await add_request(
        app, status="rejected", received_at=at("2026-07-01"), closed_at=at("2026-07-31"),
        outcome_reason="identity_not_verified", rejected_by="system", channel="web",
    )  # fmt: skip
    await add_request(
        app, status="rejected", received_at=at("2026-07-02"), closed_at=at("2026-07-05"),
        outcome_reason="identity_not_verified", rejected_by="officer-1",
    )  # fmt: skip
    await add_request(
        app, status="cancelled", received_at=at("2026-08-01"), closed_at=at("2026-08-02")
    )
    # Open: overdue, due within 7 days, awaiting verification (EU, by post).
    await add_request(
        app, received_at=at("2026-10-01"), due_date="2026-11-02", due_at=end_of("2026-11-02")
    )
    await add_request(
        app, received_at=at("2026-11-09"), due_date="2026-12-10", due_at=end_of("2026-12-10")
    )
    await add_request(
        app, status="awaiting_verification", received_at=at("2026-12-01"), type="erasure",
        channel="post", regulation="eu_gdpr",
    )  # fmt: skip
    # Received before the period: only in open_now (paused), or nowhere (completed).
    await add_request(
        app, status="completed", received_at=at("2025-06-01"), closed_at=at("2025-06-05"),
        due_date="2025-07-01", due_at=end_of("2025-07-01"),
    )  # fmt: skip
    await add_request(
        app, status="paused", received_at=at("2025-11-01"), due_date="2026-01-05",
        due_at=end_of("2026-01-05"), pause_reason="awaiting_fee",
    )  # fmt: skip


async def _summary(client: AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await client.get("/v1/reports/summary", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_summary_of_a_hand_built_set(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    app.state.clock = lambda: NOW
    await _hand_built_set(app)
    body = await _summary(client, officer_headers, **PERIOD)

    assert body["period"] == {"from": "2026-01-01", "to": "2026-12-07", "timezone": "Europe/London"}
    received = body["received"]
    assert received["total"] == 11
    assert received["by_type"] == {
        "access": 9, "rectification": 0, "erasure": 2, "restriction": 0, "portability": 0,
        "objection": 0,
    }  # fmt: skip
    assert received["by_channel"] == {"api": 1, "web": 1, "email": 8, "post": 1, "phone": 0}
    assert received["by_regulation"] == {"uk_gdpr": 10, "eu_gdpr": 1, "ccpa": 0}
    # Days taken 10, 40 and 31: median 31; p90 interpolated 31 + 0.8 * 9 = 38.2.
    assert body["completed"] == {
        "total": 3,
        "on_time": 2,
        "late": 1,
        "on_time_rate": 0.6667,
        "days_taken": {"median": 31.0, "p90": 38.2},
    }
    assert body["extensions"] == {
        "count": 2,
        "top_reasons": [{"reason": "complex request", "count": 2}],
    }
    assert body["rejections"] == {
        "total": 3,
        "by_reason": {
            "manifestly_unfounded": 1,
            "excessive": 0,
            "identity_not_verified": 2,
            "exemption": 0,
        },
    }
    assert body["verification_expiries"] == 1
    assert body["cancelled"] == 1
    assert body["still_open"] == 4
    assert body["open_now"] == {
        "total": 5,
        "by_status": {"awaiting_verification": 1, "in_progress": 3, "paused": 1},
        "overdue": 1,
        "due_within_7_days": 1,
    }
    text = str(body)
    assert "report.subject@example.com" not in text and "Report Subject" not in text


async def test_the_default_period_is_the_last_twelve_months(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    app.state.clock = lambda: NOW
    await add_request(app, received_at=at("2025-12-07"))  # a year ago today: outside
    await add_request(app, received_at=at("2025-12-08"))
    body = await _summary(client, officer_headers)
    assert body["period"]["from"] == "2025-12-08" and body["period"]["to"] == "2026-12-07"
    assert body["received"]["total"] == 1


async def test_an_empty_period_has_zeros_and_no_rates(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = await _summary(client, admin_headers, **PERIOD)
    assert body["received"]["total"] == 0
    assert body["completed"]["on_time_rate"] is None
    assert body["completed"]["days_taken"] == {"median": None, "p90": None}
    assert body["extensions"] == {"count": 0, "top_reasons": []}


async def test_one_completed_request_is_its_own_median_and_percentile(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    # 2.25 days: rounded half up, as in the register.
    await add_request(
        app, status="completed", received_at=at("2026-03-02", 0), closed_at=at("2026-03-04", 6),
        due_date="2026-04-02", due_at=end_of("2026-04-02"),
    )  # fmt: skip
    body = await _summary(client, officer_headers, **PERIOD)
    assert body["completed"]["days_taken"] == {"median": 2.3, "p90": 2.3}


async def test_periods_that_run_backwards_or_too_long_are_refused(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    for params in (
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"from": "0001-01-01", "to": "2026-01-01"},
        {"to": "9999-12-31"},
        {"from": "yesterday"},
        {"form": "2026-01-01"},
    ):
        response = await client.get("/v1/reports/summary", headers=officer_headers, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    refused = await client.get("/v1/reports/summary", headers=integration_headers)
    assert refused.status_code == 403
