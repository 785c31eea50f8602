"""The officer's API documentation pages (/docs, /redoc), served entirely by the service.

Swagger UI and ReDoc come from the pinned ``fastapi-offline`` package, not a CDN, so the pages
work inside a closed network; no inline script, so they work under a strict
Content-Security-Policy (scripts from the service only).
"""

from importlib import resources
from importlib.abc import Traversable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

from app.core.errors import NotFound

ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
_VENDORED = resources.files("fastapi_offline") / "static"
_OWN = resources.files("app.core") / "docs_assets"
# Only these files are served: no path from the URL ever reaches the file system.
ASSETS: dict[str, tuple[Traversable, str]] = {
    "swagger-ui-bundle.js": (_VENDORED / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_VENDORED / "swagger-ui.css", "text/css"),
    "redoc.standalone.js": (_VENDORED / "redoc.standalone.js", "text/javascript"),
    "favicon.png": (_VENDORED / "favicon.png", "image/png"),
    "swagger-init.js": (_OWN / "swagger-init.js", "text/javascript"),
}
# Styles may be inline (both UIs set them at run time); scripts, fonts and data only from here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
# The assets change only with the pinned package: let browsers keep them for a day.
_ASSET_HEADERS = {"Cache-Control": "public, max-age=86400"}


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(html, headers=_PAGE_HEADERS)


def install_api_docs(app: FastAPI) -> None:
    """Add /docs (Swagger UI), its OAuth2 redirect, /redoc and their assets to ``app``.

    Create the app with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not added.
    """
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{title} - Swagger UI",
            f'<link rel="stylesheet" href="{root}{ASSETS_PATH}/swagger-ui.css">\n'
            f'<link rel="icon" href="{root}{ASSETS_PATH}/favicon.png">\n',
            f'<div id="swagger-ui" data-openapi-url="{root}{app.openapi_url}" '
            f'data-oauth2-redirect-url="{root}{OAUTH2_REDIRECT_PATH}"></div>\n'
            f'<script src="{root}{ASSETS_PATH}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{root}{ASSETS_PATH}/swagger-init.js"></script>\n',
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        # Swagger's own page (an inline script): only for authorization-code flows, never ours.
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{title} - ReDoc",
            f'<link rel="icon" href="{root}{ASSETS_PATH}/favicon.png">\n',
            f'<redoc spec-url="{root}{app.openapi_url}"></redoc>\n'
            f'<script src="{root}{ASSETS_PATH}/redoc.standalone.js"></script>\n',
        )

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        asset = ASSETS.get(name)
        if asset is None:
            raise NotFound("No such documentation asset.")
        path, media_type = asset
        return Response(path.read_bytes(), media_type=media_type, headers=_ASSET_HEADERS)
