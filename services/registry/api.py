from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.identifiers import InvalidIdentifier, normalise_identifier
from services.registry.domain.provenance import choose_source
from services.registry.imports import import_sheet
from services.registry.models import Business, Community, Fact, Household, NameChange, Objection, Township, Village
from services.registry.schemas import (
    BusinessIn,
    BusinessOut,
    Code,
    CommunityIn,
    CommunityOut,
    DecisionIn,
    FactEndIn,
    FactOut,
    FormerName,
    HouseholdIn,
    HouseholdOut,
    ImportReport,
    ObjectionIn,
    ObjectionOut,
    Page,
    RenameIn,
    TownshipIn,
    TownshipOut,
    VillageIn,
    VillageOut,
)
from services.registry.subject_query_log import subject_queries
from services.registry.subjects import (
    Provenance,
    business_view,
    change_facts,
    check_statement,
    current_facts,
    duplicate_people,
    end_fact,
    fact_value,
    household_views,
    lookups_of,
    new_household,
    persons_by_hash,
    register_business,
    register_households,
    village_or_422,
)
from shared import idempotency
from shared.audit import After, Audited, QueryPage
from shared.auth import Principal
from shared.catalogue import (
    CommunityCreated,
    ObjectionDecided,
    ObjectionOpened,
    TownshipCreated,
    UnitRenamed,
    VillageCreated,
)
from shared.db import BIGINT_MAX
from shared.events import new_event
from shared.messaging import emit
from shared.paging import MAX_PAGE, Limit, Offset
from shared.pii import PiiCipher, load_cipher
from shared.profile import NEGATIVE_FIELDS, PROFILE_FIELDS, Profile
from shared.web import CurrentPrincipal, Problem, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")

# 征信业管理条例 §25: an objection is checked and answered within 20 days of receipt.
OBJECTION_DAYS = 20

FactSource = Annotated[
    str | None, Header(alias="X-Fact-Source", description="role the facts are stated as, if you hold several")
]
EvidenceRef = Annotated[
    str | None,
    Header(
        alias="X-Evidence-Ref",
        max_length=600,
        description="reference of the supporting document, percent-encoded UTF-8 (headers are ASCII): "
        "(2026)豫0102执123号 is sent as %282026%29%E8%B1%AB0102%E6%89%A7123%E5%8F%B7",
    ),
]


def cipher(request: Request) -> PiiCipher:
    existing: PiiCipher | None = getattr(request.app.state, "pii_cipher", None)
    if existing is None:
        existing = load_cipher(request.app.state.runtime.common)
        request.app.state.pii_cipher = existing
    return existing


def provenance(principal: Principal, source: str | None, evidence: str | None) -> Provenance:
    try:
        role = choose_source(principal.roles, source)
    except ValueError as exc:
        status = 403 if source else 422
        raise Problem(status, "FACT_SOURCE", "Fact source", str(exc), field="X-Fact-Source") from None
    reference = unquote(evidence) if evidence else None
    if reference is not None and len(reference) > 200:
        raise Problem(
            422, "VALIDATION_FAILED", "Evidence reference too long", "At most 200 characters.", field="X-Evidence-Ref"
        )
    return Provenance(role, principal.name, reference)


def _former(changes: list[NameChange]) -> list[FormerName]:
    return [FormerName(name=c.old_name, until=c.changed_at) for c in changes]


async def _name_history(session: AsyncSession, kind: str, code: str) -> list[FormerName]:
    rows = await session.scalars(
        select(NameChange).where(NameChange.kind == kind, NameChange.code == code).order_by(NameChange.id)
    )
    return _former(list(rows))


# --- hierarchy ----------------------------------------------------------------------------


@router.post(
    "/townships",
    status_code=201,
    response_model=TownshipOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:write")],
)
async def create_township(body: TownshipIn, request: Request, session: Session) -> TownshipOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        if await session.get(Township, body.code) is not None:
            raise Problem(409, "DUPLICATE_CODE", "Township exists", f"Township {body.code} is already registered.")
        session.add(Township(code=body.code, name=body.name, created_at=datetime.now(UTC)))
        await emit(
            session, new_event("registry.township.created", body.code, TownshipCreated(code=body.code, name=body.name))
        )
        out = TownshipOut(code=body.code, name=body.name)
        await idempotency.remember(session, request, 201, out)
    return out


