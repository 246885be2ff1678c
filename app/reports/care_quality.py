"""Care quality from structured judgement reviews (DESIGN.md section 9). Definitions:
docs/reports.md.

The unit is a death, judged by its final SJR: of its submitted SJRs the highest stage (a
stage-2 review supersedes stage 1), its latest values after amendment. Deaths are those in
scope whose local date of death lies in the period. Counting happens in the database (GROUP BY
rating, phase and group, in one statement); Python only lays the counted cells out as rows.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import SmallInteger, String, cast, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.enums import Route, SjrPhase
from app.kit.time import now
from app.models import Death, ReviewPhaseRating
from app.reports.care_organisations import organisation_tables
from app.reports.cohort import (
    age_band_of,
    cohort,
    deaths_with_referral,
    final_sjr,
    month_of,
)
from app.reports.filters import ReportFilters, age_bands
from app.reports.model import Column, Period, Report, Table, percent
from app.reports.ratings import RATINGS, distribution, distribution_columns, shares_table
from app.reviews.labels import label_table

KEY = "care-quality"
FILTERS = ("site", "specialty", "age_band")
NOT_RECORDED = "(not recorded)"
PHASE_ORDER = [phase for phase in SjrPhase if phase is not SjrPhase.overall]


class Grouping(StrEnum):
    month = "month"
    specialty = "specialty"
    site = "site"
    age_band = "age_band"
    # Not a column of the death: the phase ratings and problems by the organisation each names
    # (app.reports.care_organisations).
    care_organisation = "care_organisation"


def _group_columns(grouping: Grouping) -> tuple[str, ...]:
    """The cohort column a grouping is computed from (none by organisation of care)."""
    return {
        Grouping.month: ("died_on",),
        Grouping.specialty: ("specialty_at_death",),
        Grouping.site: ("site",),
        Grouping.age_band: ("age_at_death",),
        Grouping.care_organisation: (),
    }[grouping]


def _group_key(grouping: Grouping, final: Any, settings: Settings) -> list[Any]:
    """The grouping key of the final SJRs: year and month of death, one label, or none."""
    if grouping is Grouping.care_organisation:
        return []
    if grouping is Grouping.month:
        return list(month_of(final.c.died_on))
    if grouping is Grouping.age_band:
        return [age_band_of(final.c.age_at_death, settings).label("grp")]
    return [final.c[_group_columns(grouping)[0]].label("grp")]


async def build_care_quality(
    session: AsyncSession,
    period: Period,
    filters: ReportFilters,
    settings: Settings,
    by: Grouping = Grouping.month,
) -> Report:
    filters.require_only(KEY, *FILTERS)
    filters.band(settings)  # an unknown band is a 400 before any query

    deaths = cohort(
        settings, filters, period.start, period.end, Death.site, Death.specialty_at_death
    )
    final = final_sjr(deaths, period.start, period.end, *_group_columns(by))
    referred = deaths_with_referral(deaths, period.start, period.end, Route.sjr, "sjr_referred")

    # One statement of four parts, each counting what it alone can say: the cohort's deaths,
    # those referred for SJR, the final SJRs by group and overall rating, and the final SJRs'
    # phase ratings by phase and rating. Only the final SJRs are grouped, so no part joins
    # every death of the period to anything; the final SJRs are ranked once (a CTE).
    keys = _group_key(by, final, settings)
    no_key = [cast(null(), key.type) for key in keys]
    no_phase = cast(null(), String)
    no_rating = cast(null(), SmallInteger)
    parts = union_all(
        select(literal(1), *no_key, no_rating, no_phase, func.count()).select_from(deaths),
        select(literal(2), *no_key, no_rating, no_phase, func.count()).select_from(referred),
        select(literal(3), *keys, final.c.overall_rating, no_phase, func.count()).group_by(
            *keys, final.c.overall_rating
        ),
        select(literal(4), *no_key, ReviewPhaseRating.rating, ReviewPhaseRating.phase, func.count())
        .join(final, final.c.review_id == ReviewPhaseRating.review_id)
        .where(ReviewPhaseRating.phase != SjrPhase.overall.value)
        .group_by(ReviewPhaseRating.phase, ReviewPhaseRating.rating),
    )

    summary = {"deaths": 0, "referred": 0, "reviewed": 0, "rated": 0}
    overall: dict[int, int] = {}
    grouped: dict[Any, dict[int, int]] = {}
    phases: dict[str, dict[int, int]] = {}
    for row in (await session.execute(parts)).all():
        part, *key_parts, rating, phase, count = row
        count = int(count)
        if part == 1:
            summary["deaths"] += count
        elif part == 2:
            summary["referred"] += count
        elif part == 4:
            phases.setdefault(phase, {})[int(rating)] = count
        else:
            summary["reviewed"] += count
            if rating is None:
                continue
            summary["rated"] += count
            overall[int(rating)] = overall.get(int(rating), 0) + count
            if not key_parts:
                continue
            group = (
                date(int(key_parts[0]), int(key_parts[1]), 1)
                if by is Grouping.month
                else key_parts[0]
            )
            ratings = grouped.setdefault(group, {})
            ratings[int(rating)] = ratings.get(int(rating), 0) + count

    labels = await label_table(session)
    care = labels.get("care_rating", {})
    return Report(
        key=KEY,
        title="Quality of care (structured judgement reviews)",
        period=period,
        filters={**filters.as_dict(), "by": by.value},
        tables=[
            _summary_table(summary),
            _overall_table(overall, care),
            shares_table(overall, care),
            _phase_table(phases, care),
            *(
                await organisation_tables(session, final, care)
                if by is Grouping.care_organisation
                else [_group_table(by, grouped, care, period, settings)]
            ),
        ],
        generated_at=now(),
        notes=[
            "Each death counts once, judged by its final SJR: stage 2 where there is one, with "
            "its latest values after any amendment.",
            "Percentages are of the deaths rated, to one decimal place (halves rounded up); "
            "blank where none were rated.",
        ],
    )


def _summary_table(row: dict[str, int]) -> Table:
    referred, reviewed, rated = int(row["referred"]), int(row["reviewed"]), int(row["rated"])
    return Table(
        "summary",
        "Deaths referred for SJR, reviewed and rated",
        [
            Column("deaths", "Deaths in scope", "int", "Deaths in scope in the period."),
            Column(
                "referred",
                "Referred for SJR",
                "int",
                "Deaths with an SJR referral (any stage) that was not declined or cancelled.",
            ),
            Column("reviewed", "Reviewed", "int", "Deaths with a submitted SJR."),
            Column(
                "rated",
                "Rated",
                "int",
                "Deaths whose final SJR gives an overall care rating.",
            ),
            Column(
                "awaiting_review",
                "Referred, not yet reviewed",
                "int",
                "Referred minus reviewed (never below zero).",
            ),
            Column("reviewed_pct", "% of referred reviewed", "percent", "Reviewed / referred."),
        ],
        [
            {
                "deaths": int(row["deaths"]),
                "referred": referred,
                "reviewed": reviewed,
                "rated": rated,
                "awaiting_review": max(referred - reviewed, 0),
                "reviewed_pct": percent(reviewed, referred),
            }
        ],
    )


def _overall_table(overall: dict[int, int], care: dict[int, str]) -> Table:
    rated = sum(overall.values())
    return Table(
        "overall",
        "Overall care rating",
        [
            Column("rating", "Rating", "int", "1 very poor to 5 excellent."),
            Column("label", "Care", "text"),
            Column("deaths", "Deaths", "int", "Deaths whose final SJR rates overall care so."),
            Column("deaths_pct", "% of rated", "percent", "Of the deaths rated."),
        ],
        [
            {
                "rating": r,
                "label": care.get(r, str(r)),
                "deaths": overall.get(r, 0),
                "deaths_pct": percent(overall.get(r, 0), rated),
            }
            for r in RATINGS
        ],
        note="Shares: " + _shares_text(distribution(overall)),
    )


def _shares_text(cells: dict[str, Any]) -> str:
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}%"

    return (
        f"adequate or better {cells['adequate_or_better']} "
        f"({show(cells['adequate_or_better_pct'])}), good or excellent "
        f"{cells['good_or_excellent']} ({show(cells['good_or_excellent_pct'])}), poor or "
        f"very poor {cells['poor_or_very_poor']} ({show(cells['poor_or_very_poor_pct'])}) "
        f"of {cells['rated']} rated."
    )


def _phase_table(phases: dict[str, dict[int, int]], care: dict[int, str]) -> Table:
    return Table(
        "phases",
        "Care rating by phase of care",
        [
            Column("phase", "Phase", "text", "The SJR phase of care."),
            *distribution_columns(care, "the phase"),
        ],
        [
            {"phase": phase.value.replace("_", " "), **distribution(phases.get(phase, {}))}
            for phase in PHASE_ORDER
        ],
        note="A phase that did not apply to a death is not rated, so 'rated' differs by phase.",
    )


def _group_table(
    by: Grouping,
    grouped: dict[Any, dict[int, int]],
    care: dict[int, str],
    period: Period,
    settings: Settings,
) -> Table:
    if by is Grouping.month:
        keys: list[Any] = period.months()
        label_column = Column("month", "Month of death", "month")
    elif by is Grouping.age_band:
        keys = [band.label for band in age_bands(settings.report_age_bands)]
        label_column = Column("age_band", "Age band", "text", "Age at death.")
    else:
        keys = sorted(grouped, key=lambda key: (key is None, str(key or "").lower()))
        label_column = Column(
            by.value,
            "Specialty at death" if by is Grouping.specialty else "Site",
            "text",
        )
    rows = []
    for key in keys:
        shown: Any = key
        if key is None:
            shown = NOT_RECORDED
        elif isinstance(key, date):
            shown = key.strftime("%Y-%m")
        rows.append({label_column.key: shown, **distribution(grouped.get(key, {}))})
    return Table(
        f"by_{by.value}",
        f"Overall care rating by {label_column.label.lower()}",
        [label_column, *distribution_columns(care, "overall care")],
        rows,
    )
