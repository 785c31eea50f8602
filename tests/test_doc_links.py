"""Every relative link and image in the README and docs/ points at a file that exists (the
screenshots in docs/images/ included, which the browser tests take)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target); the target up to a space, ')' or '#'.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_and_images_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = [target for target in LINK.findall(text) if "://" not in target]
    missing = [target for target in targets if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_console_guide_shows_the_screenshots() -> None:
    guide = (ROOT / "docs" / "console.md").read_text(encoding="utf-8")
    for name in ("console-board", "console-request", "console-reports", "status-page"):
        assert f"](images/{name}.png)" in guide
