"""What a loan has been billed and paid, instalment by instalment, and the borrower's
statement of a date range: pure, no I/O (services/loans/statements.py reads the rows).

Bills (DOMAIN.md §4 "Interest and billing", domain/close_of_business.py)
    An instalment's bill, fixed by the close of the day before its due date, is its principal
    part plus the period's interest net of subsidy; the loans table keeps its total
    (``instalments.billed``). Its parts are recovered exactly by the rules that made it:
    - principal part: the instalment's scheduled principal, cumulatively never beyond the
      loan's principal; the last instalment: all the principal not billed before;
    - interest (gross): ``schedule.period_charges`` on the principal outstanding at the
      period's start after that day's repayments (the loan's principal less the principal of
      every repayment with a value date on or before the start) less the principal billed
      before and unpaid then (it bears penalty instead), which is what the close of
      business charged: the day-by-day accrual completes exactly the period's interest;
    - subsidy (贴息): interest less the bill's net interest (billed − principal part). So a day
      on the black list, which earns no subsidy (seed 001), shows as less subsidy, as it was.
    A loan repaid or written off between due dates was charged the current period's interest
    up to that day and never billed it: the loan row keeps it (``period_accrued``,
    ``period_subsidy_accrued``, untouched once the loan is closed).

What is paid (the rule of loan_state.oldest_unpaid_due)
    Everything paid on the loan, whatever each repayment paid first (interest first, then
    principal: domain/repayment.py), covers the bills in due-date order; within a bill, its
    net interest first, then its principal (the allocation rule again). Paid beyond every bill
    is paid ahead: it covers the next bills when they fall due, so it is shown on none yet.

An instalment's state, as of the business date
    paid         billed and covered in full (a repaid loan's bills all are)
    partly_paid  billed, due on the business date (not past due yet), covered in part
    due          billed, due on the business date, nothing of it covered
    overdue      billed, its due date before the business date, not covered in full (unpaid at
                 the end of its due date it is past due: DOMAIN §4, loan_state.age)
    written_off  billed, not covered in full, and the loan written off
    upcoming     not billed yet, the loan active
    prepaid      never billed: the loan was repaid before its due date
    A written-off loan's instalments that never billed are ``written_off`` too.

The statement (DOMAIN §4: "the borrower's statement shows interest charged, subsidy and net due")
    On the billed basis, as the bank bills (结息): interest is charged on its due date with its
    bill, not day by day. The balance is what the borrower owes on that basis:
        balance = principal outstanding + interest billed net of subsidy − interest paid
    (its interest part may be negative: interest paid before it was billed, by a repayment
    between due dates, which pays the day's accrued interest first). Its lines, in value-date
    order, and on one day in the order drawdown, billing, interest, repayments (by receipt),
    write-off:
        drawdown   +drawn
        billing    principal_due (moves no balance), +interest −subsidy; net_due = the bill
        interest   +interest −subsidy: the last period's interest up to the repayment or the
                   write-off that closed the loan between due dates
        repayment  −paid, split paid_principal + paid_interest; its part that paid penalty
                   and compound interest (罚息, 复利: domain/penalty.py) is shown apart,
                   paid_penalty, outside the balance (the amount received = paid + paid_penalty)
        write_off  −written_off (principal and interest written off)
    so that, for any range, and in the totals of its lines:
        closing = opening + drawn + interest − subsidy − paid − written_off
    The opening balance is after every line dated before ``from``, the closing after every
    line dated on or before ``to``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from services.loans.domain.schedule import DayCount, period_charges

ZERO = Decimal("0.00")

InstalmentStateName = Literal["paid", "partly_paid", "due", "overdue", "written_off", "upcoming", "prepaid"]
LineKind = Literal["drawdown", "billing", "interest", "repayment", "write_off"]
# Lines of one value date, in this order.
_DAY_ORDER: dict[str, int] = {"drawdown": 0, "billing": 1, "interest": 2, "repayment": 3, "write_off": 4}


@dataclass(frozen=True)
class LoanTerms:
    principal: Decimal
    annual_rate: Decimal
    subsidy_rate: Decimal
    day_count: DayCount


@dataclass(frozen=True)
class ScheduledInstalment:
    number: int
    start: date
    due_on: date
    principal: Decimal  # as scheduled at drawdown
    billed: Decimal | None  # the bill, once it fell due


@dataclass(frozen=True)
class PaidPrincipal:
    """A repayment's value date and the principal it paid."""

    value_date: date
    principal: Decimal


@dataclass(frozen=True)
class Bill:
    number: int
    due_on: date
    principal: Decimal
    interest: Decimal  # gross, the bank's
    subsidy: Decimal  # the district finance's share, a receivable of its own

    @property
    def net_interest(self) -> Decimal:
        return self.interest - self.subsidy

    @property
    def net_due(self) -> Decimal:
        return self.principal + self.interest - self.subsidy


