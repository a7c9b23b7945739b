"""The administrative units subjects belong to: townships, and the villages and urban
communities under them, with their renames."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.registry import hierarchy
from services.registry.models import Community, Township, Village
from services.registry.schemas import (
    CommunityIn,
    CommunityOut,
    RenameIn,
    TownshipIn,
    TownshipOut,
    VillageIn,
    VillageOut,
)
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.problems import Problem
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


@router.post(
    "/townships",
    status_code=201,
    response_model=TownshipOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:write"), IDEMPOTENCY_KEY],
    responses=problems({409: ["DUPLICATE_CODE"]}),
)
async def create_township(body: TownshipIn, request: Request, session: Session) -> TownshipOut | JSONResponse:
    return await idempotent(session, request, body, lambda: hierarchy.create_township(session, body), status=201)


@router.get("/townships", response_model=list[TownshipOut], tags=["hierarchy"], dependencies=[scope("hierarchy:read")])
async def list_townships(session: ReadSession, limit: Limit = MAX_PAGE, offset: Offset = 0) -> list[TownshipOut]:
    query = select(Township).order_by(Township.code).limit(limit).offset(offset)
    return [TownshipOut(code=t.code, name=t.name) for t in await session.scalars(query)]


@router.get(
    "/townships/{code}",
    response_model=TownshipOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:read")],
    responses=problems({404: ["TOWNSHIP_NOT_FOUND"]}),
)
async def get_township(code: str, session: ReadSession) -> TownshipOut:
    township = await session.get(Township, code)
    if township is None:
        raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"No township {code}.")
    return TownshipOut(
        code=township.code, name=township.name, former_names=await hierarchy.name_history(session, "township", code)
    )


@router.patch(
    "/townships/{code}",
    response_model=TownshipOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:write")],
    responses=problems({404: ["TOWNSHIP_NOT_FOUND"]}),
)
async def rename_township(code: str, body: RenameIn, session: Session, principal: CurrentPrincipal) -> TownshipOut:
    return await hierarchy.rename_township(session, code, body.name, principal)


@router.post(
    "/villages",
    status_code=201,
    response_model=VillageOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:write"), IDEMPOTENCY_KEY],
    responses=problems({409: ["DUPLICATE_CODE"], 422: ["UNKNOWN_TOWNSHIP"]}),
)
async def create_village(body: VillageIn, request: Request, session: Session) -> VillageOut | JSONResponse:
    return await idempotent(session, request, body, lambda: hierarchy.create_village(session, body), status=201)


@router.get(
    "/villages/{code}",
    response_model=VillageOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:read")],
    responses=problems({404: ["VILLAGE_NOT_FOUND"]}),
)
async def get_village(code: str, session: ReadSession) -> VillageOut:
    village = await session.get(Village, code)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {code}.")
    return VillageOut(
        code=village.code,
        name=village.name,
        township_code=village.township_code,
        former_names=await hierarchy.name_history(session, "village", code),
    )


@router.patch(
    "/villages/{code}",
    response_model=VillageOut,
    tags=["hierarchy"],
    dependencies=[scope("hierarchy:write")],
    responses=problems({404: ["VILLAGE_NOT_FOUND"]}),
)
async def rename_village(code: str, body: RenameIn, session: Session, principal: CurrentPrincipal) -> VillageOut:
    return await hierarchy.rename_village(session, code, body.name, principal)


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
    dependencies=[scope("hierarchy:write"), IDEMPOTENCY_KEY],
    responses=problems({409: ["DUPLICATE_CODE"], 422: ["UNKNOWN_TOWNSHIP"]}),
)
async def create_community(body: CommunityIn, request: Request, session: Session) -> CommunityOut | JSONResponse:
    return await idempotent(session, request, body, lambda: hierarchy.create_community(session, body), status=201)


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
