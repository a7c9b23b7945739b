"""Recoveries after write-off (004 §4(1)6, DOMAIN §7). Pure rules, no I/O.

Money collected on a written-off loan goes back to those who bore its loss, pro rata to what
each bore, in fen by the loss split's own largest remainder rule (``largest_remainder``).

Each recovery is split in proportion to what each party still bears: its part of the loss
less what earlier recoveries returned to it. For the first recovery that is exactly the
largest-remainder split of the recovery by the parts of the loss; after it, each party's
weight is within a fen of that proportion. Splitting every recovery in proportion to the
original parts instead could, by the tie rule, hand one party the same odd fen twice and so
more than it bore; splitting the running total and taking differences could hand a party a
negative share (the Alabama paradox of the largest remainder method). Weighting by what is
still borne has neither fault: no party is ever returned more than it bore, and once the whole
loss is recovered every party has had back exactly its part.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from services.risk.domain.loss import from_fen, largest_remainder, to_whole_fen

# The parties of a loss in the order they bear it: a business's own mutual guarantee
# contributions first, then the 30/20/50 parts (services/risk/losses.py); a tie in the
# allocation goes to the larger weight, then to the party listed first.
PARTIES = ("mutual_guarantee", "government", "bank", "insurer")


# 004 §4(1)6: a recovery goes back pro rata to what each bore, largest remainder in fen
def allocate_recovery(recovery: Decimal, still_borne: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Split ``recovery`` (yuan) between the parties in proportion to ``still_borne``, what
    each bore of the loss less what earlier recoveries returned to it (keys in their order).

    ``ValueError`` when the recovery is not a positive amount in fen or exceeds what is still
    borne in total (RECOVERY_EXCEEDS_LOSS upstream).
    """
    recovery_fen = to_whole_fen(recovery, "recovery")
    if recovery_fen == 0:
        raise ValueError("a recovery must be positive")
    weights = [(party, to_whole_fen(amount, f"{party}'s part")) for party, amount in still_borne.items()]
    borne = sum(weight for _, weight in weights)
    if recovery_fen > borne:
        raise ValueError(f"a recovery of {recovery} exceeds the {from_fen(borne)} of the loss not yet recovered")
    fen = largest_remainder(recovery_fen, weights)
    return {party: from_fen(amount) for (party, _), amount in zip(weights, fen, strict=True)}
