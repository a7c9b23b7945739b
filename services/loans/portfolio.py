"""The district's lending in figures (issue 26): how many credit lines are open and for how
much, how many loans are outstanding and their principal. Counts and sums only, no subject:
the government console's overview and the public view draw them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.models import CreditLine, Loan
from shared.money import to_fen


@dataclass(frozen=True)
class Portfolio:
    credit_lines: int
    credit_limit: Decimal
    loans_outstanding: int
    principal_outstanding: Decimal


async def portfolio(session: AsyncSession, township_code: str | None, village_code: str | None) -> Portfolio:
    lines = select(func.count(), func.coalesce(func.sum(CreditLine.limit), 0)).select_from(CreditLine)
    # Outstanding: active, i.e. neither repaid nor written off (LoanStatus).
    loans = (
        select(func.count(), func.coalesce(func.sum(Loan.principal_outstanding), 0))
        .select_from(Loan)
        .where(Loan.status == "active")
    )
    if township_code is not None:
        lines = lines.where(CreditLine.township_code == township_code)
        loans = loans.where(Loan.township_code == township_code)
    if village_code is not None:
        lines = lines.where(CreditLine.village_code == village_code)
        loans = loans.where(Loan.village_code == village_code)
    line_count, limit_sum = (await session.execute(lines)).one()
    loan_count, principal_sum = (await session.execute(loans)).one()
    return Portfolio(
        int(line_count), to_fen(Decimal(str(limit_sum))), int(loan_count), to_fen(Decimal(str(principal_sum)))
    )
