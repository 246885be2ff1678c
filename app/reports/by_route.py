"""Figures for all routes together and for each route, in one pass on PostgreSQL (`GROUPING
SETS ((route), ())`) and in two or more on SQLite, which has no grouping sets: the count,
median and 90th percentile of an interval, distinct deaths, and any other aggregate over the
rows of a subquery. The all-routes row is named "all routes"; routes sort in the order of
app.kit.enums.Route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Subquery, distinct, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.enums import Route
from app.reports.aggregates import days, dialect_of, percentile_terms

ALL_ROUTES = "all routes"


Measured = tuple[str, int, float | None, float | None]


async def percentiles(
    session: AsyncSession, base: Any, value: Any, group: Any | None
) -> list[Measured]:
    """(group, count, median days, 90th percentile days) for the rows of `base` (a SELECT
    with its FROM and WHERE and no columns): one row for all of them (named "all routes"),
    then, given a `group` column, one row per group.

    PostgreSQL: one pass, `percentile_cont` over `GROUPING SETS ((group), ())`. SQLite, which
    has neither: the portable window-function formulation (app.reports.aggregates), once for
    all and once per group. Both give the same answers (tested)."""
    if dialect_of(session) == "postgresql":
        return await _percentiles_postgresql(session, base, value, group)
    measured = await _percentiles_portable(session, base, value, None)
    if group is not None:
        measured += await _percentiles_portable(session, base, value, group)
    return measured


def _measured(name: str, n: Any, median: Any, p90: Any) -> Measured:
    return (name, int(n), days(median), days(p90))


async def _percentiles_postgresql(
    session: AsyncSession, base: Any, value: Any, group: Any | None
) -> list[Measured]:
    figures = [
        func.count().label("n"),
        func.percentile_cont(0.5).within_group(value).label("median"),
        func.percentile_cont(0.9).within_group(value).label("p90"),
    ]
    if group is None:
        row = (await session.execute(base.add_columns(*figures))).one()
        return [_measured(ALL_ROUTES, row.n, row.median, row.p90)] if row.n else []
    query = base.add_columns(group.label("grp"), *figures).group_by(
        func.grouping_sets(tuple_(group), tuple_())
    )
    rows = (await session.execute(query)).all()
    # The grand total (the empty grouping set) has a NULL group: routes are never NULL.
    overall = [_measured(ALL_ROUTES, r.n, r.median, r.p90) for r in rows if r.grp is None]
    return [m for m in overall if m[1]] + [
        _measured(r.grp, r.n, r.median, r.p90) for r in rows if r.grp is not None
    ]


async def _percentiles_portable(
    session: AsyncSession, base: Any, value: Any, group: Any | None
) -> list[Measured]:
    partition = [group] if group is not None else None
    columns = [
        value.label("seconds"),
        func.row_number().over(partition_by=partition, order_by=value).label("rank"),
        func.count().over(partition_by=partition).label("n"),
    ]
    if group is not None:
        columns.append(group.label("grp"))
    ranked = base.add_columns(*columns).subquery("ranked")
    median, p90 = percentile_terms(ranked.c.seconds, ranked.c.rank, ranked.c.n, (50, 90))
    label = ranked.c.grp if group is not None else None
    query = select(
        *([label] if label is not None else []),
        func.max(ranked.c.n).label("n"),
        median.label("median"),
        p90.label("p90"),
    )
    if label is not None:
        query = query.group_by(label)
    return [
        _measured(row.grp if label is not None else ALL_ROUTES, row.n, row.median, row.p90)
        for row in (await session.execute(query)).all()
        if row.n
    ]


@dataclass
class Figures:
    """One row of `figures`: the named aggregates, and each interval as (count, median days,
    90th percentile days)."""

    values: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, tuple[int, float | None, float | None]] = field(default_factory=dict)


async def figures(
    session: AsyncSession,
    facts: Subquery,
    group: str | None,
    aggregates: dict[str, ColumnElement[Any]],
    intervals: tuple[str, ...],
) -> dict[str, Figures]:
    """Aggregates over the rows of `facts`, for all of them (keyed "all routes", always
    present) and, given the name of a `group` column, for each group: the named `aggregates`
    (expressions over `facts`' columns), and for each name in `intervals` (a column of
    seconds, null where the row measures nothing) the count, median and 90th percentile of its
    values. A group appears if any row has it, so a caller drops the groups its table does not
    list (a count of 0).

    PostgreSQL: one statement, `percentile_cont` (which skips nulls) over `GROUPING SETS
    ((group), ())`. SQLite: the aggregates grouped and in total, and each interval by the
    portable formulation (`percentiles`)."""
    grouped = facts.c[group] if group is not None else None
    labelled = [term.label(name) for name, term in aggregates.items()]
    found: dict[str, Figures] = {}

    def row_of(key: str) -> Figures:
        return found.setdefault(key, Figures())

    if dialect_of(session) == "postgresql":
        measured = []
        for name in intervals:
            value = facts.c[name]
            measured += [
                func.count(value).label(f"{name}_n"),
                func.percentile_cont(0.5).within_group(value).label(f"{name}_median"),
                func.percentile_cont(0.9).within_group(value).label(f"{name}_p90"),
            ]
        query = select(*labelled, *measured).select_from(facts)
        if grouped is not None:
            query = query.add_columns(grouped.label("grp")).group_by(
                func.grouping_sets(tuple_(grouped), tuple_())
            )
        for row in (await session.execute(query)).mappings():
            # The grand total (the empty grouping set) has a NULL group: groups never do.
            key = row["grp"] if grouped is not None and row["grp"] is not None else ALL_ROUTES
            figure = row_of(key)
            figure.values = {name: row[name] for name in aggregates}
            for name in intervals:
                figure.intervals[name] = (
                    int(row[f"{name}_n"]),
                    days(row[f"{name}_median"]),
                    days(row[f"{name}_p90"]),
                )
        return found
    total = (await session.execute(select(*labelled).select_from(facts))).mappings().one()
    row_of(ALL_ROUTES).values = dict(total)
    if grouped is not None:
        rows = await session.execute(
            select(grouped.label("grp"), *labelled).select_from(facts).group_by(grouped)
        )
        for row in rows.mappings():
            row_of(row["grp"]).values = {name: row[name] for name in aggregates}
    for name in intervals:
        value = facts.c[name]
        base = select().select_from(facts).where(value.is_not(None))
        for key, n, median, p90 in await percentiles(session, base, value, grouped):
            row_of(key).intervals[name] = (n, median, p90)
    for figure in found.values():
        for name in intervals:
            figure.intervals.setdefault(name, (0, None, None))
    return found


def route_order(route: str) -> int:
    return list(Route).index(Route(route)) if route in Route.__members__ else len(Route)


async def deaths_by_route(
    session: AsyncSession, base: Any, route: Any, death_id: Any
) -> tuple[int, dict[str, int]]:
    """Distinct deaths among the rows of `base` (a SELECT with its FROM and WHERE and no
    columns): all routes together, and per route. One pass on PostgreSQL (GROUPING SETS), two
    on SQLite."""
    deaths = func.count(distinct(death_id)).label("deaths")
    if dialect_of(session) == "postgresql":
        rows = (
            await session.execute(
                base.add_columns(route.label("route"), deaths).group_by(
                    func.grouping_sets(tuple_(route), tuple_())
                )
            )
        ).all()
        total = next((int(r.deaths) for r in rows if r.route is None), 0)
        return total, {r.route: int(r.deaths) for r in rows if r.route is not None}
    total = int(await session.scalar(base.add_columns(deaths)) or 0)
    by_route = await session.execute(base.add_columns(route.label("route"), deaths).group_by(route))
    return total, {r.route: int(r.deaths) for r in by_route.all()}
