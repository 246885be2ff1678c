"""The cells of one action row as the importer reads them (app.actions.rows): names,
organisations, leads handed over, the system review's alignment, delivery dates (in their
column or in the words of the action), the status, the reported RAG and completion. A mixin
of ``RowReader``: each reader warns on the cell's row about what it assumed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.actions import rag
from app.actions.cells import (
    ON_OR_BEFORE,
    UNKNOWN_LEADS,
    Due,
    is_none,
    read_alignment,
    read_completed,
    read_due,
    read_status,
    split_names,
    text_of,
)
from app.actions.limits import SpreadsheetLimits
from app.actions.organisations import Aliases, split_organisations
from app.actions.plan_text import (
    DateFound,
    due_in_words,
    handover,
    last_of_month,
    month_label,
    reported_rag,
)
from app.actions.rag import STATUS_LABELS, ActionStatus, DuePrecision
from app.actions.spreadsheets import CellValue, Field, HeaderMatch, Layout, Row, is_blank

MAX_NAMES = 50  # leads or organisations in one cell, as the API allows
LIMITS = {"title": 300, "section": 500, "name": 200, "reference": 50, "text": 20_000}


@dataclass(frozen=True, slots=True)
class ImportWarning:
    row: int | None  # as the spreadsheet program numbers it; None for the whole file
    column: str | None  # the column's header as written in the file
    code: str
    detail: str


@dataclass(frozen=True)
class ReadOptions:
    """What the user tells the importer, and the deployment's settings."""

    limits: SpreadsheetLimits = field(default_factory=SpreadsheetLimits)
    aliases: Aliases = field(default_factory=Aliases)
    as_of: date | None = None  # the file's as-at date, if the user gives it
    plan_year: int | None = None  # the year "By the end of March" falls in
    columns: dict[str, Field] | None = None  # header as written (normalised) -> field


@dataclass(frozen=True)
class FileDates:
    """The plan's year and the file's as-at date, and where each came from (for warnings)."""

    year: int
    year_from: str
    as_at: DateFound | None
    as_at_from: str


@dataclass(slots=True)
class PlannedAction:
    """One action as read (the import report serialises these fields as they are)."""

    row: int
    reference: str
    action: str
    recommendation: str | None = None
    improvement_requirement: str | None = None
    source: str | None = None
    leads: list[str] = field(default_factory=list)
    lead_history: list[str] = field(default_factory=list)
    organisations: list[str] = field(default_factory=list)
    organisation_names: list[str] = field(default_factory=list)
    workstream: str | None = None
    start_date: date | None = None
    due_date: date | None = None
    due_precision: DuePrecision = DuePrecision.day
    due_note: str | None = None
    due_text: str | None = None
    status: int | None = ActionStatus.not_yet_commenced  # None: not recorded
    reported_rag: str | None = None
    reported_rag_on: date | None = None
    reported_rag_precision: str | None = None
    comments: str | None = None
    progress: str | None = None
    progress_on: date | None = None
    completed_at: date | None = None
    completed_precision: str | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    id: uuid.UUID | None = None
    # Derived once the row is read (``settle``).
    status_label: str = ""
    falls_due_on: date | None = None
    rag: str = ""
    rag_summary: str = ""

    def settle(self, today: date) -> None:
        recorded = self.status is not None
        status = self.status or ActionStatus.not_yet_commenced
        self.status_label = STATUS_LABELS[ActionStatus(status)] if recorded else "Not recorded"
        self.falls_due_on = rag.falls_due(self.due_date, self.due_precision)
        derived = rag.derived_rag(status, recorded, self.due_date, self.due_precision, today)
        overdue = rag.is_overdue(status, self.due_date, self.due_precision, today)
        self.rag = derived.value
        self.rag_summary = rag.rag_summary(
            derived,
            overdue,
            recorded,
            self.reported_rag,
            self.reported_rag_on,
            self.reported_rag_precision,
        )


