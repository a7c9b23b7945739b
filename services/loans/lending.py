"""Credit lines, drawdowns, repayments, write-offs and the close of business.

How interest works (documented for the bank, DOMAIN.md §4):
- A period runs from the previous due date (the disbursement date for period 1) to its own
  due date. Its interest is the principal outstanding at the period's start, *after* any
  payment made on the previous due date (for period 1: on the disbursement date), times the
  annual rate by the loan's day count (30/360: a month is 1/12 of a year), rounded to the fen
  once (DOMAIN §4, "Interest and billing"). The close of business fixes it, with the
  period's subsidy, when it closes the period's first day (``period_start``): that day's
  payments are in by then. Both come from ``schedule.period_charges``, the rule the schedule
  shown at drawdown is built by, so a borrower who pays every instalment in full on its due
  date is billed exactly that schedule, to the fen, and accrues exactly its subsidy.
- The interest accrues day by day over the period's actual days, pro rata and rounded
  cumulatively (day k recognises round(interest × k / days) less what is already accrued),
  so the period's last day completes exactly the period's interest. The close of the day
  before the due date bills the period: the instalment's scheduled principal (the last one:
  all the principal not yet billed) plus the period's accrued interest net of subsidy; it is
  due on the due date.
- The subsidy (贴息) is the district finance's share of that interest: a separate
  receivable, never netted; the borrower owes interest minus subsidy. A day the borrower is
  on the black list earns no subsidy (seed 001): its share is forfeited (``subsidy_forfeited``)
  and the borrower owes that day's interest in full; it is not caught up after delisting.
- A red-listed borrower's new loans are priced ``red_list_rate_discount`` lower (floor 0),
  recorded on the loan as ``red_list_discount``; the rate is fixed at drawdown.
- Repayments pay accrued interest first, then principal. Paying more than is due pays
  principal ahead: the loan ends sooner, later periods charge interest on less.
- An instalment unpaid at the end of its due date is 1 day past due on the next business
  day; classification follows the DOMAIN.md §4 bands.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, cast

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.domain.classification import Classification, allocate, classify, is_non_performing
from services.loans.domain.lists import day_share, red_list_rates
from services.loans.domain.schedule import DayCount, Method, build_schedule, period_charges
from services.loans.domain.schedule import Instalment as ScheduledInstalment
from services.loans.models import (
    BusinessDate,
    CreditLine,
    FundView,
    Instalment,
    ListEntry,
    Loan,
    RatingView,
    Repayment,
    TownshipView,
    VillageView,
)
from shared.bulk import among
from shared.catalogue import (
    BusinessDateAdvanced,
    CreditLineChanged,
    CreditLineOpened,
    InstalmentOverdue,
    LoanClassified,
    LoanDisbursed,
    LoanRepaid,
    LoanWrittenOff,
    RepaymentReceived,
)
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money, to_fen
from shared.periods import add_months
from shared.settings import CommonSettings, LoansSettings
from shared.web import Problem

ZERO = Decimal("0.00")
DAY = timedelta(days=1)


@dataclass(slots=True)
class LoanDay:
    """The loan columns the rules read, as a plain object: close of business reads a day's
    loans without the ORM (cob.py). Field order is the order cob.py selects the columns."""

    id: str
    subject_id: str
    subject_kind: str
    village_code: str
    township_code: str
    principal: Decimal
    annual_rate: Decimal
    subsidy_rate: Decimal
    day_count: str
    term_months: int
    disbursed_on: date
    status: str
    principal_outstanding: Decimal
    interest_outstanding: Decimal
    subsidy_accrued: Decimal
    subsidy_forfeited: Decimal
    principal_billed: Decimal
    interest_billed: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    period_number: int
    period_start: date
    period_end: date
    period_interest: Decimal
    period_subsidy: Decimal
    period_accrued: Decimal
    period_subsidy_accrued: Decimal
    overdue_since: date | None
    days_past_due: int
    ever_overdue: bool
    classification: str
    closed_through: date


@dataclass(slots=True)
class InstalmentDay:
    """The instalment columns the rules read, as a plain object (cob.py)."""

    loan_id: str
    number: int
    due_on: date
    principal: Decimal
    billed: Decimal | None


# The rules below take either: an ORM row (requests) or a plain one (close of business).
LoanState = Loan | LoanDay
InstalmentState = Instalment | InstalmentDay


@cache
def settings() -> LoansSettings:
    return LoansSettings()


async def business_date(session: AsyncSession) -> date:
    row = await session.get(BusinessDate, 1)
    if row is None:
        common: CommonSettings = session.info.get("settings") or CommonSettings()
        row = BusinessDate(id=1, current=common.start_date or date.today())
        session.add(row)
        await session.flush()
    return row.current


def _who(x: CreditLine | LoanState | RatingView) -> dict[str, Any]:
    return {
        "subject_kind": x.subject_kind,
        "subject_id": x.subject_id,
        "village_code": x.village_code,
        "township_code": x.township_code,
    }


def opening_state(plan: Sequence[ScheduledInstalment], amount: Decimal, today: date) -> dict[str, Any]:
    """A new loan's balances and period fields, the same for the loan row written at drawdown
    and a plain ``LoanDay``. Period 1's interest and subsidy are not fixed yet (0.00): the
    close of the disbursement day fixes them (close_loan_day)."""
    return {
        "status": "active",
        "principal_outstanding": amount,
        "interest_outstanding": ZERO,
        "subsidy_accrued": ZERO,
        "subsidy_forfeited": ZERO,
        "principal_billed": ZERO,
        "interest_billed": ZERO,
        "principal_paid": ZERO,
        "interest_paid": ZERO,
        "period_number": 1,
        "period_start": today,
        "period_end": plan[0].due_on,
        "period_interest": ZERO,
        "period_subsidy": ZERO,
        "period_accrued": ZERO,
        "period_subsidy_accrued": ZERO,
        "overdue_since": None,
        "days_past_due": 0,
        "ever_overdue": False,
        "classification": "normal",
        "closed_through": today - DAY,
    }


def available(line: CreditLine) -> Decimal:
    return max(ZERO, line.limit - line.outstanding)


# --- red and black lists (seeds 001, 002: joint rewards and punishment) -------------------


async def active_entries(session: AsyncSession, subject_id: str, list_: str) -> list[ListEntry]:
    return list(
        await session.scalars(
            select(ListEntry)
            .where(ListEntry.subject_id == subject_id, ListEntry.list == list_, ListEntry.active)
            .order_by(ListEntry.listed_on, ListEntry.entry_id)
        )
    )


async def is_blacklisted(session: AsyncSession, subject_id: str) -> bool:
    return bool(
        await session.scalar(
            select(exists().where(ListEntry.subject_id == subject_id, ListEntry.list == "black", ListEntry.active))
        )
    )


async def red_listed(session: AsyncSession, subject_id: str) -> bool:
    return bool(await active_entries(session, subject_id, "red"))


async def blacklisted_on(session: AsyncSession, subject_ids: set[str], day: date) -> set[str]:
    """Which of the subjects had an active black entry on ``day`` (listed that day or before,
    not yet delisted): their loans earn no subsidy for the day."""
    if not subject_ids:
        return set()
    listed = await session.scalars(
        select(ListEntry.subject_id)
        .where(
            among(session, ListEntry.__table__.c.subject_id, subject_ids),
            ListEntry.list == "black",
            ListEntry.listed_on <= day,
            (ListEntry.delisted_on.is_(None)) | (ListEntry.delisted_on > day),
        )
        .distinct()
    )
    return set(listed)


# --- refusals (DOMAIN.md §5: new credit = opening a line, raising a limit, a drawdown) --------


async def refuse_blacklisted(session: AsyncSession, subject_id: str) -> None:
    entries = await active_entries(session, subject_id, "black")
    if entries:
        named = ", ".join(f"{e.entry_id} ({e.cause})" for e in entries)
        raise Problem(
            409,
            "BLACKLISTED",
            "Blacklisted",
            f"On the black list (失信黑名单), entry {named}: no new credit until delisted (seed 001).",
            entries=[e.entry_id for e in entries],
        )


async def refuse_new_credit(session: AsyncSession, village_code: str, township_code: str, subject_id: str) -> None:
    await refuse_blacklisted(session, subject_id)
    village = await session.get(VillageView, village_code)
    if village is not None and village.frozen:
        raise Problem(
            409,
            "VILLAGE_FROZEN",
            "Village frozen",
            f"Village {village_code}'s NPL ratio is over the line: no new credit (004 §6(3)).",
        )
    township = await session.get(TownshipView, township_code)
    if township is not None and township.halted:
        raise Problem(
            409, "TOWNSHIP_HALTED", "Township halted", f"Lending to township {township_code} is halted (004 §6(3))."
        )


async def new_credit_stopped(session: AsyncSession, village_code: str, township_code: str) -> bool:
    village = await session.get(VillageView, village_code)
    township = await session.get(TownshipView, township_code)
    return bool((village is not None and village.frozen) or (township is not None and township.halted))


async def fund(session: AsyncSession) -> FundView:
    fund = await session.get(FundView, 1, with_for_update=True)
    if fund is None:
        fund = FundView(id=1, capacity=settings().initial_fund_capacity)
        session.add(fund)
        await session.flush()
    return fund


async def fund_capacity(session: AsyncSession) -> Decimal:
    """The capacity now, without the drawdowns' lock: opening a line lends nothing, so the
    line openings of a certificate day need not queue behind each other on the fund row."""
    row = await session.get(FundView, 1)
    return row.capacity if row is not None else settings().initial_fund_capacity


async def programme_outstanding(session: AsyncSession) -> Decimal:
    total = await session.scalar(select(func.coalesce(func.sum(CreditLine.outstanding), 0)))
    return Decimal(total or 0)


# --- credit lines -------------------------------------------------------------------------


async def open_line(session: AsyncSession, rating: RatingView, today: date) -> CreditLine:
    line = CreditLine(
        id=str(uuid.uuid4()),
        subject_id=rating.subject_id,
        subject_kind=rating.subject_kind,
        village_code=rating.village_code,
        township_code=rating.township_code,
        limit=rating.credit_limit,
        outstanding=ZERO,
        status="active",
        opened_on=today,
        version=1,
    )
    session.add(line)
    await emit(
        session,
        new_event(
            "loans.credit_line.opened",
            line.village_code,
            CreditLineOpened(**_who(line), credit_line_id=line.id, limit=format_money(line.limit)),
        ),
    )
    return line


async def set_limit(
    session: AsyncSession, line: CreditLine, limit: Decimal, cause: str, *, blacklisted: bool | None = None
) -> None:
    """The line follows the rating in force: a downgrade lowers it at once (drawn principal
    stays, drawdowns over the new limit are refused); an upgrade arrives only certified.
    ``blacklisted``, when the caller already knows it, saves a query."""
    if line.limit == limit:
        return
    if limit > line.limit:
        # DOMAIN §5: raising a limit is new credit, stopped by a freeze, a halt or the black
        # list (seed 001); the raise is applied when the last of them lifts (handlers.py).
        if await new_credit_stopped(session, line.village_code, line.township_code):
            return
        if blacklisted is None:
            blacklisted = await is_blacklisted(session, line.subject_id)
        if blacklisted:
            return
    line.limit = limit
    line.version += 1
    await emit(
        session,
        new_event(
            "loans.credit_line.changed",
            line.village_code,
            CreditLineChanged(
                **_who(line),
                credit_line_id=line.id,
                limit=format_money(line.limit),
                available=format_money(available(line)),
                status=line.status,
                cause=cause,
            ),
        ),
    )


# --- drawdown -----------------------------------------------------------------------------


def rates_for(rating: RatingView, kind: str, term_months: int) -> tuple[Decimal, Decimal]:
    """(annual rate, subsidy rate) per 004 §5.6."""
    cfg = settings()
    benchmark = cfg.benchmark_rate(term_months)
    if kind == "business":
        rate = benchmark * (1 + cfg.business_markup)
        return rate, min(cfg.business_subsidy_rate, rate)
    # Households at the benchmark rate; registered poor households fully subsidised.
    return benchmark, benchmark if rating.poor_household else Decimal(0)


async def drawdown(
    session: AsyncSession,
    line: CreditLine,
    rating: RatingView,
    amount: Decimal,
    term_months: int,
    method: str,
    today: date,
    *,
    red: bool,
) -> tuple[Loan, list[Instalment]]:
    """A loan on ``line``; ``red``: its subject is on the red list today (a lower rate)."""
    rate, subsidy_rate = rates_for(rating, line.subject_kind, term_months)
    discount = Decimal(0)
    if red:
        rate, subsidy_rate, discount = red_list_rates(rate, subsidy_rate, settings().red_list_rate_discount)
    plan = build_schedule(amount, rate, term_months, cast(Method, method), today, settings().day_count, subsidy_rate)
    loan = Loan(
        id=str(uuid.uuid4()),
        credit_line_id=line.id,
        subject_id=line.subject_id,
        subject_kind=line.subject_kind,
        village_code=line.village_code,
        township_code=line.township_code,
        principal=amount,
        annual_rate=rate,
        subsidy_rate=subsidy_rate,
        red_list_discount=discount,
        day_count=settings().day_count,
        method=method,
        term_months=term_months,
        disbursed_on=today,
        maturity_on=plan[-1].due_on,
        version=1,
        **opening_state(plan, amount, today),
    )
    instalments = [
        Instalment(
            loan_id=loan.id,
            number=i.number,
            start=i.start,
            due_on=i.due_on,
            principal=i.principal,
            interest=i.interest,
            subsidy=i.subsidy,
        )
        for i in plan
    ]
    session.add(loan)
    await session.flush()
    session.add_all(instalments)
    line.outstanding += amount
    line.version += 1
    await ledger.post(
        session,
        ledger.posting(
            "disbursement", loan.id, today, [(ledger.LOANS, amount, ZERO), (ledger.SETTLEMENT, ZERO, amount)]
        ),
    )
    contribution = to_fen(amount * settings().mutual_guarantee_share) if line.subject_kind == "business" else ZERO
    await emit(
        session,
        new_event(
            "loans.loan.disbursed",
            line.village_code,
            LoanDisbursed(
                **_who(line),
                loan_id=loan.id,
                credit_line_id=line.id,
                amount=format_money(amount),
                annual_rate=f"{rate:.6f}",
                subsidy_rate=f"{subsidy_rate:.6f}",
                term_months=term_months,
                repayment_method=method,
                disbursed_on=today,
                maturity_on=loan.maturity_on,
                mutual_guarantee_contribution=format_money(contribution),
            ),
        ),
    )
    return loan, instalments


# --- arrears, ageing, classification ------------------------------------------------------


def arrears(loan: LoanState) -> Decimal:
    """Everything billed and not yet paid (principal paid ahead covers later bills)."""
    return max(ZERO, loan.principal_billed + loan.interest_billed - loan.principal_paid - loan.interest_paid)


def oldest_unpaid_due(loan: LoanState, schedule: Sequence[InstalmentState] | None) -> date | None:
    """The due date of the oldest instalment not paid in full (None: nothing in arrears).
    ``schedule``: the loan's instalments in number order (at least the billed ones); needed
    only when the loan is in arrears."""
    if arrears(loan) == ZERO:
        return None
    if schedule is None:
        raise ValueError(f"loan {loan.id} is in arrears: its oldest unpaid due date needs its instalments")
    paid = loan.principal_paid + loan.interest_paid
    billed = ZERO
    for inst in schedule:
        if inst.billed is None:
            continue
        billed += inst.billed
        if billed > paid:
            return inst.due_on
    return loan.period_start


async def _billed_instalments(session: AsyncSession, loan: Loan) -> list[Instalment]:
    billed = await session.scalars(
        select(Instalment)
        .where(Instalment.loan_id == loan.id, Instalment.billed.is_not(None))
        .order_by(Instalment.number)
    )
    return list(billed)


def age(loan: LoanState, today: date) -> list[Envelope]:
    """Days past due and class as of ``today`` from the oldest unpaid due date already set
    (DOMAIN.md §4 bands); the event when the class changed."""
    dpd = (today - loan.overdue_since).days if loan.overdue_since and today > loan.overdue_since else 0
    previous = loan.classification
    loan.days_past_due = dpd
    loan.classification = classify(dpd)
    loan.ever_overdue = loan.ever_overdue or dpd > 0
    events: list[Envelope] = []
    if loan.classification != previous:
        events.append(
            new_event(
                "loans.loan.classified",
                loan.village_code,
                LoanClassified(
                    **_who(loan),
                    loan_id=loan.id,
                    business_date=today,
                    days_past_due=dpd,
                    classification=loan.classification,
                    previous_classification=previous,
                    non_performing=is_non_performing(loan.classification),
                    principal_outstanding=format_money(loan.principal_outstanding),
                ),
            )
        )
    return events


# --- repayment ----------------------------------------------------------------------------


@dataclass
class Repaid:
    """A repayment applied to its loan and line; its ledger rows and events are for the
    caller to ``record``, so a batch records all of its repayments' in two statements."""

    repayment: Repayment
    postings: list[dict[str, object]]
    events: list[Envelope]


