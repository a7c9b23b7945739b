"""A loan's life from the line: drawdown, repayment (one or a batch), write-off, each with its
refusals, ledger postings and events. The rules they apply are pure, in domain/ (schedule, repayment, loan_state); the
interest and billing rules are documented in domain/close_of_business.py."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.context import business_date, settings
from services.loans.credit_lines import available, refuse_new_credit, within_capacity
from services.loans.credit_lists import red_listed
from services.loans.domain.classification import Classification, is_non_performing
from services.loans.domain.credit_lists import red_list_rates
from services.loans.domain.loan_state import ZERO, InstalmentState, LoanState, instalment_rows, opening_state, who
from services.loans.domain.policies import NoRateInForce, Reference, reference
from services.loans.domain.repayment import Applied, apply_repayment, payment_leaves_arrears
from services.loans.domain.reschedule import replan
from services.loans.domain.schedule import Method, build_schedule
from services.loans.extensions import write_plan
from services.loans.models import CreditLine, Instalment, Loan, RatingView, Repayment
from shared.catalogue import LoanDisbursed, LoanWrittenOff, RepaymentReceived
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money, to_fen
from shared.problems import Problem

# --- drawdown -----------------------------------------------------------------------------


@dataclass
class Drawn:
    loan: Loan
    schedule: list[Instalment]
    red: bool  # its subject is on the red list today


async def draw(session: AsyncSession, credit_line_id: str, amount: Decimal, term_months: int, method: str) -> Drawn:
    """A loan on the line (随用随贷), unless a refusal applies: an unknown line, new credit
    stopped, no certified rating, over the line's available amount. The fund's capacity is
    the caller's to check, with ``check_fund_capacity``, last in the same transaction (after
    its other writes, so the fund row's lock is held only for the check and the commit)."""
    # The line row is locked first: two concurrent drawdowns on one line serialise here.
    line = await session.get(CreditLine, credit_line_id, with_for_update=True)
    if line is None:
        raise Problem(
            422,
            "UNKNOWN_CREDIT_LINE",
            "Unknown credit line",
            f"No credit line {credit_line_id}.",
            field="credit_line_id",
        )
    await refuse_new_credit(session, line.village_code, line.township_code, line.subject_id)
    rating = await session.get(RatingView, line.subject_id)
    if rating is None or not rating.certified or line.limit <= 0:
        raise Problem(409, "RATING_NOT_CERTIFIED", "Rating not certified", "The rating in force gives no credit now.")
    if amount > available(line):
        raise Problem(
            409,
            "LIMIT_EXCEEDED",
            "Limit exceeded",
            f"Available on this line: {available(line):.2f}.",
            available=f"{available(line):.2f}",
        )
    red = await red_listed(session, line.subject_id)
    today = await business_date(session, hold=True)
    loan, schedule = await drawdown(session, line, rating, amount, term_months, method, today, red=red)
    return Drawn(loan, schedule, red)


async def check_fund_capacity(session: AsyncSession, amount: Decimal) -> None:
    """409 FUND_CAPACITY_EXCEEDED unless programme lending, this drawdown of ``amount``
    included, stays within the fund's capacity. The fund row is locked here, so call it
    last in the drawdown's transaction: concurrent drawdowns queue on the row only for this
    check and the commit. The check counts the drawdown (its line is flushed first); a
    refusal rolls the drawdown back with the rest of the transaction."""
    if not await within_capacity(session, amount):
        raise Problem(
            409,
            "FUND_CAPACITY_EXCEEDED",
            "Fund capacity reached",
            "Programme lending may not exceed 10x the risk compensation fund (004 §6(2)).",
        )


def pricing_reference(term_months: int, today: date) -> Reference:
    """The benchmark (and LPR) in force on the business date for the term, by the pricing rule
    (domain/policies.py), or 409 NO_RATE_IN_FORCE: the rate is fixed at drawdown."""
    cfg = settings()
    try:
        return reference(
            term_months, today, cfg.pricing_rule, cfg.benchmarks(), cfg.lprs(), cfg.lpr_five_year_above_months
        )
    except NoRateInForce as exc:
        raise Problem(409, "NO_RATE_IN_FORCE", "No rate in force", f"{exc} (VCREDIT_LOANS_BENCHMARK_TABLE).") from exc


