"""Browser security headers on every answer of every service, as pure ASGI middleware.

- ``Content-Security-Policy``: scripts, styles and fetches from the service's own origin
  only, no inline script or style (``'unsafe-inline'`` never appears), no plugins, no
  ``<base>``, and no framing (``frame-ancestors 'none'``). The notify dashboard keeps its
  script and style in static files for this (services/notify/static/), and so does the API
  documentation page ``/docs`` (shared/api_docs.py: Swagger UI served locally); a JSON answer
  runs nothing, so one policy serves all. Images may also be ``data:`` URLs (Swagger UI's
  icons).
- ``X-Frame-Options: DENY``: the same refusal of framing for browsers without CSP level 2.
- ``X-Content-Type-Options: nosniff``: a JSON answer is never run as a script or page.
- ``Referrer-Policy: no-referrer``: no URL of ours leaves with a link followed from a page.

The unexpected-error handler (shared/web.py) answers from Starlette's outermost layer, past
this middleware, so it adds ``HEADERS`` itself.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # data: images only: Swagger UI's stylesheet draws its icons as data: SVG and PNG
        # (shared/api_docs.py). An image, SVG included, runs no script, and a data: URL
        # reaches no other host, so this opens no way in or out.
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Sets ``HEADERS`` on every HTTP answer, the API documentation page included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