@dataclass
class Applied:
    """What a repayment did to its loan (``apply_repayment``): the split, and the loan's
    events after it (classification, repaid), in order."""

    interest: Decimal
    principal: Decimal
    events: list[Envelope]


def apply_repayment(
    loan: LoanState, amount: Decimal, today: date, schedule: Sequence[InstalmentState] | None = None
) -> Applied:
    """Apply a repayment to an active loan's balances: accrued interest first, then principal
    (more than is due pays principal ahead); all of it paid, the loan is repaid; then its age
    and class as of ``today``. Pure: no I/O. ``schedule``: the loan's billed instalments in
    number order, needed when the payment leaves arrears (``payment_leaves_arrears``).
    Raises ``ValueError`` (overpayment, an invalid amount), changing nothing."""
    interest, principal = allocate(amount, loan.interest_outstanding, loan.principal_outstanding)
    loan.interest_outstanding -= interest
    loan.interest_paid += interest
    loan.principal_outstanding -= principal
    loan.principal_paid += principal
    events: list[Envelope] = []
    if loan.principal_outstanding == ZERO and loan.interest_outstanding == ZERO:
        loan.status = "repaid"
        loan.principal_billed, loan.interest_billed = loan.principal_paid, loan.interest_paid
        loan.overdue_since = None
        events += age(loan, today)
        events.append(
            new_event(
                "loans.loan.repaid",
                loan.village_code,
                LoanRepaid(
                    **_who(loan),
                    loan_id=loan.id,
                    business_date=today,
                    on_time=not loan.ever_overdue,
                    first_due_on=add_months(loan.disbursed_on, 1),
                ),
            )
        )
    else:
        loan.overdue_since = oldest_unpaid_due(loan, schedule)
        events += age(loan, today)
    return Applied(interest, principal, events)


