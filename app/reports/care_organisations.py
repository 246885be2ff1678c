"""The care-quality report by organisation of care (issue 16, cross-system SJR;
``by=care_organisation``): the final SJRs' phase ratings, and their problems in care, counted
by the organisation each names as having given that care. Definitions: docs/reports.md.

The unit here is a phase rating or a problem, not a death: a death whose final SJR rates the
admission (the acute trust) and the care before it (the GP practice) counts once under each.
The `overall` phase judges the whole episode, across organisations, so it is not counted here
(the report's overall table has it). A rating or problem that names no organisation is its own
row, "(not recorded)"."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CTE, SmallInteger, String, cast, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.enums import Harm, SjrPhase
from app.models import ReviewPhaseRating, ReviewProblem
from app.organisations.lookup import OrganisationRef, organisation_refs
from app.reports.model import Column, Table
from app.reports.ratings import distribution, distribution_columns

NOT_RECORDED = "(not recorded)"
RATINGS_UNIT = "Phase ratings of the final SJRs for this organisation's care, rated"


def _ratings(final: CTE) -> Any:
    """(part, organisation, rating, count): part 1 the phase ratings by organisation and
    rating, part 2 the distinct deaths with a rated phase by organisation."""
    rated = ReviewPhaseRating.phase != SjrPhase.overall.value
    organisation = ReviewPhaseRating.care_organisation_id
    return union_all(
        select(literal(1), organisation, ReviewPhaseRating.rating, func.count())
        .join(final, final.c.review_id == ReviewPhaseRating.review_id)
        .where(rated)
        .group_by(organisation, ReviewPhaseRating.rating),
        select(
            literal(2),
            organisation,
            cast(null(), SmallInteger),
            func.count(func.distinct(final.c.death_id)),
        )
        .join(final, final.c.review_id == ReviewPhaseRating.review_id)
        .where(rated)
        .group_by(organisation),
    )


def _problems(final: CTE) -> Any:
    """(part, organisation, harm, count): part 1 the problems by organisation and harm, part 2
    the distinct deaths with a problem by organisation."""
    organisation = ReviewProblem.care_organisation_id
    return union_all(
        select(literal(1), organisation, ReviewProblem.harm, func.count())
        .join(final, final.c.review_id == ReviewProblem.review_id)
        .group_by(organisation, ReviewProblem.harm),
        select(
            literal(2),
            organisation,
            cast(null(), String),
            func.count(func.distinct(final.c.death_id)),
        )
        .join(final, final.c.review_id == ReviewProblem.review_id)
        .group_by(organisation),
    )


def _order(
    ids: set[uuid.UUID | None], refs: dict[uuid.UUID, OrganisationRef]
) -> list[uuid.UUID | None]:
    """Organisations by name (then code), the ratings naming none last."""
    named = sorted(
        (value for value in ids if value is not None),
        key=lambda value: (
            refs[value].name.lower() if value in refs else "",
            (refs[value].ods_code or "") if value in refs else str(value),
        ),
    )
    return [*named, *([None] if None in ids else [])]


def _label(value: uuid.UUID | None, refs: dict[uuid.UUID, OrganisationRef]) -> dict[str, Any]:
    ref = refs.get(value) if value is not None else None
    return {
        "care_organisation": ref.name if ref is not None else NOT_RECORDED,
        "ods_code": ref.ods_code if ref is not None else None,
    }


LABEL_COLUMNS = [
    Column(
        "care_organisation",
        "Organisation of care",
        "text",
        "The organisation the SJR names as giving the care; (not recorded) where it names none.",
    ),
    Column("ods_code", "ODS code", "text", "Its ODS code, where it has one."),
]


async def organisation_tables(
    session: AsyncSession, final: CTE, care: dict[int, str], review: str = "final SJR"
) -> list[Table]:
    """The two tables by organisation of care, from the report's final SJRs (``review``: what
    the definitions call the review each death is counted by; a programme's "first review")."""
    unit = RATINGS_UNIT.replace("final SJRs", f"{review}s")
    ratings: dict[uuid.UUID | None, dict[int, int]] = {}
    rated_deaths: dict[uuid.UUID | None, int] = {}
    for part, organisation, rating, count in (await session.execute(_ratings(final))).all():
        if part == 1:
            ratings.setdefault(organisation, {})[int(rating)] = int(count)
        else:
            rated_deaths[organisation] = int(count)
    problems: dict[uuid.UUID | None, dict[str, int]] = {}
    problem_deaths: dict[uuid.UUID | None, int] = {}
    for part, organisation, harm, count in (await session.execute(_problems(final))).all():
        if part == 1:
            problems.setdefault(organisation, {})[str(harm)] = int(count)
        else:
            problem_deaths[organisation] = int(count)
    refs = await organisation_refs(session, {*ratings, *problems})
    return [
        Table(
            "by_care_organisation",
            "Care rating by organisation of care",
            [
                *LABEL_COLUMNS,
                Column(
                    "deaths",
                    "Deaths",
                    "int",
                    f"Deaths whose {review} rates a phase of this organisation's care.",
                ),
                *distribution_columns(care, "", unit),
            ],
            [
                {
                    **_label(value, refs),
                    "deaths": rated_deaths.get(value, 0),
                    **distribution(ratings[value]),
                }
                for value in _order(set(ratings), refs)
            ],
            note=f"Each phase rating of a death's {review} (but `overall`) counts once, under "
            "the organisation it names; a death whose care crossed organisations counts under "
            "each.",
        ),
        Table(
            "problems_by_care_organisation",
            "Problems in care by organisation of care",
            [
                *LABEL_COLUMNS,
                Column(
                    "deaths",
                    "Deaths",
                    "int",
                    f"Deaths whose {review} finds a problem in this organisation's care.",
                ),
                Column("problems", "Problems", "int", f"Problems in care the {review}s record."),
                *(
                    Column(
                        f"harm_{harm.value}",
                        f"Harm: {harm.value}",
                        "int",
                        f"Problems that led to harm: {harm.value}.",
                    )
                    for harm in Harm
                ),
            ],
            [
                {
                    **_label(value, refs),
                    "deaths": problem_deaths.get(value, 0),
                    "problems": sum(problems[value].values()),
                    **{f"harm_{harm.value}": problems[value].get(harm.value, 0) for harm in Harm},
                }
                for value in _order(set(problems), refs)
            ],
        ),
    ]
