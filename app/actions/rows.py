"""What the rows after a spreadsheet's header row mean, one at a time, and every assumption
made reading them (docs/spreadsheets.md, "How a sheet is read").

A row is blank (skipped), the header or the page title again (page breaks: skipped), a
section header (text in the table's first column only), the **continuation** of the action
above (a row with no reference, number or date of its own holding only a lead, an alignment,
a comment, a bullet point, "Also covered by action 5.", the rest of a cell a page break
split, or a RAG or status alone: merged into that action, app.actions.row_merging), or an
action: in a system review, as many actions as its cell numbers ("1. ...\n2. ..."), or, on a
recommendation with no number, its comment (held). Merged cells arrive as blanks: in
the columns that describe a block of actions (provider: organisation, reference, improvement
requirement, actions, source, lead, delivery date; system review: #, recommendation,
actions, alignment) a blank means "same as above", within the section. A blank status is not
recorded. A reference already used in the section is numbered "3 (2)". A system review's
recommendations (A-Q) and its actions (1-36) are numbered separately: the letter is the
action's recommendation, the number its reference.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.actions.cells import is_none, one_line, text_of
from app.actions.plan_text import is_bullet, is_only_link, letter, links_in, numbered_items
from app.actions.row_fields import (
    LIMITS,
    FileDates,
    ImportWarning,
    PlannedAction,
    ReadOptions,
)
from app.actions.row_merging import MAX_ACTIONS, Held, RowMerging
from app.actions.spreadsheets import (
    CellValue,
    Field,
    HeaderMatch,
    Layout,
    Row,
    is_blank,
    normalise_header,
)

__all__ = ["LIMITS", "ImportWarning", "PlannedAction", "PlannedSection", "RowReader"]

MAX_SECTIONS = 200  # as POST /v1/action-plans allows
MAX_ERRORS = 100
DEFAULT_SECTION = "General"
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
# A continuation row has none of these of its own; with a status or RAG of its own, it has
# no text either (and, in the provider layout, no organisation or lead: another's delivery).
_OWN = (Field.reference, Field.due, Field.recommendation)
_JUDGEMENT = (Field.status, Field.rag)


@dataclass(slots=True)
class PlannedSection:
    row: int | None
    title: str
    position: int
    actions: list[PlannedAction] = field(default_factory=list)
    id: uuid.UUID | None = None


class RowReader(RowMerging):
    """One pass over the rows after the header: sections, actions, and what was assumed."""

    def __init__(
        self,
        header: HeaderMatch,
        epoch: date,
        today: date,
        options: ReadOptions,
        dates: FileDates,
        page_lines: set[str],
    ) -> None:
        self.layout = header.layout
        self.header = header
        self.epoch = epoch
        self.today = today
        self.options = options
        self.dates = dates
        self.page_lines = page_lines
        self.sections: list[PlannedSection] = []
        self.warnings: list[ImportWarning] = []
        self.errors: list[dict[str, Any]] = []
        self.above: dict[Field, tuple[int, Any]] = {}
        self.references: dict[str, int] = {}
        self.first_column = min(header.positions.values())
        self.actions = 0
        self.recommendation: str | None = None
        self.numbered_in_text = False  # a system review numbering its actions in their text
        self.held: list[Held] = []  # a recommendation's rows with no action number (``absorb``)
        self.after_break = False  # the last row read was the header or page title again
        self.header_texts = {normalise_header(title) for title in header.titles.values()}
        self.header_texts |= {normalise_header(title) for _, title in header.ignored}

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

    def filled(self, row: Row, column: Field) -> str:
        text = text_of(self.cell(row, column))
        return "" if is_none(text) else text

    # --- what a row is -----------------------------------------------------------------

    def read(self, number: int, row: Row) -> None:
        filled = [index for index, value in enumerate(row) if not is_blank(value)]
        if not filled:
            return
        after_break, self.after_break = self.after_break, False
        if self.header_again(row, filled):
            self.warn(number, None, "repeated_header", "the header row again: skipped")
            self.after_break = True
        elif len(filled) == 1 and normalise_header(text_of(row[filled[0]])) in self.page_lines:
            self.warn(number, None, "repeated_title", "the page title again: skipped")
            self.after_break = True
        elif after_break and (above := self.split_cell(row, filled)) is not None:
            self.merge(number, row, above)
        elif len(filled) == 1 and filled[0] <= self.first_column:
            self.section(number, one_line(text_of(row[filled[0]])))
        elif (merged := self.continuation(number, row)) is not None:
            self.merge(number, row, merged)
        else:
            self.action(number, row)

    def header_again(self, row: Row, filled: list[int]) -> bool:
        """The header row repeated at a page break: most of the row's cells are the header's
        own (compared as headers are, without case or punctuation)."""
        if len(filled) < 3:
            return False
        same = 0
        for index in filled:
            value = row[index]
            if isinstance(value, str) and len(value) <= 300:
                same += normalise_header(value) in self.header_texts
        return same >= max(3, 0.6 * len(filled))

    def split_cell(self, row: Row, filled: list[int]) -> PlannedAction | None:
        """The action whose Actions cell a page break split: just after the repeated header or
        page title, a row whose only filled cell is the Actions column (and, in a plan that
        numbers its actions in their text, starts no numbered action)."""
        index = self.header.positions.get(Field.action)
        if (
            index is None
            or filled != [index]
            or self.starts_actions(self.filled(row, Field.action))
        ):
            return None
        return self.last_action()

    def last_action(self) -> PlannedAction | None:
        """The action a continuation belongs to: the section's last, or a row held before
        its first (a recommendation's comment)."""
        section = self.sections[-1] if self.sections else None
        if section is None:
            return None
        if section.actions:
            return section.actions[-1]
        return self.held[-1].planned if self.held else None

    def starts_actions(self, text: str) -> bool:
        return self.numbered_in_text and bool(numbered_items(text)[1])

    def section(self, number: int | None, title: str) -> None:
        self.release()
        if len(title) > LIMITS["section"]:
            self.fail(number, None, "too_long", f"a section title longer than {LIMITS['section']}")
        if len(self.sections) == MAX_SECTIONS:
            self.fail(number, None, "too_many_sections", f"more than {MAX_SECTIONS} sections")
        self.sections.append(PlannedSection(number, title, len(self.sections) + 1))
        self.above = {}
        self.references = {}

    def continuation(self, number: int, row: Row) -> PlannedAction | None:
        """The action this row continues, or None if the row is an action of its own."""
        above = self.last_action()
        if above is None or any(self.filled(row, column) for column in _OWN):
            return None
        action_text = self.filled(row, Field.action)
        requirement = self.filled(row, Field.improvement_requirement)
        if any(self.filled(row, column) for column in _JUDGEMENT) and (
            action_text
            or requirement
            or (
                self.layout is Layout.provider
                and (self.filled(row, Field.organisation) or self.filled(row, Field.leads))
            )
        ):
            return None  # an action with its own status or RAG
        if self.layout is Layout.provider and requirement and not action_text:
            return None  # an action whose text is its requirement (``action``)
        if action_text and not (
            is_bullet(action_text)
            or is_only_link(action_text)
            or (self.numbered_in_text and not numbered_items(action_text)[1])
        ):
            return None
        return above

    # --- "same as above" ---------------------------------------------------------------

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

    # --- an action -----------------------------------------------------------------------

    def action(self, number: int, row: Row) -> None:
        self.actions += 1
        if self.actions > MAX_ACTIONS:
            if self.actions == MAX_ACTIONS + 1:
                self.fail(number, None, "too_many_rows", f"more than {MAX_ACTIONS} actions")
            return
        mark = self.filled(row, Field.reference) if self.layout is Layout.system_review else ""
        letter_found = letter(mark) if mark else None
        if letter_found is not None:
            self.new_recommendation(number, row, letter_found)
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
        requirement = self.text(number, row, Field.improvement_requirement)
        action_text = self.filled(row, Field.action)
        number_in_text = None
        preamble: str = ""
        items: list[tuple[str, str]] = []
        if self.layout is Layout.system_review and action_text:
            preamble, items = self.items_of(action_text, mark, letter_found)
            if items:
                number_in_text, action_text = items[0]
            if number_in_text is not None and (letter_found or self.numbered_in_text or not mark):
                self.numbered_in_text = True
        # A recommendation's row with text and no action number, before its numbered actions:
        # held until the recommendation's first numbered action, or its end (``absorb``).
        hold = (
            self.layout is Layout.system_review
            and bool(action_text)
            and not items
            and not (mark and letter_found is None)
            and self.recommendation is not None
            and not section.actions
            and not self.filled(row, Field.due)
        )
        if action_text:
            self.remember(number, Field.action, action_text)
            if len(action_text) > LIMITS["text"]:
                self.fail(number, Field.action, "too_long", f"longer than {LIMITS['text']}")
        elif self.cell(row, Field.action) is not None and not is_blank(
            self.cell(row, Field.action)
        ):
            action_text = ""  # "-": nothing
        elif self.layout is Layout.provider and self.filled(row, Field.improvement_requirement):
            action_text = requirement or ""
            self.warn(
                number,
                Field.action,
                "action_from_requirement",
                "blank, beside an improvement requirement: the requirement is the action",
            )
        else:
            was_carried, value = self.carried(number, row, Field.action)
            action_text = value if was_carried and isinstance(value, str) else ""
        if not action_text:
            self.fail(number, Field.action, "missing_action", "no action text, and none above")
        planned = PlannedAction(number, "", action_text)
        place = len(section.actions) + 1
        if not hold:
            planned.reference = self.reference(number, row, place, number_in_text, letter_found)
        planned.recommendation = self.recommendation
        if self.layout is Layout.provider and (given := self.filled(row, Field.recommendation)):
            planned.recommendation = letter(given) or given[:20]
        planned.improvement_requirement = requirement
        planned.source = self.text(number, row, Field.source)
        self.organisations_of(number, row, planned)
        if self.layout is Layout.system_review:
            self.alignment_of(number, row, planned)
        else:
            self.leads_of(number, row, planned)
            planned.workstream = self.text(number, row, Field.workstream)  # an export's extra
        if not hold:
            self.due(number, row, planned)
        self.status_and_rag(number, row, planned)
        comments = text_of(self.cell(row, Field.comments))
        kept = planned.comments  # a status or RAG cell's words (``keep_words``)
        comments = "" if is_none(comments) else comments
        planned.comments = "\n".join(part for part in (comments, kept) if part) or None
        if progress := self.filled(row, Field.progress):
            self.progress(number, progress, planned)
        if hold:
            self.held.append(Held(number, row, planned, section.actions))
            return
        more = self.split(number, row, planned, items[1:], place, letter_found)
        if preamble:
            self.preamble(number, preamble, planned, self.last_action())
        if self.held:
            self.absorb(planned)
        for made in (planned, *more):
            for text in (made.comments, made.progress):
                if text and len(text) > LIMITS["text"]:
                    self.fail(number, Field.comments, "too_long", f"longer than {LIMITS['text']}")
            made.settle(self.today)
        section.actions += [planned, *more]
        if more:
            self.remember(number, Field.action, more[-1].action)

    def new_recommendation(self, number: int, row: Row, found: str) -> None:
        """A letter in "#": a recommendation; a new one starts its own section (unless the
        sheet's own section row for it is the current section)."""
        if found == self.recommendation:
            return
        self.release()
        self.recommendation = found
        text = one_line(self.filled(row, Field.improvement_requirement))
        current = self.sections[-1].title if self.sections else ""
        if self.sections and letter(current.split(" ", 1)[0]) == found:
            return
        title = f"{found}. {text}" if text else f"Recommendation {found}"
        if len(title) > LIMITS["section"]:
            title = title[: LIMITS["section"] - 1].rstrip() + "\u2026"
        self.section(None, title)
        self.sections[-1].row = number
        self.warn(
            number,
            Field.reference,
            "recommendation",
            f"recommendation {found}: its actions are a section, '{title[:60]}'",
        )

    # --- after the last row ----------------------------------------------------------------

    def finish(self) -> None:
        """Links named in the text ("Linked to action 7", "Also covered by action 5") become
        links to those actions; sections with no actions are kept."""
        self.release()
        by_reference: dict[str, PlannedAction] = {}
        for section in self.sections:
            if not section.actions:
                self.warn(section.row, None, "empty_section", "a section with no actions: kept")
            for planned in section.actions:
                by_reference.setdefault(planned.reference, planned)
        for section in self.sections:
            for planned in section.actions:
                for reference, kind in links_in(planned.action):
                    target = by_reference.get(reference)
                    if target is None or target is planned:
                        self.warn(
                            planned.row,
                            Field.action,
                            "link_unresolved",
                            f"'action {reference}' is not an action of this plan: no link",
                        )
                        continue
                    planned.links.append(
                        {"reference": reference, "kind": kind, "row": target.row, "id": None}
                    )
                    self.warn(
                        planned.row,
                        Field.action,
                        "link",
                        f"'action {reference}' read as a link ({kind.replace('_', ' ')}) to "
                        f"the action on row {target.row}",
                    )