def payment_leaves_arrears(loan: LoanState, amount: Decimal) -> bool:
    """Whether paying ``amount`` leaves some of what is billed unpaid (``apply_repayment``
    then needs the billed instalments)."""
    return arrears(loan) > amount


async def repay(session: AsyncSession, loan: Loan, line: CreditLine, amount: Decimal, today: date) -> Repaid:
    """Apply a repayment to a locked, active loan (``apply_repayment``), and record it: the
    repayment row, the line's outstanding, its postings and events. A refusal (``Problem``)
    changes nothing."""
    schedule = await _billed_instalments(session, loan) if payment_leaves_arrears(loan, amount) else None
    try:
        applied = apply_repayment(loan, amount, today, schedule)
    except ValueError as exc:
        raise Problem(
            422,
            "OVERPAYMENT" if "overpayment" in str(exc) else "VALIDATION_FAILED",
            "Repayment refused",
            str(exc),
            field="amount",
        ) from None
    interest, principal = applied.interest, applied.principal
    line.outstanding -= principal
    loan.version += 1
    repayment = Repayment(
        id=str(uuid.uuid4()),
        loan_id=loan.id,
        amount=amount,
        interest=interest,
        principal=principal,
        business_date=today,
        received_at=datetime.now(UTC),
    )
    session.add(repayment)
    postings = ledger.posting(
        "repayment",
        loan.id,
        today,
        [
            (ledger.SETTLEMENT, amount, ZERO),
            (ledger.INTEREST_RECEIVABLE, ZERO, interest),
            (ledger.LOANS, ZERO, principal),
        ],
    )
    received = new_event(
        "loans.repayment.received",
        loan.village_code,
        RepaymentReceived(
            **_who(loan),
            loan_id=loan.id,
            repayment_id=repayment.id,
            amount=format_money(amount),
            interest=format_money(interest),
            principal=format_money(principal),
            principal_outstanding=format_money(loan.principal_outstanding),
            business_date=today,
        ),
    )
    return Repaid(repayment, postings, [received, *applied.events])


