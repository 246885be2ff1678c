"""Importing an action plan spreadsheet (DESIGN.md section 6; docs/spreadsheets.md): the
whole file (its header row, the plan's title, sponsor, organisations and description above
it), the plan it makes, and every assumption made on the way, row by row.

- Rows above the header row give the plan's title (the first line) and ``Sponsor:``,
  ``Organisations:`` and ``Description:`` lines; anything else there is not imported (warned).
- The rows after it are read by ``app.actions.rows.RowReader``: sections, actions, merged
  blanks meaning "same as above", references repeated, dates, statuses and leads.

``interpret`` reads the file (no database); ``write_plan`` creates the plan, its sections and
actions in the caller's transaction, with the events an API-made plan has; ``import_file``
does both for the route.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import anyio
import pydantic
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.cells import one_line, text_of
from app.actions.limits import SpreadsheetLimits
from app.actions.rows import LIMITS, ImportWarning, PlannedAction, PlannedSection, RowReader
from app.actions.schemas import PlanCreate
from app.actions.service import PlanSource, create_plan
from app.actions.spreadsheets import (
    COLUMNS,
    HEADER_SEARCH_ROWS,
    HeaderMatch,
    Layout,
    Row,
    SpreadsheetLayoutError,
    is_blank,
    known_headers,
    layout_description,
    match_header,
    normalise_header,
    open_sheet,
)
from app.audit.journal import Journal
from app.auth.deps import Principal
from app.db import Database
from app.errors import Conflict, ValidationFailed
from app.events.service import Change
from app.kit.sql import table_of
from app.kit.time import local_date, now
from app.models import Action, ActionPlan
from app.models.base import utcnow

DEFAULT_TITLE = "Imported action plan"
_PREAMBLE_KEYS = {
    "sponsor": "sponsor",
    "executive sponsor": "sponsor",
    "organisation": "organisations",
    "organisations": "organisations",
    "organization": "organisations",
    "organizations": "organisations",
    "ods codes": "organisations",
    "description": "description",
}


class SpreadsheetRowsInvalid(ValidationFailed):
    slug, title = "spreadsheet-rows-invalid", "Some rows of the spreadsheet cannot be imported"


class AlreadyImported(Conflict):
    slug, title = "already-imported", "This file has already been imported"


@dataclass
class PlannedPlan:
    layout: Layout
    title: str
    sponsor: str | None
    organisations: list[str]
    description: str | None
    source_sha256: str
    source_filename: str | None
    sections: list[PlannedSection]
    warnings: list[ImportWarning]
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
    limits: SpreadsheetLimits | None = None,
) -> PlannedPlan:
    """The plan the file describes, and what was assumed. Raises a 4xx problem for a file that
    cannot be read, a header row that is not a known layout, or rows that cannot be imported."""
    sheet = open_sheet(data, limits)
    rows = iter(sheet.rows)
    preamble: list[tuple[int, Row]] = []
    header = _find_header(rows, layout, preamble)
    reader = RowReader(header, sheet.excel_epoch, today)
    for note in sheet.notes:
        reader.warn(None, None, "file", note)
    plan_fields = _read_preamble(reader, preamble)
    _header_warnings(reader, header)
    for number, row in rows:
        reader.read(number, row)
    for section in reader.sections:
        if not section.actions:
            reader.warn(section.row, None, "empty_section", "a section with no actions: kept")
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
        description=plan_fields.get("description"),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_filename=filename,
        sections=reader.sections,
        warnings=reader.warnings,
    )
    plan.title = _title(reader, title, plan_fields.get("title"), filename)
    plan.organisations = _organisations(reader, plan_fields.get("organisations"), preamble)
    plan.warnings.sort(key=_in_sheet_order(header))
    return plan


def _in_sheet_order(header: HeaderMatch) -> Any:
    """Warnings by row, then left to right (whole-file ones first, whole-row ones first)."""
    places = {header.titles[name]: index for name, index in header.positions.items()}
    places |= {title: index for index, title in header.ignored}

    def key(warning: ImportWarning) -> tuple[int, int]:
        row = -1 if warning.row is None else warning.row
        return row, -1 if warning.column is None else places.get(warning.column, -1)

    return key


def _find_header(rows: Any, layout: Layout | None, preamble: list[tuple[int, Row]]) -> HeaderMatch:
    wanted = [layout] if layout else [Layout.provider, Layout.system_review]
    closest: tuple[int, list[str], Row] | None = None
    for number, row in rows:
        matches = [found for choice in wanted if (found := match_header(number, row, choice))]
        if matches:
            return max(matches, key=lambda found: len(found.positions))
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
            if match_header(number, row, other) is not None:
                detail += f" They are the {other.value} layout: send layout={other.value}."
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


def _header_warnings(reader: RowReader, header: HeaderMatch) -> None:
    for column in header.missing:
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
    if "organisations" in found:
        number, value = found["organisations"]
        plan["organisations"] = reader.split(number, None, value, ods=True)
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
    reader: RowReader, found: list[str] | None, preamble: list[tuple[int, Row]]
) -> list[str]:
    if found is not None:
        return found
    codes: list[str] = []
    for section in reader.sections:
        for action in section.actions:
            codes += [code for code in action.organisations if code not in codes]
    listed = ", ".join(codes) if codes else "none"
    reader.warn(
        None,
        None,
        "plan_organisations",
        f"no 'Organisations:' line above the header row: the plan's organisations are its "
        f"actions' ({listed})",
    )
    return codes


# --- writing ---------------------------------------------------------------------------------


async def find_imported(session: AsyncSession, sha256: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        select(ActionPlan.id).where(ActionPlan.source_sha256 == sha256)
    )
    return found


def already_imported(plan_id: uuid.UUID) -> AlreadyImported:
    return AlreadyImported(
        f"This file was imported before, as plan {plan_id}; it is not imported twice. Change "
        "the plan there, or export it, edit the export and import that as a new plan.",
        extra={"existing": {"plan_id": str(plan_id), "plan": f"/v1/action-plans/{plan_id}"}},
    )


async def import_file(
    database: Database,
    principal: Principal,
    data: bytes,
    *,
    dry_run: bool,
    layout: Layout | None,
    title: str | None,
    filename: str | None,
) -> PlannedPlan:
    """Read the file (in a worker thread: it is CPU work) and, unless a dry run, create the
    plan in one transaction. The same file is refused before it is read again."""
    if not dry_run:
        async with database.transaction() as session:
            existing = await find_imported(session, hashlib.sha256(data).hexdigest())
        if existing is not None:
            raise already_imported(existing)
    today = local_date(now())
    plan = await anyio.to_thread.run_sync(
        functools.partial(
            interpret,
            data,
            layout=layout,
            title=title,
            filename=filename,
            today=today,
            limits=SpreadsheetLimits.from_settings(database.settings),
        )
    )
    async with database.transaction() as session:
        if dry_run:
            plan.already_imported_as = await find_imported(session, plan.source_sha256)
            if plan.already_imported_as is not None:
                plan.warnings.insert(
                    0,
                    ImportWarning(
                        None,
                        None,
                        "already_imported",
                        f"this file was imported before, as plan {plan.already_imported_as}: "
                        "a real import of it is refused (409)",
                    ),
                )
        else:
            await write_plan(session, principal, plan)
    return plan


async def write_plan(session: AsyncSession, principal: Principal, plan: PlannedPlan) -> None:
    """Create the plan (through the plan service, event ``action_plan.created``), its sections
    and its actions (multi-row INSERTs, each action with the event ``action.created``), as the
    API would have made them, in the caller's transaction. Sets the ids on ``plan``."""
    existing = await find_imported(session, plan.source_sha256)
    if existing is not None:
        raise already_imported(existing)
    journal = Journal(principal)
    try:
        body = PlanCreate(
            title=plan.title,
            sponsor=plan.sponsor,
            organisations=plan.organisations,
            description=plan.description,
            sections=[section.title for section in plan.sections],
        )
    except pydantic.ValidationError as error:
        raise SpreadsheetRowsInvalid(
            "The plan's title, sponsor, organisations or sections cannot be imported.",
            errors=[
                {"row": None, "column": None, "code": item["type"], "detail": item["msg"]}
                for item in error.errors()
            ],
        ) from None
    source = PlanSource(plan.source_sha256, plan.source_filename, plan.layout.value)
    created, sections = await create_plan(session, journal, body, source=source)
    plan.id = created.id
    created_at = utcnow()
    placed: list[tuple[uuid.UUID, PlannedAction]] = []
    for section, made in zip(plan.sections, sections, strict=True):
        section.id = made.id
        placed += [(made.id, planned) for planned in section.actions]
    # A thousand actions at a time, each batch with its events: a Core INSERT over the table
    # is one executemany (the ORM's bulk insert would split the rows by which of their values
    # are None), and the parameters of only one batch are held at once.
    for start in range(0, len(placed), 1000):
        rows = []
        for position, (section_id, planned) in enumerate(placed[start : start + 1000], start + 1):
            planned.id = uuid.uuid4()
            rows.append(
                _action_row(planned, created.id, section_id, position, principal, created_at)
            )
            journal.event(Change("action.created", "action", planned.id, None))
        await session.execute(insert(table_of(Action)), rows)
        await journal.write(session)
    await journal.write(session)


def _action_row(
    planned: PlannedAction,
    plan_id: uuid.UUID,
    section_id: uuid.UUID,
    position: int,
    principal: Principal,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "id": planned.id,
        "plan_id": plan_id,
        "section_id": section_id,
        "position": position,
        "reference": planned.reference,
        "improvement_requirement": planned.improvement_requirement,
        "action": planned.action,
        "source": planned.source,
        "leads": planned.leads,
        "organisations": planned.organisations,
        "workstream": planned.workstream,
        "start_date": None,
        "due_date": planned.due_date,
        "due_precision": planned.due_precision.value,
        "due_note": planned.due_note,
        "falls_due_on": planned.falls_due_on,
        "status": planned.status,
        "comments": planned.comments,
        "completed_at": planned.completed_at,
        "evidence": None,
        "assured_at": None,
        "assured_by": None,
        "overdue_notified_at": None,
        "created_by_client_id": principal.client_id,
        "version": 1,
        "created_at": created_at,
        "updated_at": created_at,
    }
