"""Repayment schedules for programme loans: pure functions, money in ``Decimal`` yuan to the fen.

Product rules (the bank must be able to read and sign off each one):

Validation
    principal > 0 with at most two decimal places (fen); 1 <= term_months <= 36 (DOMAIN §4: term <= 3
    years); 0 <= annual_rate < 1, a fraction (0.0435 is 4.35%); 0 <= subsidy_rate <= annual_rate.
    Money and rates must be ``Decimal``: a float has already lost precision before it gets here.
    Anything else raises ``ValueError`` (``TypeError`` for a float) naming the rule.

Rounding
    Every amount is rounded to the fen once, half up (四舍五入), from the exact value: arithmetic is done
    on exact rationals, so a true half fen (e.g. 11000 × 0.0435 / 12 = 39.875) always rounds up.

Dates
    Due date k is ``add_months(start, k)``: the day of the month of the disbursement date, or the
    month's last day when that month is shorter, always anchored on the disbursement date (a loan
    disbursed on 31 January is due 28/29 February, then 31 March). Period k runs from the previous due
    date (the disbursement date for k = 1) to due date k.

Day counts
    30/360: every month counts as 30 days, so each monthly period is exactly 1/12 of a year whatever
    its calendar length; a period that is not a whole number of months is refused (price broken
    periods with an ACT convention). ACT/360 and ACT/365: actual days / 360 or / 365.

Interest (DOMAIN §4, "Interest and billing")
    Interest for a period = opening principal × annual rate × year fraction, to the fen: it is charged
    on the principal outstanding at the start of the period, after any payment made on the previous
    due date (the disbursement date for period 1). It is the gross interest the bank earns. The rule
    lives in ``period_charges``, used both here (the schedule, on the scheduled opening principal) and
    by the close of business (domain/close_of_business.py, on the loan's actual principal outstanding at the close of
    the period's first day), so a borrower who pays every instalment in full on its due date is
    billed this schedule to the fen.

Subsidy (贴息, DOMAIN §4)
    The district finance pays subsidy = min(interest, opening principal × subsidy rate × year fraction),
    to the fen (``period_charges``). Poor households are fully subsidised (全额贴息) by passing
    subsidy_rate == annual_rate: the subsidy is then the interest itself, so the borrower's net due is
    exactly the principal.
    Businesses get 3% a year on the balance: subsidy_rate = 0.03. The subsidy is a receivable from the
    government, shown next to the interest, never netted from it: ``net_due`` = principal + interest −
    subsidy is what the borrower pays.

Methods
    equal_instalment (等额本息): payment A = P·r·(1+r)^n / ((1+r)^n − 1), r = annual rate / 12 (P / n at
    rate 0), rounded to the fen. Each period's principal is A − that period's interest, so the payment is
    A every period (also with ACT day counts, where the interest varies), except the last: the last
    instalment repays whatever principal remains, with interest computed normally, so its total may
    differ from A by a few fen. Should A − interest be negative, that period's principal is 0.
    equal_principal (等额本金): principal P / n to the fen each period, the last repays the remainder.
    interest_only (按月付息到期还本): interest every month, the whole principal with the last instalment.

    No instalment repays more principal than is outstanding: for a tiny loan the rounding up of A or
    P / n can clear the balance before the last period (1.00 over 36 months: 0.03 a month), and the
    remaining instalments are then 0.00. Hence the principals always add up to P exactly and the closing
    principal of the last instalment is 0.00.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Literal, get_args

from shared.money import to_fen
from shared.periods import add_months

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.loans.domain.policies import SubsidyShare

Method = Literal["equal_instalment", "equal_principal", "interest_only"]  # 等额本息, 等额本金, 按月付息到期还本
DayCount = Literal["30/360", "ACT/360", "ACT/365"]

MAX_TERM_MONTHS = 36  # 004 §3(2): poor households and businesses alike, term <= 3 years
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Instalment:
    number: int
    start: date
    due_on: date
    days: int
    opening_principal: Decimal
    principal: Decimal
    interest: Decimal
    subsidy: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest

    @property
    def net_due(self) -> Decimal:
        return self.principal + self.interest - self.subsidy

    @property
    def closing_principal(self) -> Decimal:
        return self.opening_principal - self.principal


def period_fraction(start: date, end: date, day_count: DayCount) -> Decimal:
    """The period's length in years, to 40 significant digits (interest uses the exact ratio)."""
    fraction = _year_fraction(start, end, day_count)
    with localcontext() as ctx:
        ctx.prec = 40
        return Decimal(fraction.numerator) / Decimal(fraction.denominator)


