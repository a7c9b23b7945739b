"""An independent model of a written-off loan's loss and the recoveries on it, written from
DOMAIN.md §5 (loss sharing) and §7 (recoveries after write-off) and the product choices in
docs/risk.md and docs/loan-lifecycle.md, to check the service against. Like loan_model.py it
imports nothing from ``services``: amounts are exact ``Fraction`` s of a yuan.

Rules modelled
- Largest remainder in fen: each party's exact share is total x weight / sum of weights (a
  Fraction of a fen); it first gets the whole fen below that; the fen left over go one each
  to the largest fractional parts, a tie to the larger weight, then to the party listed first.
- The loss: a business's loss is met first from its mutual guarantee contributions (at most
  what is left of them); the rest is split government / bank / insurer by the weights
  (30/20/50 unless configured), by largest remainder.
- A recovery: never more, with the earlier ones, than the loss; split between the mutual
  guarantee, government, bank and insurer (in that order) by largest remainder, each weighted
  by what it bore less what earlier recoveries returned to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

PARTIES = ("mutual_guarantee", "government", "bank", "insurer")
DEFAULT_WEIGHTS = {"government": 30, "bank": 20, "insurer": 50}


class Refused(Exception):
    """A recovery the rules refuse: not positive, not whole fen, or beyond the loss."""


def _whole_fen(amount: Fraction) -> int:
    cents = amount * 100
    if cents.denominator != 1:
        raise Refused(f"{amount} is not a whole number of fen")
    return cents.numerator


def largest_remainder(total: Fraction, weights: dict[str, Fraction]) -> dict[str, Fraction]:
    """``total`` (yuan, whole fen) split by ``weights`` (listed order matters for ties)."""
    total_fen = _whole_fen(total)
    whole_weight = sum(weights.values(), Fraction(0))
    exact = {party: total_fen * weight / whole_weight for party, weight in weights.items()}
    floors = {party: x.numerator // x.denominator for party, x in exact.items()}
    fractional = {party: exact[party] - floors[party] for party in weights}
    order = list(weights)
    ranked = sorted(order, key=lambda p: (-fractional[p], -weights[p], order.index(p)))
    left = total_fen - sum(floors.values())
    for party in ranked[:left]:
        floors[party] += 1
    return {party: Fraction(floors[party], 100) for party in order}


@dataclass
class ReferenceLoss:
    """A written-off loss: who bore it, and the recoveries returned so far."""

    loss: Fraction
    borne: dict[str, Fraction]
    recovered: dict[str, Fraction] = field(default_factory=lambda: dict.fromkeys(PARTIES, Fraction(0)))

    @classmethod
    def split(
        cls, loss: Fraction, mutual_guarantee_left: Fraction = Fraction(0), weights: dict[str, int] | None = None
    ) -> ReferenceLoss:
        drawn = min(loss, max(Fraction(0), mutual_guarantee_left))
        parts = largest_remainder(loss - drawn, {p: Fraction(w) for p, w in (weights or DEFAULT_WEIGHTS).items()})
        return cls(loss, {"mutual_guarantee": drawn, **parts})

    def still_borne(self) -> dict[str, Fraction]:
        return {party: self.borne[party] - self.recovered[party] for party in PARTIES}

    def recover(self, amount: Fraction) -> dict[str, Fraction]:
        """Allocate a recovery and record it; ``Refused`` changes nothing."""
        if amount <= 0:
            raise Refused("a recovery is positive")
        _whole_fen(amount)
        still = self.still_borne()
        if amount > sum(still.values(), Fraction(0)):
            raise Refused("beyond the loss")
        parts = largest_remainder(amount, still)
        for party, part in parts.items():
            self.recovered[party] += part
        return parts
