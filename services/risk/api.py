from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import breaker, funds, titles
from services.risk.domain.breaker import npl_ratio
from services.risk.domain.titles import coverage, coverage_points, grade_at_least_a
from services.risk.models import (
    ClaimSettlement,
    Community,
    CommunityAssessment,
    Decision,
    FundEntry,
    Household,
    Loss,
    MutualGuaranteeAccount,
    SubjectGrade,
    Title,
    Township,
    Village,
    VillageDay,
    VillageOverride,
)
from services.risk.schemas import (
    AssessmentIn,
    AssessmentOut,
    ClaimOut,
    DecisionOut,
    DistrictIndicatorsOut,
    EvaluationIn,
    EvaluationOut,
    FundEntryOut,
    FundOut,
    IndicatorsOut,
    LossOut,
    MutualGuaranteeOut,
    ReasonIn,
    SettleIn,
    TitleOut,
    TopUpIn,
    TownshipOut,
    VillageDayOut,
    VillageOut,
)
from shared import idempotency
from shared.auth import Principal
from shared.catalogue import ClaimSettled
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, Problem, ReadSession, Session, require_role, scope

router = APIRouter(prefix="/v1")


def _ratio(outstanding: Decimal, non_performing: Decimal) -> str:
    return f"{npl_ratio(non_performing, outstanding):.4f}"


# --- villages and townships -----------------------------------------------------------------


async def _village_out(session: AsyncSession, v: Village) -> VillageOut:
    override = await session.get(VillageOverride, v.code)
    frozen_since = None
    if v.frozen:
        frozen_since = override.since if override is not None and override.override == "frozen" else v.over_since
    return VillageOut(
        code=v.code,
        name=v.name,
        township_code=v.township_code,
        npl_ratio=f"{v.npl_ratio:.4f}",
        outstanding=format_money(v.outstanding),
        non_performing=format_money(v.non_performing),
        over_threshold=v.over,
        frozen=v.frozen,
        frozen_since=frozen_since,
        manual_override=override.override if override else None,
        override_reason=override.reason if override else None,
    )


@router.get("/villages", response_model=list[VillageOut], tags=["circuit breaker"], dependencies=[scope("risk:read")])
async def list_villages(
    session: ReadSession,
    township_code: str | None = None,
    frozen: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[VillageOut]:
    query = select(Village).order_by(Village.code).limit(limit).offset(offset)
    if township_code is not None:
        query = query.where(Village.township_code == township_code)
    if frozen is not None:
        query = query.where(Village.frozen == frozen)
    return [await _village_out(session, v) for v in await session.scalars(query)]


async def _village(session: AsyncSession, code: str, *, lock: bool = False) -> Village:
    village = await session.get(Village, code, with_for_update=lock)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"Risk knows no village {code}.")
    return village


@router.get("/villages/{code}", response_model=VillageOut, tags=["circuit breaker"], dependencies=[scope("risk:read")])
async def get_village(code: str, session: ReadSession) -> VillageOut:
    return await _village_out(session, await _village(session, code))


