"""The programme report's counting (docs/programmes.md, "The programme report"): each figure a
grouped statement over the programme's cases and their first reviews; Python only lays the
counted cells out. Every function takes the programme and the CTE of its cases' first reviews
(app.programmes.case_reviews), and returns counted cells."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    CTE,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.actions.queries import overdue_clause, uk_today
from app.actions.rag import ActionStatus
from app.config import Settings
from app.kit.enums import ReviewStatus, Route, SjrPhase
from app.models import (
    Action,
    Death,
    Finding,
    Programme,
    ProgrammeAnswer,
    ProgrammeCase,
    ProgrammeOpinion,
    ProgrammeQuestion,
    ProgrammeRecommendation,
    ProgrammeRecommendationAction,
    Referral,
    ReferralJudgement,
    Review,
    ReviewPhaseRating,
    ReviewProblem,
    Screening,
)
from app.reports.aggregates import dialect_of
from app.reports.cohort import age_band_of, count_where


def live(programme: Programme) -> tuple[ColumnElement[bool], ...]:
    return (ProgrammeCase.programme_id == programme.id, ProgrammeCase.excluded_at.is_(None))


@dataclass
class CohortFigures:
    in_cohort: int = 0
    selected: int = 0
    linked: int = 0
    excluded: int = 0
    late: int = 0
    withdrawn: int = 0


async def cohort_figures(session: AsyncSession, programme: Programme) -> CohortFigures:
    live_case = ProgrammeCase.excluded_at.is_(None)
    chosen = and_(live_case, ProgrammeCase.selected.is_(True))
    row = (
        await session.execute(
            select(
                count_where(live_case),
                count_where(chosen),
                count_where(chosen, ProgrammeCase.linked.is_(True)),
                count_where(~live_case),
                count_where(live_case, ProgrammeCase.joined == "late"),
                count_where(
                    chosen,
                    ProgrammeCase.linked.is_(False),
                    Referral.status.in_(("declined", "cancelled")),
                ),
            )
            .select_from(ProgrammeCase)
            .outerjoin(Referral, Referral.id == ProgrammeCase.referral_id)
            .where(ProgrammeCase.programme_id == programme.id)
        )
    ).one()
    return CohortFigures(*(int(value) for value in row))


@dataclass
class ReviewFigures:
    """The first reviews' scores, each combination counted once: overall rating, quality of
    records, avoidability and the death's age band."""

    cells: list[tuple[int | None, int | None, int | None, str, int]] = field(default_factory=list)

    def total(self, **fixed: Any) -> int:
        names = ("overall", "records", "avoidability", "band")
        return sum(
            cell[4]
            for cell in self.cells
            if all(cell[names.index(name)] == value for name, value in fixed.items())
        )

    def by(self, index: int, *, rated_only: bool = True) -> dict[Any, dict[int, int]]:
        """Overall ratings counted by the cell's ``index``-th part."""
        found: dict[Any, dict[int, int]] = {}
        for cell in self.cells:
            if cell[0] is None and rated_only:
                continue
            ratings = found.setdefault(cell[index], {})
            if cell[0] is not None:
                ratings[cell[0]] = ratings.get(cell[0], 0) + cell[4]
        return found


async def review_figures(session: AsyncSession, reviews: CTE, settings: Settings) -> ReviewFigures:
    band = age_band_of(Death.age_at_death, settings).label("band")
    rows = (
        await session.execute(
            select(
                reviews.c.overall_rating,
                reviews.c.quality_of_records,
                reviews.c.avoidability,
                band,
                func.count(),
            )
            .join(Death, Death.id == reviews.c.death_id)
            .group_by(
                reviews.c.overall_rating, reviews.c.quality_of_records, reviews.c.avoidability, band
            )
        )
    ).all()
    return ReviewFigures(
        [
            (
                None if o is None else int(o),
                None if r is None else int(r),
                None if a is None else int(a),
                str(b),
                int(n),
            )
            for o, r, a, b, n in rows
        ]
    )


async def phase_figures(session: AsyncSession, reviews: CTE) -> dict[str, dict[int, int]]:
    found: dict[str, dict[int, int]] = {}
    rows = (
        await session.execute(
            select(ReviewPhaseRating.phase, ReviewPhaseRating.rating, func.count())
            .join(reviews, reviews.c.review_id == ReviewPhaseRating.review_id)
            .where(ReviewPhaseRating.phase != SjrPhase.overall.value)
            .group_by(ReviewPhaseRating.phase, ReviewPhaseRating.rating)
        )
    ).all()
    for phase, rating, count in rows:
        found.setdefault(str(phase), {})[int(rating)] = int(count)
    return found


