"""Writing a plan's rows as CSV or XLSX, in either layout (app.actions.exporter decides what
goes in each cell). CSV is made with ``csv`` and handed out in pieces (``drain``); XLSX with
openpyxl's write-only mode, which spools rows to a temporary file rather than holding the
workbook in memory.

A row is a list of cells: text, a ``date`` (a day), a ``YearMonth`` (a month) or None; one
column may be coloured by the action's RAG (``rag_column``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter

from app.actions.rag import Rag
from app.actions.spreadsheets import YearMonth, csv_safe
from app.kit.xlsx import csv_text, text_cell

Cell = str | date | YearMonth | None


def month_text(value: YearMonth) -> str:
    return date(value.year, value.month, 1).strftime("%b-%Y")


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, YearMonth):
        return month_text(value)
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return csv_safe(value)


class CsvPlanWriter:
    """Rows as CSV text, handed out in pieces with ``drain()``. UTF-8 with a byte order mark,
    so that Excel opens it as UTF-8; dates as dd/mm/yyyy or Mon-YYYY."""

    def __init__(self, titles: Sequence[str]) -> None:
        self.titles = list(titles)
        self._buffer = io.StringIO()
        self._buffer.write("\ufeff")
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def preamble(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._writer.writerow([csv_safe(line)])
        self._writer.writerow([])

    def header(self) -> None:
        self._writer.writerow(self.titles)

    def section(self, title: str) -> None:
        self._writer.writerow([csv_safe(title)])

    def row(self, cells: Sequence[Cell], rag: Rag | None = None) -> None:
        self._writer.writerow(
            [csv_text(cell) if isinstance(cell, str) else _csv_text(cell) for cell in cells]
        )

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
    """A workbook: a title block, a styled and frozen header row, section rows shaded, dates
    as real dates ("Jul-15" months stay months), the ``rag_columns`` coloured by RAG.
    Write-only mode: rows go to a temporary file as they are added."""

    def __init__(
        self,
        titles: Sequence[str],
        widths: Sequence[int],
        rag_columns: tuple[int, ...],
        sheet_title: str = "Action plan",
    ) -> None:
        self.titles = list(titles)
        self.rag_columns = rag_columns
        self._workbook = Workbook(write_only=True)
        self._sheet: Any = self._workbook.create_sheet(sheet_title)
        for index, width in enumerate(widths, start=1):
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
        self._sheet.append([self._cell(title, "LfD header") for title in self.titles])

    def section(self, title: str) -> None:
        cells = [self._cell(title, "LfD section")]
        cells += [self._cell(None, "LfD section") for _ in self.titles[1:]]
        self._sheet.append(cells)

    def row(self, cells: Sequence[Cell], rag: Rag | None = None) -> None:
        out = []
        for index, value in enumerate(cells):
            if isinstance(value, YearMonth):
                out.append(self._cell(date(value.year, value.month, 1), "LfD month"))
            elif isinstance(value, date):
                out.append(self._cell(value, "LfD day"))
            elif index in self.rag_columns and rag is not None:
                out.append(self._cell(value or None, f"LfD status {rag.value}"))
            else:
                out.append(self._cell(value or None, "LfD text"))
        self._sheet.append(out)

    def save(self, target: IO[bytes]) -> None:
        self._workbook.save(target)
