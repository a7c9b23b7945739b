"""Closing an accounting month (issue 25 item 4): its trial balance is stored as it is at the
close and published (``loans.period.closed``), and nothing may be posted into it afterwards
(ledger.post refuses it). The rules are in services/loans/domain/periods.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.context import business_date
from services.loans.domain import periods
from services.loans.domain.periods import Line, Month, Totals
from services.loans.models import AccountingPeriod, AccountingPeriodBalance, LedgerClose, LedgerEntry
from shared.catalogue import PeriodAccount, PeriodClosed
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem


def parse_month(text: str, field: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as bad:
        raise Problem(422, "INVALID_PERIOD", "Invalid accounting period", str(bad), field=field) from None


async def close(session: AsyncSession, month: Month, closed_by: str) -> tuple[AccountingPeriod, list[Line]]:
    """Close ``month`` in the caller's transaction: 409 (nothing written) when it is closed
    already, has a business day still open, or follows a month left open."""
    # First, the exclusive lock: postings under way finish (and are in the snapshot) before
    # the sums below, postings that start now wait for this close and then see it.
    through = await ledger.closed_through(session, close=True)
    today = await business_date(session)
    first_posting: date | None = await session.scalar(select(func.min(LedgerEntry.business_date)))
    refused = periods.closable(month, today, through, first_posting)
    where: dict[str, Any] = {"period": str(month), "closed_through": None if through is None else str(through)}
    if refused == "PERIOD_ALREADY_CLOSED":
        raise Problem(
            409,
            "PERIOD_ALREADY_CLOSED",
            "Accounting period closed",
            f"The ledger is closed through {through}.",
            **where,
        )
    if refused == "PERIOD_NOT_ENDED":
        raise Problem(
            409,
            "PERIOD_NOT_ENDED",
            "Accounting period not ended",
            f"The business date is {today}: close of business must close every day through {month.last} first.",
            business_date=str(today),
            **where,
        )
    if refused == "PREVIOUS_PERIOD_OPEN":
        raise Problem(
            409,
            "PREVIOUS_PERIOD_OPEN",
            "Previous accounting period open",
            f"{month.previous} has postings and is open: close it first.",
            **where,
        )
    found = await ledger.trial_balance(session, month.first, month.last)
    summed = periods.totals(found)
    period = AccountingPeriod(
        period=str(month),
        first_day=month.first,
        last_day=month.last,
        business_date=today,
        closed_at=datetime.now(UTC),
        closed_by=closed_by[:128],
        debit=summed.debit,
        credit=summed.credit,
        opening_debit_normal=summed.opening_debit_normal,
        opening_credit_normal=summed.opening_credit_normal,
        debit_normal=summed.debit_normal,
        credit_normal=summed.credit_normal,
    )
    session.add(period)
    await session.flush()
    session.add_all(
        AccountingPeriodBalance(
            period=str(month),
            account=line.account,
            account_type=line.type,
            position=i,
            opening=line.opening,
            debit=line.debit,
            credit=line.credit,
            closing=line.closing,
        )
        for i, line in enumerate(found)
    )
    await session.execute(update(LedgerClose).where(LedgerClose.id == 1).values(closed_through=month.last))
    await emit(session, new_event("loans.period.closed", "district", _event(period, found, summed)))
    return period, found


def _event(period: AccountingPeriod, found: list[Line], summed: Totals) -> PeriodClosed:
    return PeriodClosed(
        period=period.period,
        first_day=period.first_day,
        last_day=period.last_day,
        business_date=period.business_date,
        closed_by=period.closed_by,
        accounts=[
            PeriodAccount(
                account=x.account,
                type=x.type,
                normal_side=x.normal_side,
                opening=format_money(x.opening),
                debit=format_money(x.debit),
                credit=format_money(x.credit),
                closing=format_money(x.closing),
            )
            for x in found
        ],
        debit=format_money(summed.debit),
        credit=format_money(summed.credit),
        opening_debit_normal=format_money(summed.opening_debit_normal),
        opening_credit_normal=format_money(summed.opening_credit_normal),
        debit_normal=format_money(summed.debit_normal),
        credit_normal=format_money(summed.credit_normal),
    )


async def snapshot(session: AsyncSession, period: AccountingPeriod) -> list[Line]:
    """A closed month's lines as they were stored at its close."""
    rows = await session.scalars(
        select(AccountingPeriodBalance)
        .where(AccountingPeriodBalance.period == period.period)
        .order_by(AccountingPeriodBalance.position)
    )
    return [
        Line(
            account=r.account,
            type=_account_type(r.account_type),
            normal_side=periods.normal_side(_account_type(r.account_type)),
            opening=r.opening,
            debit=r.debit,
            credit=r.credit,
            closing=r.closing,
        )
        for r in rows
    ]


def _account_type(text: str) -> periods.AccountType:
    if text not in ("asset", "liability", "income", "expense"):
        raise ValueError(f"unknown account type {text!r}")
    return text  # type: ignore[return-value]


def stored_totals(period: AccountingPeriod) -> Totals:
    return Totals(
        debit=period.debit,
        credit=period.credit,
        opening_debit_normal=period.opening_debit_normal,
        opening_credit_normal=period.opening_credit_normal,
        debit_normal=period.debit_normal,
        credit_normal=period.credit_normal,
    )


async def closed_through(session: AsyncSession) -> date | None:
    """The last day of the last month closed, for reading (no lock)."""
    row = await session.get(LedgerClose, 1)
    return None if row is None else row.closed_through


async def closed(session: AsyncSession, limit: int, offset: int) -> list[AccountingPeriod]:
    query = select(AccountingPeriod).order_by(AccountingPeriod.period.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


def window(today: date, period: str | None, as_of: date | None) -> tuple[Month | None, date | None, date]:
    """The trial balance's window: ``period``'s month (or everything), cut at ``as_of`` (or the
    month's end, or the business date). 422 naming the parameter: a month not YYYY-MM or not
    begun, an as_of after the business date or before the month."""
    if as_of is not None and as_of > today:
        raise Problem(
            422,
            "DATE_IN_THE_FUTURE",
            "Date after the business date",
            f"The business date is {today}: nothing is posted after it.",
            field="as_of",
        )
    if period is None:
        return None, None, as_of or today
    month = parse_month(period, "period")
    if month.first > today:
        raise Problem(
            422,
            "PERIOD_IN_THE_FUTURE",
            "Accounting period not begun",
            f"The business date is {today}; {month} has not begun.",
            field="period",
        )
    if as_of is not None and as_of < month.first:
        raise Problem(
            422, "AS_OF_BEFORE_PERIOD", "as_of before the period", f"{as_of} is before {month.first}.", field="as_of"
        )
    return month, month.first, min(month.last, as_of or month.last)
