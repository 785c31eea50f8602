"""The console and the subject's status page in a real headless Chromium, against a live
``dsr serve`` (SQLite, demo CRM, its own worker) that sends its mail to a real SMTP server on
loopback. The pages' screenshots go to ``docs/images/`` for ``docs/console.md``.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.core.time import utcnow
from tests.browser import chromium, save_screenshot
from tests.factories import identity_assertion
from tests.live_server import live_service
from tests.smtp_server import SmtpServer

ADMIN_ID, ADMIN_SECRET = "browser-admin", "browser-admin-secret-0123456789abcdef"
SUBJECT = "jane.doe@example.com"  # in the demo CRM, so fulfilment finds her
NEW_PASSWORD = "a long passphrase nobody guesses 7"
STATUS_LINK = re.compile(r"https?://[^\s\"'<>]+/status/[A-Za-z0-9._~-]+")
WAIT_MS = 15_000


@dataclass
class Service:
    base: str
    smtp: SmtpServer
    admin: dict[str, str]

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.request(
            method, f"{self.base}{path}", headers=self.admin, timeout=30, **kwargs
        )  # type: ignore[arg-type]
        assert response.status_code < 400, response.text
        return response

    def new_person(self, email: str, role: str = "officer") -> str:
        """A person's console account; their temporary password."""
        created = self.api(
            "POST",
            "/v1/users",
            json={
                "email": email,
                "name": email.split("@")[0].replace(".", " ").title(),
                "role": role,
            },
        )
        return str(created.json()["temporary_password"])

    def status_links(self) -> list[str]:
        """The status-page links in the mail the subject received, oldest first."""
        links = []
        for captured in self.smtp.messages:
            if SUBJECT in captured.rcpt_tos:
                links += STATUS_LINK.findall(captured.part("text/plain"))
        return links


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("console-browser")
    with SmtpServer() as smtp:
        environment = {
            "DSR_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'dsr.db'}",
            "DSR_EXPORT_DIR": str(folder / "exports"),
            "DSR_DEMO": "true",
            "DSR_DEMO_CRM_PATH": str(folder / "demo_crm.db"),
            "DSR_ADMIN_CLIENT_ID": ADMIN_ID,
            "DSR_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
            "DSR_SMTP_HOST": "127.0.0.1",
            "DSR_SMTP_PORT": str(smtp.port),
            "DSR_SMTP_FROM": "privacy@controller.example",
            "DSR_BRAND_NAME": "Example Shop privacy team",
        }
        with live_service(folder, environment) as live:
            token = httpx.post(
                f"{live.base}/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(ADMIN_ID, ADMIN_SECRET),
                timeout=30,
            ).json()["access_token"]
            yield Service(live.base, smtp, {"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def log_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def first_login(page: Page, base: str, email: str, temporary: str) -> None:
    """Log in with the temporary password and choose one's own, as a new officer does."""
    log_in(page, base, email, temporary)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("Current password").fill(temporary)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    # Until its page has loaded, a next navigation would abort the redirect (a failed request).
    page.wait_for_url(f"{base}/console/account?done=password")


def wait_for_mail(service: Service, count: int) -> list[str]:
    """Poll until the subject has received ``count`` status links (the worker sends mail)."""
    deadline = utcnow() + timedelta(seconds=20)
    while utcnow() < deadline:
        links = service.status_links()
        if len(links) >= count:
            return links
        httpx.get(f"{service.base}/readyz", timeout=5)  # a short, useful pause
    raise AssertionError(f"the subject has {len(service.status_links())} status links, not {count}")


def test_a_wrong_password_is_refused_and_the_account_limit_holds(
    service: Service, page: Page
) -> None:
    email = "lockout.officer@example.com"
    temporary = service.new_person(email)
    log_in(page, service.base, email, "not the password at all")
    expect(page.locator("#login-error")).to_have_text(
        "The email address or password is not correct."
    )
    for _ in range(4):
        log_in(page, service.base, email, "still not the password")
    # Locked now: the right password is refused too, and no session is opened.
    log_in(page, service.base, email, temporary)
    locked = page.locator("#login-error").inner_text()
    assert locked.startswith("Too many failed attempts")
    assert page.url.startswith(f"{service.base}/console/login")
    assert not [cookie for cookie in page.context.cookies() if cookie["name"] == "dsr_session"]
    # An address with no account is answered the same way: nothing tells them apart.
    for _ in range(6):
        log_in(page, service.base, "nobody.here@example.com", "whatever it is")
    assert page.locator("#login-error").inner_text() == locked


def test_a_form_posted_without_its_csrf_token_is_refused(service: Service, page: Page) -> None:
    email = "csrf.officer@example.com"
    first_login(page, service.base, email, service.new_person(email))
    expect(
        page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))
    ).to_be_visible()
    # The same browser, its session cookie sent, but no token in the form.
    refused = page.request.post(f"{service.base}/console/logout", form={})
    assert refused.status == 403
    forged = page.request.post(f"{service.base}/console/logout", form={"csrf_token": "forged"})
    assert forged.status == 403
    # Still logged in: the refused posts changed nothing.
    page.goto(f"{service.base}/console/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()


def test_cookie_flags_in_the_browser(service: Service, page: Page) -> None:
    email = "cookie.officer@example.com"
    first_login(page, service.base, email, service.new_person(email))
    [session] = [cookie for cookie in page.context.cookies() if cookie["name"] == "dsr_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("dsr_session") == -1


def _seed_requests(service: Service) -> tuple[str, str]:
    """An overdue request (an integration vouched for the subject 40 days ago, so its clock
    ran from receipt) and a letter received today, waiting for an identity check."""
    integration = service.api(
        "POST", "/v1/clients", json={"name": "Shop CRM", "role": "integration"}
    ).json()
    token = httpx.post(
        f"{service.base}/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(integration["client_id"], integration["client_secret"]),
        timeout=30,
    ).json()["access_token"]
    overdue = httpx.post(
        f"{service.base}/v1/requests",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "type": "access",
            "subject": {"email": SUBJECT},
            "channel": "web",
            "received_at": (utcnow() - timedelta(days=40)).isoformat(),
            "identity_assertion": identity_assertion(
                integration["client_id"], integration["client_secret"], SUBJECT
            ),
        },
        timeout=30,
    )
    assert overdue.status_code == 201, overdue.text
    assert overdue.json()["deadline"]["overdue"] is True
    letter = service.api(
        "POST",
        "/v1/requests",
        json={"type": "erasure", "subject": {"email": SUBJECT}, "channel": "post"},
    ).json()
    return overdue.json()["id"], letter["id"]


def _open_request(page: Page, tab: str, request_id: str) -> None:
    page.get_by_role("link", name=tab, exact=True).click()
    page.get_by_role("link", name=request_id[:8]).first.click()
    expect(page.locator("section[aria-labelledby=summary]")).to_contain_text(request_id)


def test_an_officer_and_the_subject_work_a_request_through(
    service: Service, browser: Browser, page: Page
) -> None:
    overdue_id, letter_id = _seed_requests(service)
    email = "olivia.officer@example.com"
    first_login(page, service.base, email, service.new_person(email))

    # The board: the overdue request is flagged, in words as well as colour.
    page.goto(f"{service.base}/console")
    page.get_by_role("link", name="Overdue", exact=True).click()
    row = page.get_by_role("row").filter(has_text=overdue_id[:8])
    expect(row).to_contain_text("Overdue")
    save_screenshot(page, "console-board")

    # The letter: the officer saw a passport; the clock starts today.
    _open_request(page, "Awaiting verification", letter_id)
    page.get_by_label("Document type").select_option("passport")
    page.get_by_label("Business address confirmed").check()
    page.get_by_label("Result").select_option("passed")
    page.get_by_role("button", name="Record document check").click()
    expect(page.locator("#clock-state")).to_have_text("Clock running")

    # The overdue request: a question to the subject stops its clock.
    page.goto(f"{service.base}/console")
    _open_request(page, "Overdue", overdue_id)
    mails_before = len(service.status_links())
    page.get_by_label("Kind").select_option("clarification")
    page.get_by_label("Message to the subject").fill(
        "Which of your two accounts should we search: the shop or the newsletter?"
    )
    page.get_by_role("button", name="Send message").click()
    expect(page.locator("#clock-state")).to_have_text("Clock stopped")
    save_screenshot(page, "console-request")

    # The subject follows the link in the question's mail, and answers on the page.
    link = wait_for_mail(service, mails_before + 1)[-1]
    assert link.startswith(service.base)
    subject_context = browser.new_context(viewport={"width": 390, "height": 844})
    subject_context.set_default_timeout(WAIT_MS)
    subject_page = subject_context.new_page()
    subject_page.goto(link)
    expect(subject_page.get_by_role("heading", level=1)).to_be_visible()
    assert overdue_id in subject_page.content()
    save_screenshot(subject_page, "status-page")
    subject_page.get_by_label("Your answer").fill("The shop account, please.")
    subject_page.get_by_role("button", name="Send answer").click()
    expect(subject_page.locator("#status")).not_to_contain_text("answer")
    subject_context.close()

    # Back in the console: the clock runs again, and the officer fulfils the request.
    page.reload()
    expect(page.locator("#clock-state")).to_have_text("Clock running")
    page.get_by_role("button", name="Fulfil", exact=True).click()
    deadline = utcnow() + timedelta(seconds=30)
    summary = page.locator("section[aria-labelledby=summary]")
    while "completed" not in summary.inner_text().lower():
        assert utcnow() < deadline, summary.inner_text()
        page.wait_for_timeout(500)
        page.reload()
    events = service.api("GET", f"/v1/requests/{overdue_id}/events").json()["items"]
    kinds = [event["type"] for event in events]
    for kind in ("request.paused", "request.resumed", "request.completed"):
        assert kind in kinds, kinds
    # Done in the console, audited as the person who did it.
    officer_events = [event for event in events if event["type"] == "request.paused"]
    assert officer_events[0]["actor"].startswith("usr_")

    # The figures for the regulator, with this month's completed request in the chart.
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    expect(page.locator("svg.chart")).to_be_visible()
    # The last twelve months and this one; this month's bar holds the letter.
    expect(page.locator("svg.chart rect")).to_have_count(13)
    assert float(page.locator("svg.chart rect").last.get_attribute("height") or 0) > 0
    save_screenshot(page, "console-reports")


def test_the_pages_load_without_a_failed_resource_or_a_blocked_script(
    service: Service, page: Page
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    email = "clean.officer@example.com"
    first_login(page, service.base, email, service.new_person(email))
    for path in ("/console", "/console/reports", "/console/suppression", "/console/account"):
        page.goto(f"{service.base}{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert problems == []
