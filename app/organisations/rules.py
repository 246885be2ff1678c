"""The registry's rules, without the database: the kinds of organisation, the ODS code format
each kind may have, which kind may sit under which, and how aliases are compared. The API
(app.organisations.registry), the ODS file loader and `lfd organisations adopt` all check a
change with ``check_draft`` against an in-memory view of the registry (``RegistryIndex``), so
the three cannot disagree (docs/organisations.md)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from app.kit.ods import alias_key


class OrganisationKind(StrEnum):
    trust = "trust"
    site = "site"
    icb = "icb"
    sub_icb = "sub_icb"
    gp_practice = "gp_practice"
    community_provider = "community_provider"
    mental_health_provider = "mental_health_provider"
    local_authority = "local_authority"
    hospice = "hospice"
    independent_provider = "independent_provider"
    other = "other"


Kind = OrganisationKind

# The NHS Organisation Data Service's code formats (app.kit.ods has the same shapes for
# plans). A code is optional for every kind: the default organisation has none until it is
# adopted, and a local authority, a hospice or a new provider may have none.
_TRUST = (re.compile(r"^R[A-Z0-9]{2}$"), "an NHS trust's R + 2 (RWE)")
_CARE_TRUST = (re.compile(r"^T[A-Z0-9]{2}$"), "a care trust's T + 2 (TAD)")
_SITE = (re.compile(r"^[RTN][A-Z0-9]{4}$"), "a site's trust or provider code + 2 (RWE01)")
_ICB = (re.compile(r"^Q[A-Z0-9]{2}$"), "an ICB's Q + 2 (QK1)")
# A sub-ICB location keeps its CCG's code (2 digits + a letter); those of CCGs that merged
# before 2022 have five characters, letters and digits alternating (D4U1Y, NHS Frimley ICB).
_SUB_ICB = (
    re.compile(r"^(?:\d{2}[A-Z]|[A-Z]\d[A-Z]\d[A-Z])$"),
    "a sub-ICB location's 2 digits + letter, or a merged CCG's 5 (04V, D4U1Y)",
)
_PRACTICE = (re.compile(r"^[A-Z]\d{5}$"), "a GP practice's letter + 5 digits (C82001)")
_INDEPENDENT = (
    re.compile(r"^N[A-Z0-9]{2}(?:[A-Z0-9]{2})?$"),
    "an independent provider's N + 2, or N + 4 for its sites (NT4, NT401)",
)
# ODS codes are 1 to 9 letters and digits: the formats of local authorities, hospices and the
# rest vary by the register they come from, so only the shape is checked.
_ANY = (re.compile(r"^[A-Z0-9]{1,9}$"), "an ODS code (1 to 9 letters and digits)")

CODE_FORMATS: dict[Kind, tuple[tuple[re.Pattern[str], str], ...]] = {
    Kind.trust: (_TRUST, _CARE_TRUST),
    Kind.site: (_SITE,),
    Kind.icb: (_ICB,),
    Kind.sub_icb: (_SUB_ICB,),
    Kind.gp_practice: (_PRACTICE,),
    Kind.community_provider: (_TRUST, _CARE_TRUST, _INDEPENDENT),
    Kind.mental_health_provider: (_TRUST, _CARE_TRUST, _INDEPENDENT),
    Kind.independent_provider: (_INDEPENDENT,),
    Kind.local_authority: (_ANY,),
    Kind.hospice: (_ANY,),
    Kind.other: (_ANY,),
}

PROVIDERS = frozenset(
    {
        Kind.trust,
        Kind.community_provider,
        Kind.mental_health_provider,
        Kind.independent_provider,
        Kind.hospice,
    }
)
# Which kinds each kind may sit under: a site under its trust (or another provider), a
# practice under its ICB or sub-ICB location, a provider under its ICB. The parent decides who
# sees an organisation's records (app.reach.reach_of).
PARENT_KINDS: dict[Kind, frozenset[Kind]] = {
    Kind.site: PROVIDERS,
    Kind.gp_practice: frozenset({Kind.icb, Kind.sub_icb}),
    Kind.sub_icb: frozenset({Kind.icb}),
    Kind.icb: frozenset(),
    **{kind: frozenset({Kind.icb}) for kind in (*PROVIDERS, Kind.local_authority)},
    Kind.other: frozenset(Kind) - {Kind.site},
}
PARENT_REQUIRED = frozenset({Kind.site})


def normalise_code(raw: str | None) -> str | None:
    """An ODS code as stored: upper case, without spaces; None for a blank one."""
    if raw is None:
        return None
    code = "".join(raw.split()).upper()
    return code or None


def code_problem(kind: Kind, code: str) -> str | None:
    """Why ``code`` cannot be the ODS code of a ``kind``, or None."""
    formats = CODE_FORMATS[kind]
    if any(pattern.match(code) for pattern, _ in formats):
        return None
    return f"not the ODS code of a {kind.value}: expected " + " or ".join(
        text for _, text in formats
    )


def clean_aliases(aliases: Iterable[str]) -> list[str]:
    """The aliases as kept: spacing tidied, each key once (the first spelling wins). One with
    no letter or digit stays, for check_draft to refuse at its place."""
    kept: list[str] = []
    keys: set[str] = set()
    for alias in aliases:
        text = " ".join(alias.split())
        key = alias_key(text)
        if not key or key not in keys:
            kept.append(text)
            keys.add(key)
    return kept


@dataclass
class Entry:
    """What the rules need of one organisation."""

    id: uuid.UUID
    ods_code: str | None
    name: str
    kind: Kind
    parent_id: uuid.UUID | None
    aliases: list[str] = field(default_factory=list)


@dataclass
class RegistryIndex:
    """The registry in memory, for checking changes (loaded once per write; the registry is
    small: a region's organisations, a few thousand with its GP practices)."""

    entries: dict[uuid.UUID, Entry] = field(default_factory=dict)
    by_code: dict[str, uuid.UUID] = field(default_factory=dict)
    by_alias: dict[str, uuid.UUID] = field(default_factory=dict)

    def put(self, entry: Entry) -> None:
        self.remove(entry.id)
        self.entries[entry.id] = entry
        if entry.ods_code:
            self.by_code[entry.ods_code] = entry.id
        for alias in entry.aliases:
            self.by_alias[alias_key(alias)] = entry.id

    def remove(self, entry_id: uuid.UUID) -> None:
        old = self.entries.pop(entry_id, None)
        if old is None:
            return
        if old.ods_code and self.by_code.get(old.ods_code) == entry_id:
            del self.by_code[old.ods_code]
        for alias in old.aliases:
            if self.by_alias.get(alias_key(alias)) == entry_id:
                del self.by_alias[alias_key(alias)]

    def by_ods(self, code: str | None) -> Entry | None:
        found = self.by_code.get(code) if code else None
        return self.entries[found] if found is not None else None

    def children(self, entry_id: uuid.UUID) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.parent_id == entry_id]

    def tree(self, root: uuid.UUID) -> set[uuid.UUID]:
        """The organisation and every organisation below it."""
        below: dict[uuid.UUID, list[uuid.UUID]] = {}
        for entry in self.entries.values():
            if entry.parent_id is not None:
                below.setdefault(entry.parent_id, []).append(entry.id)
        found, pending = {root}, [root]
        while pending:
            for child in below.get(pending.pop(), []):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found

    def would_cycle(self, parent_id: uuid.UUID, entry_id: uuid.UUID) -> bool:
        """Whether making ``parent_id`` the parent of ``entry_id`` closes a cycle: whether
        ``entry_id`` is ``parent_id`` or one of its ancestors."""
        seen: set[uuid.UUID] = set()
        current: uuid.UUID | None = parent_id
        while current is not None and current not in seen:
            if current == entry_id:
                return True
            seen.add(current)
            parent = self.entries.get(current)
            current = parent.parent_id if parent is not None else None
        return False