async def record(session: AsyncSession, repaid: Sequence[Repaid]) -> None:
    """Post the repayments' ledger rows and emit their events, in the order given."""
    await ledger.post(session, [row for r in repaid for row in r.postings])
    await emit(session, *(event for r in repaid for event in r.events))


# --- write-off ----------------------------------------------------------------------------


async def write_off(session: AsyncSession, loan: Loan, line: CreditLine, today: date) -> Decimal:
    if not is_non_performing(cast(Classification, loan.classification)):
        raise Problem(
            409,
            "NOT_NON_PERFORMING",
            "Not non-performing",
            f"Only non-performing loans are written off; this one is {loan.classification}.",
        )
    principal, interest = loan.principal_outstanding, loan.interest_outstanding
    loss = principal + interest
    await ledger.post(
        session,
        ledger.posting(
            "write_off",
            loan.id,
            today,
            [
                (ledger.WRITE_OFF_LOSS, loss, ZERO),
                (ledger.LOANS, ZERO, principal),
                (ledger.INTEREST_RECEIVABLE, ZERO, interest),
            ],
        ),
    )
    loan.principal_outstanding = loan.interest_outstanding = ZERO
    loan.status = "written_off"
    loan.version += 1
    line.outstanding -= principal
    await emit(
        session,
        new_event(
            "loans.loan.written_off",
            loan.village_code,
            LoanWrittenOff(
                **_who(loan),
                loan_id=loan.id,
                loss=format_money(loss),
                principal=format_money(principal),
                interest=format_money(interest),
                business_date=today,
            ),
        ),
    )
    return loss