def rates_for(rating: RatingView, kind: str, ref: Reference) -> tuple[Decimal, Decimal]:
    """(annual rate, subsidy rate) per 004 §3(2) and 004 §5.6, capped by the pricing rule."""
    cfg = settings()
    benchmark = ref.benchmark_rate
    if kind == "business":
        rate = ref.cap(benchmark * (1 + cfg.business_markup))
        return rate, min(cfg.business_subsidy_rate, rate)
    # 004 §3(2), 004 §5.6: households at the benchmark rate; registered poor households fully subsidised.
    rate = ref.cap(benchmark)
    return rate, rate if rating.poor_household else Decimal(0)


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
    ref = pricing_reference(term_months, today)
    rate, subsidy_rate = rates_for(rating, line.subject_kind, ref)
    discount = Decimal(0)
    if red:
        rate, subsidy_rate, discount = red_list_rates(rate, subsidy_rate, settings().red_list_rate_discount)
    plan = build_schedule(
        amount,
        rate,
        term_months,
        cast(Method, method),
        today,
        settings().day_count,
        subsidy_rate,
        settings().subsidy_shares(),
    )
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
        pricing_rule=ref.rule,
        benchmark_from=ref.benchmark_from,
        benchmark_rate=ref.benchmark_rate,
        lpr_from=ref.lpr_from,
        lpr_rate=ref.lpr_rate,
        day_count=settings().day_count,
        method=method,
        term_months=term_months,
        disbursed_on=today,
        maturity_on=plan[-1].due_on,
        version=1,
        **opening_state(plan, amount, today),
    )
    instalments = [Instalment(**row) for row in instalment_rows(loan.id, plan)]
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
                **who(line),
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


async def _billed_instalments(session: AsyncSession, loan: Loan) -> list[Instalment]:
    billed = await session.scalars(
        select(Instalment)
        .where(Instalment.loan_id == loan.id, Instalment.billed.is_not(None))
        .order_by(Instalment.number)
    )
    return list(billed)


# --- repayment ----------------------------------------------------------------------------


async def _locked_loans(
    session: AsyncSession, loan_ids: Collection[str]
) -> tuple[dict[str, Loan], dict[str, CreditLine]]:
    """The loans and their lines, locked in that order and each by id, as every writer of
    both locks them (no two requests wait on each other in a cycle)."""
    loans = {
        loan.id: loan
        for loan in await session.scalars(
            select(Loan).where(Loan.id.in_(sorted(loan_ids))).order_by(Loan.id).with_for_update()
        )
    }
    line_ids = sorted({loan.credit_line_id for loan in loans.values()})
    lines = {
        line.id: line
        for line in await session.scalars(
            select(CreditLine).where(CreditLine.id.in_(line_ids)).order_by(CreditLine.id).with_for_update()
        )
    }
    return loans, lines


def _active(loan_id: str, loan: Loan | None) -> Loan:
    if loan is None:
        raise Problem(404, "LOAN_NOT_FOUND", "Loan not found", f"No loan {loan_id}.")
    if loan.status != "active":
        raise Problem(409, "LOAN_CLOSED", "Loan closed", f"The loan is {loan.status}.")
    return loan


async def _locked_loan(session: AsyncSession, loan_id: str) -> tuple[Loan, CreditLine]:
    """One loan and its line, locked in one statement: PostgreSQL locks a result row's rows
    in the order the FROM names them, the loan first, as ``_locked_loans`` does (one round
    trip fewer per repayment, issue 27). Only for one loan: for several, a join would lock
    loan, line, loan, line..., not every loan before every line."""
    query = (
        select(Loan, CreditLine)
        .join(CreditLine, CreditLine.id == Loan.credit_line_id)
        .where(Loan.id == loan_id)
        .with_for_update()
    )
    row = (await session.execute(query)).one_or_none()
    loan = _active(loan_id, None if row is None else row.Loan)
    assert row is not None  # _active refused a missing loan
    return loan, row.CreditLine


