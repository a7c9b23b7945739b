"""The administrative units subjects belong to: townships, and the villages and urban
communities under them, with their renames."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import Community, NameChange, Township, Village
from services.registry.schemas import (
    CommunityIn,
    CommunityOut,
    FormerName,
    RenameIn,
    TownshipIn,
    TownshipOut,
    VillageIn,
    VillageOut,
)
from shared import idempotency
from shared.auth import Principal
from shared.catalogue import CommunityCreated, TownshipCreated, UnitRenamed, VillageCreated
from shared.events import new_event
from shared.messaging import emit
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, Problem, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


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
