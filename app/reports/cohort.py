"""SQL building blocks the death-based reports share: the cohort of deaths a report counts,
the final SJR of each, and the month and age band of a death, portable between PostgreSQL and
SQLite. Everything here is a subquery for the database to aggregate, never rows for Python."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Subquery,
    and_,
    case,
    extract,
    func,
    literal,
    select,
)

from app.config import Settings
from app.kit.enums import ReferralStatus, ReviewStatus, Route
from app.models import Death, Referral, Review
from app.reports.filters import ReportFilters, age_bands, age_condition, in_scope
from app.reports.model import Period

# Referrals that stand: a declined or cancelled referral asked for nothing that happened.
WITHDRAWN = (ReferralStatus.declined.value, ReferralStatus.cancelled.value)
AVOIDABLE_MAX = 3  # avoidability 1-3: more likely than not due to problems in care


def cohort(
    settings: Settings, filters: ReportFilters, first: date, last: date, *columns: Any
) -> CTE:
    """Deaths in scope whose local date of death lies in [first, last], after the filters:
    `id`, `died_on`, `learning_disability`, `autism`, `age_at_death` and any extra columns."""
    low, high = Period(first, last, "").utc_bounds()
    return (
        select(
            Death.id,
            Death.died_on,
            Death.learning_disability,
            Death.autism,
            Death.age_at_death,
            *columns,
        )
        .where(
            # died_on is died_at's local date: the UTC range reads the died_at index, and the
            # date terms say exactly what is meant.
            Death.died_at >= low,
            Death.died_at < high,
            Death.died_on >= first,
            Death.died_on <= last,
            in_scope(settings),
            *filters.death_conditions(settings),
        )
        # A CTE: PostgreSQL scans the deaths once however many joins read the cohort.
        .cte("cohort")
    )


def final_sjr(deaths: CTE) -> Subquery:
    """Each cohort death's final SJR: of its submitted SJRs, the highest stage (a stage-2
    review supersedes stage 1), then the latest submitted. An amended review is one row
    holding its latest values, so it counts once. `death_id`, `review_id`, `avoidability`,
    `overall_rating` of the rows with `rank` 1."""
    ranked = (
        select(
            Review.death_id,
            Review.id.label("review_id"),
            Review.avoidability,
            Review.overall_rating,
            func.row_number()
            .over(
                partition_by=Review.death_id,
                order_by=(
                    func.coalesce(Review.stage, 1).desc(),
                    Review.submitted_at.desc(),
                    Review.id.desc(),
                ),
            )
            .label("rank"),
        )
        .join(deaths, deaths.c.id == Review.death_id)
        .where(Review.route == Route.sjr.value, Review.status == ReviewStatus.submitted.value)
        .subquery("ranked_sjr")
    )
    return (
        select(
            ranked.c.death_id, ranked.c.review_id, ranked.c.avoidability, ranked.c.overall_rating
        )
        .where(ranked.c.rank == 1)
        .subquery("final_sjr")
    )


def deaths_with_referral(deaths: CTE, route: Route, name: str) -> Subquery:
    """Cohort deaths with a standing (not declined, not cancelled) referral of `route`."""
    return (
        select(Referral.death_id)
        .join(deaths, deaths.c.id == Referral.death_id)
        .where(Referral.route == route.value, Referral.status.not_in(WITHDRAWN))
        .group_by(Referral.death_id)
        .subquery(name)
    )


def month_of(died_on: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(year, month) of a local date of death, as integers on both dialects."""
    return (
        extract("year", died_on).label("year"),
        extract("month", died_on).label("month"),
    )


def age_band_of(age: Any, settings: Settings) -> ColumnElement[str]:
    """The configured band label of an age, as a CASE the database evaluates."""
    bands = age_bands(settings.report_age_bands)
    return case(
        *((age_condition(band, age), literal(band.label)) for band in bands[:-1]),
        else_=literal(bands[-1].label),
    )


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 when the condition holds, else 0: for MAX() per death and SUM() per group."""
    return case((condition, 1), else_=0)


def count_where(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    """COUNT(*) FILTER (WHERE ...): PostgreSQL and SQLite (3.30+) both have it."""
    return func.count().filter(and_(*conditions))