@dataclass(frozen=True)
class Problem:
    """One reason a change is refused: the field (a JSON pointer, as the API names it), what is
    wrong, a code, and whether it clashes with another organisation (409) or is invalid (422)."""

    pointer: str
    detail: str
    code: str
    clash: uuid.UUID | None = None


def infer_parent(index: RegistryIndex, draft: Entry) -> None:
    """A site's trust from its code (the first three characters) when no parent is given."""
    if draft.kind is Kind.site and draft.parent_id is None and draft.ods_code:
        trust = index.by_ods(draft.ods_code[:3])
        if trust is not None:
            draft.parent_id = trust.id


def check_draft(index: RegistryIndex, draft: Entry) -> list[Problem]:
    """Everything wrong with the registry holding ``draft`` (new, or an organisation's changed
    state under its own id): its code's format and uniqueness, its parent's kind (and a site's
    code against its trust's), cycles, its aliases' uniqueness, and its children's fit."""
    problems: list[Problem] = []
    if draft.ods_code:
        problem = code_problem(draft.kind, draft.ods_code)
        if problem:
            problems.append(Problem("/ods_code", problem, "ods_code_format"))
        holder = index.by_code.get(draft.ods_code)
        if holder is not None and holder != draft.id:
            problems.append(
                Problem("/ods_code", "another organisation has this ODS code", "duplicate", holder)
            )
    problems += _parent_problems(index, draft)
    for position, alias in enumerate(draft.aliases):
        key = alias_key(alias)
        holder = index.by_alias.get(key)
        if not key:
            problems.append(
                Problem(f"/aliases/{position}", "an alias needs a letter or a digit", "blank")
            )
        elif holder is not None and holder != draft.id:
            problems.append(
                Problem(
                    f"/aliases/{position}",
                    "another organisation has this alias (compared without case or punctuation)",
                    "duplicate",
                    holder,
                )
            )
    problems += _children_problems(index, draft)
    return problems


