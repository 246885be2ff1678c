"""Rows and cells that are not one action each (docs/spreadsheets.md, "How a sheet is read"):
a **continuation** row merged into the action above (a lead, a comment, a bullet point, the
rest of a cell a page break split, a RAG or a status alone); a system review's cell holding
**several numbered actions** ("1. By June do x\\n2. By July do y"), split into one action per
number; a recommendation's **comment** with no action number ("Leeds agrees with this
recommendation."), held until the recommendation's first numbered action takes it in its
comments, or, if none comes, made the recommendation's one action; and the **references**
these get. A mixin of ``RowReader`` (app.actions.rows), warning on each row what it assumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from app.actions.cells import read_status, status_text, text_of
from app.actions.plan_text import month_label, numbered, numbered_items, reported_rag
from app.actions.rag import RAG_NAMES, DuePrecision, Rag
from app.actions.row_fields import LIMITS, FieldReading, PlannedAction
from app.actions.spreadsheets import Field, Layout, Row

MAX_ACTIONS = 50_000
# What a cell of several numbered actions shares: copied to each of them.
_SHARED = "the row's recommendation, alignment and lead, progress, RAG and status"
_NAMES = {Field.rag: "RAG", Field.status: "Status", Field.workstream: "Alignment"}


@dataclass(slots=True)
class Held:
    """A row of a recommendation with text and no action number, read before any numbered
    action of that recommendation: a comment of the recommendation, or its one action."""

    number: int
    row: Row
    planned: PlannedAction
    actions: list[PlannedAction]  # its section's


def _alignment(planned: PlannedAction) -> str:
    """ "SRAB / ORG (Phil Corrigan > Tim Ryley)", as the system-review export writes it."""
    lead = ", ".join([" > ".join([*planned.lead_history, *planned.leads[:1]]), *planned.leads[1:]])
    if planned.workstream and lead:
        return f"{planned.workstream} ({lead})"
    return planned.workstream or lead


def _joined(first: str | None, second: str | None) -> str | None:
    return "\n".join(part for part in (first, second) if part) or None


class RowMerging(FieldReading):
    """Continuations, numbered cells, recommendations' comments, references."""

    references: dict[str, int]
    held: list[Held]
    actions: int
    numbered_in_text: bool

    # --- references ----------------------------------------------------------------------

    def reference(
        self,
        number: int,
        row: Row,
        place: int,
        number_in_text: str | None,
        letter_found: str | None,
    ) -> str:
        """``place``: the action's place in its section, its reference if it has none."""
        given: str | None
        if letter_found is not None or (
            self.layout is Layout.system_review and number_in_text is not None
        ):
            given = number_in_text  # the action's own number; the letter is its recommendation
            if given is not None and not self.filled(row, Field.reference):
                self.remember(number, Field.reference, given)
        else:
            was_carried, given = self.carried(number, row, Field.reference)
            if not was_carried:
                given = " ".join(text_of(self.cell(row, Field.reference)).split()) or None
                if given is not None:
                    self.remember(number, Field.reference, given)
        if given is None:
            reference = self.unused(str(place))
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

    # --- a cell of several numbered actions ------------------------------------------------

    def items_of(
        self, text: str, mark: str, letter_found: str | None
    ) -> tuple[str, list[tuple[str, str]]]:
        """(the text before the first action number, [(number, text), ...]) in a system
        review's Actions cell. Numbered by "#" ("3"), the cell is one action whatever its text
        lists; text before a number is read so only in a plan that numbers its actions in
        their text, or on a recommendation's row ("A."): elsewhere a list inside an action."""
        if mark and letter_found is None:
            found, rest = numbered(text)
            return "", [] if found is None else [(found, rest)]
        preamble, items = numbered_items(text)
        if not items or (preamble and not (self.numbered_in_text or letter_found)):
            return "", []  # one action, its text as written
        return preamble, items

    def split(
        self,
        number: int,
        row: Row,
        planned: PlannedAction,
        items: list[tuple[str, str]],
        place: int,
        letter_found: str | None,
    ) -> list[PlannedAction]:
        """The second and later numbered actions of the cell that gave ``planned`` its first:
        each its own number, text and due date in its words; the rest copied from the row."""
        if not items:
            return []
        words_dated = planned.due_text is not None or planned.start_date is not None
        undated = planned.due_date is None and planned.due_note is None
        made: list[PlannedAction] = []
        for offset, (item_number, text) in enumerate(items, start=1):
            self.actions += 1
            if self.actions == MAX_ACTIONS + 1:
                self.fail(number, None, "too_many_rows", f"more than {MAX_ACTIONS} actions")
            extra = dataclasses.replace(
                planned,
                action=text,
                leads=list(planned.leads),
                lead_history=list(planned.lead_history),
                organisations=list(planned.organisations),
                organisation_names=list(planned.organisation_names),
                links=[],
            )
            extra.reference = self.reference(number, row, place + offset, item_number, letter_found)
            if words_dated or undated:
                extra.due_date, extra.due_precision, extra.due_text = None, DuePrecision.day, None
                extra.start_date = None
                self.due_in_words(number, extra)
            extra.settle(self.today)
            made.append(extra)
        numbers = ", ".join([planned.reference, *(extra.reference for extra in made)])
        self.warn(
            number,
            Field.action,
            "actions_split",
            f"{len(made) + 1} numbered actions in one cell ({numbers}): each an action of its "
            f"own, with its own number, text and due date; {_SHARED} copied to each",
        )
        return made

    def preamble(
        self, number: int, text: str, planned: PlannedAction, above: PlannedAction | None
    ) -> None:
        """Text before the first action number in a cell: the rest of the action above, or, at
        the start of a recommendation, its comment (kept in ``planned``'s comments)."""
        if above is not None:
            above.action = f"{above.action}\n{text}"
            above.settle(self.today)
            self.warn(
                number,
                Field.action,
                "continuation",
                f"the text before action {planned.reference}'s number: added to the action "
                f"above (row {above.row})",
            )
            return
        planned.comments = _joined(
            self.comment_note(planned.recommendation, text), planned.comments
        )
        self.warn(
            number,
            Field.action,
            "recommendation_comment",
            f"the text before action {planned.reference}'s number is a comment of the "
            f"recommendation: kept in the comments of action {planned.reference}",
        )

    @staticmethod
    def comment_note(recommendation: str | None, text: str) -> str:
        return f"Comment on recommendation {recommendation}: {text}" if recommendation else text

    # --- a recommendation's comment ----------------------------------------------------------

    def absorb(self, planned: PlannedAction) -> None:
        """The recommendation's first numbered action takes the rows held before it: their
        text as comments, their progress, and their RAG and status where it has none."""
        held, self.held = self.held, []
        notes: list[str] = []
        for item in held:
            source = item.planned
            self.actions -= 1
            notes.append(self.comment_note(source.recommendation, source.action))
            if source.comments:
                notes.append(source.comments)
            if source.progress:
                planned.progress = _joined(source.progress, planned.progress)
                planned.progress_on = planned.progress_on or source.progress_on
            self.alignment_taken(item.number, source, planned)
            if not planned.organisation_names:
                planned.organisations = list(source.organisations)
                planned.organisation_names = list(source.organisation_names)
            planned.source = planned.source or source.source
            self.combine(item.number, source, planned)
            self.warn(
                item.number,
                Field.action,
                "recommendation_comment",
                f"no action number, on recommendation {source.recommendation}, whose actions "
                f"are numbered: a comment of the recommendation, kept in the comments of its "
                f"first action, {planned.reference} (row {planned.row})",
            )
        planned.comments = _joined("\n".join(notes), planned.comments)

    def alignment_taken(self, number: int, source: PlannedAction, planned: PlannedAction) -> None:
        """A held row's alignment and lead: the action's when it has none (a blank below is
        "same as above": they are then the same); another of its own keeps it, and the held
        row's goes in its comments, as the export writes it ("SRAB (Tim Ryley)")."""
        if not (source.workstream or source.leads):
            return
        if not (planned.workstream or planned.leads):
            planned.workstream = source.workstream
            planned.leads, planned.lead_history = list(source.leads), list(source.lead_history)
        elif (source.workstream, source.leads) != (planned.workstream, planned.leads):
            self.conflict(
                number, Field.workstream, _alignment(source), _alignment(planned), planned
            )

    def release(self) -> None:
        """The recommendation ended with no numbered action: each held row is an action. One
        alone is the recommendation's action, its reference the recommendation's letter."""
        held, self.held = self.held, []
        for item in held:
            planned = item.planned
            if len(held) == 1 and planned.recommendation:
                planned.reference = self.unused(planned.recommendation)
                self.warn(
                    item.number,
                    Field.reference,
                    "reference_from_recommendation",
                    f"no action number, and recommendation {planned.recommendation} has no "
                    f"numbered action: its one action, its reference '{planned.reference}'",
                )
            else:
                planned.reference = self.unused(str(len(item.actions) + 1))
                self.warn(
                    item.number,
                    Field.reference,
                    "reference_generated",
                    f"none: numbered '{planned.reference}'",
                )
            self.references[planned.reference] = item.number
            self.due(item.number, item.row, planned)
            planned.settle(self.today)
            item.actions.append(planned)

    # --- a RAG or a status ---------------------------------------------------------------

    def judgement(self, number: int, row: Row) -> tuple[PlannedAction, str]:
        """A continuation row's status and RAG, read as an action's are (unknown words kept
        as comments), for ``combine``; and where the RAG's date came from."""
        found = PlannedAction(number, "", "", status=None)
        dated = "as written"
        if Field.status in self.header.positions and (text := self.filled(row, Field.status)):
            found.status, assumed = read_status(text)
            if assumed:
                self.warn(number, Field.status, *assumed)
            if assumed and assumed[0] == "rag_in_status":
                dated = self.rag_of(number, Field.status, text, found)
            elif assumed and assumed[0] == "status_unknown":
                self.keep_words(Field.status, text, found)
        if text := self.filled(row, Field.rag):
            dated = self.rag_of(number, Field.rag, text, found)
        self.completion(number, row, found)
        return found, dated

    def rag_of(self, number: int, column: Field, text: str, found: PlannedAction) -> str:
        value, when = reported_rag(text)
        if value is None:
            self.reported(number, column, text, found)  # a status, or words kept
            return "as written"
        found.reported_rag = value.value
        dated = "as written"
        if when is None:
            when, dated = self.rag_date(column)
        found.reported_rag_on, found.reported_rag_precision = when.day, when.precision
        return dated

    def combine(
        self, number: int, source: PlannedAction, target: PlannedAction, dated: str | None = None
    ) -> None:
        """``source``'s RAG and status become ``target``'s where it has none; where it has its
        own, a different one is kept in its comments, warned about (never a new action).
        ``dated``: where a continuation row's RAG got its date (warned when it is taken)."""
        if source.reported_rag is not None:
            name = shown = RAG_NAMES[Rag(source.reported_rag)]
            when = ""
            if source.reported_rag_on is not None:
                when = month_label(source.reported_rag_on, source.reported_rag_precision)
                shown = f"{name} ({when})"
            if target.reported_rag is None:
                target.reported_rag = source.reported_rag
                target.reported_rag_on = source.reported_rag_on
                target.reported_rag_precision = source.reported_rag_precision
                if dated is not None:
                    column = Field.rag if Field.rag in self.header.positions else Field.status
                    self.warn(
                        number,
                        column,
                        "reported_rag",
                        f"'{name}' kept as the reported RAG of the action above (row "
                        f"{target.row}), judged {when} ({dated})",
                    )
            elif target.reported_rag != source.reported_rag:
                self.conflict(number, Field.rag, shown, RAG_NAMES[Rag(target.reported_rag)], target)
        if source.status is not None:
            if target.status is None:
                target.status = source.status
                target.completed_at = source.completed_at
                target.completed_precision = source.completed_precision
            elif target.status != source.status:
                self.conflict(
                    number,
                    Field.status,
                    status_text(source.status),
                    status_text(target.status),
                    target,
                )

    def conflict(
        self, number: int, column: Field, shown: str, own: str, target: PlannedAction
    ) -> None:
        title = self.header.titles.get(column) or _NAMES.get(column, column.value)
        target.comments = _joined(target.comments, f"{title}: {shown}")
        self.warn(
            number,
            column,
            "continuation_conflict",
            f"'{shown}', but the action it belongs to (row {target.row}) has its own, '{own}': "
            "kept in that action's comments",
        )

    # --- a continuation ------------------------------------------------------------------

    def merge(self, number: int, row: Row, previous: PlannedAction) -> None:
        parts: list[str] = []
        for column in (Field.action, Field.improvement_requirement, Field.source):
            if text := self.filled(row, column):
                old = getattr(previous, column.value)
                setattr(previous, column.value, f"{old}\n{text}" if old else text)
                parts.append(self.title(column))
        if text := self.filled(row, Field.comments):
            previous.comments = f"{previous.comments}\n{text}" if previous.comments else text
            parts.append(self.title(Field.comments))
        if text := self.filled(row, Field.progress):
            self.progress(number, text, previous)
            parts.append(self.title(Field.progress))
        if text := self.filled(row, Field.leads):
            leads, history = self.leads(number, Field.leads, text)
            previous.leads += [lead for lead in leads if lead not in previous.leads]
            previous.lead_history += [n for n in history if n not in previous.lead_history]
            parts.append(self.title(Field.leads))
        if text := self.filled(row, Field.workstream):
            self.alignment(number, text, previous)
            parts.append(self.title(Field.workstream))
        if text := self.filled(row, Field.organisation):
            codes, names = self.organisations(number, Field.organisation, text)
            previous.organisations += [code for code in codes if code not in previous.organisations]
            previous.organisation_names += names
            parts.append(self.title(Field.organisation))
        judged = [column for column in (Field.status, Field.rag) if self.filled(row, column)]
        if judged:
            found, dated = self.judgement(number, row)
            self.combine(number, found, previous, dated)
            previous.comments = _joined(previous.comments, found.comments)
            parts += [self.title(column) for column in judged]
        if parts == [self.title(Field.comments)]:
            self.warn(
                number,
                Field.comments,
                "comment_continued",
                f"only a comment: added to the comments of the action above (row {previous.row})",
            )
        elif parts:
            self.warn(
                number,
                None,
                "continuation",
                f"no action of its own ({', '.join(parts)} only): added to the action above "
                f"(row {previous.row})",
            )
        else:
            self.warn(number, None, "ignored_row", "nothing in a known column: not imported")
        previous.settle(self.today)

    def title(self, column: Field) -> str:
        return self.header.titles.get(column) or column.value
