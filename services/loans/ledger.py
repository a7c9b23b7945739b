"""The double-entry ledger. Every posting is balanced (debits == credits, to the fen) or
refused, and none is dated into a closed accounting period (``post``, the one place every
posting goes through); balances per account are sums of legs, never stored separately (a
closed month's trial balance is also kept as it was closed: services/loans/periods.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import cast

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.domain import periods
from services.loans.domain.close_of_business import Accruals
from services.loans.models import LedgerClose, LedgerEntry
from shared.db import insert_ignore
from shared.problems import Problem

# Assets: what the bank holds or is owed.
LOANS = "loans_principal"  # 贷款本金
INTEREST_RECEIVABLE = "interest_receivable"  # owed by borrowers
SUBSIDY_RECEIVABLE = "subsidy_receivable"  # owed by the district finance (贴息), never netted
PENALTY_RECEIVABLE = "penalty_receivable"  # penalty and compound interest owed (罚息, 复利), never subsidised
# Liabilities: what the programme owes.
# The bank's clearing account with its core system (清算资金往来): credited when a loan is paid
# out of the core's funds (into the borrower's deposit account, a liability in the bank's
# books), debited when borrowers' money comes back through the core. Its balance, credit-
# positive, is what the core has put into the programme net of what came back; it goes
# debit (negative here) only if more has come back than was lent. Until issue 25 it was
# typed an asset, so the trial balance showed it negative while every loan was outstanding.
SETTLEMENT = "settlement"
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

AccountType = periods.AccountType
ACCOUNTS: dict[str, AccountType] = {
    LOANS: "asset",
    INTEREST_RECEIVABLE: "asset",
    SUBSIDY_RECEIVABLE: "asset",
    SUBSIDY_CLAIMED: "asset",
    PENALTY_RECEIVABLE: "asset",
    SETTLEMENT: "liability",
    INTEREST_INCOME: "income",
    PENALTY_INCOME: "income",
    RECOVERIES: "income",
    WRITE_OFF_LOSS: "expense",
    SUBSIDY_DISALLOWED: "expense",
}
DEBIT_NORMAL = {account for account, kind in ACCOUNTS.items() if periods.normal_side(kind) == "debit"}
# Accounts whose balance the loans' own records mirror (loan rows, recoveries per loan, subsidy
# claims): only their operations may move them, so a correction never names them (it would
# leave the ledger and those records disagreeing, and ledger_matches_loans false).
SUBLEDGER = frozenset(
    {
        LOANS,
        INTEREST_RECEIVABLE,
        SUBSIDY_RECEIVABLE,
        PENALTY_RECEIVABLE,
        SUBSIDY_CLAIMED,
        SUBSIDY_DISALLOWED,
        WRITE_OFF_LOSS,
        RECOVERIES,
    }
)
ZERO = Decimal("0.00")

Leg = tuple[str, Decimal, Decimal]  # account, debit, credit


class UnbalancedPosting(ValueError):
    pass


def posting(
    kind: str,
    loan_id: str | None,
    day: date,
    legs: Sequence[Leg],
    *,
    corrects: str | None = None,
    reason: str | None = None,
    recorded_by: str | None = None,
) -> list[dict[str, object]]:
    """Rows of one balanced transaction (legs with nothing on them are left out); a
    correction names the transaction it corrects, why, and who posted it."""
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
            "corrects_txn_id": corrects,
            "reason": reason,
            "recorded_by": recorded_by,
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


# Lower case: the module's upper-case strings are its accounts (tests/unit/loans/test_periods.py).
_held_key = "vcredit_ledger_closed_through"


def hold_closed_through(session: AsyncSession, through: date | None) -> None:
    """``through``, just read with the ledger_close row locked FOR SHARE in the session's
    transaction: ``closed_through`` answers it for the rest of that transaction. Keyed by the
    transaction, so the next one reads (and locks) the row again."""
    session.info[_held_key] = (session.sync_session.get_transaction(), through)


async def closed_through(session: AsyncSession, *, close: bool = False) -> date | None:
    """The last day of the last month closed (None: none is), read under a row lock held to
    the end of the transaction: shared by postings (``FOR SHARE``, they do not wait for one
    another), exclusive for a close (``FOR UPDATE``). So a close waits for the postings
    already under way and sees them in its snapshot, and a posting that starts during a close
    waits for it and then reads the new closing date. (SQLite serialises writers anyway:
    BEGIN IMMEDIATE, shared/db.py.)

    A posting in a transaction that already holds the row shared (``hold_closed_through``:
    the business date's hold reads both) gets the date it read: the lock, held to the end
    of the transaction, keeps it what it was."""
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_held_key)
    if close:
        session.info.pop(_held_key, None)
    elif held is not None and transaction is not None and held[0] is transaction:
        return cast("date | None", held[1])
    query = select(LedgerClose).where(LedgerClose.id == 1).with_for_update(read=not close)
    row = (await session.scalars(query)).one_or_none()
    if row is None:  # a database made before its migration's row, or by create_all
        await insert_ignore(session, LedgerClose.__table__, {"id": 1, "closed_through": None})  # type: ignore[arg-type]
        row = (await session.scalars(query.execution_options(populate_existing=True))).one()
    return row.closed_through


async def post(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Write one or more balanced transactions' rows; 409 PERIOD_CLOSED (nothing written, the
    caller's transaction rolls back) for any row dated on or before the last closed month's
    end. Every posting, from every operation, goes through here."""
    if not rows:
        return
    refuse_closed(await closed_through(session), rows)
    await session.execute(insert(LedgerEntry), list(rows))


def refuse_closed(through: date | None, rows: Sequence[dict[str, object]]) -> None:
    """409 PERIOD_CLOSED if any of ``rows`` is dated on or before ``through``, the last closed
    month's end (``closed_through``, read under its lock); ``post`` and the one-statement
    repayment (repayment_statement.py) both check here."""
    earliest = min(cast(date, row["business_date"]) for row in rows)
    if through is not None and earliest <= through:
        raise Problem(
            409,
            "PERIOD_CLOSED",
            "Accounting period closed",
            f"The ledger is closed through {through}: nothing is posted on {earliest}. Post a correction in the "
            f"open period instead (POST /v1/ledger/corrections), naming the transaction it corrects.",
            closed_through=str(through),
            business_date=str(earliest),
        )


async def sums(session: AsyncSession, start: date | None, end: date) -> tuple[periods.Sums, periods.Sums]:
    """Per account, the (debits, credits) dated before ``start`` and those from ``start``
    (the beginning, when None) through ``end``."""

    async def summed(*where: object) -> periods.Sums:
        query = select(LedgerEntry.account, func.sum(LedgerEntry.debit), func.sum(LedgerEntry.credit))
        rows = await session.execute(query.where(*where).group_by(LedgerEntry.account))  # type: ignore[arg-type]
        return {account: (Decimal(d or 0), Decimal(c or 0)) for account, d, c in rows}

    if start is None:
        return {}, await summed(LedgerEntry.business_date <= end)
    before = await summed(LedgerEntry.business_date < start)
    return before, await summed(LedgerEntry.business_date >= start, LedgerEntry.business_date <= end)


async def trial_balance(session: AsyncSession, start: date | None, end: date) -> list[periods.Line]:
    """Each account's opening (before ``start``), movements (``start``..``end``) and closing
    balance, signed by its normal side."""
    before, within = await sums(session, start, end)
    return periods.lines(ACCOUNTS, before, within)
