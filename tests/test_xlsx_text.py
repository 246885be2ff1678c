"""Text that a spreadsheet cell cannot hold (C0 control characters pasted into a field) never
breaks an XLSX export or report: the characters are dropped, the rest of the text is kept, and
text that starts with '=' stays text. Found by fuzzing the OpenAPI document (a 500 before).

Since issue 11 (defect 12) the API refuses such characters in what it is sent
(tests/security/test_input_hygiene.py), so the pasted text here is what a row stored before
then may hold: it is written into the rows directly."""

from __future__ import annotations

import io
import uuid
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import update

from app.db import Database
from app.kit.xlsx import spreadsheet_text
from app.models import Action, ActionPlan, ActionPlanSection
from tests.conftest import Api

PASTED = "Escalate\x01 early\x0b warning\x1f scores"
CLEAN = "Escalate early warning scores"


def test_spreadsheet_text_drops_only_what_a_cell_cannot_hold() -> None:
    assert spreadsheet_text(PASTED) == CLEAN
    kept = "Line one\nline two\ttabbed\r\n£ é ✓"
    assert spreadsheet_text(kept) == kept


def cells(content: bytes) -> list[Any]:
    workbook = load_workbook(io.BytesIO(content))
    return [
        cell.value for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row
    ]


async def test_a_plan_with_pasted_control_characters_exports(api: Api, database: Database) -> None:
    plan = await api.post(
        "/v1/action-plans",
        json={
            "title": f"Plan {uuid.uuid4().hex[:8]}",
            "organisations": ["RR8"],
            "sections": ["Deteriorating patient"],
        },
    )
    assert plan.status_code == 201, plan.text
    action = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan.json()["id"],
            "section_id": plan.json()["sections"][0]["id"],
            "reference": "1",
            "action": CLEAN,
            "comments": '=HYPERLINK("http://example.invalid")',
            "leads": ["Dr Lead"],
            "due_date": "2020-01-31",  # overdue: listed, with its lead, in the actions report
        },
    )
    assert action.status_code == 201, action.text
    plan_id = uuid.UUID(plan.json()["id"])
    async with database.transaction() as session:
        await session.execute(
            update(ActionPlan)
            .where(ActionPlan.id == plan_id)
            .values(title=ActionPlan.title + "\x02")
        )
        await session.execute(
            update(ActionPlanSection)
            .where(ActionPlanSection.plan_id == plan_id)
            .values(title="Deteriorating\x07 patient")
        )
        await session.execute(
            update(Action)
            .where(Action.id == uuid.UUID(action.json()["id"]))
            .values(
                action=PASTED,
                comments='=HYPERLINK("http://example.invalid")\x03',
                leads=["Dr\x0c Lead"],
            )
        )
    exported = await api.get(
        f"/v1/action-plans/{plan.json()['id']}/export", params={"format": "xlsx"}
    )
    assert exported.status_code == 200, exported.text
    values = cells(exported.content)
    assert CLEAN in values
    assert "Deteriorating patient" in values
    assert "Dr Lead" in values
    assert '=HYPERLINK("http://example.invalid")' in values  # as text, not a formula
    workbook = load_workbook(io.BytesIO(exported.content))
    formula_cells = [
        cell for row in workbook.active.iter_rows() for cell in row if cell.data_type == "f"
    ]
    assert formula_cells == []

    report = await api.get(
        "/v1/reports/actions", params={"plan_id": plan.json()["id"], "format": "xlsx"}
    )
    assert report.status_code == 200, report.text
    assert "Dr Lead" in str(cells(report.content))
    assert not any(
        isinstance(value, str) and any(ord(c) < 32 and c not in "\t\n\r" for c in value)
        for value in cells(report.content)
    )
