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
from app.kit.time import FIRST_QUERY_YEAR, LAST_QUERY_YEAR, LONDON

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


# ASCII digits only, the whole value (fullmatch): `\d` would take fullwidth or Arabic-Indic
# digits, and `$` a trailing newline.
_FY = re.compile(r"(?:FY)?([0-9]{4})[-/]([0-9]{2}|[0-9]{4})", re.IGNORECASE | re.ASCII)
_QUARTER = re.compile(
    r"(?:FY)?([0-9]{4})[-/]([0-9]{2}|[0-9]{4})[-/ ]?Q([1-4])", re.IGNORECASE | re.ASCII
)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)

PERIOD_FORMS = "a financial year (2025-26), a quarter of one (2025-26-Q1) or a month (2025-07)"
OUT_OF_RANGE = (
    f"Reports cover the years {FIRST_QUERY_YEAR} to {LAST_QUERY_YEAR}: every day of the period "
    "must fall in them."
)


def _refused(detail: str, name: str, code: str) -> BadRequest:
    """A 400 pointing at the query parameter at fault. The detail names the parameter and the
    form it takes, never the value sent."""
    return BadRequest(
        detail, errors=[{"pointer": f"query:/{name}", "code": code, "detail": detail}]
    )


def _check_years(first_year: int, last_year: int, name: str) -> None:
    """Before any date is built: a year outside the service's range is a typing slip, and
    near 9999 the period's end or the day after it would not exist."""
    if first_year < FIRST_QUERY_YEAR or last_year > LAST_QUERY_YEAR:
        raise _refused(OUT_OF_RANGE, name, "out_of_range")


def _follows(year: int, following: str) -> bool:
    """Whether `following` ("26" or "2026") names the year after `year`."""
    if len(following) == 4:
        return int(following) == year + 1
    return int(following) == (year + 1) % 100


def parse_period(
    value: str | None,
    start: date | None,
    end: date | None,
    today: date,
    *,
    names: tuple[str, str, str] = ("period", "start", "end"),
) -> Period:
    """A period from the query string.

    - `period=2025-26` (or `2025/26`, `FY2025-26`, `2025-2026`): the financial year 1 April
      2025 to 31 March 2026;
    - `period=2025-26-Q1` (`Q1` is April to June, `Q4` January to March);
    - `period=2025-07`: one calendar month;
    - `start=2025-04-01&end=2025-06-30` (both inclusive) for any range;
    - nothing: the current financial year.

    Every day of the period must fall in the years FIRST_QUERY_YEAR to LAST_QUERY_YEAR.
    `names` are the query parameters the three arrive in (the themes report's second period
    is `compare`, `compare_start`, `compare_end`), for the errors' pointers and words.
    """
    period_name, start_name, end_name = names
    if value and (start or end):
        raise _refused(
            f"Give either {period_name} or {start_name} and {end_name}, not both.",
            period_name,
            "period_and_range",
        )
    if start or end:
        if not (start and end):
            missing = end_name if start else start_name
            raise _refused(
                f"A date range needs both {start_name} and {end_name}.", missing, "missing"
            )
        _check_years(start.year, start.year, start_name)
        _check_years(end.year, end.year, end_name)
        if end < start:
            raise _refused("The range ends before it starts.", end_name, "range_reversed")
        if (end - start).days > 3660:
            raise _refused("A date range may cover at most ten years.", end_name, "range_too_long")
        return Period(start, end, f"{start.isoformat()} to {end.isoformat()}", "range")
    if not value:
        return financial_year(financial_year_of(today))
    if match := _QUARTER.fullmatch(value):
        year, following, quarter = int(match.group(1)), match.group(2), int(match.group(3))
        if not _follows(year, following):
            raise _refused(
                f"{period_name} is not a quarter of a financial year: write the year's two "
                "years, as 2025-26-Q1.",
                period_name,
                "not_a_financial_year",
            )
        calendar_year = year if quarter < 4 else year + 1
        _check_years(calendar_year, calendar_year, period_name)
        first = date(calendar_year, 1 if quarter == 4 else 1 + 3 * quarter, 1)
        last = _month_end(date(first.year, first.month + 2, 1))
        return Period(first, last, f"{year}/{str(year + 1)[2:]} Q{quarter}", "quarter")
    if (match := _FY.fullmatch(value)) and not (
        # "2025-10" is October 2025; "2011-12" stays the financial year 2011/12.
        _MONTH.fullmatch(value) and int(match.group(2)) != (int(match.group(1)) + 1) % 100
    ):
        year, following = int(match.group(1)), match.group(2)
        if not _follows(year, following):
            raise _refused(
                f"{period_name} is not a financial year: write its two years, as 2025-26.",
                period_name,
                "not_a_financial_year",
            )
        _check_years(year, year + 1, period_name)
        return financial_year(year)
    if match := _MONTH.fullmatch(value):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise _refused(
                f"{period_name} is neither a month (01 to 12) nor a financial year (2025-26).",
                period_name,
                "not_a_month",
            )
        _check_years(year, year, period_name)
        first = date(year, month, 1)
        return Period(first, _month_end(first), first.strftime("%B %Y"), "month")
    raise _refused(
        f"{period_name} must be {PERIOD_FORMS}; or give {start_name} and {end_name} dates.",
        period_name,
        "not_a_period",
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
