"""Closed accounting periods (会计期间) and the trial balance's lines: pure, no I/O
(services/loans/periods.py closes a month and services/loans/corrections.py posts corrections;
services/loans/ledger.py sums the legs).

The rules (issue 25 item 4; docs/settlement.md, "Closed accounting periods and the trial
balance"):
- A period is a calendar month, named ``YYYY-MM`` (企业会计准则——基本准则 art. 7: 会计期间分为
  年度和中期; the month is the 中期 a bank closes).
- A month is closed once every business day of it is closed (the business date is past its
  last day) and the month before it is closed, or has nothing posted (it ends before the
  ledger's first posting).
- Nothing is posted on or before the last day of the last month closed: a mistake found later
  is corrected by a new entry in the open period that names the transaction it corrects.
- Every account's balance is signed by its normal side: assets and expenses debit-positive,
  liabilities and income credit-positive, so the debit-normal balances sum to the
  credit-normal balances whenever every posting balances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

AccountType = Literal["asset", "liability", "income", "expense"]
NormalSide = Literal["debit", "credit"]
Leg = tuple[str, Decimal, Decimal]  # account, debit, credit
ZERO = Decimal("0.00")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``, month 01..12; anything else is a ValueError naming the form."""
        found = _MONTH.fullmatch(text)
        if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1:
            raise ValueError(f"{text!r} is not a month: give YYYY-MM, e.g. 2027-01")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        if self.month == 12:
            return date(self.year, 12, 31)
        return date(self.year, self.month + 1, 1) - timedelta(days=1)

    @property
    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def normal_side(kind: AccountType) -> NormalSide:
    return "debit" if kind in ("asset", "expense") else "credit"


def signed(side: NormalSide, debit: Decimal, credit: Decimal) -> Decimal:
    """A balance on its normal side: positive when the account holds what it normally holds."""
    return (debit - credit if side == "debit" else credit - debit).quantize(ZERO)


def closable(month: Month, business_date: date, closed_through: date | None, first_posting: date | None) -> str | None:
    """Why ``month`` cannot be closed now (a problem code), or None when it can."""
    if closed_through is not None and month.last <= closed_through:
        return "PERIOD_ALREADY_CLOSED"
    if business_date <= month.last:
        return "PERIOD_NOT_ENDED"
    before = month.previous.last
    previous_closed = closed_through is not None and closed_through >= before
    if not previous_closed and first_posting is not None and first_posting <= before:
        return "PREVIOUS_PERIOD_OPEN"
    return None


@dataclass(frozen=True)
class Line:
    """One account of a trial balance: its balance before the window (``opening``), the
    window's debits and credits, and its balance at the window's end (``closing``), both
    signed by the account's normal side."""

    account: str
    type: AccountType
    normal_side: NormalSide
    opening: Decimal
    debit: Decimal
    credit: Decimal
    closing: Decimal


@dataclass(frozen=True)
class Totals:
    debit: Decimal  # the window's debits, all accounts
    credit: Decimal
    opening_debit_normal: Decimal  # the opening balances of the debit-normal accounts
    opening_credit_normal: Decimal
    debit_normal: Decimal  # the closing balances of the debit-normal accounts
    credit_normal: Decimal

    @property
    def balanced(self) -> bool:
        return (
            self.debit == self.credit
            and self.opening_debit_normal == self.opening_credit_normal
            and self.debit_normal == self.credit_normal
        )


Sums = Mapping[str, tuple[Decimal, Decimal]]  # account -> (sum of debits, sum of credits)


def lines(types: Mapping[str, AccountType], before: Sums, within: Sums) -> list[Line]:
    """Every account with a leg before or within the window, in the chart's order (unknown
    accounts, which no posting names, would be a KeyError: the chart must know them all)."""
    order = {account: i for i, account in enumerate(types)}
    out = []
    for account in sorted(set(before) | set(within), key=lambda a: (order[a], a)):
        side = normal_side(types[account])
        opening_debit, opening_credit = before.get(account, (ZERO, ZERO))
        debit, credit = within.get(account, (ZERO, ZERO))
        out.append(
            Line(
                account=account,
                type=types[account],
                normal_side=side,
                opening=signed(side, opening_debit, opening_credit),
                debit=debit.quantize(ZERO),
                credit=credit.quantize(ZERO),
                closing=signed(side, opening_debit + debit, opening_credit + credit),
            )
        )
    return out


def totals(found: Iterable[Line]) -> Totals:
    found = list(found)

    def total(values: Iterable[Decimal]) -> Decimal:
        return sum(values, ZERO).quantize(ZERO)

    return Totals(
        debit=total(x.debit for x in found),
        credit=total(x.credit for x in found),
        opening_debit_normal=total(x.opening for x in found if x.normal_side == "debit"),
        opening_credit_normal=total(x.opening for x in found if x.normal_side == "credit"),
        debit_normal=total(x.closing for x in found if x.normal_side == "debit"),
        credit_normal=total(x.closing for x in found if x.normal_side == "credit"),
    )


class CorrectionRefused(ValueError):
    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


def reverse(legs: Sequence[Leg]) -> list[Leg]:
    """The exact reverse of a transaction: each account's net movement undone, one leg each."""
    net: dict[str, Decimal] = {}
    for account, debit, credit in legs:
        net[account] = net.get(account, ZERO) + debit - credit
    return [(a, -m if m < 0 else ZERO, m if m > 0 else ZERO) for a, m in net.items() if m]


def check_correction(legs: Sequence[Leg], types: Mapping[str, AccountType], locked: Iterable[str]) -> None:
    """A correction names known accounts, none that a subledger mirrors (``locked``), and
    balances to the fen; else CorrectionRefused with the code and the leg at fault."""
    locked = frozenset(locked)
    for i, (account, _, _) in enumerate(legs):
        if account not in types:
            raise CorrectionRefused(
                "UNKNOWN_ACCOUNT", f"No account {account!r}; the chart: {', '.join(types)}.", f"legs[{i}].account"
            )
        if account in locked:
            raise CorrectionRefused(
                "ACCOUNT_NOT_CORRECTABLE",
                f"{account} is mirrored per loan (or per claim) by the loans' own records; it changes only through "
                f"their operations (repayment, write-off, recovery, subsidy claim), never by a correction. "
                f"Correctable: {', '.join(a for a in types if a not in locked)}.",
                f"legs[{i}].account",
            )
    debits = sum((d for _, d, _ in legs), ZERO)
    credits = sum((c for _, _, c in legs), ZERO)
    if debits != credits:
        raise CorrectionRefused(
            "UNBALANCED_CORRECTION",
            f"Debits {debits:.2f} and credits {credits:.2f} differ: a posting balances.",
            "legs",
        )
    if debits == ZERO:
        raise CorrectionRefused("EMPTY_CORRECTION", "The correction moves nothing.", "legs")
