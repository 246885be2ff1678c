"""Themes: what reviews keep finding (DESIGN.md section 9, docs/reports.md "Themes").

Findings are counted by the date of the death they are about (`findings.died_on`, the UK local
date of death, copied onto each finding and kept in step when a death is corrected), like every
other Learning from Deaths figure: a quarter's themes are the learning from that quarter's
deaths, whenever the reviews were written. Retired themes are still reported: retiring a theme
stops new findings, it does not rewrite history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.time import local_date, now
from app.models import Death, Finding, Theme
from app.reports.filters import ReportFilters
from app.reports.model import Column, Period, Report, Table

APPLICABLE_FILTERS = ("site", "specialty", "route", "age_band")

KINDS = ("problem_in_care", "good_practice", "learning_point", "concern")
KIND_LABELS = {
    "problem_in_care": "Problems in care",
    "good_practice": "Good practice",
    "learning_point": "Learning points",
    "concern": "Concerns",
}

# The order of the comparison's statuses: what is new first, then what persists, then what
# fell away.
STATUSES = ("new", "persisting", "fell away")


def _in(period: Period) -> ColumnElement[bool]:
    return and_(Finding.died_on >= period.start, Finding.died_on <= period.end)


def _conditions(filters: ReportFilters, settings: Settings) -> list[ColumnElement[bool]]:
    conditions = filters.death_conditions(settings)
    if filters.route is not None:
        conditions.append(Finding.route == filters.route.value)
    return conditions


def _findings(filters: ReportFilters, settings: Settings, *columns: Any) -> Any:
    """SELECT ... FROM findings JOIN themes, joined to deaths only when a filter needs it."""
    query = select(*columns).select_from(Finding).join(Theme, Theme.id == Finding.theme_id)
    death_terms = filters.death_conditions(settings)
    if death_terms:
        query = query.join(Death, Death.id == Finding.death_id)
    return query.where(*_conditions(filters, settings))


# What a per-theme table selects and groups by to name the theme (see _theme_cells).
THEME = (Theme.id, Theme.name, Theme.code, Theme.retired_at)
THEME_COLUMNS = (
    Column("theme", "Theme", "text"),
    Column("code", "Code", "text"),
    Column(
        "retired_on",
        "Retired on",
        "date",
        "The day the theme was retired (no new findings since); blank while in use.",
    ),
)
"""The theme's own columns, the same in the by-theme and the comparison tables."""


def _theme_cells(row: Any) -> dict[str, Any]:
    """The theme's cells of a row selected with THEME."""
    retired_on = local_date(row.retired_at) if row.retired_at is not None else None
    return {"theme": row.name, "code": row.code, "retired_on": retired_on}


def _findings_and_deaths() -> tuple[Any, Any]:
    """The findings, and the distinct deaths they are about, in a group."""
    return (
        func.count(Finding.id).label("findings"),
        func.count(distinct(Finding.death_id)).label("deaths"),
    )


async def _by_theme(
    session: AsyncSession, period: Period, filters: ReportFilters, settings: Settings
) -> Table:
    kind_counts = [func.sum(case((Finding.kind == kind, 1), else_=0)).label(kind) for kind in KINDS]
    query = (
        _findings(filters, settings, *THEME, *_findings_and_deaths(), *kind_counts)
        .where(_in(period))
        .group_by(*THEME)
        .order_by(func.count(Finding.id).desc(), Theme.name)
    )
    rows = [
        {
            **_theme_cells(row),
            "findings": row.findings,
            "deaths": row.deaths,
            **{kind: int(getattr(row, kind) or 0) for kind in KINDS},
        }
        for row in (await session.execute(query)).all()
    ]
    return Table(
        key="themes",
        title=f"Findings by theme, deaths in {period.label}",
        columns=[
            *THEME_COLUMNS,
            Column("findings", "Findings", "int", "Findings under the theme, of every kind."),
            Column(
                "deaths",
                "Deaths",
                "int",
                "Distinct deaths with at least one finding under the theme.",
            ),
            *(Column(kind, KIND_LABELS[kind], "int") for kind in KINDS),
        ],
        rows=rows,
        note="Themes with at least one finding about a death in the period, most findings "
        "first. A death can have findings under several themes, so the deaths column does not "
        "add up to the number of deaths with findings (see the kinds table).",
    )


