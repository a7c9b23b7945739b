"""Loan classification by days past due, and how a repayment is split between interest and principal.

Classification (DOMAIN §4, a product choice following the Chinese five-category rules, 五级分类):
days past due 0 normal (正常); 1-90 special mention (关注); 91-270 substandard (次级); 271-360 doubtful
(可疑); 361 and more loss (损失). The band starts are configurable through ``Bands``. Non-performing
(不良) = substandard + doubtful + loss.

Allocation: a repayment settles the interest due first and only then principal; a repayment larger
than interest due plus principal outstanding is refused rather than silently kept as a credit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Literal

from shared.money import format_money, to_fen

Classification = Literal["normal", "special_mention", "substandard", "doubtful", "loss"]


@dataclass(frozen=True)
class Bands:
    """First day past due of each class (DOMAIN §4: 1 / 91 / 271 / 361)."""

    special_mention_from: int = 1
    substandard_from: int = 91
    doubtful_from: int = 271
    loss_from: int = 361

    def __post_init__(self) -> None:
        starts = [getattr(self, field.name) for field in fields(self)]
        if any(isinstance(start, bool) or not isinstance(start, int) for start in starts):
            raise TypeError(f"band starts must be ints, got {starts}")
        # Day 0 must stay normal: a loan that is not overdue cannot be in any worse class.
        if self.special_mention_from < 1:
            raise ValueError(f"special_mention_from must be at least 1, got {self.special_mention_from}")
        if any(earlier >= later for earlier, later in pairwise(starts)):
            raise ValueError(f"band starts must be strictly increasing, got {starts}")


DEFAULT_BANDS = Bands()

# DOMAIN §4: 不良 = 次级 + 可疑 + 损失
NON_PERFORMING: frozenset[Classification] = frozenset({"substandard", "doubtful", "loss"})


def classify(days_past_due: int, bands: Bands = DEFAULT_BANDS) -> Classification:
    if isinstance(days_past_due, bool) or not isinstance(days_past_due, int):
        raise TypeError(f"days_past_due must be an int, got {type(days_past_due).__name__}")
    if days_past_due < 0:
        raise ValueError(f"days_past_due cannot be negative, got {days_past_due}")
    if days_past_due >= bands.loss_from:
        return "loss"
    if days_past_due >= bands.doubtful_from:
        return "doubtful"
    if days_past_due >= bands.substandard_from:
        return "substandard"
    if days_past_due >= bands.special_mention_from:
        return "special_mention"
    return "normal"


def is_non_performing(classification: Classification) -> bool:
    return classification in NON_PERFORMING


def allocate(amount: Decimal, interest_due: Decimal, principal_outstanding: Decimal) -> tuple[Decimal, Decimal]:
    """Split a repayment into (to interest, to principal): interest first, then principal."""
    for name, value in (
        ("amount", amount),
        ("interest_due", interest_due),
        ("principal_outstanding", principal_outstanding),
    ):
        if not isinstance(value, Decimal):
            raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
        if not value.is_finite() or (Fraction(value) * 100).denominator != 1:
            raise ValueError(f"{name} must be an amount in fen (at most two decimal places), got {value}")
    if interest_due < 0 or principal_outstanding < 0:
        raise ValueError(
            f"interest due and principal outstanding cannot be negative, got {interest_due} and {principal_outstanding}"
        )
    if amount <= 0:
        raise ValueError(f"a repayment must be a positive amount, got {amount}")
    maximum = interest_due + principal_outstanding
    if amount > maximum:
        raise ValueError(f"overpayment: at most {format_money(maximum)} can be repaid, got {format_money(amount)}")
    to_interest = min(amount, interest_due)
    return to_fen(to_interest), to_fen(amount - to_interest)
