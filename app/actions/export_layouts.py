"""The cells of an exported action, in the provider layout and in the system-review layout
(docs/spreadsheets.md, "Export"). Written so that importing the file gives the same plan:
every value written out (an empty one as "-", never a blank that would read as "same as
above"), a lead handed over as "A > B", organisations by the names the plan was given (a code
of letters only with no name as "ODS RGD"), the reported RAG with its date ("Amber (Sep
2019)"), the completion date ("on or before 30/09/2015"), the RAG derived today beside it
("RAG now"), a system review's recommendation letter in "#" and its action number before the
text. What a plan holds that the layout has no column for (a work stream or dated progress in
the provider layout; organisations, sources or delivery dates in the system-review layout) is
written in the other layout's columns after the layout's own (``EXTRAS``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from app.actions import rag
from app.actions.cells import completed_text, status_text
from app.actions.organisations import names_written
from app.actions.plan_text import month_label
from app.actions.rag import DuePrecision, Rag
from app.actions.sheet_writer import Cell
from app.actions.spreadsheets import COLUMNS, Field, Layout, YearMonth
from app.kit.ods import written_code

NONE = "-"


@dataclass(slots=True)
class ExportAction:
    reference: str
    recommendation: str | None
    improvement_requirement: str | None
    action: str
    source: str | None
    leads: list[str]
    lead_history: list[str]
    organisations: list[str]
    organisation_names: list[str]
    workstream: str | None
    due_date: date | None
    due_precision: str
    due_note: str | None
    status: int
    status_recorded: bool
    reported_rag: str | None
    reported_rag_on: date | None
    reported_rag_precision: str | None
    comments: str | None
    progress: str | None
    progress_on: date | None
    completed_at: date | None
    completed_precision: str | None
    due_text: str | None

    def derived(self, today: date) -> tuple[Rag, str]:
        """The RAG derived today, and "now Red: overdue" as the "RAG now" column says it."""
        overdue = rag.is_overdue(self.status, self.due_date, self.due_precision, today)
        derived = rag.derived_rag(
            self.status, self.status_recorded, self.due_date, self.due_precision, today
        )
        return derived, _now_text(derived, overdue, self.status_recorded)

    def leads_text(self) -> str:
        if not self.leads:
            return NONE
        first = " > ".join([*self.lead_history, self.leads[0]])
        return ", ".join([first, *self.leads[1:]])

    def organisations_text(self) -> str:
        if self.organisation_names:
            return ", ".join(names_written(self.organisation_names, self.organisations))
        return ", ".join(written_code(code) for code in self.organisations) or NONE

    def reported_text(self) -> str:
        if self.reported_rag is None:
            return NONE
        return _reported_text(self.reported_rag, self.reported_rag_on, self.reported_rag_precision)

    def status_cell(self) -> str:
        return status_text(self.status) if self.status_recorded else ""

    def due(self) -> Cell:
        if self.due_date is None:
            return self.due_note or NONE
        if self.due_precision == DuePrecision.month:
            return YearMonth(self.due_date.year, self.due_date.month)
        return self.due_date

    def completed(self) -> Cell:
        """A day as a date; "on or before 30/09/2015" (an imported completion) as text."""
        if self.completed_at is None:
            return NONE
        if self.completed_precision is None:
            return self.completed_at
        return completed_text(self.completed_at, self.completed_precision)


@functools.lru_cache(maxsize=4096)  # a plan's RAGs were reported on a few dates
def _reported_text(reported: str, on: date | None, precision: str | None) -> str:
    name = rag.RAG_NAMES[Rag(reported)]
    return name if on is None else f"{name} ({month_label(on, precision)})"


@functools.cache
def _now_text(derived: Rag, overdue: bool, recorded: bool) -> str:
    return rag.rag_summary(derived, overdue, recorded, None, None, None)


# What each layout lacks, in the order written after its own columns when a plan has it.
EXTRAS: dict[Layout, tuple[Field, ...]] = {
    Layout.provider: (Field.workstream, Field.progress),
    Layout.system_review: (Field.organisation, Field.source, Field.due),
}
_EXTRA_WIDTHS = {
    Field.workstream: 36,
    Field.progress: 60,
    Field.organisation: 16,
    Field.source: 28,
    Field.due: 14,
}


def titles(
    layout: Layout, progress_on: date | None, plan_year: int | None, extras: tuple[Field, ...]
) -> list[str]:
    names = {column.field: column.title for column in COLUMNS[layout]}
    progress = "Progress made" if progress_on is None else f"Progress made {progress_on:%b %Y}"
    if layout is Layout.provider:
        fields = (
            Field.organisation,
            Field.reference,
            Field.improvement_requirement,
            Field.action,
            Field.source,
            Field.leads,
            Field.due,
            Field.status,
            Field.completed,
            Field.comments,
            Field.recommendation,
            Field.rag,
            Field.rag_now,
        )
        own = [names[name] for name in fields]
    else:
        actions = "Actions" if plan_year is None else f"Actions to be completed in {plan_year}"
        own = [
            "#",
            "Recommendation",
            actions,
            names[Field.workstream],
            progress,
            "RAG",
            "Status",
            names[Field.completed],
            "Comments",
            "RAG now",
        ]
    return own + [progress if extra is Field.progress else names[extra] for extra in extras]


def widths(layout: Layout, extras: tuple[Field, ...]) -> list[int]:
    own = {
        Layout.provider: [16, 12, 40, 50, 28, 22, 14, 20, 14, 60, 16, 18, 24],
        Layout.system_review: [8, 40, 60, 36, 60, 18, 20, 14, 40, 24],
    }[layout]
    return own + [_EXTRA_WIDTHS[extra] for extra in extras]


RAG_COLUMNS = {Layout.provider: (7, 12), Layout.system_review: (6, 9)}  # status, RAG now


def provider_cells(
    action: ExportAction, today: date, extras: tuple[Field, ...]
) -> tuple[list[Cell], Rag]:
    derived, now_text = action.derived(today)
    cells: list[Cell] = [
        action.organisations_text(),
        action.reference,
        action.improvement_requirement or NONE,
        action.action,
        action.source or NONE,
        action.leads_text(),
        action.due(),
        action.status_cell(),
        action.completed(),
        action.comments or "",
        f"{action.recommendation}." if action.recommendation else NONE,
        action.reported_text(),
        now_text,
    ]
    for extra in extras:
        cells.append((action.workstream or NONE) if extra is Field.workstream else action.progress)
    return cells, derived


def system_cells(
    action: ExportAction, today: date, extras: tuple[Field, ...]
) -> tuple[list[Cell], Rag]:
    derived, now_text = action.derived(today)
    lead = action.leads_text()
    if action.workstream and lead != NONE:
        alignment = f"{action.workstream} ({lead})"
    elif lead != NONE:
        alignment = f"Lead: {lead}"
    else:
        alignment = action.workstream or NONE
    number = action.reference if action.reference.isdigit() else None
    text = f"{number}. {action.action}" if number else action.action
    cells: list[Cell] = [
        f"{action.recommendation}." if action.recommendation else action.reference,
        action.improvement_requirement or NONE,
        text,
        alignment,
        action.progress or "",
        action.reported_text(),
        action.status_cell(),
        action.completed(),
        action.comments or "",
        now_text,
    ]
    for extra in extras:
        if extra is Field.organisation:
            cells.append(action.organisations_text())
        elif extra is Field.source:
            cells.append(action.source or NONE)
        else:  # a due date in words stays in the text, read from there again
            cells.append(NONE if action.due_text else action.due())
    return cells, derived
