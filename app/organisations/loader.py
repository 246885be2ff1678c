"""`lfd organisations load`: the ODS files a trust already has, into the registry
(docs/organisations.md "Loading ODS files").

Two shapes of CSV are read:

- **The NHS Digital ODS downloads** (etr.csv trusts, ets.csv trust sites, epraccur.csv GP
  practices, eccg.csv/ICB files): no header; the columns are the ODS standard layout, of which
  these are read: 1 code, 2 name, 4 high-level health geography (a trust's or sub-ICB
  location's ICB), 12 close date (YYYYMMDD), 15 parent (a site's trust; a practice's
  commissioner, its sub-ICB location or ICB).
- **A headed CSV** of the registry's own: ``ods_code,name,kind,parent_ods_code,aliases``
  (aliases separated by ``;`` or ``|``).

Each row is matched to the registry by its ODS code (a row without one, by name and kind) and
created, updated or left as it is; a load is idempotent. A row the registry's rules refuse is
skipped with the reason. Parents are placed before their children whatever the file's order.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.kit.ods import alias_key
from app.kit.time import LONDON
from app.models import Organisation
from app.organisations.registry import (
    apply_entry,
    entry_of,
    lock_registry,
    new_organisation,
    record,
)
from app.organisations.rules import (
    CODE_FORMATS,
    PARENT_KINDS,
    Entry,
    Kind,
    RegistryIndex,
    check_draft,
    clean_aliases,
    code_problem,
    infer_parent,
    normalise_code,
)

HEADER = ("ods_code", "name", "kind", "parent_ods_code", "aliases")
# The ODS standard layout's columns (0-based) that the loader reads.
CODE, NAME, GEOGRAPHY, CLOSE_DATE, PARENT = 0, 1, 3, 11, 14
# Parents first: a row's parent is placed before it, whatever the file's order.
RANK = {Kind.icb: 0, Kind.sub_icb: 1, Kind.site: 3, Kind.gp_practice: 3}
# The kinds a code's format alone tells apart (a headerless file without --kind).
INFERRED = (Kind.site, Kind.trust, Kind.icb, Kind.sub_icb, Kind.gp_practice)
# The kind of a new organisation of the NHS Digital downloads, by the file's name (an
# organisation already in the registry keeps its kind unless --kind or a kind column says).
FILE_KINDS = {"etr": Kind.trust, "ets": Kind.site, "epraccur": Kind.gp_practice}


@dataclass
class Row:
    line: int
    ods_code: str | None
    name: str
    kind: Kind | None  # None: from the code's format (or the registry's, for a known code)
    parent_code: str | None  # the parent column: a site's trust, a practice's commissioner
    geography: str | None = None  # the ODS layout's high-level health geography (an ICB)
    aliases: list[str] = field(default_factory=list)
    closed_at: datetime | None = None
    closes: bool = False  # whether the file says if it is closed (the ODS layout does)


@dataclass(frozen=True)
class Outcome:
    line: int
    ods_code: str | None
    name: str
    action: str  # created | updated | unchanged | skipped
    detail: str | None = None


@dataclass
class LoadSummary:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(outcome.action == action for outcome in self.outcomes)

    def lines(self) -> list[str]:
        counts = ", ".join(
            f"{self.count(action)} {action}"
            for action in ("created", "updated", "unchanged", "skipped")
        )
        shown = [f"{counts} ({len(self.outcomes)} rows)"]
        for outcome in sorted(self.outcomes, key=lambda o: o.line):
            if outcome.detail:
                what = outcome.ods_code or outcome.name
                shown.append(f"  line {outcome.line} {what}: {outcome.action}: {outcome.detail}")
        return shown


class LoadError(ValueError):
    """The file as a whole cannot be read."""


def _text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _close_date(raw: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y%m%d")
    except ValueError:
        return None
    return day.replace(tzinfo=LONDON).astimezone(UTC)


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def _kind(text: str, default: Kind | None) -> tuple[Kind | None, str | None]:
    """The kind a row names (``default`` when blank), or why it names none."""
    if not text.strip():
        return default, None
    try:
        return Kind(text.strip().lower()), None
    except ValueError:
        return None, f"unknown kind {text.strip()[:40]!r}"


def read_rows(path: Path, kind: Kind | None = None) -> tuple[list[Row], list[Outcome]]:
    """The file's rows, and those that could not be read (as skipped outcomes)."""
    reader = csv.reader(io.StringIO(_text(path)))
    rows: list[Row] = []
    refused: list[Outcome] = []
    header: list[str] | None = None
    for line, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if line == 1 and set(HEADER[:2]) <= {cell.strip().lower() for cell in cells}:
            header = [cell.strip().lower() for cell in cells]
            if missing := [name for name in HEADER[:2] if name not in header]:
                raise LoadError(f"the header lacks {', '.join(missing)}")
            continue
        if header is not None:
            values = {name: _cell(cells, i) for i, name in enumerate(header)}
            written, wrong = _kind(values.get("kind", ""), kind)
            aliases = values.get("aliases", "").replace("|", ";").split(";")
            row = Row(
                line=line,
                ods_code=normalise_code(values.get("ods_code")),
                name=" ".join(values.get("name", "").split()),
                kind=written,
                parent_code=normalise_code(values.get("parent_ods_code")),
                aliases=[alias for alias in aliases if alias.strip()],
            )
            if wrong:
                refused.append(Outcome(line, row.ods_code, row.name, "skipped", wrong))
                continue
        else:
            row = Row(
                line=line,
                ods_code=normalise_code(_cell(cells, CODE)),
                name=" ".join(_cell(cells, NAME).split()),
                kind=kind,
                parent_code=normalise_code(_cell(cells, PARENT)),
                geography=normalise_code(_cell(cells, GEOGRAPHY)),
                closed_at=_close_date(_cell(cells, CLOSE_DATE)),
                closes=True,
            )
        if not row.name:
            refused.append(Outcome(line, row.ods_code, "", "skipped", "no name"))
        elif header is None and not row.ods_code:
            refused.append(Outcome(line, None, row.name, "skipped", "no ODS code"))
        else:
            rows.append(row)
    return rows, refused


