"""Issue 13: action plans as trusts really keep them, over HTTP. Mimics of the two real plans
(an LLR admission-avoidance provider plan, 26 actions, long local headers and comments; a CQC
local system review plan, 36 actions under recommendations A-Q numbered in their text) are
written here, row by row, as a person would have typed them: titles and blank lines above the
header, page titles and headers repeated at page breaks, continuation rows, dates in words,
RAGs, organisations as names, leads handed over. Each is sent as supplied (tab-separated with
a page title above the header, semicolons in Windows-1252, XLSX), every count is held, and
both layouts export and re-import unchanged."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

IMPORT = "/v1/action-plans/import"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# --- the provider plan (26 actions) ----------------------------------------------------------

P_HEADER = [
    "Organisation",
    "Action reference number",
    "Improvement Requirement",
    "Actions",
    "Source of Action",
    "Action lead within the organisation",
    "Delivery date",
    "Delivery Status",
    "Comments on delivery of the action, where closed what follow up actions are required",
]
ORGS = "West Leicestershire CCG & East Leicestershire and Rutland CCG, LPT, UHL"


def provider_rows(run: str) -> list[list[str]]:
    title = f"LLR Admission Avoidance Workshop \u2013 Action Plan ({run})"
    rows: list[list[str]] = [[title], ["Progress Update"], ["30/09/2015"], [], P_HEADER]
    statuses = ["Complete", "On track", "", "G", "At risk", "A"]
    dues = ["Jul-15", "31/03/2016", "TBC", "Mar-16"]
    for section in (1, 2):
        rows.append([f"{section}. {'Admission avoidance' if section == 1 else 'Discharge'}"])
        for index in range(1, 14):
            number = (section - 1) * 13 + index
            org = ORGS if index == 1 else ("Healthwatch" if index == 5 else "")
            lead = "(Phil Corrigan > Tim Ryley)" if number == 3 else f"Lead {number}"
            comment = (
                "" if number == 26 else f"Comment \u2018{number}\u2019: \u00a3{number}0k agreed"
            )
            action = "" if number == 8 else f"Action {number}: review pathway {number}"
            if number == 12:
                action = "Joint audit of frailty pathway. Linked to action 7 and action 2"
            rows.append(
                [
                    org,
                    str(index),
                    f"Requirement {number}",
                    action,
                    "LLR workshop" if index == 1 else "",
                    lead,
                    dues[number % 4],
                    statuses[number % 6],
                    comment,
                ]
            )
            if number == 4:
                rows.append(["", "", "", "", "", "LCC", "", "", ""])  # only a lead: continues
            if number == 10:
                rows.append([title])  # the page title, repeated at a page break
                rows.append(P_HEADER)
    return rows


# --- the system review plan (36 actions, recommendations A-Q) ------------------------------

S_HEADER = [
    "#",
    "CQC system wide recommendation",
    "Leeds comments and actions to be completed in 2019",
    "Alignment with a current work stream, group or Board, including Lead",
    "Progress made Sept 2019",
    "RAG",
]
LETTERS = "ABCDEFGHIJKLMNOPQ"
PER_LETTER = [3, 3] + [2] * 15  # 36
WHEN = ["By the end of March", "By June", "By July ensure", "From January 2019", "Within year"]


def system_rows(run: str) -> list[list[str]]:
    title = f"Leeds Health and Care Partnership: CQC Local System Review Action Plan ({run})"
    rows: list[list[str]] = [[title], ["Progress Update September 2019"], [], S_HEADER]
    number = 0
    for letter, count in zip(LETTERS, PER_LETTER, strict=True):
        for index in range(count):
            number += 1
            words = WHEN[number % 5]
            text = f"{number}. {words} to have completed step {number} of the plan"
            if number == 9:
                text += ". Linked to action 7 and action 27"
            alignment = (
                "People's Voices Group (Hannah Davies)"
                if number % 3 == 0
                else "SRAB / ORG (Tim Ryley)"
                if number % 3 == 1
                else ""
            )
            rag = ["A", "G", "R", ""][number % 4]
            rows.append(
                [
                    f"{letter}." if index == 0 else "",
                    f"Recommendation {letter}: the system should do {letter}" if index == 0 else "",
                    text,
                    alignment,
                    f"Progress on {number}" if number % 2 else "",
                    rag,
                ]
            )
            if number == 5:
                rows.append(["", "", "", "SRAB / ORG (Phil Corrigan > Tim Ryley)", "", ""])
            if number == 11:
                rows.append(["", "", "\u2022 review monthly at the board", "", "", ""])
            if number == 14:
                rows.append(["", "", "Also covered by action 5.", "", "", ""])
            if number == 20:
                rows.append([title])
                rows.append(S_HEADER)
                rows.append(["", "", "and the rest of the text cut by the page break", "", "", ""])
            if number == 30:
                rows.append(["", "", "", "", "more progress, page two", ""])
    return rows


# --- files as supplied ----------------------------------------------------------------------


def as_csv(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def tab_export(rows: list[list[str]]) -> bytes:
    """Tab-separated, two blank lines and the page title above everything."""
    return b"\r\n\r\n" + as_csv(rows, "\t", "utf-8")


def as_xlsx(rows: list[list[str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append([value or None for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def post(api: Any, data: bytes, media: str = CSV, **params: Any) -> Any:
    query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    return await api.post(IMPORT, content=data, headers={"Content-Type": media}, params=query)


def actions_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [action for section in report["sections"] for action in section["actions"]]


def codes(report: dict[str, Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for warning in report["warnings"]:
        found[warning["code"]] = found.get(warning["code"], 0) + 1
    return found


def check_provider(report: dict[str, Any]) -> None:
    actions = actions_of(report)
    assert (report["layout"], report["section_count"], report["action_count"]) == (
        "provider",
        2,
        26,
    )
    assert sum(1 for a in actions if a["comments"]) == 25
    assert [a["reference"] for a in actions] == [str(i) for i in range(1, 14)] * 2
    assert sum(1 for a in actions if a["status"] is None) == 13  # blank (5) and RAGs (8)
    assert sum(1 for a in actions if a["status"] == 5) == 4
    assert sum(1 for a in actions if a["reported_rag"]) == 8
    assert {a["reported_rag_on"] for a in actions if a["reported_rag"]} == {"2015-09-30"}
    assert sum(1 for a in actions if a["due_date"]) == 19
    assert sum(1 for a in actions if a["due_note"] == "TBC") == 7
    assert actions[2]["leads"] == ["Tim Ryley"] and actions[2]["lead_history"] == ["Phil Corrigan"]
    assert actions[3]["leads"] == ["Lead 4", "LCC"]  # the continuation row's lead
    assert actions[7]["action"] == "Requirement 8"  # blank Actions: the requirement
    assert actions[0]["organisation_names"] == [
        "West Leicestershire CCG",
        "East Leicestershire and Rutland CCG",
        "LPT",
        "UHL",
    ]
    assert actions[0]["organisations"] == ["04V", "03W", "RT5", "RWE"]
    assert actions[4]["organisation_names"] == ["Healthwatch"] and actions[4]["organisations"] == []
    assert "UHL" not in report["organisations"]
    assert report["organisations"] == ["04V", "03W", "RT5", "RWE"]
    assert report["organisation_names"] == [*ORGS.replace(" & ", ", ").split(", "), "Healthwatch"]
    assert sum(1 for a in actions if a["organisation_names"]) == 26  # merged cells carried
    assert sum(1 for a in actions if a["leads"]) == 26
    assert len({lead for a in actions for lead in a["leads"]}) == 27  # 25 + Tim Ryley + LCC
    complete = [a for a in actions if a["status"] == 5]
    assert {(a["completed_at"], a["completed_precision"]) for a in complete} == {
        ("2015-09-30", "on_or_before")
    }
    linked = actions[11]
    assert [(link["reference"], link["kind"]) for link in linked["links"]] == [
        ("7", "linked_to"),
        ("2", "linked_to"),
    ]
    assert "\u00a3" in actions[0]["comments"] and "\u2018" in actions[0]["comments"]
    found = codes(report)
    assert found["repeated_title"] == 1 and found["repeated_header"] == 1
    assert found["continuation"] == 1 and found["action_from_requirement"] == 1
    assert found["lead_handover"] == 1 and found["organisation_name"] == 2
    assert found["status_not_recorded"] == 5 and found["rag_in_status"] == 8


def check_system(report: dict[str, Any]) -> None:
    actions = actions_of(report)
    assert (report["layout"], report["action_count"], report["section_count"]) == (
        "system_review",
        36,
        17,
    )
    assert report["plan_year"] == 2019 and report["as_at"] == "2019-09-01"
    assert [a["reference"] for a in actions] == [str(i) for i in range(1, 37)]
    assert [a["recommendation"] for a in actions] == [
        letter for letter, count in zip(LETTERS, PER_LETTER, strict=True) for _ in range(count)
    ]
    assert report["sections"][0]["title"] == "A. Recommendation A: the system should do A"
    assert actions[0]["action"] == "By June to have completed step 1 of the plan"
    assert sum(1 for a in actions if a["reported_rag"]) == 27
    assert {a["reported_rag_on"] for a in actions if a["reported_rag"]} == {"2019-09-01"}
    assert all(a["status"] is None for a in actions)
    assert sum(1 for a in actions if a["due_text"]) == 22
    assert actions[4]["due_date"] == "2019-03-01" and actions[4]["due_text"] == (
        "By the end of March"
    )
    assert actions[0]["due_date"] == "2019-06-01" and actions[0]["due_text"] == "By June"
    assert actions[2]["start_date"] == "2019-01-01" and actions[2]["due_date"] is None
    assert sum(1 for a in actions if a["progress"]) == 19  # odd numbers, and 30 from a row below
    assert actions[29]["progress"] == "more progress, page two"
    assert actions[28]["progress_on"] == "2019-09-01"
    assert actions[4]["leads"] == ["Tim Ryley"] and actions[4]["lead_history"] == ["Phil Corrigan"]
    assert actions[2]["workstream"] == "People's Voices Group" and actions[2]["leads"] == [
        "Hannah Davies"
    ]
    assert actions[10]["action"].endswith("\u2022 review monthly at the board")
    assert (
        sum(1 for a in actions if a["leads"]) == 31
        and sum(1 for a in actions if a["workstream"]) == 31
    )
    assert {lead for a in actions for lead in a["leads"]} == {"Hannah Davies", "Tim Ryley"}
    assert not any(a["comments"] for a in actions)  # the progress is dated, not comments
    assert actions[19]["action"].endswith("and the rest of the text cut by the page break")
    assert [
        (a["reference"], link["reference"], link["kind"]) for a in actions for link in a["links"]
    ] == [
        ("9", "7", "linked_to"),
        ("9", "27", "linked_to"),
        ("14", "5", "covered_by"),
    ]
    found = codes(report)
    assert found["continuation"] == 5
    assert found["repeated_title"] == 1 and found["repeated_header"] == 1
    assert found["due_from_text"] == 22 and found["start_from_text"] == 7


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["tabs", "semicolons-cp1252", "xlsx"])
async def test_the_provider_plan_imports_as_supplied(api: Any, shape: str) -> None:
    rows = provider_rows(uuid.uuid4().hex)
    if shape == "tabs":
        data, media = tab_export(rows), CSV
    elif shape == "xlsx":
        data, media = as_xlsx(rows), XLSX
    else:
        data, media = as_csv(rows, ";", "cp1252"), CSV
    response = await post(api, data, media, dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    check_provider(report)
    columns = {c["header"]: c["read_as"] for c in report["columns"]}
    assert columns[P_HEADER[-1]] == "comments"
    if shape != "xlsx":
        file_notes = [w["detail"] for w in report["warnings"] if w["code"] == "file"]
        assert any("tabs" in n or "semicolons" in n for n in file_notes), file_notes


@pytest.mark.parametrize("delimiter", ["\t", ";"])
async def test_long_comments_with_line_breaks_and_commas_keep_the_delimiter(
    api: Any, delimiter: str
) -> None:
    """Review of issue 13: the real plan's comments run over several lines and have commas
    ("£15,000", "where closed, ..."). Read with commas, such a tab- or semicolon-separated
    file falls into more two-field records (one per line of each comment) than it has rows:
    the delimiter is the one under which the header row is found, not the one that cuts the
    most records alike."""
    rows = provider_rows(uuid.uuid4().hex)
    for row in rows:
        if len(row) == len(P_HEADER) and row[-1].startswith("Comment"):
            row[-1] += ", \u00a315,000 agreed.\nFollow up: report back, where closed, to the board"
    data = b"\r\n\r\n" + as_csv(rows, delimiter, "cp1252" if delimiter == ";" else "utf-8")
    response = await post(api, data, dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    actions = actions_of(report)
    assert report["action_count"] == 26 and sum(1 for a in actions if a["comments"]) == 25
    assert actions[0]["comments"].endswith("where closed, to the board")
    name = "tabs" if delimiter == "\t" else "semicolons"
    assert f"the columns are separated by {name}" in [
        w["detail"] for w in report["warnings"] if w["code"] == "file"
    ]


@pytest.mark.parametrize("shape", ["tabs", "xlsx"])
async def test_the_system_review_plan_imports_as_supplied(api: Any, shape: str) -> None:
    rows = system_rows(uuid.uuid4().hex)
    data, media = (tab_export(rows), CSV) if shape == "tabs" else (as_xlsx(rows), XLSX)
    response = await post(api, data, media, dry_run=True)
    assert response.status_code == 200, response.text
    check_system(response.json())


async def test_an_unknown_header_is_read_through_a_columns_map(api: Any) -> None:
    rows = provider_rows(uuid.uuid4().hex)
    rows[4] = [*P_HEADER[:-1], "Board's view"]
    response = await post(api, as_csv(rows), dry_run=True)
    report = response.json()
    assert response.status_code == 200 and not any(a["comments"] for a in actions_of(report))
    assert ("Board's view", "ignored_column") in [
        (w["column"], w["code"]) for w in report["warnings"]
    ]
    response = await post(api, as_csv(rows), dry_run=True, columns='{"Board\'s view": "comments"}')
    assert response.status_code == 200, response.text
    check_provider(response.json())
    bad = await post(api, as_csv(rows), dry_run=True, columns='{"x": "nonsense"}')
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )


async def test_plan_year_and_as_of_given_by_the_user(api: Any) -> None:
    rows = system_rows(uuid.uuid4().hex)
    rows[1] = ["Progress Update"]
    rows[3][2] = "Leeds comments and actions"
    response = await post(api, as_csv(rows), dry_run=True, plan_year=2020, as_of="2020-10-15")
    report = response.json()
    assert (report["plan_year"], report["as_at"]) == (2020, "2020-10-15")
    assert actions_of(report)[0]["due_date"] == "2020-06-01"


COMPARED = [
    "reference",
    "recommendation",
    "improvement_requirement",
    "action",
    "source",
    "leads",
    "lead_history",
    "organisations",
    "organisation_names",
    "workstream",
    "due_date",
    "due_precision",
    "due_note",
    "status",
    "status_recorded",
    "reported_rag",
    "reported_rag_on",
    "reported_rag_precision",
    "comments",
    "links",
    "completed_at",
    "completed_precision",
]


async def plan_actions(api: Any, plan_id: str) -> list[dict[str, Any]]:
    response = await api.get("/v1/actions", params={"plan_id": plan_id, "limit": 200})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def comparable(actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for action in actions:
        values = dict(action)
        values["links"] = [(link["reference"], link["kind"]) for link in action["links"]]
        out.append(tuple((name, values[name]) for name in COMPARED))
    return out


async def progress_of(api: Any, actions: list[dict[str, Any]]) -> list[list[tuple[str, str]]]:
    """Each action's dated progress updates: (date, text)."""
    found = []
    for action in actions:
        response = await api.get(f"/v1/actions/{action['id']}/history")
        assert response.status_code == 200, response.text
        entries = response.json()
        entries = entries.get("items", entries) if isinstance(entries, dict) else entries
        found.append([(e["update_date"], e["narrative"]) for e in entries if e["narrative"]])
    return found


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(
    ("plan", "layout"),
    [
        ("provider", "provider"),
        ("system", "system_review"),
        # Across layouts: what the layout lacks is carried in the other layout's columns.
        ("provider", "system_review"),
        ("system", "provider"),
    ],
)
async def test_export_then_import_gives_the_same_plan(
    api: Any, fmt: str, plan: str, layout: str
) -> None:
    rows = provider_rows(uuid.uuid4().hex) if plan == "provider" else system_rows(uuid.uuid4().hex)
    first = await post(api, as_xlsx(rows), XLSX)
    assert first.status_code == 201, first.text
    plan_id = first.json()["plan_id"]
    before = await plan_actions(api, plan_id)
    assert len(before) == (26 if plan == "provider" else 36)
    # Completed as the file's as-at date says (30/09/2015), not on the day of either import.
    complete = [a for a in before if a["status"] == 5]
    assert len(complete) == (4 if plan == "provider" else 0)
    assert {(a["completed_at"], a["completed_precision"]) for a in complete} <= {
        ("2015-09-30", "on_or_before")
    }
    exported = await api.get(
        f"/v1/action-plans/{plan_id}/export", params={"format": fmt, "layout": layout}
    )
    assert exported.status_code == 200, exported.text
    again = await post(api, exported.content, XLSX if fmt == "xlsx" else CSV)
    assert again.status_code == 201, again.text
    codes_read = codes(again.json())
    assert "completed_on_or_before" not in codes_read  # the export says when
    assert "ignored_column" not in codes_read  # every column the export wrote is read back
    after = await plan_actions(api, again.json()["plan_id"])
    assert comparable(after) == comparable(before)
    if plan == "system":  # the dated progress comes back dated, in either layout
        assert await progress_of(api, after) == await progress_of(api, before)
    sections = [s["title"] for s in first.json()["sections"]]
    assert [s["title"] for s in again.json()["sections"]] == sections


