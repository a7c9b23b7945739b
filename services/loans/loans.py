"""A loan's life from the line: drawdown, repayment, write-off, each with its ledger postings
and events. The rules they apply are pure, in domain/ (schedule, repayment, loan_state); the
interest and billing rules are documented in domain/close_of_business.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.context import settings
from services.loans.domain.classification import Classification, is_non_performing
from services.loans.domain.credit_lists import red_list_rates
from services.loans.domain.loan_state import ZERO, opening_state, who
from services.loans.domain.repayment import apply_repayment, payment_leaves_arrears
from services.loans.domain.schedule import Method, build_schedule
from services.loans.models import CreditLine, Instalment, Loan, RatingView, Repayment
from shared.catalogue import LoanDisbursed, LoanWrittenOff, RepaymentReceived
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money, to_fen
from shared.problems import Problem

# --- drawdown -----------------------------------------------------------------------------


def rates_for(rating: RatingView, kind: str, term_months: int) -> tuple[Decimal, Decimal]:
    """(annual rate, subsidy rate) per 004 §3(2) and 004 §5.6."""
    cfg = settings()
    benchmark = cfg.benchmark_rate(term_months)
    if kind == "business":
        rate = benchmark * (1 + cfg.business_markup)
        return rate, min(cfg.business_subsidy_rate, rate)
    # 004 §3(2), 004 §5.6: households at the benchmark rate; registered poor households fully subsidised.
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


@dataclass
class Repaid:
    """A repayment applied to its loan and line; its ledger rows and events are for the
    caller to ``record``, so a batch records all of its repayments' in two statements."""

    repayment: Repayment
    postings: list[dict[str, object]]
    events: list[Envelope]


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
            **who(loan),
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
