"""Objections (异议) to a stated fact: opened by or for the subject, answered by the
fact's supplier within 20 days (征信业管理条例 §25)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from services.registry import objections
from services.registry.loaders import household_of
from services.registry.models import Objection
from services.registry.routers.dependencies import EvidenceRef, FactSource, provenance
from services.registry.schemas import Code, DecisionIn, ObjectionIn, ObjectionOut
from shared.db import BIGINT_MAX
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_visible, scope

router = APIRouter(prefix="/v1")


@router.post(
    "/facts/{fact_id}/objections",
    status_code=201,
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("objections:write")],
    responses=problems(
        {
            404: ["BUSINESS_NOT_FOUND", "FACT_NOT_FOUND", "HOUSEHOLD_NOT_FOUND"],
            409: ["FACT_SUPERSEDED", "OBJECTION_OPEN"],
        }
    ),
)
async def open_objection(
    fact_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], body: ObjectionIn, session: Session, principal: CurrentPrincipal
) -> ObjectionOut:
    return await objections.open_objection(session, fact_id, body, principal)


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
    return [objections.objection_view(o, today) for o in await session.scalars(query)]


@router.get(
    "/objections/{objection_id}",
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("objections:read")],
    responses=problems({404: ["OBJECTION_NOT_FOUND"]}),
)
async def get_objection(objection_id: str, session: ReadSession, principal: CurrentPrincipal) -> ObjectionOut:
    objection = await session.get(Objection, objection_id)
    if objection is None:
        raise objections.objection_not_found(objection_id)
    ensure_visible(
        principal,
        objections.objection_not_found(objection_id),
        village=objection.village_code,
        household=household_of(objection.subject_kind, objection.subject_id),
    )
    return objections.objection_view(objection, date.today())


@router.post(
    "/objections/{objection_id}/decision",
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("facts:write")],
    responses=problems(
        {
            403: ["FACT_SOURCE_NOT_ALLOWED", "FACT_SOURCE"],
            404: ["BUSINESS_NOT_FOUND", "HOUSEHOLD_NOT_FOUND", "OBJECTION_NOT_FOUND"],
            409: ["OBJECTION_DECIDED"],
            422: ["DERIVED_FACT", "NOT_A_CORRECTION", "STATEMENT_REQUIRED", "FACT_SOURCE"],
        }
    ),
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
    return await objections.decide_objection(session, objection_id, body, principal, prov)