@router.get("/townships", response_model=list[TownshipOut], tags=["hierarchy"], dependencies=[scope("hierarchy:read")])
async def list_townships(session: ReadSession, limit: Limit = MAX_PAGE, offset: Offset = 0) -> list[TownshipOut]:
    query = select(Township).order_by(Township.code).limit(limit).offset(offset)
    return [TownshipOut(code=t.code, name=t.name) for t in await session.scalars(query)]


@router.get("/townships/{code}", response_model=TownshipOut, tags=["hierarchy"], dependencies=[scope("hierarchy:read")])
async def get_township(code: str, session: ReadSession) -> TownshipOut:
    township = await session.get(Township, code)
    if township is None:
        raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"No township {code}.")
    return TownshipOut(
        code=township.code, name=township.name, former_names=await _name_history(session, "township", code)
    )


async def _rename(
    session: AsyncSession, kind: str, unit: Township | Village, name: str, principal: Principal
) -> list[FormerName]:
    if unit.name != name:
        session.add(
            NameChange(
                kind=kind,
                code=unit.code,
                old_name=unit.name,
                new_name=name,
                changed_at=datetime.now(UTC),
                changed_by=principal.name,
            )
        )
        key = unit.code
        await emit(
            session,
            new_event(f"registry.{kind}.renamed", key, UnitRenamed(code=unit.code, old_name=unit.name, new_name=name)),
        )
        unit.name = name
        await session.flush()
    return await _name_history(session, kind, unit.code)


@router.patch(
    "/townships/{code}", response_model=TownshipOut, tags=["hierarchy"], dependencies=[scope("hierarchy:write")]
)
async def rename_township(code: str, body: RenameIn, session: Session, principal: CurrentPrincipal) -> TownshipOut:
    async with session.begin():
        township = await session.get(Township, code, with_for_update=True)
        if township is None:
            raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"No township {code}.")
        former = await _rename(session, "township", township, body.name, principal)
        return TownshipOut(code=code, name=township.name, former_names=former)


async def _create_under_township(
    session: AsyncSession,
    request: Request,
    body: VillageIn | CommunityIn,
    kind: str,
    model: type[Village] | type[Community],
    payload: type[VillageCreated] | type[CommunityCreated],
    out: VillageOut | CommunityOut,
) -> VillageOut | CommunityOut | JSONResponse:
    """Villages and urban communities: a unit with a code, registered under its township."""
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        if await session.get(Township, body.township_code) is None:
            raise Problem(
                422,
                "UNKNOWN_TOWNSHIP",
                "Unknown township",
                f"Township {body.township_code} is not registered.",
                field="township_code",
            )
        if await session.get(model, body.code) is not None:
            title = kind.capitalize()
            raise Problem(409, "DUPLICATE_CODE", f"{title} exists", f"{title} {body.code} is already registered.")
        session.add(
            model(code=body.code, name=body.name, township_code=body.township_code, created_at=datetime.now(UTC))
        )
        event = payload(code=body.code, name=body.name, township_code=body.township_code)
        await emit(session, new_event(f"registry.{kind}.created", body.code, event))
        await idempotency.remember(session, request, 201, out)
    return out


@router.post(
    "/villages", status_code=201, response_model=VillageOut, tags=["hierarchy"], dependencies=[scope("hierarchy:write")]
)
async def create_village(
    body: VillageIn, request: Request, session: Session
) -> VillageOut | CommunityOut | JSONResponse:
    out = VillageOut(code=body.code, name=body.name, township_code=body.township_code)
    return await _create_under_township(session, request, body, "village", Village, VillageCreated, out)


@router.get("/villages/{code}", response_model=VillageOut, tags=["hierarchy"], dependencies=[scope("hierarchy:read")])
async def get_village(code: str, session: ReadSession) -> VillageOut:
    village = await session.get(Village, code)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {code}.")
    return VillageOut(
        code=village.code,
        name=village.name,
        township_code=village.township_code,
        former_names=await _name_history(session, "village", code),
    )


@router.patch(
    "/villages/{code}", response_model=VillageOut, tags=["hierarchy"], dependencies=[scope("hierarchy:write")]
)
async def rename_village(code: str, body: RenameIn, session: Session, principal: CurrentPrincipal) -> VillageOut:
    async with session.begin():
        village = await session.get(Village, code, with_for_update=True)
        if village is None:
            raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {code}.")
        former = await _rename(session, "village", village, body.name, principal)
        return VillageOut(code=code, name=village.name, township_code=village.township_code, former_names=former)


