"""JSON request bodies with a key twice are refused, on every route of every service.

``json.loads`` keeps the last of two equal keys, so ``{"amount": "1.00", "amount":
"99999.00"}`` reads as 99,999.00 here while a gateway, a log or an auditor reading the same
bytes may see 1.00. RFC 8259 §4 leaves such objects' meaning to the parser; we do not guess:
a duplicate key anywhere in the document, in a nested object too, is a 422
``VALIDATION_FAILED`` naming the key's path (``profile.equipment.0.value``), before any
endpoint, idempotency key or body hash sees the request.

Pure ASGI middleware, inside the body size limit (which bounds what it buffers). It reads a
body only when FastAPI would parse it as JSON (no ``Content-Type``, or one that names JSON);
file uploads (multipart) stream through untouched. A body that is not valid JSON is passed
on as it is, for FastAPI to refuse in its usual way.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import problem_response

__all__ = ["DuplicateKeys", "duplicate_key_path"]


class _Duplicated(dict[str, Any]):
    """An object of the document that had ``key`` twice (its other pairs as parsed)."""

    def __init__(self, key: str, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.key = key


def _hook(found: list[bool]) -> Any:
    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                found[0] = True
                return _Duplicated(key, pairs)
            seen.add(key)
        return dict(pairs)

    return pairs_hook


def _path_of(value: Any, path: list[str]) -> list[str] | None:
    if isinstance(value, _Duplicated):
        return [*path, value.key]
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (found := _path_of(item, [*path, str(key)])) is not None:
            return found
    return None


def duplicate_key_path(body: bytes | str) -> str | None:
    """The dotted path of the first key that appears twice in one object (``"amount"``,
    ``"members.1.id_number"``), or None when there is none or the body is not JSON."""
    found = [False]
    try:
        document = json.loads(body, object_pairs_hook=_hook(found))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    if not found[0]:
        return None
    try:
        path = _path_of(document, [])
    except RecursionError:
        path = None
    return ".".join(path) if path else "body"


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            # A superset of FastAPI's test (application/json, application/*+json): refusing a
            # duplicate key in a body it would not parse as JSON costs nothing.
            return b"json" in value.lower()
    return True  # FastAPI parses a body without a Content-Type as JSON


class DuplicateKeys:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and (path := duplicate_key_path(body)) is not None:
            message_text = f"the key {path.rpartition('.')[2]!r} appears more than once in one JSON object"
            response = problem_response(
                422,
                "VALIDATION_FAILED",
                "Invalid request",
                f"Invalid: {path} ({message_text})",
                scope["path"],
                field=path,
                errors=[{"field": path, "message": message_text, "type": "duplicate_key"}],
            )
            await response(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
