"""Consumers of other services' events. Each runs inside the inbox transaction (loan
positions and village figures change in memory, ``rows.py``, and the consumer's finish hook
writes them once per batch), and each is also what ``vcredit rebuild risk`` replays, so a
handler writes only what its event determines: loan events are keyed by village, hence
ordered per village, and nothing here depends on the order of events across villages."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import breaker, context, credit_lists, losses, mutual_guarantee, recoveries
from services.risk.models import Business, Community, Household, SubjectGrade
from services.risk.rows import Position, rows_of
from shared.catalogue import (
    BusinessDateAdvanced,
    BusinessRegistered,
    CommunityCreated,
    HouseholdRegistered,
    InstalmentOverdue,
    LoanClassified,
    LoanDisbursed,
    LoanRecovered,
    LoanRepaid,
    LoanWrittenOff,
    ProfileChanged,
    RatingCertified,
    RatingDowngraded,
    RepaymentReceived,
    TownshipCreated,
    UnitRenamed,
    VillageCreated,
)
from shared.db import insert_ignore
from shared.events import Envelope, parse_payload
from shared.messaging import Handler
from shared.redaction import mask

ZERO = Decimal("0.00")


# --- registry: the hierarchy and the households ----------------------------------------------


async def on_township_created(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, TownshipCreated)
    (await breaker.township(session, p.code)).name = p.name


async def on_township_renamed(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, UnitRenamed)
    (await breaker.township(session, p.code)).name = p.new_name


async def on_village_created(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, VillageCreated)
    # The township event may still be in flight on another partition (it is keyed by the
    # township code), so the village does not require it to be here first.
    village, _ = await breaker.village(session, p.code, p.township_code)
    village.name, village.township_code = p.name, p.township_code


async def on_village_renamed(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, UnitRenamed)
    village = await rows_of(session).villages.get(session, p.code)
    if village is not None:
        village.name = p.new_name


async def on_community_created(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, CommunityCreated)
    await session.merge(Community(code=p.code, name=p.name, township_code=p.township_code))


async def on_household_registered(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, HouseholdRegistered)
    await insert_ignore(
        session,
        Household.__table__,  # type: ignore[arg-type]
        {
            "id": p.household_id,
            "village_code": p.village_code,
            "township_code": p.township_code,
            "head_name": p.head_name,
            "id_number_masked": p.id_number_masked,
        },
    )


async def on_business_registered(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, BusinessRegistered)
    await insert_ignore(
        session,
        Business.__table__,  # type: ignore[arg-type]
        {
            "id": p.business_id,
            "village_code": p.village_code,
            "township_code": p.township_code,
            "name": p.name,
            # Published on the lists: masked like an ID number (issue 11).
            "credit_code_masked": mask(p.credit_code),
        },
    )


async def on_profile_changed(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, ProfileChanged)
    # The black list takes the dishonest-debtor list from the court's feed only (DOMAIN §2).
    if p.source == "court" and "dishonest_debtor_list" in p.changed:
        await credit_lists.court_fact(
            session,
            p.subject_kind,
            p.subject_id,
            p.changed["dishonest_debtor_list"] is True,
            p.fact_ends.get("dishonest_debtor_list"),
        )


# --- scoring: the certified grade in force ----------------------------------------------------


async def _grade(session: AsyncSession, p: RatingCertified | RatingDowngraded) -> None:
    await session.merge(
        SubjectGrade(
            subject_id=p.subject_id,
            subject_kind=p.subject_kind,
            village_code=p.village_code,
            township_code=p.township_code,
            grade=p.grade if Decimal(p.credit_limit) > 0 else "NONE",
        )
    )


async def on_rating_certified(session: AsyncSession, event: Envelope) -> None:
    await _grade(session, parse_payload(event, RatingCertified))


async def on_rating_downgraded(session: AsyncSession, event: Envelope) -> None:
    await _grade(session, parse_payload(event, RatingDowngraded))


# --- loans: positions, figures, losses -------------------------------------------------------


async def _position(session: AsyncSession, loan_id: str) -> Position:
    position = await rows_of(session).positions.get(session, loan_id)
    if position is None:
        # Events of a loan share its village's partition, so its disbursement came first;
        # a missing one is a lost event, worth a retry and then the dead-letter queue.
        raise LookupError(f"no position for loan {loan_id}: its loans.loan.disbursed was not seen")
    return position


async def _move(
    session: AsyncSession, position: Position, outstanding: Decimal, non_performing: bool, business_date: date
) -> None:
    before = position.outstanding, position.outstanding if position.non_performing else ZERO
    position.outstanding, position.non_performing = outstanding, non_performing
    after_np = outstanding if non_performing else ZERO
    village, _ = await breaker.village(session, position.village_code, position.township_code)
    await breaker.change_figures(session, village, business_date, outstanding - before[0], after_np - before[1])


async def on_disbursed(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, LoanDisbursed)
    amount = Decimal(p.amount)
    position = Position(
        loan_id=p.loan_id,
        subject_kind=p.subject_kind,
        subject_id=p.subject_id,
        village_code=p.village_code,
        township_code=p.township_code,
        disbursed_on=p.disbursed_on,
        outstanding=ZERO,
        non_performing=False,
        classification="normal",
        status="active",
    )
    rows_of(session).positions.add(p.loan_id, position)
    if p.subject_kind == "business" and Decimal(p.mutual_guarantee_contribution):
        await mutual_guarantee.contribute(
            session, p.subject_id, p.village_code, p.loan_id, Decimal(p.mutual_guarantee_contribution), p.disbursed_on
        )
    await _move(session, position, amount, False, p.disbursed_on)


async def on_repayment(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, RepaymentReceived)
    position = await _position(session, p.loan_id)
    await _move(session, position, Decimal(p.principal_outstanding), position.non_performing, p.business_date)


async def on_classified(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, LoanClassified)
    position = await _position(session, p.loan_id)
    position.classification = p.classification
    if p.days_past_due > 0:
        rows_of(session).overdue(p.subject_id, p.business_date.year)
    await _move(session, position, Decimal(p.principal_outstanding), p.non_performing, p.business_date)


async def on_instalment_overdue(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, InstalmentOverdue)
    rows_of(session).overdue(p.subject_id, (p.due_on + timedelta(days=1)).year)


async def on_repaid(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, LoanRepaid)
    position = await _position(session, p.loan_id)
    position.status = "repaid"
    await _move(session, position, ZERO, False, p.business_date)


async def on_written_off(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, LoanWrittenOff)
    position = await _position(session, p.loan_id)
    position.status = "written_off"
    await _move(session, position, ZERO, False, p.business_date)
    await losses.realise_loss(session, p, event.occurred_at)


async def on_recovered(session: AsyncSession, event: Envelope) -> None:
    # 004 §4(1)6: the loan stays written off; only the loss's recovered parts change.
    await recoveries.apply_recovery(session, parse_payload(event, LoanRecovered), event.occurred_at)


async def on_business_date(session: AsyncSession, event: Envelope) -> None:
    business_date = parse_payload(event, BusinessDateAdvanced).business_date
    await context.advance_clock(session, business_date)
    await credit_lists.expire(session, await context.business_date(session))


HANDLERS: dict[str, Handler] = {
    "registry.township.created": on_township_created,
    "registry.township.renamed": on_township_renamed,
    "registry.village.created": on_village_created,
    "registry.village.renamed": on_village_renamed,
    "registry.community.created": on_community_created,
    "registry.household.registered": on_household_registered,
    "registry.business.registered": on_business_registered,
    "registry.household.profile_changed": on_profile_changed,
    "registry.business.profile_changed": on_profile_changed,
    "scoring.rating.certified": on_rating_certified,
    "scoring.rating.downgraded": on_rating_downgraded,
    "loans.loan.disbursed": on_disbursed,
    "loans.repayment.received": on_repayment,
    "loans.loan.classified": on_classified,
    "loans.instalment.overdue": on_instalment_overdue,
    "loans.loan.repaid": on_repaid,
    "loans.loan.written_off": on_written_off,
    "loans.loan.recovered": on_recovered,
    "loans.business_date.advanced": on_business_date,
}
