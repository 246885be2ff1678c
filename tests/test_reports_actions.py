"""The actions report (GET /v1/reports/actions): status and RAG counts for all the actions, by
plan and by organisation (an action listing no organisation belongs to its plan's), the overdue
actions with their leads, the organisation and plan filters, an empty answer, exports, a
pseudonymised client (leads are staff: the same answer), and the 400s and 404."""

from __future__ import annotations

import csv
import io
import random
import string
import uuid
from datetime import date, timedelta
from typing import Any

from openpyxl import load_workbook

from app.auth.scopes import Scope
from app.kit.time import LONDON, now
from tests.conftest import Api
from tests.kit.cohorts import fetch_report
from tests.kit.cohorts import table_rows as rows

PROBLEM_JSON = "application/problem+json"


def uk_today() -> date:
    return now().astimezone(LONDON).date()


def ods_code() -> str:
    """A code no other test uses: an NHS trust site's format, R + 4 letters or digits (codes
    are checked by their real ODS formats since issue 13)."""
    return "R" + "".join(random.choices(string.ascii_uppercase + string.digits, k=4))


async def actions_report(api: Api, **params: Any) -> dict[str, Any]:
    return await fetch_report(api, "actions", **params)


async def new_plan(api: Api, title: str, organisations: list[str]) -> dict[str, Any]:
    response = await api.post(
        "/v1/action-plans",
        json={"title": title, "organisations": organisations, "sections": ["Escalation"]},
    )
    assert response.status_code == 201, response.text
    plan: dict[str, Any] = response.json()
    return plan


async def new_action(api: Api, plan: dict[str, Any], reference: str, **fields: Any) -> None:
    body = {
        "plan_id": plan["id"],
        "section_id": plan["sections"][0]["id"],
        "reference": reference,
        "action": f"Action {reference}",
        **fields,
    }
    response = await api.post("/v1/actions", json=body)
    assert response.status_code == 201, response.text


class Built:
    a: str
    b: str
    p1: dict[str, Any]
    p2: dict[str, Any]


async def build(api: Api) -> Built:
    """Two plans:

    | action | plan (its organisations) | own organisations | status | due | RAG |
    |---|---|---|---|---|---|
    | 1.1 | P1 (A) | - | 4 on track | in a year | green |
    | 1.2 | P1 | - | 4 on track | 10 Jan 2020 | red, overdue |
    | 1.3 | P1 | - | 5 complete | 10 Jan 2020 | blue |
    | 1.4 | P1 | - | 2 off track | none | red |
    | 1.5 | P1 | - | 1 not commenced | "TBC" | grey |
    | 1.6 | P1 | B | 3 at risk | March 2020 (month) | red, overdue |
    | 2.1 | P2 (A, B) | - | 3 at risk | in a year | amber |
    | 2.2 | P2 | B | 5 complete | in a year | blue |
    """
    built = Built()
    built.a, built.b = ods_code(), ods_code()
    suffix = uuid.uuid4().hex[:8]
    built.p1 = await new_plan(api, f"Deteriorating patient {suffix}", [built.a])
    built.p2 = await new_plan(api, f"End of life care {suffix}", [built.a, built.b])
    later = (uk_today() + timedelta(days=365)).isoformat()
    p1, p2 = built.p1, built.p2
    await new_action(api, p1, "1.1", status=4, due_date=later)
    await new_action(api, p1, "1.2", status=4, due_date="2020-01-10", leads=["JS", "Dr Jones"])
    await new_action(api, p1, "1.3", status=5, due_date="2020-01-10")
    await new_action(api, p1, "1.4", status=2)
    await new_action(api, p1, "1.5", status=1, due_note="TBC")
    await new_action(
        api,
        p1,
        "1.6",
        status=3,
        due_date="2020-03-01",
        due_precision="month",
        organisations=[built.b],
        leads=["?"],
    )
    await new_action(api, p2, "2.1", status=3, due_date=later)
    await new_action(api, p2, "2.2", status=5, due_date=later, organisations=[built.b])
    return built


def counts(
    statuses: tuple[int, int, int, int, int],
    rag: tuple[int, int, int, int, int],
    overdue: int,
    complete_percent: float | None,
) -> dict[str, Any]:
    """Status 1-5 counts, then red, amber, green, blue, grey."""
    keys = ("not_yet_commenced", "off_track", "at_risk", "on_track", "complete")
    colours = ("red", "amber", "green", "blue", "grey")
    return {
        "actions": sum(statuses),
        **dict(zip(keys, statuses, strict=True)),
        **{f"rag_{colour}": n for colour, n in zip(colours, rag, strict=True)},
        "overdue": overdue,
        "complete_percent": complete_percent,
    }


