"""A township's NPL trend from its villages' daily figures.

Risk keeps one row per village per business date on which the village's figures changed.
On a date a village has no row, its last figures still hold, so the township's total on
each date is the sum of every village's latest row on or before it (carry forward)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal


def npl_ratio(non_performing: Decimal, outstanding: Decimal) -> Decimal:
    """Four places, half up, as risk shows it (a copy: services share events, not code)."""
    if outstanding == 0:
        return Decimal("0.0000")
    return (non_performing / outstanding).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class DayFigures:
    business_date: date
    outstanding: Decimal
    non_performing: Decimal


def township_trend(villages: dict[str, list[DayFigures]]) -> list[tuple[date, Decimal, Decimal, Decimal]]:
    """(date, outstanding, non-performing, NPL ratio) for every date any village changed."""
    dates = sorted({d.business_date for days in villages.values() for d in days})
    latest: dict[str, DayFigures] = {}
    cursors = {code: sorted(days, key=lambda d: d.business_date) for code, days in villages.items()}
    position = dict.fromkeys(villages, 0)
    out: list[tuple[date, Decimal, Decimal, Decimal]] = []
    for day in dates:
        for code, days in cursors.items():
            while position[code] < len(days) and days[position[code]].business_date <= day:
                latest[code] = days[position[code]]
                position[code] += 1
        outstanding = sum((f.outstanding for f in latest.values()), Decimal("0.00"))
        non_performing = sum((f.non_performing for f in latest.values()), Decimal("0.00"))
        out.append((day, outstanding, non_performing, npl_ratio(non_performing, outstanding)))
    return out
