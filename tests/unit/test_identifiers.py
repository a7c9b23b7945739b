from __future__ import annotations

from datetime import date

import pytest

from services.registry.domain.identifiers import (
    InvalidIdentifier,
    mask_resident_id,
    resident_id_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)

# The example number printed in GB 11643-1999 itself, and a public credit code.
GB_EXAMPLE_ID = "11010519491231002X"
KNOWN_USCC = "91350100M000100Y43"


def test_the_standard_s_own_example_passes_and_is_normalised() -> None:
    assert validate_resident_id(" 11010519491231002x ") == GB_EXAMPLE_ID
    assert resident_id_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("11010519491231002", "18 characters"),
        ("1101051949123100AX", "17 digits"),
        ("01010519491231002X", "address code"),
        ("110105194902300025", "real date"),  # 30 February
        ("110105189912310020", "out of range"),
        ("110105194912310021", "check digit"),
    ],
)
def test_invalid_resident_ids_say_why(number: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_resident_id(number)


def test_birth_dates_in_the_future_are_refused() -> None:
    first17 = "41010220300101001"
    number = first17 + resident_id_check_char(first17)
    with pytest.raises(InvalidIdentifier, match="out of range"):
        validate_resident_id(number, today=date(2026, 11, 21))
    assert validate_resident_id(number, today=date(2030, 1, 2)) == number


def test_every_single_digit_error_is_caught() -> None:
    # MOD 11-2 detects any single substitution; check all of them for one number.
    for position in range(17):
        for digit in "0123456789":
            if digit == GB_EXAMPLE_ID[position]:
                continue
            changed = GB_EXAMPLE_ID[:position] + digit + GB_EXAMPLE_ID[position + 1 :]
            with pytest.raises(InvalidIdentifier):
                validate_resident_id(changed)


def test_mask_shows_region_prefix_and_last_four() -> None:
    assert mask_resident_id("410102199003071234") == "410***********1234"


def test_unified_social_credit_code() -> None:
    assert validate_uscc(KNOWN_USCC.lower()) == KNOWN_USCC
    assert uscc_check_char(KNOWN_USCC[:17]) == "3"
    with pytest.raises(InvalidIdentifier, match="check character"):
        validate_uscc(KNOWN_USCC[:17] + "4")
    with pytest.raises(InvalidIdentifier, match="not used"):
        validate_uscc("91350100M000100YI3")
    with pytest.raises(InvalidIdentifier, match="18 characters"):
        validate_uscc("91350100M000100Y4")