# --- close of business ----------------------------------------------------------------------


class Accruals:
    """A chunk's accruals, posted as one balanced summary entry: the general ledger carries
    the totals, each loan row (the subledger) its own amounts; tests reconcile the two."""

    def __init__(self) -> None:
        self.gross = ZERO
        self.subsidy = ZERO
        self.net_up = ZERO  # borrower interest accrued
        self.net_down = ZERO  # rounding give-backs where a day's net is negative

    def add(self, gross: Decimal, subsidy: Decimal) -> None:
        self.gross += gross
        self.subsidy += subsidy
        net = gross - subsidy
        if net >= 0:
            self.net_up += net
        else:
            self.net_down -= net

    def posting(self, day: date) -> list[dict[str, object]]:
        return ledger.posting(
            "accrual",
            None,
            day,
            [
                (ledger.INTEREST_RECEIVABLE, self.net_up, self.net_down),
                (ledger.SUBSIDY_RECEIVABLE, self.subsidy, ZERO),
                (ledger.INTEREST_INCOME, ZERO, self.gross),
            ],
        )


def close_loan_day(
    loan: LoanState,
    day: date,
    accruals: Accruals,
    *,
    subsidised: bool = True,
    schedule: Sequence[InstalmentState] | None = None,
) -> list[Envelope]:
    """Close ``day`` for one loan: fix the period's interest and subsidy on its first day,
    accrue, bill a period that ends, age and classify as of the next business day.
    Idempotent per loan and day (``closed_through``). A day its subject is blacklisted
    (not ``subsidised``) earns no subsidy: seed 001, no fiscal subsidy for subjects with
    bad records; the borrower owes that day's interest in full.
    ``schedule``: all the loan's instalments in number order, required when
    ``needs_schedule`` (their ``billed`` is set when a period bills)."""
    if loan.closed_through >= day or loan.status != "active":
        return []
    events: list[Envelope] = []
    next_day = day + DAY
    if loan.period_number <= loan.term_months:
        if day == loan.period_start:
            # DOMAIN §4: the period's charges on the principal outstanding at its start, after
            # the payments of this day (the previous due date, or the disbursement date).
            loan.period_interest, loan.period_subsidy = period_charges(
                loan.principal_outstanding,
                loan.annual_rate,
                loan.subsidy_rate,
                loan.period_start,
                loan.period_end,
                cast(DayCount, loan.day_count),
            )
        days = (loan.period_end - loan.period_start).days
        elapsed = min((next_day - loan.period_start).days, days)
        gross = to_fen(loan.period_interest * elapsed / days) - loan.period_accrued
        subsidy = day_share(loan.period_subsidy, elapsed, days)
        if not subsidised:
            loan.subsidy_forfeited += subsidy
            subsidy = ZERO
        if gross or subsidy:
            accruals.add(gross, subsidy)
            loan.period_accrued += gross
            loan.period_subsidy_accrued += subsidy
            loan.interest_outstanding += gross - subsidy
            loan.subsidy_accrued += subsidy
        if billing_today(loan, day):
            if schedule is None:
                raise ValueError(f"loan {loan.id} bills on {day}: its instalments are needed")
            _bill_period(loan, schedule)
    if loan.principal_billed + loan.interest_billed > loan.principal_paid + loan.interest_paid or loan.days_past_due:
        # No payment happens in close of business: an oldest unpaid due date already known
        # stays, so the instalments are not read for every overdue loan every day.
        if loan.overdue_since is None:
            loan.overdue_since = oldest_unpaid_due(loan, schedule)
        events += age(loan, next_day)
    if loan.days_past_due == 1 and loan.period_number > 1:
        events.append(
            new_event(
                "loans.instalment.overdue",
                loan.village_code,
                InstalmentOverdue(
                    **_who(loan),
                    loan_id=loan.id,
                    instalment=loan.period_number - 1,
                    due_on=loan.period_start,
                    amount_overdue=format_money(arrears(loan)),
                ),
            )
        )
    loan.closed_through = day
    return events