async def test_counts_by_plan_and_organisation_and_the_overdue_list(make_api) -> None:
    admin = await make_api(Scope.admin)
    built = await build(admin)
    reader = await make_api(Scope.reports_read)
    today = uk_today()

    # Organisation A: P1's actions but 1.6 (its own organisation is B), and P2's 2.1 (no own
    # organisation: its plan's, A and B).
    report = await actions_report(reader, organisation=built.a.lower())
    assert report["filters"]["organisation"] == built.a
    assert report["period"]["start"] == report["period"]["end"] == today.isoformat()
    assert [t["key"] for t in report["tables"]] == [
        "summary",
        "by_plan",
        "by_organisation",
        "overdue",
    ]
    assert rows(report, "summary") == [counts((1, 1, 1, 2, 1), (2, 1, 1, 1, 1), 1, 16.7)]
    assert rows(report, "by_plan") == [
        {
            "plan": built.p1["title"],
            "plan_id": built.p1["id"],
            **counts((1, 1, 0, 2, 1), (2, 0, 1, 1, 1), 1, 20.0),
        },
        {
            "plan": built.p2["title"],
            "plan_id": built.p2["id"],
            **counts((0, 0, 1, 0, 0), (0, 1, 0, 0, 0), 0, 0.0),
        },
    ]
    assert rows(report, "by_organisation") == [
        {"organisation": built.a, **counts((1, 1, 1, 2, 1), (2, 1, 1, 1, 1), 1, 16.7)}
    ]
    assert rows(report, "overdue") == [
        {
            "plan": built.p1["title"],
            "section": "Escalation",
            "reference": "1.2",
            "action": "Action 1.2",
            "leads": "JS, Dr Jones",
            "organisations": built.a,
            "status": "On track",
            "due": "2020-01-10",
            "days_overdue": (today - date(2020, 1, 10)).days,
            "rag": "now Red: overdue",  # no RAG reported in a file (issue 13)
        }
    ]

    # One plan, every organisation: 1.6 at risk but past its month, so red and overdue.
    plan = await actions_report(reader, plan_id=built.p1["id"])
    assert rows(plan, "summary") == [counts((1, 1, 1, 2, 1), (3, 0, 1, 1, 1), 2, 16.7)]
    assert rows(plan, "by_organisation") == [
        {"organisation": code, **values}
        for code, values in sorted(
            [
                (built.a, counts((1, 1, 0, 2, 1), (2, 0, 1, 1, 1), 1, 20.0)),
                (built.b, counts((0, 0, 1, 0, 0), (1, 0, 0, 0, 0), 1, 0.0)),
            ]
        )
    ]
    overdue = rows(plan, "overdue")
    assert [(r["reference"], r["due"], r["leads"]) for r in overdue] == [
        ("1.2", "2020-01-10", "JS, Dr Jones"),
        ("1.6", "2020-03-31", "?"),  # due in March 2020: on time to its last day
    ]
    assert overdue[1]["days_overdue"] == (today - date(2020, 3, 31)).days
    assert overdue[1]["organisations"] == built.b

    # Organisation B: 1.6, 2.1 (its plan's) and 2.2.
    b = await actions_report(reader, organisation=built.b)
    assert rows(b, "summary") == [counts((0, 0, 2, 0, 1), (1, 1, 0, 1, 0), 1, 33.3)]
    assert [r["plan"] for r in rows(b, "by_plan")] == [built.p1["title"], built.p2["title"]]


async def test_nothing_to_count_is_zeros(make_api) -> None:
    reader = await make_api(Scope.reports_read)
    report = await actions_report(reader, organisation=ods_code())
    assert rows(report, "summary") == [counts((0, 0, 0, 0, 0), (0, 0, 0, 0, 0), 0, None)]
    assert rows(report, "by_plan") == []
    assert rows(report, "by_organisation") == []
    assert rows(report, "overdue") == []


async def test_exports_and_a_pseudonymised_client(make_api) -> None:
    admin = await make_api(Scope.admin)
    built = await build(admin)
    reader = await make_api(Scope.reports_read)
    params = {"plan_id": built.p1["id"]}

    response = await reader.get(
        "/v1/reports/actions", params={**params, "format": "csv", "table": "overdue"}
    )
    assert response.status_code == 200, response.text
    parsed = list(csv.reader(io.StringIO(response.text)))
    assert parsed[0][:5] == ["Plan", "Section", "Reference", "Action", "Leads"]
    assert [line[2] for line in parsed[1:]] == ["1.2", "1.6"]
    assert parsed[2][4] == "?"

    page = await reader.get("/v1/reports/actions", params={**params, "format": "html"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Overdue actions" in page.text

    xlsx = await reader.get("/v1/reports/actions", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert len(book.worksheets) == 4
    summary = [cell.value for cell in next(book.worksheets[0].iter_rows(min_row=3, max_row=3))]
    assert summary[:6] == [6, 1, 1, 1, 2, 1]

    commissioner = await make_api(Scope.reports_read, pseudonymised=True)
    mine = await actions_report(reader, **params)
    theirs = await actions_report(commissioner, **params)
    mine.pop("generated_at"), theirs.pop("generated_at")
    assert theirs == mine


async def test_bad_parameters(make_api) -> None:
    reader = await make_api(Scope.reports_read)
    for params in (
        {"site": "St Elsewhere"},
        {"specialty": "Cardiology"},
        {"route": "sjr"},
        {"age_band": "over 80"},
        {"period": "2025-26"},
        {"start": "2025-04-01", "end": "2025-06-30"},
        {"plan_id": "not-a-uuid"},
        {"organisation": "R!8"},
    ):
        response = await reader.get("/v1/reports/actions", params=params)
        assert response.status_code in (400, 422), (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    missing = await reader.get("/v1/reports/actions", params={"plan_id": str(uuid.uuid4())})
    assert missing.status_code == 404
    other = await make_api(Scope.actions_read)
    assert (await other.get("/v1/reports/actions")).status_code == 403
