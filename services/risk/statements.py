"""Fund statements (issue 25 item 5): the risk compensation fund's (004 §6(2)) and each
business's mutual guarantee account's, over a period, as JSON and as the files the district
keeps (``shared/tabular``: CSV and XLSX from one sheet). The arithmetic is
``domain/statement.py``; the movements are ``funds.py``'s entries and ``mutual_guarantee.py``'s
movements."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import funds, mutual_guarantee
from services.risk.context import business_date, settings
from services.risk.domain.statement import Period, PeriodError, period_of, state
from services.risk.schemas import (
    FundMovementOut,
    FundStatementOut,
    MutualGuaranteeMovementOut,
    MutualGuaranteeStatementOut,
)
from shared.money import format_money
from shared.problems import Problem
from shared.tabular import Column, Sheet

FUND_KINDS = ("opening", "top_up", "loss", "recovery")
# What the district's ledgers call each movement, for the files people read.
FUND_KIND_TITLES = {"opening": "期初拨入", "top_up": "注资", "loss": "代偿", "recovery": "追偿收回"}
MUTUAL_GUARANTEE_KIND_TITLES = {"contribution": "缴存", "draw": "代偿支取", "recovery": "追偿退回"}


async def period(session: AsyncSession, start: date | None, end: date | None) -> Period:
    """The period asked for, or 422 naming the parameter that cannot be stated."""
    try:
        return period_of(start, end, await business_date(session), settings().statement_period)
    except PeriodError as refused:
        raise Problem(422, "VALIDATION_FAILED", "Invalid request", str(refused), field=refused.field) from None


async def fund_statement(session: AsyncSession, span: Period) -> FundStatementOut:
    entries = await funds.entries_in(session, span)
    made = state(await funds.balance_before(session, span.start), [(e.kind, e.amount) for e in entries], FUND_KINDS)
    return FundStatementOut(
        from_=span.start,
        to=span.end,
        opening_balance=format_money(made.opening),
        totals={kind: format_money(total) for kind, total in made.totals.items()},
        movements=[
            FundMovementOut(
                business_date=e.business_date,
                kind=e.kind,  # one of FUND_KINDS: state() refuses any other
                loan_id=e.loan_id,
                reason=e.reason,
                decided_by=e.decided_by,
                amount=format_money(e.amount),
                balance=format_money(balance),
            )
            for e, balance in zip(entries, made.balances, strict=True)
        ],
        closing_balance=format_money(made.closing),
    )


async def mutual_guarantee_statement(
    session: AsyncSession, business_id: str, span: Period
) -> MutualGuaranteeStatementOut:
    village_code, _ = await mutual_guarantee.account_of(session, business_id)
    moved = await mutual_guarantee.movements(session, business_id, span)
    opening = await mutual_guarantee.balance_before(session, business_id, span.start)
    made = state(opening, [(m.kind, m.amount) for m in moved], mutual_guarantee.KINDS)
    return MutualGuaranteeStatementOut(
        business_id=business_id,
        village_code=village_code,
        from_=span.start,
        to=span.end,
        opening_balance=format_money(made.opening),
        totals={kind: format_money(total) for kind, total in made.totals.items()},
        movements=[
            MutualGuaranteeMovementOut(
                business_date=m.business_date,
                kind=m.kind,  # one of KINDS: state() refuses any other
                loan_id=m.loan_id,
                recovery_id=m.recovery_id,
                amount=format_money(m.amount),
                balance=format_money(balance),
            )
            for m, balance in zip(moved, made.balances, strict=True)
        ],
        closing_balance=format_money(made.closing),
    )


def _heading(
    start: date, end: date, opening: str, closing: str, totals: dict[str, str], titles: dict[str, str]
) -> list[tuple[str, object]]:
    return [
        ("期间", f"{start.isoformat()} 至 {end.isoformat()}"),
        ("期初余额", opening),
        *((f"合计·{titles[kind]}", total) for kind, total in totals.items()),
        ("期末余额", closing),
    ]


def _net(totals: dict[str, str]) -> str:
    """The period's net movement: its totals by kind summed (closing less opening)."""
    return format_money(sum((Decimal(total) for total in totals.values()), start=Decimal("0.00")))


def _opening_line(start: date, opening: str) -> dict[str, object]:
    # The first line carries the balance brought forward, so the CSV (which has no heading
    # lines) states opening, movements and closing (the totals row) on its own.
    return {"date": start, "kind": "期初余额", "reason": "上期结转", "balance": opening}


def fund_sheet(out: FundStatementOut) -> Sheet:
    columns = (
        Column("date", "日期", "date"),
        Column("kind", "类型"),
        Column("loan_id", "贷款编号"),
        Column("reason", "事由"),
        Column("decided_by", "经办"),
        Column("amount", "金额", "money"),
        Column("balance", "余额", "money"),
    )
    rows: list[Mapping[str, object]] = [
        _opening_line(out.from_, out.opening_balance),
        *(
            {
                "date": m.business_date,
                "kind": FUND_KIND_TITLES[m.kind],
                "loan_id": m.loan_id,
                "reason": m.reason,
                "decided_by": m.decided_by,
                "amount": m.amount,
                "balance": m.balance,
            }
            for m in out.movements
        ),
    ]
    return Sheet(
        name="风险补偿基金对账单",
        columns=columns,
        rows=rows,
        totals={"kind": "合计", "amount": _net(out.totals), "balance": out.closing_balance},
        heading=_heading(out.from_, out.to, out.opening_balance, out.closing_balance, out.totals, FUND_KIND_TITLES),
    )


def mutual_guarantee_sheet(out: MutualGuaranteeStatementOut) -> Sheet:
    columns = (
        Column("date", "日期", "date"),
        Column("kind", "类型"),
        Column("loan_id", "贷款编号"),
        Column("recovery_id", "追偿编号"),
        Column("amount", "金额", "money"),
        Column("balance", "余额", "money"),
    )
    rows: list[Mapping[str, object]] = [
        _opening_line(out.from_, out.opening_balance),
        *(
            {
                "date": m.business_date,
                "kind": MUTUAL_GUARANTEE_KIND_TITLES[m.kind],
                "loan_id": m.loan_id,
                "recovery_id": m.recovery_id,
                "amount": m.amount,
                "balance": m.balance,
            }
            for m in out.movements
        ),
    ]
    return Sheet(
        name="互助担保金对账单",
        columns=columns,
        rows=rows,
        totals={"kind": "合计", "amount": _net(out.totals), "balance": out.closing_balance},
        heading=[
            ("企业编号", out.business_id),
            ("村", out.village_code),
            *_heading(
                out.from_, out.to, out.opening_balance, out.closing_balance, out.totals, MUTUAL_GUARANTEE_KIND_TITLES
            ),
        ],
    )
