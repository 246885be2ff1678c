"""Organisations as action plans write them: ODS codes by their real formats, and names or
abbreviations ("UHL", "LPT", "Healthwatch") resolved through a configurable alias table
(``LFD_ORGANISATION_ALIASES``; issue 12's organisation registry will take its place). What
cannot be resolved stays a name: "UHL" is never stored as if it were a code (its code is RWE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The formats of the NHS Organisation Data Service's codes that own or commission care.
ODS_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^R[A-Z0-9]{2}$"), "NHS trust (R + 2, e.g. RR8)"),
    (re.compile(r"^R[A-Z0-9]{4}$"), "NHS trust site (R + 4, e.g. RR801)"),
    (re.compile(r"^T[A-Z0-9]{2}$"), "care trust (T + 2, e.g. TAD)"),
    (re.compile(r"^\d{2}[A-Z]$"), "CCG or sub-ICB location (2 digits + letter, e.g. 15F)"),
    (re.compile(r"^Q[A-Z0-9]{2}$"), "ICB or commissioning region (Q + 2, e.g. QWO)"),
    (re.compile(r"^[A-Z]\d{5}$"), "GP practice (letter + 5 digits, e.g. B86001)"),
    (re.compile(r"^N[A-Z0-9]{2}(?:[A-Z0-9]{2})?$"), "independent provider (N + 2 or 4, e.g. NT4)"),
)
ODS_DESCRIPTION = "; ".join(description for _, description in ODS_FORMATS)

# A default table, so the service resolves the commonest abbreviations out of the box. Each
# key is matched without regard to case, spacing or punctuation; the full name resolves too.
DEFAULT_ALIASES: dict[str, tuple[str, str]] = {
    "UHL": ("RWE", "University Hospitals of Leicester NHS Trust"),
    "LPT": ("RT5", "Leicestershire Partnership NHS Trust"),
    "LTHT": ("RR8", "Leeds Teaching Hospitals NHS Trust"),
    "West Leicestershire CCG": ("04V", "NHS West Leicestershire CCG"),
    "East Leicestershire and Rutland CCG": ("03W", "NHS East Leicestershire and Rutland CCG"),
}


def is_ods_code(text: str) -> bool:
    code = text.strip().upper()
    return any(pattern.match(code) for pattern, _ in ODS_FORMATS)


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.replace("&", " and ").lower()).split())


@dataclass(frozen=True)
class Resolved:
    written: str  # as the file wrote it
    code: str | None  # the ODS code, when known
    name: str | None  # the full name, when the alias table knows it
    how: str  # "code" | "alias" | "name"


class Aliases:
    """Name or abbreviation -> (ODS code, full name)."""

    def __init__(self, table: dict[str, tuple[str, str]] | None = None) -> None:
        self.table: dict[str, tuple[str, str]] = {}
        for alias, (code, name) in (DEFAULT_ALIASES if table is None else table).items():
            self.table[_key(alias)] = (code.upper(), name)
            self.table.setdefault(_key(name), (code.upper(), name))

    def resolve(self, written: str) -> Resolved:
        found = self.table.get(_key(written))
        if found is not None:
            return Resolved(written, found[0], found[1], "alias")
        if is_ods_code(written):
            return Resolved(written, written.strip().upper(), None, "code")
        return Resolved(written, None, None, "name")


_SPLIT = re.compile(r"\s*(?:[\n;,/]|&|\+)\s*")


def split_organisations(text: str) -> list[str]:
    """ "West Leicestershire CCG & East Leicestershire and Rutland CCG, LPT, UHL": four.
    "and" inside a name is kept; "&", commas, semicolons, slashes and line breaks divide."""
    return [" ".join(part.split()) for part in _SPLIT.split(text) if part.strip()]
