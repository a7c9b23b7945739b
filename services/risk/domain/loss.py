"""Loss sharing (004 §6(1), DOMAIN §5). Pure rules, no I/O.

A realised loss on a programme loan is split 30% district government / 20% bank / 50% insurer.
The split is made in fen by the largest remainder method, so the parts always add up to the
loss exactly and no party is ever more than one fen away from its exact share.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

# 004 §6(1): 区政府、银行、保险公司按照30%、20%、50%的比例分担风险. The one statement of the
# default split: the setting VCREDIT_RISK_LOSS_SHARES, when set, replaces it.
# Read-only so that a caller cannot change the default split for every later call.
DEFAULT_SHARES: Mapping[str, int] = MappingProxyType({"government": 30, "bank": 20, "insurer": 50})


def _to_fen(loss: Decimal) -> int:
    if not isinstance(loss, Decimal):
        raise TypeError(f"loss must be a Decimal, got {type(loss).__name__}")
    if not loss.is_finite():
        raise ValueError(f"loss must be a finite amount, got {loss}")
    if loss < 0:
        raise ValueError(f"loss cannot be negative, got {loss}")
    fen = Fraction(loss) * 100
    # Judged by value, so 1.230 is accepted as 1.23 but 1.231 is refused: a fraction of a fen
    # cannot be paid and silently rounding it would let the parts drift from the booked loss.
    if fen.denominator != 1:
        raise ValueError(f"loss must be an amount in fen (at most two decimal places), got {loss}")
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


# 004 §6(1), DOMAIN §5: split in fen by largest remainder; ties go to the larger share
def split_loss(loss: Decimal, shares: Mapping[str, int] | None = None) -> dict[str, Decimal]:
    """Split ``loss`` (yuan) between the parties in proportion to ``shares``; None is the
    default split, ``DEFAULT_SHARES`` (what ``VCREDIT_RISK_LOSS_SHARES`` unset means).

    Each party first gets the floor of its exact share in fen; the fen left over go one each to
    the largest fractional remainders, ties to the larger share (DOMAIN §5), then to the party
    listed first (product choice: the seeds are silent, and listed order keeps it deterministic).
    Keys come back in the order of ``shares``.
    """
    loss_fen = _to_fen(loss)
    parties = _validated(DEFAULT_SHARES if shares is None else shares)
    total = sum(share for _, share in parties)

    fen: list[int] = []
    remainders: list[int] = []
    for _, share in parties:
        whole, remainder = divmod(loss_fen * share, total)
        fen.append(whole)
        # All remainders are over the same denominator, so the numerators compare exactly.
        remainders.append(remainder)

    leftover = loss_fen - sum(fen)
    ranking = sorted(range(len(parties)), key=lambda i: (-remainders[i], -parties[i][1], i))
    # The fractional remainders sum to ``leftover`` and each is below 1, so leftover < len(parties).
    for i in ranking[:leftover]:
        fen[i] += 1

    return {party: Decimal(f"{amount}E-2") for (party, _), amount in zip(parties, fen, strict=True)}
