"""Query audit (征信业管理条例 §18, §22): every read of a subject's credit data records who
read it, when, what, and the purpose the caller states in ``X-Query-Purpose``.

The row is written in the serving service's own database, in its own short transaction,
before the response leaves: the endpoints read through read-only sessions (which never wait
for a writer), so the audit commits separately, and a read whose audit cannot be committed
fails instead of disclosing unrecorded data. Only reads that disclose something are
recorded: a refused (401/403/422) or not-found read returns no credit data, and a row keyed
by an unknown id would be one no subject could ever list.

Each of registry, scoring and loans keeps a ``query_log`` table (the same Table copied into
its metadata, like the outbox) and serves ``GET /v1/{households|businesses}/{id}/queries``
listing its own rows; registry's endpoint also gathers scoring's and loans' rows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.db import BIGINT_MAX, BigIntPK, new_metadata, transaction
from shared.openapi import REQUIRED_HEADER, problems
from shared.paging import Limit
from shared.problems import Problem
from shared.timestamps import UtcDateTime
from shared.web import CurrentPrincipal, ReadSession, ensure_bound, scope

HEADER = "X-Query-Purpose"
MAX_PURPOSE = 200
SubjectKind = Literal["household", "business"]

AUDIT_TABLES = new_metadata()

query_log = Table(
    "query_log",
    AUDIT_TABLES,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(36), nullable=False),
    # Principal names are not bounded by the key configuration; an audit row must never
    # fail for a long one.
    Column("principal", Text, nullable=False),
    Column("roles", Text, nullable=False),  # sorted, comma-separated
    Column("endpoint", String(200), nullable=False),  # "GET /v1/loans/{loan_id}"
    Column("resource_id", String(64), nullable=False),
    Column("purpose", String(MAX_PURPOSE), nullable=False),
    Column("queried_at", DateTime(timezone=True), nullable=False),
    # A subject's rows, newest first.
    Index("ix_query_log_subject", "subject_id", "id"),
)


def include_query_log(metadata: MetaData) -> None:
    query_log.to_metadata(metadata)


# --- the purpose -----------------------------------------------------------------------------


def parse_purpose(raw: str | None) -> str:
    """The stated purpose, percent-decoded (headers are ASCII, purposes are often Chinese).
    Raises Problem 422 when it is missing, blank, too long, not UTF-8 or has control characters.

    422, not 428: 428 Precondition Required is for conditional requests (If-Match); a missing
    purpose is bad input, which API.md answers with 422 naming the field."""
    if raw is None or not raw.strip():
        raise Problem(
            422,
            "QUERY_PURPOSE_REQUIRED",
            "Query purpose required",
            f"Reading a subject's credit data needs its purpose in {HEADER} (征信业管理条例 §18, §20), "
            "percent-encoded UTF-8, e.g. 贷前审查 as %E8%B4%B7%E5%89%8D%E5%AE%A1%E6%9F%A5.",
            field=HEADER,
        )
    try:
        if raw.isascii():
            purpose = unquote(raw, errors="strict").strip()
        else:
            # Sent as raw UTF-8 (curl does): the server decoded the bytes as Latin-1.
            purpose = raw.encode("latin-1").decode("utf-8").strip()
    except UnicodeError:
        raise _invalid("it is not UTF-8 (percent-encode it)") from None
    if not purpose:
        raise _invalid("it is blank once decoded")
    if len(purpose) > MAX_PURPOSE:
        raise _invalid(f"at most {MAX_PURPOSE} characters")
    # Control characters would let a caller forge lines in whatever displays the log.
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in purpose):
        raise _invalid("control characters are not allowed")
    return purpose


def _invalid(reason: str) -> Problem:
    return Problem(422, "QUERY_PURPOSE_INVALID", "Invalid query purpose", f"{HEADER}: {reason}.", field=HEADER)


# --- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryAudit:
    """What one request needs to record its reads; endpoints get it from ``Audited``."""

    request: Request
    purpose: str

    async def record(self, kind: SubjectKind, subject_id: str, resource_id: str | None = None) -> None:
        await self.record_many(kind, [(subject_id, resource_id or subject_id)])

    async def record_many(self, kind: SubjectKind, reads: Sequence[tuple[str, str]]) -> None:
        """One row per (subject id, resource id) disclosed, committed before returning."""
        if not reads:
            return
        principal: Principal = self.request.state.principal
        route = self.request.scope.get("route")
        endpoint = f"{self.request.method} {getattr(route, 'path', self.request.url.path)}"
        now = datetime.now(UTC)
        roles = ",".join(sorted(principal.roles))
        rows = [
            {
                "subject_kind": kind,
                "subject_id": subject_id,
                "principal": principal.name,
                "roles": roles,
                "endpoint": endpoint,
                "resource_id": resource_id,
                "purpose": self.purpose,
                "queried_at": now,
            }
            for subject_id, resource_id in reads
        ]
        async with transaction(self.request.app.state.runtime.sessions) as session:
            await session.execute(insert(query_log), rows)


def query_audit(
    request: Request,
    purpose: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Required: why the caller reads this subject's credit data (征信业管理条例 §18, §20), "
            f"percent-encoded UTF-8, 1 to {MAX_PURPOSE} characters; recorded with who and when, and shown to "
            "the subject.",
            # Published as required: it is. The parameter stays optional in Python so that a
            # missing purpose is answered by parse_purpose, 422 QUERY_PURPOSE_REQUIRED.
            json_schema_extra={REQUIRED_HEADER: True, "minLength": 1},
        ),
    ] = None,
) -> QueryAudit:
    return QueryAudit(request, parse_purpose(purpose))


Audited = Annotated[QueryAudit, Depends(query_audit)]


# --- listing ---------------------------------------------------------------------------------


class QueryOut(BaseModel):
    service: str
    query_id: int = Field(description="the row's number in that service's log")
    queried_at: UtcDateTime
    principal: str
    roles: list[str]
    endpoint: str
    resource_id: str
    purpose: str


class QueryPage(BaseModel):
    items: list[QueryOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last page")


def parse_after(after: str | None) -> int | None:
    if after is None:
        return None
    # ASCII digits only: isdigit() is also true of "²" (which int() refuses: a 500) and of
    # other scripts' digits; and a bigint, past which the database errs.
    if not (after.isascii() and after.isdigit()) or int(after) > BIGINT_MAX:
        raise Problem(
            422, "VALIDATION_FAILED", "Invalid cursor", "Pass next_after of the previous page.", field="after"
        )
    return int(after)


async def own_queries(
    session: AsyncSession, service: str, subject_id: str, limit: int, after: int | None = None
) -> QueryPage:
    """This service's rows about one subject, newest first; ``after`` is the previous page's
    last query_id."""
    t = query_log.c
    query = select(query_log).where(t.subject_id == subject_id).order_by(t.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(t.id < after)
    rows = list((await session.execute(query)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        QueryOut(
            service=service,
            query_id=r["id"],
            queried_at=r["queried_at"],
            principal=r["principal"],
            roles=r["roles"].split(",") if r["roles"] else [],
            endpoint=r["endpoint"],
            resource_id=r["resource_id"],
            purpose=r["purpose"],
        )
        for r in rows
    ]
    return QueryPage(items=items, next_after=str(items[-1].query_id) if more else None)


After = Annotated[str | None, Query(description="next_after of the previous page")]


def queries_router(service: str) -> APIRouter:
    """``GET /v1/{households|businesses}/{id}/queries`` listing this service's own rows.
    Listing the log is not itself a read of credit data, so it is not audited."""
    router = APIRouter(prefix="/v1", tags=["query audit"])

    @router.get(
        "/households/{household_id}/queries",
        response_model=QueryPage,
        summary=f"Who read this household's credit data at {service}, newest first",
        dependencies=[scope("audit:read")],
        responses=problems({403: ["NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE"]}),
    )
    async def household_queries(
        household_id: str, session: ReadSession, principal: CurrentPrincipal, limit: Limit = 50, after: After = None
    ) -> QueryPage:
        # A subject asks about its own household; a village-bound credential has no way to
        # show the household is in its village here, so it is refused.
        ensure_bound(principal, village=None, household=household_id)
        return await own_queries(session, service, household_id, limit, parse_after(after))

    @router.get(
        "/businesses/{business_id}/queries",
        response_model=QueryPage,
        summary=f"Who read this business's credit data at {service}, newest first",
        dependencies=[scope("audit:read")],
        responses=problems({403: ["NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE"]}),
    )
    async def business_queries(
        business_id: str, session: ReadSession, principal: CurrentPrincipal, limit: Limit = 50, after: After = None
    ) -> QueryPage:
        ensure_bound(principal, village=None)
        return await own_queries(session, service, business_id, limit, parse_after(after))

    return router
