"""What docs/ shows an integrator is what the service answers."""

import json
import re
from pathlib import Path

from httpx import AsyncClient

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _section(document: str, heading: str) -> str:
    text = (DOCS / document).read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


async def test_the_validation_error_example_is_what_the_api_answers(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    section = _section("integrations.md", "Errors")
    (example,) = re.findall(r"```json\n(.*?)```", section, re.S)
    documented = json.loads(example)
    response = await client.post(
        "/v1/requests",
        headers=officer_headers,
        json={"type": "access", "subject": {"email": "not-an-address"}},
    )
    assert response.status_code == documented["status"]
    assert response.json() == documented


def test_the_suppression_section_says_fulfilment_adds_entries() -> None:
    section = _section("integrations.md", "Checking suppression before importing contacts")
    assert "once fulfilment arrives" not in section
    assert "subject.suppressed" in section
