"""Dated rate and subsidy policies (issue 24, docs/loan-lifecycle.md "Dated policies"): which
benchmark rates, loan prime rate (LPR) and subsidy share are in force on a date, the pricing
rule applied at drawdown, and the subsidy's share day by day. Pure: the tables come from the
settings (services/loans/settings.py), already validated (dates strictly increasing).

Tables
    Each table is a list of entries in increasing ``effective_from`` order. An entry is in force
    from its effective date up to the day before the next entry's; none is in force before the
    first entry.

Rates, fixed at drawdown (004 §3(2), 中国人民银行公告〔2019〕第15号)
    The benchmark entry in force on the drawdown's business date prices the loan's term (the
    shortest "longest term" covering it). No entry in force: the drawdown is refused. Under the
    pricing rule ``benchmark`` that is all (the behaviour before issue 24). Under ``lpr_cap`` the
    rate the programme sets from the benchmark (households at it, businesses at it plus the
    markup) is at most the LPR of the matching tenor in force that day: the 1-year LPR for a
    term up to ``lpr_five_year_above_months`` (60: loans within five years refer to the 1-year
    LPR), the 5-year-plus LPR beyond. On a date before the first LPR fixing there is no cap (the
    LPR did not exist). What applied is recorded on the loan (``Reference``).

Subsidy share by date (per accrual day)
    A subsidy policy entry gives the share of the subsidy (0 to 1) granted from its date; no
    entry in force is a share of 1, as before issue 24. The period's subsidy ``S`` is fixed on
    its first day as before (the subsidy at a share of 1). Day ``k`` of a period of ``n`` days
    earns the share ``s_k`` in force on that calendar day, rounded cumulatively:
        recognised through day k = round(S × (s_1 + … + s_k) / n), to the fen, half up, exact
        day k's subsidy         = recognised through day k − recognised through day k − 1
    so a policy change applies from its effective day, the period's days add up to
    round(S × Σ s / n) exactly, and with every share 1 the days are S × k / n as before, to the
    fen. The schedule shown at drawdown applies the same rule to each whole period, with the
    policy known then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal, Protocol, TypeVar

from services.loans.domain.credit_lists import day_share
from services.loans.domain.schedule import round_fen

PricingRule = Literal["benchmark", "lpr_cap"]
DAY = timedelta(days=1)
ONE = Decimal(1)


class Dated(Protocol):
    @property
    def effective_from(self) -> date: ...


E = TypeVar("E", bound=Dated)


@dataclass(frozen=True)
class BenchmarkEntry:
    effective_from: date
    rates: Mapping[int, Decimal]  # longest term (months) -> annual rate


@dataclass(frozen=True)
class LprFixing:
    effective_from: date
    one_year: Decimal
    five_year_plus: Decimal


@dataclass(frozen=True)
class SubsidyShare:
    effective_from: date
    share: Decimal  # of the subsidy rate's subsidy, 0..1


class NoRateInForce(ValueError):
    """No benchmark entry prices this term on this date."""


def in_force(table: Sequence[E], day: date) -> E | None:
    """The entry of ``table`` in force on ``day`` (module docstring), or None."""
    i = bisect_right([e.effective_from for e in table], day)
    return table[i - 1] if i else None


@dataclass(frozen=True)
class Reference:
    """What priced a loan at drawdown, recorded on it."""

    rule: PricingRule
    benchmark_from: date
    benchmark_rate: Decimal
    lpr_from: date | None  # the LPR fixing of the matching tenor that capped, under lpr_cap
    lpr_rate: Decimal | None

    def cap(self, rate: Decimal) -> Decimal:
        """``rate`` under the rule: at most the LPR under ``lpr_cap`` when one is in force."""
        return rate if self.lpr_rate is None else min(rate, self.lpr_rate)


def reference(
    term_months: int,
    day: date,
    rule: PricingRule,
    benchmarks: Sequence[BenchmarkEntry],
    lprs: Sequence[LprFixing],
    five_year_above_months: int,
) -> Reference:
    """The benchmark (and under ``lpr_cap`` the LPR) in force on ``day`` for the term."""
    entry = in_force(benchmarks, day)
    if entry is None:
        raise NoRateInForce(f"no benchmark rate table is in force on {day}")
    covering = [longest for longest in entry.rates if term_months <= longest]
    if not covering:
        raise NoRateInForce(f"the benchmark table of {entry.effective_from} has no rate for {term_months} months")
    benchmark = entry.rates[min(covering)]
    fixing = in_force(lprs, day) if rule == "lpr_cap" else None
    if fixing is None:
        return Reference(rule, entry.effective_from, benchmark, None, None)
    lpr = fixing.one_year if term_months <= five_year_above_months else fixing.five_year_plus
    return Reference(rule, entry.effective_from, benchmark, fixing.effective_from, lpr)


def share_on(policy: Sequence[SubsidyShare], day: date) -> Decimal:
    entry = in_force(policy, day)
    return ONE if entry is None else entry.share


def share_days(policy: Sequence[SubsidyShare], start: date, end: date) -> Fraction:
    """Σ of the share in force on each day of ``start`` ≤ d < ``end`` (each day weighs its share)."""
    total = Fraction(0)
    for first, last, share in ranges(policy, start, end):
        total += Fraction(share) * ((last - first).days + 1)
    return total


def ranges(policy: Sequence[SubsidyShare], start: date, end: date) -> list[tuple[date, date, Decimal]]:
    """The days ``start`` ≤ d < ``end`` as ranges (first day, last day, share) of one share each."""
    out: list[tuple[date, date, Decimal]] = []
    first = start
    while first < end:
        share = share_on(policy, first)
        later = [e.effective_from for e in policy if first < e.effective_from < end]
        stop = min(later) if later else end
        if out and out[-1][2] == share:
            out[-1] = (out[-1][0], stop - DAY, share)
        else:
            out.append((first, stop - DAY, share))
        first = stop
    return out


def subsidy_of_day(total: Decimal, policy: Sequence[SubsidyShare], period_start: date, day: date, days: int) -> Decimal:
    """Day ``day``'s part of the period's subsidy ``total`` (at share 1) under ``policy``:
    the cumulative rule of the module docstring. Depends on nothing accrued before, so a day
    forfeited (black list) is not caught up."""
    elapsed = (day - period_start).days + 1
    if not policy:
        return day_share(total, elapsed, days)  # no policy: a share of 1 every day, as before
    if not 1 <= elapsed <= days:
        raise ValueError(f"day {elapsed} is not in a period of {days} days")
    through, before = shares_through(policy, period_start, day)
    return round_fen(Fraction(total) * through / days) - round_fen(Fraction(total) * before / days)


def shares_through(policy: Sequence[SubsidyShare], period_start: date, day: date) -> tuple[Fraction, Fraction]:
    """The share-days of a period from ``period_start`` through ``day`` and through the day
    before (s_1 + … + s_k and s_1 + … + s_k-1 of the module docstring): day ``day``'s subsidy
    is round(S × first / n) − round(S × second / n). With no policy, k and k − 1."""
    if not policy:
        elapsed = (day - period_start).days + 1
        return Fraction(elapsed), Fraction(elapsed - 1)
    through = share_days(policy, period_start, day + DAY)
    return through, through - Fraction(share_on(policy, day))


def period_subsidy(total: Decimal, policy: Sequence[SubsidyShare], start: date, end: date) -> Decimal:
    """A whole period's subsidy under ``policy``: what its days add up to."""
    if not policy:
        return total
    return round_fen(Fraction(total) * share_days(policy, start, end) / (end - start).days)


def describe(policy: Sequence[SubsidyShare], start: date, end: date) -> str:
    """The shares that applied to the days ``start`` ≤ d < ``end``, as recorded on a billed
    instalment: ``first..last=share`` ranges joined by ``;`` (e.g.
    ``2027-03-20..2027-03-31=1;2027-04-01..2027-04-19=0.7``)."""
    return ";".join(f"{first}..{last}={share.normalize():f}" for first, last, share in ranges(policy, start, end))


def parse(recorded: str) -> list[tuple[date, date, Decimal]]:
    """``describe``'s text back as (first, last, share) ranges."""
    out = []
    for part in filter(None, recorded.split(";")):
        span, share = part.split("=")
        first, last = span.split("..")
        out.append((date.fromisoformat(first), date.fromisoformat(last), Decimal(share)))
    return out