def period_interest(opening: Decimal, annual_rate: Decimal, start: date, end: date, day_count: DayCount) -> Decimal:
    """Interest on ``opening`` for the period, to the fen, half up."""
    _require_decimal("opening", opening)
    _require_decimal("annual_rate", annual_rate)
    if opening < 0 or annual_rate < 0:
        raise ValueError(f"opening principal and rate cannot be negative, got {opening} and {annual_rate}")
    # Exact product: multiplying by a rounded 1/12 would turn 39.875 into 39.8749… and round it down.
    return round_fen(Fraction(opening) * Fraction(annual_rate) * _year_fraction(start, end, day_count))


def period_charges(
    opening: Decimal, annual_rate: Decimal, subsidy_rate: Decimal, start: date, end: date, day_count: DayCount
) -> tuple[Decimal, Decimal]:
    """(interest, subsidy) of the period ``start``..``end`` on the opening principal ``opening``.

    DOMAIN §4 "Interest and billing": interest = opening × annual rate × year fraction, to the fen;
    subsidy = the interest when fully subsidised (subsidy_rate == annual_rate, 全额贴息), else
    min(interest, opening × subsidy rate × year fraction), to the fen."""
    interest = period_interest(opening, annual_rate, start, end, day_count)
    if subsidy_rate == annual_rate:
        # Full subsidy must cancel the interest to the fen, whatever the rounding.
        return interest, interest
    return interest, min(interest, period_interest(opening, subsidy_rate, start, end, day_count))


def instalment_amount(principal: Decimal, annual_rate: Decimal, term_months: int) -> Decimal:
    """The equal-instalment (等额本息) payment A, to the fen, half up."""
    _check_loan(principal, annual_rate, term_months)
    p, r, n = Fraction(principal), Fraction(annual_rate) / 12, term_months
    if r == 0:
        return round_fen(p / n)
    growth = (1 + r) ** n
    # Exact rationals rather than 40-digit Decimal: at 40 digits 178824.00 at 4.25% over 1 month gives
    # 179457.33, while the exact payment is 179457.335, which rounds half up to 179457.34.
    return round_fen(p * r * growth / (growth - 1))


def build_schedule(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: Method,
    start: date,
    day_count: DayCount = "30/360",
    subsidy_rate: Decimal = Decimal(0),
    subsidy_policy: Sequence[SubsidyShare] = (),
) -> list[Instalment]:
    """The loan's instalments 1..term_months (rules in the module docstring); each period's
    subsidy at the shares of ``subsidy_policy`` (domain/policies.py; none: all of it)."""
    _check_loan(principal, annual_rate, term_months)
    _require_decimal("subsidy_rate", subsidy_rate)
    if not (subsidy_rate.is_finite() and 0 <= subsidy_rate <= annual_rate):
        raise ValueError(f"subsidy_rate must be between 0 and annual_rate ({annual_rate}), got {subsidy_rate}")
    if method not in get_args(Method):
        raise ValueError(f"unknown repayment method {method!r}, expected one of {get_args(Method)}")
    if day_count not in get_args(DayCount):
        raise ValueError(f"unknown day count {day_count!r}, expected one of {get_args(DayCount)}")

    return plan_periods(
        to_fen(principal),
        annual_rate,
        1,
        term_months,
        method,
        start,
        day_count,
        subsidy_rate,
        subsidy_policy=subsidy_policy,
    )


