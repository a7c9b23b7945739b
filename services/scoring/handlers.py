"""Scoring's consumers: registry facts and loan history re-rate the subject; the loans
service's close of business moves the business date, ends notices and re-rates subjects
whose negative facts stop counting that day.

A village's collection sheet registers hundreds of households at once. They are recorded
and rated together when the consumer finishes the batch (``rate_registered``, the
consumer's ``finish``), a few queries for all of them instead of several round trips each;
any other event has the registrations before it done first, so the events' order holds."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.context import business_date
from services.scoring.domain.repayment import earns_repayment_bonus
from services.scoring.domain.retention import expires_on
from services.scoring.models import BusinessDate, Delinquency, LoanState, Subject
from services.scoring.notices import certify_due
from services.scoring.ratings import rate, rerate_expiring, rule_set, set_fact_ends
from services.scoring.rerate import rerate_chunk
from shared.catalogue import (
    BusinessDateAdvanced,
    BusinessRegistered,
    HouseholdRegistered,
    LoanClassified,
    LoanRepaid,
    ProfileChanged,
)
from shared.events import Envelope, parse_payload
from shared.messaging import Handler

log = logging.getLogger(__name__)


def _new_subject(kind: str, subject_id: str, village: str, township: str, name: str, poor: bool) -> Subject:
    return Subject(
        id=subject_id,
        kind=kind,
        village_code=village,
        township_code=township,
        name=name,
        poor_household=poor,
        profile="{}",
        overdue_occurrences=0,
        npl_occurrences=0,
        repaid_on_time=0,
        repaid_full_period=0,
        updated_at=datetime.now(UTC),
        fact_ends="{}",
    )


@dataclass(frozen=True)
class _Registration:
    kind: str
    subject_id: str
    village_code: str
    township_code: str
    name: str
    poor_household: bool
    profile: dict[str, Any]


async def on_household_registered(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, HouseholdRegistered)
    _register_later(
        session,
        _Registration(
            "household", p.household_id, p.village_code, p.township_code, p.head_name, p.poor_household, p.profile
        ),
    )


async def on_business_registered(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, BusinessRegistered)
    _register_later(
        session, _Registration("business", p.business_id, p.village_code, p.township_code, p.name, False, p.profile)
    )


_UNRATED = "scoring_unrated"


def _register_later(session: AsyncSession, registration: _Registration) -> None:
    unrated: dict[str, _Registration] = session.info.setdefault(_UNRATED, {})
    unrated[registration.subject_id] = registration  # registered twice: the later one counts


async def rate_registered(session: AsyncSession) -> None:
    """Record and rate the subjects registered since the last call, together."""
    unrated: dict[str, _Registration] | None = session.info.pop(_UNRATED, None)
    if not unrated:
        return
    known = {s.id: s for s in await session.scalars(select(Subject).where(Subject.id.in_(unrated)))}
    today = await business_date(session)
    subjects = []
    for r in unrated.values():
        subject = known.get(r.subject_id)
        if subject is None:
            subject = _new_subject(r.kind, r.subject_id, r.village_code, r.township_code, r.name, r.poor_household)
            session.add(subject)
        elif _placeholder(subject):
            # Its loans' events came first (_loan_subject): the registration says who it is.
            subject.name, subject.poor_household = r.name, r.poor_household
        subject.profile = json.dumps(r.profile, ensure_ascii=False)
        set_fact_ends(subject, {}, today)  # a registration states no end dates
        subjects.append(subject)
    await session.flush()
    await rerate_chunk(session, rule_set(), subjects)


def _after_registrations(handler: Handler) -> Handler:
    async def in_order(session: AsyncSession, event: Envelope) -> None:
        await rate_registered(session)
        await handler(session, event)

    return in_order


async def on_profile_changed(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, ProfileChanged)
    subject = await session.get(Subject, p.subject_id, with_for_update=True)
    if subject is None:
        # Registered before scoring subscribed and not replayed: the event has the whole profile.
        subject = _new_subject(
            p.subject_kind, p.subject_id, p.village_code, p.township_code, "", bool(p.poor_household)
        )
        session.add(subject)
    subject.profile = json.dumps(p.profile, ensure_ascii=False)
    set_fact_ends(subject, p.fact_ends, await business_date(session))
    if p.poor_household is not None:
        subject.poor_household = p.poor_household
    subject.updated_at = datetime.now(UTC)
    await session.flush()
    # 004 §5.3: ratings are dynamic (评级分值实行动态管理), recomputed when any input changes.
    await rate(session, subject)


async def _loan_subject(session: AsyncSession, p: LoanClassified | LoanRepaid) -> Subject:
    """The loan's subject, locked. A loan's events can reach scoring before its subject's
    registration, which is on another topic (a fresh replay of the topics, or Kafka's order
    across topics): its facts are then kept on a placeholder the registration completes
    (rate_registered), never dropped, so D3/D3b count the same however the topics interleave."""
    subject = await session.get(Subject, p.subject_id, with_for_update=True)
    if subject is None:
        subject = _new_subject(p.subject_kind, p.subject_id, p.village_code, p.township_code, "", False)
        session.add(subject)
        await session.flush()
    return subject


def _placeholder(subject: Subject) -> bool:
    """Known only from its loans' events: nothing to rate until its registration arrives."""
    return subject.name == "" and subject.profile == "{}"


