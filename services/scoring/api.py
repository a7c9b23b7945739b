from __future__ import annotations

import json
from dataclasses import asdict

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import context, notices
from services.scoring.context import business_date
from services.scoring.models import NoticeObjection, Rating, RatingState, Subject
from services.scoring.notices import rating_not_found, subject_and_state
from services.scoring.ratings import rule_set
from services.scoring.schemas import (
    BusinessDateOut,
    CurrentRatingOut,
    EffectiveOut,
    EvaluateIn,
    EvaluationOut,
    NoticeEntry,
    NoticeObjectionOut,
    ObjectionIn,
    RatingOut,
    ReasonOut,
    RejectionIn,
    ResolutionIn,
)
from shared.audit import Audited
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_bound, ensure_visible, scope

router = APIRouter(prefix="/v1")


@router.post(
    "/scorecard/evaluate",
    response_model=EvaluationOut,
    tags=["scorecard"],
    summary="What-if: evaluate a profile with the rule set in force; nothing is kept",
    dependencies=[scope("scorecard:evaluate")],
)
async def evaluate(body: EvaluateIn) -> EvaluationOut:
    evaluation = rule_set().evaluate(body.profile.model_dump(mode="json", exclude_none=True), body.poor_household)
    return EvaluationOut(
        score=evaluation.score,
        grade=evaluation.grade,
        credit_limit=evaluation.credit_limit,
        vetoed=evaluation.vetoed,
        rule_set=evaluation.rule_set,
        reasons=[ReasonOut(**asdict(r)) for r in evaluation.reasons],
    )


def _rating_out(r: Rating) -> RatingOut:
    return RatingOut(
        rating_id=r.id,
        score=r.score,
        grade=r.grade,
        credit_limit=r.credit_limit,
        vetoed=r.vetoed,
        rule_set=r.rule_set,
        reasons=json.loads(r.reasons),
        business_date=r.business_date,
        computed_at=r.computed_at,
    )


async def _current(session: AsyncSession, subject_id: str) -> CurrentRatingOut:
    subject, state = await subject_and_state(session, subject_id)
    history = list(await session.scalars(select(Rating).where(Rating.subject_id == subject_id).order_by(Rating.id)))
    current = next(r for r in history if r.id == state.current_rating_id)
    effective = next((r for r in history if r.id == state.effective_rating_id), None)
    out = _rating_out(current)
    return CurrentRatingOut(
        **out.model_dump(exclude={"business_date", "computed_at"}),
        subject_kind=subject.kind,
        subject_id=subject.id,
        village_code=subject.village_code,
        status=state.status,
        notice_starts=state.notice_starts,
        notice_ends=state.notice_ends,
        certificate_no=state.certificate_no,
        reason_code=state.reason_code,
        reason=state.reason,
        decided_by=state.decided_by,
        decided_by_role=state.decided_by_role,
        effective=EffectiveOut(
            grade=effective.grade,
            credit_limit=effective.credit_limit,
            rating_id=effective.id,
        )
        if effective
        else None,
        history=[_rating_out(r) for r in reversed(history)],
    )


