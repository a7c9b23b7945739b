"""A subject asks who read its credit data: registry's own query log plus scoring's and
loans', fetched over HTTP with the caller's own token (so each service applies its own
access rules) and a short explicit timeout.

A service that does not answer makes the whole answer 503 rather than a partial list: a
subject told "nobody else read your data" must be able to rely on it (征信业管理条例 §17),
and a page missing one source could not be continued in order anyway.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import httpx
from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import context
from services.registry.domain.query_log import BadCursor, decode, merge
from services.registry.settings import RegistrySettings
from shared.audit import QueryPage, SubjectKind, own_queries
from shared.problems import Problem
from shared.tracing import instrument_client_for

SOURCES = ("registry", "scoring", "loans")
COLLECTIONS = {"household": "households", "business": "businesses"}


class _Unavailable(Exception):
    def __init__(self, service: str, reason: str, status: int = 503) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.status = status


async def _peer_page(
    request: Request,
    settings: RegistrySettings,
    service: Literal["scoring", "loans"],
    path: str,
    limit: int,
    after: str | None,
) -> QueryPage:
    url = settings.peer_url(service)
    params: dict[str, str | int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    headers = {"Authorization": request.headers.get("Authorization", "")}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=settings.peer_timeout_seconds) as client:
            instrument_client_for(request, client)
            response = await client.get(path, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise _Unavailable(service, f"{url} did not answer ({type(exc).__name__})") from exc
    if response.status_code in (401, 403):
        raise _Unavailable(service, f"{service} refused the caller ({response.status_code})", response.status_code)
    if response.status_code != 200:
        raise _Unavailable(service, f"{service} answered {response.status_code}")
    try:
        return QueryPage.model_validate_json(response.content)
    except ValidationError:
        raise _Unavailable(service, f"{service} answered something that is not a query page") from None


async def subject_queries(
    request: Request, session: AsyncSession, kind: SubjectKind, subject_id: str, limit: int, after: str | None
) -> QueryPage:
    try:
        cursor = decode(after, SOURCES)
    except BadCursor as exc:
        raise Problem(422, "VALIDATION_FAILED", "Invalid cursor", str(exc), field="after") from None
    settings = context.settings()
    path = f"/v1/{COLLECTIONS[kind]}/{subject_id}/queries"
    wanted = [s for s in SOURCES if s not in cursor.done]
    peers: list[Literal["scoring", "loans"]] = [s for s in ("scoring", "loans") if s in wanted]
    answers = await asyncio.gather(
        *(_peer_page(request, settings, s, path, limit, cursor.after.get(s)) for s in peers), return_exceptions=True
    )
    pages: dict[str, QueryPage] = {}
    failed: list[_Unavailable] = []
    for service, answer in zip(peers, answers, strict=True):
        if isinstance(answer, _Unavailable):
            failed.append(answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            pages[service] = answer
    if failed:
        if refused := [f for f in failed if f.status != 503]:
            code, title = ("FORBIDDEN", "Forbidden") if refused[0].status == 403 else ("UNAUTHENTICATED", "Refused")
            raise Problem(refused[0].status, code, title, refused[0].reason)
        raise Problem(
            503,
            "QUERY_LOG_UNAVAILABLE",
            "Query log incomplete",
            "; ".join(f.reason for f in failed) + ". Nothing is listed rather than a partial log; try again.",
            unavailable=[f.service for f in failed],
        )
    if "registry" in wanted:
        after_id = cursor.after.get("registry")
        pages["registry"] = await own_queries(
            session, "registry", subject_id, limit, int(after_id) if after_id is not None else None
        )
    return merge(pages, cursor, limit, SOURCES)
