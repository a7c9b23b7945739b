"""``Idempotency-Key`` for POSTs that create things or move money (API.md conventions).

``idempotent`` runs a request's work in one transaction: the key is claimed at its start
and the response stored at its end, so a replay returns the first result and a request
that failed leaves no claim behind. On PostgreSQL a concurrent request with the same key
waits on the claim's primary key and then replays the committed response. A key is
scoped by the caller and the request's method and path (``_scope``): two clients that
happen to pick the same key each get their own answer, never the other's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.db import insert_ignore
from shared.platform_tables import IDEMPOTENCY_SCOPE_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, idempotency_keys
from shared.problems import Problem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = MAX_IDEMPOTENCY_KEY_LENGTH
_SCOPE_LENGTH = IDEMPOTENCY_SCOPE_LENGTH

Out = TypeVar("Out", bound=BaseModel)


async def _declared_key(
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Optional: a key of your choosing, 1 to "
            f"{MAX_KEY_LENGTH} characters; a retry with the same key and body returns the first answer "
            "(header Idempotent-Replayed: true), the same key with another body is 409 IDEMPOTENCY_KEY_REUSED.",
            # Documented only: _claim checks it, with the code and field API.md gives.
            json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH},
        ),
    ] = None,
) -> None:
    """Declares the header in the route's OpenAPI, so generated clients can send it. A
    coroutine: FastAPI runs a plain function dependency in its thread pool, a thread hop per
    request for nothing (2.8% of a repayment's CPU, issue 27)."""


# ``dependencies=[scope(...), IDEMPOTENCY_KEY]`` on every route that calls ``idempotent``
# (tests/unit/project/test_openapi_contract.py checks that none is missing).
IDEMPOTENCY_KEY = Depends(_declared_key)


async def idempotent(
    session: AsyncSession,
    request: Request,
    body: BaseModel | None,
    work: Callable[[], Awaitable[Out]],
    *,
    status: int,
    last: Callable[[], Awaitable[None]] | None = None,
) -> Out | JSONResponse:
    """``work()``'s answer, or the stored answer of the first request with this key.

    Opens the session's transaction: claim, ``work``, remember and commit are one unit, so
    an exception from ``work`` rolls the claim back with the rest. ``status`` is the
    route's success status, replayed with the body. ``last``, if given, runs after the
    answer is stored, just before the commit: a check under a lock that every request of
    the route queues on (a drawdown's fund row) then holds it only for itself and the
    commit; an exception from it rolls back the stored answer with the rest."""
    async with session.begin():
        if (replay := await _claim(session, request, body)) is not None:
            return replay
        out = await work()
        await _remember(session, request, status, out)
        if last is not None:
            await last()
    return out


def _scope(request: Request) -> str:
    """Whose key this is: the authenticated principal's name (a credential's name is unique
    among active credentials and survives re-issuing its secret) and the route. The scope is
    part of the table's primary key, so keys of different principals never meet. Routes that
    take a key all declare a scope, so the principal is always known here; a route without
    one would be a bug, and sharing its keys between callers is the leak this prevents."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise RuntimeError(f"{HEADER} on {request.url.path}, a route without an authenticated principal")
    scope = f"{principal.name} {request.method} {request.url.path}"
    # The column holds 255 characters; a long path (path parameters) keeps its identity hashed.
    return scope if len(scope) <= _SCOPE_LENGTH else "sha256:" + hashlib.sha256(scope.encode()).hexdigest()


def _hash(body: BaseModel | None) -> str:
    raw = body.model_dump_json() if body is not None else ""
    return hashlib.sha256(raw.encode()).hexdigest()


async def _claim(session: AsyncSession, request: Request, body: BaseModel | None) -> JSONResponse | None:
    """Claim the request's key; return the stored response if the key was used before."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            422,
            "VALIDATION_FAILED",
            "Invalid request",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
            field=HEADER,
        )
    request_hash = _hash(body)
    values = {"scope": _scope(request), "key": key, "request_hash": request_hash, "created_at": datetime.now(UTC)}
    if await insert_ignore(session, idempotency_keys, values):
        request.state.idempotency_key = key
        return None
    t = idempotency_keys.c
    row = (
        await session.execute(
            select(t.request_hash, t.status_code, t.response).where(t.scope == values["scope"], t.key == key)
        )
    ).one()
    if row.request_hash != request_hash:
        raise Problem(
            409,
            "IDEMPOTENCY_KEY_REUSED",
            "Idempotency key reused",
            f"{HEADER} {key!r} was used with a different request body.",
        )
    if row.status_code is None:  # only possible on SQLite without BEGIN IMMEDIATE
        raise Problem(
            409,
            "IDEMPOTENT_REQUEST_IN_PROGRESS",
            "Request in progress",
            f"A request with {HEADER} {key!r} is still running.",
        )
    return JSONResponse(json.loads(row.response), status_code=row.status_code, headers={"Idempotent-Replayed": "true"})


# The UPDATE storing an answer, its values bound by name: ``_remember`` runs it, and a
# ``work`` that runs it within a statement of its own binds ``remembering``'s values.
REMEMBER = (
    update(idempotency_keys)
    .where(
        idempotency_keys.c.scope == bindparam("idempotency_scope"),
        idempotency_keys.c.key == bindparam("idempotency_key"),
    )
    .values(status_code=bindparam("idempotency_status"), response=bindparam("idempotency_response"))
)


async def _remember(session: AsyncSession, request: Request, status_code: int, content: Any) -> None:
    """Store the response for the claimed key (no-op without a key, or when the work stored
    it in a statement of its own: ``remembering``)."""
    if getattr(request.state, "idempotency_remembered", False):
        return
    if (values := _remembered(request, status_code, content)) is not None:
        await session.execute(REMEMBER, values)


def remembering(request: Request, status_code: int, content: Any) -> dict[str, object] | None:
    """``REMEMBER``'s values storing ``content`` as the answer to the claimed key (None: no
    key), for a ``work`` that runs it within its own last statement (a data-modifying CTE,
    one round trip fewer: services/loans/repayment_statement.py, issue 27); ``idempotent``
    then does not store it again. ``status_code`` is the route's, as given to
    ``idempotent``. The caller must run the statement in the same transaction (or fail it):
    the answer counts as stored once its values are handed out."""
    values = _remembered(request, status_code, content)
    if values is not None:
        request.state.idempotency_remembered = True
    return values


def _remembered(request: Request, status_code: int, content: Any) -> dict[str, object] | None:
    key = getattr(request.state, "idempotency_key", None)
    if key is None:
        return None
    return {
        "idempotency_scope": _scope(request),
        "idempotency_key": key,
        "idempotency_status": status_code,
        "idempotency_response": json.dumps(jsonable_encoder(content)),
    }