class FieldReading:
    """Reading the cells of an action row. ``RowReader`` provides the state used here."""

    layout: Layout
    header: HeaderMatch
    epoch: date
    today: date
    options: ReadOptions
    dates: FileDates

    def warn(self, row: int | None, column: Field | None, code: str, detail: str) -> None:
        raise NotImplementedError

    def fail(self, row: int | None, column: Field | None, code: str, detail: str) -> None:
        raise NotImplementedError

    def cell(self, row: Row, column: Field) -> CellValue:
        raise NotImplementedError

    def carried(self, number: int, row: Row, column: Field) -> tuple[bool, Any]:
        raise NotImplementedError

    def remember(self, number: int, column: Field, value: Any) -> None:
        raise NotImplementedError

    def filled(self, row: Row, column: Field) -> str:
        raise NotImplementedError

    # --- the cells that are carried down a page: organisations, leads, the work stream ------

    def organisations_of(self, number: int, row: Row, planned: PlannedAction) -> None:
        was_carried, value = self.carried(number, row, Field.organisation)
        if was_carried:
            planned.organisations, planned.organisation_names = list(value[0]), list(value[1])
            return
        raw = self.filled(row, Field.organisation)
        planned.organisations, planned.organisation_names = self.organisations(
            number, Field.organisation, raw
        )
        if not is_blank(self.cell(row, Field.organisation)):
            self.remember(
                number, Field.organisation, (planned.organisations, planned.organisation_names)
            )

    def leads_of(self, number: int, row: Row, planned: PlannedAction) -> None:
        was_carried, value = self.carried(number, row, Field.leads)
        if was_carried:
            planned.leads, planned.lead_history = list(value[0]), list(value[1])
            return
        raw = text_of(self.cell(row, Field.leads))
        planned.leads, planned.lead_history = self.leads(number, Field.leads, raw)
        if raw:
            self.remember(number, Field.leads, (planned.leads, planned.lead_history))

    def alignment_of(self, number: int, row: Row, planned: PlannedAction) -> None:
        was_carried, value = self.carried(number, row, Field.workstream)
        if was_carried:
            planned.workstream, leads, history = value
            planned.leads, planned.lead_history = list(leads), list(history)
            return
        raw = text_of(self.cell(row, Field.workstream))
        if not raw:
            return
        self.alignment(number, raw, planned)
        self.remember(
            number, Field.workstream, (planned.workstream, planned.leads, planned.lead_history)
        )

    def progress(self, number: int, text: str, planned: PlannedAction) -> None:
        """ "Progress made Sept 2019": a progress update dated by its header; undated, the
        text is the action's comments."""
        stamp = self.header.dates.get(Field.progress)
        if stamp is None or stamp.month is None:
            planned.comments = f"{planned.comments}\n{text}" if planned.comments else text
            return
        first = planned.progress is None
        planned.progress = f"{planned.progress}\n{text}" if planned.progress else text
        planned.progress_on = date(stamp.year, stamp.month, 1)
        if first:
            self.warn(
                number,
                Field.progress,
                "progress_dated",
                f"a progress update dated {planned.progress_on:%B %Y} (from the header)",
            )

    # --- names ---------------------------------------------------------------------------

    def leads(self, number: int, column: Field, raw: str) -> tuple[list[str], list[str]]:
        """(current leads, earlier leads) from a cell: "AB, CD", "(Phil Corrigan > Tim Ryley)"."""
        found: list[str] = []
        history: list[str] = []
        for written in split_names(raw):
            if is_none(written):
                continue
            if written.lower() in UNKNOWN_LEADS:
                self.warn(number, column, "lead_unknown", f"lead not known ('{written}'): no lead")
                continue
            current, earlier = handover(written.strip("() "))
            if earlier:
                self.warn(
                    number,
                    column,
                    "lead_handover",
                    f"'{written}': the lead is {current}; {', '.join(earlier)} before "
                    "(kept in the lead history)",
                )
                history += [name for name in earlier if name not in history]
            self.name_fits(number, column, current)
            if current.casefold() not in {kept.casefold() for kept in found}:
                found.append(current)
        if len(found) > MAX_NAMES:
            self.fail(number, column, "too_many_names", f"more than {MAX_NAMES} names")
        return found, history

    def name_fits(self, number: int | None, column: Field | None, name: str) -> None:
        if len(name) > LIMITS["name"]:
            self.fail(number, column, "too_long", f"a name longer than {LIMITS['name']}")

    def organisations(
        self, number: int | None, column: Field | None, raw: str, codes_line: bool = False
    ) -> tuple[list[str], list[str]]:
        """(ODS codes, names as written). Each name is kept as written; a code is taken from
        the name when the alias table knows it or it is plainly one (app.actions.organisations;
        ``codes_line``: an "ODS codes:" line, whose code-shaped names are codes)."""
        codes: list[str] = []
        names: list[str] = []
        for written in split_organisations(raw):
            if is_none(written) or written.casefold() in {name.casefold() for name in names}:
                continue
            self.name_fits(number, column, written)
            resolved = self.options.aliases.resolve(written, codes_line)
            names.append(resolved.written)
            if resolved.how == "alias":
                self.warn(
                    number,
                    column,
                    "organisation_alias",
                    f"'{written}' is {resolved.name} ({resolved.code}), by the alias table",
                )
            elif resolved.how == "maybe_code":
                self.warn(
                    number,
                    column,
                    "organisation_maybe_code",
                    f"'{written}' has the shape of an ODS code but no digit, and the alias table "
                    f"does not know it: it may be an abbreviation, so it is kept as a name (if "
                    f"it is the code, write 'ODS {written.upper()}' or add it to the alias table)",
                )
            elif resolved.how == "name":
                self.warn(
                    number,
                    column,
                    "organisation_name",
                    f"'{written}' is not an ODS code and not in the alias table: kept as a name",
                )
            if resolved.code is not None and resolved.code not in codes:
                codes.append(resolved.code)
        if len(names) > MAX_NAMES:
            self.fail(number, column, "too_many_names", f"more than {MAX_NAMES} names")
        return codes, names

    def alignment(self, number: int, raw: str, planned: PlannedAction) -> None:
        """A system review's "Alignment with a work stream ... including Lead" cell (in the
        provider layout, which has a lead column, an export's "Work stream": all work stream)."""
        if not raw or is_none(raw):
            return
        if self.layout is Layout.provider:
            planned.workstream = f"{planned.workstream}; {raw}" if planned.workstream else raw
            return
        workstream, lead_text, assumed = read_alignment(raw)
        if workstream and workstream != planned.workstream:
            planned.workstream = (
                f"{planned.workstream}; {workstream}" if planned.workstream else workstream
            )
        leads, history = self.leads(number, Field.workstream, lead_text)
        planned.leads += [lead for lead in leads if lead not in planned.leads]
        planned.lead_history += [name for name in history if name not in planned.lead_history]
        if not lead_text:
            self.warn(
                number,
                Field.workstream,
                "no_lead",
                "no 'Lead:' named: all taken as the work stream, no lead recorded",
            )
        elif assumed and leads:
            self.warn(
                number,
                Field.workstream,
                "lead_assumed",
                f"{assumed}: "
                + (f"work stream '{workstream}', " if workstream else "no work stream, ")
                + f"lead {', '.join(leads)}",
            )

    # --- dates ---------------------------------------------------------------------------

    def due(self, number: int, row: Row, planned: PlannedAction) -> None:
        if Field.due in self.header.positions:
            was_carried, due = self.carried(number, row, Field.due)
            if not was_carried:
                cell = self.cell(row, Field.due)
                due = None
                if not is_blank(cell):
                    due, assumed = read_due(cell, self.epoch)
                    if assumed:
                        self.warn(number, Field.due, *assumed)
                    self.remember(number, Field.due, due)
            if isinstance(due, Due):
                planned.due_date, planned.due_precision, planned.due_note = (
                    due.due_date,
                    due.precision,
                    due.note,
                )
        if planned.due_date is None and planned.due_note is None:
            self.due_in_words(number, planned)

    def due_in_words(self, number: int, planned: PlannedAction) -> None:
        found = due_in_words(planned.action, self.dates.year)
        if found is None:
            return
        year = "" if found.year_given else f" (the plan's year, {self.dates.year_from})"
        if found.starts:
            planned.start_date = found.month
            self.warn(
                number,
                Field.action,
                "start_from_text",
                f"'{found.words}' read as starting in {found.month:%B %Y}{year}",
            )
            return
        planned.due_date, planned.due_precision = found.month, DuePrecision.month
        planned.due_text = found.words
        self.warn(
            number,
            Field.action,
            "due_from_text",
            f"'{found.words}' read as due by the end of {found.month:%B %Y}{year}; the words "
            "are kept",
        )

    # --- status, RAG, completion ---------------------------------------------------------

    def status_and_rag(self, number: int, row: Row, planned: PlannedAction) -> None:
        planned.status = None
        warned = False
        if Field.status in self.header.positions:
            cell = self.cell(row, Field.status)
            planned.status, assumed = read_status(cell)
            if assumed:
                self.warn(number, Field.status, *assumed)
                warned = planned.status is None
            if assumed and assumed[0] == "rag_in_status":
                self.reported(number, Field.status, text_of(cell), planned)
            elif assumed and assumed[0] == "status_unknown":
                self.keep_words(Field.status, text_of(cell), planned)
        rag_text = text_of(self.cell(row, Field.rag))
        if rag_text and not is_none(rag_text):
            self.reported(number, Field.rag, rag_text, planned)
        if planned.status is None and not warned:
            self.warn(number, None, "status_not_recorded", "no status column: not recorded")
        self.completion(number, row, planned)

    def reported(self, number: int, column: Field, text: str, planned: PlannedAction) -> None:
        found, when = reported_rag(text)
        if found is None:
            status, assumed = read_status(text)
            if status is not None and assumed is None:
                planned.status = status
                self.warn(number, column, "status_in_rag_column", f"'{text}' is a status: kept")
            else:
                self.warn(
                    number,
                    column,
                    "rag_unknown",
                    f"'{text}' is not a RAG: not recorded; the words are kept in the comments",
                )
                self.keep_words(column, text, planned)
            return
        planned.reported_rag = found.value
        if when is None:
            when, source = self.rag_date(column)
            self.warn(
                number,
                column,
                "reported_rag",
                f"'{text}' kept as the reported RAG, judged {month_label(when.day, when.precision)}"
                f" ({source}); the service derives its own beside it",
            )
        planned.reported_rag_on, planned.reported_rag_precision = when.day, when.precision

    def keep_words(self, column: Field, text: str, planned: PlannedAction) -> None:
        """A status or RAG cell that says neither ("Complete - see comments", "A/G"): its
        words go in the comments, under the column's header, so that nothing is lost."""
        note = f"{self.header.titles.get(column, column.value)}: {text}"
        planned.comments = f"{planned.comments}\n{note}" if planned.comments else note

    def rag_date(self, column: Field) -> tuple[DateFound, str]:
        for field_name in (column, Field.rag, Field.progress):
            stamp = self.header.dates.get(field_name)
            if stamp is not None and stamp.month is not None:
                title = self.header.titles[field_name]
                return DateFound(date(stamp.year, stamp.month, 1), "month"), f"from '{title}'"
        if self.dates.as_at is not None:
            return self.dates.as_at, f"the file's as-at date, {self.dates.as_at_from}"
        return DateFound(self.today, "day"), "no date in the file: the day of the import"

    def completion(self, number: int, row: Row, planned: PlannedAction) -> None:
        """A complete action's completion: the "Completed" cell's date (as exports write it),
        else on or before the file's as-at date, else on or before the day of the import."""
        cell = self.cell(row, Field.completed)
        written = None if is_blank(cell) or is_none(text_of(cell)) else cell
        if planned.status != ActionStatus.complete:
            if written is not None:
                self.warn(
                    number,
                    Field.completed,
                    "completed_not_complete",
                    "a completion date for an action that is not complete: not imported",
                )
            return
        if written is not None:
            day, precision, assumed = read_completed(written, self.epoch)
            if assumed:
                self.warn(number, Field.completed, *assumed)
            if day is not None and day <= self.today:
                planned.completed_at, planned.completed_precision = day, precision
                return
            if day is not None:
                self.warn(
                    number,
                    Field.completed,
                    "completed_future",
                    f"{day:%d/%m/%Y} is in the future: not a completion date",
                )
        as_at = self.dates.as_at
        if as_at is None:
            day, source = self.today, "the day of the import: the file has no as-at date"
        else:
            day = last_of_month(as_at.day) if as_at.precision == "month" else as_at.day
            source = f"the file's as-at date, {self.dates.as_at_from}"
        planned.completed_at, planned.completed_precision = day, ON_OR_BEFORE
        self.warn(
            number,
            Field.status if Field.status in self.header.positions else Field.rag,
            "completed_on_or_before",
            f"complete, with no completion date: completed on or before {day:%d/%m/%Y} ({source})",
        )
