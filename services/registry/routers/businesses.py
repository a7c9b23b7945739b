"""Businesses: registration, reads, profile statements and their fact history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.registry.fact_history import end_date, fact_history, fact_out, negative_field
from services.registry.loaders import business_or_404
from services.registry.models import Business
from services.registry.routers.dependencies import EvidenceRef, FactSource, provenance
from services.registry.schemas import BusinessIn, BusinessOut, Code, FactEndIn, FactOut
from services.registry.subjects import (
    business_view,
    change_facts,
    check_statement,
    end_fact,
    register_business,
)
from shared.audit import Audited
from shared.idempotency import idempotent
from shared.paging import MAX_PAGE, Limit, Offset
from shared.profile import Profile
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")


@router.post(
    "/businesses",
    status_code=201,
    response_model=BusinessOut,
    tags=["businesses"],
    dependencies=[scope("subjects:write")],
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
    prov = provenance(principal, source, evidence)
    check_statement(body.profile.model_fields_set, prov)

    async def registered() -> BusinessOut:
        return await business_view(session, await register_business(session, body, prov))

    return await idempotent(session, request, body, registered, status=201)


@router.get(
    "/businesses/{business_id}", response_model=BusinessOut, tags=["businesses"], dependencies=[scope("subjects:read")]
)
async def get_business(
    business_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> BusinessOut:
    business = await business_or_404(session, business_id)
    ensure_bound(principal, village=business.village_code)
    view = await business_view(session, business)
    await audit.record("business", business_id)
    return view


@router.get("/businesses", response_model=list[BusinessOut], tags=["businesses"], dependencies=[scope("subjects:read")])
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
)
async def patch_business_profile(
    business_id: str,
    body: Profile,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> BusinessOut:
    prov = provenance(principal, source, evidence)
    check_statement(body.model_fields_set, prov)
    async with session.begin():
        business = await business_or_404(session, business_id, lock=True)
        ensure_bound(principal, village=business.village_code)
        await change_facts(
            session,
            business,
            {f: v for f, v in body.model_dump(mode="json").items() if f in body.model_fields_set},
            prov,
        )
        return await business_view(session, business)


@router.get(
    "/businesses/{business_id}/facts",
    response_model=list[FactOut],
    tags=["businesses"],
    dependencies=[scope("subjects:read")],
)
async def business_facts(
    business_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[FactOut]:
    business = await business_or_404(session, business_id)
    ensure_bound(principal, village=business.village_code)
    history = await fact_history(session, business_id, limit, offset)
    await audit.record("business", business_id)
    return history


@router.put(
    "/businesses/{business_id}/facts/{field}/ended-on",
    response_model=FactOut,
    tags=["businesses"],
    summary="State the day a negative fact ended; scoring stops counting it 5 years later (征信业管理条例 §16)",
    dependencies=[scope("facts:write")],
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
    negative_field(field)
    ended_on = end_date(body)
    prov = provenance(principal, source, evidence)
    check_statement([field], prov)
    async with session.begin():
        business = await business_or_404(session, business_id, lock=True)
        ensure_bound(principal, village=business.village_code)
        fact = await end_fact(session, business, field, ended_on, prov)
    return fact_out(fact)
