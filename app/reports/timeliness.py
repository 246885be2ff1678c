"""Timeliness and compliance (DESIGN.md section 9, docs/reports.md "Timeliness and
compliance"): how long each step takes, what is overdue, how many screened deaths are referred,
and which required routes the medical examiner overrode, and why.

The cohort is the deaths that died in the period (UK local date of death), filtered by site,
specialty and age band; every figure follows those deaths through the pipeline, whenever the
later steps happened. Intervals are in days (24 hours) to one decimal place; medians and 90th
percentiles interpolate between ranks: `percentile_cont` on PostgreSQL, and on SQLite, which
has no percentile function, the same interpolation by window functions
(app.reports.aggregates).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    case,
    distinct,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.enums import ReasonCode, ReferralStatus
from app.kit.time import local_date, now
from app.models import Death, Referral, Review, RouteOverride, Screening
from app.referrals.queue import OPEN_PREDICATE
from app.reports.aggregates import LIST_LIMIT, dialect_of, json_elements, seconds_between
from app.reports.by_route import ALL_ROUTES, Figures, deaths_by_route, figures, route_order
from app.reports.filters import ReportFilters
from app.reports.model import Column, Period, Report, Table, percent

APPLICABLE_FILTERS = ("site", "specialty", "route", "age_band")

# Reasons only a submitted review gives: a referral with none but these was raised by a review
# (a second-stage SJR, a PSII after it, an SJR an M&M meeting escalated), not by the screening.
REVIEW_FOLLOW_ON_REASONS = (
    ReasonCode.second_stage.value,
    ReasonCode.more_likely_than_not_avoidable.value,
    ReasonCode.mm_escalation.value,
)

INTERVALS = {
    "death_to_screening": "Death to medical examiner screening",
    "screening_to_referral": "Screening to referral",
    "referral_to_review": "Referral to completed review",
}


@dataclass(frozen=True)
class Cohort:
    """The deaths a report follows: WHERE terms on `deaths`, or on the copy of their local date
    of death that screenings, route overrides, referrals and reviews carry."""

    period: Period
    filters: ReportFilters
    settings: Settings

    def terms(self) -> list[ColumnElement[bool]]:
        """The period's deaths, after the filters, for a query that reads their `died_at`.
        Without a filter: the period's local dates as UTC instants (exactly the deaths whose
        died_on falls in the period), read from the died_at index alone. With one: died_on,
        whose index covers the filters' columns (from the died_at index PostgreSQL would read
        the whole table instead). Never both: the planner would multiply their selectivities
        and expect a fifth of the deaths."""
        conditions = self.death_conditions()
        if conditions:
            return [*self.copied(Death.died_on), *conditions]
        low, high = self.period.utc_bounds()
        return [Death.died_at >= low, Death.died_at < high]

    def death_conditions(self) -> list[ColumnElement[bool]]:
        """The filters' terms on `deaths` (site, specialty, age band)."""
        return self.filters.death_conditions(self.settings)

    def copied(self, died_on: Any) -> list[ColumnElement[bool]]:
        """The period on a local date of death: a row's copy of its death's (the rows of the
        period's deaths, read from that table's own `died_on` index), or the deaths' own."""
        return [died_on >= self.period.start, died_on <= self.period.end]

    def filtered(self, query: Select[Any], death_id: Any) -> Select[Any]:
        """`query`'s rows of the deaths the filters select: a join to `deaths` only when a
        filter is given, to the period's deaths read from the index that covers the filters'
        columns (`ix_deaths_died_on_report`; without the period, PostgreSQL hashed every
        death of the age band, all years of them)."""
        conditions = self.death_conditions()
        if not conditions:
            return query
        return query.join(Death, Death.id == death_id).where(
            *self.copied(Death.died_on), *conditions
        )

    @property
    def route(self) -> str | None:
        return self.filters.route.value if self.filters.route is not None else None


def _not_cancelled() -> ColumnElement[bool]:
    return Referral.status != ReferralStatus.cancelled.value


