"""Two review programmes' themes side by side, when their methods and theme lists differ
(issue 17; docs/programmes.md, "Comparing two programmes").

Each programme has a theme vocabulary (its `themes`, or every theme when it names none). A
theme of the earlier programme matches a theme of the later one when it is the same theme and
both vocabularies hold it, or when the organisation's theme mappings pair them ("DNAR orders"
with "DNACPR decisions"). Themes joined by matches form one row (a mapping may pair one theme
with two), whose status is:

- `both`: found in both programmes;
- `only_earlier`: found in the earlier, and the later has a matching theme it did not find;
- `only_later`: found in the later, and the earlier has a matching theme it did not find;
- `unmapped`: found in one, with no matching theme in the other's vocabulary, so the two
  cannot be compared on it.

The matching is Python's (a few hundred themes and mappings at most); the counting is the
database's, one grouped statement over both programmes' findings with each theme's row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.time import now
from app.models import Programme, Theme, ThemeMapping
from app.reports.model import Column, Period, Report, Table
from app.reports.programme import load_programme, programme_period
from app.reports.programme_figures import programme_findings

KEY = "programme-comparison"
EARLIER, LATER = "earlier", "later"
STATUS_ORDER = ("both", "only_earlier", "only_later", "unmapped")
STATUS_WORDS = {
    "both": "Found in both",
    "only_earlier": "Only in the earlier",
    "only_later": "Only in the later",
    "unmapped": "Unmapped",
}
Node = tuple[str, uuid.UUID]  # (side, theme id)


@dataclass
class Group:
    nodes: set[Node] = field(default_factory=set)
    by_mapping: bool = False


def _vocabulary(programme: Programme) -> set[uuid.UUID] | None:
    return (
        {uuid.UUID(value) for value in programme.theme_ids}
        if programme.theme_ids is not None
        else None
    )


def _holds(vocabulary: set[uuid.UUID] | None, theme_id: uuid.UUID) -> bool:
    return vocabulary is None or theme_id in vocabulary


def groups_of(
    found: dict[str, set[uuid.UUID]],
    vocabularies: dict[str, set[uuid.UUID] | None],
    pairs: list[tuple[uuid.UUID, uuid.UUID]],
) -> list[Group]:
    """The found themes joined by their matches into groups (connected components)."""
    partners: dict[uuid.UUID, set[uuid.UUID]] = {}
    for one, other in pairs:
        partners.setdefault(one, set()).add(other)
        partners.setdefault(other, set()).add(one)

    def neighbours(node: Node) -> list[tuple[Node, bool]]:
        side, theme_id = node
        across = LATER if side == EARLIER else EARLIER
        found_here: list[tuple[Node, bool]] = []
        if _holds(vocabularies[across], theme_id):
            found_here.append(((across, theme_id), False))
        for partner in partners.get(theme_id, set()):
            if _holds(vocabularies[across], partner):
                found_here.append(((across, partner), True))
        return found_here

    seen: set[Node] = set()
    groups: list[Group] = []
    for side in (EARLIER, LATER):
        for theme_id in sorted(found[side], key=str):
            start = (side, theme_id)
            if start in seen:
                continue
            group = Group()
            pending = [start]
            seen.add(start)
            while pending:
                node = pending.pop()
                group.nodes.add(node)
                for neighbour, mapped in neighbours(node):
                    group.by_mapping = group.by_mapping or mapped
                    if neighbour not in seen:
                        seen.add(neighbour)
                        pending.append(neighbour)
            groups.append(group)
    return groups


def status_of(group: Group, found: dict[str, set[uuid.UUID]]) -> str:
    sides = {side for side, _ in group.nodes}
    in_earlier = any(side == EARLIER and t in found[EARLIER] for side, t in group.nodes)
    in_later = any(side == LATER and t in found[LATER] for side, t in group.nodes)
    if in_earlier and in_later:
        return "both"
    if in_earlier:
        return "only_earlier" if LATER in sides else "unmapped"
    return "only_later" if EARLIER in sides else "unmapped"


async def _found(
    session: AsyncSession, programmes: dict[str, Programme]
) -> dict[str, set[uuid.UUID]]:
    parts = [
        select(literal(side), findings.c.theme_id).group_by(findings.c.theme_id)
        for side, findings in (
            (side, programme_findings(programme)) for side, programme in programmes.items()
        )
    ]
    found: dict[str, set[uuid.UUID]] = {EARLIER: set(), LATER: set()}
    for side, theme_id in (await session.execute(union_all(*parts))).all():
        found[str(side)].add(theme_id)
    return found


async def _counts(
    session: AsyncSession, programmes: dict[str, Programme], groups: list[Group]
) -> dict[tuple[str, int], tuple[int, int]]:
    """(findings, distinct deaths) by side and group, in one grouped statement."""
    parts = []
    for side, programme in programmes.items():
        findings = programme_findings(programme)
        members = [(index, t) for index, g in enumerate(groups) for s, t in g.nodes if s == side]
        if not members:
            continue
        group = case(
            *((findings.c.theme_id == theme_id, index) for index, theme_id in members),
            else_=-1,
        ).label("grp")
        parts.append(
            select(
                literal(side), group, func.count(), func.count(func.distinct(findings.c.death_id))
            ).group_by(group)
        )
    counted: dict[tuple[str, int], tuple[int, int]] = {}
    if parts:
        for side, index, findings_count, deaths in (await session.execute(union_all(*parts))).all():
            counted[(str(side), int(index))] = (int(findings_count), int(deaths))
    return counted


def _order(programmes: list[Programme]) -> tuple[Programme, Programme]:
    first, second = sorted(programmes, key=lambda p: (p.period_start, p.period_end, str(p.id)))
    return first, second


async def build_comparison(
    session: AsyncSession, programme_id: uuid.UUID, other_id: uuid.UUID
) -> Report:
    one = await load_programme(session, programme_id)
    other = one if other_id == programme_id else await load_programme(session, other_id)
    earlier, later = _order([one, other])
    programmes = {EARLIER: earlier, LATER: later}
    vocabularies = {EARLIER: _vocabulary(earlier), LATER: _vocabulary(later)}
    found = await _found(session, programmes)
    # The programmes' organisations' mappings, not every mapping the reader sees (a region's
    # commissioner sees each member's): every reader of the two gets the same comparison.
    owners = {earlier.organisation_id, later.organisation_id}
    pairs = [
        (row.theme_id, row.other_theme_id)
        for row in (
            await session.scalars(
                select(ThemeMapping).where(ThemeMapping.organisation_id.in_(owners))
            )
        ).all()
    ]
    groups = groups_of(found, vocabularies, pairs)
    counted = await _counts(session, programmes, groups)
    theme_ids = {t for g in groups for _, t in g.nodes}
    names = (
        {
            theme.id: theme.name
            for theme in (await session.scalars(select(Theme).where(Theme.id.in_(theme_ids)))).all()
        }
        if theme_ids
        else {}
    )
    rows = []
    for index, group in enumerate(groups):
        status = status_of(group, found)
        earlier_counts = counted.get((EARLIER, index), (0, 0))
        later_counts = counted.get((LATER, index), (0, 0))

        def themes(side: str, members: set[Node] = group.nodes) -> str | None:
            listed = sorted(names.get(t, str(t)) for s, t in members if s == side)
            return "; ".join(listed) if listed else None

        rows.append(
            {
                "status": STATUS_WORDS[status],
                "earlier_themes": themes(EARLIER),
                "later_themes": themes(LATER),
                "matched_by": "mapping"
                if group.by_mapping
                else ("same theme" if status != "unmapped" else None),
                "earlier_findings": earlier_counts[0],
                "earlier_deaths": earlier_counts[1],
                "later_findings": later_counts[0],
                "later_deaths": later_counts[1],
                "_order": (STATUS_ORDER.index(status), -(earlier_counts[0] + later_counts[0])),
            }
        )
    rows.sort(key=lambda row: (row["_order"], str(row["earlier_themes"] or row["later_themes"])))
    for row in rows:
        del row["_order"]
    period = Period(
        earlier.period_start,
        max(earlier.period_end, later.period_end),
        f"{programme_period(earlier).label} and {programme_period(later).label}",
        "range",
    )
    return Report(
        key=KEY,
        title=f"Themes compared: {earlier.name} and {later.name}",
        period=period,
        filters={"programme_id": str(programme_id), "other": str(other_id)},
        tables=[
            _programmes_table(programmes, vocabularies, found),
            _themes_table(rows, earlier, later),
        ],
        generated_at=now(),
        notes=[
            "Themes match when they are the same theme in both vocabularies, or when a theme "
            "mapping pairs them; matched themes are one row.",
            "Findings count as the programme report counts them: those recorded against the "
            "programme's reviews of its chosen deaths.",
        ],
    )


def _programmes_table(
    programmes: dict[str, Programme],
    vocabularies: dict[str, set[uuid.UUID] | None],
    found: dict[str, set[uuid.UUID]],
) -> Table:
    return Table(
        "programmes",
        "The two programmes",
        [
            Column(
                "role", "Role", "text", "The programme whose period starts first is the earlier."
            ),
            Column("programme", "Programme", "text"),
            Column("period", "Period of death", "text"),
            Column(
                "vocabulary",
                "Theme vocabulary",
                "text",
                "How many themes the programme's list holds; 'every theme' when it names none.",
            ),
            Column(
                "themes_found", "Themes found", "int", "Themes with a finding of the programme."
            ),
        ],
        [
            {
                "role": side,
                "programme": programme.name,
                "period": programme_period(programme).label,
                "vocabulary": "every theme"
                if vocabularies[side] is None
                else f"{len(vocabularies[side] or ())} themes",
                "themes_found": len(found[side]),
            }
            for side, programme in programmes.items()
        ],
    )


def _themes_table(rows: list[dict[str, Any]], earlier: Programme, later: Programme) -> Table:
    return Table(
        "themes_compared",
        "Themes compared",
        [
            Column(
                "status",
                "Status",
                "text",
                "Found in both; only in the earlier or the later (the other has a matching "
                "theme it did not find); unmapped (no matching theme in the other's "
                "vocabulary).",
            ),
            Column("earlier_themes", f"Theme in {earlier.name}", "text"),
            Column("later_themes", f"Theme in {later.name}", "text"),
            Column(
                "matched_by",
                "Matched by",
                "text",
                "'same theme' or 'mapping' (a theme mapping pairs them).",
            ),
            Column("earlier_findings", "Findings (earlier)", "int"),
            Column(
                "earlier_deaths", "Deaths (earlier)", "int", "Distinct deaths with such a finding."
            ),
            Column("later_findings", "Findings (later)", "int"),
            Column("later_deaths", "Deaths (later)", "int", "Distinct deaths with such a finding."),
        ],
        rows,
    )
