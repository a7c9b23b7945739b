"""The government console's rules (issue 26): the colour band of an NPL ratio against the
village threshold, and the year's losses summed by the party that bore them. Pure: the
figures come from the services' APIs (services/notify/console.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from shared.money import to_fen

Band = Literal["green", "amber", "red"]

# The parties of a loss, in risk's order (004 §6(1): the mutual guarantee fund first, then
# the risk compensation fund (government), the bank and the insurer).
PARTIES = ("mutual_guarantee", "government", "bank", "insurer")


# 004 §6(3): a village whose NPL ratio exceeds the threshold (3%) is frozen, so red is strictly
# over it; amber warns of a village nearing it (the fraction is a setting, docs/console.md).
def band(npl_ratio: Decimal, threshold: Decimal, green_fraction: Decimal) -> Band:
    """Red over the threshold, green at or under ``green_fraction`` of it, amber between."""
    if not 0 < green_fraction <= 1:
        raise ValueError("green_fraction must be in (0, 1]")
    if npl_ratio > threshold:
        return "red"
    if npl_ratio <= threshold * green_fraction:
        return "green"
    return "amber"


@dataclass
class YearLosses:
    """A year's realised losses (written off on a business date in that year), by party:
    each party's share as booked, what was recovered back into it, and the net it bears."""

    year: int
    loans: int = 0
    loss: Decimal = Decimal("0.00")
    shares: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(PARTIES, Decimal("0.00")))
    recovered: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(PARTIES, Decimal("0.00")))

    def net(self, party: str) -> Decimal:
        return to_fen(self.shares[party] - self.recovered[party])


def losses_of_year(losses: Iterable[Mapping[str, str]], year: int) -> YearLosses:
    """Sum risk's losses (``GET /v1/losses`` items: decimal strings) written off in ``year``."""
    out = YearLosses(year)
    for row in losses:
        if date.fromisoformat(row["business_date"]).year != year:
            continue
        out.loans += 1
        out.loss = to_fen(out.loss + Decimal(row["loss"]))
        for party in PARTIES:
            out.shares[party] = to_fen(out.shares[party] + Decimal(row[party]))
            out.recovered[party] = to_fen(out.recovered[party] + Decimal(row[f"recovered_{party}"]))
    return out