def billing_today(loan: LoanState, day: date) -> bool:
    """Whether closing ``day`` ends one of the loan's periods."""
    return loan.status == "active" and loan.period_number <= loan.term_months and loan.period_end == day + DAY


def needs_schedule(loan: LoanState, day: date) -> bool:
    """Whether closing ``day`` reads the loan's instalments: a period bills, or the loan is
    in arrears with no oldest unpaid due date known yet (close_loan_day)."""
    return billing_today(loan, day) or (loan.overdue_since is None and arrears(loan) > ZERO)


def _instalment(schedule: Sequence[InstalmentState], number: int) -> InstalmentState | None:
    return next((i for i in schedule if i.number == number), None)


def _bill_period(loan: LoanState, schedule: Sequence[InstalmentState]) -> None:
    inst = _instalment(schedule, loan.period_number)
    assert inst is not None
    before = loan.principal_billed + loan.interest_billed
    last = loan.period_number == loan.term_months
    loan.principal_billed = loan.principal if last else min(loan.principal, loan.principal_billed + inst.principal)
    loan.interest_billed += loan.period_accrued - loan.period_subsidy_accrued
    inst.billed = loan.principal_billed + loan.interest_billed - before
    loan.period_number += 1
    following = _instalment(schedule, loan.period_number)
    loan.period_start = inst.due_on
    loan.period_accrued = loan.period_subsidy_accrued = ZERO
    # Not fixed yet: the due date's payments come first (close_loan_day fixes them when it
    # closes the new period's first day, the due date).
    loan.period_interest = loan.period_subsidy = ZERO
    # Matured (no following instalment): nothing more accrues.
    loan.period_end = inst.due_on if following is None else following.due_on


def day_closed_event(day: date) -> Envelope:
    return new_event(
        "loans.business_date.advanced", "district", BusinessDateAdvanced(closed_date=day, business_date=day + DAY)
    )
