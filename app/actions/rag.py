"""The action status scale and the RAG derived from it (DESIGN.md section 6).

Status: 1 not yet commenced, 2 off track, 3 at risk, 4 on track, 5 complete. RAG: off track
red, at risk amber, on track green, complete blue, not yet commenced grey; and an action past
its due date and not complete is red, whatever its status says. A due date given to the month
("Jul-15") falls due at the end of that month; a due note alone ("TBC", "Ongoing") never does.
"""

from __future__ import annotations

import calendar
from datetime import date
from enum import IntEnum, StrEnum


class ActionStatus(IntEnum):
    not_yet_commenced = 1
    off_track = 2
    at_risk = 3
    on_track = 4
    complete = 5


STATUS_LABELS: dict[ActionStatus, str] = {
    ActionStatus.not_yet_commenced: "Not yet commenced",
    ActionStatus.off_track: "Off track",
    ActionStatus.at_risk: "At risk",
    ActionStatus.on_track: "On track",
    ActionStatus.complete: "Complete",
}


class Rag(StrEnum):
    red = "red"
    amber = "amber"
    green = "green"
    blue = "blue"
    grey = "grey"


_BY_STATUS = {
    ActionStatus.not_yet_commenced: Rag.grey,
    ActionStatus.off_track: Rag.red,
    ActionStatus.at_risk: Rag.amber,
    ActionStatus.on_track: Rag.green,
    ActionStatus.complete: Rag.blue,
}


class DuePrecision(StrEnum):
    day = "day"
    month = "month"


def falls_due(due_date: date | None, precision: DuePrecision | str | None) -> date | None:
    """The last day on which the action is still on time."""
    if due_date is None:
        return None
    if precision == DuePrecision.month:
        last = calendar.monthrange(due_date.year, due_date.month)[1]
        return due_date.replace(day=last)
    return due_date


def is_overdue(
    status: int, due_date: date | None, precision: DuePrecision | str | None, today: date
) -> bool:
    """Past its due date and not complete. On the due date itself it is not yet overdue."""
    deadline = falls_due(due_date, precision)
    return deadline is not None and status != ActionStatus.complete and today > deadline


def rag(
    status: int, due_date: date | None, precision: DuePrecision | str | None, today: date
) -> Rag:
    if is_overdue(status, due_date, precision, today):
        return Rag.red
    return _BY_STATUS[ActionStatus(status)]


RAG_NAMES = {rag: rag.value.capitalize() for rag in Rag}
_WHY = {
    Rag.grey: "not yet commenced",
    Rag.red: "off track",
    Rag.amber: "at risk",
    Rag.green: "on track",
    Rag.blue: "complete",
}


def derived_rag(
    status: int,
    status_recorded: bool,
    due_date: date | None,
    precision: DuePrecision | str | None,
    today: date,
) -> Rag:
    """The RAG the service derives: red when overdue, else by status; grey when the status
    was not recorded."""
    if is_overdue(status, due_date, precision, today):
        return Rag.red
    return _BY_STATUS[ActionStatus(status)] if status_recorded else Rag.grey


def rag_summary(
    derived: Rag,
    overdue: bool,
    status_recorded: bool,
    reported: str | None,
    reported_on: date | None,
    reported_precision: str | None,
) -> str:
    """Both RAGs in words: "reported Amber (Sep 2019); now Red: overdue"."""
    why = "overdue" if overdue else _WHY[derived] if status_recorded else "status not recorded"
    now_text = f"now {RAG_NAMES[derived]}: {why}"
    if reported is None:
        return now_text
    values = {rag.value: rag for rag in Rag}
    name = RAG_NAMES[values[reported]] if reported in values else reported
    when = ""
    if reported_on is not None:
        when = (
            f" ({reported_on:%b %Y})"
            if reported_precision == DuePrecision.month
            else f" ({reported_on:%d/%m/%Y})"
        )
    return f"reported {name}{when}; {now_text}"