@router.get("/villages", response_model=list[VillageOut], tags=["hierarchy"], dependencies=[scope("hierarchy:read")])
async def list_villages(
    session: ReadSession, township_code: str | None = None, limit: Limit = MAX_PAGE, offset: Offset = 0
) -> list[VillageOut]:
    query = select(Village).order_by(Village.code).limit(limit).offset(offset)
    if township_code is not None:
        query = query.where(Village.township_code == township_code)
    return [VillageOut(code=v.code, name=v.name, township_code=v.township_code) for v in await session.scalars(query)]


@router.post(
    "/communities",
    status_code=201,
    response_model=CommunityOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:write")],
)
async def create_community(
    body: CommunityIn, request: Request, session: Session
) -> VillageOut | CommunityOut | JSONResponse:
    out = CommunityOut(code=body.code, name=body.name, township_code=body.township_code)
    return await _create_under_township(session, request, body, "community", Community, CommunityCreated, out)


@router.get(
    "/communities", response_model=list[CommunityOut], tags=["hierarchy"], dependencies=[scope("hierarchy:read")]
)
async def list_communities(
    session: ReadSession, township_code: str | None = None, limit: Limit = MAX_PAGE, offset: Offset = 0
) -> list[CommunityOut]:
    query = select(Community).order_by(Community.code).limit(limit).offset(offset)
    if township_code is not None:
        query = query.where(Community.township_code == township_code)
    return [CommunityOut(code=c.code, name=c.name, township_code=c.township_code) for c in await session.scalars(query)]


# --- households ---------------------------------------------------------------------------


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdOut,
    tags=["households"],
    dependencies=[scope("subjects:write")],
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
    prov = provenance(principal, source, evidence)
    check_statement(body.profile.model_fields_set, prov)
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        village = await village_or_422(session, body.village_code)
        item = new_household(body, village, cipher(request))
        if (reason := duplicate_people(item)) is not None:
            raise Problem(422, "DUPLICATE_PERSON", "Duplicate person", reason, field="members")
        if await persons_by_hash(session, item.lookups):
            raise Problem(
                409,
                "ID_NUMBER_REGISTERED",
                "Already registered",
                "A person with this ID number already belongs to a registered household.",
            )
        (household_id,) = await register_households(session, cipher(request), [item], prov)
        (out,) = await household_views(session, [await _household(session, household_id)])
        await idempotency.remember(session, request, 201, out)
    return out


async def _household(session: AsyncSession, household_id: str, *, lock: bool = False) -> Household:
    household = await session.get(Household, household_id, with_for_update=lock)
    if household is None:
        raise Problem(404, "HOUSEHOLD_NOT_FOUND", "Household not found", f"No household {household_id}.")
    return household


