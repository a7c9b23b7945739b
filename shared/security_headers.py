"""Browser security headers on every answer of every service, as pure ASGI middleware.

- ``Content-Security-Policy``: scripts, styles and fetches from the service's own origin
  only, no inline script or style (``'unsafe-inline'`` never appears), no plugins, no
  ``<base>``, and no framing (``frame-ancestors 'none'``). The notify dashboard keeps its
  script and style in static files for this (services/notify/static/); a JSON answer runs
  nothing, so one policy serves both.
- ``X-Frame-Options: DENY``: the same refusal of framing for browsers without CSP level 2.
- ``X-Content-Type-Options: nosniff``: a JSON answer is never run as a script or page.
- ``Referrer-Policy: no-referrer``: no URL of ours leaves with a link followed from a page.

FastAPI's API documentation pages (``/docs``, ``/docs/oauth2-redirect``, ``/redoc``) load
their viewer from a CDN and configure it in an inline script built from the app's own
constants (its OpenAPI URL and title, no request input). They get their own policy: the CDN,
and exactly their inline scripts and styles by SHA-256 hash, never ``'unsafe-inline'``.

The unexpected-error handler (shared/web.py) answers from Starlette's outermost layer, past
this middleware, so it adds ``HEADERS`` itself.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
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

# Where FastAPI's documentation pages fetch their viewer (fastapi.openapi.docs).
_DOCS_ORIGINS = "https://cdn.jsdelivr.net"
_DOCS_ASSETS = "https://fastapi.tiangolo.com https://fonts.googleapis.com https://fonts.gstatic.com"
_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


def docs_policy(html: bytes) -> str:
    """The policy of one documentation page: its inline blocks pinned by hash."""
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for kind, body in _INLINE.findall(html):
        hashes[kind].append("'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'")
    return "; ".join(
        (
            "default-src 'none'",
            " ".join(("script-src", _DOCS_ORIGINS, *hashes[b"script"])),
            " ".join(("style-src", _DOCS_ORIGINS, _DOCS_ASSETS, *hashes[b"style"])),
            f"img-src 'self' data: {_DOCS_ORIGINS} {_DOCS_ASSETS}",
            f"font-src {_DOCS_ASSETS}",
            f"worker-src blob: {_DOCS_ORIGINS}",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Sets ``HEADERS`` on every HTTP answer; ``docs_paths`` get ``docs_policy`` instead of
    ``CSP`` (their bodies are small, generated pages: buffered to be hashed)."""

    def __init__(self, app: ASGIApp, docs_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        body = b""

        async def buffered(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body", False):
                return
            assert start is not None
            headers = MutableHeaders(scope=start)
            for name, value in HEADERS.items():
                headers[name] = value
            headers["Content-Security-Policy"] = docs_policy(body)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