async def on_loan_classified(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, LoanClassified)
    subject = await _loan_subject(session, p)
    loan = await session.get(LoanState, p.loan_id)
    if loan is None:
        loan = LoanState(
            loan_id=p.loan_id, subject_id=p.subject_id, overdue=False, non_performing=False, ever_non_performing=False
        )
        session.add(loan)
    overdue = p.days_past_due > 0
    day = p.business_date
    if overdue and not loan.overdue:
        subject.overdue_occurrences += 1  # 004 annex 3 D3: per occurrence
        _begin_spell(session, p.subject_id, p.loan_id, "overdue", day)
    elif loan.overdue and not overdue:
        await _end_spells(session, p.loan_id, day, "overdue")
    if p.non_performing and not loan.ever_non_performing:
        subject.npl_occurrences += 1  # 004 annex 3 D3b: per loan that became non-performing
        loan.ever_non_performing = True
        _begin_spell(session, p.subject_id, p.loan_id, "non_performing", day)
    elif p.non_performing and not loan.non_performing:
        # Non-performing again: one occurrence per loan, so its spell is the same one,
        # running again until the loan performs.
        await session.execute(
            update(Delinquency)
            .where(Delinquency.loan_id == p.loan_id, Delinquency.kind == "non_performing")
            .values(ended_on=None, expires_on=None)
        )
    elif loan.non_performing and not p.non_performing:
        await _end_spells(session, p.loan_id, day, "non_performing")
    loan.overdue, loan.non_performing = overdue, p.non_performing
    await session.flush()
    if not _placeholder(subject):
        await rate(session, subject)


async def on_loan_repaid(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, LoanRepaid)
    subject = await _loan_subject(session, p)
    loan = await session.get(LoanState, p.loan_id)
    if loan is not None:
        loan.overdue = loan.non_performing = False
    await _end_spells(session, p.loan_id, p.business_date, "overdue", "non_performing")
    if p.on_time:
        subject.repaid_on_time += 1  # what rule set hubin-2017 counted (kept: its ratings stay explicable)
    if earns_repayment_bonus(on_time=p.on_time, first_due_on=p.first_due_on, repaid_on=p.business_date):
        subject.repaid_full_period += 1  # 004 §7(5), DOMAIN.md §2: ran a full period, never past due
    await session.flush()
    if not _placeholder(subject):
        await rate(session, subject)


def _begin_spell(session: AsyncSession, subject_id: str, loan_id: str, kind: str, day: date) -> None:
    session.add(Delinquency(subject_id=subject_id, loan_id=loan_id, kind=kind, started_on=day))


async def _end_spells(session: AsyncSession, loan_id: str, day: date, *kinds: str) -> None:
    """The loan's open spells of these kinds ended on ``day``: from then on they count for
    5 more years (征信业管理条例 §16)."""
    await session.flush()  # a spell begun in this batch is a row to end
    await session.execute(
        update(Delinquency)
        .where(Delinquency.loan_id == loan_id, Delinquency.kind.in_(kinds), Delinquency.ended_on.is_(None))
        .values(ended_on=day, expires_on=expires_on(day))
    )


async def on_business_date(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, BusinessDateAdvanced)
    await business_date(session)
    row = await session.get(BusinessDate, 1, with_for_update=True)
    assert row is not None
    if p.business_date <= row.current:
        return  # an older announcement delivered late
    previous, row.current = row.current, p.business_date
    await certify_due(session, p.business_date)
    # After certifying: a notice that ran its course is honoured before a re-rating
    # supersedes it.
    await rerate_expiring(session, previous, p.business_date)


HANDLERS: dict[str, Handler] = {
    "registry.household.registered": on_household_registered,
    "registry.business.registered": on_business_registered,
    "registry.household.profile_changed": _after_registrations(on_profile_changed),
    "registry.business.profile_changed": _after_registrations(on_profile_changed),
    "loans.loan.classified": _after_registrations(on_loan_classified),
    "loans.loan.repaid": _after_registrations(on_loan_repaid),
    "loans.business_date.advanced": _after_registrations(on_business_date),
}