def refuse_other_date(today: date, value_date: date | None) -> None:
    if value_date is not None and value_date != today:
        raise Problem(
            422,
            "NOT_THE_BUSINESS_DATE",
            "Value date refused",
            f"Repayments are taken on the business date {today}; back-dating is not supported.",
            field="date",
        )


@dataclass
class Repaid:
    """A repayment applied to its loan and line, with the loan's balances just after it; its
    ledger rows and events are for the caller to ``record``, so a batch records all of its
    repayments' in two statements."""

    repayment: Repayment
    principal_outstanding: Decimal
    interest_outstanding: Decimal
    penalty_outstanding: Decimal
    postings: list[dict[str, object]]
    events: list[Envelope]


Prepayment = Literal["shorter_term", "lower_instalment"]


async def repay_loan(
    session: AsyncSession,
    loan_id: str,
    amount: Decimal,
    value_date: date | None,
    prepayment: Prepayment = "shorter_term",
) -> Repaid:
    """One repayment on an active loan, taken on the business date, recorded. ``prepayment``:
    what principal paid ahead does (``repay``)."""
    loan, line = await _locked_loan(session, loan_id)
    today = await business_date(session, hold=True)
    refuse_other_date(today, value_date)
    repaid = await repay(session, loan, line, amount, today, prepayment)
    await record(session, [repaid])
    return repaid


async def repay_in_turn(
    session: AsyncSession, items: Sequence[tuple[str, Decimal]], value_date: date | None
) -> tuple[date, list[Repaid | Problem]]:
    """A bank's debit run (批量扣款): each (loan id, amount) applied as ``repay_loan`` would,
    after the items before it (two on one loan see each other), or refused alone (its
    ``Problem``, changing nothing); the applied ones are recorded together."""
    today = await business_date(session, hold=True)
    refuse_other_date(today, value_date)
    loans, lines = await _locked_loans(session, {loan_id for loan_id, _ in items})
    outcomes: list[Repaid | Problem] = []
    for loan_id, amount in items:
        try:
            loan = _active(loan_id, loans.get(loan_id))
            outcomes.append(await repay(session, loan, lines[loan.credit_line_id], amount, today))
        except Problem as refused:
            outcomes.append(refused)
    await record(session, [o for o in outcomes if isinstance(o, Repaid)])
    return today, outcomes


async def repay(
    session: AsyncSession,
    loan: Loan,
    line: CreditLine,
    amount: Decimal,
    today: date,
    prepayment: Prepayment = "shorter_term",
) -> Repaid:
    """Apply a repayment to a locked, active loan (``apply_repayment``), and record it: the
    repayment row, the line's outstanding, its postings and events. A refusal (``Problem``)
    changes nothing. Principal paid ahead covers the next bills (``shorter_term``: the loan
    ends sooner), or with ``lower_instalment`` is billed with the current instalment and the
    rest of the principal re-planned over the same periods (domain/reschedule.py)."""
    schedule = await _billed_instalments(session, loan) if payment_leaves_arrears(loan, amount) else None
    applied = applied_to(loan, amount, today, schedule)
    ahead = loan.principal_paid - loan.principal_billed
    # Principal paid ahead on an active loan means a period is still unbilled (all of it billed,
    # nothing can be paid ahead): it is re-planned over the same periods.
    if prepayment == "lower_instalment" and loan.status == "active" and ahead > 0:
        plan = replan(loan, loan.term_months, subsidy_until=loan.subsidy_ends_on, ahead=ahead)
        await write_plan(session, loan.id, plan)
    line.outstanding -= applied.principal
    loan.version += 1
    repaid = booked(loan, amount, today, applied)
    session.add(repaid.repayment)
    return repaid


