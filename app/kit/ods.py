"""ODS codes (the NHS Organisation Data Service's) by their real formats, and the default
alias table of organisations written as names or abbreviations (``LFD_ORGANISATION_ALIASES``
replaces it; app.actions.organisations resolves names through it).

A code of letters only (RGD, TAD, QWO) has the shape of an abbreviation too ("TBC", "NCC",
"RCN"): written bare in a spreadsheet it is not taken for a code unless the alias table knows
it; written "ODS RGD" it is (``written_code``: how exports write such a code)."""

from __future__ import annotations

import functools
import re

# The formats of the NHS Organisation Data Service's codes that own or commission care.
ODS_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^R[A-Z0-9]{2}$"), "NHS trust (R + 2, e.g. RR8)"),
    (re.compile(r"^R[A-Z0-9]{4}$"), "NHS trust site (R + 4, e.g. RR801)"),
    (re.compile(r"^T[A-Z0-9]{2}$"), "care trust (T + 2, e.g. TAD)"),
    (re.compile(r"^\d{2}[A-Z]$"), "CCG or sub-ICB location (2 digits + letter, e.g. 15F)"),
    (re.compile(r"^[A-Z]\d[A-Z]\d[A-Z]$"), "merged CCG's sub-ICB location (e.g. D4U1Y)"),
    (re.compile(r"^Q[A-Z0-9]{2}$"), "ICB or commissioning region (Q + 2, e.g. QWO)"),
    (re.compile(r"^[A-Z]\d{5}$"), "GP practice (letter + 5 digits, e.g. B86001)"),
    (re.compile(r"^N[A-Z0-9]{2}(?:[A-Z0-9]{2})?$"), "independent provider (N + 2 or 4, e.g. NT4)"),
)
ODS_DESCRIPTION = "; ".join(description for _, description in ODS_FORMATS)
# "ODS RGD", "ODS: RGD", "ODS code RGD": written as a code, whatever its letters.
CODE_MARK = re.compile(r"^ods(?:\s+code)?\s*[:\-]?\s+|^ods:\s*", re.I)

# A default table, so the service resolves the commonest abbreviations out of the box. Each
# key is matched without regard to case, spacing or punctuation; the full name resolves too.
DEFAULT_ALIASES: dict[str, tuple[str, str]] = {
    "UHL": ("RWE", "University Hospitals of Leicester NHS Trust"),
    "LPT": ("RT5", "Leicestershire Partnership NHS Trust"),
    "LTHT": ("RR8", "Leeds Teaching Hospitals NHS Trust"),
    "West Leicestershire CCG": ("04V", "NHS West Leicestershire CCG"),
    "East Leicestershire and Rutland CCG": ("03W", "NHS East Leicestershire and Rutland CCG"),
}


def alias_key(text: str) -> str:
    """A name or alias as it is compared: lower case, "&" as "and", punctuation and spacing
    folded ("U.H.L." and "u-h-l" match; the registry and imported plans use the same key)."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.replace("&", " and ").lower()).split())


def is_ods_code(text: str) -> bool:
    code = text.strip().upper()
    return any(pattern.match(code) for pattern, _ in ODS_FORMATS)


def is_plainly_code(text: str) -> bool:
    """A code by its format that no abbreviation would be mistaken for: it has a digit (RR8,
    04V, B86001). "RGD", "TBC", "NCC" have a code's shape but only letters."""
    return is_ods_code(text) and any(character.isdigit() for character in text)


@functools.lru_cache(maxsize=4096)  # an export writes the same few codes on every row
def written_code(code: str) -> str:
    """A code as a spreadsheet export writes it where the plan has no name for it: bare when
    it has a digit, else marked ("ODS RGD"), so that importing the export takes it as a code."""
    return code if is_plainly_code(code) else f"ODS {code}"
