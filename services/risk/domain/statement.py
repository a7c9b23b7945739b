"""A fund's statement over a period (issue 25 item 5): the risk compensation fund's (004 §6(2))
and a business's mutual guarantee account's. Pure arithmetic, no I/O.

A statement is the balance before the period (the sum of every signed movement dated before
``start``), each movement of the period with the balance after it, the period's totals by kind,
and the balance at its end. Nothing is rounded here: the movements are amounts in fen already,
and sums of Decimals with two places are exact, so ``opening + sum(movements) == closing``
holds to the fen by construction, and the caller checks it against the fund's own balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Period:
    start: date  # included
    end: date  # included


class PeriodError(ValueError):
    """A period the caller asked for that cannot be stated; ``field`` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


Span = Literal["year", "quarter", "month"]


def first_day(day: date, span: Span) -> date:
    """The first day of the calendar year, quarter or month that ``day`` is in."""
    if span == "year":
        return date(day.year, 1, 1)
    if span == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, day.month, 1)


# (product choice) a statement defaults to the current year (a setting) up to the business date
def period_of(start: date | None, end: date | None, today: date, span: Span = "year") -> Period:
    """``end`` defaults to the business date and may not be after it (what has not happened
    is not stated; it also refuses a mistyped 9999-12-31); ``start`` defaults to the first day
    of ``end``'s year (quarter, month: ``span``) and may not be after ``end``."""
    end = today if end is None else end
    if end > today:
        raise PeriodError("to", f"to ({end}) is after the business date {today}: a statement covers what has happened.")
    start = first_day(end, span) if start is None else start
    if start > end:
        raise PeriodError("from", f"from ({start}) is after to ({end}).")
    return Period(start, end)


@dataclass(frozen=True)
class Statement:
    opening: Decimal
    balances: tuple[Decimal, ...]  # after each movement, in order
    totals: dict[str, Decimal]  # by kind, every kind named, zero if none moved
    counts: dict[str, int]
    closing: Decimal


def state(opening: Decimal, movements: Sequence[tuple[str, Decimal]], kinds: Sequence[str]) -> Statement:
    """The statement of ``movements`` (kind, signed amount), in the order given, after
    ``opening``. A kind outside ``kinds`` is a caller's bug: refused, not silently dropped
    from the totals (the totals would then not add up to closing − opening)."""
    totals = dict.fromkeys(kinds, ZERO)
    counts = dict.fromkeys(kinds, 0)
    balance = opening
    balances: list[Decimal] = []
    for kind, amount in movements:
        if kind not in totals:
            raise ValueError(f"movement kind {kind!r} is not one of {list(kinds)}")
        totals[kind] += amount
        counts[kind] += 1
        balance += amount
        balances.append(balance)
    return Statement(opening, tuple(balances), totals, counts, balance)
