"""Organisations as action plans write them: ODS codes by their real formats, and names or
abbreviations ("UHL", "LPT", "Healthwatch") resolved through a configurable alias table
(``LFD_ORGANISATION_ALIASES``; issue 12's organisation registry will take its place). What
cannot be resolved stays a name: "UHL" is never stored as if it were a code (its code is RWE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.kit.ods import DEFAULT_ALIASES, is_ods_code


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
