"""NHS number validation: Modulus 11 with the junk numbers rejected (DESIGN.md section 3)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[ -]")
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


class InvalidNhsNumber(ValueError):
    pass


def check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None when the remainder makes it 10."""
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def normalise_nhs_number(raw: str) -> str:
    """Return the ten digits of a valid NHS number, accepting spaces or dashes between them.

    Raises InvalidNhsNumber with a message that never repeats the number itself.
    """
    digits = _SEPARATORS.sub("", raw)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        raise InvalidNhsNumber("an NHS number has ten digits (spaces or dashes allowed)")
    if len(set(digits)) == 1:
        raise InvalidNhsNumber("an NHS number cannot be one digit repeated")
    expected = check_digit(digits[:9])
    if expected is None or expected != int(digits[9]):
        raise InvalidNhsNumber("the NHS number's check digit is wrong (Modulus 11)")
    return digits
