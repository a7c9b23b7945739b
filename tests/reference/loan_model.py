"""An independent model of a programme loan's schedule, billing, daily accrual and subsidy,
written from DOMAIN.md §4 ("Interest and billing") and the rules documented to the bank
(services/loans/domain/schedule.py's and services/loans/domain/close_of_business.py's docstrings), to check the
service against. It imports nothing from ``services``: every amount is an exact ``Fraction``
of a yuan, rounded half up to the fen where the rules round.

Rules modelled
- Schedule: due date k is the disbursement date moved k calendar months (clamped to the
  month's last day). equal_instalment: A = P·r(1+r)^n / ((1+r)^n − 1), r = annual / 12 (P / n
  at rate 0), to the fen; principal_k = A − interest_k (not below 0). equal_principal: P / n
  to the fen. interest_only: 0. No instalment repays more than is outstanding; the last one
  repays all that remains.
- A period's interest = its opening principal × annual rate × year fraction, to the fen; year
  fraction 30/360: whole months / 12; ACT/360: days / 360; ACT/365: days / 365. Subsidy = the
  interest when subsidy_rate == annual_rate (全额贴息), else min(interest, opening ×
  subsidy_rate × year fraction) to the fen. On the schedule the opening principal is the
  scheduled one; on the loan it is the principal outstanding at the period's start after the
  payments of that day (the previous due date, or the disbursement date).
- Day by day: the close of day d of a period of D days (d-th day, 1-based) recognises
  round(interest × d / D) less what the period has already recognised; the same for the subsidy.
  The borrower owes interest net of subsidy; the subsidy is a receivable of its own.
- Billing, at the close of the day before the due date: the instalment's scheduled principal
  (cumulatively, never beyond the loan's principal; the last: all principal not yet billed)
  plus the period's accrued interest net of subsidy.
- Days past due as of a day: days since the due date of the oldest instalment not paid in full
  (repayments, whatever they paid first, cover the bills in due-date order), so an instalment
  unpaid at the end of its due date is 1 day past due the next day; 0 when nothing billed is
  unpaid.
- A repayment pays, in the configured order (default penalty, interest, principal): the
  penalty outstanding, the interest outstanding (accrued, billed or not), the principal billed
  and unpaid; the rest pays principal ahead of schedule. More than penalty plus interest plus
  principal outstanding is refused. Everything paid, the loan is repaid and nothing more
  accrues.
- Grace and penalty (DOMAIN.md §7, 银发〔2003〕251号 art. 3): days past due are counted after
  ``grace`` days (default 0). The close of a day after which the loan is past due charges, for
  that day, penalty = principal billed and unpaid at the day's end (before that close's own
  bill, due only the next day) × annual × (1 + markup) / 360 and, when
  ``compound``, compound interest = interest billed (net) and unpaid × the same rate / 360, each
  rounded half up to the fen per day; never subsidised. A period's interest is charged on the
  principal outstanding at its start less the principal billed and unpaid then (that bears
  penalty instead).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

DAY = timedelta(days=1)


class Refused(Exception):
    """A repayment the rules refuse (overpayment)."""


def fen(x: Fraction) -> Fraction:
    """Half up (四舍五入) to the fen, exactly."""
    if x < 0:
        return -fen(-x)
    cents = x * 100
    whole = cents.numerator // cents.denominator
    if cents - whole >= Fraction(1, 2):
        whole += 1
    return Fraction(whole, 100)


def money(x: Fraction) -> Decimal:
    """A fen amount as the service writes it."""
    assert (x * 100).denominator == 1, x
    return Decimal(int(x * 100)).scaleb(-2)


def add_months(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def year_fraction(start: date, end: date, day_count: str) -> Fraction:
    if day_count == "30/360":  # a monthly period (anchored due dates) is 1/12 of a year
        return Fraction((end.year - start.year) * 12 + end.month - start.month, 12)
    days = (end - start).days
    return Fraction(days, 360 if day_count == "ACT/360" else 365)


def charges(
    opening: Fraction, annual: Fraction, subsidy_rate: Fraction, start: date, end: date, day_count: str
) -> tuple[Fraction, Fraction]:
    yf = year_fraction(start, end, day_count)
    interest = fen(opening * annual * yf)
    subsidy = interest if subsidy_rate == annual else min(interest, fen(opening * subsidy_rate * yf))
    return interest, subsidy


def equal_payment(principal: Fraction, annual: Fraction, n: int) -> Fraction:
    r = annual / 12
    if r == 0:
        return fen(principal / n)
    growth = (1 + r) ** n
    return fen(principal * r * growth / (growth - 1))


@dataclass(frozen=True)
class Period:
    number: int
    start: date
    due: date
    opening: Fraction
    principal: Fraction
    interest: Fraction
    subsidy: Fraction


def schedule(
    principal: Fraction,
    annual: Fraction,
    subsidy_rate: Fraction,
    n: int,
    method: str,
    start: date,
    day_count: str,
) -> list[Period]:
    a = equal_payment(principal, annual, n)
    even = fen(principal / n)
    balance = principal
    periods = []
    for k in range(1, n + 1):
        begin, due = add_months(start, k - 1), add_months(start, k)
        interest, subsidy = charges(balance, annual, subsidy_rate, begin, due, day_count)
        if k == n:
            repaid = balance
        elif method == "equal_instalment":
            repaid = min(max(a - interest, Fraction(0)), balance)
        elif method == "equal_principal":
            repaid = min(even, balance)
        else:
            repaid = Fraction(0)
        periods.append(Period(k, begin, due, balance, repaid, interest, subsidy))
        balance -= repaid
    return periods


@dataclass
class ReferenceLoan:
    principal: Fraction
    annual: Fraction
    subsidy_rate: Fraction
    n: int
    method: str
    start: date
    day_count: str
    markup: Fraction = Fraction(1, 2)  # 251号: 30%-50%, the service's default 50%
    compound: bool = True
    grace: int = 0
    order: tuple[str, ...] = ("penalty", "interest", "principal")
    plan: list[Period] = field(init=False)
    principal_outstanding: Fraction = field(init=False)
    interest_outstanding: Fraction = Fraction(0)  # net of subsidy
    subsidy_accrued: Fraction = Fraction(0)
    interest_accrued: Fraction = Fraction(0)  # gross: the bank's interest income
    principal_billed: Fraction = Fraction(0)
    interest_billed: Fraction = Fraction(0)  # net of subsidy
    principal_paid: Fraction = Fraction(0)
    interest_paid: Fraction = Fraction(0)
    penalty_outstanding: Fraction = Fraction(0)
    penalty_accrued: Fraction = Fraction(0)  # on principal billed and unpaid
    compound_accrued: Fraction = Fraction(0)  # on interest billed and unpaid
    penalty_paid: Fraction = Fraction(0)
    status: str = "active"
    billed: dict[int, Fraction] = field(default_factory=dict)  # instalment -> its bill
    period: int = 1
    period_interest: Fraction = Fraction(0)
    period_subsidy: Fraction = Fraction(0)
    accrued_gross: Fraction = Fraction(0)
    accrued_subsidy: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        self.plan = schedule(
            self.principal, self.annual, self.subsidy_rate, self.n, self.method, self.start, self.day_count
        )
        self.principal_outstanding = self.principal

    @property
    def paid(self) -> Fraction:
        """Principal and interest paid (penalty covers no bill)."""
        return self.principal_paid + self.interest_paid

    @property
    def arrears(self) -> Fraction:
        return max(Fraction(0), sum(self.billed.values(), Fraction(0)) - self.paid)

    @property
    def principal_in_arrears(self) -> Fraction:
        return max(Fraction(0), self.principal_billed - self.principal_paid)

    def days_past_due(self, on: date) -> int:
        """As of ``on`` (after the day's repayments; after a close, as of the next day), after
        the grace days."""
        if self.status != "active":
            return 0
        billed = Fraction(0)
        for number in sorted(self.billed):
            billed += self.billed[number]
            if billed > self.paid:
                return max(0, (on - self.plan[number - 1].due).days - self.grace)
        return 0

    def pay(self, amount: Fraction) -> tuple[Fraction, Fraction, Fraction]:
        """(to interest, to principal, to penalty), or ``Refused``."""
        assert self.status == "active" and amount > 0
        if amount > self.penalty_outstanding + self.interest_outstanding + self.principal_outstanding:
            raise Refused(amount)
        due = {
            "penalty": self.penalty_outstanding,
            "interest": self.interest_outstanding,
            "principal": self.principal_in_arrears,
        }
        to = {}
        left = amount
        for part in self.order:
            to[part] = min(left, due[part])
            left -= to[part]
        to["principal"] += left
        self.penalty_outstanding -= to["penalty"]
        self.penalty_paid += to["penalty"]
        self.interest_outstanding -= to["interest"]
        self.interest_paid += to["interest"]
        self.principal_outstanding -= to["principal"]
        self.principal_paid += to["principal"]
        if self.principal_outstanding == 0 and self.interest_outstanding == 0 and self.penalty_outstanding == 0:
            self.status = "repaid"
        return to["interest"], to["principal"], to["penalty"]

    def close(self, day: date) -> None:
        """The close of business of ``day`` (after the day's repayments)."""
        if self.status != "active":
            return
        # In arrears at the day's end: a bill made by this close falls due tomorrow.
        principal_base = self.principal_in_arrears
        interest_base = max(Fraction(0), self.interest_billed - self.interest_paid)
        if self.period <= self.n:
            self._accrue_and_bill(day)
        if self.days_past_due(day + DAY) > 0:
            rate = self.annual * (1 + self.markup) / 360
            penalty = fen(principal_base * rate)
            compound = fen(interest_base * rate) if self.compound else Fraction(0)
            self.penalty_accrued += penalty
            self.compound_accrued += compound
            self.penalty_outstanding += penalty + compound

    def _accrue_and_bill(self, day: date) -> None:
        p = self.plan[self.period - 1]
        if day == p.start:
            self.period_interest, self.period_subsidy = charges(
                self.principal_outstanding - self.principal_in_arrears,
                self.annual,
                self.subsidy_rate,
                p.start,
                p.due,
                self.day_count,
            )
        days, elapsed = (p.due - p.start).days, (day - p.start).days + 1
        assert 1 <= elapsed <= days
        gross = fen(self.period_interest * elapsed / days) - self.accrued_gross
        subsidy = fen(self.period_subsidy * elapsed / days) - self.accrued_subsidy
        self.accrued_gross += gross
        self.accrued_subsidy += subsidy
        self.interest_outstanding += gross - subsidy
        self.subsidy_accrued += subsidy
        self.interest_accrued += gross
        if day + DAY == p.due:
            before = self.principal_billed
            last = self.period == self.n
            self.principal_billed = self.principal if last else min(self.principal, before + p.principal)
            self.billed[p.number] = self.principal_billed - before + self.accrued_gross - self.accrued_subsidy
            self.interest_billed += self.accrued_gross - self.accrued_subsidy
            self.period += 1
            self.accrued_gross = self.accrued_subsidy = Fraction(0)
