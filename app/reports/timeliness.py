"""Timeliness and compliance (DESIGN.md section 9, docs/reports.md "Timeliness and
compliance"): how long each step takes, what is overdue, how many screened deaths are referred,
and which required routes the medical examiner overrode, and why.

The cohort is the deaths that died in the period (UK local date of death), filtered by site,
specialty and age band; every figure follows those deaths through the pipeline, whenever the
later steps happened. Intervals are in days (24 hours) to one decimal place; medians and 90th
percentiles interpolate between ranks: `percentile_cont` on PostgreSQL, and on SQLite, which
has no percentile function, the same interpolation by window functions
(app.reports.aggregates). The SQL of the cohort and of the two passes that give the intervals,
the overdue referrals and the referral rate is app.reports.timeliness_passes; this module
reads the overrides and lays out the tables.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.time import local_date, now
from app.models import Death, RouteOverride
from app.reports.aggregates import LIST_LIMIT, dialect_of, json_elements
from app.reports.by_route import ALL_ROUTES, Figures, deaths_by_route, route_order
from app.reports.filters import ReportFilters
from app.reports.model import Column, Period, Report, Table, percent
from app.reports.timeliness_passes import Cohort, referral_figures, screening_figures

APPLICABLE_FILTERS = ("site", "specialty", "route", "age_band")

INTERVALS = {
    "death_to_screening": "Death to medical examiner screening",
    "screening_to_referral": "Screening to referral",
    "referral_to_review": "Referral to completed review",
}


def _routes(found: dict[str, Figures]) -> list[str]:
    return sorted((route for route in found if route != ALL_ROUTES), key=route_order)


# --- intervals -------------------------------------------------------------------------------


def _interval_row(
    key: str, route: str, count: int, median: float | None, p90: float | None
) -> dict[str, Any]:
    return {
        "interval": INTERVALS[key],
        "route": route,
        "count": count,
        "median_days": median,
        "p90_days": p90,
    }


def _interval_rows(key: str, found: dict[str, Figures]) -> list[dict[str, Any]]:
    """The all-routes row (zeros when nothing was measured), then each route measured."""
    rows = [_interval_row(key, ALL_ROUTES, *found[ALL_ROUTES].intervals[key])]
    for route in _routes(found):
        count, median, p90 = found[route].intervals[key]
        if count:
            rows.append(_interval_row(key, route, count, median, p90))
    return rows


def _intervals(screened: Figures, referred: dict[str, Figures]) -> Table:
    rows = _interval_rows("death_to_screening", {ALL_ROUTES: screened})
    rows += _interval_rows("screening_to_referral", referred)
    rows += _interval_rows("referral_to_review", referred)
    return Table(
        key="intervals",
        title="How long each step takes (days)",
        columns=[
            Column("interval", "Interval", "text"),
            Column("route", "Route", "text"),
            Column("count", "Count", "int", "How many intervals were measured."),
            Column(
                "median_days",
                "Median (days)",
                "number",
                "The middle interval, in days of 24 hours to one decimal place; with an even "
                "count, halfway between the two middle ones.",
            ),
            Column(
                "p90_days",
                "90th percentile (days)",
                "number",
                "The interval nine in ten are within, interpolated between ranks as "
                "PostgreSQL's percentile_cont(0.9).",
            ),
        ],
        rows=rows,
        note="Death to screening: the ME's screened_at minus the time of death. Screening to "
        "referral: each referral the screening made (not the ones reviews raise) minus "
        "screened_at. Referral to completed review: the review's first submission minus the "
        "referral's creation, for every referral with a submitted review.",
    )


# --- overdue ---------------------------------------------------------------------------------


def _local_day(moment: datetime | str | None) -> date | None:
    if moment is None:
        return None
    if isinstance(moment, str):  # an aggregate over a timestamp on SQLite comes back as text
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return local_date(moment)


def _overdue(referred: dict[str, Figures], as_of: datetime) -> Table:
    def row(route: str) -> dict[str, Any]:
        values = referred[route].values
        opened, late = int(values["open"] or 0), int(values["overdue"] or 0)
        return {
            "route": route,
            "open": opened,
            "overdue": late,
            "overdue_percent": percent(late, opened),
            "oldest_due": _local_day(values["oldest_due"]),
        }

    rows = [row(ALL_ROUTES)]
    rows += [row(route) for route in _routes(referred) if referred[route].values["open"]]
    return Table(
        key="overdue",
        title="Open and overdue referrals",
        columns=[
            Column("route", "Route", "text"),
            Column("open", "Open", "int", "Referrals ready, claimed, in progress or on hold."),
            Column("overdue", "Overdue", "int", "Open referrals past their due time."),
            Column("overdue_percent", "Overdue %", "percent", "Overdue of open."),
            Column(
                "oldest_due", "Oldest due date", "date", "The earliest due date of the overdue."
            ),
        ],
        rows=rows,
        note=f"As of {as_of.astimezone(UTC).isoformat(timespec='seconds')}, for the referrals "
        "of the period's deaths.",
    )


# --- referral rate and overrides -------------------------------------------------------------


async def _referral_rate(
    session: AsyncSession, cohort: Cohort, screened: Figures, referred: dict[str, Figures]
) -> Table:
    """The screened deaths; the referred (from the referral pass) and the overridden among
    them, in all and per route. The overrides are read by their own copy of the date of death."""
    overrides = select().select_from(RouteOverride).where(*cohort.copied(RouteOverride.died_on))
    if cohort.route is not None:
        overrides = overrides.where(RouteOverride.route == cohort.route)
    overridden_any, overridden = await deaths_by_route(
        session,
        cohort.filtered(overrides, RouteOverride.death_id),
        RouteOverride.route,
        RouteOverride.death_id,
    )
    screened_deaths = int(screened.values["screened"] or 0)

    def row(route: str, referred_deaths: int, overridden_deaths: int) -> dict[str, Any]:
        return {
            "route": route,
            "screened_deaths": screened_deaths,
            "referred_deaths": referred_deaths,
            "referral_rate": percent(referred_deaths, screened_deaths),
            "overridden_deaths": overridden_deaths,
        }

    def referred_on(route: str) -> int:
        return int(referred[route].values["referred_deaths"] or 0) if route in referred else 0

    rows = [row(ALL_ROUTES, referred_on(ALL_ROUTES), overridden_any)]
    routes = {route for route in _routes(referred) if referred_on(route)} | set(overridden)
    for route in sorted(routes, key=route_order):
        rows.append(row(route, referred_on(route), overridden.get(route, 0)))
    return Table(
        key="referral_rate",
        title="Medical examiner referral rate and overridden routes",
        columns=[
            Column("route", "Route", "text"),
            Column(
                "screened_deaths",
                "Screened deaths",
                "int",
                "Deaths in the period with a screening.",
            ),
            Column(
                "referred_deaths",
                "Referred deaths",
                "int",
                "Screened deaths with at least one referral (of the route) that was not cancelled.",
            ),
            Column("referral_rate", "Referral rate", "percent", "Referred of screened deaths."),
            Column(
                "overridden_deaths",
                "Overridden",
                "int",
                "Deaths that met a mandatory criterion for the route whose referral the medical "
                "examiner declined, with a written reason.",
            ),
        ],
        rows=rows,
    )


async def _override_reasons(session: AsyncSession, cohort: Cohort) -> Table:
    criteria = json_elements(dialect_of(session), RouteOverride.reason_codes, "criterion")
    query = (
        select(
            RouteOverride.route,
            criteria.c.value.label("criterion"),
            func.count(distinct(RouteOverride.death_id)).label("deaths"),
        )
        .select_from(RouteOverride)
        .join(criteria, criteria.c.value.is_not(None))
        .where(*cohort.copied(RouteOverride.died_on))
        .group_by(RouteOverride.route, criteria.c.value)
    )
    if cohort.route is not None:
        query = query.where(RouteOverride.route == cohort.route)
    found = sorted(
        (await session.execute(cohort.filtered(query, RouteOverride.death_id))).all(),
        key=lambda r: (route_order(r.route), -r.deaths, r.criterion),
    )
    return Table(
        key="override_criteria",
        title="Criteria met by the overridden routes",
        columns=[
            Column("route", "Route", "text"),
            Column("criterion", "Criterion met", "text", "The rule's reason code (DESIGN.md 4)."),
            Column("deaths", "Deaths", "int"),
        ],
        rows=[
            {"route": row.route, "criterion": row.criterion, "deaths": row.deaths} for row in found
        ],
        note="A route required by several criteria counts under each.",
    )


REASONS_WITHHELD = (
    "The examiner's written reasons are shown only to clients that may read deaths (scope "
    "deaths:read) and are not pseudonymised: free text about one death may name the patient "
    "or the family. Each reason shown is audited as a read of that death."
)


async def _override_list(
    session: AsyncSession, cohort: Cohort, shown: list[tuple[uuid.UUID, uuid.UUID]] | None
) -> Table:
    """Each override, newest deaths first. With `shown` (a list to fill), the examiner's
    written reason too, and (override id, death id) of every row shown, for the audit."""
    query = (
        select(
            RouteOverride.id,
            RouteOverride.death_id,
            RouteOverride.died_on,
            Death.site,
            Death.specialty_at_death,
            RouteOverride.route,
            RouteOverride.reason_codes,
            RouteOverride.override_reason,
        )
        .join(Death, Death.id == RouteOverride.death_id)
        .where(*cohort.copied(RouteOverride.died_on), *cohort.death_conditions())
        .order_by(RouteOverride.died_on.desc(), RouteOverride.route, RouteOverride.id)
        .limit(LIST_LIMIT + 1)
    )
    if cohort.route is not None:
        query = query.where(RouteOverride.route == cohort.route)
    found = (await session.execute(query)).all()
    notes = []
    if len(found) > LIST_LIMIT:
        found = found[:LIST_LIMIT]
        notes.append(f"The {LIST_LIMIT} most recent deaths' overrides; the counts above cover all.")
    if shown is None:
        notes.append(REASONS_WITHHELD)
    else:
        shown.extend((row.id, row.death_id) for row in found)
    return Table(
        key="overrides",
        title="Required routes the medical examiner overrode, with the reasons",
        columns=[
            Column("month_of_death", "Month of death", "month"),
            Column("site", "Site", "text"),
            Column("specialty", "Specialty at death", "text"),
            Column("route", "Route", "text"),
            Column("criteria", "Criteria met", "text"),
            Column("reason", "Medical examiner's reason", "text"),
        ],
        rows=[
            {
                "month_of_death": row.died_on.replace(day=1),
                "site": row.site,
                "specialty": row.specialty_at_death,
                "route": row.route,
                "criteria": ", ".join(row.reason_codes),
                "reason": row.override_reason if shown is not None else None,
            }
            for row in found
        ],
        note=" ".join(notes) or None,
    )


async def build_timeliness(
    session: AsyncSession,
    period: Period,
    filters: ReportFilters,
    settings: Settings,
    reasons_shown: list[tuple[uuid.UUID, uuid.UUID]] | None = None,
) -> Report:
    """Intervals (median, 90th percentile), overdue referrals, the referral rate and the
    overridden routes, for the deaths in the period. The examiner's written override reasons
    are included only when `reasons_shown` is a list; it receives (override id, death id) of
    each reason shown, which the caller must audit."""
    filters.require_only("timeliness", *APPLICABLE_FILTERS)
    cohort = Cohort(period, filters, settings)
    as_of = now()
    screened = await screening_figures(session, cohort)
    referred = await referral_figures(session, cohort, as_of)
    return Report(
        key="timeliness",
        title="Timeliness and compliance",
        period=period,
        filters=filters.as_dict(),
        tables=[
            _intervals(screened, referred),
            _overdue(referred, as_of),
            await _referral_rate(session, cohort, screened, referred),
            await _override_reasons(session, cohort),
            await _override_list(session, cohort, reasons_shown),
        ],
        generated_at=as_of,
        notes=[
            "Every figure follows the deaths that died in the period (UK local date), whenever "
            "the later steps happened; a recent period's reviews may still be open.",
        ],
    )
