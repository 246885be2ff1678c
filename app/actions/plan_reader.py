"""Reading a whole action plan file (docs/spreadsheets.md): its header row, found by what
its columns mean; the plan's title, sponsor, organisations, description and as-at date above
it; the plan's year; the rows after it (app.actions.rows); and every assumption made on the
way, row by row. No database: app.actions.importer writes what this reads.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.actions.cells import one_line, text_of
from app.actions.plan_text import DateFound, date_in
from app.actions.row_fields import FileDates, ReadOptions
from app.actions.rows import LIMITS, ImportWarning, PlannedSection, RowReader
from app.actions.sheet_reader import open_sheet
from app.actions.spreadsheets import (
    COLUMNS,
    HEADER_SEARCH_ROWS,
    Field,
    HeaderMatch,
    Layout,
    Row,
    SpreadsheetLayoutError,
    is_blank,
    known_headers,
    layout_description,
    match_header,
    normalise_header,
)
from app.errors import ValidationFailed

DEFAULT_TITLE = "Imported action plan"
_PREAMBLE_KEYS = {
    "sponsor": "sponsor",
    "executive sponsor": "sponsor",
    "organisation": "organisations",
    "organisations": "organisations",
    "organization": "organisations",
    "organizations": "organisations",
    "ods codes": "ods_codes",  # the organisations, said to be codes
    "ods code": "ods_codes",
    "description": "description",
}


class SpreadsheetRowsInvalid(ValidationFailed):
    slug, title = "spreadsheet-rows-invalid", "Some rows of the spreadsheet cannot be imported"


@dataclass
class PlannedPlan:
    layout: Layout
    title: str
    sponsor: str | None
    organisations: list[str]
    organisation_names: list[str]
    description: str | None
    source_sha256: str
    source_filename: str | None
    sections: list[PlannedSection]
    warnings: list[ImportWarning]
    plan_year: int = 0
    as_at: date | None = None
    columns: list[dict[str, str]] = field(default_factory=list)  # how each column was read
    id: uuid.UUID | None = None
    already_imported_as: uuid.UUID | None = None

    @property
    def action_count(self) -> int:
        return sum(len(section.actions) for section in self.sections)


# --- the whole file --------------------------------------------------------------------------


def interpret(
    data: bytes,
    *,
    layout: Layout | None,
    title: str | None,
    filename: str | None,
    today: date,
    limits: Any = None,
    options: ReadOptions | None = None,
) -> PlannedPlan:
    """The plan the file describes, and what was assumed. Raises a 4xx problem for a file that
    cannot be read, a header row that is not a known layout, or rows that cannot be imported."""
    options = options or (ReadOptions(limits=limits) if limits is not None else ReadOptions())
    sheet = open_sheet(data, options.limits)
    rows = iter(sheet.rows)
    preamble: list[tuple[int, Row]] = []
    header = _find_header(rows, layout, preamble, options.columns)
    dates = _file_dates(header, preamble, options, today)
    page_lines = {
        normalise_header(" ".join(text_of(value) for value in row if not is_blank(value)))
        for _, row in preamble
    } - {""}
    reader = RowReader(header, sheet.excel_epoch, today, options, dates, page_lines)
    for note in sheet.notes:
        reader.warn(None, None, "file", note)
    plan_fields = _read_preamble(reader, preamble)
    _as_at_warning(reader, dates)
    _header_warnings(reader, header)
    for number, row in rows:
        reader.read(number, row)
    reader.finish()
    if not any(section.actions for section in reader.sections) and not reader.errors:
        reader.errors.append(
            {"row": None, "column": None, "code": "no_actions", "detail": "no action rows"}
        )
    if reader.errors:
        raise SpreadsheetRowsInvalid(
            "Nothing was imported: fix these rows (and any like them) and retry.",
            errors=reader.errors,
        )
    plan = PlannedPlan(
        layout=header.layout,
        title="",
        sponsor=plan_fields.get("sponsor"),
        organisations=[],
        organisation_names=[],
        description=plan_fields.get("description"),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_filename=filename,
        sections=reader.sections,
        warnings=reader.warnings,
        plan_year=dates.year,
        as_at=dates.as_at.day if dates.as_at else None,
        columns=[
            {"header": written, "read_as": found.value, "by": how}
            for written, found, how in header.readings
        ],
    )
    plan.title = _title(reader, title, plan_fields.get("title"), filename)
    plan.organisations, plan.organisation_names = _organisations(
        reader, plan_fields.get("organisations")
    )
    plan.warnings.sort(key=_in_sheet_order(header))
    return plan


def _as_at_warning(reader: RowReader, dates: FileDates) -> None:
    """The line above the header that gave the as-at date is read, not ignored."""
    if dates.as_at is None or not dates.as_at_from.startswith("row "):
        return
    row = int(dates.as_at_from.split()[1])
    shown = (
        f"{dates.as_at.day:%B %Y} (to the month)"
        if dates.as_at.precision == "month"
        else f"{dates.as_at.day:%d/%m/%Y}"
    )
    reader.warnings[:] = [
        warning
        for warning in reader.warnings
        if not (warning.row == row and warning.code == "preamble_ignored")
    ]
    reader.warn(
        row,
        None,
        "as_at",
        f"the file's as-at date: {shown}; completions and reported RAGs without a date of "
        "their own are dated by it",
    )


_YEAR = re.compile(r"\b(19[89]\d|20\d\d)\b")


def _file_dates(
    header: HeaderMatch, preamble: list[tuple[int, Row]], options: ReadOptions, today: date
) -> FileDates:
    """The file's as-at date (given, or the first date above the header: "Progress Update
    September 2019") and the plan's year (given, else the actions' header "... in 2019", any
    header's year, a year above the header, the as-at date's, this year)."""
    lines = [
        " ".join(text_of(value) for value in row if not is_blank(value)) for _, row in preamble
    ]
    as_at: DateFound | None = None
    as_at_from = ""
    if options.as_of is not None:
        as_at, as_at_from = DateFound(options.as_of, "day"), "as_of given"
    else:
        for number, line in zip((n for n, _ in preamble), lines, strict=True):
            if (found := date_in(line)) is not None:
                as_at, as_at_from = found, f"row {number} above the header"
                break
    if options.plan_year is not None:
        return FileDates(options.plan_year, "plan_year given", as_at, as_at_from)
    for name in (Field.action, *header.dates):
        if (stamp := header.dates.get(name)) is not None:
            return FileDates(stamp.year, f"from '{header.titles[name]}'", as_at, as_at_from)
    for number, line in zip((n for n, _ in preamble), lines, strict=True):
        if found_year := _YEAR.search(line):
            return FileDates(int(found_year.group(1)), f"row {number}", as_at, as_at_from)
    if as_at is not None:
        return FileDates(as_at.day.year, "the as-at date", as_at, as_at_from)
    return FileDates(today.year, "no year in the file: this year", as_at, as_at_from)


def _in_sheet_order(header: HeaderMatch) -> Any:
    """Warnings by row, then left to right (whole-file ones first, whole-row ones first)."""
    places = {header.titles[name]: index for name, index in header.positions.items()}
    places |= {title: index for index, title in header.ignored}

    def key(warning: ImportWarning) -> tuple[int, int]:
        row = -1 if warning.row is None else warning.row
        return row, -1 if warning.column is None else places.get(warning.column, -1)

    return key


def _find_header(
    rows: Any,
    layout: Layout | None,
    preamble: list[tuple[int, Row]],
    explicit: dict[str, Field] | None,
) -> HeaderMatch:
    wanted = [layout] if layout else [Layout.provider, Layout.system_review]
    closest: tuple[int, list[str], Row] | None = None
    for number, row in rows:
        matches = [
            found for choice in wanted if (found := match_header(number, row, choice, explicit))
        ]
        if matches:
            return max(matches, key=lambda found: found.fit)
        named = known_headers(row)
        if named and (closest is None or len(named) > len(closest[1])):
            closest = (number, named, row)
        preamble.append((number, row))
        if number >= HEADER_SEARCH_ROWS:
            break
    expected = " or ".join(
        f"the {choice.value.replace('_', '-')} layout ({layout_description(choice)})"
        for choice in wanted
    )
    detail = f"No header row in the first {HEADER_SEARCH_ROWS} rows: expected {expected}."
    errors: list[dict[str, Any]] = []
    if closest is not None:
        number, named, row = closest
        detail += f" Row {number} names the columns {', '.join(named)}."
        missing = _missing_columns(row, wanted)
        errors = [
            {"row": number, "column": title, "code": "missing_column", "detail": why}
            for title, why in missing
        ]
        if layout is not None:
            other = next(choice for choice in Layout if choice is not layout)
            if match_header(number, row, other, explicit) is not None:
                detail += f" They are the {other.value} layout: send layout={other.value}."
    detail += (
        ' Or send columns={"their header": "comments", ...} naming what each column holds '
        f"({', '.join(field.value for field in Field if field is not Field.rag_now)})."
    )
    raise SpreadsheetLayoutError(detail, errors=errors or None)


def _missing_columns(row: Row, wanted: list[Layout]) -> list[tuple[str, str]]:
    written = {normalise_header(str(value)) for value in row if not is_blank(value)}
    best: list[tuple[str, str]] | None = None
    for choice in wanted:
        missing = [
            (column.title, f"a column the {choice.value} layout needs")
            for column in COLUMNS[choice]
            if column.required
            and not written & {normalise_header(n) for n in (column.title, *column.aliases)}
        ]
        if best is None or len(missing) < len(best):
            best = missing
    return best or []


# Columns only this service's exports write: not warned about when a file lacks them.
_QUIET = {
    Field.rag,
    Field.recommendation,
    Field.rag_now,
    Field.status,
    Field.comments,
    Field.completed,
}


def _header_warnings(reader: RowReader, header: HeaderMatch) -> None:
    for column in header.missing:
        if column.field in _QUIET and not (
            header.layout is Layout.provider and column.field in (Field.status, Field.comments)
        ):
            continue
        reader.warnings.append(
            ImportWarning(header.row, column.title, "missing_column", "not in the file: left empty")
        )
    for _, written in header.ignored:
        reader.warnings.append(
            ImportWarning(
                header.row,
                written,
                "ignored_column",
                f"not a column of the {header.layout.value} layout: not imported",
            )
        )


def _read_preamble(reader: RowReader, preamble: list[tuple[int, Row]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for number, row in preamble:
        texts = [text_of(value) for value in row if not is_blank(value)]
        if not texts:
            continue
        key, value = _preamble_line(texts)
        if key is None and "title" not in found:
            found["title"] = (number, one_line(value))
        elif key is not None and key not in found:
            found[key] = (number, value)
        else:
            reader.warn(
                number,
                None,
                "preamble_ignored",
                "above the header row, and not the title, sponsor, organisations or "
                "description: not imported",
            )
    plan: dict[str, Any] = {}
    for key in ("title", "sponsor", "description"):
        if key in found:
            number, value = found[key]
            limit = {"title": "title", "sponsor": "name", "description": "text"}[key]
            if len(value) > LIMITS[limit]:
                reader.fail(number, None, "too_long", f"the {key} is longer than {LIMITS[limit]}")
            plan[key] = value or None
    for key in ("organisations", "ods_codes"):
        if key in found and "organisations" not in plan:
            number, value = found[key]
            plan["organisations"] = reader.organisations(number, None, value, key == "ods_codes")
    return plan


def _preamble_line(texts: list[str]) -> tuple[str | None, str]:
    first = texts[0]
    label, colon, rest = first.partition(":")
    key = _PREAMBLE_KEYS.get(normalise_header(label))
    if key is not None and colon:
        return key, "\n".join(part for part in [rest.strip(), *texts[1:]] if part)
    key = _PREAMBLE_KEYS.get(normalise_header(first))
    if key is not None and len(texts) > 1:
        return key, "\n".join(texts[1:])
    return None, " ".join(texts)


def _title(reader: RowReader, given: str | None, found: str | None, filename: str | None) -> str:
    if given:
        return given
    if found:
        return found
    if filename:
        stem = one_line(re.sub(r"\.(csv|xlsx)$", "", filename, flags=re.I))[: LIMITS["title"]]
        if stem:
            reader.warn(None, None, "title", f"no title above the header row: titled '{stem}'")
            return stem
    reader.warn(None, None, "title", f"no title above the header row: titled '{DEFAULT_TITLE}'")
    return DEFAULT_TITLE


def _organisations(
    reader: RowReader, found: tuple[list[str], list[str]] | None
) -> tuple[list[str], list[str]]:
    """(ODS codes, names as written): the 'Organisations:' line's, else the actions'."""
    if found is not None:
        return found
    codes: list[str] = []
    names: list[str] = []
    for section in reader.sections:
        for action in section.actions:
            codes += [code for code in action.organisations if code not in codes]
            names += [name for name in action.organisation_names if name not in names]
    listed = ", ".join(names) if names else "none"
    reader.warn(
        None,
        None,
        "plan_organisations",
        f"no 'Organisations:' line above the header row: the plan's organisations are its "
        f"actions' ({listed})",
    )
    return codes, names