def infer_kind(code: str | None) -> Kind | None:
    """The kind a code's format names, when only one of the common ones fits."""
    if not code:
        return None
    fitting = [kind for kind in INFERRED if code_problem(kind, code) is None]
    return fitting[0] if len(fitting) == 1 else None


class Loader:
    """One load: the registry in memory (rows and index), changed row by row."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        rows: list[Organisation],
        hint: Kind | None = None,
    ) -> None:
        self.session = session
        self.hint = hint
        self.journal = Journal(principal)
        self.rows = {row.id: row for row in rows}
        self.index = RegistryIndex()
        for row in rows:
            self.index.put(entry_of(row))
        self.by_name = {(alias_key(row.name), row.kind): row.id for row in rows}

    def _existing(self, row: Row, kind: Kind | None) -> Organisation | None:
        if row.ods_code:
            found = self.index.by_code.get(row.ods_code)
        else:
            found = self.by_name.get((alias_key(row.name), kind)) if kind else None
        return self.rows.get(found) if found is not None else None

    def _parent(self, row: Row, kind: Kind) -> tuple[uuid.UUID | None, str | None]:
        """The row's parent, and a note when the row names one the registry lacks. A site's
        is its parent column's trust, else the trust its code starts with (found later by
        infer_parent); a practice's its commissioner; any other's its parent column, else the
        ICB its geography column names."""
        allowed = PARENT_KINDS[kind]
        if kind is Kind.site:
            candidates = [row.parent_code]
        elif kind is Kind.gp_practice:
            candidates = [row.parent_code or row.geography]
        elif Kind.icb in allowed:
            geography = row.geography if row.geography and row.geography[0] == "Q" else None
            candidates = [row.parent_code or geography]
        else:
            candidates = [row.parent_code]
        for code in candidates:
            if code is None or code == row.ods_code:
                continue
            parent = self.index.by_ods(code)
            if parent is None:
                return None, f"its parent {code} is not in the registry: load it first"
            return parent.id, None
        return None, None

    def place(self, row: Row) -> Outcome:
        new_kind = row.kind or self.hint or infer_kind(row.ods_code)
        existing = self._existing(row, new_kind)
        kind = row.kind or (Kind(existing.kind) if existing else new_kind)
        if kind is None:
            detail = "cannot tell the kind from the code: give --kind, or a kind column"
            return Outcome(row.line, row.ods_code, row.name, "skipped", detail)
        parent_id, note = self._parent(row, kind)
        current = entry_of(existing) if existing else None
        draft = Entry(
            id=existing.id if existing else uuid.uuid4(),
            ods_code=row.ods_code,
            # ODS files write names in capitals: one that differs only so is not taken.
            name=current.name
            if current and row.name.isupper() and current.name.lower() == row.name.lower()
            else row.name,
            kind=kind,
            parent_id=parent_id or (current.parent_id if current else None),
            aliases=clean_aliases([*(current.aliases if current else []), *row.aliases]),
        )
        infer_parent(self.index, draft)
        problems = check_draft(self.index, draft)
        if problems:
            reasons = "; ".join(f"{p.pointer.lstrip('/')}: {p.detail}" for p in problems)
            return Outcome(row.line, row.ods_code, row.name, "skipped", reasons)
        if existing is None:
            organisation = new_organisation(draft, {}, row.closed_at)
            self.session.add(organisation)
            self.rows[organisation.id] = organisation
            self.by_name[(alias_key(draft.name), kind)] = organisation.id
            self.index.put(draft)
            record(self.journal, organisation, created=True, changed=[])
            return Outcome(row.line, row.ods_code, row.name, "created", note)
        closed_at = row.closed_at if row.closes else existing.closed_at
        changed = apply_entry(existing, draft, dict(existing.settings), closed_at)
        self.index.put(draft)
        if not changed:
            return Outcome(row.line, row.ods_code, row.name, "unchanged", note)
        record(self.journal, existing, created=False, changed=changed)
        detail = ", ".join(changed) + (f"; {note}" if note else "")
        return Outcome(row.line, row.ods_code, row.name, "updated", detail)


def _ordered(rows: list[Row], hint: Kind | None) -> Iterator[list[Row]]:
    """The rows in groups, parents' kinds first (each group is flushed before the next)."""
    ranked: dict[int, list[Row]] = {}
    for row in rows:
        kind = row.kind or hint or infer_kind(row.ods_code)
        ranked.setdefault(RANK.get(kind, 2) if kind else 2, []).append(row)
    for rank in sorted(ranked):
        yield ranked[rank]


async def load_file(
    session: AsyncSession, principal: Principal, path: Path, kind: Kind | None = None
) -> LoadSummary:
    """Load the file into the registry in the caller's transaction (a dry run rolls it back)."""
    if kind is not None and kind not in CODE_FORMATS:
        raise LoadError(f"unknown kind {kind}")
    rows, refused = read_rows(path, kind)
    hint = None if kind else FILE_KINDS.get(path.stem.lower())
    await lock_registry(session)
    existing = list((await session.scalars(select(Organisation))).all())
    loader = Loader(session, principal, existing, hint)
    summary = LoadSummary(list(refused))
    seen: dict[str, int] = {}
    for group in _ordered(rows, hint):
        for row in group:
            if row.ods_code and row.ods_code in seen:
                detail = f"the code is on line {seen[row.ods_code]} already"
                summary.outcomes.append(
                    Outcome(row.line, row.ods_code, row.name, "skipped", detail)
                )
                continue
            if row.ods_code:
                seen[row.ods_code] = row.line
            summary.outcomes.append(loader.place(row))
        await session.flush()
    await loader.journal.write(session)
    return summary
