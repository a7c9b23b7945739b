"""Loss sharing (004 §6(1), DOMAIN §5): 30/20/50 split in fen by largest remainder."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.risk.domain.loss import DEFAULT_SHARES, split_loss
from services.risk.settings import RiskSettings

D = Decimal


def _parts(government: str, bank: str, insurer: str) -> dict[str, Decimal]:
    return {"government": D(government), "bank": D(bank), "insurer": D(insurer)}


def test_default_shares_are_30_20_50_in_that_order() -> None:
    assert list(DEFAULT_SHARES.items()) == [("government", 30), ("bank", 20), ("insurer", 50)]


def test_default_shares_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        DEFAULT_SHARES["bank"] = 100  # type: ignore[index]


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        # 0 fen: nothing to split.
        ("0.00", _parts("0.00", "0.00", "0.00")),
        # 1 fen: exact shares 0.3 / 0.2 / 0.5 fen, floors 0 / 0 / 0, 1 fen left over.
        # Remainders .3 / .2 / .5: the insurer has the largest and takes it.
        ("0.01", _parts("0.00", "0.00", "0.01")),
        # 3 fen: exact 0.9 / 0.6 / 1.5, floors 0 / 0 / 1 sum to 1, so 3 - 1 = 2 fen are left over.
        # Remainders .9 / .6 / .5: government then bank take one each -> 1 / 1 / 1 fen.
        ("0.03", _parts("0.01", "0.01", "0.01")),
        # 5 fen: exact 1.5 / 1.0 / 2.5, floors 1 / 1 / 2 = 4, 1 fen left over.
        # Remainders .5 / 0 / .5: government and insurer tie, the larger share (insurer) takes it.
        ("0.05", _parts("0.01", "0.01", "0.03")),
        # 15 fen: exact 4.5 / 3.0 / 7.5, floors 4 / 3 / 7 = 14, 1 left; tie .5 / .5 again -> insurer.
        ("0.15", _parts("0.04", "0.03", "0.08")),
        # 1,234,567 fen: exact 370,370.1 / 246,913.4 / 617,283.5, floors sum to 1,234,566, 1 left.
        # Remainders .1 / .4 / .5: insurer -> 3,703.70 / 2,469.13 / 6,172.84.
        ("12345.67", _parts("3703.70", "2469.13", "6172.84")),
        # 100,000,001 fen: exact 30,000,000.3 / 20,000,000.2 / 50,000,000.5, floors sum to
        # 100,000,000, 1 left; remainders .3 / .2 / .5: insurer.
        ("1000000.01", _parts("300000.00", "200000.00", "500000.01")),
        # 10,000 fen divides evenly: 3,000 / 2,000 / 5,000, nothing left over.
        ("100.00", _parts("30.00", "20.00", "50.00")),
        # 10 fen: exact 3 / 2 / 5, nothing left over.
        ("0.10", _parts("0.03", "0.02", "0.05")),
        # 100 fen: exact 30 / 20 / 50.
        ("1.00", _parts("0.30", "0.20", "0.50")),
        # 10,001 fen: exact 3,000.3 / 2,000.2 / 5,000.5, floors sum to 10,000, 1 left over;
        # remainders .3 / .2 / .5: insurer.
        ("100.01", _parts("30.00", "20.00", "50.01")),
    ],
)
def test_split_default_shares(loss: str, expected: dict[str, Decimal]) -> None:
    parts = split_loss(D(loss))
    assert parts == expected
    assert list(parts) == ["government", "bank", "insurer"]
    assert sum(parts.values(), D("0.00")) == D(loss)
    assert all(part.as_tuple().exponent == -2 for part in parts.values())


def test_three_fen_worked_example() -> None:
    # Re-checking the 0.03 case step by step, since it is the one with two fen left over.
    exact = {party: Fraction(3 * share, 100) for party, share in DEFAULT_SHARES.items()}
    assert exact == {"government": Fraction(9, 10), "bank": Fraction(6, 10), "insurer": Fraction(3, 2)}
    floors = {party: int(value) for party, value in exact.items()}
    assert floors == {"government": 0, "bank": 0, "insurer": 1}
    assert 3 - sum(floors.values()) == 2
    assert split_loss(D("0.03")) == _parts("0.01", "0.01", "0.01")


def test_larger_share_wins_a_tie_even_when_listed_later() -> None:
    # 2 fen, shares 1:3: exact 0.5 / 1.5, floors 0 / 1, 1 left; remainders .5 / .5 -> "big".
    assert split_loss(D("0.02"), {"small": 1, "big": 3}) == {"small": D("0.00"), "big": D("0.02")}


def test_equal_shares_tie_goes_to_the_party_listed_first() -> None:
    assert split_loss(D("0.01"), {"a": 1, "b": 1}) == {"a": D("0.01"), "b": D("0.00")}
    assert split_loss(D("0.01"), {"b": 1, "a": 1}) == {"b": D("0.01"), "a": D("0.00")}
    # 2 fen over three equal parties: 2/3 each, floors 0, the first two listed get one fen.
    assert split_loss(D("0.02"), {"x": 5, "y": 5, "z": 5}) == {"x": D("0.01"), "y": D("0.01"), "z": D("0.00")}


def test_larger_remainder_beats_larger_share() -> None:
    # The share only breaks ties; a smaller share with a larger remainder takes the fen first.
    # 4 fen, shares 3:5 (total 8): exact 1.5 / 2.5, tie .5 -> larger share "b".
    assert split_loss(D("0.04"), {"a": 3, "b": 5}) == {"a": D("0.01"), "b": D("0.03")}
    # 5 fen, shares 3:5: exact 1.875 / 3.125, floors 1 / 3 = 4, 1 left; .875 beats .125 -> "a".
    assert split_loss(D("0.05"), {"a": 3, "b": 5}) == {"a": D("0.02"), "b": D("0.03")}


def test_single_party_takes_everything() -> None:
    assert split_loss(D("12.34"), {"only": 7}) == {"only": D("12.34")}


def test_keys_follow_the_order_of_shares() -> None:
    shares = {"insurer": 50, "government": 30, "bank": 20}
    parts = split_loss(D("12345.67"), shares)
    assert list(parts) == ["insurer", "government", "bank"]
    assert parts == {"insurer": D("6172.84"), "government": D("3703.70"), "bank": D("2469.13")}


def test_amount_is_judged_by_value_not_by_exponent() -> None:
    # 1.230 and 1 are whole fen; the result always has two places.
    # 123 fen: exact 36.9 / 24.6 / 61.5, floors 36 / 24 / 61 = 121, 2 left; remainders .9 / .6 / .5
    # -> government and bank.
    assert split_loss(D("1.230")) == _parts("0.37", "0.25", "0.61")
    assert split_loss(D("1")) == _parts("0.30", "0.20", "0.50")
    assert split_loss(D("-0.00")) == _parts("0.00", "0.00", "0.00")


def test_very_large_loss_is_exact() -> None:
    # 10^30 + 1 fen: far beyond Decimal's 28-digit context, still split to the fen. Exact shares
    # 3e29 + .3 / 2e29 + .2 / 5e29 + .5; the one fen left over goes to the insurer (.5).
    loss = D(f"{10**30 + 1}E-2")
    parts = split_loss(loss)
    assert parts["government"] == D(f"{3 * 10**29}E-2")
    assert parts["bank"] == D(f"{2 * 10**29}E-2")
    assert parts["insurer"] == D(f"{5 * 10**29 + 1}E-2")
    assert sum(Fraction(part) for part in parts.values()) == Fraction(loss)


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (D("-0.01"), "cannot be negative"),
        (D("0.001"), "at most two decimal places"),
        (D("1.231"), "at most two decimal places"),
        (D("NaN"), "finite"),
        (D("Infinity"), "finite"),
    ],
)
def test_invalid_loss_is_refused(loss: Decimal, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_loss(loss)


@pytest.mark.parametrize("loss", [1.5, 1, "1.50", None])
def test_non_decimal_loss_is_refused(loss: Any) -> None:
    with pytest.raises(TypeError, match="loss must be a Decimal"):
        split_loss(loss)


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({}, "shares cannot be empty"),
        ({"a": 0}, "must be positive"),
        ({"a": 1, "b": 0}, "must be positive"),
        ({"a": 1, "b": -1}, "must be positive"),
    ],
)
def test_invalid_shares_are_refused(shares: Mapping[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_loss(D("1.00"), shares)


@pytest.mark.parametrize("share", [1.5, True, "30", None])
def test_non_int_share_is_refused(share: Any) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        split_loss(D("1.00"), {"a": 1, "b": share})


@given(
    loss_fen=st.integers(min_value=0, max_value=10**12),
    shares=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=8),
)
def test_parts_sum_to_the_loss_and_stay_within_a_fen_of_the_exact_share(loss_fen: int, shares: list[int]) -> None:
    named = {f"party{i}": share for i, share in enumerate(shares)}
    loss = D(f"{loss_fen}E-2")
    parts = split_loss(loss, named)

    assert list(parts) == list(named)
    assert sum(parts.values(), D("0.00")) == loss
    total = sum(shares)
    for party, share in named.items():
        part = parts[party]
        assert part.as_tuple().exponent == -2
        assert part >= 0
        exact = Fraction(loss) * share / total
        assert abs(Fraction(part) - exact) < Fraction(1, 100)


@given(loss_fen=st.integers(min_value=0, max_value=10**12))
def test_default_split_never_strays_a_fen_from_30_20_50(loss_fen: int) -> None:
    parts = split_loss(D(f"{loss_fen}E-2"))
    fen = {party: int(part * 100) for party, part in parts.items()}
    assert sum(fen.values()) == loss_fen
    for party, share in DEFAULT_SHARES.items():
        assert loss_fen * share // 100 <= fen[party] <= loss_fen * share // 100 + 1


# The split production books (services/risk/losses.py: split_loss(loss, settings().loss_shares))
# with VCREDIT_RISK_LOSS_SHARES unset: the setting holds no second copy of 30/20/50, it means
# "the rule's default". Hand-computed as above.
@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("0.01", _parts("0.00", "0.00", "0.01")),
        ("0.03", _parts("0.01", "0.01", "0.01")),
        ("0.05", _parts("0.01", "0.01", "0.03")),  # tie .5 / .5: the larger share
        ("0.10", _parts("0.03", "0.02", "0.05")),
        ("1.00", _parts("0.30", "0.20", "0.50")),
        ("100.01", _parts("30.00", "20.00", "50.01")),
    ],
)
def test_production_split_is_the_rules_default(
    loss: str, expected: dict[str, Decimal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VCREDIT_RISK_LOSS_SHARES", raising=False)
    configured = RiskSettings().loss_shares
    assert configured is None, "unset: the default is stated once, in services/risk/domain/loss.py"
    parts = split_loss(D(loss), configured)
    assert parts == expected
    assert sum(parts.values()) == D(loss), "the parts sum to the loss exactly"


def test_a_configured_split_replaces_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCREDIT_RISK_LOSS_SHARES", '{"government": 40, "bank": 20, "insurer": 40}')
    configured = RiskSettings().loss_shares
    # 1 fen: exact .4 / .2 / .4; government and insurer tie on remainder and share: listed first.
    assert split_loss(D("0.01"), configured) == _parts("0.01", "0.00", "0.00")
    assert split_loss(D("1.00"), configured) == _parts("0.40", "0.20", "0.40")


@pytest.mark.parametrize(
    "shares",
    ['{"government": 30, "bank": 20}', '{"government": 30, "bank": 20, "insurer": 0}', '{"gov": 30, "bank": 70}'],
)
def test_a_split_that_cannot_be_booked_is_refused_at_start(shares: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCREDIT_RISK_LOSS_SHARES", shares)
    with pytest.raises(ValueError, match="loss"):
        RiskSettings()
