"""RFC 9457 problem responses with a stable ``code`` (API.md conventions): the exception a
handler raises to refuse a request, and the document it is rendered as.

A leaf of shared/ (it imports only FastAPI and shared.redaction), so that modules below
the web layer (idempotency, the services' domain code) can refuse without importing
shared.web; shared.web installs the handlers that render a Problem.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from shared.redaction import mask_resident_ids

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://vcredit.example/problems/"


class Problem(Exception):
    """A refusal the client can act on; rendered as application/problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int, code: str, title: str, detail: str = "", instance: str | None = None, **extra: Any
) -> JSONResponse:
    body = problem_body(status, code, title, detail, instance, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problem_body(
    status: int, code: str, title: str, detail: str = "", instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An RFC 9457 problem document; also one item's refusal inside a batch's answer."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "code": code,
        "detail": detail or title,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    # A detail or path may quote what the client sent: never a full ID number back.
    masked: dict[str, Any] = _masked(body)
    return masked


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_resident_ids(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value