@router.get(
    "/households/{household_id}/rating",
    response_model=CurrentRatingOut,
    tags=["ratings"],
    dependencies=[scope("ratings:read")],
    responses=problems({404: ["RATING_NOT_FOUND"]}),
)
async def household_rating(
    household_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> CurrentRatingOut:
    out = await _current(session, household_id)
    ensure_visible(principal, rating_not_found(household_id), village=out.village_code, household=out.subject_id)
    await audit.record("household", household_id)
    return out


@router.get(
    "/businesses/{business_id}/rating",
    response_model=CurrentRatingOut,
    tags=["ratings"],
    dependencies=[scope("ratings:read")],
    responses=problems({404: ["RATING_NOT_FOUND"]}),
)
async def business_rating(
    business_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> CurrentRatingOut:
    out = await _current(session, business_id)
    ensure_visible(principal, rating_not_found(business_id), village=out.village_code)
    await audit.record("business", business_id)
    return out


def _objection_out(o: NoticeObjection) -> NoticeObjectionOut:
    return NoticeObjectionOut(
        objection_id=o.id,
        subject_id=o.subject_id,
        rating_id=o.rating_id,
        reason=o.reason,
        raised_by=o.raised_by,
        raised_at=o.raised_at,
        status=o.status,
        resolution_note=o.resolution_note,
        resolved_by=o.resolved_by,
        resolved_by_role=o.resolved_by_role,
    )


@router.post(
    "/households/{household_id}/objections",
    status_code=201,
    response_model=NoticeObjectionOut,
    tags=["notice"],
    summary="Object to a rating during its public notice; suspends it",
    dependencies=[scope("notices:object")],
    responses=problems({404: ["RATING_NOT_FOUND"], 409: ["NOT_IN_NOTICE", "TOO_MANY_OPEN_OBJECTIONS"]}),
)
async def raise_objection(
    household_id: str, body: ObjectionIn, session: Session, principal: CurrentPrincipal
) -> NoticeObjectionOut:
    # Anyone may object during the notice (004 annex 2 step 4); the public role included.
    async with session.begin():
        objection = await notices.raise_objection(
            session, household_id, body.reason, principal, context.settings().max_open_public_objections
        )
        return _objection_out(objection)


@router.get(
    "/households/{household_id}/objections",
    response_model=list[NoticeObjectionOut],
    tags=["notice"],
    dependencies=[scope("objections:read")],
    responses=problems({403: ["NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE"]}),
)
async def list_objections(
    household_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[NoticeObjectionOut]:
    subject = await session.get(Subject, household_id)
    if subject is not None:
        ensure_bound(principal, village=subject.village_code, household=subject.id)
    else:
        ensure_bound(principal, village=None)
    rows = await session.scalars(
        select(NoticeObjection)
        .where(NoticeObjection.subject_id == household_id)
        .order_by(NoticeObjection.raised_at)
        .limit(limit)
        .offset(offset)
    )
    objections = [_objection_out(o) for o in rows]
    # Disclosed only when there is something: an empty list says nothing about the household.
    if objections:
        await audit.record("household", household_id)
    return objections


@router.post(
    "/households/{household_id}/objections/{objection_id}/resolution",
    response_model=NoticeObjectionOut,
    tags=["notice"],
    summary="Sustain (the rating is rejected) or dismiss (the notice continues)",
    dependencies=[scope("objections:decide")],
    responses=problems(
        {404: ["OBJECTION_NOT_FOUND", "RATING_NOT_FOUND"], 409: ["FOUR_EYES_REQUIRED", "OBJECTION_CLOSED"]}
    ),
)
async def resolve_objection(
    household_id: str, objection_id: str, body: ResolutionIn, session: Session, principal: CurrentPrincipal
) -> NoticeObjectionOut:
    async with session.begin():
        objection = await notices.resolve_objection(
            session, principal, household_id, objection_id, body.outcome, body.note
        )
        return _objection_out(objection)


@router.post(
    "/households/{household_id}/rating/rejection",
    response_model=CurrentRatingOut,
    tags=["notice"],
    summary="The bank declines to grant credit, with written reasons (004 annex 2 step 5)",
    dependencies=[scope("ratings:reject")],
    responses=problems({404: ["RATING_NOT_FOUND"], 409: ["NOT_IN_NOTICE"]}),
)
async def bank_rejection(
    household_id: str, body: RejectionIn, session: Session, principal: CurrentPrincipal
) -> CurrentRatingOut:
    async with session.begin():
        await notices.reject_rating(session, principal, household_id, body.reason_code, body.reason)
    async with session.begin():
        return await _current(session, household_id)


@router.get(
    "/villages/{code}/notices",
    response_model=list[NoticeEntry],
    tags=["notice"],
    summary="The village's public notice list (公示): every rating in notice, with its end date",
    dependencies=[scope("notices:read")],
)
async def village_notices(
    code: str, session: ReadSession, limit: Limit = MAX_PAGE, offset: Offset = 0
) -> list[NoticeEntry]:
    # Published by design (004 annex 2 step 4): any authenticated role, the public included.
    rows = await session.execute(
        select(Subject, RatingState, Rating)
        .join(RatingState, RatingState.subject_id == Subject.id)
        .join(Rating, Rating.id == RatingState.current_rating_id)
        .where(Subject.village_code == code, RatingState.status.in_(["pending_notice", "objected"]))
        .order_by(Subject.name, Subject.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        NoticeEntry(
            subject_kind=s.kind,
            subject_id=s.id,
            name=s.name,
            grade=r.grade,
            credit_limit=r.credit_limit,
            notice_starts=st.notice_starts,
            notice_ends=st.notice_ends,
            status=st.status,
        )
        for s, st, r in rows
    ]


@router.get("/business-date", response_model=BusinessDateOut, tags=["scorecard"], dependencies=[scope("calendar:read")])
async def get_business_date(session: Session) -> BusinessDateOut:
    async with session.begin():
        return BusinessDateOut(business_date=await business_date(session))