def plan_periods(
    balance: Decimal,
    annual_rate: Decimal,
    first: int,
    last: int,
    method: Method,
    anchor: date,
    day_count: DayCount = "30/360",
    subsidy_rate: Decimal = Decimal(0),
    subsidy_until: date | None = None,
    subsidy_policy: Sequence[SubsidyShare] = (),
) -> list[Instalment]:
    """Instalments ``first``..``last`` repaying ``balance``, the principal outstanding at the
    start of period ``first``: the module's rules applied to the remaining periods alone (the
    payment A of equal_instalment, the P / n of equal_principal, over ``last - first + 1``
    periods). Due date k is ``add_months(anchor, k)``, ``anchor`` the disbursement date, so a
    re-plan (extension, prepayment: domain/reschedule.py) keeps the loan's due dates. Periods
    starting on or after ``subsidy_until`` earn no subsidy (an extension, by setting); the
    others earn theirs at the shares of ``subsidy_policy`` (domain/policies.py)."""
    count = last - first + 1
    payment = instalment_amount(balance, annual_rate, count) if method == "equal_instalment" and balance else ZERO
    even_principal = round_fen(Fraction(balance) / count)
    schedule: list[Instalment] = []
    for number in range(first, last + 1):
        period_start, due_on = add_months(anchor, number - 1), add_months(anchor, number)
        subsidised = subsidy_until is None or period_start < subsidy_until
        interest, subsidy = period_charges(
            balance, annual_rate, subsidy_rate if subsidised else Decimal(0), period_start, due_on, day_count
        )
        if subsidy_policy:
            # Imported here: policies builds on this module's rounding (round_fen).
            from services.loans.domain import policies

            subsidy = policies.period_subsidy(subsidy, subsidy_policy, period_start, due_on)
        if number == last:
            repaid = balance
        elif method == "equal_instalment":
            repaid = min(max(payment - interest, ZERO), balance)
        elif method == "equal_principal":
            repaid = min(even_principal, balance)
        else:
            repaid = ZERO
        schedule.append(
            Instalment(
                number=number,
                start=period_start,
                due_on=due_on,
                days=(due_on - period_start).days,
                opening_principal=balance,
                principal=repaid,
                interest=interest,
                subsidy=subsidy,
            )
        )
        balance -= repaid
    return schedule


def _year_fraction(start: date, end: date, day_count: DayCount) -> Fraction:
    if end <= start:
        raise ValueError(f"a period must end after it starts, got {start} to {end}")
    if day_count == "30/360":
        months = (end.year - start.year) * 12 + end.month - start.month
        if not _same_anchor(start, end):
            raise ValueError(f"30/360 prices whole months only, {start} to {end} is not; use ACT/360 or ACT/365")
        return Fraction(months, 12)
    if day_count == "ACT/360":
        return Fraction((end - start).days, 360)
    if day_count == "ACT/365":
        return Fraction((end - start).days, 365)
    raise ValueError(f"unknown day count {day_count!r}, expected one of {get_args(DayCount)}")


def _same_anchor(start: date, end: date) -> bool:
    """Whether both dates are the same anchor day of the month, each clamped to its month's end."""
    if start.day == end.day:
        return True
    if start.day < end.day:
        return start.day == calendar.monthrange(start.year, start.month)[1]
    return end.day == calendar.monthrange(end.year, end.month)[1]


def round_fen(amount: Fraction) -> Decimal:
    """Exact half-up rounding of a rational amount to the fen."""
    if amount < 0:
        return -round_fen(-amount)
    fen = (amount.numerator * 200 + amount.denominator) // (amount.denominator * 2)
    return to_fen(Decimal(fen).scaleb(-2))


def _require_decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")


def _check_loan(principal: Decimal, annual_rate: Decimal, term_months: int) -> None:
    _require_decimal("principal", principal)
    _require_decimal("annual_rate", annual_rate)
    if not principal.is_finite() or principal <= 0:
        raise ValueError(f"principal must be a positive amount, got {principal}")
    if (Fraction(principal) * 100).denominator != 1:
        raise ValueError(f"principal has at most two decimal places (fen), got {principal}")
    if isinstance(term_months, bool) or not isinstance(term_months, int):
        raise TypeError(f"term_months must be an int, got {type(term_months).__name__}")
    if not 1 <= term_months <= MAX_TERM_MONTHS:
        raise ValueError(
            f"term_months must be between 1 and {MAX_TERM_MONTHS} (DOMAIN §4: term <= 3 years), got {term_months}"
        )
    if not (annual_rate.is_finite() and 0 <= annual_rate < 1):
        raise ValueError(f"annual_rate must be a fraction at least 0 and below 1 (0.0435 is 4.35%), got {annual_rate}")