def _parent_problems(index: RegistryIndex, draft: Entry) -> list[Problem]:
    if draft.parent_id is None:
        if draft.kind in PARENT_REQUIRED:
            trust = f" (or register the trust {draft.ods_code[:3]} first)" if draft.ods_code else ""
            return [
                Problem(
                    "/parent_id",
                    f"a {draft.kind.value} needs its trust or provider as parent{trust}",
                    "parent_required",
                )
            ]
        return []
    parent = index.entries.get(draft.parent_id)
    if parent is None:
        return [Problem("/parent_id", "no such organisation", "not_found")]
    allowed = PARENT_KINDS[draft.kind]
    if parent.kind not in allowed:
        kinds = ", ".join(sorted(kind.value for kind in allowed)) or "none"
        return [
            Problem(
                "/parent_id",
                f"a {draft.kind.value} cannot sit under a {parent.kind.value} "
                f"(its parent may be: {kinds})",
                "parent_kind",
            )
        ]
    if index.would_cycle(parent.id, draft.id):
        return [Problem("/parent_id", "the organisation would be its own ancestor", "cycle")]
    if _site_code_differs(draft, parent):
        return [
            Problem(
                "/ods_code",
                f"a site's code starts with its trust's ({parent.ods_code})",
                "site_code",
            )
        ]
    return []


def _site_code_differs(site: Entry, parent: Entry) -> bool:
    """Whether a site's code does not start with its trust's (the first three characters)."""
    return bool(
        site.kind is Kind.site
        and site.ods_code
        and parent.ods_code
        and site.ods_code[:3] != parent.ods_code[:3]
    )


def _children_problems(index: RegistryIndex, draft: Entry) -> list[Problem]:
    """An organisation that changes kind or code must still suit what sits under it."""
    problems = []
    for child in index.children(draft.id):
        if draft.kind not in PARENT_KINDS[child.kind]:
            problems.append(
                Problem(
                    "/kind",
                    f"organisation {child.id} (a {child.kind.value}) sits under it and cannot "
                    f"sit under a {draft.kind.value}",
                    "children_kind",
                )
            )
        elif _site_code_differs(child, draft):
            problems.append(
                Problem(
                    "/ods_code",
                    f"its site {child.ods_code} has a code that does not start with it",
                    "site_code",
                )
            )
    return problems
