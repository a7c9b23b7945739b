from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry.domain.identifiers import (
    InvalidIdentifier,
    mask_resident_id,
    normalise_identifier,
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


# --- the one normalisation (issue 19, defect 4) -------------------------------------------
# Every expected value below is written out by hand, not computed with the code under test.

FULL_WIDTH_ID = "１１０１０５１９４９１２３１００２Ｘ"  # U+FF11 ... U+FF38
ARABIC_INDIC_ID = "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"  # U+0660-0669
EXTENDED_ARABIC_INDIC_ID = "۱۱۰۱۰۵۱۹۴۹۱۲۳۱۰۰۲X"  # U+06F0-06F9 (Persian, Urdu)
DEVANAGARI_ID = "११०१०५१९४९१२३१००२X"  # U+0966-096F


@pytest.mark.parametrize(
    "spelling",
    [
        GB_EXAMPLE_ID,
        "11010519491231002x",
        FULL_WIDTH_ID,
        "１１０１０５１９４９１２３１００２ｘ",  # full-width small x, U+FF58
        "110105１９４９12310０２X",  # mixed ASCII and full-width
        " 11010519491231002X\t",
        "\u3000１１０１０５１９４９１２３１００２Ｘ\u3000",  # ideographic spaces around it
        "\r\n11010519491231002x\n",
    ],
)
def test_every_foldable_spelling_of_one_number_is_the_same_ascii_number(spelling: str) -> None:
    assert validate_resident_id(spelling) == "11010519491231002X"
    assert normalise_identifier(spelling) == "11010519491231002X"


@pytest.mark.parametrize(
    ("spelling", "shown"),
    [
        (ARABIC_INDIC_ID, "U+0661"),
        (EXTENDED_ARABIC_INDIC_ID, "U+06F1"),
        (DEVANAGARI_ID, "U+0967"),
        ("110105194912310０２X".replace("0", "٠", 1), "U+0660"),  # one Arabic-Indic zero among ASCII
        ("11010519491231002X\u00a0", "U+00A0"),  # a no-break space is not trimmed
        ("①1010519491231002X", "U+2460"),  # NFKC would fold a circled digit: we do not
        ("1101051949123100²X", "U+00B2"),  # nor a superscript
        ("11010519491231002ẋ", "U+1E8B"),
    ],
)
def test_other_scripts_digits_and_look_alikes_are_refused_by_code_point(spelling: str, shown: str) -> None:
    with pytest.raises(InvalidIdentifier, match=re.escape(f"({shown})")):
        validate_resident_id(spelling)


def test_python_would_have_accepted_those_digits() -> None:
    # Why the validators compare against ASCII: the old checks used these.
    assert ARABIC_INDIC_ID[:17].isdigit() and DEVANAGARI_ID[:17].isdigit()
    assert int(ARABIC_INDIC_ID[6:10]) == 1949


def test_whitespace_inside_the_number_is_not_removed() -> None:
    with pytest.raises(InvalidIdentifier, match="18 characters"):
        validate_resident_id("110105 19491231002X")
    with pytest.raises(InvalidIdentifier, match="U\\+3000"):
        validate_resident_id("110105\u300019491231002X")


def test_only_ascii_letters_are_upper_cased() -> None:
    # str.upper() would turn ß into SS and make an 18-character string out of 17 + ß.
    with pytest.raises(InvalidIdentifier, match="U\\+00DF"):
        normalise_identifier("1101051949123100ß")
    assert normalise_identifier("ａｂｃxyz") == "ABCXYZ"


@pytest.mark.parametrize(
    "spelling",
    [
        "91350100M000100Y43",
        "91350100m000100y43",
        "９１３５０１００Ｍ０００１００Ｙ４３",
        "９１３５０１００ｍ０００１００ｙ４３",
        "\u3000９１３５０１００Ｍ000100Y43 ",
    ],
)
def test_credit_codes_fold_the_same_way(spelling: str) -> None:
    assert validate_uscc(spelling) == "91350100M000100Y43"


@pytest.mark.parametrize("spelling", ["٩١٣٥٠١٠٠M000100Y43", "९१३५०१००M000100Y43", "91350100Ｍ000100Ｙ4３\u00a0"])
def test_credit_codes_in_other_scripts_are_refused(spelling: str) -> None:
    with pytest.raises(InvalidIdentifier, match="ASCII"):
        validate_uscc(spelling)


# Every decimal digit of every script Unicode knows (category Nd), but ASCII's and the
# full-width forms: int() reads them all, the normalisation must refuse them all.
_FOREIGN_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii() and not "０" <= c <= "９")


@given(digit=_FOREIGN_DIGITS, position=st.integers(0, 16))
def test_no_other_script_s_digit_gets_through_anywhere(digit: str, position: int) -> None:
    spelling = GB_EXAMPLE_ID[:position] + digit + GB_EXAMPLE_ID[position + 1 :]
    with pytest.raises(InvalidIdentifier, match=re.escape(f"U+{ord(digit):04X}")):
        validate_resident_id(spelling)
    with pytest.raises(InvalidIdentifier):
        validate_uscc(KNOWN_USCC[:position] + digit + KNOWN_USCC[position + 1 :])


@given(
    first17=st.text(alphabet="0123456789", min_size=17, max_size=17),
    widths=st.lists(st.booleans(), min_size=18, max_size=18),
)
def test_any_mix_of_ascii_and_full_width_is_the_ascii_number(first17: str, widths: list[bool]) -> None:
    number = first17 + resident_id_check_char(first17)
    # U+FEE0 is the distance from ASCII to the full-width forms (Unicode chart FF00).
    spelling = "".join(chr(ord(c) + 0xFEE0) if wide else c for c, wide in zip(number, widths, strict=True))
    assert normalise_identifier(spelling) == number
