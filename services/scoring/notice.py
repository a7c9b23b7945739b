"""A rating's public notice (公示, 004 annex 2 steps 4-5): objections raised during it and
resolved by the village committee or the district, and the bank's rejection. Certification
at the end of the notice is in ratings.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import NoticeObjection, RatingState, Subject
from services.scoring.ratings import business_date, certify, new_objection_id, notice_is_over, reject
from shared.auth import Principal
from shared.catalogue import ScoringObjectionRaised, ScoringObjectionResolved
from shared.events import new_event
from shared.messaging import emit
from shared.problems import Problem
from shared.web import ensure_bound


async def subject_and_state(
    session: AsyncSession, subject_id: str, *, lock: bool = False
) -> tuple[Subject, RatingState]:
    subject = await session.get(Subject, subject_id, with_for_update=lock)
    state = await session.get(RatingState, subject_id, with_for_update=lock)
    if subject is None or state is None:
        raise Problem(404, "RATING_NOT_FOUND", "No rating", f"Scoring has no rating for {subject_id} (yet).")
    return subject, state


async def raise_objection(session: AsyncSession, household_id: str, reason: str, raised_by: str) -> NoticeObjection:
    """An objection to the rating in notice; it suspends the rating until resolved."""
    subject, state = await subject_and_state(session, household_id, lock=True)
    if state.status not in ("pending_notice", "objected"):
        raise Problem(
            409,
            "NOT_IN_NOTICE",
            "Not in public notice",
            f"Objections are taken during the notice; the rating is {state.status}.",
        )
    objection = NoticeObjection(
        id=new_objection_id(),
        subject_id=subject.id,
        rating_id=state.current_rating_id,
        reason=reason,
        raised_by=raised_by,
        raised_at=datetime.now(UTC),
        status="open",
    )
    session.add(objection)
    state.status = "objected"
    await emit(
        session,
        new_event(
            "scoring.objection.raised",
            subject.village_code,
            ScoringObjectionRaised(
                subject_kind=subject.kind,
                subject_id=subject.id,
                village_code=subject.village_code,
                township_code=subject.township_code,
                objection_id=objection.id,
                rating_id=objection.rating_id,
            ),
        ),
    )
    await session.flush()
    return objection


async def resolve_objection(
    session: AsyncSession,
    principal: Principal,
    household_id: str,
    objection_id: str,
    outcome: Literal["sustained", "dismissed"],
    note: str,
) -> NoticeObjection:
    """Sustained: the rating is rejected. Dismissed: the notice continues, and if it is over
    and no other objection is open, the rating is certified."""
    subject, state = await subject_and_state(session, household_id, lock=True)
    # The village committee of this village, or the district (004 annex 2 step 4).
    ensure_bound(principal, village=subject.village_code)
    objection = await session.get(NoticeObjection, objection_id, with_for_update=True)
    if objection is None or objection.subject_id != household_id:
        raise Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")
    if objection.status != "open":
        raise Problem(409, "OBJECTION_CLOSED", "Objection closed", f"The objection is {objection.status}.")
    objection.status = outcome
    objection.resolution_note = note
    objection.resolved_by = principal.name
    objection.resolved_at = datetime.now(UTC)
    await emit(
        session,
        new_event(
            "scoring.objection.resolved",
            subject.village_code,
            ScoringObjectionResolved(
                subject_kind=subject.kind,
                subject_id=subject.id,
                village_code=subject.village_code,
                township_code=subject.township_code,
                objection_id=objection.id,
                outcome=outcome,
            ),
        ),
    )
    if outcome == "sustained":
        await reject(session, subject, state, "OBJECTION_SUSTAINED", note)
    else:
        still_open = await session.scalar(
            select(NoticeObjection.id).where(
                NoticeObjection.subject_id == household_id, NoticeObjection.status == "open"
            )
        )
        if still_open is None:
            state.status = "pending_notice"
            today = await business_date(session)
            if notice_is_over(state, today):
                await certify(session, subject, state, today)
    return objection


async def reject_rating(session: AsyncSession, household_id: str, reason_code: str, reason: str) -> None:
    """The bank declines to grant credit on a rating awaiting certification, with reasons."""
    subject, state = await subject_and_state(session, household_id, lock=True)
    if state.status not in ("pending_notice", "objected"):
        raise Problem(
            409,
            "NOT_IN_NOTICE",
            "Nothing to decide",
            f"The bank decides on ratings awaiting certification; this one is {state.status}.",
        )
    await reject(session, subject, state, reason_code, reason)
