"""Ratings kept per subject: recomputed when its inputs change and moved through the workflow
(a notice started or superseded, a downgrade in force at once), every step an event on
scoring.events. How a notice ends, certified or rejected, is ``notices.py``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.context import business_date, settings
from services.scoring.domain.engine import Evaluation, RuleSet
from services.scoring.domain.retention import in_force, loan_history_in_force, next_expiry
from services.scoring.domain.workflow import (
    action_for,
    notice_period,
    settled_status,
)
from services.scoring.models import (
    Delinquency,
    LoanState,
    NoticeObjection,
    Rating,
    RatingState,
    Subject,
)
from shared.catalogue import (
    NoticeEnded,
    NoticeStarted,
    RatingChanged,
    RatingDowngraded,
    ReasonOut,
)
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money

ZERO = Decimal("0.00")


@cache
def rule_set() -> RuleSet:
    return RuleSet.load(settings().rule_set)


def subject_fields(subject: Subject) -> dict[str, Any]:
    return {
        "subject_kind": subject.kind,
        "subject_id": subject.id,
        "village_code": subject.village_code,
        "township_code": subject.township_code,
    }


async def inputs_of(session: AsyncSession, subject: Subject) -> dict[str, Any]:
    currently_overdue = await session.scalar(
        select(func.count()).where(LoanState.subject_id == subject.id, LoanState.overdue.is_(True))
    )
    spells = (await ended_spells(session, [subject.id]))[subject.id]
    return scorecard_inputs(subject, bool(currently_overdue), await business_date(session), spells)


async def ended_spells(session: AsyncSession, subject_ids: list[str]) -> dict[str, list[tuple[str, date]]]:
    """Each subject's overdue and non-performing spells that have ended, (kind, end date)."""
    found: dict[str, list[tuple[str, date]]] = {i: [] for i in subject_ids}
    rows = await session.execute(
        select(Delinquency.subject_id, Delinquency.kind, Delinquency.ended_on).where(
            Delinquency.subject_id.in_(subject_ids), Delinquency.ended_on.is_not(None)
        )
    )
    for subject_id, kind, ended_on in rows:
        if ended_on is not None:
            found[subject_id].append((kind, ended_on))
    return found


def fact_ends_of(subject: Subject) -> dict[str, date]:
    return {field: date.fromisoformat(day) for field, day in json.loads(subject.fact_ends or "{}").items()}


def set_fact_ends(subject: Subject, fact_ends: dict[str, date], today: date) -> None:
    """Record the negative facts' end dates and when close of business must next re-rate."""
    subject.fact_ends = json.dumps({f: d.isoformat() for f, d in sorted(fact_ends.items())})
    subject.next_expiry = next_expiry(json.loads(subject.profile), fact_ends, today)


def scorecard_inputs(
    subject: Subject, currently_overdue: bool, today: date, spells: Iterable[tuple[str, date]] = ()
) -> dict[str, Any]:
    """The scorecard's inputs on business date ``today``: the registry's profile and loan
    history from loan events (DOMAIN.md §2: never typed in), without the negative facts and
    ended delinquency spells past their retention (征信业管理条例 §16)."""
    profile, _ = in_force(json.loads(subject.profile), fact_ends_of(subject), today)
    overdue, npl = loan_history_in_force(subject.overdue_occurrences, subject.npl_occurrences, spells, today)
    return {
        **profile,
        "overdue_history_count": overdue,
        "npl_history_count": npl,
        "currently_overdue": currently_overdue,
        "repaid_on_time_count": subject.repaid_on_time,
        "repaid_full_period_count": subject.repaid_full_period,
    }


def reasons_json(evaluation: Evaluation) -> str:
    return json.dumps(
        [
            {"rule": r.rule, "points": r.points, "text": r.text, "text_en": r.text_en, "source": r.source}
            for r in evaluation.reasons
        ],
        ensure_ascii=False,
    )


def unchanged(rating: Rating | None, evaluation: Evaluation, reasons: str) -> bool:
    return rating is not None and (
        rating.score,
        rating.grade,
        rating.credit_limit,
        rating.vetoed,
        rating.rule_set,
        rating.reasons,
    ) == (evaluation.score, evaluation.grade, evaluation.credit_limit, evaluation.vetoed, evaluation.rule_set, reasons)


async def open_objections(session: AsyncSession, subject_ids: list[str]) -> dict[str, list[NoticeObjection]]:
    found: dict[str, list[NoticeObjection]] = {}
    if subject_ids:
        for o in await session.scalars(
            select(NoticeObjection).where(NoticeObjection.subject_id.in_(subject_ids), NoticeObjection.status == "open")
        ):
            found.setdefault(o.subject_id, []).append(o)
    return found


def new_rating(
    subject: Subject, inputs: dict[str, Any], evaluation: Evaluation, reasons: str, today: date, now: datetime
) -> Rating:
    return Rating(
        subject_id=subject.id,
        score=evaluation.score,
        grade=evaluation.grade,
        credit_limit=evaluation.credit_limit,
        vetoed=evaluation.vetoed,
        rule_set=evaluation.rule_set,
        reasons=reasons,
        inputs=json.dumps({"profile": inputs, "poor_household": subject.poor_household}, ensure_ascii=False),
        computed_at=now,
        business_date=today,
    )