def applied_to(loan: LoanState, amount: Decimal, today: date, schedule: Sequence[InstalmentState] | None) -> Applied:
    """``apply_repayment`` with the bank's order and grace (settings), its refusal a
    ``Problem`` (422 OVERPAYMENT or VALIDATION_FAILED); the ORM path and the one-statement
    path (repayment_statement.py) both apply a repayment through here."""
    cfg = settings()
    try:
        return apply_repayment(loan, amount, today, schedule, order=cfg.repayment_order, grace_days=cfg.grace_days)
    except ValueError as exc:
        raise Problem(
            422,
            "OVERPAYMENT" if "overpayment" in str(exc) else "VALIDATION_FAILED",
            "Repayment refused",
            str(exc),
            field="amount",
        ) from None


def booked(loan: LoanState, amount: Decimal, today: date, applied: Applied) -> Repaid:
    """What an applied repayment books: its row (not yet added to a session), its balanced
    posting and its events, ``repayment.received`` first; ``loan`` as just after it."""
    interest, principal, penalty = applied.interest, applied.principal, applied.penalty
    repayment = Repayment(
        id=str(uuid.uuid4()),
        loan_id=loan.id,
        amount=amount,
        interest=interest,
        principal=principal,
        penalty=penalty,
        business_date=today,
        received_at=datetime.now(UTC),
    )
    postings = ledger.posting(
        "repayment",
        loan.id,
        today,
        [
            (ledger.SETTLEMENT, amount, ZERO),
            (ledger.PENALTY_RECEIVABLE, ZERO, penalty),
            (ledger.INTEREST_RECEIVABLE, ZERO, interest),
            (ledger.LOANS, ZERO, principal),
        ],
    )
    received = new_event(
        "loans.repayment.received",
        loan.village_code,
        RepaymentReceived(
            **who(loan),
            loan_id=loan.id,
            repayment_id=repayment.id,
            amount=format_money(amount),
            interest=format_money(interest),
            principal=format_money(principal),
            principal_outstanding=format_money(loan.principal_outstanding),
            business_date=today,
            penalty=format_money(penalty),
        ),
    )
    return Repaid(
        repayment,
        loan.principal_outstanding,
        loan.interest_outstanding,
        loan.penalty_outstanding,
        postings,
        [received, *applied.events],
    )


async def record(session: AsyncSession, repaid: Sequence[Repaid]) -> None:
    """Post the repayments' ledger rows and emit their events, in the order given."""
    await ledger.post(session, [row for r in repaid for row in r.postings])
    await emit(session, *(event for r in repaid for event in r.events))


# --- write-off ----------------------------------------------------------------------------


@dataclass
class WrittenOff:
    loan_id: str
    loss: Decimal
    business_date: date


async def write_off_loan(session: AsyncSession, loan_id: str) -> WrittenOff:
    """Write off an active, non-performing loan on the business date."""
    loan, line = await _locked_loan(session, loan_id)
    today = await business_date(session, hold=True)
    return WrittenOff(loan.id, await write_off(session, loan, line, today), today)


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
    # Penalty never collected is reversed out of income, not a loss shared under 004 §6(1):
    # the shared loss stays principal and contract interest, as API.md defines it.
    penalty = loan.penalty_outstanding
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
                (ledger.PENALTY_INCOME, penalty, ZERO),
                (ledger.PENALTY_RECEIVABLE, ZERO, penalty),
            ],
        ),
    )
    loan.principal_outstanding = loan.interest_outstanding = loan.penalty_outstanding = ZERO
    loan.status = "written_off"
    loan.version += 1
    line.outstanding -= principal
    await emit(
        session,
        new_event(
            "loans.loan.written_off",
            loan.village_code,
            LoanWrittenOff(
                **who(loan),
                loan_id=loan.id,
                loss=format_money(loss),
                principal=format_money(principal),
                interest=format_money(interest),
                business_date=today,
            ),
        ),
    )
    return loss
