"""Importing an action plan from a spreadsheet, and exporting one (docs/spreadsheets.md)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field, TypeAdapter

from app.actions import exporter, importer
from app.actions.importer import AlreadyImported, PlannedPlan, SpreadsheetRowsInvalid
from app.actions.limits import SpreadsheetCellTooLong, SpreadsheetTooLarge
from app.actions.rows import ImportWarning, PlannedSection
from app.actions.spreadsheets import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    Layout,
    LegacyExcelFile,
    SpreadsheetLayoutError,
    UnreadableSpreadsheet,
    normalise_header,
)
from app.actions.spreadsheets import (
    Field as SheetField,
)
from app.auth.deps import ActionsReader, ActionsWriter
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.kit.schemas import ResponseModel
from app.organisations.aliases import registry_aliases

router = APIRouter(route_class=AuthFirstRoute, tags=["action plan spreadsheets"])
AUTH = (Unauthorized, Forbidden)


class ImportWarningOut(ResponseModel):
    row: int | None = Field(description="The row as the spreadsheet numbers it; null: the file.")
    column: str | None = Field(description="The column's header as written in the file.")
    code: str = Field(description="What kind of assumption, e.g. `same_as_above`.")
    detail: str = Field(description="What was assumed.")


class ImportedLink(ResponseModel):
    reference: str = Field(description="The action number named in the text.")
    kind: str = Field(description="`linked_to` or `covered_by`.")
    row: int = Field(description="The row of the action linked to.")
    id: uuid.UUID | None = Field(description="The linked action's id; null in a dry run.")


class ImportedAction(ResponseModel):
    row: int = Field(description="The spreadsheet row the action comes from.")
    id: uuid.UUID | None = Field(description="The new action's id; null in a dry run.")
    reference: str = Field(description="The action's number or reference.")
    recommendation: str | None = Field(description="A system review's recommendation, `A`.")
    improvement_requirement: str | None
    action: str
    source: str | None
    leads: list[str] = Field(description="The current leads.")
    lead_history: list[str] = Field(description="Earlier leads, `(A > B)`: A.")
    organisations: list[str] = Field(description="ODS codes, written or resolved.")
    organisation_names: list[str] = Field(description="Every organisation, as written.")
    workstream: str | None
    start_date: date | None
    due_date: date | None
    due_precision: str
    due_note: str | None
    due_text: str | None = Field(description="The words a due date came from.")
    falls_due_on: date | None
    status: int | None = Field(description="Null: the file left the status blank.")
    status_label: str
    reported_rag: str | None = Field(description="The RAG written in the file.")
    reported_rag_on: date | None = Field(description="When that RAG was judged.")
    reported_rag_precision: str | None = Field(description="`day` or `month`.")
    rag: str = Field(description="The RAG the service derives today.")
    rag_summary: str = Field(description='Both: "reported Amber (Sep 2019); now Red: overdue".')
    completed_at: date | None
    completed_precision: str | None = Field(
        description="`on_or_before`: completed on or before `completed_at` (the file's as-at "
        "date, or its `Completed` column said so); null: on that day."
    )
    comments: str | None
    progress: str | None = Field(description="A dated progress update's text.")
    progress_on: date | None = Field(description="Its date (a month: its first day).")
    links: list[ImportedLink] = Field(description="Other actions named in the text.")


class ColumnReading(ResponseModel):
    header: str = Field(description="The header as written.")
    read_as: str = Field(description="What the column was read as.")
    by: str = Field(description="`name` (a known header), `words` (by its words) or `columns map`.")


class ImportedSection(ResponseModel):
    row: int | None = Field(description="The section's header row; null if the file had none.")
    id: uuid.UUID | None = Field(description="The new section's id; null in a dry run.")
    position: int
    title: str
    actions: list[ImportedAction]


class ImportReport(ResponseModel):
    dry_run: bool
    plan_id: uuid.UUID | None = Field(description="The new plan's id; null in a dry run.")
    already_imported_as: uuid.UUID | None = Field(
        description="Dry run only: the plan this same file was imported as before, if any "
        "(a real import of it is refused with 409)."
    )
    layout: Layout
    title: str
    sponsor: str | None
    organisations: list[str]
    organisation_names: list[str] = Field(
        description="Every organisation the plan names, as written (resolved ones also appear "
        "in `organisations` by ODS code)."
    )
    description: str | None
    source_sha256: str = Field(description="SHA-256 of the file: the same file is imported once.")
    source_filename: str | None
    plan_year: int = Field(description="The year due dates in words were read in.")
    as_at: date | None = Field(description="The file's as-at date, if it has one.")
    columns: list[ColumnReading] = Field(description="How each column was read.")
    section_count: int
    action_count: int
    sections: list[ImportedSection]
    warnings: list[ImportWarningOut] = Field(
        description="Every assumption made reading the file, in row order."
    )


@dataclass(frozen=True, slots=True)
class _ReportBody:
    """ImportReport's fields, over the importer's own dataclasses: pydantic-core serialises
    them straight to JSON, so a large plan's report is not first built as 25,000 models.
    tests/test_spreadsheets.py holds every response to ImportReport, field for field."""

    dry_run: bool
    plan_id: uuid.UUID | None
    already_imported_as: uuid.UUID | None
    layout: Layout
    title: str
    sponsor: str | None
    organisations: list[str]
    organisation_names: list[str]
    description: str | None
    source_sha256: str
    source_filename: str | None
    plan_year: int
    as_at: date | None
    columns: list[dict[str, str]]
    section_count: int
    action_count: int
    sections: list[PlannedSection]
    warnings: list[ImportWarning]


_REPORT = TypeAdapter(_ReportBody)


def _report_json(plan: PlannedPlan, dry_run: bool) -> bytes:
    return _REPORT.dump_json(
        _ReportBody(
            dry_run=dry_run,
            plan_id=plan.id,
            already_imported_as=plan.already_imported_as,
            layout=plan.layout,
            title=plan.title,
            sponsor=plan.sponsor,
            organisations=plan.organisations,
            organisation_names=plan.organisation_names,
            description=plan.description,
            source_sha256=plan.source_sha256,
            source_filename=plan.source_filename,
            plan_year=plan.plan_year,
            as_at=plan.as_at,
            columns=plan.columns,
            section_count=len(plan.sections),
            action_count=plan.action_count,
            sections=plan.sections,
            warnings=plan.warnings,
        )
    )


_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def _filename(content_disposition: str | None) -> str | None:
    if not content_disposition or not (match := _FILENAME.search(content_disposition)):
        return None
    name = match.group(1).strip().replace("\\", "/").rsplit("/", 1)[-1]
    return name[:255] if name and name.isprintable() else None


_UPLOAD = {
    "required": True,
    "content": {
        CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
        XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.post(
    "/v1/action-plans/import",
    response_model=ImportReport,
    status_code=201,
    responses={
        200: {"description": "Dry run: the plan that would be created", "model": ImportReport},
        **problem_responses(
            *AUTH,
            UnreadableSpreadsheet,
            AlreadyImported,
            PayloadTooLarge,
            UnsupportedMediaType,
            LegacyExcelFile,
            SpreadsheetLayoutError,
            SpreadsheetRowsInvalid,
            SpreadsheetTooLarge,
            SpreadsheetCellTooLong,
            ValidationFailed,
        ),
    },
    openapi_extra={"requestBody": _UPLOAD},
)
async def import_plan(
    request: Request,
    principal: ActionsWriter,
    database: DatabaseDep,
    dry_run: Annotated[
        bool, Query(description="Read the file and say what would be created; write nothing.")
    ] = False,
    layout: Annotated[
        Literal["auto", "provider", "system_review"],
        Query(description="The file's layout; `auto` tells by the header row."),
    ] = "auto",
    title: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=300,
            description="The plan's title; else the first line above the header row.",
        ),
    ] = None,
    content_disposition: Annotated[
        str | None,
        Header(description='`attachment; filename="plan.xlsx"`: the file name, kept.'),
    ] = None,
    as_of: Annotated[
        date | None,
        Query(
            description="The file's as-at date (completions and reported RAGs are dated by "
            "it); else the first date above the header row."
        ),
    ] = None,
    plan_year: Annotated[
        int | None,
        Query(
            ge=1990,
            le=2100,
            description='The year "By the end of March" falls in; else a year in the headers '
            "or above them.",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        Query(
            max_length=4000,
            description='What columns hold, as JSON: `{"Their header": "comments", ...}`; '
            "fields: " + ", ".join(f"`{f.value}`" for f in SheetField),
        ),
    ] = None,
) -> Response:
    """Import an action plan from a spreadsheet: the body is the file itself, CSV
    (`text/csv`) or XLSX, in the provider layout (Organisation, Action reference number,
    Improvement Requirement, Actions, Source of Action, Action lead within the organisation,
    Delivery date, Delivery Status, Comments) or the system-review layout (#, Recommendation,
    Actions, Alignment with a work stream/board including Lead, Progress made, RAG).

    Real spreadsheets are read as they are: a title and notes above the header row, section
    header rows, merged cells (a blank means "same as above"), references repeated across
    sections, dates such as `Jul-15` (a month), `TBC` or `Ongoing`, statuses such as
    `4. On track`, `Complete` or `G`, leads as initials or `?`. Every assumption comes back as
    a warning naming its row and column. `dry_run=true` returns the plan that would be made
    (200) and writes nothing. A real import (201) makes the plan, its sections and actions in
    one transaction, all or nothing, with the events `action_plan.created` and
    `action.created` for each action. The same file (by its SHA-256) is imported once: again,
    it is a 409 naming the plan it made. A file that cannot be read is a 400; columns of no
    known layout, or rows that cannot be imported, a 422 listing every such row.

    Parameters: `layout` (`auto`, `provider` or `system_review`) says which layout the file
    is in; `title` names the plan (else the first line above the header row); `as_of` is the
    file's as-at date, which dates completions and reported RAGs (else the first date above
    the header row); `plan_year` is the year a bare "By the end of March" falls in (else a
    year in the headers or above them); `columns` maps headers the service does not know to
    fields, as JSON (`{"Their header": "comments"}`).

    Scope: `actions:write`.
    """
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        raise UnsupportedMediaType("Send the spreadsheet itself: text/csv or XLSX.")
    options = importer.read_options(
        database.settings,
        as_of=as_of,
        plan_year=plan_year,
        columns=_columns(columns),
        registry=await registry_aliases(database),
    )
    plan = await importer.import_file(
        database,
        principal,
        await request.body(),
        options=options,
        dry_run=dry_run,
        layout=None if layout == "auto" else Layout(layout),
        title=title,
        filename=_filename(content_disposition),
    )
    plan_id = plan.id
    body = _report_json(plan, dry_run)
    del plan
    if dry_run:
        return Response(body, status_code=200, media_type="application/json")
    return Response(
        body,
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/v1/action-plans/{plan_id}"},
    )


def _columns(text: str | None) -> dict[str, SheetField] | None:
    """The `columns` map: header as written -> field. A 422 naming what is wrong."""
    if text is None:
        return None
    try:
        given = json.loads(text)
    except ValueError:
        raise ValidationFailed(
            '`columns` is not JSON: send {"Their header": "comments"}.'
        ) from None
    if not isinstance(given, dict) or not given:
        raise ValidationFailed("`columns` must be a JSON object of header -> field.")
    known = {field.value: field for field in SheetField}
    found: dict[str, SheetField] = {}
    for header, name in given.items():
        if not isinstance(name, str) or name not in known:
            raise ValidationFailed(
                f"`columns`: a column may be read as {', '.join(known)}; not {name!r}."
            )
        found[normalise_header(str(header))] = known[name]
    return found


_MEDIA = {"csv": CSV_MEDIA_TYPE, "xlsx": XLSX_MEDIA_TYPE}


@router.get(
    "/v1/action-plans/{plan_id}/export",
    responses={
        200: {
            "description": "The plan as a spreadsheet in the provider layout",
            "content": {
                CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(*AUTH, NotFound, ValidationFailed),
    },
    response_class=StreamingResponse,
)
async def export_plan(
    plan_id: uuid.UUID,
    principal: ActionsReader,
    database: DatabaseDep,
    format: Annotated[
        Literal["csv", "xlsx"], Query(description="`csv` (UTF-8) or `xlsx`.")
    ] = "csv",
    layout: Annotated[
        Literal["provider", "system_review"],
        Query(description="`provider` or `system_review` (recommendations and actions)."),
    ] = "provider",
) -> StreamingResponse:
    """The plan as a spreadsheet in either layout (`layout=provider`, the default, or
    `layout=system_review`: recommendations and their actions): its title, sponsor and organisations
    above the header row, each section as a header row followed by its actions, every value
    written out (an empty one as `-`), statuses as `4. On track`, when a complete action was
    completed in `Completed` (`15/01/2016`, or `on or before 30/09/2015` for one imported
    complete). What the layout has no column for is written in the other layout's columns,
    after its own: a work stream and dated progress in the provider layout; organisations,
    sources and delivery dates in the system-review layout. The XLSX has a styled, frozen
    header row, column widths, dates as dates (a month due date shows as `Jul-15`) and status
    cells coloured by RAG (an overdue action red). Importing the export gives the same plan,
    whichever layout it came from. Streamed: a large plan is never held in memory.

    Scope: `actions:read`.
    """
    if format == "xlsx":
        plan, workbook = await exporter.build_xlsx(database, plan_id, Layout(layout))
        body = exporter.file_chunks(workbook)
    else:
        async with database.transaction() as session:
            plan = await exporter.load_plan(session, plan_id)
        body = exporter.csv_stream(database, plan_id, Layout(layout))
    filename = f"{plan.filename_stem}.{format}"
    return StreamingResponse(
        body,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
