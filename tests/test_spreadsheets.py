"""Action plan spreadsheets through the API: importing real, messy files in both layouts (CSV
and XLSX) with the exact warnings a user is shown, refusing malformed files without writing
anything, the same file twice, dry runs, and export then import giving the same plan."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from app.actions.io_router import (
    ImportedAction,
    ImportedSection,
    ImportReport,
    ImportWarningOut,
)
from app.actions.rag import Rag
from app.auth.scopes import Scope
from app.kit.time import local_date, now
from app.models import Action, ActionPlan, ActionPlanSection, OutboxEvent

FIXTURES = Path(__file__).parent / "fixtures"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
IMPORT = "/v1/action-plans/import"


def fixture(name: str, run: str) -> bytes:
    """A hand-made file, its title made unique to this test (the same file imports once)."""
    return (FIXTURES / name).read_bytes().replace(b"{RUN}", run.encode())


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def to_xlsx(
    rows: list[list[Any]], merged: tuple[str, ...] = (), extra_sheet: bool = False
) -> bytes:
    """A workbook as Excel saves it: merged ranges keep the value in their first cell only."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Action plan"
    for row in rows:
        sheet.append([None if value == "" else value for value in row])
    for cells in merged:
        sheet.merge_cells(cells)
    if extra_sheet:
        workbook.create_sheet("Notes").append(["Notes for the board"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def post_file(api: Any, data: bytes, media: str = CSV, **params: Any) -> Any:
    query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    response = await api.post(IMPORT, content=data, headers={"Content-Type": media}, params=query)
    if response.status_code in (200, 201):
        check_report_shape(response.json())
    return response


def check_report_shape(report: dict[str, Any]) -> None:
    """Every report is exactly what the OpenAPI document promises (ImportReport)."""
    ImportReport.model_validate(report)
    assert list(report) == list(ImportReport.model_fields)
    for section in report["sections"]:
        assert set(section) == set(ImportedSection.model_fields)
        for action in section["actions"]:
            assert set(action) == set(ImportedAction.model_fields)
    for warning in report["warnings"]:
        assert set(warning) == set(ImportWarningOut.model_fields)


def warnings_of(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(w["row"], w["column"], w["code"], w["detail"]) for w in report["warnings"]]


def actions_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [action for section in report["sections"] for action in section["actions"]]


async def counts(database: Any) -> tuple[int, int, int, int]:
    async with database.transaction() as session:
        return tuple(  # type: ignore[return-value]
            [
                await session.scalar(select(func.count()).select_from(model))
                for model in (ActionPlan, ActionPlanSection, Action, OutboxEvent)
            ]
        )


def today_text() -> str:
    return f"{local_date(now()):%d/%m/%Y}"


def completed(row: int, column: str) -> tuple[Any, ...]:
    return (
        row,
        column,
        "completed_on_or_before",
        f"complete, with no completion date: completed on or before {today_text()} (the day "
        "of the import: the file has no as-at date)",
    )


def rag_in_status(row: int, column: str, written: str) -> list[tuple[Any, ...]]:
    """A RAG in a status column (issue 13): the reported RAG, the status not recorded."""
    return [
        (
            row,
            column,
            "rag_in_status",
            f"'{written}' is a RAG, not a status: kept as the reported RAG; the status is not "
            "recorded",
        ),
        (
            row,
            column,
            "reported_rag",
            f"'{written}' kept as the reported RAG, judged {today_text()} (no date in the file: "
            "the day of the import); the service derives its own beside it",
        ),
    ]


def same(row: int, column: str, origin: int) -> tuple[Any, ...]:
    return (row, column, "same_as_above", f"blank: same as above (row {origin})")


# --- the provider layout, with every kind of mess ---------------------------------------------

REF, REQ, SRC = "Action Reference Number", "Improvement requirement", "Source of action"
ORG, LEAD, DUE = "Organisation", "Action lead within the organisation", "Delivery Date"
STATUS = "Delivery status"
PROVIDER_WARNINGS = [
    (
        None,
        None,
        "plan_organisations",
        "no 'Organisations:' line above the header row: the plan's organisations are its "
        "actions' (RR8, 15F, Leeds Community Healthcare)",
    ),
    (
        3,
        None,
        "preamble_ignored",
        "above the header row, and not the title, sponsor, organisations or description: "
        "not imported",
    ),
    (5, "Notes for board", "ignored_column", "not a column of the provider layout: not imported"),
    (7, DUE, "two_digit_year", "'Jul-15' read as July 2015: due by the end of that month"),
    same(8, ORG, 7),
    same(8, REF, 7),
    (
        8,
        REF,
        "duplicate_reference",
        "'1' is already used in this section (row 7): numbered '1 (2)'",
    ),
    same(8, REQ, 7),
    same(8, SRC, 7),
    (8, LEAD, "lead_unknown", "lead not known ('?'): no lead"),
    same(9, ORG, 7),
    same(9, REQ, 7),
    *rag_in_status(9, STATUS, "G"),
    (
        10,
        "Comments",
        "comment_continued",
        "only a comment: added to the comments of the action above (row 9)",
    ),
    completed(11, STATUS),
    (14, DUE, "excel_serial_date", "the number 42186 read as an Excel date: 1 July 2015"),
    *rag_in_status(14, STATUS, "A"),
    same(15, REF, 14),
    (
        15,
        REF,
        "duplicate_reference",
        "'1' is already used in this section (row 14): numbered '1 (2)'",
    ),
    same(15, REQ, 14),
    same(15, SRC, 14),
    same(15, LEAD, 14),
    (15, STATUS, "status_not_recorded", "blank: the status is not recorded"),
    (
        16,
        ORG,
        "organisation_name",
        "'Leeds Community Healthcare' is not an ODS code and not in the alias table: kept as "
        "a name",
    ),
    same(16, REQ, 14),
    (16, STATUS, "status_synonym", "'Completed' read as 5 Complete"),
    completed(16, STATUS),
    same(17, ORG, 16),
    same(17, REQ, 14),
    same(17, SRC, 16),
    same(17, LEAD, 16),
    (17, DUE, "due_note", "not a date: kept as the due note 'next spring'"),
    *rag_in_status(17, STATUS, "R"),
    same(18, ORG, 16),
    same(18, REQ, 14),
    same(18, SRC, 16),
    same(18, LEAD, 16),
    (18, DUE, "due_note", "not a valid date: kept as the due note '31/02/2016'"),
    *rag_in_status(18, STATUS, "B"),
    (19, None, "repeated_header", "the header row again: skipped"),
    (20, None, "empty_section", "a section with no actions: kept"),
]


def check_provider_plan(report: dict[str, Any], run: str) -> None:
    """What the hand-made provider file says, read as a person would read it."""
    today = local_date(now()).isoformat()
    assert report["layout"] == "provider"
    assert report["title"] == f"Learning from Deaths improvement plan 2015/16 ({run})"
    assert report["sponsor"] == "Director of Nursing"
    assert report["organisations"] == ["RR8", "15F"]
    assert [(s["row"], s["position"], s["title"]) for s in report["sections"]] == [
        (6, 1, "1. Recognition of end of life"),
        (13, 2, "2. The deteriorating patient"),
        (20, 3, "3. Learning with families"),
    ]
    assert report["section_count"] == 3 and report["action_count"] == 9
    fields = [
        "row",
        "reference",
        "organisations",
        "leads",
        "due_date",
        "due_precision",
        "due_note",
        "falls_due_on",
        "status",
        "completed_at",
    ]
    got = [tuple(action[name] for name in fields) for action in actions_of(report)]
    assert got == [
        (7, "1", ["RR8"], ["AB"], "2015-07-01", "month", None, "2015-07-31", 4, None),
        (8, "1 (2)", ["RR8"], [], None, "day", "TBC", None, 4, None),
        (9, "2", ["RR8"], ["CD", "EF"], "2016-03-31", "day", None, "2016-03-31", None, None),
        (11, "3", ["RR8"], ["Dr Jane Smith"], "2016-04-30", "day", None, "2016-04-30", 5, today),
        (14, "1", ["RR8"], ["GH"], "2015-07-01", "day", None, "2015-07-01", None, None),
        (15, "1 (2)", ["15F"], ["GH"], None, "day", "Ongoing", None, None, None),
        (16, "2", ["RR8"], ["IJ", "KL"], "2016-03-01", "month", None, "2016-03-31", 5, today),
        (17, "3", ["RR8"], ["IJ", "KL"], None, "day", "next spring", None, None, None),
        (18, "4", ["RR8"], ["IJ", "KL"], None, "day", "31/02/2016", None, None, None),
    ]
    first, second, third, fourth = actions_of(report)[:4]
    assert first["comments"] == (
        "Live on 4 wards.\nMedicine next, then surgery.\n\nTraining dates in the shared calendar."
    )
    assert first["status_label"] == "On track"
    assert second["improvement_requirement"] == "Recognise patients in the last days of life"
    assert second["source"] == "SJR themes 2014/15"
    assert third["comments"] == "Q1 audit: 82% complete forms"
    assert fourth["improvement_requirement"] is None and fourth["source"] is None


async def test_dry_run_of_a_messy_provider_csv_says_what_it_assumed_and_writes_nothing(
    api: Any, database: Any
) -> None:
    run = uuid.uuid4().hex
    before = await counts(database)
    response = await post_file(api, fixture("provider_messy.csv", run), dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True and report["plan_id"] is None
    assert report["already_imported_as"] is None
    check_provider_plan(report, run)
    assert warnings_of(report) == PROVIDER_WARNINGS
    assert all(action["id"] is None for action in actions_of(report))
    assert await counts(database) == before


async def test_the_same_sheet_as_xlsx_reads_the_same(api: Any) -> None:
    """Saved as a workbook, with the merged cells really merged: the same plan, the same
    warnings (and one more: the workbook's other sheet is not read)."""
    run = uuid.uuid4().hex
    rows = csv_rows(fixture("provider_messy.csv", run))
    merged = ("A6:J6", "A7:A9", "B7:B8", "C7:C10", "E7:E8", "A13:J13", "C14:C18", "F16:F18")
    response = await post_file(
        api, to_xlsx(rows, merged, extra_sheet=True), XLSX, dry_run=True, layout="provider"
    )
    assert response.status_code == 200, response.text
    report = response.json()
    check_provider_plan(report, run)
    note = "the workbook has 2 sheets: read 'Action plan' only"
    assert warnings_of(report) == [(None, None, "file", note), *PROVIDER_WARNINGS]


async def test_xlsx_cells_typed_as_excel_types_them(api: Any) -> None:
    """Real date cells (a day, or a month formatted "mmm-yy"), serial numbers, numeric
    references, a key and its value in two cells above the header, a title from the filename
    when the sheet has none."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Sponsor", "Medical Director"])
    sheet.append(["Organisations:", "rr8"])
    sheet.append([])
    sheet.append(["Organisation", "Ref", "Improvement Requirement", "Actions", "Source",
                  "Lead", "Due date", "Status", "Comments"])  # fmt: skip
    sheet.append(["1. Deaths in the community"])
    rows = [
        ["RR8", 1.1, "Data", "Monthly mortality report", None, "AB", datetime(2016, 1, 15),
         "4. On track", "Line one\nLine two"],
        [None, 1.2, None, "Quarterly themes report", None, "AB", datetime(2016, 7, 1),
         "3 - At risk", None],
        [None, 2, None, "Annual report to the board", None, "AB", 42551, "1. On track", None],
        ["RR8", 3, None, "Link with the ICB", None, "AB", "Ongoing", 4, None],
    ]  # fmt: skip
    for row in rows:
        sheet.append(row)
    sheet["G7"].number_format = "mmm-yy"
    sheet["G6"].number_format = "dd/mm/yyyy"
    out = io.BytesIO()
    workbook.save(out)
    run = uuid.uuid4().hex
    response = await api.post(
        IMPORT,
        content=out.getvalue(),
        params={"dry_run": "true"},
        headers={"Content-Type": XLSX, "Content-Disposition": f'attachment; filename="{run}.xlsx"'},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["title"] == run and report["source_filename"] == f"{run}.xlsx"
    assert (report["sponsor"], report["organisations"]) == ("Medical Director", ["RR8"])
    got = [
        (a["reference"], a["due_date"], a["due_precision"], a["due_note"], a["status"])
        for a in actions_of(report)
    ]
    assert got == [
        ("1.1", "2016-01-15", "day", None, 4),
        ("1.2", "2016-07-01", "month", None, 3),
        ("2", "2016-06-30", "day", None, 1),
        ("3", None, "day", "Ongoing", 4),
    ]
    assert actions_of(report)[0]["comments"] == "Line one\nLine two"
    assert warnings_of(report) == [
        (None, None, "title", f"no title above the header row: titled '{run}'"),
        same(7, "Organisation", 6),
        same(7, "Improvement Requirement", 6),
        same(8, "Organisation", 6),
        same(8, "Improvement Requirement", 6),
        (
            8,
            "Due date",
            "excel_serial_date",
            "the number 42551 read as an Excel date: 30 June 2016",
        ),
        (
            8,
            "Status",
            "status_conflict",
            "'1. On track': the number and the words disagree; took 1 Not yet commenced",
        ),
        same(9, "Improvement Requirement", 6),
    ]


# --- the system-review layout -----------------------------------------------------------------

ALIGN = "Alignment with a work stream/board including Lead"


def reported(row: int, written: str) -> tuple[Any, ...]:
    return (
        row,
        "RAG",
        "reported_rag",
        f"'{written}' kept as the reported RAG, judged {today_text()} (no date in the file: the "
        "day of the import); the service derives its own beside it",
    )


def not_recorded(row: int) -> tuple[Any, ...]:
    return (row, None, "status_not_recorded", "no status column: not recorded")


# Issue 13: the RAG column is the reported RAG (not a status); with no status column every
# action's status is not recorded; 'Leeds CCG' is kept as a name, and so is 'rgd' (a trust
# code's shape, but letters only: it may be an abbreviation; the review of issue 13).
SYSTEM_REVIEW_WARNINGS = [
    (
        2,
        None,
        "organisation_maybe_code",
        "'rgd' has the shape of an ODS code but no digit, and the alias table does not know "
        "it: it may be an abbreviation, so it is kept as a name (if it is the code, write "
        "'ODS RGD' or add it to the alias table)",
    ),
    (
        2,
        None,
        "organisation_name",
        "'Leeds CCG' is not an ODS code and not in the alias table: kept as a name",
    ),
    not_recorded(6),
    reported(6, "G"),
    not_recorded(7),
    same(7, "#", 6),
    (
        7,
        "#",
        "duplicate_reference",
        "'1' is already used in this section (row 6): numbered '1 (2)'",
    ),
    same(7, "Recommendation", 6),
    same(7, ALIGN, 6),
    reported(7, "A"),
    not_recorded(8),
    (
        8,
        ALIGN,
        "lead_assumed",
        "the lead taken from the brackets: work stream 'Resuscitation Committee', lead CD",
    ),
    not_recorded(10),
    (
        10,
        ALIGN,
        "lead_assumed",
        "the first line taken as the work stream, the rest as the lead: work stream "
        "'Deteriorating Patient Group', lead EF, GH",
    ),
    reported(10, "Blue"),
    not_recorded(11),
    same(11, "Recommendation", 10),
    (11, ALIGN, "no_lead", "no 'Lead:' named: all taken as the work stream, no lead recorded"),
    reported(11, "R"),
    not_recorded(12),
    same(12, "Recommendation", 10),
    (12, ALIGN, "lead_unknown", "lead not known ('?'): no lead"),
    reported(12, "Amber"),
]


def check_system_review_plan(report: dict[str, Any], run: str) -> None:
    assert report["layout"] == "system_review"
    assert report["title"] == f"System-wide mortality review: recommendations ({run})"
    assert report["organisations"] == ["RR8"]
    assert report["organisation_names"] == ["RR8", "rgd", "Leeds CCG"]
    assert [s["title"] for s in report["sections"]] == [
        "A. Care at the end of life",
        "B. Recognising deterioration",
    ]
    got = [
        (a["row"], a["reference"], a["workstream"], a["leads"], a["status"], a["reported_rag"])
        for a in actions_of(report)
    ]
    assert got == [
        (6, "1", "End of Life Board", ["AB"], None, "green"),
        (7, "1 (2)", "End of Life Board", ["AB"], None, "amber"),
        (8, "2", "Resuscitation Committee", ["CD"], None, None),
        (10, "1", "Deteriorating Patient Group", ["EF", "GH"], None, "blue"),
        (11, "2", "Patient Safety Board", [], None, "red"),
        (12, "3", None, [], None, "amber"),
    ]
    first, second = actions_of(report)[:2]
    assert (
        first["improvement_requirement"]
        == second["improvement_requirement"]
        == ("Every patient in the last year of life has an advance care plan")
    )
    assert first["comments"] == "Template agreed in principle.\nIT build in the autumn."


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_a_messy_system_review_imports_with_its_warnings(
    api: Any, database: Any, kind: str
) -> None:
    run = uuid.uuid4().hex
    data = fixture("system_review_messy.csv", run)
    if kind == "xlsx":
        data = to_xlsx(csv_rows(data), merged=("A6:A7", "B6:B7", "D6:D7", "B10:B12"))
    before = await counts(database)
    response = await post_file(api, data, CSV if kind == "csv" else XLSX)
    assert response.status_code == 201, response.text
    report = response.json()
    check_system_review_plan(report, run)
    assert warnings_of(report) == SYSTEM_REVIEW_WARNINGS
    plan_id = report["plan_id"]
    assert response.headers["location"] == f"/v1/action-plans/{plan_id}"
    plans, sections, actions, _ = await counts(database)
    assert (plans, sections, actions) == (before[0] + 1, before[1] + 2, before[2] + 6)
    # Through the plans API it is a plan like any other.
    plan = (await api.get(f"/v1/action-plans/{plan_id}")).json()
    assert plan["layout"] == "system_review" and plan["counts"]["total"] == 6
    listed = (await api.get("/v1/actions", params={"plan_id": plan_id, "limit": 50})).json()
    assert [a["workstream"] for a in listed["items"]][:3] == [
        "End of Life Board",
        "End of Life Board",
        "Resuscitation Committee",
    ]


# --- a real import ----------------------------------------------------------------------------


async def plan_as_api_shows_it(api: Any, plan_id: str) -> dict[str, Any]:
    plan = (await api.get(f"/v1/action-plans/{plan_id}")).json()
    actions: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"plan_id": plan_id, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/actions", params=params)).json()
        actions += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    return {"plan": plan, "actions": actions}


async def test_an_import_makes_a_plan_like_the_api_makes(api: Any, database: Any) -> None:
    run = uuid.uuid4().hex
    response = await post_file(api, fixture("provider_messy.csv", run))
    assert response.status_code == 201, response.text
    report = response.json()
    check_provider_plan(report, run)
    assert warnings_of(report) == PROVIDER_WARNINGS
    shown = await plan_as_api_shows_it(api, report["plan_id"])
    assert shown["plan"]["title"] == report["title"]
    assert [s["title"] for s in shown["plan"]["sections"]] == [
        s["title"] for s in report["sections"]
    ]
    assert [s["actions"] for s in shown["plan"]["sections"]] == [4, 5, 0]
    by_id = {a["id"]: a for a in shown["actions"]}
    assert [a["position"] for a in shown["actions"]] == list(range(1, 10))
    for imported in actions_of(report):
        action = by_id[imported["id"]]
        for name in ("reference", "action", "leads", "organisations", "due_date", "reported_rag"):
            assert action[name] == imported[name], name
        # Issue 13: a blank status (or a RAG in the status column) is not recorded.
        assert action["status_recorded"] is (imported["status"] is not None)
        assert action["status"] == (imported["status"] or 1)
        assert action["version"] == 1 and action["finding_ids"] == []
    # The fluid balance action (reported R, no status, no date): reported red, derived grey;
    # the NEWS training (due July 2015, reported A) is overdue, so red.
    fluid = by_id[actions_of(report)[7]["id"]]
    assert (fluid["reported_rag"], fluid["rag"]) == (Rag.red, Rag.grey)
    assert by_id[actions_of(report)[4]["id"]]["overdue"] is True
    assert by_id[actions_of(report)[4]["id"]]["rag"] == Rag.red
    # One event for the plan, one per action (the same as the API would write).
    async with database.transaction() as session:
        events = (
            await session.execute(
                select(OutboxEvent.type, func.count())
                .where(OutboxEvent.resource_id.in_(map(uuid.UUID, [report["plan_id"], *by_id])))
                .group_by(OutboxEvent.type)
            )
        ).all()
    assert dict(events) == {"action_plan.created": 1, "action.created": 9}


async def test_the_same_file_twice_is_refused_naming_the_first_plan(
    api: Any, database: Any
) -> None:
    run = uuid.uuid4().hex
    data = fixture("system_review_messy.csv", run)
    first = await post_file(api, data)
    assert first.status_code == 201
    plan_id = first.json()["plan_id"]
    before = await counts(database)
    again = await post_file(api, data, title="Another title")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    problem = again.json()
    assert problem["type"].endswith("/already-imported")
    assert problem["existing"] == {"plan_id": plan_id, "plan": f"/v1/action-plans/{plan_id}"}
    assert await counts(database) == before
    # A dry run of it says so, and still shows what it holds.
    dry = (await post_file(api, data, dry_run=True)).json()
    assert dry["already_imported_as"] == plan_id
    assert warnings_of(dry)[0] == (
        None,
        None,
        "already_imported",
        f"this file was imported before, as plan {plan_id}: a real import of it is refused (409)",
    )
    # The same content as XLSX is another file: it imports.
    other = await post_file(api, to_xlsx(csv_rows(data)), XLSX)
    assert other.status_code == 201 and other.json()["plan_id"] != plan_id


# --- malformed files --------------------------------------------------------------------------


def junk() -> bytes:
    return random.Random(4).randbytes(4096)


MALFORMED = [
    (b"", CSV, 400, "unreadable-spreadsheet", "The file is empty."),
    (
        junk(),
        CSV,
        400,
        "unreadable-spreadsheet",
        "The file is not text: it is neither CSV nor XLSX.",
    ),
    (
        b"PK\x03\x04" + junk(),
        XLSX,
        400,
        "unreadable-spreadsheet",
        "The file looks like a ZIP but is not a readable XLSX workbook.",
    ),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + junk(),
        XLSX,
        415,
        "unsupported-media-type",
        "Save the workbook as .xlsx (Excel Workbook) or as CSV, and retry.",
    ),
    (
        b'{"title": "a plan"}',
        "application/json",
        415,
        "unsupported-media-type",
        "Send the spreadsheet itself: text/csv or XLSX.",
    ),
]


@pytest.mark.parametrize(("body", "media", "status", "slug", "detail"), MALFORMED)
async def test_a_file_that_is_not_a_spreadsheet_is_refused(
    api: Any, database: Any, body: bytes, media: str, status: int, slug: str, detail: str
) -> None:
    before = await counts(database)
    response = await post_file(api, body, media)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + slug)
    assert response.json()["detail"] == detail
    assert await counts(database) == before


async def test_wrong_columns_are_refused_naming_what_is_missing(api: Any, database: Any) -> None:
    before = await counts(database)
    patients = b"Name,NHS number,Ward\nJane Doe,9434765919,Ward 5\n"
    response = await post_file(api, patients)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/spreadsheet-layout")
    assert problem["detail"].startswith("No header row in the first 30 rows: expected the")
    assert "Jane" not in response.text and "9434765919" not in response.text
    assert "errors" not in problem
    # A header that is nearly the provider layout: the missing columns are named. (Since
    # issue 13 a header with the actions and their references is enough: the rest missing
    # is warned about, not refused.)
    near = b"Plan\n\nOrganisation,Delivery date,Comments\nRR8,Jul-15,\n"
    problem = (await post_file(api, near)).json()
    assert problem["status"] == 422
    assert "Row 3 names the columns Organisation, Delivery date, Comments" in problem["detail"]
    assert [(e["row"], e["column"], e["code"]) for e in problem["errors"]] == [
        (3, "Action reference number", "missing_column"),
        (3, "Actions", "missing_column"),
    ]
    # The right file named as the other layout: the detail says which layout it is.
    run = uuid.uuid4().hex
    problem = (
        await post_file(api, fixture("system_review_messy.csv", run), layout="provider")
    ).json()
    assert problem["status"] == 422
    assert "They are the system_review layout: send layout=system_review." in problem["detail"]
    assert problem["detail"].endswith("rag, recommendation, completed).")  # or name the columns
    assert await counts(database) == before


async def test_rows_that_cannot_be_imported_are_all_listed_and_nothing_is_written(
    api: Any, database: Any
) -> None:
    before = await counts(database)
    data = (
        "Plan {run}\n"
        "Organisation,Action reference number,Improvement Requirement,Actions,Source of Action,"
        "Action lead within the organisation,Delivery date,Delivery Status,Comments\n"
        "RR8,1,,,,AB,Jul-15,G,\n"
        f"RR8,{'9' * 51},Something,An action,,AB,Jul-15,G,\n"
        "RR8,2,Something,Fine,,AB,Jul-15,G,\n"
    ).replace("{run}", uuid.uuid4().hex)
    for dry_run in (True, False):
        response = await post_file(api, data.encode(), dry_run=dry_run)
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"].endswith("/spreadsheet-rows-invalid")
        assert problem["errors"] == [
            {
                "row": 3,
                "column": "Actions",
                "code": "missing_action",
                "detail": "no action text, and none above",
            },
            {
                "row": 4,
                "column": "Action reference number",
                "code": "too_long",
                "detail": "longer than 50",
            },
        ]
    assert await counts(database) == before


async def test_a_file_of_50_mb_is_refused_before_it_is_read(api: Any, database: Any) -> None:
    before = await counts(database)
    header = b"Organisation,Action reference number,Actions,Delivery date,Delivery Status\n"
    body = header + b"RR8,1,x,Jul-15,G\n" * (50 * 1024 * 1024 // 17)
    response = await post_file(api, body)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await counts(database) == before


async def test_scopes(make_api: Any) -> None:
    reader = await make_api(Scope.actions_read)
    response = await post_file(reader, fixture("provider_messy.csv", uuid.uuid4().hex))
    assert response.status_code == 403
    writer = await make_api(Scope.findings_read)
    response = await writer.get(f"/v1/action-plans/{uuid.uuid4()}/export")
    assert response.status_code == 403


# --- export, and the round trip ---------------------------------------------------------------

COMPARED = [
    "reference",
    "improvement_requirement",
    "action",
    "source",
    "leads",
    "organisations",
    "workstream",
    "start_date",
    "due_date",
    "due_precision",
    "due_note",
    "falls_due_on",
    "status",
    "status_label",
    "completed_at",
    "comments",
    "evidence",
    "assured_at",
    "assured_by",
    "rag",
    "overdue",
]


def plan_fields(shown: dict[str, Any]) -> dict[str, Any]:
    plan = shown["plan"]
    order = {section["id"]: section["position"] for section in plan["sections"]}
    actions = sorted(shown["actions"], key=lambda a: (order[a["section"]["id"]], a["position"]))
    return {
        "title": plan["title"],
        "sponsor": plan["sponsor"],
        "organisations": plan["organisations"],
        "description": plan["description"],
        "sections": [(s["position"], s["title"], s["actions"]) for s in plan["sections"]],
        "counts": plan["counts"],
        "actions": [
            {"section": action["section"]["title"], **{n: action[n] for n in COMPARED}}
            for action in actions
        ],
    }


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_import_export_import_gives_the_same_plan(api: Any, fmt: str) -> None:
    run = uuid.uuid4().hex
    first = await post_file(api, fixture("provider_messy.csv", run))
    assert first.status_code == 201
    first_id = first.json()["plan_id"]
    exported = await api.get(f"/v1/action-plans/{first_id}/export", params={"format": fmt})
    assert exported.status_code == 200
    media = CSV if fmt == "csv" else XLSX
    assert exported.headers["content-type"].startswith(media)
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="Learning-from-Deaths-improvement-plan-2015-16-{run}.{fmt}"'
    )
    second = await post_file(api, exported.content, media)
    assert second.status_code == 201, second.text
    report = second.json()
    # Nothing was assumed reading the export but what the export cannot say: that an empty
    # section is empty, that a delivery date in words ("next spring") is a note. (When
    # complete actions were completed it says, in "Completed": review of issue 13.)
    assert {code for _, _, code, _ in warnings_of(report)} == {
        "empty_section",
        "due_note",
        "status_not_recorded",
        "organisation_name",
    }
    original = plan_fields(await plan_as_api_shows_it(api, first_id))
    again = plan_fields(await plan_as_api_shows_it(api, report["plan_id"]))
    assert again == original
    assert original["actions"][0]["comments"].count("\n") == 3


async def test_a_system_review_round_trips_through_the_provider_layout(api: Any) -> None:
    """The provider layout has no work stream column: the export adds one after the layout's
    own ("Work stream"), and everything comes back (review of issue 13)."""
    first = await post_file(api, fixture("system_review_messy.csv", uuid.uuid4().hex))
    first_id = first.json()["plan_id"]
    exported = await api.get(f"/v1/action-plans/{first_id}/export", params={"format": "xlsx"})
    header = [cell.value for cell in load_workbook(io.BytesIO(exported.content)).active[4]]
    assert header[-2:] == ["RAG now", "Work stream"]
    second = await post_file(api, exported.content, XLSX)
    assert second.status_code == 201, second.text
    original = plan_fields(await plan_as_api_shows_it(api, first_id))
    again = plan_fields(await plan_as_api_shows_it(api, second.json()["plan_id"]))
    assert [a["workstream"] for a in original["actions"]][:3] == [
        "End of Life Board",
        "End of Life Board",
        "Resuscitation Committee",
    ]
    assert again == original


async def test_the_xlsx_export_is_a_proper_spreadsheet(api: Any) -> None:
    run = uuid.uuid4().hex
    report = (await post_file(api, fixture("provider_messy.csv", run))).json()
    response = await api.get(
        f"/v1/action-plans/{report['plan_id']}/export", params={"format": "xlsx"}
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["A1"].value == f"Learning from Deaths improvement plan 2015/16 ({run})"
    assert sheet["A1"].font.bold
    assert [sheet["A2"].value, sheet["A3"].value] == [
        "Sponsor: Director of Nursing",
        "Organisations: RR8, 15F, Leeds Community Healthcare",  # names kept (issue 13)
    ]
    header = [cell.value for cell in sheet[5]]
    assert header == [
        "Organisation",
        "Action reference number",
        "Improvement Requirement",
        "Actions",
        "Source of Action",
        "Action lead within the organisation",
        "Delivery date",
        "Delivery Status",
        "Completed",
        "Comments",
        "Recommendation reference",
        "Reported RAG",
        "RAG now",
    ]
    assert all(cell.font.bold and cell.fill.fgColor.rgb.endswith("005EB8") for cell in sheet[5])
    assert sheet.freeze_panes == "A6"
    assert sheet.column_dimensions["D"].width == 50
    assert sheet["A6"].value == "1. Recognition of end of life"
    rows = {row[1].value: row for row in sheet.iter_rows(min_row=7, max_row=11) if row[1].value}
    amber_bundle = rows["1"]
    assert amber_bundle[6].value == datetime(2015, 7, 1)
    assert amber_bundle[6].number_format == "mmm-yy"
    assert amber_bundle[7].value == "4. On track"
    assert amber_bundle[7].fill.fgColor.rgb.endswith("D5281B")  # due July 2015: overdue, red
    assert amber_bundle[8].value == "-"  # not complete
    assert amber_bundle[9].alignment.wrap_text
    assert amber_bundle[9].value.startswith("Live on 4 wards.\nMedicine next")
    assert rows["1 (2)"][5].value == "-" and rows["1 (2)"][6].value == "TBC"
    assert rows["1 (2)"][7].fill.fgColor.rgb.endswith("007F3B")  # on track, no date: green
    assert rows["2"][6].value == datetime(2016, 3, 31)
    assert rows["2"][6].number_format == "dd/mm/yyyy"
    assert rows["3"][7].value == "5. Complete"
    assert rows["3"][7].fill.fgColor.rgb.endswith("005EB8")  # complete: blue
    # Imported complete, with no as-at date: on or before the day of the import.
    assert rows["3"][8].value == f"on or before {today_text()}"
    assert rows["3"][12].fill.fgColor.rgb.endswith("005EB8")  # RAG now: blue too


async def test_the_csv_export_reads_as_the_provider_layout(api: Any) -> None:
    run = uuid.uuid4().hex
    report = (await post_file(api, fixture("system_review_messy.csv", run))).json()
    response = await api.get(f"/v1/action-plans/{report['plan_id']}/export")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    rows = csv_rows(response.content)
    assert rows[:5] == [
        [f"System-wide mortality review: recommendations ({run})"],
        ["Organisations: RR8, rgd, Leeds CCG"],  # as written (issue 13)
        [],
        [
            "Organisation",
            "Action reference number",
            "Improvement Requirement",
            "Actions",
            "Source of Action",
            "Action lead within the organisation",
            "Delivery date",
            "Delivery Status",
            "Completed",
            "Comments",
            "Recommendation reference",
            "Reported RAG",
            "RAG now",
            "Work stream",  # the provider layout has none: after its own (review of issue 13)
        ],
        ["A. Care at the end of life"],
    ]
    assert rows[5] == [
        "-",
        "1",
        "Every patient in the last year of life has an advance care plan",
        "Agree one advance care planning template across the city",
        "-",
        "AB",
        "-",
        "",  # the file had a RAG, not a status: not recorded (issue 13)
        "-",  # not complete
        "Template agreed in principle.\nIT build in the autumn.",
        "-",
        f"Green ({today_text()})",  # the reported RAG, dated the day of the import
        "now Grey: status not recorded",
        "End of Life Board",
    ]
    assert [row[:2] for row in rows[6:9]] == [
        ["-", "1 (2)"],
        ["-", "2"],
        ["B. Recognising deterioration"],
    ]


async def test_export_guards_formulas_and_keeps_them_text(api: Any) -> None:
    """A cell a spreadsheet would run as a formula is exported as text, and comes back as it was."""
    run = uuid.uuid4().hex
    data = (
        f"Plan {run}\n"
        "Organisation,Action reference number,Improvement Requirement,Actions,Source of Action,"
        "Action lead within the organisation,Delivery date,Delivery Status,Comments\n"
        "S\n"
        'RR8,1,-,"=HYPERLINK(""http://example.org"")",-,AB,01/01/2030,4,-2+3\n'
    ).encode()
    first = (await post_file(api, data)).json()
    action = actions_of(first)[0]
    assert (action["action"], action["comments"]) == ('=HYPERLINK("http://example.org")', "-2+3")
    for fmt, media in (("csv", CSV), ("xlsx", XLSX)):
        exported = await api.get(
            f"/v1/action-plans/{first['plan_id']}/export", params={"format": fmt}
        )
        if fmt == "csv":
            assert csv_rows(exported.content)[5][3] == '\'=HYPERLINK("http://example.org")'
        else:
            cell = load_workbook(io.BytesIO(exported.content)).active["D6"]
            assert cell.data_type == "s"
        again = (await post_file(api, exported.content, media, dry_run=True)).json()
        assert (actions_of(again)[0]["action"], actions_of(again)[0]["comments"]) == (
            action["action"],
            action["comments"],
        )


async def test_export_of_an_unknown_plan_is_404(api: Any) -> None:
    for fmt in ("csv", "xlsx"):
        response = await api.get(f"/v1/action-plans/{uuid.uuid4()}/export", params={"format": fmt})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_plan_made_through_the_api_exports_and_imports_the_same(api: Any) -> None:
    """Sections without actions, actions added to an earlier section later, a due note beside
    no date, no leads: the export keeps the section order and every value."""
    run = uuid.uuid4().hex
    created = await api.post(
        "/v1/action-plans",
        json={
            "title": f"API plan {run}",
            "organisations": ["RR8"],
            "description": "Made through the API",
            "sections": ["First", "Second", "Third"],
        },
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    first, _, third = (s["id"] for s in plan["sections"])
    bodies = [
        {"section_id": third, "reference": "1", "action": "Later section first", "due_note": "TBC"},
        {
            "section_id": first,
            "reference": "1",
            "action": "Earlier section second",
            "leads": ["AB", "Dr Jane Smith"],
            "due_date": "2031-03-01",
            "due_precision": "month",
            "status": 3,
            "comments": "Two\nlines",
        },
    ]
    for body in bodies:
        response = await api.post("/v1/actions", json={"plan_id": plan["id"], **body})
        assert response.status_code == 201, response.text
    exported = await api.get(f"/v1/action-plans/{plan['id']}/export")
    titles = [row[0] for row in csv_rows(exported.content)[5:] if len(row) == 1]
    assert titles == ["First", "Second", "Third"]
    again = await post_file(api, exported.content)
    assert again.status_code == 201, again.text
    assert warnings_of(again.json()) == [
        (8, None, "empty_section", "a section with no actions: kept")
    ]
    original = plan_fields(await plan_as_api_shows_it(api, plan["id"]))
    copy = plan_fields(await plan_as_api_shows_it(api, again.json()["plan_id"]))
    assert copy == original
    assert copy["description"] == "Made through the API"
