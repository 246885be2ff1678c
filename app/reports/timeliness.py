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
from app.reports.by_route import ALL_ROUTES, deaths_by_route, percentiles, route_order
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
    """The deaths a report follows, as WHERE terms on `deaths`."""

    period: Period
    filters: ReportFilters
    settings: Settings

    def terms(self) -> list[ColumnElement[bool]]:
        # The period's local dates as UTC instants: exactly the deaths whose died_on (the local
        # date of died_at) falls in the period, on the died_at index. Not both conditions: the
        # planner would multiply their selectivities and expect a fifth of the deaths.
        low, high = self.period.utc_bounds()
        return [
            Death.died_at >= low,
            Death.died_at < high,
            *self.filters.death_conditions(self.settings),
        ]

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


async def _interval_rows(
    session: AsyncSession, key: str, base: Any, value: Any, group: Any | None
) -> list[dict[str, Any]]:
    """The all-routes row (zeros when nothing was measured), then one row per route."""
    measured = await percentiles(session, base, value, group)
    overall = [m for m in measured if m[0] == ALL_ROUTES]
    by_route = sorted((m for m in measured if m[0] != ALL_ROUTES), key=lambda m: route_order(m[0]))
    rows = [_interval_row(key, *m) for m in overall] or [
        _interval_row(key, ALL_ROUTES, 0, None, None)
    ]
    return rows + [_interval_row(key, *m) for m in by_route]


async def _intervals(session: AsyncSession, cohort: Cohort) -> Table:
    dialect = dialect_of(session)
    route = cohort.route

    to_screening = (
        select().select_from(Death).join(Screening, Screening.death_id == Death.id)
    ).where(*cohort.terms())
    if route is not None:
        to_screening = to_screening.where(
            exists(
                select(1).where(
                    Referral.death_id == Death.id, Referral.route == route, _not_cancelled()
                )
            )
        )
    rows = await _interval_rows(
        session,
        "death_to_screening",
        to_screening,
        seconds_between(dialect, Death.died_at, Screening.screened_at),
        None,
    )

    to_referral = (
        select()
        .select_from(Referral)
        .join(Death, Death.id == Referral.death_id)
        .join(Screening, Screening.death_id == Death.id)
        .where(*cohort.terms(), _not_cancelled(), _screening_referral(dialect))
    )
    to_review = (
        select()
        .select_from(Referral)
        .join(Death, Death.id == Referral.death_id)
        .join(Review, Review.referral_id == Referral.id)
        .where(*cohort.terms(), Review.submitted_at.is_not(None))
    )
    if route is not None:
        to_referral = to_referral.where(Referral.route == route)
        to_review = to_review.where(Referral.route == route)
    rows += await _interval_rows(
        session,
        "screening_to_referral",
        to_referral,
        seconds_between(dialect, Screening.screened_at, Referral.created_at),
        Referral.route,
    )
    rows += await _interval_rows(
        session,
        "referral_to_review",
        to_review,
        seconds_between(dialect, Referral.created_at, Review.submitted_at),
        Referral.route,
    )
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


async def _overdue(session: AsyncSession, cohort: Cohort, as_of: datetime) -> Table:
    late = Referral.due_at < as_of
    query = (
        select(
            Referral.route,
            func.count().label("open"),
            func.sum(case((late, 1), else_=0)).label("overdue"),
            func.min(case((late, Referral.due_at))).label("oldest_due"),
        )
        .join(Death, Death.id == Referral.death_id)
        .where(*cohort.terms(), OPEN_PREDICATE)
        .group_by(Referral.route)
    )
    if cohort.route is not None:
        query = query.where(Referral.route == cohort.route)
    found = sorted((await session.execute(query)).all(), key=lambda r: route_order(r.route))
    rows = [
        {
            "route": row.route,
            "open": row.open,
            "overdue": int(row.overdue or 0),
            "overdue_percent": percent(int(row.overdue or 0), row.open),
            "oldest_due": _local_day(row.oldest_due),
        }
        for row in found
    ]
    total_open = sum(r["open"] for r in rows)
    total_late = sum(r["overdue"] for r in rows)
    oldest = [r["oldest_due"] for r in rows if r["oldest_due"] is not None]
    rows.insert(
        0,
        {
            "route": ALL_ROUTES,
            "open": total_open,
            "overdue": total_late,
            "overdue_percent": percent(total_late, total_open),
            "oldest_due": min(oldest) if oldest else None,
        },
    )
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


async def _referral_rate(session: AsyncSession, cohort: Cohort) -> Table:
    """The screened deaths; the referred and the overridden among them, in all and per route.
    Each count joins the cohort's deaths to the table it counts, so it reads only the period's
    referrals and overrides."""
    screened = int(
        await session.scalar(
            select(func.count())
            .select_from(Death)
            .join(Screening, Screening.death_id == Death.id)
            .where(*cohort.terms())
        )
        or 0
    )
    referrals = (
        select()
        .select_from(Referral)
        .join(Death, Death.id == Referral.death_id)
        .join(Screening, Screening.death_id == Death.id)
        .where(*cohort.terms(), _not_cancelled())
    )
    overrides = (
        select()
        .select_from(RouteOverride)
        .join(Death, Death.id == RouteOverride.death_id)
        .where(*cohort.terms())
    )
    if cohort.route is not None:
        referrals = referrals.where(Referral.route == cohort.route)
        overrides = overrides.where(RouteOverride.route == cohort.route)
    referred_any, referred = await deaths_by_route(
        session, referrals, Referral.route, Referral.death_id
    )
    overridden_any, overridden = await deaths_by_route(
        session, overrides, RouteOverride.route, RouteOverride.death_id
    )

    def row(route: str, referred_deaths: int, overridden_deaths: int) -> dict[str, Any]:
        return {
            "route": route,
            "screened_deaths": screened,
            "referred_deaths": referred_deaths,
            "referral_rate": percent(referred_deaths, screened),
            "overridden_deaths": overridden_deaths,
        }

    rows = [row(ALL_ROUTES, referred_any, overridden_any)]
    for route in sorted(set(referred) | set(overridden), key=route_order):
        rows.append(row(route, referred.get(route, 0), overridden.get(route, 0)))
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
        .join(Death, Death.id == RouteOverride.death_id)
        .join(criteria, criteria.c.value.is_not(None))
        .where(*cohort.terms())
        .group_by(RouteOverride.route, criteria.c.value)
    )
    if cohort.route is not None:
        query = query.where(RouteOverride.route == cohort.route)
    found = sorted(
        (await session.execute(query)).all(),
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
            Death.died_on,
            Death.site,
            Death.specialty_at_death,
            RouteOverride.route,
            RouteOverride.reason_codes,
            RouteOverride.override_reason,
        )
        .join(Death, Death.id == RouteOverride.death_id)
        .where(*cohort.terms())
        .order_by(Death.died_on.desc(), RouteOverride.route, RouteOverride.id)
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
    return Report(
        key="timeliness",
        title="Timeliness and compliance",
        period=period,
        filters=filters.as_dict(),
        tables=[
            await _intervals(session, cohort),
            await _overdue(session, cohort, as_of),
            await _referral_rate(session, cohort),
            await _override_reasons(session, cohort),
            await _override_list(session, cohort, reasons_shown),
        ],
        generated_at=as_of,
        notes=[
            "Every figure follows the deaths that died in the period (UK local date), whenever "
            "the later steps happened; a recent period's reviews may still be open.",
        ],
    )
