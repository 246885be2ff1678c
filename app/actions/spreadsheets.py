"""Action plan spreadsheets as rows of cells: the two layouts of DESIGN.md section 6, reading
CSV and XLSX files into rows, finding the header row, and writing the provider layout back out.

What the cells *mean* (sections, "same as above", dates, statuses, leads) is the importer's
business (app.actions.importer); this module only knows files, rows and columns.

Reading is lazy: CSV rows come from ``csv.reader`` over the decoded text and XLSX rows from
openpyxl's read-only mode, which parses the sheet's XML as it is iterated, so memory stays at
what the file itself needs. Writing uses ``csv`` for CSV and openpyxl's write-only mode for
XLSX, which spools rows to a temporary file rather than holding the workbook in memory.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import IO, Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter

from app.actions.limits import CsvBudget, SpreadsheetLimits, check_xlsx, zip_entries_allowed
from app.actions.rag import Rag
from app.errors import ProblemError, UnsupportedMediaType, ValidationFailed
from app.kit.xlsx import text_cell

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
    improvement_requirement = "improvement_requirement"
    action = "action"
    source = "source"
    leads = "leads"
    due = "due"
    status = "status"
    comments = "comments"
    workstream = "workstream"  # system review: "Alignment with a work stream/board including Lead"


@dataclass(frozen=True)
class Column:
    field: Field
    title: str  # as the layout names it, and as the export writes it
    aliases: tuple[str, ...] = ()
    required: bool = False


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
        Column(Field.due, "Delivery date", ("due date", "target date", "deadline"), True),
        Column(Field.status, "Delivery Status", ("status", "progress status"), True),
        Column(Field.comments, "Comments", ("comment", "progress update", "update", "notes")),
    ),
    Layout.system_review: (
        Column(Field.reference, "#", ("no", "number", "ref", "reference"), required=True),
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
        Column(Field.comments, "Progress made", ("progress",)),
        Column(Field.status, "RAG", ("rag status", "rag rating", "status"), required=True),
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


# --- reading ---------------------------------------------------------------------------------


def open_sheet(data: bytes, limits: SpreadsheetLimits | None = None) -> Sheet:
    """The file's rows. XLSX is recognised by its content (a ZIP), not by its Content-Type.
    Columns right of ``limits.max_columns`` are never read (a sheet formatted to column XFD);
    a file over the other limits is refused (app.actions.limits) before it is parsed."""
    limits = limits or SpreadsheetLimits()
    if not data.strip():
        raise UnreadableSpreadsheet("The file is empty.")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise LegacyExcelFile("Save the workbook as .xlsx (Excel Workbook) or as CSV, and retry.")
    if data.startswith(b"PK\x03\x04"):
        return _open_xlsx(data, limits)
    return _open_csv(data, limits)


def _open_csv(data: bytes, limits: SpreadsheetLimits) -> Sheet:
    if b"\x00" in data:
        raise UnreadableSpreadsheet("The file is not text: it is neither CSV nor XLSX.")
    notes = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV" in the ANSI code page, Windows-1252 for UK English.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise UnreadableSpreadsheet(
                "The file is not text: it is neither CSV nor XLSX."
            ) from None
        notes.append("the file is not UTF-8: read as Windows-1252 (Excel's 'CSV' encoding)")
    if any(ord(char) < 32 and char not in "\t\r\n" for char in text):
        raise UnreadableSpreadsheet("The file holds control characters: it is not a CSV file.")
    first_line = text[: text.find("\n")] if "\n" in text else text
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    return Sheet(kind="csv", rows=_csv_rows(text, delimiter, limits), notes=notes)


def _csv_rows(text: str, delimiter: str, limits: SpreadsheetLimits) -> Iterator[tuple[int, Row]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    budget = CsvBudget(limits)
    number = 0
    try:
        for record in reader:
            number += 1
            budget.record(number, record)
            yield number, list(record[: limits.max_columns])
    except csv.Error as error:
        raise UnreadableSpreadsheet(f"Row {number + 1} is not valid CSV: {error}.") from None


def _open_xlsx(data: bytes, limits: SpreadsheetLimits) -> Sheet:
    zip_entries_allowed(data, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_xlsx(archive, limits)
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except ProblemError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as error:
        raise UnreadableSpreadsheet(
            "The file looks like a ZIP but is not a readable XLSX workbook."
        ) from error
    except Exception as error:  # openpyxl raises a variety of parse errors on a damaged file
        raise UnreadableSpreadsheet("The XLSX workbook is damaged and cannot be read.") from error
    worksheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]
    if not worksheets:
        raise UnreadableSpreadsheet("The workbook has no worksheet.")
    active = workbook.active
    chosen = active if active in worksheets else worksheets[0]
    notes = []
    if len(worksheets) > 1:
        notes.append(f"the workbook has {len(worksheets)} sheets: read '{chosen.title}' only")
    return Sheet(
        kind="xlsx",
        rows=_xlsx_rows(workbook, chosen, limits.max_columns),
        excel_epoch=workbook.epoch.date(),
        notes=notes,
    )


def _xlsx_rows(workbook: Any, worksheet: Any, max_columns: int) -> Iterator[tuple[int, Row]]:
    worksheet.reset_dimensions()  # a saved dimension can be wrong; read what is there
    blank_run = 0
    try:
        # Rows come one per sheet row from row 1, gaps filled with empty rows.
        for number, cells in enumerate(worksheet.iter_rows(max_col=max_columns), start=1):
            row = [_xlsx_value(cell) for cell in cells]
            if all(is_blank(value) for value in row):
                blank_run += 1
                if blank_run >= MAX_BLANK_RUN:
                    return
                continue
            blank_run = 0
            yield number, row
    except UnreadableSpreadsheet:
        raise
    except Exception as error:
        raise UnreadableSpreadsheet("The XLSX workbook is damaged and cannot be read.") from error
    finally:
        workbook.close()


def _xlsx_value(cell: Any) -> CellValue:
    value = cell.value
    if value is None or isinstance(value, str | int | float):
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        return value
    if isinstance(value, datetime | date):
        moment = value.date() if isinstance(value, datetime) else value
        number_format = str(getattr(cell, "number_format", "") or "")
        # A format with no day in it ("mmm-yy", "mmmm yyyy") shows a month.
        shown = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", number_format)  # literals, [$-809]
        if "d" not in shown.lower() and ("m" in shown.lower() or "y" in shown.lower()):
            return YearMonth(moment.year, moment.month)
        return moment
    return str(value)  # a time or a duration: kept as it reads


# --- the header row --------------------------------------------------------------------------


def normalise_header(text: str) -> str:
    text = text.replace("&", " and ").lower()
    return " ".join(re.sub(r"[^a-z0-9#]+", " ", text).split())


@dataclass
class HeaderMatch:
    layout: Layout
    row: int
    positions: dict[Field, int]  # field -> index of its column in the row
    titles: dict[Field, str]  # field -> the header as written
    ignored: list[tuple[int, str]]  # columns of no known meaning: (index, header as written)
    missing: list[Column]  # optional columns the sheet does not have


def _lookup(layout: Layout) -> dict[str, Column]:
    lookup: dict[str, Column] = {}
    for column in COLUMNS[layout]:
        for name in (column.title, *column.aliases):
            lookup.setdefault(normalise_header(name), column)
    return lookup


_LOOKUP = {layout: _lookup(layout) for layout in Layout}


def match_header(number: int, cells: Sequence[CellValue], layout: Layout) -> HeaderMatch | None:
    """The row as a header of the layout, or None unless every required column is there."""
    lookup = _LOOKUP[layout]
    positions: dict[Field, int] = {}
    titles: dict[Field, str] = {}
    ignored: list[tuple[int, str]] = []
    for index, value in enumerate(cells):
        if is_blank(value):
            continue
        written = str(value).strip()
        found = lookup.get(normalise_header(written))
        if found is None or found.field in positions:
            ignored.append((index, " ".join(written.split())))
            continue
        positions[found.field] = index
        titles[found.field] = " ".join(written.split())
    if any(column.required and column.field not in positions for column in COLUMNS[layout]):
        return None
    missing = [column for column in COLUMNS[layout] if column.field not in positions]
    return HeaderMatch(layout, number, positions, titles, ignored, missing)


def known_headers(cells: Sequence[CellValue]) -> list[str]:
    """The cells of a row that name a column of either layout, as written."""
    names = {
        normalise_header(name)
        for columns in COLUMNS.values()
        for column in columns
        for name in (column.title, *column.aliases)
    }
    return [
        " ".join(str(value).split())
        for value in cells
        if not is_blank(value) and normalise_header(str(value)) in names
    ]


def layout_description(layout: Layout) -> str:
    return ", ".join(column.title for column in COLUMNS[layout])


# --- writing the provider layout -------------------------------------------------------------

PROVIDER_TITLES = [column.title for column in COLUMNS[Layout.provider]]
_WIDTHS = [16, 12, 40, 50, 28, 22, 14, 20, 60]
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """A cell that a spreadsheet program would run as a formula is written with a leading
    apostrophe (OWASP's CSV-injection advice); the importer takes it off again."""
    if text.startswith(_FORMULA_START) or (
        text.startswith("-") and len(text) > 1 and not text[1].isspace()
    ):
        return "'" + text
    return text


@dataclass(frozen=True)
class ExportRow:
    """One action as the provider layout shows it. ``due`` is a date (a day), a YearMonth
    (a month), or text (a due note, or "-" for none)."""

    organisation: str
    reference: str
    improvement_requirement: str
    action: str
    source: str
    leads: str
    due: date | YearMonth | str
    status: str
    comments: str
    rag: Rag


def month_text(value: YearMonth) -> str:
    return date(value.year, value.month, 1).strftime("%b-%Y")


class CsvPlanWriter:
    """Rows of the provider layout as CSV text, handed out in pieces with ``drain()``. UTF-8
    with a byte order mark, so that Excel opens it as UTF-8; dates as dd/mm/yyyy or Mon-YYYY."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._buffer.write("\ufeff")
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def preamble(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._writer.writerow([csv_safe(line)])
        self._writer.writerow([])

    def header(self) -> None:
        self._writer.writerow(PROVIDER_TITLES)

    def section(self, title: str) -> None:
        self._writer.writerow([csv_safe(title)])

    def action(self, row: ExportRow) -> None:
        if isinstance(row.due, YearMonth):
            due = month_text(row.due)
        elif isinstance(row.due, date):
            due = row.due.strftime("%d/%m/%Y")
        else:
            due = row.due
        cells = [
            row.organisation,
            row.reference,
            row.improvement_requirement,
            row.action,
            row.source,
            row.leads,
            due,
            row.status,
            row.comments,
        ]
        self._writer.writerow([csv_safe(cell) for cell in cells])

    def drain(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


_THIN = Side(style="thin", color="B1B4B6")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
# NHS identity colours; white text on the dark ones.
_RAG_STYLES: dict[Rag, tuple[str, str]] = {
    Rag.red: ("D5281B", "FFFFFF"),
    Rag.amber: ("FFB81C", "000000"),
    Rag.green: ("007F3B", "FFFFFF"),
    Rag.blue: ("005EB8", "FFFFFF"),
    Rag.grey: ("D8DDE0", "000000"),
}


def _named_styles() -> dict[str, NamedStyle]:
    """The workbook's cell styles, by name (Excel lists them in its style gallery). Named
    styles are registered once and copied onto each cell: setting a font, fill and border on
    every cell would make openpyxl hash each of them again, cell by cell."""

    def cell(name: str, **style: Any) -> NamedStyle:
        return NamedStyle(name, border=_BORDER, alignment=_WRAP, **style)

    styles = [
        NamedStyle("LfD title", font=Font(bold=True, size=14)),
        NamedStyle("LfD plan detail", font=Font(bold=True), alignment=Alignment(vertical="top")),
        cell(
            "LfD header",
            font=Font(bold=True, color="FFFFFF"),
            fill=PatternFill("solid", fgColor="005EB8"),
        ),
        NamedStyle(
            "LfD section", font=Font(bold=True), fill=PatternFill("solid", fgColor="E8EDEE")
        ),
        cell("LfD text"),
        cell("LfD day", number_format="dd/mm/yyyy"),
        cell("LfD month", number_format="mmm-yy"),
    ]
    styles += [
        cell(
            f"LfD status {rag.value}",
            font=Font(bold=True, color=text),
            fill=PatternFill("solid", fgColor=fill),
        )
        for rag, (fill, text) in _RAG_STYLES.items()
    ]
    return {style.name: style for style in styles}


class XlsxPlanWriter:
    """The provider layout as a workbook: a title block, a styled and frozen header row,
    section rows shaded, dates as real dates ("Jul-15" months stay months), status cells
    coloured by RAG. Write-only mode: rows go to a temporary file as they are added."""

    def __init__(self, sheet_title: str = "Action plan") -> None:
        self._workbook = Workbook(write_only=True)
        self._sheet: Any = self._workbook.create_sheet(sheet_title)
        for index, width in enumerate(_WIDTHS, start=1):
            self._sheet.column_dimensions[get_column_letter(index)].width = width
        for style in _named_styles().values():
            self._workbook.add_named_style(style)

    def _cell(self, value: Any, style: str) -> Any:
        cell: Any = (
            text_cell(self._sheet, value)  # text, never a formula
            if isinstance(value, str)
            else WriteOnlyCell(self._sheet, value=value)
        )
        cell.style = style
        return cell

    def preamble(self, lines: Sequence[str]) -> None:
        """The lines above the header row. Call first: the frozen rows (down to the header)
        are set here, since write-only mode writes the sheet's view before its first row."""
        self._sheet.freeze_panes = f"A{len(lines) + 3}"
        for index, line in enumerate(lines):
            self._sheet.append([self._cell(line, "LfD title" if index == 0 else "LfD plan detail")])
        self._sheet.append([])

    def header(self) -> None:
        self._sheet.append([self._cell(title, "LfD header") for title in PROVIDER_TITLES])

    def section(self, title: str) -> None:
        cells = [self._cell(title, "LfD section")]
        cells += [self._cell(None, "LfD section") for _ in PROVIDER_TITLES[1:]]
        self._sheet.append(cells)

    def action(self, row: ExportRow) -> None:
        if isinstance(row.due, YearMonth):
            due = self._cell(date(row.due.year, row.due.month, 1), "LfD month")
        elif isinstance(row.due, date):
            due = self._cell(row.due, "LfD day")
        else:
            due = self._cell(row.due, "LfD text")
        texts = [
            row.organisation,
            row.reference,
            row.improvement_requirement,
            row.action,
            row.source,
            row.leads,
        ]
        cells = [self._cell(text, "LfD text") for text in texts]
        cells.append(due)
        cells.append(self._cell(row.status, f"LfD status {row.rag.value}"))
        cells.append(self._cell(row.comments or None, "LfD text"))
        self._sheet.append(cells)

    def save(self, target: IO[bytes]) -> None:
        self._workbook.save(target)
