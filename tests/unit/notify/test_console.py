"""The government console's pure rules (services/notify/domain/console.py): the NPL colour
bands against the village threshold, and the year's losses summed by party."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.notify.domain.console import band, losses_of_year

THRESHOLD = D("0.03")  # 004 §6(3)


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        ("0.0000", "green"),
        ("0.0150", "green"),  # exactly half the threshold: still green
        ("0.0151", "amber"),
        ("0.0300", "amber"),  # at the threshold: not over it, not frozen (risk freezes strictly over)
        ("0.0301", "red"),
        ("1.0000", "red"),
    ],
)
def test_bands_against_the_threshold(ratio: str, expected: str) -> None:
    assert band(D(ratio), THRESHOLD, D("0.5")) == expected


def test_the_green_fraction_is_configuration() -> None:
    assert band(D("0.0200"), THRESHOLD, D("0.5")) == "amber"
    assert band(D("0.0200"), THRESHOLD, D("0.75")) == "green"
    # A fraction of 1: no amber at all, green up to the line.
    assert band(D("0.0300"), THRESHOLD, D("1")) == "green"
    with pytest.raises(ValueError, match="green_fraction"):
        band(D("0.01"), THRESHOLD, D("0"))


def _loss(
    day: str, loss: str, parts: tuple[str, str, str, str], recovered: tuple[str, str, str, str]
) -> dict[str, str]:
    row = {"business_date": day, "loss": loss}
    for party, share, back in zip(("mutual_guarantee", "government", "bank", "insurer"), parts, recovered, strict=True):
        row[party] = share
        row[f"recovered_{party}"] = back
    return row


def test_losses_of_the_year_by_party() -> None:
    rows = [
        # A household's loss: 30/20/50 (004 §6(1)), part recovered to the fund and the bank.
        _loss("2027-02-11", "12000.33", ("0.00", "3600.10", "2400.07", "6000.16"), ("0.00", "30.00", "20.00", "0.00")),
        # A business's: its mutual guarantee contribution first.
        _loss("2027-12-31", "1000.00", ("100.00", "270.00", "180.00", "450.00"), ("0.00", "0.00", "0.00", "0.00")),
        # Last year's: not this year's.
        _loss("2026-12-31", "500.00", ("0.00", "150.00", "100.00", "250.00"), ("0.00", "0.00", "0.00", "0.00")),
    ]
    year = losses_of_year(rows, 2027)
    assert (year.year, year.loans, year.loss) == (2027, 2, D("13000.33"))
    assert year.shares == {
        "mutual_guarantee": D("100.00"),
        "government": D("3870.10"),
        "bank": D("2580.07"),
        "insurer": D("6450.16"),
    }
    assert year.recovered["government"] == D("30.00") and year.net("government") == D("3840.10")
    assert year.net("bank") == D("2560.07")
    assert sum(year.shares.values()) == year.loss
    assert losses_of_year(rows, 2025).loans == 0
