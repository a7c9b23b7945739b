"""Households: registration, reads, profile statements and their fact history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.registry.domain.identifiers import InvalidIdentifier, normalise_identifier
from services.registry.households import household_views, lookups_of, persons_by_hash, register_household
from services.registry.loaders import household_or_404
from services.registry.models import Household
from services.registry.routers.dependencies import EvidenceRef, FactSource, cipher
from services.registry.routers.statements import change_profile, end_negative_fact, facts, stated
from services.registry.schemas import Code, FactEndIn, FactOut, HouseholdIn, HouseholdOut, Page
from shared.audit import After, Audited
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.problems import Problem
from shared.profile import Profile
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdOut,
    tags=["households"],
    dependencies=[scope("subjects:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            403: ["FACT_SOURCE_NOT_ALLOWED", "NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE", "FACT_SOURCE"],
            404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"],
            409: ["ID_NUMBER_REGISTERED"],
            422: ["DERIVED_FACT", "DUPLICATE_PERSON", "UNKNOWN_VILLAGE", "FACT_SOURCE"],
        }
    ),
)
async def create_household(
    body: HouseholdIn,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> HouseholdOut | JSONResponse:
    ensure_bound(principal, village=body.village_code)
    prov = stated(principal, source, evidence, body.profile.model_fields_set)

    async def registered() -> HouseholdOut:
        household_id = await register_household(session, cipher(request), body, prov)
        (out,) = await household_views(session, [await household_or_404(session, household_id)])
        return out

    return await idempotent(session, request, body, registered, status=201)


@router.get(
    "/households/{household_id}",
    response_model=HouseholdOut,
    tags=["households"],
    dependencies=[scope("subjects:read")],
    responses=problems({404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"]}),
)
async def get_household(
    household_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> HouseholdOut:
    household = await household_or_404(session, household_id, seen_by=principal)
    (view,) = await household_views(session, [household])
    await audit.record("household", household_id)
    return view


@router.get(
    "/households",
    response_model=Page[HouseholdOut],
    tags=["households"],
    dependencies=[scope("subjects:read")],
    responses=problems({403: ["NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE"]}),
)
async def list_households(
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    village_code: Code | None = None,
    township_code: Code | None = None,
    poor_household: bool | None = None,
    id_number: Annotated[str | None, Query(description="find the household a person belongs to")] = None,
    limit: Limit = 50,
    after: After = None,
) -> Page[HouseholdOut]:
    if principal.village is not None:
        village_code = village_code or principal.village
    # A subject reads its own household by id, never a list.
    ensure_bound(principal, village=village_code)
    query = select(Household).order_by(Household.id).limit(limit + 1)
    if village_code is not None:
        query = query.where(Household.village_code == village_code)
    if township_code is not None:
        query = query.where(Household.township_code == township_code)
    if poor_household is not None:
        query = query.where(Household.poor_household.is_(poor_household))
    if after is not None:
        query = query.where(Household.id > after)
    if id_number is not None:
        try:
            # The lookup hash is of the normalised number, as at registration.
            number = normalise_identifier(id_number)
        except InvalidIdentifier as exc:
            raise Problem(422, "VALIDATION_FAILED", "Invalid request", str(exc), field="id_number") from None
        lookups = lookups_of(cipher(request), [number])
        person = (await persons_by_hash(session, lookups)).values()
        query = query.where(Household.id.in_([p.household_id for p in person]))
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    # A page of households is a read of each one's profile: listing by village must not be
    # a way around the audit.
    await audit.record_many("household", [(h.id, h.id) for h in rows])
    return Page[HouseholdOut](items=await household_views(session, rows), next_after=rows[-1].id if more else None)


@router.patch(
    "/households/{household_id}/profile",
    response_model=HouseholdOut,
    tags=["households"],
    dependencies=[scope("facts:write")],
    responses=problems(
        {
            403: ["FACT_SOURCE_NOT_ALLOWED", "FACT_SOURCE"],
            404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"],
            422: ["DERIVED_FACT", "FACT_SOURCE"],
        }
    ),
)
async def patch_household_profile(
    household_id: str,
    body: Profile,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> HouseholdOut:
    prov = stated(principal, source, evidence, body.model_fields_set)
    async with session.begin():
        household = await household_or_404(session, household_id, lock=True)
        (view,) = await household_views(session, [await change_profile(session, principal, household, body, prov)])
        return view


@router.get(
    "/households/{household_id}/facts",
    response_model=list[FactOut],
    tags=["households"],
    dependencies=[scope("subjects:read")],
    responses=problems({404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"]}),
)
async def household_facts(
    household_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[FactOut]:
    return await facts(session, principal, audit, "household", household_id, limit, offset)


@router.put(
    "/households/{household_id}/facts/{field}/ended-on",
    response_model=FactOut,
    tags=["households"],
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
async def end_household_fact(
    household_id: str,
    field: str,
    body: FactEndIn,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> FactOut:
    return await end_negative_fact(session, principal, "household", household_id, field, body, source, evidence)
