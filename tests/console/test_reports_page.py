"""The console's Reports page: the API's figures, chart and register, for a signed-in person."""

import re

from fastapi import FastAPI
from httpx import AsyncClient

from app.auth.scopes import Role
from tests.console.helpers import login, make_person
from tests.reports.helpers import NOW, add_request, at, end_of

OFFICER = "olivia.officer@example.com"
PERIOD = {"from": "2026-01-01", "to": "2026-12-07"}


async def seed(app: FastAPI) -> None:
    await add_request(
        app, status="completed", received_at=at("2026-03-02"), closed_at=at("2026-03-12", 15),
        clock_started_on="2026-03-02", due_date="2026-04-02", due_at=end_of("2026-04-02"),
        channel="api",
    )  # fmt: skip
    await add_request(
        app, status="completed", type="erasure", received_at=at("2026-04-01"),
        closed_at=at("2026-05-11"), clock_started_on="2026-04-01", due_date="2026-05-05",
        due_at=end_of("2026-05-05"), extended=True, extension_reason="complex search",
    )  # fmt: skip
    await add_request(
        app, status="rejected", received_at=at("2026-06-10"), closed_at=at("2026-07-11"),
        outcome_reason="identity_not_verified", rejected_by="system",
    )  # fmt: skip
    await add_request(
        app, status="in_progress", received_at=at("2026-11-20"), clock_started_on="2026-11-20",
        due_date="2026-12-01", due_at=end_of("2026-12-01"),
    )  # fmt: skip


async def signed_in(app: FastAPI, client: AsyncClient, role: Role = Role.OFFICER) -> str:
    app.state.clock = lambda: NOW
    await make_person(app, role=role, now=NOW)
    return await login(client, OFFICER)


def figure(html: str, label: str) -> str:
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>([^<]*)</dd>", html)
    assert found, label
    return found.group(1)


async def test_reports_page_shows_the_summary_chart_and_monthly_table(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await signed_in(app, client)
    await seed(app)
    page = await client.get("/console/reports", params=PERIOD)
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Reports</h1>" in html
    assert '<label for="period-from">From</label>' in html
    assert '<label for="period-to">To</label>' in html
    assert 'type="date" value="2026-01-01"' in html and 'type="date" value="2026-12-07"' in html
    api = (await client.get("/v1/reports/summary", headers=officer_headers, params=PERIOD)).json()
    assert figure(html, "Received") == str(api["received"]["total"]) == "4"
    assert figure(html, "Completed on time") == "1" and figure(html, "Completed late") == "1"
    assert figure(html, "On-time rate") == "50.0%"
    assert figure(html, "Extended") == "1" and "complex search" in html
    assert figure(html, "Rejected") == "1" and figure(html, "Verification expired") == "1"
    assert figure(html, "Still open") == "1"
    assert figure(html, "Overdue") == str(api["open_now"]["overdue"]) == "1"
    median = api["completed"]["days_taken"]["median"]
    assert figure(html, "Median days taken") == f"{median:.1f} days"
    assert "identity not verified" in html
    # One bar per month of the period (January to December), and the same figures as a table.
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<rect") == 12
    assert "Mar 26: 1 received" in svg
    assert "<caption>Requests received and completed per month</caption>" in html
    assert '<th scope="row">2026-03</th><td class="number">1</td>' in html
    assert 'href="/console/reports/register.csv?from=2026-01-01&amp;to=2026-12-07"' in html


async def test_the_default_period_is_the_last_twelve_months(
    app: FastAPI, client: AsyncClient
) -> None:
    await signed_in(app, client)
    page = await client.get("/console/reports")
    assert page.status_code == 200
    assert 'value="2025-12-08"' in page.text and 'value="2026-12-07"' in page.text
    assert page.text[page.text.index("<svg") :].count("<rect") == 13


async def test_a_bad_period_is_a_422_page_with_the_message(
    app: FastAPI, client: AsyncClient
) -> None:
    await signed_in(app, client)
    backwards = await client.get(
        "/console/reports", params={"from": "2026-05-01", "to": "2026-01-01"}
    )
    assert backwards.status_code == 422
    assert "text/html" in backwards.headers["content-type"]
    assert "“From” is after “To”." in backwards.text and "<svg" not in backwards.text
    assert 'value="2026-05-01"' in backwards.text
    too_long = await client.get(
        "/console/reports", params={"from": "2016-01-01", "to": "2026-01-01"}
    )
    assert too_long.status_code == 422 and "at most five years" in too_long.text
    for bad in ("yesterday", "2026-02-30", "0", "9" * 200):
        response = await client.get("/console/reports", params={"to": bad})
        assert response.status_code == 422, bad
        assert "“To” must be a date written YYYY-MM-DD." in response.text
    csv_refused = await client.get("/console/reports/register.csv", params={"from": "x"})
    assert csv_refused.status_code == 422 and "text/html" in csv_refused.headers["content-type"]


async def test_register_download_is_the_apis_csv_byte_for_byte(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await signed_in(app, client)
    await seed(app)
    await add_request(
        app, received_at=at("2026-02-02"), extension_reason="=cmd|' /C calc'!A0", extended=True
    )
    console = await client.get("/console/reports/register.csv", params=PERIOD)
    api = await client.get("/v1/reports/register.csv", headers=officer_headers, params=PERIOD)
    assert console.status_code == api.status_code == 200
    assert console.content == api.content and console.content.count(b"\n") == 6
    assert console.headers["content-type"] == api.headers["content-type"]
    assert console.headers["content-disposition"] == (
        'attachment; filename="dsr-register-2026-01-01-to-2026-12-07.csv"'
    )
    # The default period too.
    assert (await client.get("/console/reports/register.csv")).content == (
        await client.get("/v1/reports/register.csv", headers=officer_headers)
    ).content


async def test_admins_see_reports_and_anonymous_browsers_go_to_login(
    app: FastAPI, client: AsyncClient
) -> None:
    app.state.clock = lambda: NOW
    for url in ("/console/reports", "/console/reports/register.csv?from=2026-01-01"):
        response = await client.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/console/login?next=/console/reports")
    await make_person(app, email="ada.admin@example.com", role=Role.ADMIN, now=NOW)
    await login(client, "ada.admin@example.com")
    assert (await client.get("/console/reports")).status_code == 200
    assert (await client.get("/console/reports/register.csv")).status_code == 200
