"""``GET /docs``: Swagger UI served by the service itself, so the API documentation works on
a machine without internet and under the same strict Content-Security-Policy as every other
answer (shared/security_headers.py: no inline script or style, nothing from elsewhere).

FastAPI's own ``/docs`` loads Swagger UI from a CDN (a blank page offline) and configures
it in an inline script; its ``/redoc`` and ``/docs/oauth2-redirect`` are not served:

- Swagger UI comes from the ``fastapi-swagger`` package's ``resources/`` (its bundle and
  stylesheet, the swagger-ui-dist build, Apache-2.0): a PyPI package released with each
  swagger-ui-dist release, so ``pip`` keeps it current and the wheel carries no 1.5 MB copy
  of ours. Only its files are used; its ``patch_fastapi`` renders FastAPI's inline script.
- The page's own start-up code is a static file (``api_docs_static/swagger-init.js``).
- ReDoc is dropped: API.md names ``/docs`` only, and ReDoc injects ``<style>`` elements at
  run time, which the policy refuses (it would need ``'unsafe-inline'`` styles).
- The OAuth2 redirect page serves only the authorization-code and implicit flows; the API
  declares client credentials alone (shared/web.py), which Swagger UI runs by fetching the
  token endpoint directly.

Every URL in the page is relative, so the documentation also works behind a proxy that
serves the service under a path prefix.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from shared.problems import Problem

DOCS_PATH = "/docs"
OWN = Path(__file__).parent / "api_docs_static"
SWAGGER_UI = Path(str(resources.files("fastapi_swagger") / "resources"))
# name -> (folder, media type): the only files served; any other name is a 404.
ASSETS = {
    "swagger-ui-bundle.js": (SWAGGER_UI, "application/javascript"),
    "swagger-ui.css": (SWAGGER_UI, "text/css"),
    "favicon-32x32.png": (SWAGGER_UI, "image/png"),
    "swagger-init.js": (OWN, "application/javascript"),
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/swagger-init.js"></script>
</body>
</html>
"""


def docs_router(title: str) -> APIRouter:
    """The page and its assets, public like ``/openapi.json`` (they hold no data)."""
    router = APIRouter(include_in_schema=False)
    page = _PAGE.format(title=html.escape(f"{title} - API"))

    @router.get(DOCS_PATH, response_class=HTMLResponse)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get(DOCS_PATH + "/assets/{name}")
    async def api_docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise Problem(404, "NOT_FOUND", "Not found", f"No documentation asset {name}.")
        folder, media_type = ASSETS[name]
        return FileResponse(folder / name, media_type=media_type)

    return router
