"""A rating's public notice (公示, DOMAIN.md §3, 004 annex 2 steps 4-6): objections raised
during it and resolved by the village committee or the district, the bank's rejection with
written reasons (step 5), and certification with its 贷款信用证 number at its end (step 6),
one subject at a time or every notice that is over at close of business. Starting a notice
belongs to the rating that needs one (``ratings.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.context import business_date
from services.scoring.domain.workflow import certificate_number, notice_over
from services.scoring.models import CertificateCounter, NoticeObjection, Rating, RatingState, Subject
from services.scoring.ratings import open_objections, subject_fields
from shared.auth import Principal, acting_role
from shared.catalogue import (
    NoticeEnded,
    RatingCertified,
    RatingRejected,
    ScoringObjectionRaised,
    ScoringObjectionResolved,
)
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem
from shared.web import ensure_second_principal, ensure_visible


async def certify(session: AsyncSession, subject: Subject, state: RatingState, today: date) -> None:
    rating = await session.get(Rating, state.current_rating_id)
    assert rating is not None
    counters = await _lock_counters(session, {subject.village_code})
    await emit(session, *_certified(subject, state, rating, counters, today))


def _certified(
    subject: Subject, state: RatingState, rating: Rating, counters: dict[str, CertificateCounter], today: date
) -> list[Envelope]:
    if state.certificate_no is None:
        counter = counters[subject.village_code]
        counter.last_number += 1
        state.certificate_no = certificate_number(today.year, subject.village_code, counter.last_number)
    state.effective_rating_id = rating.id
    state.status = "certified"
    state.updated_at = datetime.now(UTC)
    return [
        new_event(
            "scoring.notice.ended",
            subject.village_code,
            NoticeEnded(**subject_fields(subject), rating_id=rating.id, outcome="certified"),
        ),
        new_event(
            "scoring.rating.certified",
            subject.village_code,
            RatingCertified(
                **subject_fields(subject),
                rating_id=rating.id,
                grade=rating.grade,
                credit_limit=format_money(rating.credit_limit),
                certificate_no=state.certificate_no,
                poor_household=subject.poor_household,
            ),
        ),
    ]


async def _lock_counters(session: AsyncSession, villages: set[str]) -> dict[str, CertificateCounter]:
    """The villages' certificate counters, locked in one order (new ones created at 0)."""
    counters = {
        c.village_code: c
        for c in await session.scalars(
            select(CertificateCounter)
            .where(CertificateCounter.village_code.in_(villages))
            .order_by(CertificateCounter.village_code)
            .with_for_update()
        )
    }
    for village_code in villages - counters.keys():
        counters[village_code] = CertificateCounter(village_code=village_code, last_number=0)
        session.add(counters[village_code])
    return counters


# Ratings certified per round: few queries, and only one round's subjects and ratings held
# (with their profiles and reasons) at a time.
_CERTIFY_CHUNK = 1000


async def certify_due(session: AsyncSession, today: date) -> int:
    """Certify every rating whose notice is over with no objection open.

    The 7th day of a district's first rating certifies nearly every household at once, so a
    round of them is read in a few queries and its events written in one insert, not a
    handful of round trips per rating."""
    over = (RatingState.status == "pending_notice", RatingState.notice_ends < today)
    due = list(
        await session.scalars(select(RatingState).where(*over).order_by(RatingState.subject_id).with_for_update())
    )
    if not due:
        return 0
    villages = set(
        await session.scalars(
            select(Subject.village_code).join(RatingState, RatingState.subject_id == Subject.id).where(*over).distinct()
        )
    )
    counters = await _lock_counters(session, villages)  # all of them first: one lock order
    for start in range(0, len(due), _CERTIFY_CHUNK):
        chunk = due[start : start + _CERTIFY_CHUNK]
        subject_ids = [d.subject_id for d in chunk]
        subjects = {s.id: s for s in await session.scalars(select(Subject).where(Subject.id.in_(subject_ids)))}
        rating_ids = [d.current_rating_id for d in chunk]
        ratings = {r.id: r for r in await session.scalars(select(Rating).where(Rating.id.in_(rating_ids)))}
        events: list[Envelope] = []
        for state in chunk:
            events += _certified(subjects[state.subject_id], state, ratings[state.current_rating_id], counters, today)
        await emit(session, *events)
    return len(due)


