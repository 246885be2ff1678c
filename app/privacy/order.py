"""The order a pseudonymised client's lists of deaths (and of findings, which carry the date of
death) come in: newest month of death first, then by the row's random id (uuid4) within the
month. Nothing finer than the month shows through the order, as nothing finer shows in the
rows; a full client's lists stay in order of the exact date (and time) of death."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, extract


def month_of(died_on: Any) -> ColumnElement[Any]:
    """`year * 100 + month` of a local date column, in SQL (SQLite and PostgreSQL)."""
    result: ColumnElement[Any] = extract("year", died_on) * 100 + extract("month", died_on)
    return result


def by_month(died_on: Any, id_column: Any) -> tuple[ColumnElement[Any], Any]:
    """The sort key of a pseudonymised list: (month of death, id), both descending."""
    return month_of(died_on), id_column
