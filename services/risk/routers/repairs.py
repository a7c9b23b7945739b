"""Credit repair (信用修复, seed 001): the subject applies, the government reviews and decides."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.risk import credit_lists, repairs
from services.risk.models import ListEntry, Repair
from services.risk.schemas import RepairDecisionIn, RepairIn, RepairOut, RepairReviewIn
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


def _repair_out(r: Repair, entry: ListEntry) -> RepairOut:
    return RepairOut(
        repair_id=r.id,
        entry_id=r.entry_id,
        subject_kind=cast(credit_lists.SubjectKind, entry.subject_kind),
        subject_id=entry.subject_id,
        name=entry.name,
        identifier_masked=entry.identifier_masked,
        village_code=entry.village_code,
        statement=r.statement,
        obligations_fulfilled_on=r.obligations_fulfilled_on,
        status=cast(Literal["applied", "under_review", "granted", "refused"], r.status),
        applied_by=r.applied_by,
        applied_on=r.applied_on,
        earliest_repair_on=entry.earliest_repair_on,
        review_note=r.review_note,
        decided_by_role=r.decided_by_role,
        reasons=r.reasons,
        decided_on=r.decided_on,
        reviewed_by=r.reviewed_by,
        decided_by=r.decided_by,
    )


@router.post(
    "/credit-repairs",
    status_code=201,
    response_model=RepairOut,
    tags=["credit repair"],
    dependencies=[scope("repairs:apply"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            404: ["LIST_ENTRY_NOT_FOUND"],
            409: ["NOT_REPAIRABLE", "REPAIR_PENDING", "REPAIR_TOO_EARLY"],
            422: ["FULFILLED_IN_THE_FUTURE"],
        }
    ),
)
async def apply_for_repair(
    body: RepairIn, request: Request, session: Session, principal: CurrentPrincipal
) -> RepairOut | JSONResponse:
    """信用修复 (seed 001): a listed subject that has fulfilled its obligations applies; the
    minimum publication period of the entry's tier must be over."""

    async def applied() -> RepairOut:
        repair, entry = await repairs.apply(
            session, principal, body.entry_id, body.statement, body.obligations_fulfilled_on
        )
        return _repair_out(repair, entry)

    return await idempotent(session, request, body, applied, status=201)


@router.post(
    "/credit-repairs/{repair_id}/review",
    response_model=RepairOut,
    tags=["credit repair"],
    dependencies=[scope("lists:decide")],
    responses=problems({404: ["LIST_ENTRY_NOT_FOUND", "REPAIR_NOT_FOUND"], 409: ["FOUR_EYES_REQUIRED", "NOT_APPLIED"]}),
)
async def review_repair(
    repair_id: str, body: RepairReviewIn, session: Session, principal: CurrentPrincipal
) -> RepairOut:
    async with session.begin():
        return _repair_out(*await repairs.review(session, principal, repair_id, body.note))


@router.post(
    "/credit-repairs/{repair_id}/decision",
    response_model=RepairOut,
    tags=["credit repair"],
    dependencies=[scope("lists:decide")],
    responses=problems(
        {
            404: ["LIST_ENTRY_NOT_FOUND", "REPAIR_NOT_FOUND"],
            409: ["FOUR_EYES_REQUIRED", "NOT_REPAIRABLE", "NOT_UNDER_REVIEW", "REPAIR_TOO_EARLY"],
        }
    ),
)
async def decide_repair(
    repair_id: str, body: RepairDecisionIn, session: Session, principal: CurrentPrincipal
) -> RepairOut:
    """Granted: the subject leaves the black list (its new credit is restored), the decision
    is published, and the record is kept 5 years from the fulfilment (征信业管理条例 §16).
    The applicant (the government applying for a subject) neither reviews nor decides its own
    application: 409 `FOUR_EYES_REQUIRED`."""
    async with session.begin():
        return _repair_out(*await repairs.decide(session, principal, repair_id, body.decision, body.reasons))


@router.get(
    "/credit-repairs", response_model=list[RepairOut], tags=["credit repair"], dependencies=[scope("lists:decide")]
)
async def list_repairs(
    session: ReadSession,
    status: Literal["applied", "under_review", "granted", "refused"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RepairOut]:
    return [_repair_out(r, entry) for r, entry in await repairs.listed(session, status, limit, offset)]
