"""Businesses: registration, reads, profile statements and their fact history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.registry.businesses import business_view, register_business
from services.registry.loaders import business_or_404
from services.registry.models import Business
from services.registry.routers.dependencies import EvidenceRef, FactSource
from services.registry.routers.statements import change_profile, end_negative_fact, facts, stated
from services.registry.schemas import BusinessIn, BusinessOut, Code, FactEndIn, FactOut
from shared.audit import Audited
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.profile import Profile
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")


@router.post(
    "/businesses",
    status_code=201,
    response_model=BusinessOut,
    tags=["businesses"],
    dependencies=[scope("subjects:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            403: ["FACT_SOURCE_NOT_ALLOWED", "NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE", "FACT_SOURCE"],
            409: ["CREDIT_CODE_REGISTERED"],
            422: ["DERIVED_FACT", "UNKNOWN_VILLAGE", "FACT_SOURCE"],
        }
    ),
)
async def create_business(
    body: BusinessIn,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> BusinessOut | JSONResponse:
    ensure_bound(principal, village=body.village_code)
    prov = stated(principal, source, evidence, body.profile.model_fields_set)

    async def registered() -> BusinessOut:
        return await business_view(session, await register_business(session, body, prov))

    return await idempotent(session, request, body, registered, status=201)


@router.get(
    "/businesses/{business_id}",
    response_model=BusinessOut,
    tags=["businesses"],
    dependencies=[scope("subjects:read")],
    responses=problems({404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"]}),
)
async def get_business(
    business_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> BusinessOut:
    business = await business_or_404(session, business_id, seen_by=principal)
    view = await business_view(session, business)
    await audit.record("business", business_id)
    return view


@router.get(
    "/businesses",
    response_model=list[BusinessOut],
    tags=["businesses"],
    dependencies=[scope("subjects:read")],
    responses=problems({403: ["NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE"]}),
)
async def list_businesses(
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    village_code: Code | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[BusinessOut]:
    if principal.village is not None:
        village_code = village_code or principal.village
    ensure_bound(principal, village=village_code)
    query = select(Business).order_by(Business.id).limit(limit).offset(offset)
    if village_code is not None:
        query = query.where(Business.village_code == village_code)
    views = [await business_view(session, b) for b in await session.scalars(query)]
    await audit.record_many("business", [(v.business_id, v.business_id) for v in views])
    return views


@router.patch(
    "/businesses/{business_id}/profile",
    response_model=BusinessOut,
    tags=["businesses"],
    dependencies=[scope("facts:write")],
    responses=problems(
        {
            403: ["FACT_SOURCE_NOT_ALLOWED", "FACT_SOURCE"],
            404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"],
            422: ["DERIVED_FACT", "FACT_SOURCE"],
        }
    ),
)
async def patch_business_profile(
    business_id: str,
    body: Profile,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> BusinessOut:
    prov = stated(principal, source, evidence, body.model_fields_set)
    async with session.begin():
        business = await business_or_404(session, business_id, lock=True)
        return await business_view(session, await change_profile(session, principal, business, body, prov))


@router.get(
    "/businesses/{business_id}/facts",
    response_model=list[FactOut],
    tags=["businesses"],
    dependencies=[scope("subjects:read")],
    responses=problems({404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"]}),
)
async def business_facts(
    business_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[FactOut]:
    return await facts(session, principal, audit, "business", business_id, limit, offset)


@router.put(
    "/businesses/{business_id}/facts/{field}/ended-on",
    response_model=FactOut,
    tags=["businesses"],
    summary="State the day a negative fact ended; scoring stops counting it 5 years later (征信业管理条例 §16)",
    dependencies=[scope("facts:write")],
    responses=problems(
        {
            403: ["FACT_SOURCE_NOT_ALLOWED", "FACT_SOURCE"],
            404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"],
            409: ["FACT_DISPUTED", "NO_NEGATIVE_FACT"],
            422: ["DERIVED_FACT", "END_DATE_IN_FUTURE", "NOT_A_NEGATIVE_FACT", "FACT_SOURCE"],
        }
    ),
)
async def end_business_fact(
    business_id: str,
    field: str,
    body: FactEndIn,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> FactOut:
    return await end_negative_fact(session, principal, "business", business_id, field, body, source, evidence)