def _screening_referral(dialect: str) -> ColumnElement[bool]:
    """At least one of the referral's reasons is the screening's (not a review follow-on)."""
    if dialect == "postgresql":
        # Not contained in the follow-on reasons: one jsonb operator, no set-returning function
        # per referral.
        follow_ons: ColumnElement[Any] = literal_column(
            f"'{json.dumps(list(REVIEW_FOLLOW_ON_REASONS))}'::jsonb"
        )
        return ~Referral.reasons.op("<@", return_type=Boolean)(follow_ons)
    reasons = json_elements(dialect, Referral.reasons, "reason")
    return exists(
        select(1).select_from(reasons).where(reasons.c.value.not_in(REVIEW_FOLLOW_ON_REASONS))
    )


# --- the two passes ----------------------------------------------------------------------------


async def _screening_figures(session: AsyncSession, cohort: Cohort) -> Figures:
    """One pass over the period's screenings: the screened deaths, and death to screening (for
    the deaths referred on the route, given one)."""
    dialect = dialect_of(session)
    measured: ColumnElement[Any] = seconds_between(dialect, Death.died_at, Screening.screened_at)
    query = (
        select()
        .select_from(Screening)
        .join(Death, Death.id == Screening.death_id)
        .where(*cohort.copied(Screening.died_on), *cohort.terms())
    )
    if cohort.route is not None:
        referred = (
            select(Referral.death_id)
            .where(*cohort.copied(Referral.died_on), Referral.route == cohort.route)
            .where(_not_cancelled())
            .group_by(Referral.death_id)
            .subquery("referred_on_route")
        )
        query = query.outerjoin(referred, referred.c.death_id == Screening.death_id)
        measured = case((referred.c.death_id.is_not(None), measured))
    facts = query.add_columns(measured.label("death_to_screening")).subquery("screened")
    found = await figures(session, facts, None, {"screened": func.count()}, ("death_to_screening",))
    return found[ALL_ROUTES]


async def _referral_figures(
    session: AsyncSession, cohort: Cohort, as_of: datetime
) -> dict[str, Figures]:
    """One pass over the period's referrals, each with its death's screening and its own
    review: per route and for all routes, the referred deaths, screening to referral, referral
    to completed review, and the open and overdue referrals as of `as_of`."""
    dialect = dialect_of(session)
    standing = and_(Screening.death_id.is_not(None), _not_cancelled())
    late = and_(OPEN_PREDICATE, Referral.due_at < as_of)
    to_referral = seconds_between(dialect, Screening.screened_at, Referral.created_at)
    to_review = seconds_between(dialect, Referral.created_at, Review.submitted_at)
    query = (
        select(
            Referral.route,
            case((standing, Referral.death_id)).label("referred_death"),
            case((and_(standing, _screening_referral(dialect)), to_referral)).label(
                "screening_to_referral"
            ),
            case((Review.submitted_at.is_not(None), to_review)).label("referral_to_review"),
            case((OPEN_PREDICATE, 1), else_=0).label("open"),
            case((late, 1), else_=0).label("overdue"),
            case((late, Referral.due_at)).label("overdue_due"),
        )
        .select_from(Referral)
        .outerjoin(
            Screening,
            and_(Screening.death_id == Referral.death_id, *cohort.copied(Screening.died_on)),
        )
        .outerjoin(Review, and_(Review.referral_id == Referral.id, *cohort.copied(Review.died_on)))
        .where(*cohort.copied(Referral.died_on))
    )
    if cohort.route is not None:
        query = query.where(Referral.route == cohort.route)
    facts = cohort.filtered(query, Referral.death_id).subquery("referral_facts")
    return await figures(
        session,
        facts,
        "route",
        {
            "referred_deaths": func.count(distinct(facts.c.referred_death)),
            "open": func.coalesce(func.sum(facts.c.open), 0),
            "overdue": func.coalesce(func.sum(facts.c.overdue), 0),
            "oldest_due": func.min(facts.c.overdue_due),
        },
        ("screening_to_referral", "referral_to_review"),
    )


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
    screened = await _screening_figures(session, cohort)
    referred = await _referral_figures(session, cohort, as_of)
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
