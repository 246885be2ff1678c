"""A report as one self-contained, printable HTML page (format=html).

The page needs nothing but itself: CSS is inline, charts are SVG drawn here from the numbers,
there are no fonts, scripts, images or links to fetch, so it prints the same on a board
member's laptop, in a browser with scripts blocked, and from an archived email. Every value
that came from the database or the query string is escaped with html.escape.
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from typing import Any

from app.kit.time import LONDON
from app.reports.model import Column, Report, Table

EMPTY = "\u2013"  # an en dash where a figure has no value (a percentage of nothing)


def format_value(value: Any, kind: str) -> str:
    """A cell as a board paper prints it: thousands separators, percentages to one decimal
    place, months as 'Apr 2025', dates as '1 Apr 2025'."""
    if value is None or value == "":
        return EMPTY
    if kind == "percent" and isinstance(value, int | float):
        return f"{float(value):.1f}%"
    if kind == "int" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{int(value):,}"
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    if kind == "month":
        month = _as_date(value)
        if month is not None:
            return month.strftime("%b %Y")
    if kind == "date":
        day = _as_date(value)
        if day is not None:
            return f"{day.day} {day.strftime('%b %Y')}"
    return str(value)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 7:  # 2025-04
                return date.fromisoformat(text + "-01")
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def _is_numeric(column: Column) -> bool:
    return column.kind in ("int", "number", "percent")


def render_table(table: Table, footnotes: dict[str, int]) -> str:
    """One table as a <table>, numbers right-aligned; columns with a definition carry a
    footnote mark pointing at the definitions at the foot of the page."""
    head = []
    for column in table.columns:
        mark = ""
        if column.definition:
            number = footnotes.setdefault(column.definition, len(footnotes) + 1)
            mark = f'<sup><a href="#def-{number}">{number}</a></sup>'
        css = ' class="num"' if _is_numeric(column) else ""
        head.append(f'<th scope="col"{css}>{escape(column.label)}{mark}</th>')
    body = []
    for row in table.rows:
        cells = []
        for index, column in enumerate(table.columns):
            text = escape(format_value(row.get(column.key), column.kind))
            if index == 0 and not _is_numeric(column):
                cells.append(f'<th scope="row">{text}</th>')
            else:
                css = ' class="num"' if _is_numeric(column) else ""
                cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not table.rows:
        body.append(f'<tr><td class="none" colspan="{len(table.columns)}">No rows</td></tr>')
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f'<section class="table" id="table-{escape(table.key)}">'
        f"<h2>{escape(table.title)}</h2>"
        f"<table><thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{note}</section>"
    )


def _filters_text(report: Report) -> str:
    applied = [
        f"{escape(str(name).replace('_', ' '))}: {escape(str(value))}"
        for name, value in report.filters.items()
        if value not in (None, "", [], ())
    ]
    return "; ".join(applied) if applied else "none (all deaths in scope)"


def _generated_text(moment: datetime) -> str:
    local = moment.astimezone(LONDON) if moment.tzinfo else moment
    return f"{local.day} {local.strftime('%b %Y %H:%M %Z')}".strip()


def render_html(report: Report) -> str:
    """The whole page: header, period, filters, generated time, every table in order, and
    the definitions of the figures as numbered footnotes."""
    footnotes: dict[str, int] = {}
    tables = "".join(render_table(table, footnotes) for table in report.tables)
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
    definitions = "".join(
        f'<li id="def-{number}">{escape(text)}</li>' for text, number in footnotes.items()
    )
    footer = ""
    if definitions or notes:
        footer = '<footer class="definitions"><h2>Definitions and notes</h2>'
        if definitions:
            footer += f"<ol>{definitions}</ol>"
        if notes:
            footer += f'<ul class="notes">{notes}</ul>'
        footer += "</footer>"
    period = report.period
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en-GB"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)} \u2013 {escape(period.label)}</title>"
        f"<style>{STYLE}</style></head><body><main>"
        '<header class="masthead"><p class="kicker">Learning from Deaths</p>'
        f"<h1>{escape(report.title)}</h1>"
        '<dl class="meta">'
        f"<dt>Period</dt><dd>{escape(period.label)} "
        f'<span class="range">({escape(format_value(period.start, "date"))} to '
        f"{escape(format_value(period.end, 'date'))})</span></dd>"
        f"<dt>Filters</dt><dd>{_filters_text(report)}</dd>"
        f"<dt>Generated</dt><dd>{escape(_generated_text(report.generated_at))}</dd>"
        "</dl></header>"
        f"{tables}{footer}</main></body></html>\n"
    )


STYLE = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
html { color: #1d1d1b; background: #f3f4f6; }
body { margin: 0; font: 10.5pt/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Arial,
  sans-serif; }
main { max-width: 210mm; margin: 0 auto; padding: 12mm; background: #fff;
  box-shadow: 0 1px 4px rgba(0, 0, 0, .15); }
.masthead { border-bottom: 3px solid #005eb8; padding-bottom: 6px; margin-bottom: 12px; }
.kicker { margin: 0; color: #005eb8; font-weight: 600; text-transform: uppercase;
  letter-spacing: .06em; font-size: 8.5pt; }
h1 { margin: 2px 0 6px; font-size: 18pt; }
h2 { font-size: 12pt; margin: 16px 0 6px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 1px 10px; margin: 0;
  font-size: 9pt; }
.meta dt { font-weight: 600; color: #4c6272; }
.meta dd { margin: 0; }
.range { color: #4c6272; }
table { width: 100%; border-collapse: collapse; font-size: 9pt;
  font-variant-numeric: tabular-nums; }
th, td { padding: 3px 6px; border-bottom: 1px solid #d8dde0; text-align: left;
  vertical-align: top; }
thead th { background: #e8edee; border-bottom: 2px solid #4c6272; font-weight: 600; }
tbody th { font-weight: 500; }
.num { text-align: right; white-space: nowrap; }
td.none { color: #4c6272; font-style: italic; text-align: center; }
sup a { color: #005eb8; text-decoration: none; font-size: 7pt; margin-left: 1px; }
.note { font-size: 8.5pt; color: #4c6272; margin: 4px 0 0; }
.definitions { margin-top: 18px; border-top: 1px solid #d8dde0; font-size: 8.5pt;
  color: #333; }
.definitions h2 { font-size: 10pt; }
.definitions ol, .definitions ul { padding-left: 18px; margin: 4px 0; }
section.table { break-inside: avoid; page-break-inside: avoid; }
@media print {
  html { background: #fff; }
  main { box-shadow: none; max-width: none; padding: 0; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; }
}
"""
