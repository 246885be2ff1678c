"""A distribution of SJR care ratings (1 very poor .. 5 excellent) as a report row: the count
of each rating and the three shares a board reads (adequate or better, good or excellent, poor
or very poor), each with its count. The care-quality report's tables share it, whether the row
counts deaths (by their final SJR) or phase ratings (by organisation of care)."""

from __future__ import annotations

from typing import Any

from app.reports.model import Column, Table, percent

RATINGS = range(1, 6)  # 1 very poor .. 5 excellent
DEATHS = "Deaths whose final SJR rates"


def distribution(counts: dict[int, int]) -> dict[str, Any]:
    """A row's rating cells and the three shares of it, each with its count."""
    rated = sum(counts.values())
    adequate = sum(counts.get(r, 0) for r in (3, 4, 5))
    good = sum(counts.get(r, 0) for r in (4, 5))
    poor = sum(counts.get(r, 0) for r in (1, 2))
    return {
        "rated": rated,
        **{f"rating_{r}": counts.get(r, 0) for r in RATINGS},
        "adequate_or_better": adequate,
        "adequate_or_better_pct": percent(adequate, rated),
        "good_or_excellent": good,
        "good_or_excellent_pct": percent(good, rated),
        "poor_or_very_poor": poor,
        "poor_or_very_poor_pct": percent(poor, rated),
    }


def distribution_columns(labels: dict[int, str], what: str, unit: str = DEATHS) -> list[Column]:
    """The columns of ``distribution``; each definition reads "<unit> <what> <rating>"."""

    def words(*parts: object) -> str:
        return " ".join(str(part) for part in parts if part != "") + "."

    return [
        Column("rated", "Rated", "int", words(unit, what)),
        *(
            Column(
                f"rating_{r}",
                f"{r} {labels.get(r, '')}".strip(),
                "int",
                words(unit, what, r),
            )
            for r in RATINGS
        ),
        Column("adequate_or_better", "Adequate or better", "int", "Rated 3, 4 or 5."),
        Column("adequate_or_better_pct", "% adequate or better", "percent", "Of those rated."),
        Column("good_or_excellent", "Good or excellent", "int", "Rated 4 or 5."),
        Column("good_or_excellent_pct", "% good or excellent", "percent", "Of those rated."),
        Column("poor_or_very_poor", "Poor or very poor", "int", "Rated 1 or 2."),
        Column("poor_or_very_poor_pct", "% poor or very poor", "percent", "Of those rated."),
    ]


def shares_table(counts: dict[int, int], care: dict[int, str], unit: str = DEATHS) -> Table:
    """The three shares a board reads, as numbers (issue 17): of those rated, the count and
    percentage rated adequate or better (3-5), good or excellent (4-5) and poor or very poor
    (1-2). One row; in JSON, CSV and XLSX alike."""
    columns = distribution_columns(care, "overall care", unit)
    cells = distribution(counts)
    return Table(
        "shares",
        "Overall care in three shares",
        [columns[0], *columns[6:]],
        [{column.key: cells[column.key] for column in [columns[0], *columns[6:]]}],
        note="Rated 3-5, 4-5 and 1-2, each a share of those rated (one decimal place, halves "
        "rounded up).",
    )
