"""Loss sharing (004 §6(1), DOMAIN §5). Pure rules, no I/O.

A realised loss on a programme loan is split 30% district government / 20% bank / 50% insurer.
The split is made in fen by the largest remainder method, so the parts always add up to the
loss exactly and no party is ever more than one fen away from its exact share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

# 004 §6(1): 区政府、银行、保险公司按照30%、20%、50%的比例分担风险. The one statement of the
# default split: the setting VCREDIT_RISK_LOSS_SHARES, when set, replaces it.
# Read-only so that a caller cannot change the default split for every later call.
DEFAULT_SHARES: Mapping[str, int] = MappingProxyType({"government": 30, "bank": 20, "insurer": 50})


def to_whole_fen(amount: Decimal, what: str) -> int:
    """A non-negative amount of yuan as a whole number of fen, or ``ValueError``."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"{what} must be a finite amount, got {amount}")
    if amount < 0:
        raise ValueError(f"{what} cannot be negative, got {amount}")
    fen = Fraction(amount) * 100
    # Judged by value, so 1.230 is accepted as 1.23 but 1.231 is refused: a fraction of a fen
    # cannot be paid and silently rounding it would let the parts drift from the booked loss.
    if fen.denominator != 1:
        raise ValueError(f"{what} must be an amount in fen (at most two decimal places), got {amount}")
    return fen.numerator


def _validated(shares: Mapping[str, int]) -> list[tuple[str, int]]:
    parties = list(shares.items())
    if not parties:
        raise ValueError("shares cannot be empty")
    for party, share in parties:
        if isinstance(share, bool) or not isinstance(share, int):
            raise TypeError(f"share of {party!r} must be an int, got {type(share).__name__}")
        if share <= 0:
            raise ValueError(f"share of {party!r} must be positive, got {share}")
    return parties


def largest_remainder(total_fen: int, weights: Sequence[tuple[str, int]]) -> list[int]:
    """``total_fen`` split in proportion to ``weights`` (non-negative, summing above 0), in
    whole fen, by the largest remainder method; the one statement of the rule, shared by the
    loss split and the recovery allocation (services/risk/domain/recovery.py).

    Each party first gets the floor of its exact share; the fen left over go one each to the
    largest fractional remainders, ties to the larger weight (DOMAIN §5), then to the party
    listed first (product choice: the seeds are silent, and listed order keeps it
    deterministic). A party of weight 0 has remainder 0 and so never gets a fen: the
    remainders of the others sum to the fen left over, each below one, so at least that many
    of them are positive and come first.
    """
    whole_weight = sum(weight for _, weight in weights)
    if whole_weight <= 0:
        raise ValueError("the weights must sum to more than 0")
    fen: list[int] = []
    remainders: list[int] = []
    for _, weight in weights:
        whole, remainder = divmod(total_fen * weight, whole_weight)
        fen.append(whole)
        # All remainders are over the same denominator, so the numerators compare exactly.
        remainders.append(remainder)

    leftover = total_fen - sum(fen)
    ranking = sorted(range(len(weights)), key=lambda i: (-remainders[i], -weights[i][1], i))
    # The fractional remainders sum to ``leftover`` and each is below 1, so leftover < len(weights).
    for i in ranking[:leftover]:
        fen[i] += 1
    return fen


def from_fen(fen: int) -> Decimal:
    return Decimal(f"{fen}E-2")


# 004 §6(1), DOMAIN §5: split in fen by largest remainder; ties go to the larger share
def split_loss(loss: Decimal, shares: Mapping[str, int] | None = None) -> dict[str, Decimal]:
    """Split ``loss`` (yuan) between the parties in proportion to ``shares``; None is the
    default split, ``DEFAULT_SHARES`` (what ``VCREDIT_RISK_LOSS_SHARES`` unset means), by
    ``largest_remainder``. Keys come back in the order of ``shares``.
    """
    parties = _validated(DEFAULT_SHARES if shares is None else shares)
    fen = largest_remainder(to_whole_fen(loss, "loss"), parties)
    return {party: from_fen(amount) for (party, _), amount in zip(parties, fen, strict=True)}