async def _by_kind(
    session: AsyncSession, period: Period, filters: ReportFilters, settings: Settings
) -> Table:
    query = (
        _findings(filters, settings, Finding.kind, *_findings_and_deaths())
        .where(_in(period))
        .group_by(Finding.kind)
    )
    found = {row.kind: row for row in (await session.execute(query)).all()}
    total = (
        await session.execute(
            _findings(
                filters,
                settings,
                *_findings_and_deaths(),
                func.count(distinct(Finding.theme_id)).label("themes"),
            ).where(_in(period))
        )
    ).one()
    rows: list[dict[str, Any]] = [
        {
            "kind": KIND_LABELS[kind],
            "findings": found[kind].findings if kind in found else 0,
            "deaths": found[kind].deaths if kind in found else 0,
        }
        for kind in KINDS
    ]
    rows.append({"kind": "All kinds", "findings": total.findings, "deaths": total.deaths})
    return Table(
        key="kinds",
        title=f"Findings by kind, deaths in {period.label}",
        columns=[
            Column("kind", "Kind", "text"),
            Column("findings", "Findings", "int"),
            Column(
                "deaths",
                "Deaths",
                "int",
                "Distinct deaths with at least one finding of the kind; the last row counts each "
                "death with any finding once.",
            ),
        ],
        rows=rows,
        note=f"{total.themes} themes had findings.",
    )


def comparison_status(current: int, previous: int) -> str | None:
    if current and previous:
        return "persisting"
    if current:
        return "new"
    if previous:
        return "fell away"
    return None


async def _comparison(
    session: AsyncSession,
    period: Period,
    compare: Period,
    filters: ReportFilters,
    settings: Settings,
) -> Table:
    """Per theme, findings and deaths in both periods, in one grouped query (conditional
    aggregates; the periods may overlap, and a finding in both counts in both)."""
    now_in, then_in = _in(period), _in(compare)
    query = (
        _findings(
            filters,
            settings,
            *THEME,
            func.sum(case((now_in, 1), else_=0)).label("findings"),
            func.sum(case((then_in, 1), else_=0)).label("compare_findings"),
            func.count(distinct(case((now_in, Finding.death_id)))).label("deaths"),
            func.count(distinct(case((then_in, Finding.death_id)))).label("compare_deaths"),
        )
        .where(or_(now_in, then_in))
        .group_by(*THEME)
    )
    rows = []
    for row in (await session.execute(query)).all():
        current, previous = int(row.findings or 0), int(row.compare_findings or 0)
        rows.append(
            {
                **_theme_cells(row),
                "findings": current,
                "compare_findings": previous,
                "change": current - previous,
                "deaths": row.deaths,
                "compare_deaths": row.compare_deaths,
                "status": comparison_status(current, previous),
            }
        )
    rows.sort(
        key=lambda r: (
            STATUSES.index(r["status"]),
            -r["findings"],
            -r["compare_findings"],
            r["theme"],
        )
    )
    return Table(
        key="comparison",
        title=f"Themes, {period.label} against {compare.label}",
        columns=[
            *THEME_COLUMNS,
            Column("findings", f"Findings {period.label}", "int"),
            Column("compare_findings", f"Findings {compare.label}", "int"),
            Column("change", "Change in findings", "int"),
            Column("deaths", f"Deaths {period.label}", "int"),
            Column("compare_deaths", f"Deaths {compare.label}", "int"),
            Column(
                "status",
                "Status",
                "text",
                "new: findings in this period and none in the other; persisting: findings in "
                "both; fell away: findings in the other period and none in this one.",
            ),
        ],
        rows=rows,
        note="New themes first, then persisting, then those that fell away; most findings "
        "first within each.",
    )


async def build_themes(
    session: AsyncSession,
    period: Period,
    filters: ReportFilters,
    settings: Settings,
    compare: Period | None = None,
) -> Report:
    """Findings by theme for deaths in the period (by kind, with distinct deaths), and, given a
    second period, the two side by side."""
    filters.require_only("themes", *APPLICABLE_FILTERS)
    tables = [
        await _by_theme(session, period, filters, settings),
        await _by_kind(session, period, filters, settings),
    ]
    if compare is not None:
        tables.append(await _comparison(session, period, compare, filters, settings))
    applied: dict[str, Any] = {**filters.as_dict(), "compare": compare.label if compare else None}
    return Report(
        key="themes",
        title="Themes from reviews",
        period=period,
        filters=applied,
        tables=tables,
        generated_at=now(),
        notes=[
            "Findings are counted by the date of the death they are about (UK local date), "
            "whenever the review that recorded them was written.",
        ],
    )
