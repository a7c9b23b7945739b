from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from shared.money import Money, RatioText, parse_money
from shared.profile import UrbanProperty


class Amount(BaseModel):
    amount: Money


@pytest.mark.parametrize(
    "text",
    [
        # Found by the OpenAPI fuzzer: 30 digits made quantize() raise InvalidOperation (a 500).
        "645770401120290427012400803123",
        "92545770401120290427012400803123.5",
        "1" + "0" * 40,
        "10000000000000.00",
    ],
)
def test_amounts_past_the_range_are_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationError, match="amount out of range"):
        Amount(amount=text)


def test_amounts_in_range_parse_to_the_fen() -> None:
    assert parse_money("9999999999999.99") == Decimal("9999999999999.99")
    for text in ("0.001", "0.1234567890123456789012345678901234"):
        with pytest.raises(ValueError, match="two decimal places"):
            parse_money(text)


# --- exactly the published pattern (issue 19, defect 5) --------------------------------------
# Expected values written by hand from the contract: ^[0-9]+(\.[0-9]{1,2})?$, JSON integers
# accepted, JSON numbers with a fraction or exponent refused.


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0.01", Decimal("0.01")),
        ("50000", Decimal("50000.00")),
        ("50000.00", Decimal("50000.00")),
        ("50000.5", Decimal("50000.50")),
        ("0", Decimal("0.00")),
        ("01.00", Decimal("1.00")),  # the pattern allows a leading zero; so do we
        ("9999999999999.99", Decimal("9999999999999.99")),
        (1000, Decimal("1000.00")),  # a JSON integer is exact
        (0, Decimal("0.00")),
    ],
)
def test_what_the_pattern_allows_is_accepted(given: object, expected: Decimal) -> None:
    assert Amount.model_validate_json(f'{{"amount": {json.dumps(given)}}}').amount == expected


@pytest.mark.parametrize(
    "text",
    [
        # Accepted before the fix, each read by Decimal() as a number:
        "1e3",
        "1E+3",
        "1_000",
        "+5",
        " 12 ",
        "12 ",
        "\t12",
        "0.1e1",
        "1e-2",
        "１０００",  # full-width
        "١٠٠٠",  # Arabic-Indic
        "۱۰۰۰",  # Extended Arabic-Indic
        "१०००",  # Devanagari
        "1٠00.00",  # one Arabic-Indic zero among ASCII digits
        "１０.５０",
        # Never accepted, kept so:
        "1.",
        ".5",
        "1.001",
        "-1",
        "-0",
        "-0.00",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "sNaN",
        "",
        "1,000",
        "1 000",
        "0x10",
        "1E+100000",
        "12.5\n",
        "1" * 65,
        "0" * 70 + "1",
    ],
)
def test_anything_else_is_a_validation_error_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Amount.model_validate_json(json.dumps({"amount": text}))
    assert [e["loc"] for e in caught.value.errors()] == [("amount",)]


@pytest.mark.parametrize("raw", ["12.5", "1000.0", "1e3", "1E+3", "0.1e1", "-1", "true", "false", "null", "[]"])
def test_json_numbers_with_a_fraction_or_exponent_negative_or_other_types_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Amount.model_validate_json(f'{{"amount": {raw}}}')
    assert [e["loc"] for e in caught.value.errors()] == [("amount",)]


def test_huge_json_integers_are_out_of_range_not_a_crash() -> None:
    with pytest.raises(ValidationError, match="amount out of range"):
        Amount.model_validate_json('{"amount": ' + "9" * 200 + "}")


def test_the_published_schema_uses_ascii_classes() -> None:
    schema = Amount.model_json_schema()["properties"]["amount"]
    assert schema["pattern"] == "^[0-9]+(\\.[0-9]{1,2})?$"
    pattern = re.compile(schema["pattern"])
    assert pattern.match("50000.00") and not pattern.match("١٠٠٠") and not pattern.match("１０００")


# --- ratios and areas: the same hole, the same rule ------------------------------------------


class Ratios(BaseModel):
    ratio: RatioText


@pytest.mark.parametrize(("given", "expected"), [("0.9500", "0.9500"), ("1", "1"), ("0.05", "0.05"), (1, "1")])
def test_ratios_take_ascii_decimal_strings_with_four_places(given: object, expected: str) -> None:
    assert Ratios.model_validate_json(json.dumps({"ratio": given})).ratio == Decimal(expected)


@pytest.mark.parametrize("given", ["0.95001", "٠.٩٥", "０.９５", "9.5e-1", " 0.95", "-0.1", ".95", 0.95, True, "NaN"])
def test_ratios_refuse_what_the_pattern_does_not_allow(given: object) -> None:
    with pytest.raises(ValidationError):
        Ratios.model_validate_json(json.dumps({"ratio": given}))


@pytest.mark.parametrize("given", ["1e2", "١٢٠", "１２０", " 80", "1_00", "-5", "+80"])
def test_areas_refuse_other_scripts_and_exponents_in_strings(given: str) -> None:
    with pytest.raises(ValidationError):
        UrbanProperty(area_m2=given, certified=True, mortgaged=False)


@pytest.mark.parametrize(("given", "written"), [("80", "80"), ("75.5", "75.5"), (85.5, "85.5"), (1e-7, "0.0000001")])
def test_areas_read_and_write_back_in_fixed_point(given: object, written: str) -> None:
    area = UrbanProperty(area_m2=given, certified=True, mortgaged=False)
    assert area.model_dump(mode="json")["area_m2"] == written
