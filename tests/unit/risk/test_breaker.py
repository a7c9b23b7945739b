"""The NPL circuit breaker (004 §6(3), DOMAIN §4-5): ratio, village freeze, township halt, overrides."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from services.risk.domain.breaker import (
    RATIO_PLACES,
    Override,
    assess,
    effective_frozen,
    exceeds,
    npl_ratio,
    override_survives,
    township_halted,
)

D = Decimal
THREE_PERCENT = D("0.03")
THIRTY_PERCENT = D("0.30")


def test_ratio_places_is_four_decimal_places() -> None:
    assert D("0.0001") == RATIO_PLACES
    assert RATIO_PLACES.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("non_performing", "outstanding", "expected"),
    [
        (D("300.00"), D("10000.00"), D("0.0300")),
        (D("301.00"), D("10000.00"), D("0.0301")),
        (D("300.40"), D("10000.00"), D("0.0300")),  # 0.03004 rounds down
        (D("300.50"), D("10000.00"), D("0.0301")),  # 0.03005 is a half: ROUND_HALF_UP
        (D("300.49"), D("10000.00"), D("0.0300")),
        (D("0.00"), D("10000.00"), D("0.0000")),
        (D("10000.00"), D("10000.00"), D("1.0000")),
        (D("1.00"), D("3.00"), D("0.3333")),
        (D("2.00"), D("3.00"), D("0.6667")),
        (D("0.01"), D("200.00"), D("0.0001")),  # 0.00005 exactly: half up
        (D("0.01"), D("200.01"), D("0.0000")),  # just under 0.00005
    ],
)
def test_npl_ratio(non_performing: Decimal, outstanding: Decimal, expected: Decimal) -> None:
    ratio = npl_ratio(non_performing, outstanding)
    assert ratio == expected
    assert ratio.as_tuple().exponent == -4


def test_no_loans_ratio_zero_and_not_exceeded() -> None:
    # DOMAIN §4: "No loans: ratio 0".
    ratio = npl_ratio(D("0.00"), D("0.00"))
    assert ratio == D("0.0000")
    assert str(ratio) == "0.0000"
    assert not exceeds(D("0.00"), D("0.00"), THREE_PERCENT)
    assert not exceeds(D("0"), D("0"), D("0"))


def test_npl_ratio_is_rounded_once_from_the_exact_quotient() -> None:
    # 5e25 / (1e30 + 1) is a hair below 0.00005. Decimal's 28-digit division would round it to
    # 0.00005 first and ROUND_HALF_UP would then give 0.0001: a double rounding.
    assert npl_ratio(D(5 * 10**25), D(10**30 + 1)) == D("0.0000")
    assert npl_ratio(D(5 * 10**25), D(10**30)) == D("0.0001")


def test_three_percent_exactly_is_not_frozen() -> None:
    # 超过 excludes the number itself (Civil Code art. 1259).
    assert not exceeds(D("300.00"), D("10000.00"), THREE_PERCENT)
    assert npl_ratio(D("300.00"), D("10000.00")) == D("0.0300")


def test_three_point_zero_one_percent_is_frozen() -> None:
    assert exceeds(D("301.00"), D("10000.00"), THREE_PERCENT)
    assert npl_ratio(D("301.00"), D("10000.00")) == D("0.0301")


def test_three_point_zero_zero_four_percent_exceeds_although_its_ratio_rounds_to_three() -> None:
    assert npl_ratio(D("300.40"), D("10000.00")) == D("0.0300")
    assert exceeds(D("300.40"), D("10000.00"), THREE_PERCENT)


def test_one_fen_over_the_line_exceeds() -> None:
    assert exceeds(D("300.01"), D("10000.00"), THREE_PERCENT)
    assert not exceeds(D("299.99"), D("10000.00"), THREE_PERCENT)


def test_exceeds_is_exact_beyond_the_decimal_context() -> None:
    # threshold * outstanding is 9999999999999999999999999999.9999 exactly (32 digits); Decimal's
    # default 28-digit context rounds it up to 1E+28, which would hide that 1E+28 exceeds it.
    outstanding = D("333333333333333333333333333333.33")
    non_performing = D("10000000000000000000000000000.00")
    assert exceeds(non_performing, outstanding, THREE_PERCENT)
    assert not exceeds(D("9999999999999999999999999999.99"), outstanding, THREE_PERCENT)


@pytest.mark.parametrize(
    ("non_performing", "outstanding", "threshold", "expected"),
    [
        (D("0.00"), D("100.00"), D("0"), False),  # a zero threshold still needs some NPL
        (D("0.01"), D("100.00"), D("0"), True),
        (D("100.00"), D("100.00"), D("1"), False),  # 100% cannot exceed 100%
        (D("5.00"), D("100.00"), D("0.05"), False),
        (D("5.01"), D("100.00"), D("0.05"), True),
    ],
)
def test_exceeds_other_thresholds(
    non_performing: Decimal, outstanding: Decimal, threshold: Decimal, expected: bool
) -> None:
    assert exceeds(non_performing, outstanding, threshold) is expected


@pytest.mark.parametrize(
    ("non_performing", "outstanding", "message"),
    [
        (D("-0.01"), D("100.00"), "non_performing cannot be negative"),
        (D("0.00"), D("-0.01"), "outstanding cannot be negative"),
        (D("100.01"), D("100.00"), "exceeds outstanding"),
        (D("0.01"), D("0.00"), "exceeds outstanding"),
        (D("NaN"), D("100.00"), "finite"),
        (D("0.00"), D("Infinity"), "finite"),
    ],
)
def test_invalid_principals_are_refused(non_performing: Decimal, outstanding: Decimal, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        npl_ratio(non_performing, outstanding)
    with pytest.raises(ValueError, match=message):
        exceeds(non_performing, outstanding, THREE_PERCENT)


@pytest.mark.parametrize("threshold", [D("-0.01"), D("1.01"), D("NaN"), D("-Infinity")])
def test_invalid_threshold_is_refused(threshold: Decimal) -> None:
    with pytest.raises(ValueError, match="threshold"):
        exceeds(D("1.00"), D("100.00"), threshold)
    # Even with no loans: a bad configuration should not go unnoticed until the first loan.
    with pytest.raises(ValueError, match="threshold"):
        exceeds(D("0.00"), D("0.00"), threshold)


@pytest.mark.parametrize(
    "call",
    [
        lambda bogus: npl_ratio(bogus, D("100.00")),
        lambda bogus: npl_ratio(D("1.00"), bogus),
        lambda bogus: exceeds(bogus, D("100.00"), THREE_PERCENT),
        lambda bogus: exceeds(D("1.00"), D("100.00"), bogus),
        lambda bogus: township_halted(10, 3, bogus),
    ],
)
@pytest.mark.parametrize("bogus", [0.03, 3, "0.03", None])
def test_non_decimal_amounts_are_refused(call: Any, bogus: Any) -> None:
    with pytest.raises(TypeError, match="must be a Decimal"):
        call(bogus)


@pytest.mark.parametrize(
    ("villages", "villages_over", "expected"),
    [
        (1000, 299, False),  # 29.9%
        (1000, 300, True),  # 30% exactly: 以上 includes it
        (1000, 301, True),
        (10, 3, True),
        (10, 2, False),
        (10, 10, True),
        (10, 0, False),
        (7, 2, False),  # 2 < 0.3 * 7 = 2.1
        (7, 3, True),
        (3, 1, True),  # 33.3%
        (4, 1, False),  # 25%
        (1, 1, True),
        (1, 0, False),
        (0, 0, False),  # no villages: nothing to halt
    ],
)
def test_township_halted(villages: int, villages_over: int, expected: bool) -> None:
    assert township_halted(villages, villages_over, THIRTY_PERCENT) is expected


def test_township_with_no_villages_is_not_halted_even_at_share_zero() -> None:
    assert not township_halted(0, 0, D("0"))
    assert township_halted(5, 0, D("0"))


def test_township_share_is_compared_exactly() -> None:
    # 0.333...334 (28 digits) times 3 is 1.0000000000000000000000000002, which Decimal's 28-digit
    # context rounds to 1: compared that way, 1 village of 3 would wrongly reach the share.
    assert township_halted(3, 1, D(1) / D(3))
    assert not township_halted(3, 1, D("0.3333333333333333333333333334"))


@pytest.mark.parametrize(
    ("villages", "villages_over", "message"),
    [
        (10, 11, "villages_over must be between 0 and villages"),
        (10, -1, "villages_over must be between 0 and villages"),
        (-1, 0, "villages_over must be between 0 and villages"),
        (0, 1, "villages_over must be between 0 and villages"),
    ],
)
def test_invalid_village_counts_are_refused(villages: int, villages_over: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        township_halted(villages, villages_over, THIRTY_PERCENT)


@pytest.mark.parametrize("share", [D("-0.1"), D("1.0001"), D("NaN")])
def test_invalid_township_share_is_refused(share: Decimal) -> None:
    with pytest.raises(ValueError, match="share"):
        township_halted(10, 3, share)


@pytest.mark.parametrize(("villages", "villages_over"), [(True, 0), (10, False), (10.0, 3), (10, "3")])
def test_non_int_village_counts_are_refused(villages: Any, villages_over: Any) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        township_halted(villages, villages_over, THIRTY_PERCENT)


@pytest.mark.parametrize(
    ("over", "override", "expected"),
    [
        (False, None, False),
        (True, None, True),
        (False, "frozen", True),
        (True, "frozen", True),
        (False, "unfrozen", False),
        (True, "unfrozen", False),
    ],
)
def test_effective_frozen_override_wins(over: bool, override: Override | None, expected: bool) -> None:
    assert effective_frozen(over, override) is expected


@pytest.mark.parametrize("bogus", ["thawed", "FROZEN", "", True])
def test_unknown_override_is_refused(bogus: Any) -> None:
    with pytest.raises(ValueError, match="override must be one of"):
        effective_frozen(True, bogus)


@pytest.mark.parametrize(
    ("over_when_set", "over_now", "expected"),
    [(True, True, True), (False, False, True), (True, False, False), (False, True, False)],
)
def test_override_survives_until_the_automatic_state_changes(
    over_when_set: bool, over_now: bool, expected: bool
) -> None:
    assert override_survives(over_when_set, over_now) is expected


def test_override_lifecycle() -> None:
    # A village goes over 3%; the district lifts the freeze by hand while it is still over.
    outstanding = D("10000.00")
    over_when_set = exceeds(D("350.00"), outstanding, THREE_PERCENT)
    override: Override | None = "unfrozen"
    assert over_when_set
    assert not effective_frozen(over_when_set, override)

    # Still over next day: the manual decision stands.
    over_now = exceeds(D("340.00"), outstanding, THREE_PERCENT)
    assert override_survives(over_when_set, over_now)
    assert not effective_frozen(over_now, override)

    # Back at 3%: the override lapses and the automatic rule (not frozen) applies.
    over_now = exceeds(D("300.00"), outstanding, THREE_PERCENT)
    assert not override_survives(over_when_set, over_now)
    override = None
    assert not effective_frozen(over_now, override)

    # Over again later: frozen automatically, the old "unfrozen" does not come back.
    over_now = exceeds(D("300.01"), outstanding, THREE_PERCENT)
    assert effective_frozen(over_now, override)


def _reference_ratio(non_performing: Decimal, outstanding: Decimal) -> Decimal:
    # The rule spelt out with Fraction: the exact quotient, rounded once, half up.
    if outstanding == 0:
        return D("0.0000")
    exact = Fraction(non_performing) / Fraction(outstanding) * 10**4
    return D(int(exact + Fraction(1, 2))).scaleb(-4)


def _amounts(rng: random.Random) -> tuple[Decimal, Decimal]:
    # Mixed exponents (payload strings, database Numeric(16,2), sums of both) and sizes.
    places = rng.choice([0, 1, 2, 3, 7])
    total = rng.randrange(0, 10 ** rng.choice([1, 4, 9, 18, 32]))
    bad = rng.choice([0, total, rng.randrange(0, total + 1), total * 3 // 100, total * 3 // 100 + 1])
    return D(min(bad, total)).scaleb(-places), D(total).scaleb(-places)


def test_ratio_and_exceeds_agree_with_fractions_on_many_figures() -> None:
    # The cross-multiplied integers must decide exactly as the rational numbers do.
    rng = random.Random(20260301)
    thresholds = [THREE_PERCENT, D("0"), D("1"), D("0.0300000000000000000000000000001"), D(1) / D(3)]
    for _ in range(5000):
        non_performing, outstanding = _amounts(rng)
        ratio = npl_ratio(non_performing, outstanding)
        assert ratio == _reference_ratio(non_performing, outstanding), (non_performing, outstanding)
        assert ratio.as_tuple().exponent == -4
        for threshold in thresholds:
            expected = outstanding > 0 and Fraction(non_performing) > Fraction(threshold) * Fraction(outstanding)
            assert exceeds(non_performing, outstanding, threshold) is expected, (non_performing, outstanding)


def test_township_share_agrees_with_fractions() -> None:
    for share in (THIRTY_PERCENT, D("0"), D("1"), D(1) / D(3), D("0.3333333333333333333333333334")):
        for villages in range(0, 40):
            for over in range(0, villages + 1):
                expected = villages > 0 and Fraction(over) >= Fraction(share) * villages
                assert township_halted(villages, over, share) is expected, (villages, over, share)


def test_assess_is_npl_ratio_and_exceeds_at_once() -> None:
    # The consumer's one pass (services/risk/breaker.py) against the two rules it stands for.
    rng = random.Random(27)
    cases = [
        (Decimal("0.00"), Decimal("0.00")),
        (Decimal("3.00"), Decimal("100.00")),
        (Decimal("3.01"), Decimal("100.00")),
    ]
    for _ in range(5000):
        outstanding = Decimal(rng.randint(0, 10**9)) / 100
        bad = min(outstanding, Decimal(rng.choice([rng.randint(0, 10**9), rng.randint(0, 10**5)])) / 100)
        cases.append((bad, outstanding))
    for threshold in (Decimal("0.03"), Decimal("0.0299"), Decimal("0.5")):
        for bad, outstanding in cases:
            expected = (npl_ratio(bad, outstanding), exceeds(bad, outstanding, threshold))
            got = assess(bad, outstanding, threshold)
            assert got == expected and str(got[0]) == str(expected[0]), (bad, outstanding, threshold)
