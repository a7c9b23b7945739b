"""The yearly credit titles (seed 000 §5) and the community figures they need."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from services.risk import titles
from services.risk.schemas import AssessmentIn, AssessmentOut, EvaluationIn, EvaluationOut, TitleOut
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


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
        for t in await titles.listed(session, year, kind, village_code, limit, offset)
    ]


@router.post(
    "/communities/{code}/assessments",
    response_model=AssessmentOut,
    tags=["titles"],
    summary="Record a community's yearly figures for the credit-community title (seed 000; government)",
    dependencies=[scope("titles:write")],
    responses=problems({404: ["COMMUNITY_NOT_FOUND"]}),
)
async def assess_community(
    code: str, body: AssessmentIn, session: Session, principal: CurrentPrincipal
) -> AssessmentOut:
    async with session.begin():
        failed = await titles.assess_community(session, code, body.year, body, principal.name)
    return AssessmentOut(community_code=code, year=body.year, failed=failed)