async def test_a_completion_date_is_exported_with_its_precision(api: Any) -> None:
    """Issue 13 review: a completion recorded through the API (a day) and one imported (on or
    before the as-at date) are both written in the "Completed" column, each as it is, and
    read back so."""
    rows = provider_rows(uuid.uuid4().hex)
    made = await post(api, as_csv(rows))
    assert made.status_code == 201, made.text
    plan_id = made.json()["plan_id"]
    actions = await plan_actions(api, plan_id)
    open_one = next(a for a in actions if a["status"] == 4)
    path = f"/v1/actions/{open_one['id']}"
    current = await api.get(path)
    changed = await api.patch(
        path,
        json={"status": 5, "completed_at": "2016-01-15"},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    exported = await api.get(f"/v1/action-plans/{plan_id}/export")
    lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    header = next(line for line in lines if line and line[0] == "Organisation")
    column = header.index("Completed")
    assert header[column - 1] == "Delivery Status"
    by_reference = {
        (line[1], line[3]): line[column]
        for line in lines[lines.index(header) + 1 :]
        if len(line) > 3
    }
    assert by_reference[(open_one["reference"], open_one["action"])] == "15/01/2016"
    assert sorted(set(by_reference.values())) == ["-", "15/01/2016", "on or before 30/09/2015"]
    again = await post(api, exported.content)
    assert again.status_code == 201, again.text
    after = {
        (a["reference"], a["action"]): a for a in await plan_actions(api, again.json()["plan_id"])
    }
    copy = after[(open_one["reference"], open_one["action"])]
    assert (copy["completed_at"], copy["completed_precision"]) == ("2016-01-15", None)


async def test_both_rags_are_shown_on_the_action_and_in_the_export(api: Any) -> None:
    rows = system_rows(uuid.uuid4().hex)
    made = await post(api, as_csv(rows))
    assert made.status_code == 201, made.text
    actions = await plan_actions(api, made.json()["plan_id"])
    first = actions[19]  # "By the end of March" 2019, reported Amber in September 2019
    assert (first["reported_rag"], first["reported_rag_on"]) == ("amber", "2019-09-01")
    assert first["rag"] == "red" and first["overdue"] is True
    assert first["rag_summary"] == "reported Amber (Sep 2019); now Red: overdue"
    assert first["status_recorded"] is False and first["status_label"] == "Not recorded"
    exported = await api.get(
        f"/v1/action-plans/{made.json()['plan_id']}/export", params={"layout": "system_review"}
    )
    lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    header = next(line for line in lines if line and line[0] == "#")
    assert header[4] == "Progress made Sep 2019" and header[5] == "RAG"
    first_row = next(line for line in lines if len(line) > 2 and line[2].startswith("20. "))
    assert first_row[5] == "Amber (Sep 2019)"
    assert first_row[header.index("RAG now")] == "now Red: overdue"
    assert date.fromisoformat(first["due_date"]) == date(2019, 3, 1)
    # The dated progress is in the action's history (number 19 has "Progress on 19").
    history = await api.get(f"/v1/actions/{actions[18]['id']}/history")
    assert history.status_code == 200, history.text
    entries = history.json()
    entries = entries.get("items", entries) if isinstance(entries, dict) else entries
    assert [(e["update_date"], e["narrative"]) for e in entries] == [
        ("2019-09-01", "Progress on 19")
    ]
    # The actions report's overdue list shows both too.
    report = await api.get("/v1/reports/actions", params={"plan_id": made.json()["plan_id"]})
    assert report.status_code == 200, report.text
    (overdue,) = [table for table in report.json()["tables"] if table["key"] == "overdue"]
    shown = {(row["reference"], row["rag"], row["status"]) for row in overdue["rows"]}
    assert ("20", "reported Amber (Sep 2019); now Red: overdue", "Not recorded") in shown


async def test_a_refusal_never_echoes_cells_read_by_their_words(api: Any) -> None:
    """A wrong file (here a list of patients) is refused without its cells in the problem,
    even those whose words would name a column ("Actions for Jane Doe")."""
    data = b"Name,Actions for Jane Doe,NHS number\nJane Doe,Review 9434765919,9434765919\n"
    response = await post(api, data, dry_run=True)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Jane" not in response.text and "9434765919" not in response.text


async def test_the_alias_table_is_configurable(app_factory: Any, make_api: Any) -> None:
    _, http = await app_factory(organisation_aliases={"Healthwatch": ["RZZ", "Healthwatch Z"]})
    api = await make_api(client=http)
    response = await post(api, as_csv(provider_rows(uuid.uuid4().hex)), dry_run=True)
    assert response.status_code == 200, response.text
    healthwatch = actions_of(response.json())[4]
    assert (healthwatch["organisation_names"], healthwatch["organisations"]) == (
        ["Healthwatch"],
        ["RZZ"],
    )
    uhl = actions_of(response.json())[0]  # the default table is replaced: UHL is a name now
    assert uhl["organisations"] == []


async def test_an_actions_cell_split_by_a_page_break_continues_the_action(api: Any) -> None:
    """Review of issue 13: the rest of an Actions cell, after the repeated header, is the
    action above continued, not a new action copied from the row above."""
    title = f"Split cell plan {uuid.uuid4().hex}"
    rows = [
        [title],
        [],
        P_HEADER,
        ["1. Section"],
        ["RT5", "1", "Req 1", "Action 1 first half", "CQC", "Lead 1", "31/03/2016", "On track"],
        [title],
        P_HEADER,
        ["", "", "", "and its second half", "", "", "", ""],
        ["RT5", "2", "Req 2", "Action 2", "CQC", "Lead 2", "31/03/2016", "On track"],
    ]
    response = await post(api, as_csv(rows), dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    actions = actions_of(report)
    assert [a["reference"] for a in actions] == ["1", "2"]
    assert actions[0]["action"] == "Action 1 first half\nand its second half"
    assert codes(report).get("continuation") == 1


async def test_a_gp_practice_code_passes_the_dry_run_and_the_import(api: Any) -> None:
    """Review of issue 13: a GP practice code (letter + 5 digits) is a valid ODS code; the dry
    run and the real import agree on it."""
    rows = [
        [f"GP plan {uuid.uuid4().hex}"],
        P_HEADER,
        ["1. Section"],
        ["B86001", "1", "Req 1", "Action 1", "CQC", "Lead 1", "31/03/2016", "On track"],
    ]
    dry = await post(api, as_csv(rows), dry_run=True)
    assert dry.status_code == 200, dry.text
    assert actions_of(dry.json())[0]["organisations"] == ["B86001"]
    real = await post(api, as_csv(rows))
    assert real.status_code == 201, real.text


async def test_the_import_and_export_docs_name_their_parameters(api: Any) -> None:
    """Review of issue 13: the import documents columns, as_of, plan_year, layout and title;
    the export says both layouts."""
    paths = (await api.get("/openapi.json")).json()["paths"]
    text = paths[IMPORT]["post"]["description"]
    for name in ("`columns`", "`as_of`", "`plan_year`", "`layout`", "`title`"):
        assert name in text
    export = next(p for p in paths if p.endswith("/export"))
    assert "either layout" in paths[export]["get"]["description"]


async def test_a_bracketed_alignment_cell_is_read_as_leads(api: Any) -> None:
    """Review of issue 13: "(Phil Corrigan > Tim Ryley)" alone in the Alignment column is the
    lead (handed over), not the work stream."""
    rows = [
        [f"Review {uuid.uuid4().hex}"],
        S_HEADER,
        ["A", "Recommendation A", "1. Do it", "(Phil Corrigan > Tim Ryley)", "", "G"],
    ]
    response = await post(api, as_csv(rows), dry_run=True, layout="system_review")
    assert response.status_code == 200, response.text
    action = actions_of(response.json())[0]
    assert action["leads"] == ["Tim Ryley"] and action["lead_history"] == ["Phil Corrigan"]
    assert not action["workstream"]


async def test_abbreviations_shaped_like_codes_stay_names(api: Any) -> None:
    """Review of issue 13: "TBC", "NCC", "RCN" fit an ODS code's format (care trust T + 2,
    independent provider N + 2, trust R + 2) but have no digit: they may be abbreviations, so
    they stay names, warned about. A code with a digit is a code; one of letters only is a code
    when the alias table knows it (RWE, UHL's code) or it is written "ODS RGD" or stands in an
    "ODS codes:" line."""
    rows = [
        [f"Codes plan {uuid.uuid4().hex}"],
        ["ODS codes: RGD, RR8"],
        P_HEADER,
        ["1. Section"],
        ["TBC, NCC / RCN", "1", "Req 1", "Action 1", "CQC", "Lead 1", "31/03/2026", "On track"],
        ["RR8, RWE, ODS RGD, ODS: tad", "2", "Req 2", "Action 2", "CQC", "Lead 2", "-", "-"],
    ]
    response = await post(api, as_csv(rows), dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    first, second = actions_of(report)
    assert first["organisations"] == []
    assert first["organisation_names"] == ["TBC", "NCC", "RCN"]
    assert second["organisations"] == ["RR8", "RWE", "RGD", "TAD"]
    assert second["organisation_names"] == ["RR8", "RWE", "RGD", "TAD"]
    assert report["organisations"] == ["RGD", "RR8"]  # the line says they are codes
    maybe = [w for w in report["warnings"] if w["code"] == "organisation_maybe_code"]
    assert [(w["row"], w["detail"].split("'")[1]) for w in maybe] == [
        (5, "TBC"),
        (5, "NCC"),
        (5, "RCN"),
    ]
    assert "write 'ODS NCC' or add it to the alias table" in maybe[1]["detail"]
    alias = [w["detail"] for w in report["warnings"] if w["code"] == "organisation_alias"]
    assert alias == [
        "'RWE' is University Hospitals of Leicester NHS Trust (RWE), by the alias table"
    ]
    real = await post(api, as_csv(rows))
    assert real.status_code == 201, real.text
    stored = await plan_actions(api, real.json()["plan_id"])
    assert [a["organisations"] for a in stored] == [[], ["RR8", "RWE", "RGD", "TAD"]]


async def test_a_code_of_letters_only_comes_back_from_an_export_as_a_code(api: Any) -> None:
    """A plan made through the API with the code RGD and no name: the export writes it
    "ODS RGD" (bare, it would come back a name), and it comes back the code."""
    created = await api.post(
        "/v1/action-plans",
        json={
            "title": f"RGD plan {uuid.uuid4().hex}",
            "organisations": ["RGD", "RR8"],
            "sections": ["First"],
        },
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    body = {
        "plan_id": plan["id"],
        "section_id": plan["sections"][0]["id"],
        "reference": "1",
        "action": "Audit DNACPR forms",
        "organisations": ["RGD"],
    }
    made = await api.post("/v1/actions", json=body)
    assert made.status_code == 201, made.text
    exported = await api.get(f"/v1/action-plans/{plan['id']}/export")
    lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert ["Organisations: ODS RGD, RR8"] in lines
    assert any(line[:2] == ["ODS RGD", "1"] for line in lines)
    again = await post(api, exported.content)
    assert again.status_code == 201, again.text
    assert again.json()["organisations"] == ["RGD", "RR8"]
    (action,) = await plan_actions(api, again.json()["plan_id"])
    assert (action["organisations"], action["organisation_names"]) == (["RGD"], ["RGD"])
    assert "organisation_maybe_code" not in codes(again.json())


@pytest.mark.parametrize("layout", ["provider", "system_review"])
async def test_a_bracketed_name_alone_continues_the_lead_of_the_action_above(
    api: Any, layout: str
) -> None:
    """Review of issue 13: a row holding only "(Shona McFarlane)" under the lead (provider) or
    alignment (system review) column is the action above's lead, continued: not a new action,
    not lost."""
    if layout == "provider":
        rows = [
            [f"Lead plan {uuid.uuid4().hex}"],
            P_HEADER,
            ["1. Section"],
            ["RT5", "1", "Req 1", "Action 1", "CQC", "Lead 1", "31/03/2026", "On track"],
            ["", "", "", "", "", "(Shona McFarlane)", "", "", ""],
            ["RT5", "2", "Req 2", "Action 2", "CQC", "Lead 2", "31/03/2026", "On track"],
        ]
    else:
        rows = [
            [f"Lead review {uuid.uuid4().hex}"],
            S_HEADER,
            ["A.", "Recommendation A", "1. Do it", "SRAB / ORG (Tim Ryley)", "", "G"],
            ["", "", "", "(Shona McFarlane)", "", ""],
            ["", "", "2. Do the next thing", "People's Voices Group (Hannah Davies)", "", "A"],
        ]
    response = await post(api, as_csv(rows), dry_run=True, layout=layout)
    assert response.status_code == 200, response.text
    report = response.json()
    first, second = actions_of(report)
    assert report["action_count"] == 2
    assert first["reference"] == "1" and second["reference"] == "2"
    expected = (
        ["Lead 1", "Shona McFarlane"] if layout == "provider" else ["Tim Ryley", "Shona McFarlane"]
    )
    assert first["leads"] == expected
    assert "Shona McFarlane" not in second["leads"]
    if layout == "system_review":
        assert first["workstream"] == "SRAB / ORG"  # the bracketed name is no work stream
    row, above = (5, 4) if layout == "provider" else (4, 3)
    continued = [(w["row"], w["detail"]) for w in report["warnings"] if w["code"] == "continuation"]
    assert len(continued) == 1 and continued[0][0] == row
    assert continued[0][1].endswith(f"added to the action above (row {above})")


async def test_a_completed_column_is_read_as_written(api: Any) -> None:
    """The "Completed" column (exports write it; a real plan may have "Date completed"): a day
    is the completion day, "on or before" keeps its precision, a month is on or before its
    last day; a future date or one on an open action is not taken, each warned about."""
    header = [*P_HEADER, "Date completed"]
    base = ["RT5", "", "Req", "Action", "CQC", "Lead", "31/03/2016"]
    rows = [
        [f"Completed plan {uuid.uuid4().hex}"],
        ["As at 30/09/2016"],
        header,
        ["1. Section"],
        [*base[:1], "1", *base[2:], "Complete", "", "15/01/2016"],
        [*base[:1], "2", *base[2:], "Complete", "", "on or before 31/03/2016"],
        [*base[:1], "3", *base[2:], "Complete", "", "Feb-2016"],
        [*base[:1], "4", *base[2:], "Complete", "", "01/01/2099"],
        [*base[:1], "5", *base[2:], "On track", "", "15/01/2016"],
        [*base[:1], "6", *base[2:], "Complete", "", ""],
    ]
    response = await post(api, as_csv(rows), dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    columns = {c["header"]: c["read_as"] for c in report["columns"]}
    assert columns["Date completed"] == "completed"
    got = [(a["completed_at"], a["completed_precision"]) for a in actions_of(report)]
    assert got == [
        ("2016-01-15", None),
        ("2016-03-31", "on_or_before"),
        ("2016-02-29", "on_or_before"),
        ("2016-09-30", "on_or_before"),  # the future date not taken: the as-at date's rule
        (None, None),
        ("2016-09-30", "on_or_before"),
    ]
    found = [(w["row"], w["code"]) for w in report["warnings"] if "complet" in w["code"]]
    assert found == [
        (7, "completed_month"),
        (8, "completed_on_or_before"),  # on the status column, left of the completion
        (8, "completed_future"),
        (9, "completed_not_complete"),
        (10, "completed_on_or_before"),
    ]


async def test_a_status_or_rag_that_says_neither_is_not_recorded_and_kept(api: Any) -> None:
    """Review of issue 13: "Complete - see comments" or "A/G" in the status column is no
    status the service knows: it is not recorded (never made up as "1 Not yet commenced", and
    "A/G" never turned into a status), and its words are kept in the comments, warned about;
    a RAG column's "Amber/Green" likewise. Exported and imported again, the plan is the same."""

    def base(reference: str) -> list[str]:
        return ["RT5", reference, "Req", f"Action {reference}", "CQC", "Lead", "31/03/2016"]

    rows = [
        [f"Odd status plan {uuid.uuid4().hex}"],
        ["As at 30/09/2015"],
        P_HEADER,
        ["1. Section"],
        [*base("1"), "Complete - see comments", "c"],
        [*base("2"), "A/G", ""],
        [*base("3"), "On track", "c3"],
    ]
    response = await post(api, as_csv(rows))
    assert response.status_code == 201, response.text
    report = response.json()
    first, second, third = actions_of(report)
    assert (first["status"], first["comments"]) == (
        None,
        f"c\n{P_HEADER[7]}: Complete - see comments",
    )
    assert (second["status"], second["reported_rag"], second["comments"]) == (
        None,
        None,
        f"{P_HEADER[7]}: A/G",
    )
    assert (third["status"], third["comments"]) == (4, "c3")
    unknown = [(w["row"], w["code"]) for w in report["warnings"] if w["code"] == "status_unknown"]
    assert unknown == [(5, "status_unknown"), (6, "status_unknown")]
    plan_id = report["plan_id"]
    before = await plan_actions(api, plan_id)
    exported = await api.get(f"/v1/action-plans/{plan_id}/export")
    again = await post(api, exported.content)
    assert again.status_code == 201, again.text
    assert comparable(await plan_actions(api, again.json()["plan_id"])) == comparable(before)
    review = [
        [f"Odd RAG review {uuid.uuid4().hex}"],
        S_HEADER,
        ["A.", "Rec A", "1. By June do it", "SRAB (Tim Ryley)", "", "Amber/Green"],
    ]
    response = await post(api, as_csv(review), dry_run=True)
    assert response.status_code == 200, response.text
    (action,) = actions_of(response.json())
    assert (action["reported_rag"], action["comments"]) == (None, "RAG: Amber/Green")
    assert "rag_unknown" in codes(response.json())


async def test_a_link_to_a_dotted_reference_names_that_action(api: Any) -> None:
    """Review of issue 13: provider plans number actions "1.1", "1.2": "see action 1.2" links
    to 1.2 (it linked to an action "1" and dropped the ".2"); "action 5." at the end of a
    sentence is still 5."""
    rows = [
        [f"Dotted plan {uuid.uuid4().hex}"],
        P_HEADER,
        ["1. Section"],
        ["RT5", "1", "Req", "Action one", "CQC", "Lead", "31/03/2026", "On track", ""],
        ["RT5", "1.2", "Req", "Action one point two", "CQC", "Lead", "31/03/2026", "On track"],
        ["RT5", "5", "Req", "Linked to actions 1.2 and 1. See action 5.", "CQC", "Lead", "-", "-"],
    ]
    response = await post(api, as_csv(rows), dry_run=True)
    assert response.status_code == 200, response.text
    last = actions_of(response.json())[-1]
    assert [(link["reference"], link["row"]) for link in last["links"]] == [("1.2", 5), ("1", 4)]
    assert "link_unresolved" in codes(response.json())  # "action 5" is itself: no link


# --- issue 13 acceptance review: numbered cells, a recommendation's comment, RAG-only rows --

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_rows(name: str, run: str) -> list[list[str]]:
    """A hand-made file's rows (tests/fixtures), its title made unique to this test."""
    text = (FIXTURES / name).read_text(encoding="utf-8").replace("{RUN}", run)
    return list(csv.reader(io.StringIO(text, newline="")))


def merged_xlsx(rows: list[list[str]], merged: tuple[str, ...]) -> bytes:
    """As Excel saves it: a merged range keeps its value in its first cell only."""
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append([value or None for value in row])
    for cells in merged:
        sheet.merge_cells(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def numbered_file(shape: str) -> tuple[bytes, str]:
    rows = fixture_rows("system_review_numbered.csv", uuid.uuid4().hex)
    if shape == "csv":
        return as_csv(rows), CSV
    # "#" and the recommendation merged down each recommendation's rows, as a real sheet has.
    return merged_xlsx(rows, ("A5:A6", "B5:B6", "A7:A10", "B7:B10")), XLSX


def check_numbered(report: dict[str, Any]) -> None:
    """tests/fixtures/system_review_numbered.csv: 8 actions under recommendations A-D."""
    actions = actions_of(report)
    assert (report["layout"], report["section_count"], report["action_count"]) == (
        "system_review",
        4,
        8,
    )
    assert [s["title"].split(" ", 1)[0] for s in report["sections"]] == ["A.", "B.", "C.", "D."]
    assert [len(s["actions"]) for s in report["sections"]] == [3, 2, 1, 2]
    # Issue 1: a cell of three numbered actions (row 6) and of two, the second after a bullet
    # (row 12), are one action per number, each with its own text and due date.
    assert [a["reference"] for a in actions] == ["1", "2", "3", "4", "5", "C", "6", "7"]
    assert [a["row"] for a in actions] == [6, 6, 6, 7, 9, 11, 12, 12]
    assert [a["recommendation"] for a in actions] == ["A", "A", "A", "B", "B", "C", "D", "D"]
    assert [a["action"] for a in actions[:3]] == [
        # "2. Then" after "by": the next number, but not starting a line
        "By the end of March to have completed the engagement review, cutting its steps by 2. "
        "Then report to the board",
        # "2." starting a line, but not the next number: part of the text
        "By June agree the shared principles. Reduce the forms by\n2. Then publish them",
        # "4. 2019" starting a line: a number before a year, not an action
        "By July ensure the principles are used in\n4. 2019 commissioning, see action 5.",
    ]
    assert actions[7]["action"] == "By December review the pooled budget"
    assert [a["due_date"] for a in actions] == [
        "2019-03-01",
        "2019-06-01",
        "2019-07-01",
        "2019-09-01",
        "2019-10-01",
        None,
        None,
        "2019-12-01",
    ]
    assert [a["due_text"] for a in actions][:3] == ["By the end of March", "By June", "By July"]
    assert actions[6]["start_date"] == "2019-01-01"
    # What the split cells' rows share is copied to each of their actions.
    progress = "Engagement review done; principles drafted"
    assert [a["progress"] for a in actions[:3]] == [progress] * 3
    assert {a["progress_on"] for a in actions[:3]} == {"2019-09-01"}
    assert [a["reported_rag"] for a in actions] == [
        "amber",
        "amber",
        "amber",
        "green",  # issue 3: the RAG-only row below action 4, which had none
        "red",  # its own; the RAG-only row below it conflicts: kept in its comments
        "green",
        "amber",
        "amber",
    ]
    assert {a["reported_rag_on"] for a in actions} == {"2019-09-01"}
    assert [a["leads"] for a in actions] == [["Tim Ryley"]] * 5 + [["Jo Bloggs"]] + [
        ["Sam Lee"]
    ] * 2
    assert [a["workstream"] for a in actions[:3]] == ["SRAB / ORG"] * 3
    assert actions[3]["lead_history"] == actions[4]["lead_history"] == ["Phil Corrigan"]
    # Issue 2: the recommendation's comment with no number is kept in the comments of its
    # first action (with the comment row's own alignment, which action 1 does not share);
    # recommendation C, whose only text has no number, is one action referenced "C".
    assert actions[0]["comments"] == (
        "Comment on recommendation A: Leeds agrees with this recommendation.\n"
        "Alignment with a current work stream, group or Board, including Lead: "
        "People's Voices Group (Hannah Davies)"
    )
    assert actions[4]["comments"] == "RAG: Amber (Sep 2019)"
    # Text before the first number: at a recommendation's start (row 12) its comment; after
    # its actions (row 9) the rest of the action above.
    assert actions[6]["comments"] == "Comment on recommendation D: Leeds supports pooling."
    assert actions[3]["action"] == (
        "By September set up the joint commissioning board\nwith the partners' agreement"
    )
    assert sum(1 for a in actions if a["comments"]) == 3
    assert actions[5]["action"] == "Leeds will consider this with partners."
    assert actions[5]["progress"] == "Discussed in June"
    assert [(link["reference"], link["row"]) for link in actions[2]["links"]] == [("5", 9)]
    assert sum(len(a["links"]) for a in actions) == 1
    found = codes(report)
    assert found["actions_split"] == 2
    assert found["recommendation_comment"] == 2  # rows 5 and 12
    assert found["reference_from_recommendation"] == 1
    assert found["continuation"] == 3  # rows 8 and 10 (a RAG alone), 9 (text before "5.")
    assert found["continuation_conflict"] == 2  # row 5's alignment, row 10's RAG
    assert found["due_from_text"] == 6 and found["start_from_text"] == 1
    assert "duplicate_reference" not in found and "reference_generated" not in found
    split = [(w["row"], w["detail"]) for w in report["warnings"] if w["code"] == "actions_split"]
    assert [row for row, _ in split] == [6, 12]
    assert split[0][1].startswith("3 numbered actions in one cell (1, 2, 3)")
    conflict = next(
        w for w in report["warnings"] if w["code"] == "continuation_conflict" and w["row"] == 10
    )
    assert conflict["column"] == "RAG"
    assert "(row 9) has its own, 'Red'" in conflict["detail"]


@pytest.mark.parametrize("shape", ["csv", "xlsx"])
async def test_numbered_cells_comments_and_rag_rows_of_a_system_review(
    api: Any, shape: str
) -> None:
    """Issue 13 acceptance review: a cell of several numbered actions is several actions; a
    recommendation's text with no number is its comment (or, alone, its one action); a row
    with only a RAG continues the action above. The dry run says so row by row."""
    data, media = numbered_file(shape)
    response = await post(api, data, media, dry_run=True)
    assert response.status_code == 200, response.text
    check_numbered(response.json())


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_numbered_cells_import_and_come_back_from_an_export(api: Any, fmt: str) -> None:
    data, media = numbered_file(fmt)
    made = await post(api, data, media)
    assert made.status_code == 201, made.text
    check_numbered(made.json())
    plan_id = made.json()["plan_id"]
    before = await plan_actions(api, plan_id)
    assert [a["reference"] for a in before] == ["1", "2", "3", "4", "5", "C", "6", "7"]
    assert [a["position"] for a in before] == list(range(1, 9))
    assert all(a["status_recorded"] is False for a in before)
    history = await progress_of(api, before)
    progress = ("2019-09-01", "Engagement review done; principles drafted")
    assert history == [[progress]] * 3 + [
        [("2019-09-01", "Board set up")],
        [],
        [("2019-09-01", "Discussed in June")],
        [],
        [],
    ]
    exported = await api.get(
        f"/v1/action-plans/{plan_id}/export", params={"format": fmt, "layout": "system_review"}
    )
    assert exported.status_code == 200, exported.text
    again = await post(api, exported.content, XLSX if fmt == "xlsx" else CSV)
    assert again.status_code == 201, again.text
    assert again.json()["action_count"] == 8 and again.json()["section_count"] == 4
    read_back = codes(again.json())
    # Each action is its own row now, with its number: nothing split, held or continued.
    for code in ("actions_split", "recommendation_comment", "continuation", "duplicate_reference"):
        assert code not in read_back, code
    assert read_back["reference_from_recommendation"] == 1  # C: still its one action
    after = await plan_actions(api, again.json()["plan_id"])
    assert comparable(after) == comparable(before)
    assert await progress_of(api, after) == history


def status_rows_file(shape: str) -> tuple[bytes, str]:
    rows = fixture_rows("provider_status_rows.csv", uuid.uuid4().hex)
    if shape == "csv":
        return as_csv(rows), CSV
    return merged_xlsx(rows, ("D7:D9", "B7:B9")), XLSX


def check_status_rows(report: dict[str, Any]) -> None:
    """tests/fixtures/provider_status_rows.csv: rows of only a status under an action."""
    actions = actions_of(report)
    assert (report["section_count"], report["action_count"]) == (1, 4)
    assert [a["reference"] for a in actions] == ["1", "2", "3", "3 (2)"]
    # Row 6, "Complete" alone, is action 1's status (it had none): complete, on or before the
    # as-at date; row 8, "At risk" alone, conflicts with action 2's "On track": kept in its
    # comments; row 9, "G" alone in the status column, is action 2's reported RAG.
    assert [a["status"] for a in actions] == [5, 4, None, None]
    assert (actions[0]["completed_at"], actions[0]["completed_precision"]) == (
        "2015-09-30",
        "on_or_before",
    )
    assert actions[0]["comments"] == "Audit started"
    assert actions[1]["comments"] == "Delivery Status: 3. At risk"
    assert [a["reported_rag"] for a in actions] == [None, "green", "green", "amber"]
    assert actions[1]["reported_rag_on"] == "2015-09-30"
    # A row with an organisation and a lead of its own as well as a status is another
    # organisation's delivery of the merged action above: an action, as before.
    assert actions[3]["organisation_names"] == ["LPT"] and actions[3]["leads"] == ["Lead 4"]
    found = codes(report)
    assert found["continuation"] == 3 and found["continuation_conflict"] == 1
    continued = [w["row"] for w in report["warnings"] if w["code"] == "continuation"]
    assert continued == [6, 8, 9]
    assert found["duplicate_reference"] == 1  # only row 11


@pytest.mark.parametrize("shape", ["csv", "xlsx"])
async def test_a_row_of_only_a_status_continues_the_action_above(api: Any, shape: str) -> None:
    data, media = status_rows_file(shape)
    dry = await post(api, data, media, dry_run=True)
    assert dry.status_code == 200, dry.text
    check_status_rows(dry.json())
    made = await post(api, data, media)
    assert made.status_code == 201, made.text
    check_status_rows(made.json())
    stored = await plan_actions(api, made.json()["plan_id"])
    assert [(a["reference"], a["status_recorded"], a["status"]) for a in stored] == [
        ("1", True, 5),
        ("2", True, 4),
        ("3", False, 1),
        ("3 (2)", False, 1),
    ]
    assert stored[1]["comments"] == "Delivery Status: 3. At risk"
