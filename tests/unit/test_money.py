from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from shared.money import Money, parse_money


class Amount(BaseModel):
    amount: Money


@pytest.mark.parametrize(
    "text",
    [
        # Found by the OpenAPI fuzzer: 30 digits made quantize() raise InvalidOperation (a 500).
        "645770401120290427012400803123",
        "92545770401120290427012400803123.5",
        "1" + "0" * 40,
        "1E+100000",
        "10000000000000.00",
    ],
)
def test_amounts_past_the_range_are_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationError, match="amount out of range"):
        Amount(amount=text)


def test_amounts_in_range_parse_to_the_fen() -> None:
    assert parse_money("9999999999999.99") == Decimal("9999999999999.99")
    assert parse_money(" 50000 ") == Decimal("50000.00")
    for text in ("0.001", "0.1234567890123456789012345678901234"):
        with pytest.raises(ValueError, match="two decimal places"):
            parse_money(text)
