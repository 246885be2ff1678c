"""A Report as a response: JSON, CSV, XLSX or the HTML page.

Reports are aggregates (at most a few hundred rows however many deaths lie behind them), so
each file is built whole in memory and sent with a Content-Length; the work that grows with the
data is the SQL, not the rendering.

- JSON: the report as it is (period, filters, tables with their columns and rows).
- CSV: every table in turn, each as a title line, a header row and its rows, with one blank
  line between tables (what a governance officer opens in Excel); `table=<key>` gives that one
  table as a plain CSV (one header row, then rows) for scripts. Percentages are numbers
  (45.5 meaning 45.5%), empty when there is no denominator.
- XLSX: one sheet per table: the title and period in row 1, a styled, frozen header in row 2,
  percentages as percent cells (0.455 shown as 45.5%).

Text that a spreadsheet would run as a formula (a site called "=HYPERLINK(...)", or one that
starts with `-`, `+`, `@` or their fullwidth forms) is written as text: prefixed with an
apostrophe in CSV, typed as a string cell in XLSX (app.kit.xlsx). Numbers are numeric cells.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, time
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from app.errors import BadRequest
from app.kit.xlsx import csv_text, spreadsheet_text, text_cell
from app.reports.filters import ReportFormat
from app.reports.html import render_html
from app.reports.model import Column, Report, Table

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_json(report: Report) -> dict[str, Any]:
    period = report.period
    return {
        "key": report.key,
        "title": report.title,
        "period": {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "label": period.label,
            "kind": period.kind,
        },
        "filters": jsonable_encoder(report.filters),
        "generated_at": report.generated_at.isoformat(),
        "notes": list(report.notes),
        "tables": [
            {
                "key": table.key,
                "title": table.title,
                "note": table.note,
                "columns": [
                    {
                        "key": column.key,
                        "label": column.label,
                        "kind": column.kind,
                        "definition": column.definition,
                    }
                    for column in table.columns
                ],
                "rows": jsonable_encoder(table.rows),
            }
            for table in report.tables
        ],
    }


def file_name(report: Report, extension: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", report.period.label).strip("-").lower()
    return f"{report.key}-{slug}.{extension}"


def _attachment(report: Report, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{file_name(report, extension)}"'}


def _safe_text(value: str) -> str:
    return csv_text(value)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return _safe_text(value)
    return value


def _csv_table(writer: Any, table: Table) -> None:
    writer.writerow([_safe_text(column.label) for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(row.get(column.key)) for column in table.columns])


def report_csv(report: Report, table_key: str | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if table_key is not None:
        _csv_table(writer, _one_table(report, table_key))
        return out.getvalue()
    for index, table in enumerate(report.tables):
        if index:
            writer.writerow([])
        writer.writerow([_safe_text(f"{table.title} ({report.period.label})")])
        _csv_table(writer, table)
    return out.getvalue()


def _one_table(report: Report, table_key: str) -> Table:
    try:
        return report.table(table_key)
    except KeyError:
        keys = ", ".join(table.key for table in report.tables)
        raise BadRequest(
            f"The {report.key} report has no such table (its tables: {keys}).",
            errors=[{"pointer": "query:/table", "code": "unknown_table"}],
        ) from None


HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="005EB8")  # NHS blue
TITLE_FONT = Font(bold=True, size=13)


def _sheet_title(table: Table, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", " ", spreadsheet_text(table.title)).strip()[:31]
    base = base or table.key[:31]
    title, number = base, 2
    while title.lower() in used:
        suffix = f" ({number})"
        title, number = base[: 31 - len(suffix)] + suffix, number + 1
    used.add(title.lower())
    return title


def _xlsx_cell(sheet: Worksheet, value: Any, column: Column) -> Any:
    if column.kind == "percent" and isinstance(value, int | float) and value is not None:
        cell = WriteOnlyCell(sheet, value=value / 100)
        cell.number_format = "0.0%"
        return cell
    if isinstance(value, str):
        return text_cell(sheet, value)  # never a formula, whatever the text starts with
    if column.kind == "month" and isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=datetime.combine(value, time()))
        cell.number_format = "mmm yyyy"
        return cell
    if isinstance(value, date) and not isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=datetime.combine(value, time()))
        cell.number_format = "dd/mm/yyyy"
        return cell
    return WriteOnlyCell(sheet, value=value)


def report_xlsx(report: Report) -> bytes:
    workbook = Workbook(write_only=True)
    used: set[str] = set()
    for table in report.tables:
        sheet = workbook.create_sheet(_sheet_title(table, used))
        sheet.freeze_panes = "A3"
        for index, column in enumerate(table.columns, start=1):
            width = max(12, min(40, len(column.label) + 2))
            sheet.column_dimensions[get_column_letter(index)].width = width
        title = text_cell(sheet, f"{table.title} ({report.period.label})")
        title.font = TITLE_FONT
        sheet.append([title])
        header = []
        for column in table.columns:
            cell = text_cell(sheet, column.label)
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            header.append(cell)
        sheet.append(header)
        for row in table.rows:
            sheet.append([_xlsx_cell(sheet, row.get(c.key), c) for c in table.columns])
        if table.note:
            sheet.append([])
            sheet.append([text_cell(sheet, table.note)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


def render(report: Report, output: ReportFormat, table_key: str | None = None) -> Response:
    """The report in the asked-for format. `table` chooses one table of a CSV only."""
    if table_key is not None and output is not ReportFormat.csv:
        raise BadRequest(
            "table= chooses one table of a CSV; the other formats carry every table.",
            errors=[{"pointer": "query:/table", "code": "not_applicable"}],
        )
    if output is ReportFormat.csv:
        body = report_csv(report, table_key)
        return Response(body, media_type=CSV_TYPE, headers=_attachment(report, "csv"))
    if output is ReportFormat.xlsx:
        return Response(
            report_xlsx(report), media_type=XLSX_TYPE, headers=_attachment(report, "xlsx")
        )
    if output is ReportFormat.html:
        # The page is self-contained; the browser is told to load nothing else, so a page that
        # tried (a font, a script, a tracking pixel) would be refused rather than leak.
        return HTMLResponse(render_html(report), headers={"Content-Security-Policy": PAGE_CSP})
    return JSONResponse(report_json(report))
