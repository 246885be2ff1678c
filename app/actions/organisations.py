"""Organisations as action plans write them: ODS codes by their real formats, and names or
abbreviations ("UHL", "LPT", "Healthwatch") resolved through the organisation registry (its
codes, names and aliases: app.organisations.aliases) over the configurable alias table
(``LFD_ORGANISATION_ALIASES``), by ``alias_table``: the importer and the JSON API
(app.actions.organisation_refs) resolve with the same table. What cannot be resolved stays a
name: "UHL" is never stored as if it were a code (its code is RWE).

A bare token is a code only when it has a code's format **and a digit** (RR8, 04V, B86001)
or the alias table knows it (by alias, full name or code). One of letters only with a code's
shape ("TBC", "NCC", "RCN", "RGD") may be an abbreviation: it stays a name, warned about,
unless written "ODS RGD" (as exports write such a code) or in an "ODS codes:" line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.kit.ods import (
    CODE_MARK,
    DEFAULT_ALIASES,
    alias_key,
    is_ods_code,
    is_plainly_code,
    written_code,
)


@dataclass(frozen=True)
class Resolved:
    written: str  # as the file wrote it ("ODS RGD": "RGD")
    code: str | None  # the ODS code, when known
    name: str | None  # the full name, when the alias table knows it
    how: str  # "code" | "alias" | "name" | "maybe_code" (a code's shape, letters only)


class Aliases:
    """Name, abbreviation or code -> (ODS code, full name)."""

    def __init__(
        self,
        table: Mapping[str, tuple[str, str]] | None = None,
        registry: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """``table``: alias -> (code, name), each name and code found too; ``registry``: the
        registry's table (app.organisations.aliases.alias_rows: every code, name and alias
        already, a name two organisations share left out), which wins."""
        self.table: dict[str, tuple[str, str]] = {}
        for alias, (code, name) in (DEFAULT_ALIASES if table is None else table).items():
            self.table[alias_key(alias)] = (code.upper(), name)
            self.table.setdefault(alias_key(name), (code.upper(), name))
            self.table.setdefault(alias_key(code), (code.upper(), name))
        for key, (code, name) in (registry or {}).items():
            self.table[alias_key(key)] = (code.upper(), name)

    def resolve(self, written: str, codes: bool = False) -> Resolved:
        """``codes``: the text says these are codes (an "ODS codes:" line)."""
        if (mark := CODE_MARK.match(written)) is not None and is_ods_code(written[mark.end() :]):
            code = written[mark.end() :].strip().upper()
            return Resolved(code, code, None, "code")
        if is_plainly_code(written):
            return Resolved(written, written.strip().upper(), None, "code")
        found = self.table.get(alias_key(written))
        if found is not None:
            return Resolved(written, found[0], found[1], "alias")
        if codes and is_ods_code(written):
            return Resolved(written, written.strip().upper(), None, "code")
        if is_ods_code(written):
            return Resolved(written, None, None, "maybe_code")
        return Resolved(written, None, None, "name")


def alias_table(
    configured: Mapping[str, Sequence[str]], registry: Mapping[str, tuple[str, str]]
) -> Aliases:
    """The table names are resolved by: the configured aliases (``LFD_ORGANISATION_ALIASES``,
    alias -> [code, name]) and the registry's (app.organisations.aliases), which win."""
    table = {alias: (pair[0], pair[1]) for alias, pair in configured.items()}
    return Aliases(table, registry)


def names_written(names: Sequence[str], codes: Sequence[str]) -> list[str]:
    """The names as an export writes them: as written, but a code of letters only written as
    the code it is ("RGD", sent to the API or imported as "ODS RGD") marked "ODS RGD", so that
    importing the export takes it as the code again, not an abbreviation."""
    return [written_code(name) if name in codes else name for name in names]


_SPLIT = re.compile(r"\s*(?:[\n;,/]|&|\+)\s*")


def split_organisations(text: str) -> list[str]:
    """ "West Leicestershire CCG & East Leicestershire and Rutland CCG, LPT, UHL": four.
    "and" inside a name is kept; "&", commas, semicolons, slashes and line breaks divide."""
    return [" ".join(part.split()) for part in _SPLIT.split(text) if part.strip()]