@router.get(
    "/villages/{code}/history",
    response_model=list[VillageDayOut],
    tags=["circuit breaker"],
    dependencies=[scope("risk:read")],
)
async def village_history(
    code: str,
    session: ReadSession,
    since: date | None = None,
    until: date | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[VillageDayOut]:
    await _village(session, code)
    query = (
        select(VillageDay)
        .where(VillageDay.village_code == code)
        .order_by(VillageDay.business_date)
        .limit(limit)
        .offset(offset)
    )
    if since is not None:
        query = query.where(VillageDay.business_date >= since)
    if until is not None:
        query = query.where(VillageDay.business_date <= until)
    return [
        VillageDayOut(
            business_date=d.business_date,
            outstanding=format_money(d.outstanding),
            non_performing=format_money(d.non_performing),
            npl_ratio=_ratio(d.outstanding, d.non_performing),
        )
        for d in await session.scalars(query)
    ]


async def _override(
    request: Request, session: AsyncSession, principal: Principal, code: str, body: ReasonIn, freeze: bool
) -> VillageOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        village = await _village(session, code, lock=True)
        if village.frozen == freeze:
            state = "frozen" if freeze else "not frozen"
            raise Problem(
                409, "ALREADY_FROZEN" if freeze else "NOT_FROZEN", f"Village {state}", f"Village {code} is {state}."
            )
        today = await breaker.today(session)
        existing = await session.get(VillageOverride, code)
        if village.over == freeze:  # the automatic state already says so: no override needed
            if existing is not None:
                await session.delete(existing)
        else:
            if existing is None:
                existing = VillageOverride(village_code=code)
                session.add(existing)
            existing.override = "frozen" if freeze else "unfrozen"
            existing.over_when_set, existing.since = village.over, today
            existing.reason, existing.decided_by, existing.decided_at = body.reason, principal.name, datetime.now(UTC)
        await breaker.set_frozen(
            session, village, freeze, today, manual=True, reason=body.reason, decided_by=principal.name
        )
        await session.flush()
        out = await _village_out(session, village)
        await idempotency.remember(session, request, 200, out)
    return out


@router.post(
    "/villages/{code}/freeze",
    response_model=VillageOut,
    tags=["circuit breaker"],
    summary="Freeze new credit in a village by hand, with a written reason (government)",
    dependencies=[scope("risk:override")],
)
async def freeze_village(
    code: str, body: ReasonIn, request: Request, session: Session, principal: CurrentPrincipal
) -> VillageOut | JSONResponse:
    return await _override(request, session, principal, code, body, True)


@router.post(
    "/villages/{code}/unfreeze",
    response_model=VillageOut,
    tags=["circuit breaker"],
    summary="Lift a village's freeze by hand, with a written reason (government); it holds until the ratio "
    "next crosses the line",
    dependencies=[scope("risk:override")],
)
async def unfreeze_village(
    code: str, body: ReasonIn, request: Request, session: Session, principal: CurrentPrincipal
) -> VillageOut | JSONResponse:
    return await _override(request, session, principal, code, body, False)


def _totals(villages: list[Village]) -> tuple[Decimal, Decimal]:
    """Outstanding and non-performing principal over some villages."""
    return (
        sum((v.outstanding for v in villages), Decimal("0.00")),
        sum((v.non_performing for v in villages), Decimal("0.00")),
    )


async def _township_out(session: AsyncSession, t: Township) -> TownshipOut:
    villages = list(await session.scalars(select(Village).where(Village.township_code == t.code)))
    outstanding, non_performing = _totals(villages)
    return TownshipOut(
        code=t.code,
        name=t.name,
        npl_ratio=_ratio(outstanding, non_performing),
        outstanding=format_money(outstanding),
        non_performing=format_money(non_performing),
        villages=len(villages),
        villages_over_threshold=sum(v.over for v in villages),
        villages_frozen=sum(v.frozen for v in villages),
        halted=t.halted,
    )


@router.get("/townships", response_model=list[TownshipOut], tags=["circuit breaker"], dependencies=[scope("risk:read")])
async def list_townships(session: ReadSession, limit: Limit = MAX_PAGE, offset: Offset = 0) -> list[TownshipOut]:
    query = select(Township).order_by(Township.code).limit(limit).offset(offset)
    return [await _township_out(session, t) for t in await session.scalars(query)]


@router.get(
    "/townships/{code}", response_model=TownshipOut, tags=["circuit breaker"], dependencies=[scope("risk:read")]
)
async def get_township(code: str, session: ReadSession) -> TownshipOut:
    township = await session.get(Township, code)
    if township is None:
        raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"Risk knows no township {code}.")
    return await _township_out(session, township)


@router.get("/decisions", response_model=list[DecisionOut], tags=["circuit breaker"], dependencies=[scope("risk:read")])
async def list_decisions(
    session: ReadSession, code: str | None = None, limit: Limit = 100, offset: Offset = 0
) -> list[DecisionOut]:
    """Every freeze, lift, halt and resumption, newest first, with the figures behind it."""
    query = select(Decision).order_by(Decision.id.desc()).limit(limit).offset(offset)
    if code is not None:
        query = query.where(Decision.code == code)
    return [
        DecisionOut(
            kind=d.kind,
            code=d.code,
            manual=d.manual,
            reason=d.reason,
            decided_by=d.decided_by,
            business_date=d.business_date,
            figures=d.figures,
            event_id=d.event_id,
            decided_at=d.decided_at,
        )
        for d in await session.scalars(query)
    ]


