"""Identifiers of people and businesses: validation and display masks. Pure functions."""

from __future__ import annotations

from datetime import date

from shared.redaction import mask

# GB 11643-1999 §8.2: weights 2^(17-i) mod 11 and the ISO 7064 MOD 11-2 check characters.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# GB 32100-2015: 31 characters (no I, O, Z, S, V), weights 3^i mod 31, check = 31 - sum mod 31.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class InvalidIdentifier(ValueError):
    pass


def resident_id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_resident_id(raw: str, *, today: date | None = None) -> str:
    """Normalised 18-character resident ID number (GB 11643), or InvalidIdentifier."""
    number = raw.strip().upper()
    if len(number) != 18:
        raise InvalidIdentifier("a resident ID number has 18 characters")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdentifier("a resident ID number is 17 digits and a check digit or X")
    if number[0] == "0":
        raise InvalidIdentifier("the address code does not exist")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdentifier("the birth date in the ID number is not a real date") from None
    if birth.year < 1900 or birth > (today or date.today()):
        raise InvalidIdentifier("the birth date in the ID number is out of range")
    if resident_id_check_char(number[:17]) != number[17]:
        raise InvalidIdentifier("the check digit does not match (GB 11643)")
    return number


# ``410***********1234``: region prefix and last four, enough to recognise, not to use.
mask_resident_id = mask


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def validate_uscc(raw: str) -> str:
    """Normalised unified social credit code (GB 32100), or InvalidIdentifier."""
    code = raw.strip().upper()
    if len(code) != 18:
        raise InvalidIdentifier("a unified social credit code has 18 characters")
    bad = sorted({c for c in code if c not in _USCC_CHARS})
    if bad:
        raise InvalidIdentifier(f"characters not used in credit codes: {''.join(bad)}")
    if not code[2:8].isdigit():
        raise InvalidIdentifier("characters 3-8 are the registering authority's address code")
    if uscc_check_char(code[:17]) != code[17]:
        raise InvalidIdentifier("the check character does not match (GB 32100)")
    return code
