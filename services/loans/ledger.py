"""The double-entry ledger. Every posting is balanced (debits == credits, to the fen) or
refused; balances per account are sums of legs, never stored separately."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.domain.close_of_business import Accruals
from services.loans.models import LedgerEntry

# Assets: what the bank holds or is owed.
LOANS = "loans_principal"  # 贷款本金
INTEREST_RECEIVABLE = "interest_receivable"  # owed by borrowers
SUBSIDY_RECEIVABLE = "subsidy_receivable"  # owed by the district finance (贴息), never netted
PENALTY_RECEIVABLE = "penalty_receivable"  # penalty and compound interest owed (罚息, 复利), never subsidised
SETTLEMENT = "settlement"  # the bank's settlement account with its core system
# Income and expense.
INTEREST_INCOME = "interest_income"
PENALTY_INCOME = "penalty_income"  # domain/penalty.py; reversed when a loan is written off
WRITE_OFF_LOSS = "write_off_loss"
# 004 §4(1)6: money collected on written-off loans (核销后清收), income of its own: the
# written-off principal and interest stay written off, so the loss account keeps the gross
# loss and this one what came back of it.
RECOVERIES = "write_off_recoveries"
# Subsidy settlement (004 §4(1)5): a claim's approved part moves from the accrued receivable
# to what the district finance has approved and owes until it pays; a part it does not
# approve is the bank's expense (the borrower's bill does not change).
SUBSIDY_CLAIMED = "subsidy_claimed"
SUBSIDY_DISALLOWED = "subsidy_disallowed"

AccountType = Literal["asset", "liability", "income", "expense"]
ACCOUNTS: dict[str, AccountType] = {
    LOANS: "asset",
    INTEREST_RECEIVABLE: "asset",
    SUBSIDY_RECEIVABLE: "asset",
    SUBSIDY_CLAIMED: "asset",
    PENALTY_RECEIVABLE: "asset",
    SETTLEMENT: "asset",
    INTEREST_INCOME: "income",
    PENALTY_INCOME: "income",
    RECOVERIES: "income",
    WRITE_OFF_LOSS: "expense",
    SUBSIDY_DISALLOWED: "expense",
}
DEBIT_NORMAL = {account for account, kind in ACCOUNTS.items() if kind in ("asset", "expense")}
ZERO = Decimal("0.00")

Leg = tuple[str, Decimal, Decimal]  # account, debit, credit


class UnbalancedPosting(ValueError):
    pass


def posting(kind: str, loan_id: str | None, day: date, legs: Sequence[Leg]) -> list[dict[str, object]]:
    """Rows of one balanced transaction (legs with nothing on them are left out)."""
    debits = sum((d for _, d, _ in legs), ZERO)
    credits = sum((c for _, _, c in legs), ZERO)
    if debits != credits:
        raise UnbalancedPosting(f"{kind}: debits {debits} != credits {credits}")
    txn = str(uuid.uuid4())
    return [
        {
            "txn_id": txn,
            "account": account,
            "loan_id": loan_id,
            "debit": debit,
            "credit": credit,
            "business_date": day,
            "kind": kind,
        }
        for account, debit, credit in legs
        if debit or credit
    ]


def accrual_posting(accruals: Accruals, day: date) -> list[dict[str, object]]:
    """A close-of-business chunk's accruals as one balanced summary entry: the general ledger
    carries the totals, each loan row (the subledger) its own amounts."""
    return posting(
        "accrual",
        None,
        day,
        [
            (INTEREST_RECEIVABLE, accruals.net_up, accruals.net_down),
            (SUBSIDY_RECEIVABLE, accruals.subsidy, ZERO),
            (INTEREST_INCOME, ZERO, accruals.gross),
            (PENALTY_RECEIVABLE, accruals.penalty, ZERO),
            (PENALTY_INCOME, ZERO, accruals.penalty),
        ],
    )


async def post(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    if rows:
        await session.execute(insert(LedgerEntry), list(rows))


async def trial_balance(session: AsyncSession) -> dict[str, Decimal]:
    """Balance per account, signed by its normal side (assets and expenses debit-positive)."""
    rows = await session.execute(
        select(LedgerEntry.account, func.sum(LedgerEntry.debit), func.sum(LedgerEntry.credit)).group_by(
            LedgerEntry.account
        )
    )
    balances = {}
    for account, debit, credit in rows:
        debit, credit = Decimal(debit or 0), Decimal(credit or 0)
        balances[account] = (debit - credit if account in DEBIT_NORMAL else credit - debit).quantize(Decimal("0.01"))
    return balances
