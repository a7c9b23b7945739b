"""HTTP conventions of API.md shared by every service: RFC 9457 problem responses with a
stable ``code``, bearer-token authentication, health and readiness endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.auth import Principal
from shared.ratelimit import enforce_rate_limit

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://vcredit.example/problems/"

_STATUS_CODES = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHENTICATED", "Authentication required"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    409: ("CONFLICT", "Conflict"),
    413: ("PAYLOAD_TOO_LARGE", "Payload too large"),
    422: ("VALIDATION_FAILED", "Invalid request"),
    429: ("RATE_LIMITED", "Too many requests"),
    503: ("UNAVAILABLE", "Service unavailable"),
}


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
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "township_code") -> "township_code"; keep query/path prefixes visible.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        response = problem_response(exc.status, exc.code, exc.title, exc.detail, request.url.path, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(tuple(e["loc"])), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem_response(
            422, "VALIDATION_FAILED", "Invalid request", f"Invalid: {fields}", request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _STATUS_CODES.get(exc.status_code, ("HTTP_ERROR", "HTTP error"))
        response = problem_response(exc.status_code, code, title, str(exc.detail), request.url.path)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "INTERNAL_ERROR", "Internal error", "The request failed; nothing was changed.", request.url.path
        )


_bearer = HTTPBearer(auto_error=False)


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Resolve the bearer token to a principal (request.state.principal)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(
            401,
            "UNAUTHENTICATED",
            "Authentication required",
            "Send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal: Principal | None = request.app.state.keyring.resolve(credentials.credentials)
    if principal is None:
        raise Problem(
            401,
            "INVALID_TOKEN",
            "Invalid token",
            "The bearer token is not valid.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.principal = principal
    await enforce_rate_limit(request, principal)
    return principal


def current_principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(principal: Principal, *roles: str) -> None:
    if not any(principal.has(r) for r in roles):
        raise Problem(403, "FORBIDDEN", "Forbidden", f"This needs one of the roles: {', '.join(roles)}.")


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; endpoints open their own transaction with ``session.begin()``."""
    async with request.app.state.runtime.sessions() as session:
        yield session


async def db_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for requests that only read; it never waits for a writer."""
    async with request.app.state.runtime.read_sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]
ReadSession = Annotated[AsyncSession, Depends(db_read_session)]


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Database and bus are reachable", response_model=None)
    async def readyz(request: Request) -> JSONResponse | dict[str, Any]:
        checks = await request.app.state.runtime.check_ready()
        if all(v == "ok" for v in checks.values()):
            return {"status": "ok", "checks": checks}
        return problem_response(
            503,
            "NOT_READY",
            "Not ready",
            "; ".join(f"{k}: {v}" for k, v in checks.items()),
            request.url.path,
            checks=checks,
        )

    return router
