"""The Learning from Deaths dashboard (NHS England's quarterly board format): each month of the
financial year, the quarter to date and the year to date. Definitions: docs/reports.md.

Every figure counts deaths, by the month of death (the UK local date): a death reviewed in
June that died in April counts in April, so earlier months fill in as reviews finish, as on
the national dashboard. One statement per request; quarter and year to date are sums of the
months, which is exact because each death falls in one month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, literal, not_, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import BadRequest
from app.kit.enums import LederStatus, ReviewStatus, Route
from app.kit.time import now
from app.models import Review
from app.reports.cohort import (
    AVOIDABLE_MAX,
    cohort,
    count_where,
    deaths_with_referral,
    review_figures,
)
from app.reports.filters import ReportFilters, today
from app.reports.model import (
    Column,
    Period,
    Report,
    Table,
    financial_year,
    financial_year_of,
    percent,
)
from app.reviews.labels import label_table

KEY = "lfd-dashboard"
FILTERS = ("site", "specialty", "age_band")
# Case record review: a structured review of the records: an SJR (either stage) or a
# specialty M&M review recorded with this service's structured outcome.
CASE_RECORD_REVIEW_ROUTES = (Route.sjr.value, Route.mm.value)

MEASURES = (
    "all_deaths",
    "deaths",
    "reviewed",
    "investigated",
    "avoidable",
    *(f"score_{score}" for score in range(1, 7)),
    "ld_deaths",
    "ld_notified",
    "ld_completed",
    "ld_avoidable",
)


@dataclass(frozen=True)
class Span:
    """What the dashboard covers: its financial year, up to and including `as_of`."""

    year: Period
    as_of: date
    months: list[date]
    quarter_start: date


def span_of(period: Period, today_: date) -> Span:
    """The financial year of the asked period, up to the earlier of the period's end and
    today. `period=2025-26-Q2` gives April to September with Q2 to date; a month gives the
    year up to that month's end. A period that starts in the future gives its first month,
    all zeros."""
    if period.kind == "range":
        raise BadRequest(
            "The dashboard covers a financial year (period=2025-26), a quarter (2025-26-Q2) "
            "or a month (2025-07), up to its end: not a start and end range.",
            errors=[{"pointer": "query:/start", "code": "range_not_supported"}],
        )
    year = financial_year(financial_year_of(period.start))
    as_of = max(min(period.end, today_), period.start)
    months = [month for month in year.months() if month <= as_of]
    # Quarters start in April, July, October and January, always in as_of's calendar year.
    quarter_start = date(as_of.year, (4, 7, 10, 1)[(as_of.month - 4) % 12 // 3], 1)
    return Span(year, as_of, months, quarter_start)


async def _monthly_counts(
    session: AsyncSession, settings: Settings, filters: ReportFilters, span: Span
) -> dict[date, dict[str, int]]:
    """Every measure of every month, from one statement of three grouped parts that each
    count by day of death (the days are added up into months here: a year is at most 366
    rows, and grouping by a date is cheaper than by its year and month): the cohort's deaths;
    the review-derived figures, from one pass over the cohort's reviews; and the deaths
    investigated. Each part gives 0 for the measures of the others, so a month's figures are
    the sums of its days' rows."""
    first, last = span.year.start, span.as_of
    deaths = cohort(settings, filters, first, last)
    submitted = Review.status == ReviewStatus.submitted.value
    leder = and_(Review.route == Route.leder.value, submitted)
    figures = review_figures(
        deaths,
        first,
        last,
        {
            "reviewed": and_(Review.route.in_(CASE_RECORD_REVIEW_ROUTES), submitted),
            "notified": and_(leder, Review.notified_at.is_not(None)),
            "completed": and_(leder, Review.external_status == LederStatus.completed.value),
        },
        "died_on",
        "learning_disability",
        "autism",
    )
    psii = deaths_with_referral(deaths, first, last, Route.psii, "psii")

    def part(died_on: Any, counted: dict[str, Any]) -> Select[Any]:
        return select(
            died_on.label("died_on"),
            *(counted.get(name, literal(0)).label(name) for name in MEASURES),
        ).group_by(died_on)

    ld = or_(deaths.c.learning_disability, deaths.c.autism)
    in_ld = or_(figures.c.learning_disability, figures.c.autism)
    avoidable = figures.c.avoidability <= AVOIDABLE_MAX
    query = union_all(
        part(
            deaths.c.died_on,
            {
                "all_deaths": func.count(),
                "deaths": count_where(not_(ld)),
                "ld_deaths": count_where(ld),
            },
        ).select_from(deaths),
        part(
            figures.c.died_on,
            {
                "reviewed": count_where(not_(in_ld), figures.c.reviewed == 1),
                "avoidable": count_where(not_(in_ld), avoidable),
                **{
                    f"score_{score}": count_where(not_(in_ld), figures.c.avoidability == score)
                    for score in range(1, 7)
                },
                "ld_notified": count_where(in_ld, figures.c.notified == 1),
                "ld_completed": count_where(in_ld, figures.c.completed == 1),
                "ld_avoidable": count_where(in_ld, avoidable),
            },
        ).select_from(figures),
        part(deaths.c.died_on, {"investigated": count_where(not_(ld))}).select_from(
            deaths.join(psii, psii.c.death_id == deaths.c.id)
        ),
    )
    counts: dict[date, dict[str, int]] = {}
    for row in (await session.execute(query)).mappings():
        died_on = row["died_on"]
        month = counts.setdefault(date(died_on.year, died_on.month, 1), dict.fromkeys(MEASURES, 0))
        for name in MEASURES:
            month[name] += int(row[name] or 0)
    return counts


