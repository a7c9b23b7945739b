"""Recoveries after write-off (核销后清收, 004 §4(1)6): money the bank collects on a loan it
wrote off. Booked as income of its own (settlement debited, write-off recoveries credited),
so the written-off principal and interest are not reopened and the write-off loss keeps the
gross loss; announced as ``loans.loan.recovered`` for risk to return it to those who bore the
loss. Never more, in all, than the loss written off."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.context import business_date
from services.loans.domain.loan_state import ZERO, who
from services.loans.models import LedgerEntry, Loan, Recovery
from shared.catalogue import LoanRecovered
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem


@dataclass
class Recovered:
    recovery: Recovery
    loss: Decimal
    recovered: Decimal  # all the loan's recoveries, this one included


async def _written_off_loss(session: AsyncSession, loan_id: str) -> Decimal:
    """The loss the write-off booked: its debit to the write-off loss account, read from the
    ledger, which holds it for every loan written off (before recoveries existed too)."""
    booked = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.debit), 0)).where(
            LedgerEntry.loan_id == loan_id, LedgerEntry.account == ledger.WRITE_OFF_LOSS
        )
    )
    return Decimal(booked or 0).quantize(Decimal("0.01"))


async def _recovered(session: AsyncSession, loan_id: str) -> Decimal:
    total = await session.scalar(select(func.coalesce(func.sum(Recovery.amount), 0)).where(Recovery.loan_id == loan_id))
    return Decimal(total or 0).quantize(Decimal("0.01"))


# 004 §4(1)6: 不良资产处置 — money collected on a written-off loan, at most its loss
async def recover(session: AsyncSession, loan_id: str, amount: Decimal, recorded_by: str) -> Recovered:
    """Record a recovery on a written-off loan on the business date; refused (changing
    nothing) on an unknown loan (404), a loan not written off or beyond the loss (409)."""
    # The loan row is locked: two concurrent recoveries on one loan serialise here, so their
    # sum cannot pass the loss.
    loan = await session.get(Loan, loan_id, with_for_update=True)
    if loan is None:
        raise Problem(404, "LOAN_NOT_FOUND", "Loan not found", f"No loan {loan_id}.")
    if loan.status != "written_off":
        raise Problem(
            409,
            "LOAN_NOT_WRITTEN_OFF",
            "Loan not written off",
            f"Recoveries are taken on written-off loans; this one is {loan.status}: take a repayment instead.",
        )
    loss = await _written_off_loss(session, loan_id)
    before = await _recovered(session, loan_id)
    if before + amount > loss:
        raise Problem(
            409,
            "RECOVERY_EXCEEDS_LOSS",
            "Recovery exceeds the loss",
            f"The loss written off is {format_money(loss)}, {format_money(before)} of it already recovered: "
            f"at most {format_money(loss - before)} more can be recovered.",
        )
    today: date = await business_date(session, hold=True)
    recovery = Recovery(
        id=str(uuid.uuid4()),
        loan_id=loan_id,
        amount=amount,
        business_date=today,
        received_at=datetime.now(UTC),
        recorded_by=recorded_by,
    )
    session.add(recovery)
    await ledger.post(
        session,
        ledger.posting(
            "recovery", loan_id, today, [(ledger.SETTLEMENT, amount, ZERO), (ledger.RECOVERIES, ZERO, amount)]
        ),
    )
    recovered = before + amount
    await emit(
        session,
        new_event(
            "loans.loan.recovered",
            loan.village_code,
            LoanRecovered(
                **who(loan),
                loan_id=loan_id,
                recovery_id=recovery.id,
                amount=format_money(amount),
                recovered=format_money(recovered),
                loss=format_money(loss),
                business_date=today,
            ),
        ),
    )
    return Recovered(recovery, loss, recovered)
