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
from app.reports.board import Figure, Headline, figures, headlines
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


# A column that tells the kind of a row (month, quarter_to_date, year_to_date) for programs
# reading the JSON; on the page the row's style says it (totals in bold), not a column.
ROW_KIND = "row_kind"


def render_table(table: Table, footnotes: dict[str, int]) -> str:
    """One table as a <table>, numbers right-aligned; columns with a definition carry a
    footnote mark pointing at the definitions at the foot of the page."""
    columns = [column for column in table.columns if column.key != ROW_KIND]
    head = []
    for column in columns:
        mark = ""
        if column.definition:
            number = footnotes.setdefault(column.definition, len(footnotes) + 1)
            mark = f'<sup><a href="#def-{number}">{number}</a></sup>'
        css = ' class="num"' if _is_numeric(column) else ""
        head.append(f'<th scope="col"{css}>{escape(column.label)}{mark}</th>')
    body = []
    for row in table.rows:
        cells = []
        for index, column in enumerate(columns):
            text = escape(format_value(row.get(column.key), column.kind))
            if index == 0 and not _is_numeric(column):
                cells.append(f'<th scope="row">{text}</th>')
            else:
                css = ' class="num"' if _is_numeric(column) else ""
                cells.append(f"<td{css}>{text}</td>")
        kind = row.get(ROW_KIND)
        css = ' class="total"' if kind not in (None, "month") else ""
        body.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    if not table.rows:
        body.append(f'<tr><td class="none" colspan="{len(columns)}">No rows</td></tr>')
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f'<section class="table" id="table-{escape(table.key)}">'
        f"<h2>{escape(table.title)}</h2>"
        # Tables of many columns (ratings with their shares) set smaller to fit A4.
        f'<div class="scroll"><table class="{"dense" if len(columns) > 9 else "plain"}">'
        f"<thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{note}</section>"
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


def render_headlines(found: list[Headline]) -> str:
    if not found:
        return ""
    tiles = "".join(
        f'<div class="tile"><p class="tile-label">{escape(item.label)}</p>'
        f'<p class="tile-value">{escape(item.value)}</p>'
        f'<p class="tile-detail">{escape(item.detail)}</p></div>'
        for item in found
    )
    return f'<section class="headlines" aria-label="Year to date">{tiles}</section>'


def render_figures(drawn: list[Figure]) -> str:
    if not drawn:
        return ""
    parts = []
    for figure in drawn:
        css = "figure wide" if figure.wide else "figure"
        caption = f'<p class="caption">{escape(figure.caption)}</p>' if figure.caption else ""
        parts.append(
            f'<figure class="{css}" id="figure-{escape(figure.key)}">'
            f"<figcaption>{escape(figure.title)}</figcaption>{figure.svg}{caption}</figure>"
        )
    return f'<section class="charts">{"".join(parts)}</section>'


def render_html(report: Report) -> str:
    """The whole page: header, period, filters, generated time, the headline figures and
    charts the report's tables support (app/reports/board.py), every table in order, and
    the definitions of the figures as numbered footnotes."""
    footnotes: dict[str, int] = {}
    graphics = render_headlines(headlines(report)) + render_figures(figures(report))
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
        # An empty icon in the page, or the browser asks the server for /favicon.ico.
        '<link rel="icon" href="data:,">'
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
        f"{graphics}{tables}{footer}</main></body></html>\n"
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
.num { text-align: right; }
td.num { white-space: nowrap; }
thead th { font-size: 8.5pt; line-height: 1.25; vertical-align: bottom; }
tbody th { white-space: nowrap; }
.scroll { overflow-x: auto; }
table.dense { font-size: 7.5pt; }
table.dense th, table.dense td { padding: 2px 3px; }
table.dense thead th { font-size: 7pt; }
table.dense tbody th { white-space: normal; min-width: 14mm; }
td.none { color: #4c6272; font-style: italic; text-align: center; }
sup a { color: #005eb8; text-decoration: none; font-size: 7pt; margin-left: 1px; }
.note { font-size: 8.5pt; color: #4c6272; margin: 4px 0 0; }
.definitions { margin-top: 18px; border-top: 1px solid #d8dde0; font-size: 8.5pt;
  color: #333; }
.definitions h2 { font-size: 10pt; }
.definitions ol, .definitions ul { padding-left: 18px; margin: 4px 0; }
tr.total th, tr.total td { font-weight: 700; background: #f4f6f7; }
tr.total + tr:not(.total) th, tr.total + tr:not(.total) td { border-top: 2px solid #4c6272; }
section.table { break-inside: avoid; page-break-inside: avoid; }
.headlines { display: grid; grid-template-columns: repeat(auto-fit, minmax(38mm, 1fr));
  gap: 6px; margin: 10px 0 4px; }
.tile { border: 1px solid #d8dde0; border-top: 4px solid #005eb8; padding: 5px 8px;
  border-radius: 2px; }
.tile p { margin: 0; }
.tile-label { font-size: 8.5pt; color: #4c6272; min-height: 2.6em; }
.tile-value { font-size: 20pt; font-weight: 700; line-height: 1.1;
  font-variant-numeric: tabular-nums; }
.tile-detail { font-size: 8.5pt; color: #4c6272; min-height: 1.3em; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 14px; }
figure { margin: 10px 0 0; break-inside: avoid; page-break-inside: avoid; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; font-size: 10.5pt; margin-bottom: 4px; }
figure svg { display: block; width: 100%; height: auto; }
.caption { font-size: 8.5pt; color: #4c6272; margin: 2px 0 0; }
@media print {
  html { background: #fff; }
  main { box-shadow: none; max-width: none; padding: 0; }
  .scroll { overflow: visible; }
  thead { display: table-header-group; }
  tr, figure, .headlines { break-inside: avoid; page-break-inside: avoid; }
  .charts { break-after: page; page-break-after: always; }
  .tile { border-top-color: #005eb8; -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
  svg, tr.total { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; }
}
"""