def _sum(months: list[dict[str, int]]) -> dict[str, int]:
    return {name: sum(month[name] for month in months) for name in MEASURES}


def _with_shares(label: str, kind: str, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "period": label,
        "row_kind": kind,
        **counts,
        "reviewed_pct": percent(counts["reviewed"], counts["deaths"]),
        "avoidable_pct": percent(counts["avoidable"], counts["reviewed"]),
        "scored": sum(counts[f"score_{score}"] for score in range(1, 7)),
        "ld_notified_pct": percent(counts["ld_notified"], counts["ld_deaths"]),
    }


PERIOD = Column("period", "Period", "text", "The month of death, or the quarter or year to date.")
ROW_KIND = Column("row_kind", "Row", "text", "month, quarter_to_date or year_to_date.")


def _tables(rows: list[dict[str, Any]], avoidability: dict[int, str]) -> list[Table]:
    deaths = Table(
        "deaths",
        "Deaths, case record reviews and deaths more likely than not due to problems in care",
        [
            PERIOD,
            ROW_KIND,
            Column(
                "all_deaths",
                "All deaths in scope",
                "int",
                "Deaths in scope (place of death, see docs/reports.md), including people with "
                "a learning disability or autism.",
            ),
            Column(
                "deaths",
                "Deaths in scope (excluding LD and autism)",
                "int",
                "Deaths in scope of people without a recorded learning disability or autism; "
                "those are reported under LeDeR below, as on the national dashboard.",
            ),
            Column(
                "reviewed",
                "Deaths reviewed (case record review)",
                "int",
                "Of those deaths, those with a submitted SJR (stage 1 or 2) or M&M review.",
            ),
            Column("reviewed_pct", "% reviewed", "percent", "Deaths reviewed / deaths."),
            Column(
                "investigated",
                "Deaths investigated (PSII)",
                "int",
                "Of those deaths, those with a patient safety incident investigation "
                "referral that was not declined or cancelled.",
            ),
            Column(
                "avoidable",
                "More likely than not due to problems in care",
                "int",
                "Of those deaths, those whose final SJR (stage 2 if any, else stage 1; latest "
                "values after amendment) scores avoidability 1-3.",
            ),
            Column(
                "avoidable_pct",
                "% of reviewed deaths",
                "percent",
                "More likely than not due to problems in care / deaths reviewed.",
            ),
        ],
        rows,
    )
    scores = Table(
        "avoidability",
        "Deaths by avoidability score of the final SJR (excluding LD and autism)",
        [
            PERIOD,
            ROW_KIND,
            *(
                Column(
                    f"score_{score}",
                    f"Score {score}: {avoidability.get(score, '')}".rstrip(": "),
                    "int",
                    f"Deaths whose final SJR scores avoidability {score}.",
                )
                for score in range(1, 7)
            ),
            Column("scored", "Deaths with a scored SJR", "int", "Scores 1-6 together."),
        ],
        rows,
    )
    leder = Table(
        "ld_autism",
        "Deaths of people with a learning disability or autism (LeDeR)",
        [
            PERIOD,
            ROW_KIND,
            Column(
                "ld_deaths",
                "Deaths in scope",
                "int",
                "Deaths in scope of people with a recorded learning disability or autism.",
            ),
            Column(
                "ld_notified",
                "Notified to LeDeR",
                "int",
                "Of those deaths, those with a submitted LeDeR review giving the date LeDeR "
                "was notified.",
            ),
            Column("ld_notified_pct", "% notified", "percent", "Notified / deaths."),
            Column(
                "ld_completed",
                "LeDeR reviews completed",
                "int",
                "Of those deaths, those whose LeDeR review status is completed.",
            ),
            Column(
                "ld_avoidable",
                "More likely than not due to problems in care",
                "int",
                "Of those deaths, those whose final SJR scores avoidability 1-3.",
            ),
        ],
        rows,
    )
    for table in (deaths, scores, leder):
        table.rows = [{column.key: row[column.key] for column in table.columns} for row in rows]
    return [deaths, scores, leder]


async def build_lfd_dashboard(
    session: AsyncSession, period: Period, filters: ReportFilters, settings: Settings
) -> Report:
    filters.require_only("lfd-dashboard", *FILTERS)
    span = span_of(period, today())
    counts = await _monthly_counts(session, settings, filters, span)
    zero = dict.fromkeys(MEASURES, 0)
    monthly = [counts.get(month, zero) for month in span.months]
    rows = [
        _with_shares(month.strftime("%b %Y"), "month", figures)
        for month, figures in zip(span.months, monthly, strict=True)
    ]
    quarter = [f for m, f in zip(span.months, monthly, strict=True) if m >= span.quarter_start]
    quarter_number = (span.quarter_start.month - 4) % 12 // 3 + 1
    rows.append(_with_shares(f"Q{quarter_number} to date", "quarter_to_date", _sum(quarter)))
    rows.append(_with_shares("Year to date", "year_to_date", _sum(monthly)))
    labels = (await label_table(session)).get("avoidability", {})
    return Report(
        key=KEY,
        title="Learning from Deaths dashboard",
        period=Period(span.year.start, span.as_of, period.label, period.kind),
        filters=filters.as_dict(),
        tables=_tables(rows, labels),
        generated_at=now(),
        notes=[
            f"Financial year {span.year.label}, deaths from {span.year.start:%d %B %Y} to "
            f"{span.as_of:%d %B %Y} (UK local dates of death).",
            "Figures count deaths by month of death; reviews finished later fill in earlier "
            "months.",
        ],
    )
