"""Who read a subject's credit data (征信业管理条例 §17, §18): registry's own query log and
scoring's and loans', asked by the subject or on its behalf."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.registry.loaders import business_or_404, household_or_404
from services.registry.subject_query_log import subject_queries
from shared.audit import After, QueryPage
from shared.openapi import problems
from shared.paging import Limit
from shared.web import CurrentPrincipal, ReadSession, scope

router = APIRouter(prefix="/v1")


@router.get(
    "/households/{household_id}/queries",
    response_model=QueryPage,
    tags=["query audit"],
    summary="Who read this household's credit data, at registry, scoring and loans, newest first",
    dependencies=[scope("audit:read")],
    responses=problems({404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"], 503: ["QUERY_LOG_UNAVAILABLE"]}),
)
async def household_queries(
    household_id: str,
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 50,
    after: After = None,
) -> QueryPage:
    # A subject asks about its own household only; another's answers as missing.
    await household_or_404(session, household_id, seen_by=principal)
    return await subject_queries(request, session, "household", household_id, limit, after)


@router.get(
    "/businesses/{business_id}/queries",
    response_model=QueryPage,
    tags=["query audit"],
    summary="Who read this business's credit data, at registry, scoring and loans, newest first",
    dependencies=[scope("audit:read")],
    responses=problems({404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"], 503: ["QUERY_LOG_UNAVAILABLE"]}),
)
async def business_queries(
    business_id: str,
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 50,
    after: After = None,
) -> QueryPage:
    await business_or_404(session, business_id, seen_by=principal)
    return await subject_queries(request, session, "business", business_id, limit, after)
