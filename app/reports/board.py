"""Which charts the board page draws, chosen by the tables a report has.

A chart is drawn for a table by its key (and only when the columns it needs are there), so a
report that gains a table gains its chart, and a renamed column drops a chart rather than
drawing a wrong one. The numbers come from the table's rows as they are: the page draws what
the JSON says, nothing recomputed.

Rows with a `row_kind` (the dashboard's months, then "quarter_to_date" and "year_to_date")
chart their months over time and their year-to-date row as a distribution.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.reports.charts import PALETTE, Series, bar_chart, column_chart, no_data_chart
from app.reports.model import Report, Table

MONTH_LABEL = re.compile(r"^([A-Z][a-z]{2}) (\d{2})(\d{2})$")  # "Apr 2025"
THEMES_SHOWN = 12


@dataclass(frozen=True)
class Figure:
    """One chart on the page: its heading, the SVG, a caption, and whether it spans the
    page's width (else two sit side by side)."""

    key: str
    title: str
    svg: str
    caption: str = ""
    wide: bool = True


def _has(table: Table, *keys: str) -> bool:
    present = {column.key for column in table.columns}
    return all(key in present for key in keys)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def month_rows(table: Table) -> list[dict[str, Any]]:
    """The rows of single months (all rows when the table has no row_kind)."""
    if not _has(table, "row_kind"):
        return list(table.rows)
    return [row for row in table.rows if row.get("row_kind") == "month"]


def year_to_date(table: Table) -> dict[str, Any] | None:
    for row in table.rows:
        if row.get("row_kind") == "year_to_date":
            return row
    return None


def short_month(label: Any) -> str:
    """'Apr 2025' as 'Apr 25', so twelve months fit across a printed page."""
    text = str(label)
    match = MONTH_LABEL.match(text)
    return f"{match.group(1)} {match.group(3)}" if match else text


def _deaths(table: Table) -> list[Figure]:
    if not _has(table, "period", "deaths", "reviewed"):
        return []
    months = month_rows(table)
    categories = [short_month(row["period"]) for row in months]
    series = [
        Series("Deaths in scope", [_count(row["deaths"]) for row in months], PALETTE[0]),
        Series("Deaths reviewed", [_count(row["reviewed"]) for row in months], PALETTE[1]),
    ]
    if _has(table, "avoidable"):
        series.append(
            Series(
                "More likely than not due to problems in care",
                [_count(row["avoidable"]) for row in months],
                PALETTE[3],
            )
        )
    title = "Deaths in scope and deaths reviewed, by month of death"
    svg = column_chart(title, categories, series, y_label="Deaths", height=270)
    return [
        Figure(
            "deaths-by-month",
            title,
            svg,
            "Deaths of people without a recorded learning disability or autism (those are "
            "under LeDeR). Reviews finished later fill in earlier months.",
        )
    ]


def _avoidability(table: Table) -> list[Figure]:
    scores = [f"score_{score}" for score in range(1, 7)]
    if not _has(table, *scores):
        return []
    labels = {column.key: column.label for column in table.columns}
    total = year_to_date(table)
    if total is None:
        total = {key: sum(_count(row.get(key)) for row in month_rows(table)) for key in scores}
    values = [_count(total.get(key)) for key in scores]
    # One bar per score; scores 1-3 (more likely than not avoidable) and 4-6 in two colours,
    # as two series each holding its own scores, so the legend explains the colours.
    title = "Deaths by avoidability score of the final SJR, year to date"
    svg = bar_chart(
        title,
        [labels[key] for key in scores],
        [
            Series(
                "Scores 1-3: more likely than not due to problems in care",
                [value if index < 3 else None for index, value in enumerate(values)],
                PALETTE[3],
            ),
            Series(
                "Scores 4-6",
                [value if index >= 3 else None for index, value in enumerate(values)],
                PALETTE[0],
            ),
        ],
        stacked=True,
        x_label="Deaths",
        width=640,
    )
    return [Figure("avoidability", title, svg, "Excluding deaths under LeDeR.", wide=True)]


def _leder(table: Table) -> list[Figure]:
    keys = ("ld_deaths", "ld_notified", "ld_completed")
    if not _has(table, "period", *keys):
        return []
    months = month_rows(table)
    title = "Deaths of people with a learning disability or autism: LeDeR"
    svg = column_chart(
        title,
        [short_month(row["period"]) for row in months],
        [
            Series("Deaths", [_count(row["ld_deaths"]) for row in months], PALETTE[0]),
            Series("Notified to LeDeR", [_count(row["ld_notified"]) for row in months], PALETTE[2]),
            Series(
                "Reviews completed", [_count(row["ld_completed"]) for row in months], PALETTE[5]
            ),
        ],
        y_label="Deaths",
        height=220,
    )
    return [Figure("leder-by-month", title, svg)]


