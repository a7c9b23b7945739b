"""The lists of a subject's credit: its credit lines, and its loans (or a line's). Each filter
is one subject's or one line's, named by exactly one query parameter; a bound credential's
list holds only what its binding reaches (shared.web.within_binding), so another village's or
household's list is as empty as a missing one's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.models import CreditLine, Loan
from shared.auth import Principal
from shared.problems import Problem


def one_filter(**given: str | None) -> tuple[str, str]:
    """The one filter given, as (name, value); 422 naming the fields when none or several are.
    One, not a combination: each names a single subject's or line's credit (a line has one
    subject), so two could only agree (redundant) or disagree (an empty list)."""
    named = [(name, value) for name, value in given.items() if value is not None]
    if len(named) != 1:
        names = ", ".join(given)
        raise Problem(
            422,
            "VALIDATION_FAILED",
            "Invalid request",
            f"Give exactly one of {names}" + ("." if not named else f"; got {', '.join(n for n, _ in named)}."),
            field=named[1][0] if len(named) > 1 else next(iter(given)),
        )
    return named[0]


def _bound(query: Any, table: type[Loan] | type[CreditLine], principal: Principal) -> Any:
    if principal.village is not None:
        query = query.where(table.village_code == principal.village)
    if principal.household is not None:
        query = query.where(table.subject_id == principal.household)
    return query


async def loans_of(
    session: AsyncSession, principal: Principal, name: str, value: str, limit: int, offset: int
) -> list[Loan]:
    """The loans of a household, a business, a credit line or a village, oldest drawdown first
    (then by id: a stable order to page by)."""
    if name == "credit_line_id":
        query = select(Loan).where(Loan.credit_line_id == value)
    elif name == "village_code":
        # Added (issue 26): a village's loans, for the government console's village page.
        query = select(Loan).where(Loan.village_code == value)
    else:
        query = select(Loan).where(Loan.subject_id == value, Loan.subject_kind == name.removesuffix("_id"))
    query = _bound(query, Loan, principal).order_by(Loan.disbursed_on, Loan.id).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def lines_of(
    session: AsyncSession, principal: Principal, name: str, value: str, limit: int, offset: int
) -> list[CreditLine]:
    """A household's or business's credit lines (one per subject today: the list keeps the
    contract if that changes)."""
    kind = name.removesuffix("_id")
    query = select(CreditLine).where(CreditLine.subject_id == value, CreditLine.subject_kind == kind)
    query = _bound(query, CreditLine, principal).order_by(CreditLine.opened_on, CreditLine.id)
    return list(await session.scalars(query.limit(limit).offset(offset)))