def bills(
    terms: LoanTerms, instalments: Sequence[ScheduledInstalment], repaid: Iterable[PaidPrincipal]
) -> dict[int, Bill]:
    """The billed instalments' parts (module docstring), by number. ``instalments``: all of the
    loan's, in number order; ``repaid``: its repayments' principal by value date."""
    paid = sorted(repaid, key=lambda r: r.value_date)
    out: dict[int, Bill] = {}
    principal_billed = ZERO
    last = len(instalments)
    for inst in instalments:
        if inst.billed is None:
            break  # bills are made in number order: none after the first unbilled
        before = principal_billed
        principal_billed = (
            terms.principal if inst.number == last else min(terms.principal, principal_billed + inst.principal)
        )
        part = principal_billed - before
        paid_by_start = sum((r.principal for r in paid if r.value_date <= inst.start), ZERO)
        opening = terms.principal - paid_by_start
        # Less the principal billed before and unpaid at the start: it bears penalty instead
        # (domain/penalty.py contract_base).
        opening -= max(ZERO, before - paid_by_start)
        interest, _ = period_charges(
            opening, terms.annual_rate, terms.subsidy_rate, inst.start, inst.due_on, terms.day_count
        )
        out[inst.number] = Bill(inst.number, inst.due_on, part, interest, interest - (inst.billed - part))
    return out


@dataclass(frozen=True)
class Progress:
    """One instalment as of the business date: what of its bill is paid, what is not."""

    number: int
    paid_principal: Decimal
    paid_interest: Decimal
    outstanding: Decimal
    state: InstalmentStateName


def progress(
    instalments: Sequence[ScheduledInstalment],
    billed: dict[int, Bill],
    paid_total: Decimal,
    loan_status: str,
    today: date,
) -> list[Progress]:
    """Each instalment's paid, outstanding and state (module docstring). ``paid_total``:
    everything repaid on the loan (principal and interest); ``today``: the business date."""
    left = paid_total
    out = []
    for inst in instalments:
        bill = billed.get(inst.number)
        if bill is None:
            state: InstalmentStateName = {"repaid": "prepaid", "written_off": "written_off"}.get(
                loan_status, "upcoming"
            )  # type: ignore[assignment]  # the values are states
            out.append(Progress(inst.number, ZERO, ZERO, ZERO, state))
            continue
        covered = min(bill.net_due, max(left, ZERO))
        left -= covered
        to_interest = min(covered, max(bill.net_interest, ZERO))
        outstanding = bill.net_due - covered
        if outstanding <= 0:
            state = "paid"
        elif loan_status == "written_off":
            state = "written_off"
        elif inst.due_on < today:
            state = "overdue"
        else:
            state = "partly_paid" if covered > 0 else "due"
        out.append(Progress(inst.number, covered - to_interest, to_interest, outstanding, state))
    return out


# --- the statement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    value_date: date
    kind: LineKind
    instalment: int | None = None
    reference: str | None = None  # the repayment's id
    received_at: datetime | None = None  # a repayment's receipt
    drawn: Decimal = ZERO
    principal_due: Decimal = ZERO
    interest: Decimal = ZERO
    subsidy: Decimal = ZERO
    net_due: Decimal = ZERO
    paid: Decimal = ZERO
    paid_principal: Decimal = ZERO
    paid_interest: Decimal = ZERO
    paid_penalty: Decimal = ZERO  # penalty and compound interest, apart from ``paid``
    written_off: Decimal = ZERO
    written_off_principal: Decimal = ZERO

    @property
    def principal_change(self) -> Decimal:
        return self.drawn - self.paid_principal - self.written_off_principal

    @property
    def interest_change(self) -> Decimal:
        return self.interest - self.subsidy - self.paid_interest - (self.written_off - self.written_off_principal)


@dataclass(frozen=True)
class Balance:
    principal: Decimal
    interest: Decimal  # billed net of subsidy, less paid: negative when paid before billed

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest


@dataclass(frozen=True)
class StatementLine:
    line: Line
    balance: Balance  # after the line


TOTALLED = (
    "drawn",
    "principal_due",
    "interest",
    "subsidy",
    "net_due",
    "paid",
    "paid_principal",
    "paid_interest",
    "paid_penalty",
    "written_off",
)


@dataclass
class Statement:
    opening: Balance
    lines: list[StatementLine]
    closing: Balance
    totals: dict[str, Decimal] = field(default_factory=dict)


def line_order(line: Line) -> tuple[date, int, datetime | None, int, str]:
    """Value date, then the day's order (module docstring), receipt, instalment, reference."""
    return (line.value_date, _DAY_ORDER[line.kind], line.received_at, line.instalment or 0, line.reference or "")


def statement(lines: Iterable[Line], start: date, end: date) -> Statement:
    """The lines dated ``start``..``end`` (both included) with the balance after each, the
    opening and closing balances and the lines' totals (module docstring)."""
    principal = interest = ZERO
    opening: Balance | None = None
    shown: list[StatementLine] = []
    for line in sorted(lines, key=line_order):
        if line.value_date > end:
            break
        if line.value_date >= start and opening is None:
            opening = Balance(principal, interest)
        principal += line.principal_change
        interest += line.interest_change
        if line.value_date >= start:
            shown.append(StatementLine(line, Balance(principal, interest)))
    closing = Balance(principal, interest)
    totals = {name: sum((getattr(s.line, name) for s in shown), ZERO) for name in TOTALLED}
    return Statement(opening or closing, shown, closing, totals)
