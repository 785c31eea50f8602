"""Rendering the status page: Jinja2 templates (operator folder first), branding, headers.

Templates autoescape everything; a controller rewords the page by copying files from
``app/status_page/templates`` into DSR_PAGE_TEMPLATE_DIR (files not copied keep the built-in
wording), as for the mail templates.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from app.core.config import Settings

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLESHEET = Path(__file__).resolve().parent / "static" / "status.css"
STYLESHEET_PATH = "/status/static/status.css"

# No script at all, styles only from the service (the brand colour is in the stylesheet),
# forms post only back here, and no one may frame the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The link is the key: never sent on to another site, never cached, never indexed.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}


@lru_cache(maxsize=8)
def _environment(override_dir: str | None) -> jinja2.Environment:
    folders = [override_dir] if override_dir else []
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, str(BUILTIN_TEMPLATES)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, context: dict[str, Any], *, settings: Settings) -> str:
    environment = _environment(settings.page_template_dir)
    return environment.get_template(name).render(
        {"brand_name": settings.brand_name, "stylesheet": STYLESHEET_PATH, **context}
    )


def _relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    channels = []
    for start in (1, 3, 5):
        value = int(colour[start : start + 2], 16) / 255
        channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted(
        (_relative_luminance(first), _relative_luminance(second)), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


def text_on(colour: str) -> str:
    """White or black, whichever reads better on ``colour``."""
    white, black = "#ffffff", "#000000"
    return white if contrast_ratio(colour, white) >= contrast_ratio(colour, black) else black


def stylesheet(settings: Settings) -> str:
    """The page's stylesheet, with the brand colour and its text colour as custom properties."""
    brand = settings.brand_colour.lower()
    variables = f":root {{\n  --brand: {brand};\n  --on-brand: {text_on(brand)};\n}}\n\n"
    return variables + _stylesheet_body()


@lru_cache(maxsize=1)
def _stylesheet_body() -> str:
    return STYLESHEET.read_text(encoding="utf-8")