# --- losses and claims ----------------------------------------------------------------------


def _loss_out(row: Loss) -> LossOut:
    return LossOut(
        loan_id=row.loan_id,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        village_code=row.village_code,
        township_code=row.township_code,
        business_date=row.business_date,
        loss=format_money(row.loss),
        mutual_guarantee=format_money(row.mutual_guarantee),
        government=format_money(row.government),
        bank=format_money(row.bank),
        insurer=format_money(row.insurer),
    )


@router.get("/losses", response_model=list[LossOut], tags=["losses"], dependencies=[scope("losses:read")])
async def list_losses(
    session: ReadSession,
    loan_id: str | None = None,
    village_code: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[LossOut]:
    query = select(Loss).order_by(Loss.business_date, Loss.loan_id).limit(limit).offset(offset)
    if loan_id is not None:
        query = query.where(Loss.loan_id == loan_id)
    if village_code is not None:
        query = query.where(Loss.village_code == village_code)
    return [_loss_out(row) for row in await session.scalars(query)]


def _claim_out(loss: Loss, party: Literal["bank", "insurer"], settlement: ClaimSettlement | None) -> ClaimOut:
    return ClaimOut(
        loan_id=loss.loan_id,
        party=party,
        amount=format_money(loss.bank if party == "bank" else loss.insurer),
        status="settled" if settlement else "open",
        village_code=loss.village_code,
        business_date=loss.business_date,
        reference=settlement.reference if settlement else None,
        settled_on=settlement.settled_on if settlement else None,
        settled_by=settlement.settled_by if settlement else None,
    )


@router.get("/claims", response_model=list[ClaimOut], tags=["losses"], dependencies=[scope("losses:read")])
async def list_claims(
    session: ReadSession,
    party: Literal["bank", "insurer"] | None = None,
    status: Literal["open", "settled"] | None = None,
    loan_id: str | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[ClaimOut]:
    """The bank's and insurer's shares of realised losses (004 §6(1)) and whether settled."""
    query = select(Loss).order_by(Loss.business_date, Loss.loan_id)
    if loan_id is not None:
        query = query.where(Loss.loan_id == loan_id)
    settled = {(s.loan_id, s.party): s for s in await session.scalars(select(ClaimSettlement))}
    parties: tuple[Literal["bank", "insurer"], ...] = (party,) if party else ("bank", "insurer")
    claims = (
        claim
        for loss in await session.scalars(query)
        for claim in (_claim_out(loss, p, settled.get((loss.loan_id, p))) for p in parties)
        if Decimal(claim.amount) > 0 and (status is None or claim.status == status)
    )
    # Claims are derived and filtered per loss, so the page is cut from them, not in SQL.
    return list(islice(claims, offset, offset + limit))


@router.post(
    "/claims/{loan_id}/{party}/settle",
    response_model=ClaimOut,
    tags=["losses"],
    summary="Mark the bank's or insurer's share of a loss settled (that party, or the government)",
    dependencies=[scope("claims:settle")],
)
async def settle_claim(
    loan_id: str,
    party: Literal["bank", "insurer"],
    body: SettleIn,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> ClaimOut | JSONResponse:
    require_role(principal, party, "government")
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        # The loss row is locked: FOR UPDATE on a settlement not yet written locks nothing, so
        # two concurrent settlements both inserted and one failed on the key (a 500).
        loss = await session.get(Loss, loan_id, with_for_update=True)
        if loss is None:
            raise Problem(404, "LOSS_NOT_FOUND", "No loss", f"No realised loss on loan {loan_id}.")
        if await session.get(ClaimSettlement, (loan_id, party)) is not None:
            raise Problem(409, "CLAIM_SETTLED", "Claim already settled", f"The {party}'s claim is settled.")
        settlement = ClaimSettlement(
            loan_id=loan_id,
            party=party,
            reference=body.reference,
            settled_by=principal.name,
            settled_on=await breaker.today(session),
            settled_at=datetime.now(UTC),
        )
        session.add(settlement)
        out = _claim_out(loss, party, settlement)
        await emit(
            session,
            new_event(
                "risk.claim.settled",
                loss.village_code,
                ClaimSettled(
                    loan_id=loan_id, party=party, amount=out.amount, reference=body.reference, settled_by=principal.name
                ),
            ),
        )
        await idempotency.remember(session, request, 200, out)
    return out


# --- funds ----------------------------------------------------------------------------------


async def _fund_out(session: AsyncSession) -> FundOut:
    balance = await funds.balance(session)
    capacity = funds.capacity_of(balance)
    outstanding = await funds.programme_outstanding(session)
    return FundOut(
        balance=format_money(balance),
        capacity=format_money(capacity),
        outstanding=format_money(outstanding),
        available=format_money(max(Decimal("0.00"), capacity - outstanding)),
        leverage=breaker.settings().fund_leverage,
    )


@router.get("/fund", response_model=FundOut, tags=["funds"], dependencies=[scope("risk:read")])
async def get_fund(session: ReadSession) -> FundOut:
    """The risk compensation fund (004 §6(2)): capacity is 10x the balance."""
    return await _fund_out(session)


@router.get("/fund/entries", response_model=list[FundEntryOut], tags=["funds"], dependencies=[scope("fund:read")])
async def list_fund_entries(session: ReadSession, limit: Limit = 100, offset: Offset = 0) -> list[FundEntryOut]:
    query = select(FundEntry).order_by(FundEntry.id).limit(limit).offset(offset)
    return [
        FundEntryOut(
            kind=e.kind,
            amount=format_money(e.amount),
            loan_id=e.loan_id,
            reason=e.reason,
            decided_by=e.decided_by,
            business_date=e.business_date,
            recorded_at=e.recorded_at,
        )
        for e in await session.scalars(query)
    ]


@router.post(
    "/fund/top-ups",
    status_code=201,
    response_model=FundOut,
    tags=["funds"],
    summary="Top up the fund (government)",
    dependencies=[scope("fund:write")],
)
async def top_up_fund(
    body: TopUpIn, request: Request, session: Session, principal: CurrentPrincipal
) -> FundOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        await funds.top_up(session, body.amount, body.reason, principal.name)
        out = await _fund_out(session)
        await idempotency.remember(session, request, 201, out)
    return out


@router.get(
    "/mutual-guarantee", response_model=list[MutualGuaranteeOut], tags=["funds"], dependencies=[scope("losses:read")]
)
async def list_mutual_guarantee(
    session: ReadSession,
    business_id: str | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[MutualGuaranteeOut]:
    """Businesses' 10% contributions (004 §6(2)) and what their own losses drew from them."""
    query = select(MutualGuaranteeAccount).order_by(MutualGuaranteeAccount.business_id).limit(limit).offset(offset)
    if business_id is not None:
        query = query.where(MutualGuaranteeAccount.business_id == business_id)
    return [
        MutualGuaranteeOut(
            business_id=a.business_id,
            village_code=a.village_code,
            contributed=format_money(a.contributed),
            drawn=format_money(a.drawn),
            balance=format_money(a.contributed - a.drawn),
        )
        for a in await session.scalars(query)
    ]


# --- titles and indicators ------------------------------------------------------------------


@router.post(
    "/titles/evaluations",
    response_model=EvaluationOut,
    tags=["titles"],
    summary="Evaluate a year's credit titles (government); re-running awards and revokes the difference",
    dependencies=[scope("titles:write")],
)
async def evaluate_titles(body: EvaluationIn, request: Request, session: Session) -> EvaluationOut:
    async with session.begin():
        counts, awarded, revoked = await titles.evaluate(session, body.year)
    return EvaluationOut(year=body.year, titles=counts, awarded=awarded, revoked=revoked)


@router.get("/titles", response_model=list[TitleOut], tags=["titles"], dependencies=[scope("titles:read")])
async def list_titles(
    session: ReadSession,
    year: Annotated[int | None, Query(ge=0, le=9999)] = None,
    kind: Literal["credit_village", "credit_township", "credit_household", "credit_community"] | None = None,
    village_code: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[TitleOut]:
    query = select(Title).order_by(Title.year, Title.kind, Title.code).limit(limit).offset(offset)
    if year is not None:
        query = query.where(Title.year == year)
    if kind is not None:
        query = query.where(Title.kind == kind)
    if village_code is not None:
        query = query.where(Title.village_code == village_code)
    return [
        TitleOut(
            year=t.year,
            kind=t.kind,
            code=t.code,
            village_code=t.village_code,
            township_code=t.township_code,
            figures=t.figures,
            awarded_at=t.awarded_at,
        )
        for t in await session.scalars(query)
    ]


@router.post(
    "/communities/{code}/assessments",
    response_model=AssessmentOut,
    tags=["titles"],
    summary="Record a community's yearly figures for the credit-community title (seed 000; government)",
    dependencies=[scope("titles:write")],
)
async def assess_community(
    code: str, body: AssessmentIn, session: Session, principal: CurrentPrincipal
) -> AssessmentOut:
    async with session.begin():
        if await session.get(Community, code) is None:
            raise Problem(404, "COMMUNITY_NOT_FOUND", "Community not found", f"Risk knows no community {code}.")
        await session.merge(
            CommunityAssessment(
                community_code=code,
                year=body.year,
                loan_recovery=body.loan_recovery,
                npl_ratio=body.npl_ratio,
                new_loan_interest_recovery=body.new_loan_interest_recovery,
                malicious_evasion=body.malicious_evasion,
                assessed_by=principal.name,
                assessed_at=datetime.now(UTC),
            )
        )
    return AssessmentOut(community_code=code, year=body.year, failed=titles.community_failures(body))


@router.get("/indicators", response_model=DistrictIndicatorsOut, tags=["indicators"], dependencies=[scope("risk:read")])
async def get_indicators(session: ReadSession) -> DistrictIndicatorsOut:
    """Credit-household coverage (seed 003 annex 1) and NPL figures per township and district."""
    households: dict[str, int] = defaultdict(int)
    rated: dict[str, int] = defaultdict(int)
    # Grades (scoring's events) and households (registry's) are two projections: a grade may
    # arrive before its registration. One statement (one snapshot) counts both, rated only
    # among the registered households, so the share stays within 0..1; two statements were a
    # 500 (ValueError from coverage()) when a grade or a registration landed between them.
    for township_code, grade, count in await session.execute(
        select(Household.township_code, SubjectGrade.grade, func.count())
        .select_from(Household)
        .outerjoin(SubjectGrade, (SubjectGrade.subject_id == Household.id) & (SubjectGrade.subject_kind == "household"))
        .group_by(Household.township_code, SubjectGrade.grade)
    ):
        households[township_code] += count
        if grade is not None and grade_at_least_a(grade):
            rated[township_code] += count
    villages: dict[str, list[Village]] = defaultdict(list)
    for v in await session.scalars(select(Village)):
        villages[v.township_code].append(v)
    townships = list(await session.scalars(select(Township).order_by(Township.code)))

    def indicators(code: str, name: str, hh: int, good: int, vs: list[Village], halted: bool | None) -> IndicatorsOut:
        outstanding, non_performing = _totals(vs)
        share = coverage(good, hh)
        return IndicatorsOut(
            code=code,
            name=name,
            households=hh,
            rated_a_or_better=good,
            coverage=f"{share:.4f}",
            coverage_points=f"{coverage_points(share):.2f}",
            outstanding=format_money(outstanding),
            non_performing=format_money(non_performing),
            npl_ratio=_ratio(outstanding, non_performing),
            villages=len(vs),
            villages_over_threshold=sum(v.over for v in vs),
            halted=halted,
        )

    per_township = [
        indicators(t.code, t.name, households[t.code], rated[t.code], villages[t.code], t.halted) for t in townships
    ]
    every_village = [v for vs in villages.values() for v in vs]
    district = indicators("district", "district", sum(households.values()), sum(rated.values()), every_village, None)
    return DistrictIndicatorsOut(business_date=await breaker.today(session), district=district, townships=per_township)
