"""The OAuth2 token endpoint (client credentials grant, RFC 6749 §4.4) and the public keys
that verify its tokens (JWKS). Served by every service, so a client needs one base URL."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Header, Request
from pydantic import BaseModel

from shared.auth import SCOPES, Authenticator, Unauthenticated
from shared.openapi import problems
from shared.problems import Problem
from shared.web import TOKEN_PATH


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


def _oauth_error(status: int, error: str, detail: str, **headers: str) -> Problem:
    # RFC 6749 §5.2 clients look for "error"; our clients look for "code": both are there.
    return Problem(status, error.upper(), "Token request refused", detail, headers=headers or None, error=error)


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def token_router() -> APIRouter:
    router = APIRouter(tags=["auth"])

    @router.post(
        TOKEN_PATH,
        response_model=TokenOut,
        summary="Exchange a client's id and secret for a short-lived access token (client credentials)",
        responses=problems(
            {400: ["INVALID_SCOPE", "UNSUPPORTED_GRANT_TYPE"], 401: ["INVALID_CLIENT"]},
            {400: "Unsupported grant or scope (RFC 6749 `error` beside `code`)", 401: "Invalid client"},
        ),
    )
    async def issue_token(
        request: Request,
        grant_type: Annotated[str, Form(max_length=64)],
        client_id: Annotated[str | None, Form(max_length=64)] = None,
        client_secret: Annotated[str | None, Form(max_length=128)] = None,
        scope: Annotated[str | None, Form(max_length=2000)] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> TokenOut:
        if grant_type != "client_credentials":
            raise _oauth_error(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported.")
        basic = _basic(authorization)
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            detail = "Send client_id and client_secret (form or HTTP Basic)."
            raise _oauth_error(401, "invalid_client", detail, **{"WWW-Authenticate": "Basic"})
        requested = frozenset(scope.split()) if scope else None
        if requested is not None and not requested <= SCOPES.keys():
            unknown = ", ".join(sorted(requested - SCOPES.keys()))
            raise _oauth_error(400, "invalid_scope", f"Unknown scope: {unknown}.")
        authenticator: Authenticator = request.app.state.authenticator
        try:
            token, expires_in, principal = authenticator.issue(
                client_id, client_secret, requested, request.app.state.runtime.common.jwt_ttl_seconds
            )
        except Unauthenticated as exc:
            raise _oauth_error(401, "invalid_client", str(exc), **{"WWW-Authenticate": "Basic"}) from None
        if requested is not None and requested - principal.scopes:
            refused = ", ".join(sorted(requested - principal.scopes))
            raise _oauth_error(400, "invalid_scope", f"The client may not have: {refused}.")
        return TokenOut(access_token=token, expires_in=expires_in, scope=" ".join(sorted(principal.scopes)))

    @router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens (JWKS)")
    async def jwks(request: Request) -> dict[str, Any]:
        authenticator: Authenticator = request.app.state.authenticator
        return authenticator.keys.jwks()

    return router
