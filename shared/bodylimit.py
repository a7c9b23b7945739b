"""Request body size limit, as pure ASGI middleware in front of every service.

A declared ``Content-Length`` over the limit is refused before the app runs. A body without
one (chunked transfer encoding) is counted as it streams through ``receive``; the moment it
passes the limit, reading it raises ``BodyTooLarge``, so no body is ever held whole before
it is measured. Routes that legitimately take files (registry's sheet import) get their own,
larger limit through ``ServiceSpec.uploads``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import problem_response


class BodyTooLarge(HTTPException):
    """Raised while the app reads the body. An HTTPException so that FastAPI's body parsing
    re-raises it untouched (it turns other errors into a 400) and the problem handlers render
    it; the middleware answers it itself if it escapes them."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes.")
        self.limit = limit


def compile_routes(routes: Sequence[str]) -> list[tuple[str, re.Pattern[str]]]:
    """``"POST /v1/villages/{code}/households/import"`` -> (method, path regex)."""
    compiled = []
    for route in routes:
        method, _, path = route.partition(" ")
        regex, _, _ = compile_path(path)
        compiled.append((method.upper(), regex))
    return compiled


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int, uploads: Sequence[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.uploads = compile_routes(uploads)

    def limit_for(self, scope: Scope) -> int:
        for method, regex in self.uploads:
            if scope["method"] == method and regex.match(scope["path"]):
                return self.upload_max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(limit, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(
        413, "PAYLOAD_TOO_LARGE", "Payload too large", f"The request body exceeds {limit} bytes.", scope["path"]
    )
    await response(scope, receive, send)
