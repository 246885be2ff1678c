"""Clinical code formats: ICD-10 codes (WHO/UK 5th edition shape) and SNOMED CT identifiers
(digits, with the Verhoeff check digit and a concept's partition identifier)."""

from __future__ import annotations

import re

_ICD10 = re.compile(r"^([A-Z][0-9]{2})\.?([0-9A-Z]{1,4})?$")

# The Verhoeff tables: the dihedral group D5's multiplication, the permutation, the inverse.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
CONCEPT_PARTITIONS = frozenset({"00", "10"})  # a concept, short or long (extension) format


def verhoeff_valid(digits: str) -> bool:
    """Whether the last digit is the Verhoeff check digit of the others."""
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][int(char)]]
    return check == 0


def normalise_icd10(code: str) -> str:
    """An ICD-10 code as ``A00`` or ``A00.0`` (upper case, the dot put in); ValueError when
    it is not of that shape."""
    match = _ICD10.match(code.strip().upper())
    if match is None:
        raise ValueError("not an ICD-10 code (a letter, two digits, optionally . and 1-4 more)")
    stem, rest = match.groups()
    return f"{stem}.{rest}" if rest else stem


def check_snomed_concept(sctid: str) -> str:
    """A SNOMED CT concept id: 6 to 18 digits, no leading zero, a concept's partition
    identifier, and a valid Verhoeff check digit; ValueError otherwise."""
    value = sctid.strip()
    if not value.isascii() or not value.isdigit() or not 6 <= len(value) <= 18:
        raise ValueError("a SNOMED CT identifier is 6 to 18 digits")
    if value[0] == "0":
        raise ValueError("a SNOMED CT identifier has no leading zero")
    if value[-3:-1] not in CONCEPT_PARTITIONS:
        raise ValueError("not a SNOMED CT concept id (its partition identifier is not 00 or 10)")
    if not verhoeff_valid(value):
        raise ValueError("the SNOMED CT check digit (Verhoeff) is wrong")
    return value
