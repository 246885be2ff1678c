"""Reading an uploaded action plan file into rows: CSV (any of the delimiters and encodings
Excel writes, sniffed) or XLSX (openpyxl's read-only mode, after app.actions.limits has
inspected the workbook). Reading is lazy: CSV rows come from ``csv.reader`` over the decoded
text and XLSX rows as openpyxl parses the sheet's XML, so memory stays at what the file needs.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import charset_normalizer
from openpyxl import load_workbook

from app.actions.limits import CsvBudget, SpreadsheetLimits, check_xlsx, zip_entries_allowed
from app.actions.spreadsheets import (
    HEADER_SEARCH_ROWS,
    MAX_BLANK_RUN,
    CellValue,
    Field,
    Layout,
    LegacyExcelFile,
    Row,
    Sheet,
    UnreadableSpreadsheet,
    YearMonth,
    is_blank,
    match_header,
)
from app.errors import ProblemError


def open_sheet(
    data: bytes,
    limits: SpreadsheetLimits | None = None,
    columns: dict[str, Field] | None = None,
) -> Sheet:
    """The file's rows. XLSX is recognised by its content (a ZIP), not by its Content-Type.
    Columns right of ``limits.max_columns`` are never read (a sheet formatted to column XFD);
    a file over the other limits is refused (app.actions.limits) before it is parsed.
    ``columns``: the user's column map, so that a CSV's delimiter is the one under which
    its header row, as the user names it, is found."""
    limits = limits or SpreadsheetLimits()
    if not data.strip():
        raise UnreadableSpreadsheet("The file is empty.")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise LegacyExcelFile("Save the workbook as .xlsx (Excel Workbook) or as CSV, and retry.")
    if data.startswith(b"PK\x03\x04"):
        return _open_xlsx(data, limits)
    return _open_csv(data, limits, columns)


def _open_csv(
    data: bytes, limits: SpreadsheetLimits, columns: dict[str, Field] | None = None
) -> Sheet:
    notes: list[str] = []
    text = _decode(data, notes)
    if any(ord(char) < 32 and char not in "\t\r\n" for char in text):
        raise UnreadableSpreadsheet("The file holds control characters: it is not a CSV file.")
    delimiter = sniff_delimiter(text, columns)
    if delimiter != ",":
        notes.append(f"the columns are separated by {_DELIMITER_NAMES[delimiter]}")
    return Sheet(kind="csv", rows=_csv_rows(text, delimiter, limits), notes=notes)


def _decode(data: bytes, notes: list[str]) -> str:
    """UTF-8 (with or without a byte order mark), UTF-16 with its mark (Excel's "Unicode
    Text"), else the encoding charset-normalizer finds among the Windows and Mac code pages,
    Windows-1252 (Excel's "CSV" in the UK) when it cannot tell."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableSpreadsheet("The file is not valid UTF-16 text.") from None
        notes.append("the file is UTF-16 (Excel's 'Unicode Text')")
        return text
    if b"\x00" in data:
        raise UnreadableSpreadsheet("The file is not text: it is neither CSV nor XLSX.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data[:262_144], cp_isolation=_CODE_PAGES).best()
    encoding = best.encoding if best is not None else "cp1252"
    if encoding in _LATIN:
        # The Latin code pages share most letters and charset-normalizer cannot always tell
        # them apart on a short file; a UK plan saved by Excel is Windows-1252.
        try:
            data.decode("cp1252")
            encoding = "cp1252"
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        encoding = "cp1252"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            raise UnreadableSpreadsheet(
                "The file is not text: it is neither CSV nor XLSX."
            ) from None
    name = _ENCODING_NAMES.get(encoding, encoding)
    notes.append(f"the file is not UTF-8: read as {name}")
    return text


_CODE_PAGES = ["cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "mac_roman"]
_LATIN = {"cp1250", "cp1252", "cp1254", "cp1257", "mac_roman", "latin_1", "iso8859_15"}
_ENCODING_NAMES = {"cp1252": "Windows-1252 (Excel's 'CSV' encoding)", "mac_roman": "Mac Roman"}
_DELIMITER_NAMES = {"\t": "tabs", ";": "semicolons", ",": "commas"}
SNIFF_RECORDS = 200


def sniff_delimiter(text: str, columns: dict[str, Field] | None = None) -> str:
    """Tab, semicolon or comma: each is tried with the csv module over the first 200 records
    (not one line: titles, blank lines and notes sit above the header). A delimiter under
    which one of the first 30 records is a header row of either layout wins (headers by
    meaning, as ``columns`` names them too); among those, or when none has one, the one that
    cuts the most records into the same number (more than one) of fields. The header comes
    first because counting alone misleads on real plans: a tab- or semicolon-separated file
    whose long comments have line breaks and commas falls, read with commas, into more
    two-field records (one per line of each comment) than it has rows."""
    sample = text[:262_144]
    best, best_score = ",", (False, 0, 0)
    for delimiter in ("\t", ";", ","):
        counts: dict[int, int] = {}
        header = False
        try:
            reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
            for index, record in enumerate(reader):
                if index >= SNIFF_RECORDS:
                    break
                if len(record) > 1:
                    counts[len(record)] = counts.get(len(record), 0) + 1
                    if not header and index < HEADER_SEARCH_ROWS:
                        header = _is_header(record, columns)
        except csv.Error:
            continue
        if counts:
            width, rows = max(counts.items(), key=lambda item: (item[1], item[0]))
            if (header, rows, width) > best_score:
                best, best_score = delimiter, (header, rows, width)
    return best


def _is_header(record: list[str], columns: dict[str, Field] | None) -> bool:
    return any(
        match_header(0, [cell.strip() for cell in record], layout, columns) is not None
        for layout in Layout
    )


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
