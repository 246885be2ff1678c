"""The first review of each case of a programme, as SQL: what the cases' statuses, the
programme's counts and its report all read (docs/programmes.md, "A case's review").

A chosen case's first review is its own programme referral's submitted review; a linked case's
is the death's final routine SJR, as the care-quality report chooses it (of the death's
submitted SJRs the highest stage, then the latest submitted, the id settling a tie). Second
opinions are reviews of their own (app.programmes.reviewing), kept beside it, never instead.
The programme's counts (`counts_of`) read them too."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CompoundSelect, and_, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.kit.enums import ReviewStatus, Route
from app.models import ProgrammeCase, Review
from app.programmes.schemas import CohortCounts

SUBMITTED = ReviewStatus.submitted.value


def routine_order() -> tuple[ColumnElement[Any], ...]:
    """A death's submitted routine SJRs, final first (as app.reports.cohort ranks them)."""
    return (func.coalesce(Review.stage, 1).desc(), Review.submitted_at.desc(), Review.id.desc())


def first_reviews(*case_terms: ColumnElement[bool]) -> CompoundSelect[Any]:
    """One row per chosen, not excluded case (of the cases ``case_terms`` select) whose first
    review is submitted (a statement: the caller makes it a subquery or a CTE): `case_id`,
    `programme_id`, `death_id`, `review_id`, `source` (`programme` or `routine`),
    `overall_rating`, `quality_of_records`, `avoidability`, `reviewer`."""
    chosen = (
        ProgrammeCase.selected.is_(True),
        ProgrammeCase.excluded_at.is_(None),
        *case_terms,
    )
    own = (
        select(
            ProgrammeCase.id.label("case_id"),
            ProgrammeCase.programme_id,
            ProgrammeCase.death_id,
            Review.id.label("review_id"),
            literal("programme").label("source"),
            Review.overall_rating,
            Review.quality_of_records,
            Review.avoidability,
            Review.reviewer,
        )
        .join(Review, Review.referral_id == ProgrammeCase.referral_id)
        .where(*chosen, Review.status == SUBMITTED)
    )
    ranked = (
        select(
            ProgrammeCase.id.label("case_id"),
            ProgrammeCase.programme_id,
            ProgrammeCase.death_id,
            Review.id.label("review_id"),
            Review.overall_rating,
            Review.quality_of_records,
            Review.avoidability,
            Review.reviewer,
            func.row_number()
            .over(partition_by=ProgrammeCase.id, order_by=routine_order())
            .label("rank"),
        )
        .join(
            Review,
            and_(
                Review.death_id == ProgrammeCase.death_id,
                Review.route == Route.sjr.value,
                Review.status == SUBMITTED,
            ),
        )
        .where(*chosen, ProgrammeCase.linked.is_(True))
        .subquery("ranked_routine")
    )
    routine = select(
        ranked.c.case_id,
        ranked.c.programme_id,
        ranked.c.death_id,
        ranked.c.review_id,
        literal("routine").label("source"),
        ranked.c.overall_rating,
        ranked.c.quality_of_records,
        ranked.c.avoidability,
        ranked.c.reviewer,
    ).where(ranked.c.rank == 1)
    return union_all(own, routine)


async def counts_of(session: AsyncSession, programme_id: uuid.UUID) -> CohortCounts:
    """Where a programme's cohort stands (the programme's `counts` and the reports' index):
    in the cohort, chosen, linked, excluded, and reviewed (by the first reviews above)."""
    live = ProgrammeCase.excluded_at.is_(None)
    row = (
        await session.execute(
            select(
                func.count().filter(live),
                func.count().filter(live, ProgrammeCase.selected.is_(True)),
                func.count().filter(
                    live, ProgrammeCase.selected.is_(True), ProgrammeCase.linked.is_(True)
                ),
                func.count().filter(~live),
            ).where(ProgrammeCase.programme_id == programme_id)
        )
    ).one()
    reviews = first_reviews(ProgrammeCase.programme_id == programme_id).subquery("first_reviews")
    reviewed = await session.scalar(select(func.count()).select_from(reviews))
    return CohortCounts(
        in_cohort=int(row[0]),
        selected=int(row[1]),
        linked=int(row[2]),
        reviewed=int(reviewed or 0),
        excluded=int(row[3]),
    )