def plan(
    subject: Subject,
    rating: Rating,
    state: RatingState | None,
    effective: Rating | None,
    today: date,
    objections: list[NoticeObjection],
) -> tuple[RatingState, list[Envelope]]:
    """Move the workflow for a newly recorded rating (with its id). No I/O: the caller adds
    a new state to the session and emits the events."""
    now = rating.computed_at
    events: list[Envelope] = []
    effective_limit = effective.credit_limit if effective else ZERO
    if state is None:
        state = RatingState(subject_id=subject.id, current_rating_id=rating.id, status="rejected", updated_at=now)
    elif state.status in ("pending_notice", "objected"):
        for objection in objections:
            objection.status, objection.resolved_at = "superseded", now
        events.append(
            new_event(
                "scoring.notice.ended",
                subject.village_code,
                NoticeEnded(**subject_fields(subject), rating_id=state.current_rating_id, outcome="superseded"),
            )
        )
    state.current_rating_id = rating.id
    state.updated_at = now
    state.reason_code = state.reason = None
    state.decided_by = state.decided_by_role = None
    state.notice_starts = state.notice_ends = None

    action = action_for(effective_limit, rating.credit_limit)
    if action == "start_notice":
        state.status = "pending_notice"
        state.notice_starts, state.notice_ends = notice_period(today)
        events.append(
            new_event(
                "scoring.notice.started",
                subject.village_code,
                NoticeStarted(
                    **subject_fields(subject),
                    rating_id=rating.id,
                    head_name=subject.name,
                    grade=rating.grade,
                    credit_limit=format_money(rating.credit_limit),
                    notice_starts=state.notice_starts,
                    notice_ends=state.notice_ends,
                ),
            )
        )
    elif action == "downgrade":
        assert effective is not None
        state.effective_rating_id = rating.id
        state.status = settled_status(rating.credit_limit)
        if rating.credit_limit == ZERO:
            state.certificate_no = None  # the certificate is withdrawn with the last of the limit
            state.reason_code = "VETOED" if rating.vetoed else "NO_CREDIT_GRADE"
        events.append(
            new_event(
                "scoring.rating.downgraded",
                subject.village_code,
                RatingDowngraded(
                    **subject_fields(subject),
                    rating_id=rating.id,
                    grade=rating.grade,
                    credit_limit=format_money(rating.credit_limit),
                    previous_grade=effective.grade,
                    previous_limit=format_money(effective.credit_limit),
                    certificate_no=state.certificate_no,
                    poor_household=subject.poor_household,
                ),
            )
        )
    else:
        if effective is not None:
            state.effective_rating_id = rating.id  # same limit: the newer explanation is in force
        state.status = settled_status(effective_limit)
        if state.status == "rejected":
            state.reason_code = "VETOED" if rating.vetoed else "NO_CREDIT_GRADE"

    events.append(
        new_event(
            "scoring.rating.changed",
            subject.village_code,
            RatingChanged(
                **subject_fields(subject),
                rating_id=rating.id,
                score=rating.score,
                grade=rating.grade,
                credit_limit=format_money(rating.credit_limit),
                vetoed=rating.vetoed,
                rule_set=rating.rule_set,
                reasons=[ReasonOut(**r) for r in json.loads(rating.reasons)],
                status=state.status,
            ),
        )
    )
    return state, events


async def rate(session: AsyncSession, subject: Subject, rules: RuleSet | None = None) -> Rating | None:
    """Recompute one subject; record and act on the result if it differs from the current rating."""
    rules = rules or rule_set()
    inputs = await inputs_of(session, subject)
    evaluation = rules.evaluate(inputs, subject.poor_household)
    reasons = reasons_json(evaluation)
    state = await session.get(RatingState, subject.id, with_for_update=True)
    current = await session.get(Rating, state.current_rating_id) if state else None
    if unchanged(current, evaluation, reasons):
        return None
    effective = await session.get(Rating, state.effective_rating_id) if state and state.effective_rating_id else None
    rating = new_rating(subject, inputs, evaluation, reasons, await business_date(session), datetime.now(UTC))
    session.add(rating)
    await session.flush()
    objections = (await open_objections(session, [subject.id])).get(subject.id, []) if state else []
    new_state, events = plan(subject, rating, state, effective, rating.business_date, objections)
    if state is None:
        session.add(new_state)
    await emit(session, *events)
    return rating


async def rerate_expiring(session: AsyncSession, previous: date, today: date) -> int:
    """Re-rate every subject with a negative fact or a delinquency spell that stops counting
    after ``previous`` and by ``today`` (征信业管理条例 §16): close of business moved the
    business date past its retention."""
    due = set(await session.scalars(select(Subject.id).where(Subject.next_expiry <= today)))
    due |= set(
        await session.scalars(
            select(Delinquency.subject_id).where(Delinquency.expires_on > previous, Delinquency.expires_on <= today)
        )
    )
    for subject_id in sorted(due):  # one lock order for every writer
        subject = await session.get(Subject, subject_id, with_for_update=True)
        if subject is None:
            continue
        set_fact_ends(subject, fact_ends_of(subject), today)
        await rate(session, subject)
    return len(due)
