"""The businesses' mutual guarantee accounts (企业互助贷款风险担保基金, 004 §6(2)): each
business's 10% contributions, what its own losses drew from them (``losses.py``) and what
recoveries gave back (``recoveries.py``). Every change of an account is also a movement row,
dated and keyed by the event that made it, so the account's statement can be read for any
period and a rebuild writes the same rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.domain.statement import Period
from services.risk.models import Business, MutualGuaranteeAccount, MutualGuaranteeMovement
from shared.problems import Problem

ZERO = Decimal("0.00")
KINDS = ("contribution", "draw", "recovery")


def _move(
    session: AsyncSession,
    business_id: str,
    kind: str,
    amount: Decimal,
    loan_id: str,
    business_date: date,
    recovery_id: str | None = None,
) -> None:
    session.add(
        MutualGuaranteeMovement(
            business_id=business_id,
            kind=kind,
            amount=amount,
            loan_id=loan_id,
            recovery_id=recovery_id,
            business_date=business_date,
        )
    )


async def contribute(
    session: AsyncSession, business_id: str, village_code: str, loan_id: str, amount: Decimal, on: date
) -> None:
    """A loan's 10% contribution (004 §6(2)), from ``loans.loan.disbursed``."""
    account = await session.get(MutualGuaranteeAccount, business_id)
    if account is None:
        account = MutualGuaranteeAccount(
            business_id=business_id, village_code=village_code, contributed=ZERO, drawn=ZERO
        )
        session.add(account)
    account.contributed += amount
    _move(session, business_id, "contribution", amount, loan_id, on)


async def draw(session: AsyncSession, business_id: str, loan_id: str, loss: Decimal, on: date) -> Decimal:
    """Meet a written-off loss of the business from its own contributions first (product
    choice, docs/risk.md): as much of the loss as its balance covers. What was drawn."""
    account = await session.get(MutualGuaranteeAccount, business_id)
    if account is None:
        return ZERO
    drawn = min(loss, max(ZERO, account.contributed - account.drawn))
    account.drawn += drawn
    if drawn:
        _move(session, business_id, "draw", -drawn, loan_id, on)
    return drawn


async def give_back(
    session: AsyncSession, business_id: str, loan_id: str, recovery_id: str, amount: Decimal, on: date
) -> None:
    """The mutual guarantee's part of a recovery (004 §4(1)6) back to the business's account."""
    account = await session.get(MutualGuaranteeAccount, business_id)
    if account is None:  # the loss drew on it, so it exists
        raise LookupError(f"no mutual guarantee account for business {business_id}, whose loss drew on one")
    account.drawn -= amount
    _move(session, business_id, "recovery", amount, loan_id, on, recovery_id)


async def accounts(
    session: AsyncSession, business_id: str | None, limit: int, offset: int
) -> list[MutualGuaranteeAccount]:
    query = select(MutualGuaranteeAccount).order_by(MutualGuaranteeAccount.business_id).limit(limit).offset(offset)
    if business_id is not None:
        query = query.where(MutualGuaranteeAccount.business_id == business_id)
    return list(await session.scalars(query))


async def account_of(session: AsyncSession, business_id: str) -> tuple[str, MutualGuaranteeAccount | None]:
    """The business's village and account (none before its first loan); 404 for a business
    risk has never heard of, neither registered nor borrowing."""
    account = await session.get(MutualGuaranteeAccount, business_id)
    if account is not None:
        return account.village_code, account
    business = await session.get(Business, business_id)
    if business is None:
        raise Problem(404, "BUSINESS_NOT_FOUND", "Business not found", f"Risk knows no business {business_id}.")
    return business.village_code, None


async def balance_before(session: AsyncSession, business_id: str, start: date) -> Decimal:
    total = await session.scalar(
        select(func.coalesce(func.sum(MutualGuaranteeMovement.amount), 0)).where(
            MutualGuaranteeMovement.business_id == business_id, MutualGuaranteeMovement.business_date < start
        )
    )
    return Decimal(total or 0)


async def movements(session: AsyncSession, business_id: str, period: Period) -> list[MutualGuaranteeMovement]:
    return list(
        await session.scalars(
            select(MutualGuaranteeMovement)
            .where(
                MutualGuaranteeMovement.business_id == business_id,
                MutualGuaranteeMovement.business_date >= period.start,
                MutualGuaranteeMovement.business_date <= period.end,
            )
            .order_by(MutualGuaranteeMovement.business_date, MutualGuaranteeMovement.id)
        )
    )
