"""The status scale and the RAG derived from it (app.actions.rag, DESIGN.md section 6): the
colour of each status, an overdue open action is red, the boundary day, due dates given to the
month, due notes, and a complete action is never overdue."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.actions.rag import (
    STATUS_LABELS,
    ActionStatus,
    DuePrecision,
    Rag,
    falls_due,
    is_overdue,
    rag,
)

TODAY = date(2026, 3, 15)
COLOUR = {1: Rag.grey, 2: Rag.red, 3: Rag.amber, 4: Rag.green, 5: Rag.blue}
OPEN = [status for status in ActionStatus if status is not ActionStatus.complete]
statuses = st.sampled_from(list(ActionStatus))
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
precisions = st.sampled_from(list(DuePrecision))


@pytest.mark.parametrize(
    ("status", "label", "colour"),
    [
        (1, "Not yet commenced", Rag.grey),
        (2, "Off track", Rag.red),
        (3, "At risk", Rag.amber),
        (4, "On track", Rag.green),
        (5, "Complete", Rag.blue),
    ],
)
def test_each_status_has_its_label_and_colour(status: int, label: str, colour: Rag) -> None:
    assert COLOUR[status] is colour
    assert STATUS_LABELS[ActionStatus(status)] == label
    # Due in the future, or with no date at all: the status alone decides.
    assert rag(status, TODAY + timedelta(days=30), DuePrecision.day, TODAY) is colour
    assert rag(status, None, None, TODAY) is colour


@pytest.mark.parametrize("status", OPEN)
def test_an_open_action_past_its_due_date_is_red(status: ActionStatus) -> None:
    yesterday = TODAY - timedelta(days=1)
    assert is_overdue(status, yesterday, DuePrecision.day, TODAY)
    assert rag(status, yesterday, DuePrecision.day, TODAY) is Rag.red


@pytest.mark.parametrize("status", OPEN)
def test_due_today_is_not_overdue_and_due_yesterday_is(status: ActionStatus) -> None:
    due = date(2026, 6, 30)
    assert not is_overdue(status, due, DuePrecision.day, today=due)
    assert rag(status, due, DuePrecision.day, due) is COLOUR[status]
    assert is_overdue(status, due, DuePrecision.day, today=due + timedelta(days=1))
    assert rag(status, due, DuePrecision.day, due + timedelta(days=1)) is Rag.red


@pytest.mark.parametrize("status", OPEN)
def test_a_month_is_on_time_through_its_last_day(status: ActionStatus) -> None:
    # "Jul-15" in a trust's spreadsheet: due by the end of July 2015.
    july = date(2015, 7, 1)
    assert falls_due(july, DuePrecision.month) == date(2015, 7, 31)
    for today in (date(2015, 7, 1), date(2015, 7, 15), date(2015, 7, 31)):
        assert not is_overdue(status, july, DuePrecision.month, today)
    assert is_overdue(status, july, DuePrecision.month, date(2015, 8, 1))
    # Any day of the month names the same month.
    assert falls_due(date(2015, 7, 20), DuePrecision.month) == date(2015, 7, 31)
    assert is_overdue(status, date(2015, 7, 20), "month", date(2015, 8, 1))


def test_february_ends_on_the_29th_in_a_leap_year() -> None:
    assert falls_due(date(2024, 2, 1), DuePrecision.month) == date(2024, 2, 29)
    assert not is_overdue(4, date(2024, 2, 1), DuePrecision.month, date(2024, 2, 29))
    assert is_overdue(4, date(2024, 2, 1), DuePrecision.month, date(2024, 3, 1))
    assert falls_due(date(2023, 2, 1), DuePrecision.month) == date(2023, 2, 28)
    assert is_overdue(4, date(2023, 2, 1), DuePrecision.month, date(2023, 3, 1))
    assert falls_due(date(2100, 2, 1), DuePrecision.month) == date(2100, 2, 28)  # not leap


def test_a_day_precision_due_date_is_the_day_itself() -> None:
    assert falls_due(date(2015, 7, 20), DuePrecision.day) == date(2015, 7, 20)
    assert falls_due(date(2015, 7, 20), None) == date(2015, 7, 20)
    assert falls_due(None, DuePrecision.month) is None


@given(status=statuses, today=days)
def test_a_due_note_alone_is_never_overdue(status: ActionStatus, today: date) -> None:
    # "TBC" or "Ongoing": no date to fall due.
    assert not is_overdue(status, None, None, today)
    assert not is_overdue(status, None, DuePrecision.month, today)
    assert rag(status, None, DuePrecision.day, today) is COLOUR[status]


@given(due=days, precision=precisions, today=days)
def test_a_complete_action_is_never_overdue_and_always_blue(
    due: date, precision: DuePrecision, today: date
) -> None:
    assert not is_overdue(ActionStatus.complete, due, precision, today)
    assert rag(ActionStatus.complete, due, precision, today) is Rag.blue


@given(status=statuses, due=days, precision=precisions, today=days)
def test_the_rule_as_a_whole(
    status: ActionStatus, due: date, precision: DuePrecision, today: date
) -> None:
    deadline = falls_due(due, precision)
    assert deadline is not None
    assert deadline >= due
    assert (deadline.year, deadline.month) == (due.year, due.month)
    overdue = status is not ActionStatus.complete and today > deadline
    assert is_overdue(status, due, precision, today) is overdue
    assert rag(status, due, precision, today) is (Rag.red if overdue else COLOUR[status])


@given(status=st.sampled_from(OPEN), due=days, precision=precisions)
def test_overdue_starts_the_day_after_the_last_on_time_day(
    status: ActionStatus, due: date, precision: DuePrecision
) -> None:
    deadline = falls_due(due, precision)
    assert deadline is not None
    assert not is_overdue(status, due, precision, deadline)
    assert is_overdue(status, due, precision, deadline + timedelta(days=1))
