"""The circuit breaker (004 §6(3)): villages, townships, the decisions, manual freeze and unfreeze."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import breaker
from services.risk.models import Township, Village, VillageOverride
from services.risk.schemas import DecisionOut, ReasonIn, TownshipOut, VillageDayOut, VillageOut
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.money import format_money
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


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
    found = await breaker.villages(session, township_code, frozen, limit, offset)
    return [await _village_out(session, v) for v in found]


@router.get(
    "/villages/{code}",
    response_model=VillageOut,
    tags=["circuit breaker"],
    dependencies=[scope("risk:read")],
    responses=problems({404: ["VILLAGE_NOT_FOUND"]}),
)
async def get_village(code: str, session: ReadSession) -> VillageOut:
    return await _village_out(session, await breaker.get_village(session, code))


@router.get(
    "/villages/{code}/history",
    response_model=list[VillageDayOut],
    tags=["circuit breaker"],
    dependencies=[scope("risk:read")],
    responses=problems({404: ["VILLAGE_NOT_FOUND"]}),
)
async def village_history(
    code: str,
    session: ReadSession,
    since: date | None = None,
    until: date | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[VillageDayOut]:
    return [
        VillageDayOut(
            business_date=d.business_date,
            outstanding=format_money(d.outstanding),
            non_performing=format_money(d.non_performing),
            npl_ratio=breaker.ratio_text(d.outstanding, d.non_performing),
        )
        for d in await breaker.village_days(session, code, since, until, limit, offset)
    ]


async def _override(
    request: Request, session: AsyncSession, decided_by: str, code: str, body: ReasonIn, freeze: bool
) -> VillageOut | JSONResponse:
    async def overridden() -> VillageOut:
        return await _village_out(session, await breaker.override(session, code, freeze, body.reason, decided_by))

    return await idempotent(session, request, body, overridden, status=200)


@router.post(
    "/villages/{code}/freeze",
    response_model=VillageOut,
    tags=["circuit breaker"],
    summary="Freeze new credit in a village by hand, with a written reason (government)",
    dependencies=[scope("risk:override"), IDEMPOTENCY_KEY],
    responses=problems({404: ["VILLAGE_NOT_FOUND"], 409: ["ALREADY_FROZEN"]}),
)
async def freeze_village(
    code: str, body: ReasonIn, request: Request, session: Session, principal: CurrentPrincipal
) -> VillageOut | JSONResponse:
    return await _override(request, session, principal.name, code, body, True)


@router.post(
    "/villages/{code}/unfreeze",
    response_model=VillageOut,
    tags=["circuit breaker"],
    summary="Lift a village's freeze by hand, with a written reason (government); it holds until the ratio "
    "next crosses the line",
    dependencies=[scope("risk:override"), IDEMPOTENCY_KEY],
    responses=problems({404: ["VILLAGE_NOT_FOUND"], 409: ["NOT_FROZEN"]}),
)
async def unfreeze_village(
    code: str, body: ReasonIn, request: Request, session: Session, principal: CurrentPrincipal
) -> VillageOut | JSONResponse:
    return await _override(request, session, principal.name, code, body, False)


async def _township_out(session: AsyncSession, t: Township) -> TownshipOut:
    villages = await breaker.villages_of(session, t.code)
    outstanding, non_performing = breaker.totals(villages)
    return TownshipOut(
        code=t.code,
        name=t.name,
        npl_ratio=breaker.ratio_text(outstanding, non_performing),
        outstanding=format_money(outstanding),
        non_performing=format_money(non_performing),
        villages=len(villages),
        villages_over_threshold=sum(v.over for v in villages),
        villages_frozen=sum(v.frozen for v in villages),
        halted=t.halted,
    )


@router.get("/townships", response_model=list[TownshipOut], tags=["circuit breaker"], dependencies=[scope("risk:read")])
async def list_townships(session: ReadSession, limit: Limit = MAX_PAGE, offset: Offset = 0) -> list[TownshipOut]:
    return [await _township_out(session, t) for t in await breaker.townships(session, limit, offset)]


@router.get(
    "/townships/{code}",
    response_model=TownshipOut,
    tags=["circuit breaker"],
    dependencies=[scope("risk:read")],
    responses=problems({404: ["TOWNSHIP_NOT_FOUND"]}),
)
async def get_township(code: str, session: ReadSession) -> TownshipOut:
    return await _township_out(session, await breaker.get_township(session, code))


@router.get("/decisions", response_model=list[DecisionOut], tags=["circuit breaker"], dependencies=[scope("risk:read")])
async def list_decisions(
    session: ReadSession, code: str | None = None, limit: Limit = 100, offset: Offset = 0
) -> list[DecisionOut]:
    """Every freeze, lift, halt and resumption, newest first, with the figures behind it."""
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
        for d in await breaker.decisions(session, code, limit, offset)
    ]
