"""`/docs` (Swagger UI) and `/redoc` (ReDoc) from assets shipped in a Python package
(fastapi-offline's copies of swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js),
served by the service itself: the pages work on a trust network with no way out, and load
nothing from a CDN. The start-up code is a file of its own, so the pages need no inline script
and carry a strict Content-Security-Policy (scripts and connections to this origin only)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response

ASSETS = "/docs-assets"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
MEDIA[".png"] = "image/png"

SWAGGER_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
});
"""

REDOC_INIT = """window.addEventListener("load", function () {
  Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
});
"""


def _static_dir() -> Path:
    return Path(str(files("fastapi_offline").joinpath("static")))


def _page(title: str, head: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" type="image/png" href="{ASSETS}/favicon.png">{head}</head>'
        f"<body>{body}</body></html>"
    )


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (create the app with docs_url=None,
    redoc_url=None)."""
    static = _static_dir()
    assets: dict[str, tuple[bytes, str]] = {
        name: ((static / name).read_bytes(), MEDIA[Path(name).suffix])
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
    }
    assets["swagger-init.js"] = (SWAGGER_INIT.encode(), MEDIA[".js"])
    assets["redoc-init.js"] = (REDOC_INIT.encode(), MEDIA[".js"])
    title = app.title
    swagger = _page(
        f"{title} - API",
        f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">',
        f'<div id="swagger-ui"></div><script src="{ASSETS}/swagger-ui-bundle.js"></script>'
        f'<script src="{ASSETS}/swagger-init.js"></script>',
    )
    redoc = _page(
        f"{title} - API reference",
        "",
        f'<div id="redoc"></div><script src="{ASSETS}/redoc.standalone.js"></script>'
        f'<script src="{ASSETS}/redoc-init.js"></script>',
    )
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(swagger, headers=HEADERS)

    @router.get("/redoc")
    async def reference() -> HTMLResponse:
        return HTMLResponse(redoc, headers=HEADERS)

    @router.get(ASSETS + "/{name}")
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return Response(status_code=404)
        content, media = found
        return Response(
            content,
            media_type=media,
            headers={**HEADERS, "Cache-Control": "public, max-age=86400"},
        )

    app.include_router(router)
