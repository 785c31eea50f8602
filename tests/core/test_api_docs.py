"""/docs and /redoc work without internet and under a strict Content-Security-Policy."""

import re

import pytest
from httpx import AsyncClient

from app.core.errors import PROBLEM_JSON

PAGES = ["/docs", "/redoc"]


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url|data-openapi-url)="([^"]*)"', html)


@pytest.mark.parametrize("page", PAGES)
async def test_docs_pages_load_everything_from_the_service(client: AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    references = _references(html)
    assert references
    for reference in references:
        # No CDN, no fonts service: every asset is a path on this service.
        assert reference.startswith("/") and not reference.startswith("//"), reference
        fetched = await client.get(reference)
        assert fetched.status_code == 200, reference
        assert fetched.content, reference
    assert "/openapi.json" in references
    # Every script is a file: an inline one would need 'unsafe-inline' in the policy.
    for attributes, content in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert 'src="' in attributes and not content.strip()


@pytest.mark.parametrize("page", PAGES)
async def test_docs_pages_send_a_strict_content_security_policy(
    client: AsyncClient, page: str
) -> None:
    policy = (await client.get(page)).headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


async def test_docs_assets_have_their_types_and_nothing_else_is_served(
    client: AsyncClient,
) -> None:
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content
    css = await client.get("/docs/assets/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    for name in ["nope.js", "..%2F..%2Fmain.py", "%2E%2E%2Fapi_docs.py"]:
        missing = await client.get(f"/docs/assets/{name}")
        assert missing.status_code == 404, name
        assert missing.headers["content-type"].startswith(PROBLEM_JSON)
