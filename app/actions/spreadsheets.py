"""Action plan spreadsheets as rows of cells: the two layouts of DESIGN.md section 6 and
finding the header row by what its columns mean (docs/spreadsheets.md).

Reading files into rows is app.actions.sheet_reader's business, writing them
app.actions.sheet_writer's; what the cells *mean* (sections, "same as above", dates,
statuses, leads) the importer's (app.actions.rows, app.actions.cells).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from app.errors import ProblemError, UnsupportedMediaType, ValidationFailed
from app.kit.xlsx import csv_text

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"

HEADER_SEARCH_ROWS = 30  # title and notes above the header row: real plans have a few
MAX_BLANK_RUN = 1000  # trailing rows that hold only formatting end the sheet


class UnreadableSpreadsheet(ProblemError):
    status, slug, title = 400, "unreadable-spreadsheet", "The file is not a readable spreadsheet"


class SpreadsheetLayoutError(ValidationFailed):
    slug, title = "spreadsheet-layout", "The spreadsheet's columns are not a known layout"


class LegacyExcelFile(UnsupportedMediaType):
    title = "Excel 97-2003 (.xls) files are not supported"


class Layout(StrEnum):
    provider = "provider"
    system_review = "system_review"


class Field(StrEnum):
    """What a column holds, whatever the sheet calls it."""

    organisation = "organisation"
    reference = "reference"
    improvement_requirement = "improvement_requirement"  # system review: the recommendation
    action = "action"
    source = "source"
    leads = "leads"
    due = "due"
    status = "status"
    comments = "comments"
    workstream = "workstream"  # system review: "Alignment with a work stream/board including Lead"
    progress = "progress"  # system review: "Progress made Sept 2019", a dated update
    rag = "rag"  # a RAG written by people: the reported RAG, never a status
    recommendation = "recommendation"  # the recommendation's letter, in the provider layout
    rag_now = "rag_now"  # the export's derived RAG: not read back
    completed = "completed"  # when a complete action was completed ("on or before 30/09/2015")


@dataclass(frozen=True)
class Column:
    field: Field
    title: str  # as the layout names it, and as the export writes it
    aliases: tuple[str, ...] = ()
    required: bool = False
    # Not one of the layout's own columns: the other layout's, which an export of a plan
    # from that layout writes after the layout's own (docs/spreadsheets.md, "Export").
    extra: bool = False


_RAG = ("rag status", "rag rating", "reported rag", "rag reported")
_COMPLETED = ("completed on", "completion date", "date completed", "date closed", "closed on")
COLUMNS: dict[Layout, tuple[Column, ...]] = {
    Layout.provider: (
        Column(Field.organisation, "Organisation", ("organisations", "organization", "org")),
        Column(
            Field.reference,
            "Action reference number",
            (
                "action reference",
                "action ref",
                "action ref no",
                "reference",
                "reference number",
                "ref",
                "ref no",
                "action no",
                "action number",
            ),
            required=True,
        ),
        Column(
            Field.improvement_requirement,
            "Improvement Requirement",
            ("improvement requirements", "requirement", "area for improvement"),
        ),
        Column(Field.action, "Actions", ("action", "actions required", "action required"), True),
        Column(Field.source, "Source of Action", ("source", "action source", "source of actions")),
        Column(
            Field.leads,
            "Action lead within the organisation",
            (
                "action lead within the organization",
                "action lead",
                "action leads",
                "lead",
                "leads",
                "responsible lead",
            ),
        ),
        Column(Field.due, "Delivery date", ("due date", "target date", "deadline")),
        Column(Field.status, "Delivery Status", ("status", "progress status")),
        Column(Field.comments, "Comments", ("comment", "progress update", "update", "notes")),
        Column(Field.rag, "Reported RAG", ("rag", *_RAG)),
        Column(Field.recommendation, "Recommendation reference", ("recommendation ref",)),
        Column(Field.completed, "Completed", _COMPLETED),
        Column(Field.rag_now, "RAG now", ("derived rag",)),
        Column(Field.workstream, "Work stream", ("workstream",), extra=True),
        Column(Field.progress, "Progress made", (), extra=True),
    ),
    Layout.system_review: (
        Column(Field.reference, "#", ("no", "number", "ref", "reference")),
        Column(Field.improvement_requirement, "Recommendation", ("recommendations",), True),
        Column(Field.action, "Actions", ("action",), required=True),
        Column(
            Field.workstream,
            "Alignment with a work stream/board including Lead",
            (
                "alignment with a workstream board including lead",
                "alignment",
                "work stream board",
                "workstream board",
                "workstream",
                "work stream",
            ),
        ),
        Column(Field.progress, "Progress made", ("progress",)),
        Column(Field.rag, "RAG", _RAG),
        Column(Field.status, "Status", ("delivery status",)),
        Column(Field.comments, "Comments", ("comment", "notes")),
        Column(Field.completed, "Completed", _COMPLETED),
        Column(Field.rag_now, "RAG now", ("derived rag",)),
        Column(Field.organisation, "Organisation", ("organisations", "organization"), extra=True),
        Column(Field.source, "Source of Action", ("source",), extra=True),
        Column(Field.due, "Delivery date", ("due date", "target date", "deadline"), extra=True),
    ),
}


@dataclass(frozen=True)
class YearMonth:
    """An XLSX date cell formatted without a day ("mmm-yy"): the sheet shows a month."""

    year: int
    month: int


CellValue = str | int | float | date | YearMonth | None
Row = list[CellValue]


@dataclass
class Sheet:
    """The rows of the one sheet to import, numbered as the spreadsheet program shows them."""

    kind: str  # "csv" | "xlsx"
    rows: Iterator[tuple[int, Row]]
    excel_epoch: date = date(1899, 12, 30)  # day 0 of serial dates (1900 date system)
    notes: list[str] = field(default_factory=list)  # assumptions made reading the file


def is_blank(value: CellValue) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- the header row: columns by meaning --------------------------------------------------------


def normalise_header(text: str) -> str:
    text = text.replace("&", " and ").lower()
    return " ".join(re.sub(r"[^a-z0-9#]+", " ", text).split())


@dataclass(frozen=True)
class HeaderDate:
    """A year, and maybe a month, written in a header: "Progress made Sept 2019"."""

    year: int
    month: int | None = None


@dataclass
class HeaderMatch:
    layout: Layout
    row: int
    positions: dict[Field, int]  # field -> index of its column in the row
    titles: dict[Field, str]  # field -> the header as written
    ignored: list[tuple[int, str]]  # columns of no known meaning: (index, header as written)
    missing: list[Column]  # optional columns the sheet does not have
    dates: dict[Field, HeaderDate] = field(default_factory=dict)  # dates in the headers
    readings: list[tuple[str, Field, str]] = field(default_factory=list)  # (written, field, how)

    @property
    def fit(self) -> tuple[int, int]:
        """How well the row fits its layout: the layout's own columns found, then all. A
        provider sheet also has a system review's Recommendation and Actions (and, as an
        export writes them, its extra columns): it is still a provider sheet."""
        own = [c for c in COLUMNS[self.layout] if c.field in self.positions and not c.extra]
        return len(own), len(self.positions)


def _lookup(layout: Layout) -> dict[str, Column]:
    lookup: dict[str, Column] = {}
    for column in COLUMNS[layout]:
        for name in (column.title, *column.aliases):
            lookup.setdefault(normalise_header(name), column)
    return lookup


_LOOKUP = {layout: _lookup(layout) for layout in Layout}
_MONTH_WORDS = {
    name: number
    for number, names in enumerate(
        [(), ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")]
    )
    for name in names
}  # fmt: skip
_YEAR = re.compile(r"\b(19[89]\d|20\d\d)\b")


def header_date(text: str) -> HeaderDate | None:
    """The year (and month) a header names: "Progress made Sept 2019", "... in 2019"."""
    found = _YEAR.search(text)
    if found is None:
        return None
    words = normalise_header(text[: found.start()]).split()
    month = _MONTH_WORDS.get(words[-1]) if words else None
    return HeaderDate(int(found.group(1)), month)


def meaning(text: str, layout: Layout) -> Field | None:
    """What a header means, by its words: the layout's names first, then keywords ("Comments
    on delivery of the action, ..." is comments, "Leeds comments and actions to be completed
    in 2019" the actions, "Alignment with a current work stream, ... including Lead" the work
    stream and leads)."""
    norm = normalise_header(text)
    exact = _LOOKUP[layout].get(norm) or _LOOKUP[layout].get(_YEAR.sub("", norm).strip())
    if exact is not None:
        return exact.field
    words = set(norm.split())
    system = layout is Layout.system_review
    dated = (stamp := header_date(text)) is not None and stamp.month is not None
    rules: list[tuple[bool, Field]] = [
        (norm.startswith(("comment", "notes", "note ")), Field.comments),
        # "Progress made Sept 2019": a dated update in either layout; undated, a provider
        # sheet's "Progress" is its comments.
        ("progress" in words, Field.progress if system or dated else Field.comments),
        ("rag" in words and "now" in words, Field.rag_now),
        ("rag" in words, Field.rag),
        ("alignment" in words or "workstream" in words or "work stream" in norm,
         Field.workstream),
        (bool(words & {"lead", "leads", "owner", "responsible"}),
         Field.workstream if system else Field.leads),
        ("source" in words, Field.source),
        ("status" in words, Field.status),
        (bool(words & {"date", "due", "deadline", "timescale", "timescales", "when"}),
         Field.due),
        ("recommendation" in norm and bool(words & {"ref", "reference", "letter"}),
         Field.recommendation),
        ("recommendation" in norm or "requirement" in norm or "improvement" in words,
         Field.improvement_requirement),
        (bool(words & {"reference", "ref"})
         or bool(words & {"number", "no"} and words & {"action", "item", "recommendation"}),
         Field.reference),
        (bool(words & {"organisation", "organisations", "organization", "provider", "trust"}),
         Field.organisation),
        (bool(words & {"action", "actions"}), Field.action),
    ]  # fmt: skip
    wanted = {column.field for column in COLUMNS[layout]}
    for matches, found in rules:
        if matches:
            return found if found in wanted else None
    return None


def match_header(
    number: int,
    cells: Sequence[CellValue],
    layout: Layout,
    explicit: dict[str, Field] | None = None,
) -> HeaderMatch | None:
    """The row as a header of the layout, or None unless every required column is there and
    at least three columns are understood. ``explicit`` maps headers as written (compared
    without case or punctuation) to fields: the user's own reading, first."""
    positions: dict[Field, int] = {}
    titles: dict[Field, str] = {}
    ignored: list[tuple[int, str]] = []
    readings: list[tuple[str, Field, str]] = []
    dates: dict[Field, HeaderDate] = {}
    for index, value in enumerate(cells):
        if is_blank(value) or not isinstance(value, str):
            if not is_blank(value):
                ignored.append((index, str(value)))
            continue
        written = " ".join(value.split())
        given = (explicit or {}).get(normalise_header(written))
        found = given or meaning(written, layout)
        if found is None or found in positions:
            ignored.append((index, written))
            continue
        positions[found] = index
        titles[found] = written
        exact = normalise_header(written) in _LOOKUP[layout]
        readings.append((written, found, "columns map" if given else "name" if exact else "words"))
        if (when := header_date(written)) is not None:
            dates[found] = when
    # Most of a header's cells name columns; a row of text that happens to say "action" or
    # "progress" in three cells does not.
    if len(positions) < max(3, 0.6 * (len(positions) + len(ignored))) or any(
        column.required and column.field not in positions for column in COLUMNS[layout]
    ):
        return None
    missing = [
        column
        for column in COLUMNS[layout]
        if column.field not in positions and column.field is not Field.rag_now and not column.extra
    ]
    return HeaderMatch(layout, number, positions, titles, ignored, missing, dates, readings)


def known_headers(cells: Sequence[CellValue]) -> list[str]:
    """The cells of a row that are a column's name in either layout, as written. Only exact
    names: a refusal names these, and a cell read by its words might be anything (a wrong
    file may hold patient data, which a problem never echoes)."""
    return [
        " ".join(value.split())
        for value in cells
        if isinstance(value, str)
        and not is_blank(value)
        and any(normalise_header(value) in _LOOKUP[layout] for layout in Layout)
    ]


def layout_description(layout: Layout) -> str:
    return ", ".join(
        column.title
        for column in COLUMNS[layout]
        if column.field not in (Field.rag_now, Field.completed) and not column.extra
    )


# --- writing -------------------------------------------------------------------------------


def csv_safe(text: str) -> str:
    """A cell that a spreadsheet program would run as a formula is written with a leading
    apostrophe (OWASP's CSV-injection advice; app.kit.xlsx); the importer takes it off again."""
    return csv_text(text)
