"""Identifiers of people and businesses: normalisation, validation and display masks. Pure
functions.

**The one normalisation** (``normalise_identifier``), applied to every resident ID number
(GB 11643) and unified social credit code (GB 32100) the registry receives or looks up,
whether from a JSON body, a query parameter or a collection-sheet cell, *before* it is
validated, hashed for lookup, encrypted or compared:

1. trim leading and trailing ASCII spaces, tabs, CR and LF and the ideographic (full-width)
   space U+3000; whitespace *inside* the identifier is not removed (the length check refuses it);
2. fold the full-width forms a Chinese IME produces to ASCII: ``０``-``９`` (U+FF10-FF19) to
   ``0``-``9``, ``Ａ``-``Ｚ`` (U+FF21-FF3A) to ``A``-``Z``, ``ａ``-``ｚ`` (U+FF41-FF5A) to ``a``-``z``;
3. upper-case the ASCII letters ``a``-``z`` (so a check character ``x`` becomes ``X``);
4. refuse anything still not ASCII: Arabic-Indic, Devanagari or any other script's digits,
   circled or superscript digits, no-break spaces, look-alike letters.

Nothing else is folded: no NFKC (it would turn ``①`` or ``¹`` into ``1``), no ``str.upper()``
(it turns ``ß`` into ``SS``), and validation after it compares against ASCII characters
only (``str.isdigit()`` and ``int()`` accept every script's digits). So one number has one
spelling, and one person can never be registered twice under two spellings of it.
"""

from __future__ import annotations

from datetime import date

from shared.redaction import mask

# GB 11643-1999 §8.2: weights 2^(17-i) mod 11 and the ISO 7064 MOD 11-2 check characters.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")

# GB 32100-2015: 31 characters (no I, O, Z, S, V), weights 3^i mod 31, check = 31 - sum mod 31.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_TRIMMED = " \t\r\n\u3000"
_FOLD = {
    **{0xFF10 + i: ord("0") + i for i in range(10)},
    **{0xFF21 + i: ord("A") + i for i in range(26)},
    **{0xFF41 + i: ord("A") + i for i in range(26)},  # full-width lower case, upper-cased in one step
    **{ord("a") + i: ord("A") + i for i in range(26)},
}


class InvalidIdentifier(ValueError):
    pass


def normalise_identifier(raw: str) -> str:
    """The documented normalisation above: ASCII, upper case, trimmed; or InvalidIdentifier."""
    text = raw.strip(_TRIMMED).translate(_FOLD)
    foreign = [c for c in text if not c.isascii()]
    if foreign:
        shown = ", ".join(dict.fromkeys(f"{c!r} (U+{ord(c):04X})" for c in foreign))
        raise InvalidIdentifier(
            f"identifiers are written in ASCII digits and letters (full-width forms are folded); not {shown}"
        )
    return text


def resident_id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_resident_id(raw: str, *, today: date | None = None) -> str:
    """Normalised 18-character resident ID number (GB 11643), or InvalidIdentifier."""
    number = normalise_identifier(raw)
    if len(number) != 18:
        raise InvalidIdentifier("a resident ID number has 18 characters")
    if not _DIGITS.issuperset(number[:17]) or not (number[17] in _DIGITS or number[17] == "X"):
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
    code = normalise_identifier(raw)
    if len(code) != 18:
        raise InvalidIdentifier("a unified social credit code has 18 characters")
    bad = sorted({c for c in code if c not in _USCC_CHARS})
    if bad:
        raise InvalidIdentifier(f"characters not used in credit codes: {''.join(bad)}")
    if not _DIGITS.issuperset(code[2:8]):
        raise InvalidIdentifier("characters 3-8 are the registering authority's address code")
    if uscc_check_char(code[:17]) != code[17]:
        raise InvalidIdentifier("the check character does not match (GB 32100)")
    return code