@router.get(
    "/households/{household_id}",
    response_model=HouseholdOut,
    tags=["households"],
    dependencies=[scope("subjects:read")],
)
async def get_household(
    household_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> HouseholdOut:
    household = await _household(session, household_id)
    ensure_bound(principal, village=household.village_code, household=household.id)
    (view,) = await household_views(session, [household])
    await audit.record("household", household_id)
    return view


@router.get(
    "/households", response_model=Page[HouseholdOut], tags=["households"], dependencies=[scope("subjects:read")]
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
)
async def patch_household_profile(
    household_id: str,
    body: Profile,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> HouseholdOut:
    prov = provenance(principal, source, evidence)
    check_statement(body.model_fields_set, prov)
    async with session.begin():
        household = await _household(session, household_id, lock=True)
        ensure_bound(principal, village=household.village_code, household=household.id)
        await change_facts(
            session,
            household,
            {f: v for f, v in body.model_dump(mode="json").items() if f in body.model_fields_set},
            prov,
        )
        (view,) = await household_views(session, [household])
        return view


def _fact_out(f: Fact) -> FactOut:
    return FactOut(
        fact_id=f.id,
        field=f.field,
        value=fact_value(f),
        source=f.source,
        supplied_by=f.supplied_by,
        evidence_ref=f.evidence_ref,
        recorded_at=f.recorded_at,
        current=f.current,
        disputed=f.disputed,
        ended_on=f.ended_on,
    )


async def _fact_history(session: AsyncSession, subject_id: str, limit: int, offset: int) -> list[FactOut]:
    query = select(Fact).where(Fact.subject_id == subject_id).order_by(Fact.id).limit(limit).offset(offset)
    return [_fact_out(f) for f in await session.scalars(query)]


@router.get(
    "/households/{household_id}/facts",
    response_model=list[FactOut],
    tags=["households"],
    dependencies=[scope("subjects:read")],
)
async def household_facts(
    household_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[FactOut]:
    household = await _household(session, household_id)
    ensure_bound(principal, village=household.village_code, household=household.id)
    history = await _fact_history(session, household_id, limit, offset)
    await audit.record("household", household_id)
    return history


def _negative_field(field: str) -> str:
    if field not in NEGATIVE_FIELDS:
        kind = "not a negative fact" if field in PROFILE_FIELDS else "not a profile field"
        raise Problem(
            422,
            "NOT_A_NEGATIVE_FACT",
            "Not a negative fact",
            f"{field} is {kind}; end dates are stated for {', '.join(sorted(NEGATIVE_FIELDS))}.",
            field="field",
        )
    return field


def _end_date(body: FactEndIn) -> date:
    # 不良行为或者事件终止之日 is a day that has come: a future end would be a guess.
    if body.ended_on > date.today():
        raise Problem(
            422,
            "END_DATE_IN_FUTURE",
            "End date in the future",
            "A fact cannot have ended after today.",
            field="ended_on",
        )
    return body.ended_on


@router.put(
    "/households/{household_id}/facts/{field}/ended-on",
    response_model=FactOut,
    tags=["households"],
    summary="State the day a negative fact ended; scoring stops counting it 5 years later (征信业管理条例 §16)",
    dependencies=[scope("facts:write")],
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
    _negative_field(field)
    ended_on = _end_date(body)
    prov = provenance(principal, source, evidence)
    check_statement([field], prov)
    async with session.begin():
        household = await _household(session, household_id, lock=True)
        ensure_bound(principal, village=household.village_code, household=household.id)
        fact = await end_fact(session, household, field, ended_on, prov)
    return _fact_out(fact)


_SHEET_BODY = {"schema": {"type": "string", "format": "binary"}}


IMPORT_ROUTE = "POST /v1/villages/{code}/households/import"


@router.post(
    "/villages/{code}/households/import",
    response_model=ImportReport,
    tags=["households"],
    summary="Import a village's household collection sheet (CSV or XLSX, UTF-8 or GBK)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": _SHEET_BODY,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _SHEET_BODY,
            },
        }
    },
    dependencies=[scope("subjects:write")],
)
async def import_households(
    code: str,
    request: Request,
    principal: CurrentPrincipal,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> ImportReport:
    ensure_bound(principal, village=code)
    prov = provenance(principal, source, evidence)
    # The size is bounded by VCREDIT_MAX_UPLOAD_BYTES (shared/bodylimit.py, SPEC.uploads).
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
    if not data:
        raise Problem(422, "EMPTY_SHEET", "Empty sheet", "Send the sheet's bytes as the request body.", field="body")
    return await import_sheet(
        request.app.state.runtime.sessions,
        cipher(request),
        code,
        bytes(data),
        filename=filename,
        content_type=request.headers.get("content-type"),
        provenance=prov,
    )


# --- businesses ---------------------------------------------------------------------------


async def _business(session: AsyncSession, business_id: str, *, lock: bool = False) -> Business:
    business = await session.get(Business, business_id, with_for_update=lock)
    if business is None:
        raise Problem(404, "BUSINESS_NOT_FOUND", "Business not found", f"No business {business_id}.")
    return business


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
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        village = await village_or_422(session, body.village_code)
        if await session.scalar(select(Business.id).where(Business.credit_code == body.credit_code)):
            raise Problem(
                409,
                "CREDIT_CODE_REGISTERED",
                "Already registered",
                f"A business with credit code {body.credit_code} is already registered.",
            )
        business = await register_business(session, body, village, prov)
        out = await business_view(session, business)
        await idempotency.remember(session, request, 201, out)
    return out


@router.get(
    "/businesses/{business_id}", response_model=BusinessOut, tags=["businesses"], dependencies=[scope("subjects:read")]
)
async def get_business(
    business_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> BusinessOut:
    business = await _business(session, business_id)
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
        business = await _business(session, business_id, lock=True)
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
    business = await _business(session, business_id)
    ensure_bound(principal, village=business.village_code)
    history = await _fact_history(session, business_id, limit, offset)
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
    _negative_field(field)
    ended_on = _end_date(body)
    prov = provenance(principal, source, evidence)
    check_statement([field], prov)
    async with session.begin():
        business = await _business(session, business_id, lock=True)
        ensure_bound(principal, village=business.village_code)
        fact = await end_fact(session, business, field, ended_on, prov)
    return _fact_out(fact)


# --- query log (征信业管理条例 §17, §18) -----------------------------------------------------


@router.get(
    "/households/{household_id}/queries",
    response_model=QueryPage,
    tags=["query audit"],
    summary="Who read this household's credit data, at registry, scoring and loans, newest first",
    dependencies=[scope("audit:read")],
)
async def household_queries(
    household_id: str,
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 50,
    after: After = None,
) -> QueryPage:
    household = await _household(session, household_id)
    # A subject asks about its own household only.
    ensure_bound(principal, village=household.village_code, household=household.id)
    return await subject_queries(request, session, "household", household_id, limit, after)


@router.get(
    "/businesses/{business_id}/queries",
    response_model=QueryPage,
    tags=["query audit"],
    summary="Who read this business's credit data, at registry, scoring and loans, newest first",
    dependencies=[scope("audit:read")],
)
async def business_queries(
    business_id: str,
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 50,
    after: After = None,
) -> QueryPage:
    business = await _business(session, business_id)
    ensure_bound(principal, village=business.village_code)
    return await subject_queries(request, session, "business", business_id, limit, after)


# --- objections (异议) ---------------------------------------------------------------------


def _objection_view(o: Objection, today: date) -> ObjectionOut:
    return ObjectionOut(
        objection_id=o.id,
        fact_id=o.fact_id,
        subject_kind=o.subject_kind,
        subject_id=o.subject_id,
        village_code=o.village_code,
        field=o.field,
        reason=o.reason,
        raised_by=o.raised_by,
        opened_on=o.opened_on,
        due_on=o.due_on,
        overdue=o.status == "open" and today > o.due_on,
        status=o.status,
        decision_note=o.decision_note,
        subject_statement=o.subject_statement,
        decided_at=o.decided_at,
        decided_by=o.decided_by,
    )


async def _subject(session: AsyncSession, kind: str, subject_id: str, *, lock: bool = False) -> Household | Business:
    if kind == "household":
        return await _household(session, subject_id, lock=lock)
    return await _business(session, subject_id, lock=lock)


def _household_of(kind: str, subject_id: str) -> str | None:
    return subject_id if kind == "household" else None


@router.post(
    "/facts/{fact_id}/objections",
    status_code=201,
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("objections:write")],
)
async def open_objection(
    fact_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], body: ObjectionIn, session: Session, principal: CurrentPrincipal
) -> ObjectionOut:
    async with session.begin():
        fact = await session.get(Fact, fact_id, with_for_update=True)
        if fact is None:
            raise Problem(404, "FACT_NOT_FOUND", "Fact not found", f"No fact {fact_id}.")
        subject = await _subject(session, fact.subject_kind, fact.subject_id)
        ensure_bound(
            principal, village=subject.village_code, household=_household_of(fact.subject_kind, fact.subject_id)
        )
        if not fact.current:
            raise Problem(409, "FACT_SUPERSEDED", "Fact superseded", "Object to the current statement of the field.")
        if await session.scalar(select(Objection.id).where(Objection.fact_id == fact_id, Objection.status == "open")):
            raise Problem(409, "OBJECTION_OPEN", "Objection already open", "This fact is already disputed.")
        today = date.today()
        objection = Objection(
            id=str(uuid.uuid4()),
            fact_id=fact.id,
            subject_kind=fact.subject_kind,
            subject_id=fact.subject_id,
            village_code=subject.village_code,
            field=fact.field,
            reason=body.reason,
            raised_by=principal.name,
            opened_on=today,
            due_on=today + timedelta(days=OBJECTION_DAYS),
            status="open",
        )
        session.add(objection)
        fact.disputed = True
        await emit(
            session,
            new_event(
                "registry.objection.opened",
                subject.village_code,
                ObjectionOpened(
                    objection_id=objection.id,
                    subject_kind=fact.subject_kind,
                    subject_id=fact.subject_id,
                    village_code=subject.village_code,
                    fact_id=fact.id,
                    field=fact.field,
                    due_on=objection.due_on,
                ),
            ),
        )
        await session.flush()
        return _objection_view(objection, today)


@router.get(
    "/objections", response_model=list[ObjectionOut], tags=["objections"], dependencies=[scope("objections:read")]
)
async def list_objections(
    session: ReadSession,
    principal: CurrentPrincipal,
    status: str | None = None,
    overdue: bool | None = None,
    village_code: Code | None = None,
    as_of: Annotated[date | None, Query(description="judge overdue as of this date; default today")] = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[ObjectionOut]:
    if principal.village is not None:
        village_code = principal.village
    today = as_of or date.today()
    query = select(Objection).order_by(Objection.due_on, Objection.id).limit(limit).offset(offset)
    if principal.household is not None:
        query = query.where(Objection.subject_kind == "household", Objection.subject_id == principal.household)
    if status is not None:
        query = query.where(Objection.status == status)
    if village_code is not None:
        query = query.where(Objection.village_code == village_code)
    if overdue is not None:
        late = (Objection.status == "open") & (Objection.due_on < today)
        query = query.where(late if overdue else ~late)
    return [_objection_view(o, today) for o in await session.scalars(query)]


@router.get(
    "/objections/{objection_id}",
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("objections:read")],
)
async def get_objection(objection_id: str, session: ReadSession, principal: CurrentPrincipal) -> ObjectionOut:
    objection = await session.get(Objection, objection_id)
    if objection is None:
        raise Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")
    ensure_bound(
        principal, village=objection.village_code, household=_household_of(objection.subject_kind, objection.subject_id)
    )
    return _objection_view(objection, date.today())


@router.post(
    "/objections/{objection_id}/decision",
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("facts:write")],
)
async def decide_objection(
    objection_id: str,
    body: DecisionIn,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> ObjectionOut:
    # The supplier of the fact checks and answers (征信业管理条例 §25): deciding needs a
    # role that may state the field.
    prov = provenance(principal, source, evidence)
    async with session.begin():
        objection = await session.get(Objection, objection_id, with_for_update=True)
        if objection is None:
            raise Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")
        # A collector answers for its own village's facts only.
        ensure_bound(principal, village=objection.village_code)
        check_statement([objection.field], prov)
        if objection.status != "open":
            raise Problem(409, "OBJECTION_DECIDED", "Already decided", f"The objection was {objection.status}.")
        fact = await session.get(Fact, objection.fact_id, with_for_update=True)
        assert fact is not None
        subject = await _subject(session, objection.subject_kind, objection.subject_id, lock=True)
        if body.outcome == "corrected":
            corrected = _validated_value(objection.field, body.corrected_value)
            if fact.current and fact_value(fact) == corrected:
                raise Problem(
                    422,
                    "NOT_A_CORRECTION",
                    "Not a correction",
                    "The corrected value equals the disputed one; decide 'upheld' instead.",
                    field="corrected_value",
                )
            fact.disputed = False
            current = (await current_facts(session, [subject.id]))[subject.id]
            await change_facts(session, subject, {objection.field: corrected}, prov, current=current)
        elif body.outcome == "upheld":
            fact.disputed = False
        else:
            if not body.subject_statement:
                raise Problem(
                    422,
                    "STATEMENT_REQUIRED",
                    "Subject's statement required",
                    "An unresolved objection keeps the subject's statement beside the fact.",
                    field="subject_statement",
                )
        objection.status = body.outcome
        objection.decision_note = body.note
        objection.subject_statement = body.subject_statement
        objection.decided_at = datetime.now(UTC)
        objection.decided_by = principal.name
        await emit(
            session,
            new_event(
                "registry.objection.decided",
                objection.village_code,
                ObjectionDecided(
                    objection_id=objection.id,
                    subject_kind=objection.subject_kind,
                    subject_id=objection.subject_id,
                    village_code=objection.village_code,
                    field=objection.field,
                    outcome=body.outcome,
                    decided_by=principal.name,
                ),
            ),
        )
        return _objection_view(objection, date.today())


def _validated_value(field: str, value: Any) -> Any:
    try:
        profile = Profile.model_validate({field: value})
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise Problem(422, "VALIDATION_FAILED", "Invalid corrected value", reason, field="corrected_value") from None
    return profile.model_dump(mode="json")[field]