async def problem_figures(
    session: AsyncSession, reviews: CTE
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """(problems by type and harm, distinct deaths with a problem of each type)."""
    parts = union_all(
        select(literal(1), ReviewProblem.problem_type, ReviewProblem.harm, func.count())
        .join(reviews, reviews.c.review_id == ReviewProblem.review_id)
        .group_by(ReviewProblem.problem_type, ReviewProblem.harm),
        select(
            literal(2),
            ReviewProblem.problem_type,
            cast(null(), String),
            func.count(func.distinct(reviews.c.death_id)),
        )
        .join(reviews, reviews.c.review_id == ReviewProblem.review_id)
        .group_by(ReviewProblem.problem_type),
    )
    harms: dict[str, dict[str, int]] = {}
    deaths: dict[str, int] = {}
    for part, kind, harm, count in (await session.execute(parts)).all():
        if part == 1:
            harms.setdefault(str(kind), {})[str(harm)] = int(count)
        else:
            deaths[str(kind)] = int(count)
    return harms, deaths


@dataclass
class QuestionFigures:
    question: ProgrammeQuestion
    answered: int = 0
    choices: dict[str, int] = field(default_factory=dict)
    scale: dict[int, int] = field(default_factory=dict)


async def question_figures(session: AsyncSession, programme: Programme) -> list[QuestionFigures]:
    """The first opinion's answers, of the cases in the cohort, by question and answer."""
    questions = (
        await session.scalars(
            select(ProgrammeQuestion)
            .where(ProgrammeQuestion.programme_id == programme.id)
            .order_by(ProgrammeQuestion.position)
        )
    ).all()
    found = {question.id: QuestionFigures(question) for question in questions}
    rows = (
        await session.execute(
            select(
                ProgrammeAnswer.question_id,
                ProgrammeAnswer.choice,
                ProgrammeAnswer.scale,
                func.count(),
            )
            .join(ProgrammeCase, ProgrammeCase.id == ProgrammeAnswer.case_id)
            .where(*live(programme), ProgrammeAnswer.opinion == 1)
            .group_by(ProgrammeAnswer.question_id, ProgrammeAnswer.choice, ProgrammeAnswer.scale)
        )
    ).all()
    for question_id, choice, scale, count in rows:
        figures = found[question_id]
        figures.answered += int(count)
        if choice is not None:
            figures.choices[str(choice)] = figures.choices.get(str(choice), 0) + int(count)
        if scale is not None:
            figures.scale[int(scale)] = figures.scale.get(int(scale), 0) + int(count)
    return list(found.values())


def programme_findings(programme: Programme) -> Any:
    """The findings of the programme's reviews, as a subquery (`theme_id`, `kind`,
    `death_id`): on the chosen cases' deaths, recorded against one of the programme's own
    reviews (a case's first or a second opinion) or, for a linked case, against a routine
    SJR."""
    own_reviews = (
        select(Review.id)
        .join(Referral, Referral.id == Review.referral_id)
        .where(Referral.programme_id == programme.id)
    )
    return (
        select(Finding.theme_id, Finding.kind, Finding.death_id)
        .join(
            ProgrammeCase,
            and_(ProgrammeCase.death_id == Finding.death_id, *live(programme)),
        )
        .where(
            ProgrammeCase.selected.is_(True),
            or_(
                Finding.review_id.in_(own_reviews),
                and_(ProgrammeCase.linked.is_(True), Finding.route == Route.sjr.value),
            ),
        )
        .subquery("programme_findings")
    )


async def theme_figures(
    session: AsyncSession, programme: Programme
) -> tuple[dict[uuid.UUID, dict[str, int]], dict[uuid.UUID, int]]:
    """(findings by theme and kind, distinct deaths by theme)."""
    findings = programme_findings(programme)
    parts = union_all(
        select(literal(1), findings.c.theme_id, findings.c.kind, func.count()).group_by(
            findings.c.theme_id, findings.c.kind
        ),
        select(
            literal(2),
            findings.c.theme_id,
            cast(null(), String),
            func.count(func.distinct(findings.c.death_id)),
        ).group_by(findings.c.theme_id),
    )
    kinds: dict[uuid.UUID, dict[str, int]] = {}
    deaths: dict[uuid.UUID, int] = {}
    for part, theme_id, kind, count in (await session.execute(parts)).all():
        if part == 1:
            kinds.setdefault(theme_id, {})[str(kind)] = int(count)
        else:
            deaths[theme_id] = int(count)
    return kinds, deaths


async def judgement_figures(session: AsyncSession, programme: Programme) -> dict[str, int]:
    """The cohort's deaths by the judgement of the ME's referral decision (where judged)."""
    rows = (
        await session.execute(
            select(ReferralJudgement.judgement, func.count())
            .join(ProgrammeCase, ProgrammeCase.death_id == ReferralJudgement.death_id)
            .where(*live(programme))
            .group_by(ReferralJudgement.judgement)
        )
    ).all()
    return {str(judgement): int(count) for judgement, count in rows}


@dataclass
class OpinionFigures:
    requested: int = 0
    given: int = 0
    agreed: dict[str, int] = field(default_factory=dict)  # same / one_apart / further_apart


async def opinion_figures(
    session: AsyncSession, programme: Programme, reviews: CTE
) -> OpinionFigures:
    """Second opinions on the cohort's chosen cases: asked for, given, and how far each given
    one's overall rating is from the case's first review's."""
    second = Review.__table__.alias("second_review")
    gap = func.abs(second.c.overall_rating - reviews.c.overall_rating)
    agreement = case(
        (second.c.id.is_(None), "waiting"),
        (or_(second.c.overall_rating.is_(None), reviews.c.overall_rating.is_(None)), "unrated"),
        (gap == 0, "same"),
        (gap == 1, "one_apart"),
        else_="further_apart",
    )
    rows = (
        await session.execute(
            select(agreement, func.count())
            .select_from(ProgrammeOpinion)
            .join(ProgrammeCase, ProgrammeCase.id == ProgrammeOpinion.case_id)
            .outerjoin(
                second,
                and_(
                    second.c.referral_id == ProgrammeOpinion.referral_id,
                    second.c.status == ReviewStatus.submitted.value,
                ),
            )
            .outerjoin(reviews, reviews.c.case_id == ProgrammeCase.id)
            .where(*live(programme), ProgrammeCase.selected.is_(True))
            .group_by(agreement)
        )
    ).all()
    figures = OpinionFigures()
    for bucket, count in rows:
        figures.requested += int(count)
        if bucket != "waiting":
            figures.given += int(count)
            figures.agreed[str(bucket)] = int(count)
    return figures


def _concern_logged(dialect: str) -> ColumnElement[bool]:
    """The ME recorded a concern of the bereaved: in the screening, or in a logged contact
    (issue 15: a concern in any contact counts as one raised)."""
    if dialect == "postgresql":
        in_contacts: ColumnElement[bool] = func.jsonb_path_exists(
            Screening.scrutiny, literal_column("'$.bereaved_contacts[*] ? (@.concerns != null)'")
        )
    else:
        contacts = (
            func.json_each(Screening.scrutiny, "$.bereaved_contacts")
            .table_valued("value")
            .alias("contact")
        )
        in_contacts = exists(
            select(literal(1))
            .select_from(contacts)
            .where(func.json_extract(contacts.c.value, "$.concerns").is_not(None))
        )
    return or_(Screening.bereaved_concerns.is_not(None), in_contacts)


async def relatives_figures(session: AsyncSession, reviews: CTE) -> dict[str, int]:
    """Of the reviewed cases: the ME's contact with the bereaved, and the reviewer's record."""
    dialect = dialect_of(session)
    case_row = ProgrammeCase.__table__.alias("relatives_case")
    row = (
        await session.execute(
            select(
                func.count(),
                count_where(Screening.bereaved_contacted.is_(True)),
                count_where(_concern_logged(dialect)),
                count_where(case_row.c.relatives_sought.is_not(None)),
                count_where(case_row.c.relatives_sought == "yes"),
                count_where(case_row.c.relatives_sought == "no"),
                count_where(case_row.c.relatives_sought == "not_applicable"),
                count_where(case_row.c.relatives_view.is_not(None)),
            )
            .select_from(reviews)
            .join(case_row, case_row.c.id == reviews.c.case_id)
            .outerjoin(Screening, Screening.death_id == reviews.c.death_id)
        )
    ).one()
    names = ("reviewed", "contacted", "concerns", "recorded", "yes", "no", "not_applicable", "view")
    return {name: int(value) for name, value in zip(names, row, strict=True)}


@dataclass
class RecommendationFigures:
    recommendation: ProgrammeRecommendation
    actions: int = 0
    complete: int = 0
    overdue: int = 0


async def recommendation_figures(
    session: AsyncSession, programme: Programme
) -> list[RecommendationFigures]:
    recommendations = (
        await session.scalars(
            select(ProgrammeRecommendation)
            .where(ProgrammeRecommendation.programme_id == programme.id)
            .order_by(ProgrammeRecommendation.position)
        )
    ).all()
    found = {r.id: RecommendationFigures(r) for r in recommendations}
    if not found:
        return []
    rows = (
        await session.execute(
            select(
                ProgrammeRecommendationAction.recommendation_id,
                func.count(),
                count_where(Action.status == int(ActionStatus.complete)),
                count_where(overdue_clause(uk_today())),
            )
            .join(Action, Action.id == ProgrammeRecommendationAction.action_id)
            .where(ProgrammeRecommendationAction.recommendation_id.in_(list(found)))
            .group_by(ProgrammeRecommendationAction.recommendation_id)
        )
    ).all()
    for recommendation_id, actions, done, late in rows:
        figures = found[recommendation_id]
        figures.actions, figures.complete, figures.overdue = int(actions), int(done), int(late)
    return list(found.values())
