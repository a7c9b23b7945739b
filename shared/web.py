"""HTTP conventions of API.md shared by every service: RFC 9457 problem responses with a
stable ``code``, bearer-token authentication with per-endpoint scopes, health and readiness
endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Security, params
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import OAuth2, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from shared.auth import SCOPES, Authenticator, Principal, Unauthenticated
from shared.db import unavailable
from shared.openapi import problems
from shared.problems import Problem, problem_response
from shared.ratelimit import enforce_rate_limit
from shared.security_headers import HEADERS as SECURITY_HEADERS

log = logging.getLogger(__name__)

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
        if unavailable(exc):
            # A restart or failover of the database: the transaction rolled back (or its
            # outcome is unknown), so the client may retry, with the same Idempotency-Key.
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            response = problem_response(
                503,
                "DATABASE_UNAVAILABLE",
                "Service unavailable",
                "The database could not be reached; retry with the same Idempotency-Key.",
                request.url.path,
            )
            response.headers["Retry-After"] = "1"
            response.headers.update(SECURITY_HEADERS)
            return response
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = problem_response(
            500, "INTERNAL_ERROR", "Internal error", "The request failed; nothing was changed.", request.url.path
        )
        # Starlette answers this one from outside the middleware that adds them to the rest.
        response.headers.update(SECURITY_HEADERS)
        return response


class _ClientCredentials(OAuth2):
    """The bearer token of every request: a JWT from ``POST /v1/oauth/token``, an API key,
    or (first setup only) the bootstrap token. Declared as OAuth2 client credentials so
    the OpenAPI documents each operation's scopes and /docs can fetch a token."""

    def __init__(self) -> None:
        flows = OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_PATH, scopes=SCOPES))
        super().__init__(flows=flows, scheme_name="oauth2", auto_error=False)

    async def __call__(self, request: HTTPConnection) -> str | None:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        return token if scheme.lower() == "bearer" and token else None


TOKEN_PATH = "/v1/oauth/token"
bearer_token = _ClientCredentials()


async def authorize(
    request: Request, security_scopes: SecurityScopes, token: Annotated[str | None, Depends(bearer_token)]
) -> Principal:
    """Who is calling (401 if nobody we know), and may they do this (403)."""
    if token is None:
        raise Problem(
            401,
            "UNAUTHENTICATED",
            "Authentication required",
            "Send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = authenticator.resolve(token)
    except Unauthenticated as exc:
        raise Problem(
            401,
            "INVALID_TOKEN",
            "Invalid token",
            str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    missing = [s for s in security_scopes.scopes if not principal.may(s)]
    if missing:
        raise Problem(
            403,
            "FORBIDDEN",
            "Forbidden",
            f"This needs the scope {', '.join(missing)}, which {principal.name} does not hold.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(missing)}"'},
            required_scopes=missing,
        )
    request.state.principal = principal
    await enforce_rate_limit(request, principal)
    return principal


def scope(name: str) -> Any:
    """The scope an endpoint needs: ``@router.get(..., dependencies=[scope("ratings:read")])``."""
    if name not in SCOPES:
        raise ValueError(f"unknown scope {name}")
    return Security(authorize, scopes=[name])


def declared_scope(route: APIRoute) -> str | None:
    for dep in route.dependencies:
        if isinstance(dep, params.Security) and dep.dependency is authorize and dep.scopes:
            return dep.scopes[0]
    return None


def current_principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def within_binding(principal: Principal, *, village: str | None, household: str | None = None) -> bool:
    """Whether a thing of ``village`` (and of ``household``, if it is one's) is within what a
    bound credential reaches: a collector's its village, a subject's its household."""
    if principal.village is not None and village != principal.village:
        return False
    return principal.household is None or household == principal.household


def ensure_visible(
    principal: Principal, not_found: Problem, *, village: str | None, household: str | None = None
) -> None:
    """For a thing the request names by id (a household, a rating, a loan, an objection):
    outside the credential's binding it answers exactly as a missing one, ``not_found``, so
    a bound credential cannot tell another village's household from none (issue 21)."""
    if not within_binding(principal, village=village, household=household):
        raise not_found


def ensure_bound(principal: Principal, *, village: str | None, household: str | None = None) -> None:
    """A collector's credential works for its village only, a subject's for its household.
    A clear 403, for a village the request names itself (villages are published, so the
    refusal tells nothing); a thing named by id is checked with ``ensure_visible`` instead."""
    if principal.village is not None and village != principal.village:
        raise Problem(
            403,
            "OUTSIDE_YOUR_VILLAGE",
            "Outside your village",
            f"This credential works for village {principal.village} only.",
        )
    if principal.household is not None and household != principal.household:
        raise Problem(
            403, "NOT_YOUR_HOUSEHOLD", "Not your household", "This credential works for its own household only."
        )


def ensure_second_principal(principal: Principal, proposed_by: str | None, proposal: str) -> None:
    """Four eyes: whoever proposed something never decides it, whatever roles its key holds.

    Compared by the credential's name, the stable identity, not by role: one key may hold
    both the proposing and the deciding role (a bank that is also the district's agent), and
    two keys may share a role. Not a setting: it is a control, not a preference. Its source:
    004 §7(5) 双控 (loans examined and approved "按审贷程序审查审批", review apart from
    approval) and §7(2) 双签 (parties that "相互监督履责"), and DOMAIN.md §7's extension,
    "proposed by the bank, approved by a second principal"."""
    if proposed_by is not None and principal.name == proposed_by:
        raise Problem(
            409,
            "FOUR_EYES_REQUIRED",
            "A second principal must decide",
            f"{principal.name} made this {proposal}; another principal must decide it.",
            proposed_by=proposed_by,
        )


def require_role(principal: Principal, *roles: str) -> None:
    """For checks finer than an endpoint's scope, e.g. which party may settle which claim."""
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

    @router.get(
        "/healthz", summary="The process is alive", response_model=None, responses=problems({503: ["NOT_LIVE"]})
    )
    async def healthz(request: Request) -> JSONResponse | dict[str, str]:
        failing = request.app.state.runtime.check_alive()
        if not failing:
            return {"status": "ok"}
        return problem_response(
            503,
            "NOT_LIVE",
            "Not live",
            "; ".join(f"{k}: {v}" for k, v in failing.items()),
            request.url.path,
            checks=failing,
        )

    @router.get(
        "/readyz",
        summary="Database and bus are reachable",
        response_model=None,
        responses=problems({503: ["NOT_READY"]}),
    )
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