async def reject(
    session: AsyncSession,
    subject: Subject,
    state: RatingState,
    code: str,
    reason: str,
    decided_by: str,
    decided_by_role: str | None,
) -> None:
    """End the notice with a rejection; objections still open on it have nothing left to decide.
    ``decided_by`` is the rejecting principal's name, kept with its role."""
    now = datetime.now(UTC)
    for objection in (await open_objections(session, [subject.id])).get(subject.id, []):
        objection.status, objection.resolved_at = "superseded", now
    state.status = "rejected"
    state.reason_code, state.reason = code, reason
    state.decided_by, state.decided_by_role = decided_by, decided_by_role
    state.notice_starts = state.notice_ends = None
    state.updated_at = now
    await emit(
        session,
        new_event(
            "scoring.notice.ended",
            subject.village_code,
            NoticeEnded(**subject_fields(subject), rating_id=state.current_rating_id, outcome="rejected"),
        ),
        new_event(
            "scoring.rating.rejected",
            subject.village_code,
            RatingRejected(
                **subject_fields(subject),
                rating_id=state.current_rating_id,
                reason_code=code,
                reason=reason,
                decided_by=decided_by,
                decided_by_role=decided_by_role,
            ),
        ),
    )


def notice_is_over(state: RatingState, today: date) -> bool:
    return state.notice_ends is not None and notice_over(state.notice_ends, today)


def new_objection_id() -> str:
    return str(uuid.uuid4())


async def subject_and_state(
    session: AsyncSession, subject_id: str, *, lock: bool = False
) -> tuple[Subject, RatingState]:
    subject = await session.get(Subject, subject_id, with_for_update=lock)
    state = await session.get(RatingState, subject_id, with_for_update=lock)
    if subject is None or state is None:
        raise rating_not_found(subject_id)
    return subject, state


def rating_not_found(subject_id: str) -> Problem:
    return Problem(404, "RATING_NOT_FOUND", "No rating", f"Scoring has no rating for {subject_id} (yet).")


async def raise_objection(
    session: AsyncSession, household_id: str, reason: str, principal: Principal, max_open_public: int
) -> NoticeObjection:
    """An objection to the rating in notice; it suspends the rating until resolved. A
    credential of the public role alone holds at most ``max_open_public`` open objections on
    one household (``ScoringSettings.max_open_public_objections``: why, there)."""
    raised_by = principal.name
    # Locks the subject's rows: concurrent objections to one household are counted in turn.
    subject, state = await subject_and_state(session, household_id, lock=True)
    if state.status not in ("pending_notice", "objected"):
        raise Problem(
            409,
            "NOT_IN_NOTICE",
            "Not in public notice",
            f"Objections are taken during the notice; the rating is {state.status}.",
        )
    if principal.roles <= {"public"}:
        mine = await session.scalar(
            select(func.count())
            .select_from(NoticeObjection)
            .where(
                NoticeObjection.subject_id == subject.id,
                NoticeObjection.raised_by == raised_by,
                NoticeObjection.status == "open",
            )
        )
        if (mine or 0) >= max_open_public:
            raise Problem(
                409,
                "TOO_MANY_OPEN_OBJECTIONS",
                "Too many open objections",
                f"This credential has {mine} open objections to this household's rating, the most a public "
                "credential may hold; more can be raised once the village committee has resolved one.",
                open_objections=mine,
                limit=max_open_public,
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
    and no other objection is open, the rating is certified. Never resolved by the objector:
    a key that may both object and decide would otherwise reject a rating on its own word."""
    subject, state = await subject_and_state(session, household_id, lock=True)
    # The village committee of this village, or the district (004 annex 2 step 4); another
    # village's household answers as one without a rating.
    ensure_visible(principal, rating_not_found(household_id), village=subject.village_code)
    objection = await session.get(NoticeObjection, objection_id, with_for_update=True)
    if objection is None or objection.subject_id != household_id:
        raise Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")
    if objection.status != "open":
        raise Problem(409, "OBJECTION_CLOSED", "Objection closed", f"The objection is {objection.status}.")
    ensure_second_principal(principal, objection.raised_by, "objection")
    role = acting_role(principal, "objections:decide")
    objection.status = outcome
    objection.resolution_note = note
    objection.resolved_by, objection.resolved_by_role = principal.name, role
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
                resolved_by=principal.name,
                resolved_by_role=role,
            ),
        ),
    )
    if outcome == "sustained":
        await reject(session, subject, state, "OBJECTION_SUSTAINED", note, principal.name, role)
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


async def reject_rating(
    session: AsyncSession, principal: Principal, household_id: str, reason_code: str, reason: str
) -> None:
    """The bank declines to grant credit on a rating awaiting certification, with reasons. Its
    own decision (004 annex 2 step 5), on nobody's proposal: recorded with its name and role."""
    subject, state = await subject_and_state(session, household_id, lock=True)
    if state.status not in ("pending_notice", "objected"):
        raise Problem(
            409,
            "NOT_IN_NOTICE",
            "Nothing to decide",
            f"The bank decides on ratings awaiting certification; this one is {state.status}.",
        )
    await reject(session, subject, state, reason_code, reason, principal.name, acting_role(principal, "ratings:reject"))
