"""The review programme report (issue 17): a clinical audit's figures for its committee, from
the cohort to the action plan, in the shape every report takes (JSON, CSV, XLSX, the board
page). Definitions of every figure: docs/programmes.md, "The programme report".

Each case counts by its first review (its own programme referral's, or the routine SJR a
linked case counts); second opinions are set beside them, never counted instead. The counting
is app.reports.programme_figures'; this module lays the cells out as tables."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.enums import Harm, ProblemType, SjrPhase
from app.kit.sql import load_one
from app.kit.time import now
from app.models import ActionPlan, Programme, ProgrammeCase, Theme
from app.programmes.case_reviews import first_reviews
from app.programmes.cohort import count_by_rule
from app.programmes.rules import Rules
from app.reports.care_organisations import organisation_tables
from app.reports.filters import age_bands
from app.reports.model import Column, Period, Report, Table, percent
from app.reports.programme_figures import (
    CohortFigures,
    ReviewFigures,
    cohort_figures,
    judgement_figures,
    opinion_figures,
    phase_figures,
    problem_figures,
    question_figures,
    recommendation_figures,
    relatives_figures,
    review_figures,
    theme_figures,
)
from app.reports.programme_tables import (
    answers_table,
    cohort_table,
    definition_table,
    judgements_table,
    opinions_table,
    recommendations_table,
    relatives_table,
    selection_table,
)
from app.reports.ratings import RATINGS, distribution, distribution_columns, shares_table
from app.reports.themes import KIND_LABELS, KINDS
from app.reviews.labels import label_table

KEY = "programme"
FIRST = "Cases whose first review rates"
PHASES = [phase for phase in SjrPhase if phase is not SjrPhase.overall]


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def programme_period(programme: Programme) -> Period:
    return Period(
        programme.period_start,
        programme.period_end,
        f"{_day(programme.period_start)} to {_day(programme.period_end)}",
        "range",
    )


async def load_programme(session: AsyncSession, programme_id: uuid.UUID) -> Programme:
    return await load_one(session, Programme, programme_id, "programme")


def overall_table(counts: dict[int, int], care: dict[int, str], unit: str) -> Table:
    rated = sum(counts.values())
    return Table(
        "overall",
        "Overall care rating",
        [
            Column("rating", "Rating", "int", "1 very poor to 5 excellent."),
            Column("label", "Care", "text"),
            Column("deaths", "Deaths", "int", f"{unit} overall care so."),
            Column("deaths_pct", "% of rated", "percent", "Of the deaths rated."),
        ],
        [
            {
                "rating": r,
                "label": care.get(r, str(r)),
                "deaths": counts.get(r, 0),
                "deaths_pct": percent(counts.get(r, 0), rated),
            }
            for r in RATINGS
        ],
    )


def _phases(phases: dict[str, dict[int, int]], care: dict[int, str]) -> Table:
    return Table(
        "phases",
        "Care rating by phase of care",
        [
            Column("phase", "Phase", "text", "The SJR phase of care."),
            *distribution_columns(care, "the phase", FIRST),
        ],
        [
            {"phase": p.value.replace("_", " "), **distribution(phases.get(p.value, {}))}
            for p in PHASES
        ],
        note="A phase that did not apply to a death is not rated, so 'rated' differs by phase.",
    )


def _age_bands(reviews: ReviewFigures, care: dict[int, str], settings: Settings) -> Table:
    grouped = reviews.by(3)
    return Table(
        "by_age_band",
        "Overall care rating by age band",
        [
            Column("age_band", "Age band", "text", "Age at death."),
            *distribution_columns(care, "overall care", FIRST),
        ],
        [
            {"age_band": band.label, **distribution(grouped.get(band.label, {}))}
            for band in age_bands(settings.report_age_bands)
        ],
    )


def _records(reviews: ReviewFigures, care: dict[int, str], records: dict[int, str]) -> Table:
    """Quality of records (rows) against overall care (columns)."""
    rows = []
    for value in [*RATINGS, None]:
        row: dict[str, Any] = {
            "records": f"{value} {records.get(value, '')}".strip() if value else "Not rated",
            **{f"care_{r}": reviews.total(records=value, overall=r) for r in RATINGS},
            "care_not_rated": reviews.total(records=value, overall=None),
        }
        row["total"] = sum(v for k, v in row.items() if k.startswith("care_"))
        if value is None and not row["total"]:
            continue
        rows.append(row)
    totals: dict[str, Any] = {"records": "All"}
    for key in [*(f"care_{r}" for r in RATINGS), "care_not_rated", "total"]:
        totals[key] = sum(int(row[key]) for row in rows)
    return Table(
        "records_vs_care",
        "Quality of records against quality of care",
        [
            Column(
                "records",
                "Quality of records",
                "text",
                "The first review's rating of the records, 1 very poor to 5 excellent.",
            ),
            *(
                Column(
                    f"care_{r}",
                    f"Care {r} {care.get(r, '')}".strip(),
                    "int",
                    f"Cases whose first review rates overall care {r}.",
                )
                for r in RATINGS
            ),
            Column(
                "care_not_rated", "Care not rated", "int", "First reviews with no overall rating."
            ),
            Column(
                "total",
                "Total",
                "int",
                "Cases with a submitted first review at this quality of records.",
            ),
        ],
        [*rows, totals],
        note="Each reviewed case once, in the cell of its records and its overall care.",
    )


def _avoidability(reviews: ReviewFigures, labels: dict[int, str]) -> Table:
    scored = sum(reviews.total(avoidability=score) for score in range(1, 7))
    return Table(
        "avoidability_scores",
        "Avoidability of death",
        [
            Column(
                "score", "Score", "int", "1 definitely avoidable to 6 definitely not avoidable."
            ),
            Column("label", "Judgement", "text"),
            Column("deaths", "Deaths", "int", "Cases whose first review scores avoidability so."),
            Column("deaths_pct", "% of scored", "percent", "Of the cases scored."),
        ],
        [
            {
                "score": score,
                "label": labels.get(score, str(score)),
                "deaths": reviews.total(avoidability=score),
                "deaths_pct": percent(reviews.total(avoidability=score), scored),
            }
            for score in range(1, 7)
        ],
        note="Scores 1-3: more likely than not due to problems in care.",
    )


def _problems(harms: dict[str, dict[str, int]], deaths: dict[str, int]) -> Table:
    rows: list[dict[str, Any]] = [
        {
            "problem_type": kind.value,
            "deaths": deaths.get(kind.value, 0),
            "problems": sum(harms.get(kind.value, {}).values()),
            **{f"harm_{harm.value}": harms.get(kind.value, {}).get(harm.value, 0) for harm in Harm},
        }
        for kind in ProblemType
    ]
    total: dict[str, Any] = {"problem_type": "All types", "deaths": None}
    for key in ("problems", *(f"harm_{harm.value}" for harm in Harm)):
        total[key] = sum(int(row[key]) for row in rows)
    return Table(
        "problems",
        "Problems in care by type and harm",
        [
            Column("problem_type", "Type of problem", "text", "The SJR's type of problem in care."),
            Column(
                "deaths",
                "Deaths",
                "int",
                "Cases whose first review records a problem of this type.",
            ),
            Column(
                "problems", "Problems", "int", "Problems of this type the first reviews record."
            ),
            *(
                Column(
                    f"harm_{harm.value}",
                    f"Harm: {harm.value}",
                    "int",
                    f"Those that led to harm: {harm.value}.",
                )
                for harm in Harm
            ),
        ],
        [*rows, total],
        note="A case with two problems of a type counts once under Deaths and twice under "
        "Problems.",
    )


async def _themes(session: AsyncSession, programme: Programme) -> Table:
    kinds, deaths = await theme_figures(session, programme)
    names = (
        {
            theme.id: theme.name
            for theme in (
                await session.scalars(select(Theme).where(Theme.id.in_(list(kinds))))
            ).all()
        }
        if kinds
        else {}
    )
    ordered = sorted(kinds, key=lambda t: (-sum(kinds[t].values()), names.get(t, "").lower()))
    return Table(
        "themes",
        "Themes of the programme's findings",
        [
            Column("theme", "Theme", "text"),
            Column(
                "findings",
                "Findings",
                "int",
                "Findings under the theme recorded against the programme's reviews.",
            ),
            Column("deaths", "Deaths", "int", "Cases with such a finding."),
            *(Column(kind, KIND_LABELS[kind], "int") for kind in KINDS),
        ],
        [
            {
                "theme": names.get(theme_id, str(theme_id)),
                "findings": sum(kinds[theme_id].values()),
                "deaths": deaths.get(theme_id, 0),
                **{kind: kinds[theme_id].get(kind, 0) for kind in KINDS},
            }
            for theme_id in ordered
        ],
    )


async def build_programme_report(
    session: AsyncSession, programme_id: uuid.UUID, settings: Settings
) -> Report:
    programme = await load_programme(session, programme_id)
    if session.get_bind().dialect.name == "postgresql":
        # Every figure joins the programme's first reviews (a few thousand) to a child table of
        # all reviews (phase ratings, problems: millions at scale). At the default
        # random_page_cost (4, spinning disks) the planner hashed the whole child table for
        # each figure; probing its review_id index is what is cheap here (docs/programmes.md,
        # "How it is computed": 2.1 s → 1.5 s at 1,000,000 deaths). This transaction only.
        await session.execute(text("SET LOCAL random_page_cost = 1.1"))
    reviews = first_reviews(ProgrammeCase.programme_id == programme.id).cte("first_reviews")
    labels = await label_table(session)
    care = labels.get("care_rating", {})
    cohort = await cohort_figures(session, programme)
    scores = await review_figures(session, reviews, settings)
    overall = _overall_counts(scores)
    rule_counts, rules = await count_by_rule(
        session, programme, Rules.of(programme), session.get_bind().dialect.name
    )
    plan = await session.get(ActionPlan, programme.plan_id) if programme.plan_id else None
    harms, problem_deaths = await problem_figures(session, reviews)
    return Report(
        key=KEY,
        title=f"Review programme: {programme.name}",
        period=programme_period(programme),
        filters={"programme_id": str(programme.id)},
        tables=[
            definition_table(programme, plan),
            selection_table(rule_counts, rules, cohort),
            cohort_table(cohort, scores),
            overall_table(overall, care, FIRST),
            shares_table(overall, care, FIRST),
            _phases(await phase_figures(session, reviews), care),
            _age_bands(scores, care, settings),
            *await organisation_tables(session, reviews, care, "first review"),
            _records(scores, care, labels.get("records_quality", {})),
            _avoidability(scores, labels.get("avoidability", {})),
            answers_table(await question_figures(session, programme)),
            _problems(harms, problem_deaths),
            await _themes(session, programme),
            judgements_table(await judgement_figures(session, programme), cohort),
            opinions_table(await opinion_figures(session, programme, reviews)),
            relatives_table(await relatives_figures(session, reviews)),
            recommendations_table(
                await recommendation_figures(session, programme), programme, plan
            ),
        ],
        generated_at=now(),
        notes=[
            "The cohort is the deaths of the period that meet the programme's rules; those chosen "
            "for review are counted by their first review: the programme's own, or the routine "
            "SJR a case counts instead of being reviewed twice. Second opinions are set beside "
            "the first reviews, never counted instead.",
            "Percentages are to one decimal place (halves rounded up); blank where there is "
            "nothing to divide by.",
        ],
    )


def _overall_counts(scores: ReviewFigures) -> dict[int, int]:
    counts: dict[int, int] = {}
    for overall, _, _, _, count in scores.cells:
        if overall is not None:
            counts[overall] = counts.get(overall, 0) + count
    return counts


__all__ = ["KEY", "CohortFigures", "build_programme_report", "programme_period"]
