"""What the rows after a spreadsheet's header row mean, one at a time, and every assumption
made reading them (docs/spreadsheets.md, "How a sheet is read").

A row is blank (skipped), the header again (skipped), a section header (text in the table's
first column only), the continuation of the comments above (text in the comments column
only), or an action. Merged cells arrive as blanks: in the columns that describe a block of
actions (provider: organisation, reference, improvement requirement, actions, source, lead,
delivery date; system review: #, recommendation, actions, alignment) a blank means "same as
above", within the section. A blank status means 1 Not yet commenced; a blank comment, no
comment; "-" or "N/A", nothing. A reference already used in the section is numbered "3 (2)".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.actions import rag
from app.actions.cells import (
    UNKNOWN_LEADS,
    Due,
    is_none,
    one_line,
    read_alignment,
    read_due,
    read_status,
    split_names,
    text_of,
)
from app.actions.rag import STATUS_LABELS, ActionStatus, DuePrecision
from app.actions.spreadsheets import (
    CellValue,
    Field,
    HeaderMatch,
    Layout,
    Row,
    is_blank,
    match_header,
)

MAX_ACTIONS = 50_000
MAX_SECTIONS = 200  # as POST /v1/action-plans allows
MAX_ERRORS = 100
MAX_NAMES = 50  # leads or organisations in one cell, as the API allows
DEFAULT_SECTION = "General"
LIMITS = {"title": 300, "section": 500, "name": 200, "reference": 50, "text": 20_000}
_CARRIED: dict[Layout, frozenset[Field]] = {
    Layout.provider: frozenset(
        {
            Field.organisation,
            Field.reference,
            Field.improvement_requirement,
            Field.action,
            Field.source,
            Field.leads,
            Field.due,
        }
    ),
    Layout.system_review: frozenset(
        {Field.reference, Field.improvement_requirement, Field.action, Field.workstream}
    ),
}
_ODS = re.compile(r"^[A-Z0-9]{3,5}$")
_ODS = re.compile(r"^[A-Z0-9]{3,5}$")


@dataclass(frozen=True, slots=True)
class ImportWarning:
    row: int | None  # as the spreadsheet program numbers it; None for the whole file
    column: str | None  # the column's header as written in the file
    code: str
    detail: str


@dataclass(slots=True)
class PlannedAction:
    """One action as read (the import report serialises these fields as they are)."""

    row: int
    reference: str
    action: str
    improvement_requirement: str | None = None
    source: str | None = None
    leads: list[str] = field(default_factory=list)
    organisations: list[str] = field(default_factory=list)
    workstream: str | None = None
    due_date: date | None = None
    due_precision: DuePrecision = DuePrecision.day
    due_note: str | None = None
    status: int = ActionStatus.not_yet_commenced
    comments: str | None = None
    completed_at: date | None = None
    id: uuid.UUID | None = None
    # Derived once the row is read (``settle``).
    status_label: str = ""
    falls_due_on: date | None = None

    def settle(self) -> None:
        self.status_label = STATUS_LABELS[ActionStatus(self.status)]
        self.falls_due_on = rag.falls_due(self.due_date, self.due_precision)


@dataclass(slots=True)
class PlannedSection:
    row: int | None
    title: str
    position: int
    actions: list[PlannedAction] = field(default_factory=list)
    id: uuid.UUID | None = None


class RowReader:
    """One pass over the rows after the header: sections, actions, and what was assumed."""

    def __init__(self, header: HeaderMatch, epoch: date, today: date) -> None:
        self.layout = header.layout
        self.header = header
        self.epoch = epoch
        self.today = today
        self.sections: list[PlannedSection] = []
        self.warnings: list[ImportWarning] = []
        self.errors: list[dict[str, Any]] = []
        self.above: dict[Field, tuple[int, Any]] = {}
        self.references: dict[str, int] = {}
        self.first_column = min(header.positions.values())
        self.actions = 0

    def warn(self, row: int | None, column: Field | None, code: str, detail: str) -> None:
        self.warnings.append(ImportWarning(row, self.column(column), code, detail))

    def fail(self, row: int | None, column: Field | None, code: str, detail: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(
                {"row": row, "column": self.column(column), "code": code, "detail": detail}
            )

    def column(self, column: Field | None) -> str | None:
        return None if column is None else self.header.titles.get(column)

    def cell(self, row: Row, column: Field) -> CellValue:
        index = self.header.positions.get(column)
        return None if index is None or index >= len(row) else row[index]

    def read(self, number: int, row: Row) -> None:
        filled = [index for index, value in enumerate(row) if not is_blank(value)]
        if not filled:
            return
        if match_header(number, row, self.layout) is not None:
            self.warn(number, None, "repeated_header", "the header row again: skipped")
        elif len(filled) == 1 and filled[0] <= self.first_column:
            self.section(number, one_line(text_of(row[filled[0]])))
        elif filled == [self.header.positions.get(Field.comments)]:
            self.continued_comment(number, text_of(row[filled[0]]))
        else:
            self.action(number, row)

    def section(self, number: int, title: str) -> None:
        if len(title) > LIMITS["section"]:
            self.fail(number, None, "too_long", f"a section title longer than {LIMITS['section']}")
        if len(self.sections) == MAX_SECTIONS:
            self.fail(number, None, "too_many_sections", f"more than {MAX_SECTIONS} sections")
        self.sections.append(PlannedSection(number, title, len(self.sections) + 1))
        self.above = {}
        self.references = {}

    def continued_comment(self, number: int, text: str) -> None:
        section = self.sections[-1] if self.sections else None
        if section is None or not section.actions:
            self.warn(
                number,
                Field.comments,
                "comment_without_action",
                "only a comment, with no action above it in the section: not imported",
            )
            return
        previous = section.actions[-1]
        previous.comments = f"{previous.comments}\n{text}" if previous.comments else text
        self.warn(
            number,
            Field.comments,
            "comment_continued",
            f"only a comment: added to the comments of the action above (row {previous.row})",
        )

    def carried(self, number: int, row: Row, column: Field) -> tuple[bool, Any]:
        """(whether the cell is a merged blank that takes the value above, that value)."""
        carries = column in _CARRIED[self.layout] and column in self.above
        if carries and is_blank(self.cell(row, column)):
            origin, value = self.above[column]
            self.warn(number, column, "same_as_above", f"blank: same as above (row {origin})")
            return True, value
        return False, None

    def remember(self, number: int, column: Field, value: Any) -> None:
        if column in _CARRIED[self.layout]:
            self.above[column] = (number, value)

    def text(self, number: int, row: Row, column: Field) -> str | None:
        was_carried, value = self.carried(number, row, column)
        if was_carried:
            return value if isinstance(value, str) else None
        cell = self.cell(row, column)
        text = text_of(cell)
        result = None if not text or is_none(text) else text
        if result is not None and len(result) > LIMITS["text"]:
            self.fail(number, column, "too_long", f"longer than {LIMITS['text']} characters")
        if not is_blank(cell):
            self.remember(number, column, result)
        return result

    def names(self, number: int, row: Row, column: Field, ods: bool) -> list[str]:
        was_carried, value = self.carried(number, row, column)
        if was_carried:
            return list(value)
        raw = text_of(self.cell(row, column))
        found = self.split(number, column, raw, ods)
        if raw:
            self.remember(number, column, found)
        return found

    def split(self, number: int | None, column: Field | None, raw: str, ods: bool) -> list[str]:
        found: list[str] = []
        for name in split_names(raw):
            if is_none(name):
                continue
            if not ods and name.lower() in UNKNOWN_LEADS:
                self.warn(number, column, "lead_unknown", f"lead not known ('{name}'): no lead")
                continue
            if ods and not _ODS.match(name.upper()):
                self.warn(
                    number,
                    column,
                    "not_ods_code",
                    f"'{name}' is not an ODS code (3 to 5 letters or digits): left out",
                )
                continue
            name = name.upper() if ods else name
            if len(name) > LIMITS["name"]:
                self.fail(number, column, "too_long", f"a name longer than {LIMITS['name']}")
            if name.casefold() not in {kept.casefold() for kept in found}:
                found.append(name)
        if len(found) > MAX_NAMES:
            self.fail(number, column, "too_many_names", f"more than {MAX_NAMES} names")
        return found

    def action(self, number: int, row: Row) -> None:
        self.actions += 1
        if self.actions > MAX_ACTIONS:
            if self.actions == MAX_ACTIONS + 1:
                self.fail(number, None, "too_many_rows", f"more than {MAX_ACTIONS} actions")
            return
        if not self.sections:
            self.sections.append(PlannedSection(None, DEFAULT_SECTION, 1))
            self.warn(
                number,
                None,
                "no_section",
                f"no section header row above the first action: put in a section titled "
                f"'{DEFAULT_SECTION}'",
            )
        section = self.sections[-1]
        reference = self.reference(number, row, section)
        action_text = self.text(number, row, Field.action)
        if action_text is None:
            self.fail(number, Field.action, "missing_action", "no action text, and none above")
        planned = PlannedAction(number, reference, action_text or "")
        planned.improvement_requirement = self.text(number, row, Field.improvement_requirement)
        planned.organisations = self.names(number, row, Field.organisation, ods=True)
        planned.source = self.text(number, row, Field.source)
        if self.layout is Layout.system_review:
            self.alignment(number, row, planned)
        else:
            planned.leads = self.names(number, row, Field.leads, ods=False)
        self.due(number, row, planned)
        planned.status, assumed = read_status(self.cell(row, Field.status))
        if assumed:
            self.warn(number, Field.status, *assumed)
        if planned.status == ActionStatus.complete:
            planned.completed_at = self.today
            self.warn(
                number,
                Field.status,
                "completed_at",
                f"complete, and the file has no completion date: completed "
                f"{self.today:%d/%m/%Y} (the day of the import) assumed",
            )
        planned.comments = text_of(self.cell(row, Field.comments)) or None
        if planned.comments and len(planned.comments) > LIMITS["text"]:
            self.fail(number, Field.comments, "too_long", f"longer than {LIMITS['text']}")
        planned.settle()
        section.actions.append(planned)

    def reference(self, number: int, row: Row, section: PlannedSection) -> str:
        was_carried, given = self.carried(number, row, Field.reference)
        if not was_carried:
            given = one_line(text_of(self.cell(row, Field.reference))) or None
            if given is not None:
                self.remember(number, Field.reference, given)
        if given is None:
            reference = self.unused(str(len(section.actions) + 1))
            self.warn(
                number, Field.reference, "reference_generated", f"none: numbered '{reference}'"
            )
        elif given in self.references:
            reference = self.unused(given)
            self.warn(
                number,
                Field.reference,
                "duplicate_reference",
                f"'{given}' is already used in this section (row {self.references[given]}): "
                f"numbered '{reference}'",
            )
        else:
            reference = given
        if len(reference) > LIMITS["reference"]:
            self.fail(number, Field.reference, "too_long", f"longer than {LIMITS['reference']}")
        self.references[reference] = number
        return reference

    def unused(self, reference: str) -> str:
        candidate, suffix = reference, 2
        while candidate in self.references:
            candidate, suffix = f"{reference} ({suffix})", suffix + 1
        return candidate

    def alignment(self, number: int, row: Row, planned: PlannedAction) -> None:
        was_carried, value = self.carried(number, row, Field.workstream)
        if was_carried:
            planned.workstream, leads = value
            planned.leads = list(leads)
            return
        raw = text_of(self.cell(row, Field.workstream))
        if not raw:
            return
        if not is_none(raw):
            workstream, lead_text, assumed = read_alignment(raw)
            planned.workstream = workstream
            planned.leads = self.split(number, Field.workstream, lead_text, ods=False)
            if not lead_text:
                self.warn(
                    number,
                    Field.workstream,
                    "no_lead",
                    "no 'Lead:' named: all taken as the work stream, no lead recorded",
                )
            elif assumed and planned.leads:
                self.warn(
                    number,
                    Field.workstream,
                    "lead_assumed",
                    f"{assumed}: work stream '{workstream}', lead {', '.join(planned.leads)}",
                )
        self.remember(number, Field.workstream, (planned.workstream, planned.leads))

    def due(self, number: int, row: Row, planned: PlannedAction) -> None:
        if Field.due not in self.header.positions:
            return
        was_carried, due = self.carried(number, row, Field.due)
        if not was_carried:
            cell = self.cell(row, Field.due)
            if is_blank(cell):
                return
            due, assumed = read_due(cell, self.epoch)
            if assumed:
                self.warn(number, Field.due, *assumed)
            self.remember(number, Field.due, due)
        assert isinstance(due, Due)
        planned.due_date, planned.due_precision, planned.due_note = (
            due.due_date,
            due.precision,
            due.note,
        )
