"""The shape every report takes, whatever it measures: a period, the filters applied, and named
tables of rows. The renderers (JSON, CSV, XLSX, HTML) know this shape and nothing else, so a new
report is a query that fills one in.

Periods are in the trust's local time (Europe/London, DESIGN.md section 7): a death at 00:30
BST on 1 April belongs to the new financial year. `Period.utc_bounds()` turns the local dates
into the half-open UTC interval that queries compare `died_at` (and other timestamps) against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from app.errors import BadRequest
from app.kit.time import LONDON

ColumnKind = Literal["text", "int", "number", "percent", "date", "month"]


@dataclass(frozen=True)
class Period:
    """Local dates `start` to `end`, both inclusive, with the label a board paper would print."""

    start: date
    end: date
    label: str
    kind: Literal["financial_year", "quarter", "month", "range"] = "range"

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00 local, day after end 00:00 local) as UTC instants."""
        low = datetime.combine(self.start, time(), LONDON).astimezone(UTC)
        high = datetime.combine(self.end + timedelta(days=1), time(), LONDON).astimezone(UTC)
        return low, high

    def months(self) -> list[date]:
        """The first day of every calendar month the period touches, in order."""
        months, cursor = [], self.start.replace(day=1)
        while cursor <= self.end:
            months.append(cursor)
            cursor = (cursor + timedelta(days=32)).replace(day=1)
        return months


def financial_year_of(day: date) -> int:
    """The financial year (April to March) a day falls in, named by the year it starts."""
    return day.year if day.month >= 4 else day.year - 1


def financial_year(start_year: int) -> Period:
    return Period(
        date(start_year, 4, 1),
        date(start_year + 1, 3, 31),
        f"{start_year}/{str(start_year + 1)[2:]}",
        "financial_year",
    )


def _month_end(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


_FY = re.compile(r"^(?:FY)?(\d{4})[-/](\d{2}|\d{4})$", re.IGNORECASE)
_QUARTER = re.compile(r"^(?:FY)?(\d{4})[-/](?:\d{2}|\d{4})[-/ ]?Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_period(value: str | None, start: date | None, end: date | None, today: date) -> Period:
    """A period from the query string.

    - `period=2025-26` (or `2025/26`, `FY2025-26`): the financial year 1 April 2025 to 31 March
      2026;
    - `period=2025-26-Q1` (`Q1` is April to June, `Q4` January to March);
    - `period=2025-07`: one calendar month;
    - `start=2025-04-01&end=2025-06-30` (both inclusive) for any range;
    - nothing: the current financial year.
    """
    if value and (start or end):
        raise BadRequest("Give either period or start and end, not both.")
    if start or end:
        if not (start and end):
            raise BadRequest("A date range needs both start and end.")
        if end < start:
            raise BadRequest("The range ends before it starts.")
        if (end - start).days > 3660:
            raise BadRequest("A date range may cover at most ten years.")
        return Period(start, end, f"{start.isoformat()} to {end.isoformat()}", "range")
    if not value:
        return financial_year(financial_year_of(today))
    text = value.strip()
    if match := _QUARTER.match(text):
        year, quarter = int(match.group(1)), int(match.group(2))
        first = date(year, 4, 1) if quarter < 4 else date(year + 1, 1, 1)
        if quarter in (2, 3):
            first = date(year, 4 + 3 * (quarter - 1), 1)
        last = _month_end(date(first.year, first.month + 2, 1))
        return Period(first, last, f"{year}/{str(year + 1)[2:]} Q{quarter}", "quarter")
    if (match := _FY.match(text)) and not (
        # "2025-10" is October 2025; "2011-12" stays the financial year 2011/12.
        _MONTH.match(text) and int(match.group(2)) != (int(match.group(1)) + 1) % 100
    ):
        year, following = int(match.group(1)), match.group(2)
        if int(following[-2:]) != (year + 1) % 100:
            raise BadRequest(
                f"'{text}' is not a financial year: write it as {year}-{str(year + 1)[2:]}."
            )
        return financial_year(year)
    if match := _MONTH.match(text):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise BadRequest(f"'{text}' is not a month.")
        first = date(year, month, 1)
        return Period(first, _month_end(first), first.strftime("%B %Y"), "month")
    raise BadRequest(
        "period must be a financial year (2025-26), a quarter of one (2025-26-Q1) or a month "
        "(2025-07); or give start and end dates."
    )


def percent(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole`, to one decimal place, halves rounded up (1/8 is
    12.5, 1/16 is 6.3, 2/3 is 66.7); None when `whole` is 0: no share of nothing."""
    if whole == 0:
        return None
    exact = Decimal(part) * 100 / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: ColumnKind = "int"
    # Words for docs and the HTML page's footnotes: how the figure is counted.
    definition: str | None = None


@dataclass
class Table:
    """One table of a report. Rows are dicts keyed by column key; every value is JSON-ready
    (str, int, float, None, or a date for 'date' columns)."""

    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None


@dataclass
class Report:
    key: str  # e.g. "lfd-dashboard"; also the file name of exports
    title: str
    period: Period
    filters: dict[str, Any]  # the filters applied, as given (None for absent ones)
    tables: list[Table]
    generated_at: datetime
    notes: list[str] = field(default_factory=list)

    def table(self, key: str) -> Table:
        for table in self.tables:
            if table.key == key:
                return table
        raise KeyError(key)
