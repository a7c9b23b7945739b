"""What a borrower sees of a loan: each instalment's bill, what of it is paid and its state,
the repayments, and the statement of a date range (DOMAIN.md §4: "the borrower's statement
shows interest charged, subsidy and net due"). The rules are pure, in domain/statement.py;
this module reads the rows they need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.domain.schedule import DayCount
from services.loans.domain.statement import (
    ZERO,
    Bill,
    Line,
    LoanTerms,
    PaidPrincipal,
    Progress,
    ScheduledInstalment,
    Statement,
    bills,
    progress,
    statement,
)
from services.loans.models import Instalment, LedgerEntry, Loan, Repayment
from shared.problems import Problem


def _terms(loan: Loan) -> LoanTerms:
    return LoanTerms(loan.principal, loan.annual_rate, loan.subsidy_rate, cast(DayCount, loan.day_count))


def _scheduled(instalments: Sequence[Instalment]) -> list[ScheduledInstalment]:
    return [ScheduledInstalment(i.number, i.start, i.due_on, i.principal, i.billed) for i in instalments]


async def instalments_of(session: AsyncSession, loan_ids: Sequence[str]) -> dict[str, list[Instalment]]:
    found: dict[str, list[Instalment]] = {loan_id: [] for loan_id in loan_ids}
    if loan_ids:
        query = select(Instalment).where(Instalment.loan_id.in_(loan_ids)).order_by(Instalment.number)
        for inst in await session.scalars(query):
            found[inst.loan_id].append(inst)
    return found


async def repayments_of(session: AsyncSession, loan_ids: Sequence[str]) -> dict[str, list[Repayment]]:
    """Each loan's repayments in value-date order, then as received."""
    found: dict[str, list[Repayment]] = {loan_id: [] for loan_id in loan_ids}
    if loan_ids:
        query = (
            select(Repayment)
            .where(Repayment.loan_id.in_(loan_ids))
            .order_by(Repayment.business_date, Repayment.received_at, Repayment.id)
        )
        for repayment in await session.scalars(query):
            found[repayment.loan_id].append(repayment)
    return found


def account(
    loan: Loan, instalments: Sequence[Instalment], repayments: Sequence[Repayment], today: date
) -> tuple[dict[int, Bill], list[Progress]]:
    """The loan's bills and each instalment's progress as of the business date ``today``."""
    scheduled = _scheduled(instalments)
    billed = bills(_terms(loan), scheduled, [PaidPrincipal(r.business_date, r.principal) for r in repayments])
    return billed, progress(scheduled, billed, loan.principal_paid + loan.interest_paid, loan.status, today)


async def loan_statement(session: AsyncSession, loan: Loan, start: date, end: date, today: date) -> Statement:
    """The statement of ``start``..``end`` (checked by the caller: ``check_range``)."""
    instalments = (await instalments_of(session, [loan.id]))[loan.id]
    repayments = (await repayments_of(session, [loan.id]))[loan.id]
    billed, _ = account(loan, instalments, repayments, today)
    lines = [Line(loan.disbursed_on, "drawdown", reference=loan.id, drawn=loan.principal)]
    lines += [
        Line(
            b.due_on,
            "billing",
            instalment=b.number,
            principal_due=b.principal,
            interest=b.interest,
            subsidy=b.subsidy,
            net_due=b.net_due,
        )
        for b in billed.values()
    ]
    lines += [
        Line(
            r.business_date,
            "repayment",
            reference=r.id,
            received_at=r.received_at,
            paid=r.amount - r.penalty,
            paid_principal=r.principal,
            paid_interest=r.interest,
            paid_penalty=r.penalty,
        )
        for r in repayments
    ]
    closed_on = None
    if loan.status == "written_off":
        entries = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.loan_id == loan.id, LedgerEntry.kind == "write_off")
        )
        legs = list(entries)
        closed_on = legs[0].business_date
        principal = sum((e.credit for e in legs if e.account == ledger.LOANS), ZERO)
        interest = sum((e.credit for e in legs if e.account == ledger.INTEREST_RECEIVABLE), ZERO)
        lines.append(
            Line(
                closed_on,
                "write_off",
                reference=loan.id,
                written_off=principal + interest,
                written_off_principal=principal,
            )
        )
    elif loan.status == "repaid" and repayments:
        closed_on = repayments[-1].business_date
    if closed_on is not None and (loan.period_accrued or loan.period_subsidy_accrued):
        # The period the loan closed in: its interest up to that day, never billed.
        lines.append(
            Line(
                closed_on,
                "interest",
                instalment=loan.period_number,
                interest=loan.period_accrued,
                subsidy=loan.period_subsidy_accrued,
            )
        )
    return statement(lines, start, end)


def check_range(start: date | None, end: date | None, loan: Loan, today: date) -> tuple[date, date]:
    """``from`` defaults to the disbursement date, ``to`` to the business date; ``to`` may not
    be after the business date (what has not happened is not stated) and ``from`` not after
    ``to``. Refused with 422 naming the field."""
    start = loan.disbursed_on if start is None else start
    end = today if end is None else end
    if end > today:
        raise Problem(
            422,
            "VALIDATION_FAILED",
            "Invalid request",
            f"to ({end}) is after the business date {today}: a statement covers what has happened.",
            field="to",
            business_date=str(today),
        )
    if start > end:
        raise Problem(422, "VALIDATION_FAILED", "Invalid request", f"from ({start}) is after to ({end}).", field="from")
    return start, end
