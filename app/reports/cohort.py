"""SQL building blocks the death-based reports share: the cohort of deaths a report counts,
the final SJR of each (alone, or with every other review-derived figure in one pass over the
cohort's reviews), and the month and age band of a death, portable between PostgreSQL and
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

# Referrals that stand: a declined or cancelled referral asked for nothing that happened.
WITHDRAWN = (ReferralStatus.declined.value, ReferralStatus.cancelled.value)
AVOIDABLE_MAX = 3  # avoidability 1-3: more likely than not due to problems in care


def cohort(
    settings: Settings, filters: ReportFilters, first: date, last: date, *columns: Any
) -> CTE:
    """Deaths in scope whose local date of death lies in [first, last], after the filters:
    `id`, `died_on`, `learning_disability`, `autism`, `age_at_death` and any extra columns."""
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
            # died_on alone: its index (ix_deaths_died_on_report) covers every column a report
            # reads or filters on, so PostgreSQL reads the period's deaths from the index
            # without visiting the table, and estimates the cohort's size from one range (a
            # died_at range besides it made the planner guess a fifth of the deaths and choose
            # its joins for that).
            Death.died_on >= first,
            Death.died_on <= last,
            in_scope(settings),
            *filters.death_conditions(settings),
        )
        # Written once, as a CTE, but not materialised: PostgreSQL plans each join with the
        # deaths' own statistics (a materialised CTE has none, so it misjudged every join on
        # it by orders of magnitude) and may read the index in parallel; the index-only range
        # scan is cheap enough to run once per join.
        .cte("cohort")
        .prefix_with("NOT MATERIALIZED", dialect="postgresql")
    )


def dying_between(died_on: Any, first: date, last: date) -> list[ColumnElement[bool]]:
    """A row's copy of its death's local date of death (reviews and referrals carry one, 0009)
    in [first, last]: the cohort's rows of that table are then read by a range of its own
    `died_on` index, whatever the years of reviews behind them, and only then joined to the
    cohort (which still decides scope and filters)."""
    return [died_on >= first, died_on <= last]


def _sjr_order() -> tuple[ColumnElement[Any], ...]:
    """A death's submitted SJRs, final first: highest stage, then latest submitted (the id
    settles a tie, so the final SJR is always one review)."""
    return (
        func.coalesce(Review.stage, 1).desc(),
        Review.submitted_at.desc(),
        Review.id.desc(),
    )


def _submitted_sjr() -> ColumnElement[bool]:
    return and_(Review.route == Route.sjr.value, Review.status == ReviewStatus.submitted.value)


def final_sjr(deaths: CTE, first: date, last: date, *carried: str) -> CTE:
    """Each cohort death's final SJR: of its submitted SJRs, the highest stage (a stage-2
    review supersedes stage 1), then the latest submitted. An amended review is one row
    holding its latest values, so it counts once. `death_id`, `review_id`, `avoidability`,
    `overall_rating` and the `carried` cohort columns; a CTE, so that a report reading it
    twice ranks the reviews once."""
    ranked = (
        select(
            Review.death_id,
            Review.id.label("review_id"),
            Review.avoidability,
            Review.overall_rating,
            *(deaths.c[name] for name in carried),
            func.row_number()
            .over(partition_by=Review.death_id, order_by=_sjr_order())
            .label("rank"),
        )
        .join(deaths, deaths.c.id == Review.death_id)
        .where(_submitted_sjr(), *dying_between(Review.died_on, first, last))
        .subquery("ranked_sjr")
    )
    return (
        select(
            ranked.c.death_id,
            ranked.c.review_id,
            ranked.c.avoidability,
            ranked.c.overall_rating,
            *(ranked.c[name] for name in carried),
        )
        .where(ranked.c.rank == 1)
        .cte("final_sjr")
    )


def review_figures(
    deaths: CTE, first: date, last: date, flags: dict[str, ColumnElement[bool]], *carried: str
) -> Subquery:
    """One pass over the cohort's reviews, one row per death with any review: `death_id`, the
    `carried` cohort columns, for each named condition in `flags` 1 when any of the death's
    reviews meets it (else 0), and `avoidability` and `overall_rating` of its final SJR (null
    without one). The final SJR is ranked within the same pass: each death's submitted SJRs
    are numbered in final-first order (the other reviews are a partition of their own and get
    no number), and the row numbered 1 gives the scores."""
    submitted_sjr = _submitted_sjr()
    ranked = (
        select(
            Review.death_id,
            *(deaths.c[name] for name in carried),
            *(flag(condition).label(name) for name, condition in flags.items()),
            Review.avoidability,
            Review.overall_rating,
            case(
                (
                    submitted_sjr,
                    func.row_number().over(
                        partition_by=(Review.death_id, submitted_sjr), order_by=_sjr_order()
                    ),
                ),
                else_=None,
            ).label("sjr_rank"),
        )
        .join(deaths, deaths.c.id == Review.death_id)
        .where(*dying_between(Review.died_on, first, last))
        .subquery("ranked_reviews")
    )
    final = ranked.c.sjr_rank == 1
    return (
        select(
            ranked.c.death_id,
            *(ranked.c[name] for name in carried),
            *(func.max(ranked.c[name]).label(name) for name in flags),
            func.max(case((final, ranked.c.avoidability), else_=None)).label("avoidability"),
            func.max(case((final, ranked.c.overall_rating), else_=None)).label("overall_rating"),
        )
        .group_by(ranked.c.death_id, *(ranked.c[name] for name in carried))
        .subquery("review_figures")
    )


def deaths_with_referral(deaths: CTE, first: date, last: date, route: Route, name: str) -> Subquery:
    """Cohort deaths with a standing (not declined, not cancelled) referral of `route`."""
    return (
        select(Referral.death_id)
        .join(deaths, deaths.c.id == Referral.death_id)
        .where(Referral.route == route.value, Referral.status.not_in(WITHDRAWN))
        .where(*dying_between(Referral.died_on, first, last))
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
