"""SQL building blocks the themes, timeliness and actions reports share, written once for both
dialects: the elements of a JSON array as rows, the seconds between two timestamps,
percentiles by window functions, and figures rounded the way a board paper prints them
(percentages: app.reports.model.percent).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Float, case, cast, func, literal_column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

# Lists in a report (overdue actions, overridden routes) stop here, with a note saying so: a
# national deployment's list must not become an unbounded response.
LIST_LIMIT = 1000


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def json_elements(dialect: str, column: Any, name: str = "element") -> Any:
    """A JSON array column's elements as a table-valued function with one column, `value`
    (text): `jsonb_array_elements_text` on PostgreSQL, `json_each` on SQLite."""
    elements_of = func.jsonb_array_elements_text if dialect == "postgresql" else func.json_each
    return elements_of(column).table_valued("value").alias(name)


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """`end - start` in seconds, as a float."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)


def percentile_terms(
    value: Any, rank: Any, count: Any, percents: Sequence[int]
) -> list[ColumnElement[float]]:
    """Aggregate terms computing percentiles of `value` the way PostgreSQL's
    `percentile_cont` does (linear interpolation between the two closest ranks), from a row
    number `rank` (1-based, in ascending order of `value`) and the group's row `count`, both
    window-function columns of a subquery. Portable: integer arithmetic picks the ranks
    (`(count - 1) * percent // 100` is the floor on both dialects), so SQLite, which has no
    percentile function, gives the same answers as PostgreSQL.

    For percentile p over n values: h = (n - 1) * p; the answer is v[floor(h) + 1] * (1 - f) +
    v[floor(h) + 2] * f, where f = h - floor(h)."""
    terms: list[ColumnElement[float]] = []
    for percent in percents:
        scaled = (count - 1) * percent
        lower = scaled // 100
        fraction = cast(scaled % 100, Float) / 100.0
        weighted = case(
            (rank == lower + 1, value * (1.0 - fraction)),
            (rank == lower + 2, value * fraction),
            else_=literal_column("0.0"),
        )
        terms.append(func.sum(weighted))
    return terms


def one_decimal(value: float | Decimal | None) -> float | None:
    """A figure to one decimal place, rounded half up."""
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def days(seconds: float | Decimal | None) -> float | None:
    """Seconds as days (of 24 hours) to one decimal place, rounded half up."""
    if seconds is None:
        return None
    return one_decimal(Decimal(str(seconds)) / Decimal(86400))
