"""The SQL of the timeliness report (app.reports.timeliness lays out its tables): the cohort it
follows, and its two passes, each one statement on PostgreSQL. Screenings, route overrides,
referrals and reviews are read by their own copy of the death's local date of death
(`died_on`, migration 0009), from an index range of the period on each table, and joined to
`deaths` only where a figure needs the time of death or a filter needs the death's site,
specialty or age.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
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
from app.kit.enums import ReasonCode, ReferralStatus, Route
from app.models import Death, Referral, Review, Screening
from app.referrals.queue import OPEN_PREDICATE
from app.reports.aggregates import dialect_of, json_elements, seconds_between
from app.reports.by_route import ALL_ROUTES, Figures, figures
from app.reports.filters import ReportFilters
from app.reports.model import Period

# Reasons only a submitted review gives: a referral with none but these was raised by a review
# (a second-stage SJR, a PSII after it, an SJR an M&M meeting escalated), not by the screening.
REVIEW_FOLLOW_ON_REASONS = (
    ReasonCode.second_stage.value,
    ReasonCode.more_likely_than_not_avoidable.value,
    ReasonCode.mm_escalation.value,
)


# A review programme's referrals (issue 17) are an audit's sample, not the examiner's
# decisions nor the routine pipeline: timeliness leaves them out (the programme report has them).
PROGRAMME = Route.programme.value


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


async def screening_figures(session: AsyncSession, cohort: Cohort) -> Figures:
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


async def referral_figures(
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
        .where(*cohort.copied(Referral.died_on), Referral.route != PROGRAMME)
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
