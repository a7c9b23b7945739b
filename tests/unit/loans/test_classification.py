"""Five-category classification by days past due (domain/classification.py), and repayment allocation
(interest first, domain/repayment.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.loans.domain.classification import (
    NON_PERFORMING,
    Bands,
    Classification,
    classify,
    is_non_performing,
    no_better_than,
)
from services.loans.domain.repayment import allocate

D = Decimal


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "normal"),
        (1, "special_mention"),
        (90, "special_mention"),
        (91, "substandard"),
        (270, "substandard"),
        (271, "doubtful"),
        (360, "doubtful"),
        (361, "loss"),
        (1000, "loss"),
        (10**9, "loss"),
    ],
)
def test_default_bands_follow_domain_section_4(days: int, expected: Classification) -> None:
    assert classify(days) == expected


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        classify(-1)


def test_non_performing_is_substandard_doubtful_and_loss() -> None:
    assert {"substandard", "doubtful", "loss"} == NON_PERFORMING
    assert [is_non_performing(c) for c in ("normal", "special_mention", "substandard", "doubtful", "loss")] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert not is_non_performing(classify(90)) and is_non_performing(classify(91))


def test_custom_bands() -> None:
    bands = Bands(special_mention_from=31, substandard_from=61, doubtful_from=181, loss_from=366)
    assert [classify(days, bands) for days in (0, 30, 31, 60, 61, 180, 181, 365, 366)] == [
        "normal",
        "normal",
        "special_mention",
        "special_mention",
        "substandard",
        "substandard",
        "doubtful",
        "doubtful",
        "loss",
    ]


@pytest.mark.parametrize(
    ("starts", "message"),
    [
        ((0, 91, 271, 361), "at least 1"),
        ((1, 1, 271, 361), "strictly increasing"),
        ((1, 91, 90, 361), "strictly increasing"),
        ((1, 91, 271, 271), "strictly increasing"),
        ((1, 91, 361, 271), "strictly increasing"),
    ],
)
def test_invalid_bands_are_refused(starts: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bands(*starts)


def test_allocation_pays_interest_first() -> None:
    assert allocate(D("1000.00"), D("43.50"), D("12000.00")) == (D("43.50"), D("956.50"))  # 1000.00 − 43.50
    assert allocate(D("43.50"), D("43.50"), D("12000.00")) == (D("43.50"), D("0.00"))  # exactly the interest
    assert allocate(D("20.00"), D("43.50"), D("12000.00")) == (D("20.00"), D("0.00"))  # partial: interest only
    assert allocate(D("500.00"), D("0.00"), D("12000.00")) == (D("0.00"), D("500.00"))  # nothing due: principal
    assert allocate(D("12043.50"), D("43.50"), D("12000.00")) == (D("43.50"), D("12000.00"))  # pays off the loan


def test_allocation_results_have_two_places() -> None:
    to_interest, to_principal = allocate(D("100"), D("0"), D("500"))
    assert (str(to_interest), str(to_principal)) == ("0.00", "100.00")


def test_overpayment_names_the_maximum() -> None:
    with pytest.raises(ValueError, match=r"^overpayment: at most 12043\.50 can be repaid"):
        allocate(D("12043.51"), D("43.50"), D("12000.00"))  # 43.50 + 12000.00 = 12043.50


@pytest.mark.parametrize("amount", [D("0"), D("0.00"), D("-1.00")])
def test_non_positive_repayments_are_refused(amount: Decimal) -> None:
    with pytest.raises(ValueError, match="positive amount"):
        allocate(amount, D("43.50"), D("12000.00"))


def test_amounts_must_be_fen() -> None:
    with pytest.raises(ValueError, match="at most two decimal places"):
        allocate(D("10.005"), D("43.50"), D("12000.00"))
    with pytest.raises(TypeError, match="must be a Decimal"):
        allocate(10.0, D("43.50"), D("12000.00"))  # type: ignore[arg-type]


def test_a_floor_keeps_a_class_no_better() -> None:
    """An extended loan (DOMAIN.md §7): no better than its floor, worse when ageing says so."""
    assert no_better_than("normal", "special_mention") == "special_mention"
    assert no_better_than("special_mention", "special_mention") == "special_mention"
    assert no_better_than("substandard", "special_mention") == "substandard"
    assert no_better_than("loss", "normal") == "loss"
    assert no_better_than("normal", "normal") == "normal"
