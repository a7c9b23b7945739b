"""Loan classification by days past due.

Classification (DOMAIN §4, a product choice following the Chinese five-category rules, 五级分类):
days past due 0 normal (正常); 1-90 special mention (关注); 91-270 substandard (次级); 271-360 doubtful
(可疑); 361 and more loss (损失). The band starts are configurable through ``Bands``. Non-performing
(不良) = substandard + doubtful + loss.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Literal

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


# Best to worst: a floor keeps a loan at its place or below (no_better_than).
ORDER: tuple[Classification, ...] = ("normal", "special_mention", "substandard", "doubtful", "loss")


def no_better_than(classification: Classification, floor: Classification) -> Classification:
    """The worse of the two: an extended loan is classified no better than its floor
    (贷款风险分类指引: a rescheduled loan is at least special mention, 关注)."""
    return max(classification, floor, key=ORDER.index)


def is_non_performing(classification: Classification) -> bool:
    return classification in NON_PERFORMING
