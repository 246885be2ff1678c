"""The cells of an exported action, in the provider layout and in the system-review layout
(docs/spreadsheets.md, "Export"). Written so that importing the file gives the same plan:
every value written out (an empty one as "-", never a blank that would read as "same as
above"), a lead handed over as "A > B", organisations by the names the plan was given, the
reported RAG with its date ("Amber (Sep 2019)"), the RAG derived today beside it ("RAG now"),
a system review's recommendation letter in "#" and its action number before the text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from app.actions import rag
from app.actions.cells import status_text
from app.actions.plan_text import month_label
from app.actions.rag import DuePrecision, Rag
from app.actions.sheet_writer import Cell
from app.actions.spreadsheets import COLUMNS, Field, Layout, YearMonth

NONE = "-"


@dataclass(frozen=True)
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
        return ", ".join(self.organisation_names or self.organisations) or NONE

    def reported_text(self) -> str:
        if self.reported_rag is None:
            return NONE
        name = rag.RAG_NAMES[Rag(self.reported_rag)]
        if self.reported_rag_on is None:
            return name
        return f"{name} ({month_label(self.reported_rag_on, self.reported_rag_precision)})"

    def status_cell(self) -> str:
        return status_text(self.status) if self.status_recorded else ""

    def due(self) -> Cell:
        if self.due_date is None:
            return self.due_note or NONE
        if self.due_precision == DuePrecision.month:
            return YearMonth(self.due_date.year, self.due_date.month)
        return self.due_date


@functools.cache
def _now_text(derived: Rag, overdue: bool, recorded: bool) -> str:
    return rag.rag_summary(derived, overdue, recorded, None, None, None)


def titles(layout: Layout, progress_on: date | None, plan_year: int | None) -> list[str]:
    names = {column.field: column.title for column in COLUMNS[layout]}
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
            Field.comments,
            Field.recommendation,
            Field.rag,
            Field.rag_now,
        )
        return [names[name] for name in fields]
    actions = "Actions" if plan_year is None else f"Actions to be completed in {plan_year}"
    progress = "Progress made" if progress_on is None else f"Progress made {progress_on:%b %Y}"
    return [
        "#",
        "Recommendation",
        actions,
        names[Field.workstream],
        progress,
        "RAG",
        "Status",
        "Comments",
        "RAG now",
    ]


WIDTHS = {
    Layout.provider: [16, 12, 40, 50, 28, 22, 14, 20, 60, 16, 18, 24],
    Layout.system_review: [8, 40, 60, 36, 60, 18, 20, 40, 24],
}
RAG_COLUMNS = {Layout.provider: (7, 11), Layout.system_review: (6, 8)}  # status, RAG now


def provider_cells(action: ExportAction, today: date) -> tuple[list[Cell], Rag]:
    derived, now_text = action.derived(today)
    return [
        action.organisations_text(),
        action.reference,
        action.improvement_requirement or NONE,
        action.action,
        action.source or NONE,
        action.leads_text(),
        action.due(),
        action.status_cell(),
        "\n".join(text for text in (action.comments, action.progress) if text),
        f"{action.recommendation}." if action.recommendation else NONE,
        action.reported_text(),
        now_text,
    ], derived


def system_cells(action: ExportAction, today: date) -> tuple[list[Cell], Rag]:
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
    return [
        f"{action.recommendation}." if action.recommendation else action.reference,
        action.improvement_requirement or NONE,
        text,
        alignment,
        action.progress or "",
        action.reported_text(),
        action.status_cell(),
        action.comments or "",
        now_text,
    ], derived