def _themes(table: Table) -> list[Figure]:
    if not _has(table, "theme", "findings"):
        return []
    rows = sorted(table.rows, key=lambda row: -_count(row.get("findings")))[:THEMES_SHOWN]
    title = "Findings by theme"
    if not rows:
        return [Figure("themes", title, no_data_chart(title, message="No findings recorded"))]
    series = [Series("Findings", [_count(row.get("findings")) for row in rows], PALETTE[0])]
    if _has(table, "deaths"):
        series.append(Series("Deaths", [_count(row.get("deaths")) for row in rows], PALETTE[4]))
    svg = bar_chart(title, [str(row["theme"]) for row in rows], series, x_label="Count")
    caption = (
        f"The {THEMES_SHOWN} themes with the most findings; the table lists them all."
        if len(table.rows) > THEMES_SHOWN
        else ""
    )
    return [Figure("themes", title, svg, caption)]


# Care ratings 1 very poor to 5 excellent: a diverging scale, vermillion through grey to blue.
RATING_COLOURS = {1: "#D55E00", 2: "#E69F00", 3: "#A0A0A0", 4: "#56B4E9", 5: "#0072B2"}
RATINGS = range(1, 6)


def _overall_rating(table: Table) -> list[Figure]:
    """One bar per overall care rating, coloured poor (1-2), adequate (3), good (4-5)."""
    if not _has(table, "rating", "label", "deaths"):
        return []
    rows = [row for row in table.rows if row.get("rating") in RATINGS]
    groups = (("Poor or very poor", (1, 2)), ("Adequate", (3,)), ("Good or excellent", (4, 5)))
    title = "Overall care rating of the final SJR"
    svg = bar_chart(
        title,
        [f"{row['rating']} {row['label']}" for row in rows],
        [
            Series(
                name,
                [_count(row["deaths"]) if row["rating"] in ratings else None for row in rows],
                RATING_COLOURS[ratings[-1]],
            )
            for name, ratings in groups
        ],
        stacked=True,
        x_label="Deaths",
    )
    return [Figure("overall-rating", title, svg, table.note or "")]


def _phase_ratings(table: Table) -> list[Figure]:
    """Each phase of care as one bar made of its ratings, very poor to excellent."""
    keys = [f"rating_{rating}" for rating in RATINGS]
    if not _has(table, "phase", *keys):
        return []
    labels = {column.key: column.label for column in table.columns}
    title = "Care rating by phase of care"
    svg = bar_chart(
        title,
        [str(row["phase"]).capitalize() for row in table.rows],
        [
            Series(labels[key], [_count(row.get(key)) for row in table.rows], RATING_COLOURS[n])
            for n, key in zip(RATINGS, keys, strict=True)
        ],
        stacked=True,
        x_label="Deaths rated",
    )
    return [Figure("phase-ratings", title, svg, "Each bar: the deaths rated in that phase.")]


CHARTS: dict[str, Callable[[Table], list[Figure]]] = {
    "deaths": _deaths,
    "avoidability": _avoidability,
    "ld_autism": _leder,
    "themes": _themes,
    "overall": _overall_rating,
    "phases": _phase_ratings,
}


def figures(report: Report) -> list[Figure]:
    """The charts for a report's tables, in the order of its tables."""
    drawn: list[Figure] = []
    for table in report.tables:
        chart = CHARTS.get(table.key)
        if chart is not None:
            drawn.extend(chart(table))
    return drawn


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    detail: str = ""


def headlines(report: Report) -> list[Headline]:
    """The year-to-date figures a board reads first, from the dashboard's deaths table."""
    try:
        table = report.table("deaths")
    except KeyError:
        return []
    total = year_to_date(table)
    if total is None or not _has(table, "deaths", "reviewed"):
        return []

    def share(key: str) -> str:
        value = total.get(key)
        return f"{float(value):.1f}%" if isinstance(value, int | float) else "\u2013"

    deaths = _count(total.get("deaths"))
    if "all_deaths" in total:
        # The dashboard's rows leave out people with a learning disability or autism (their
        # deaths are reviewed through LeDeR, in a table of their own); the tile counts every
        # death in scope, and says how many of them that table holds.
        everyone = _count(total.get("all_deaths"))
        found = [
            Headline(
                "Deaths in scope",
                f"{everyone:,}",
                f"year to date, {everyone - deaths:,} with a learning disability or autism",
            ),
            Headline(
                "Deaths reviewed",
                f"{_count(total.get('reviewed')):,}",
                f"{share('reviewed_pct')} of the {deaths:,} without a learning disability "
                "or autism",
            ),
        ]
    else:
        found = [
            Headline("Deaths in scope", f"{deaths:,}", "year to date"),
            Headline(
                "Deaths reviewed",
                f"{_count(total.get('reviewed')):,}",
                f"{share('reviewed_pct')} of deaths in scope",
            ),
        ]
    if "investigated" in total:
        found.append(Headline("Investigated (PSII)", f"{_count(total.get('investigated')):,}"))
    if "avoidable" in total:
        found.append(
            Headline(
                "More likely than not due to problems in care",
                f"{_count(total.get('avoidable')):,}",
                f"{share('avoidable_pct')} of reviewed",
            )
        )
    return found
