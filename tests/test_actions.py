"""Action plans and actions through the API (DESIGN.md section 6): plans with sections and ODS
codes, actions with every field, references unique within a section, the dated history of
status changes and progress notes, If-Match on every update, completion and assurance, links
to findings and the theme filter, the list filters (RAG and overdue as of the UK local date),
and the events."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app.auth.scopes import Scope
from app.kit.time import LONDON, now
from app.models import Action, ActionPlan, Death, Finding, OutboxEvent, Theme
from tests.conftest import Api
from tests.factories import idem, screening_body, walk_pages

PROBLEM_JSON = "application/problem+json"


def uk_today() -> date:
    return now().astimezone(LONDON).date()


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


async def new_plan(api: Api, sections: int = 2, **fields: Any) -> dict[str, Any]:
    body = {
        "title": unique("Learning from deaths plan"),
        "organisations": ["RR8"],
        "sections": [f"Improvement area {n}" for n in range(1, sections + 1)],
        **fields,
    }
    response = await api.post("/v1/action-plans", json=body)
    assert response.status_code == 201, response.text
    plan: dict[str, Any] = response.json()
    return plan


async def new_action(
    api: Api, plan: dict[str, Any], section: int = 0, **fields: Any
) -> dict[str, Any]:
    body = {
        "plan_id": plan["id"],
        "section_id": plan["sections"][section]["id"],
        "reference": uuid.uuid4().hex[:6],
        "action": "Audit DNACPR documentation on every ward",
        **fields,
    }
    response = await api.post("/v1/actions", json=body)
    assert response.status_code == 201, response.text
    action: dict[str, Any] = response.json()
    return action


async def patch(api: Api, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """PATCH with the resource's current ETag."""
    current = await api.get(path)
    assert current.status_code == 200, current.text
    return await api.patch(
        path, json=body, headers={"If-Match": current.headers["ETag"], **headers}
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def pointers(response: httpx.Response) -> list[str]:
    return [error["pointer"] for error in response.json().get("errors", [])]


async def events_for(database, resource_id: str) -> list[tuple[str, list[str]]]:
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(OutboxEvent.type, OutboxEvent.changed)
                .where(OutboxEvent.resource_id == uuid.UUID(resource_id))
                .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
            )
        ).all()
    return [(row.type, list(row.changed)) for row in rows]


async def count_actions(database, plan_id: str) -> int:
    async with database.transaction() as session:
        return int(
            await session.scalar(select(func.count()).where(Action.plan_id == uuid.UUID(plan_id)))
            or 0
        )


async def new_finding(api: Api, database, theme_code: str) -> str:
    """A finding under a theme, against a new death (inserted as the findings service would:
    the death's date copied in)."""
    created = await api.post("/v1/screenings", json=screening_body(), headers=idem())
    assert created.status_code == 201, created.text
    death_id = uuid.UUID(created.json()["death_id"])
    finding_id = uuid.uuid4()
    async with database.transaction() as session:
        theme_id = await session.scalar(select(Theme.id).where(Theme.code == theme_code))
        assert theme_id is not None
        owner = await session.scalar(select(Death.organisation_id).where(Death.id == death_id))
        session.add(
            Finding(
                id=finding_id,
                death_id=death_id,
                organisation_id=owner,
                kind="problem_in_care",
                theme_id=theme_id,
                description="Escalation delayed overnight",
                died_on=uk_today() - timedelta(days=2),
            )
        )
    return str(finding_id)


# --- plans -----------------------------------------------------------------------------------


async def test_a_plan_is_created_with_its_sections(api, database) -> None:
    title = unique("Mortality improvement plan")
    response = await api.post(
        "/v1/action-plans",
        json={
            "title": title,
            "sponsor": "Medical Director",
            "organisations": ["RR8", "15f", "RR8"],
            "description": "From the 2025/26 thematic review",
            "sections": ["End of life care", "Deteriorating patient", "Discharge"],
        },
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["title"] == title
    assert plan["organisations"] == ["RR8", "15F"]  # upper-cased, the repeat dropped
    assert [(s["position"], s["title"]) for s in plan["sections"]] == [
        (1, "End of life care"),
        (2, "Deteriorating patient"),
        (3, "Discharge"),
    ]
    assert response.headers["Location"] == f"/v1/action-plans/{plan['id']}"
    assert plan["counts"]["total"] == 0
    assert plan["counts"]["by_rag"] == dict.fromkeys(["red", "amber", "green", "blue", "grey"], 0)
    assert [c["status_label"] for c in plan["counts"]["by_status"]] == [
        "Not yet commenced",
        "Off track",
        "At risk",
        "On track",
        "Complete",
    ]

    read = await api.get(f"/v1/action-plans/{plan['id']}")
    assert read.status_code == 200
    assert read.json()["sections"] == plan["sections"]
    assert read.headers["ETag"] == response.headers["ETag"]
    assert await events_for(database, plan["id"]) == [("action_plan.created", [])]

    listed = await api.get("/v1/action-plans", params={"organisation": "15F", "limit": 200})
    assert plan["id"] in [item["id"] for item in listed.json()["items"]]
    other = await api.get("/v1/action-plans", params={"organisation": "RX1", "limit": 200})
    assert plan["id"] not in [item["id"] for item in other.json()["items"]]


async def test_a_section_is_added_at_the_end(api, database) -> None:
    plan = await new_plan(api, sections=1)
    before = await api.get(f"/v1/action-plans/{plan['id']}")
    added = await api.post(
        f"/v1/action-plans/{plan['id']}/sections", json={"title": "Learning disabilities"}
    )
    assert added.status_code == 201, added.text
    assert added.json()["position"] == 2
    after = await api.get(f"/v1/action-plans/{plan['id']}")
    assert [s["title"] for s in after.json()["sections"]] == [
        "Improvement area 1",
        "Learning disabilities",
    ]
    # A reader sees the plan changed; a writer's If-Match on the plan still holds.
    assert after.headers["ETag"] != before.headers["ETag"]
    renamed = await api.patch(
        f"/v1/action-plans/{plan['id']}",
        json={"title": "Renamed"},
        headers={"If-Match": before.headers["ETag"]},
    )
    assert renamed.status_code == 200, renamed.text
    missing = await api.post(f"/v1/action-plans/{uuid.uuid4()}/sections", json={"title": "X"})
    assert_problem(missing, 404)


@pytest.mark.parametrize(
    ("codes", "pointer"),
    [
        (["RR8", "x" * 201], "/organisations/1"),
        (["RR8", "   "], "/organisations/1"),
        ([""], "/organisations/0"),
        ([f"Partner {n}" for n in range(51)], "/organisations"),
        ("RR8", "/organisations"),
    ],
)
async def test_organisations_are_bounded(api, database, codes: Any, pointer: str) -> None:
    """Each an ODS code or a name (docs/organisations.md), at most 200 characters and 50 of
    them; the filter takes a code only."""
    title = unique("Refused plan")
    response = await api.post(
        "/v1/action-plans", json={"title": title, "organisations": codes, "sections": ["A"]}
    )
    assert_problem(response, 422)
    assert pointers(response) == [pointer]
    async with database.transaction() as session:
        written = await session.scalar(select(func.count()).where(ActionPlan.title == title))
    assert written == 0
    action_filter = await api.get("/v1/actions", params={"organisation": "R-8"})
    assert_problem(action_filter, 422)
    assert pointers(action_filter) == ["query:/organisation"]


async def test_a_plan_is_changed_under_if_match(api, database) -> None:
    plan = await new_plan(api)
    path = f"/v1/action-plans/{plan['id']}"
    assert_problem(await api.patch(path, json={"title": "No tag"}), 428)
    stale = '"' + uuid.UUID(plan["id"]).hex + '.0"'
    assert_problem(await api.patch(path, json={"title": "Stale"}, headers={"If-Match": stale}), 412)
    cleared = await patch(api, path, {"title": None})
    assert_problem(cleared, 422)
    assert pointers(cleared) == ["/title"]

    changed = await patch(api, path, {"sponsor": "Chief Nurse", "organisations": ["rx1"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["sponsor"] == "Chief Nurse"
    assert changed.json()["organisations"] == ["RX1"]
    assert changed.json()["version"] == 2
    assert changed.json()["title"] == plan["title"]
    assert (await events_for(database, plan["id"]))[-1] == (
        "action_plan.updated",
        ["organisations", "sponsor"],
    )


# --- actions ---------------------------------------------------------------------------------


async def test_an_action_keeps_every_field(api, database) -> None:
    plan = await new_plan(api)
    finding_id = await new_finding(api, database, "dnacpr_decisions")
    body = {
        "plan_id": plan["id"],
        "section_id": plan["sections"][1]["id"],
        "reference": "2.1",
        "improvement_requirement": "DNACPR decisions are discussed with families",
        "action": "Launch the ReSPECT form\nand train every ward",
        "source": "Thematic review of SJRs, 2025",
        "leads": ["JB", "?", "Dr Patel"],
        "organisations": ["RR8", "rx1"],
        "workstream": "Deteriorating Patient Group",
        "start_date": "2015-04-01",
        "due_date": "2015-07-20",
        "due_precision": "month",
        "due_note": "Revised from Jun-15",
        "status": 4,
        "comments": "Training dates booked",
        "finding_ids": [finding_id],
    }
    response = await api.post("/v1/actions", json=body)
    assert response.status_code == 201, response.text
    action = response.json()
    for name in ("reference", "improvement_requirement", "action", "source", "leads"):
        assert action[name] == body[name]
    assert action["organisations"] == ["RR8", "RX1"]
    assert action["plan_id"] == plan["id"]
    assert action["section"] == {"id": body["section_id"], "title": "Improvement area 2"}
    assert action["due_date"] == "2015-07-01"  # the month, as its 1st
    assert action["falls_due_on"] == "2015-07-31"
    assert action["due_precision"] == "month"
    assert action["due_note"] == "Revised from Jun-15"
    assert action["status"] == 4 and action["status_label"] == "On track"
    assert action["overdue"] is True and action["rag"] == "red"  # Jul-15 has long passed
    assert action["completed_at"] is None and action["assured_at"] is None
    assert action["finding_ids"] == [finding_id]
    assert action["version"] == 1
    # Overdue joins the tag: the RAG turns red without a new version (If-None-Match).
    # (Tags are keyed MACs since issue 11: the state shows as a second part of the tag.)
    tag = response.headers["ETag"]
    assert len(tag.strip('"').split(".")) == 2
    assert (await api.get(f"/v1/actions/{action['id']}")).headers["ETag"] == tag
    assert response.headers["Location"] == f"/v1/actions/{action['id']}"

    read = await api.get(f"/v1/actions/{action['id']}")
    assert read.json() == action
    assert read.headers["ETag"] == response.headers["ETag"]
    assert await events_for(database, action["id"]) == [("action.created", [])]
    detail = (await api.get(f"/v1/action-plans/{plan['id']}")).json()
    assert detail["counts"]["total"] == 1
    assert detail["counts"]["overdue"] == 1
    assert detail["counts"]["by_rag"]["red"] == 1
    assert detail["counts"]["by_status"][3] == {
        "status": 4,
        "status_label": "On track",
        "count": 1,
    }
    assert [s["actions"] for s in detail["sections"]] == [0, 1]


async def test_an_action_needs_little(api) -> None:
    plan = await new_plan(api)
    action = await new_action(api, plan)
    assert action["status"] == 1 and action["rag"] == "grey"
    assert action["due_precision"] == "day"
    assert action["leads"] == [] and action["organisations"] == [] and action["finding_ids"] == []
    assert action["overdue"] is False and action["falls_due_on"] is None


async def test_a_reference_is_unique_within_its_section_only(api, database) -> None:
    plan = await new_plan(api)
    first = await new_action(api, plan, section=0, reference="1")
    elsewhere = await new_action(api, plan, section=1, reference="1")
    assert elsewhere["reference"] == first["reference"] == "1"

    again = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": plan["sections"][0]["id"],
            "reference": "1",
            "action": "A second action 1",
        },
    )
    problem = assert_problem(again, 409)
    assert problem["existing"] == {
        "action_id": first["id"],
        "action": f"/v1/actions/{first['id']}",
    }
    assert await count_actions(database, plan["id"]) == 2

    # Moving an action into a section, or renumbering it, meets the same rule.
    moved = await patch(
        api, f"/v1/actions/{elsewhere['id']}", {"section_id": plan["sections"][0]["id"]}
    )
    assert assert_problem(moved, 409)["existing"]["action_id"] == first["id"]
    renumbered = await patch(
        api,
        f"/v1/actions/{elsewhere['id']}",
        {"section_id": plan["sections"][0]["id"], "reference": "1a"},
    )
    assert renumbered.status_code == 200, renumbered.text
    assert renumbered.json()["section"]["id"] == plan["sections"][0]["id"]


def _bad_cases() -> list[Any]:
    today = uk_today()
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("unknown plan", {"plan_id": str(uuid.uuid4())}, ["/plan_id"]),
        ("status 6", {"status": 6}, ["/status"]),
        ("status 0", {"status": 0}, ["/status"]),
        ("status as text", {"status": "4"}, ["/status"]),
        ("precision", {"due_date": "2026-01-01", "due_precision": "year"}, ["/due_precision"]),
        ("no action text", {"action": ""}, ["/action"]),
        ("reference too long", {"reference": "x" * 51}, ["/reference"]),
        ("an organisation too long", {"organisations": ["RR8", "x" * 201]}, ["/organisations/1"]),
        ("an empty lead", {"leads": [""]}, ["/leads/0"]),
        ("unknown field", {"rag": "green"}, ["/rag"]),
        ("completed but open", {"status": 4, "completed_at": "2026-01-02"}, ["/completed_at"]),
        (
            "completed in the future",
            {"status": 5, "completed_at": str(today + timedelta(days=1))},
            ["/completed_at"],
        ),
        ("assured without evidence", {"assured_at": "2026-01-02"}, ["/assured_at"]),
        (
            "due before the start",
            {"start_date": "2026-05-01", "due_date": "2026-04-30"},
            ["/due_date"],
        ),
        ("not a date", {"due_date": "Jul-15"}, ["/due_date"]),
        ("unknown finding", {"finding_ids": [str(uuid.uuid4())]}, ["/finding_ids/0"]),
        ("a NUL", {"comments": "a\x00b"}, ["/comments"]),
    ]
    return [pytest.param(body, expected, id=name) for name, body, expected in cases]


@pytest.mark.parametrize(("fields", "expected"), _bad_cases())
async def test_bad_action_input_is_a_422_at_the_field_and_writes_nothing(
    api, database, fields: dict[str, Any], expected: list[str]
) -> None:
    plan = await new_plan(api)
    body = {
        "plan_id": plan["id"],
        "section_id": plan["sections"][0]["id"],
        "reference": "1.1",
        "action": "Something to do",
        **fields,
    }
    response = await api.post("/v1/actions", json=body)
    assert_problem(response, 422)
    assert pointers(response) == expected
    assert await count_actions(database, plan["id"]) == 0


async def test_a_section_of_another_plan_is_refused(api, database) -> None:
    plan, other = await new_plan(api), await new_plan(api)
    response = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": other["sections"][0]["id"],
            "reference": "1",
            "action": "Misfiled",
        },
    )
    assert_problem(response, 422)
    assert pointers(response) == ["/section_id"]
    assert await count_actions(database, plan["id"]) == 0
    assert await count_actions(database, other["id"]) == 0


async def test_status_changes_and_progress_notes_are_a_dated_history(api, database) -> None:
    plan = await new_plan(api)
    action = await new_action(api, plan)
    path = f"/v1/actions/{action['id']}"
    changed = await patch(api, path, {"status": 3}, **{"X-On-Behalf-Of": "Dr Lead"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["status_label"] == "At risk" and changed.json()["rag"] == "amber"

    earlier = uk_today() - timedelta(days=10)
    note = await api.post(
        f"{path}/updates",
        json={"narrative": "Audit tool agreed", "update_date": str(earlier)},
        headers={"If-Match": changed.headers["ETag"], "X-On-Behalf-Of": "Ms Governance"},
    )
    assert note.status_code == 201, note.text
    assert note.json()["update"]["author"] == "Ms Governance"
    assert note.json()["update"]["status_before"] is None
    assert note.json()["action"]["version"] == 3
    assert note.headers["ETag"] == (await api.get(path)).headers["ETag"]

    progressed = await api.post(
        f"{path}/updates",
        json={"narrative": "First wards done", "status": 4, "author": "JB"},
        headers={"If-Match": note.headers["ETag"], "X-On-Behalf-Of": "Ms Governance"},
    )
    assert progressed.status_code == 201, progressed.text
    assert progressed.json()["action"]["status"] == 4

    history = (await api.get(f"{path}/history")).json()
    assert [
        (h["update_date"], h["author"], h["narrative"], h["status_before"], h["status"])
        for h in history
    ] == [
        (str(earlier), "Ms Governance", "Audit tool agreed", None, 3),
        (str(uk_today()), "Dr Lead", None, 1, 3),
        (str(uk_today()), "JB", "First wards done", 3, 4),
    ]
    assert [h["status_label"] for h in history] == ["At risk", "At risk", "On track"]
    assert await events_for(database, action["id"]) == [
        ("action.created", []),
        ("action.updated", ["status"]),
        ("action.updated", ["updates"]),
        ("action.updated", ["status", "updates"]),
    ]

    # A change that changes nothing is no new version, no history, no event.
    same = await patch(api, path, {"status": 4, "leads": []})
    assert same.status_code == 200 and same.json()["version"] == 4
    assert len((await api.get(f"{path}/history")).json()) == 3
    assert len(await events_for(database, action["id"])) == 4

    future = await api.post(
        f"{path}/updates",
        json={"narrative": "Tomorrow", "update_date": str(uk_today() + timedelta(days=1))},
        headers={"If-Match": same.headers["ETag"]},
    )
    assert_problem(future, 422)
    assert pointers(future) == ["/update_date"]
    assert len((await api.get(f"{path}/history")).json()) == 3


async def test_if_match_guards_every_update(api, database) -> None:
    plan = await new_plan(api)
    action = await new_action(api, plan)
    path = f"/v1/actions/{action['id']}"
    first_tag = (await api.get(path)).headers["ETag"]
    moved_on = await api.patch(path, json={"comments": "moved on"}, headers={"If-Match": first_tag})
    assert moved_on.status_code == 200
    finding_id = await new_finding(api, database, "sepsis")
    writes = [
        ("PATCH", path, {"status": 2}),
        ("POST", f"{path}/updates", {"narrative": "note", "status": 2}),
        ("PUT", f"{path}/findings", {"finding_ids": [finding_id]}),
    ]
    for method, url, body in writes:
        missing = await api.request(method, url, json=body)
        assert_problem(missing, 428)
        stale = await api.request(method, url, json=body, headers={"If-Match": first_tag})
        problem = assert_problem(stale, 412)
        assert problem["current_etag"] == moved_on.headers["ETag"]
    after = (await api.get(path)).json()
    assert after["status"] == 1 and after["version"] == 2 and after["finding_ids"] == []
    assert (await api.get(f"{path}/history")).json() == []
    missing_action = await api.patch(
        f"/v1/actions/{uuid.uuid4()}", json={"status": 2}, headers={"If-Match": first_tag}
    )
    assert_problem(missing_action, 404)


async def test_completion_and_assurance_are_separate(api) -> None:
    plan = await new_plan(api)
    action = await new_action(api, plan, status=4, due_date=str(uk_today() - timedelta(days=3)))
    assert action["rag"] == "red" and action["overdue"] is True
    path = f"/v1/actions/{action['id']}"

    done = await patch(api, path, {"status": 5})
    assert done.status_code == 200, done.text
    assert done.json()["completed_at"] == str(uk_today())
    assert done.json()["rag"] == "blue" and done.json()["overdue"] is False
    assert done.json()["assured_at"] is None

    unevidenced = await patch(api, path, {"assured_at": str(uk_today()), "assured_by": "QSC"})
    assert_problem(unevidenced, 422)
    assert pointers(unevidenced) == ["/assured_at"]

    assured = await patch(
        api,
        path,
        {
            "evidence": "Audit Q3: 96% compliance",
            "assured_at": str(uk_today()),
            "assured_by": "QSC",
        },
    )
    assert assured.status_code == 200, assured.text
    assert assured.json()["assured_by"] == "QSC"
    no_evidence = await patch(api, path, {"evidence": None})
    assert pointers(no_evidence) == ["/assured_at"]

    uncompleted = await patch(api, path, {"completed_at": None})
    assert_problem(uncompleted, 422)
    assert pointers(uncompleted) == ["/completed_at"]

    reopened = await patch(api, path, {"status": 3})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["completed_at"] is None
    assert reopened.json()["rag"] == "red"  # open again and past its due date

    backdated = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": plan["sections"][0]["id"],
            "reference": "done-earlier",
            "action": "Already finished",
            "status": 5,
            "completed_at": "2025-03-31",
            "evidence": "Minutes of the March board",
            "assured_at": "2025-04-30",
            "assured_by": "Audit committee",
        },
    )
    assert backdated.status_code == 201, backdated.text
    assert backdated.json()["completed_at"] == "2025-03-31"
    assert backdated.json()["assured_at"] == "2025-04-30"

    via_update = await new_action(api, plan)
    tag = (await api.get(f"/v1/actions/{via_update['id']}")).headers["ETag"]
    completed = await api.post(
        f"/v1/actions/{via_update['id']}/updates",
        json={"narrative": "Signed off", "status": 5, "update_date": "2026-01-05"},
        headers={"If-Match": tag},
    )
    assert completed.status_code == 201, completed.text
    assert completed.json()["action"]["completed_at"] == "2026-01-05"


async def test_the_overdue_boundary_through_the_api(api) -> None:
    plan = await new_plan(api)
    today = uk_today()
    month_start = today.replace(day=1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    cases = {
        "due today": ({"due_date": str(today)}, False),
        "due yesterday": ({"due_date": str(today - timedelta(days=1))}, True),
        "this month": ({"due_date": str(month_start), "due_precision": "month"}, False),
        "last month": ({"due_date": str(last_month), "due_precision": "month"}, True),
        "TBC": ({"due_note": "TBC"}, False),
        "Ongoing": ({"due_note": "Ongoing", "status": 4}, False),
        "complete and late": (
            {"due_date": str(today - timedelta(days=30)), "status": 5},
            False,
        ),
    }
    for name, (fields, overdue) in cases.items():
        action = await new_action(api, plan, **fields)
        assert action["overdue"] is overdue, name
        assert (action["rag"] == "red") is overdue, name
    overdue_refs = await api.get("/v1/actions", params={"plan_id": plan["id"], "overdue": "true"})
    assert len(overdue_refs.json()["items"]) == 2


async def test_a_new_due_date_may_raise_overdue_again(api, database) -> None:
    plan = await new_plan(api)
    action = await new_action(api, plan, due_date=str(uk_today() - timedelta(days=5)))
    action_id = uuid.UUID(action["id"])
    async with database.transaction() as session:
        await session.execute(
            update(Action).where(Action.id == action_id).values(overdue_notified_at=now())
        )
    path = f"/v1/actions/{action['id']}"
    unrelated = await patch(api, path, {"comments": "chased"})
    assert unrelated.status_code == 200
    async with database.transaction() as session:
        assert await session.scalar(
            select(Action.overdue_notified_at).where(Action.id == action_id)
        )
    moved = await patch(api, path, {"due_date": str(uk_today() + timedelta(days=30))})
    assert moved.status_code == 200
    assert moved.json()["overdue"] is False and moved.json()["rag"] == "grey"
    async with database.transaction() as session:
        notified, falls_due_on = (
            await session.execute(
                select(Action.overdue_notified_at, Action.falls_due_on).where(
                    Action.id == action_id
                )
            )
        ).one()
    assert notified is None
    assert falls_due_on == uk_today() + timedelta(days=30)


# --- findings and themes ---------------------------------------------------------------------


async def test_findings_links_and_the_theme_filter(api, make_api, database) -> None:
    plan = await new_plan(api)
    sepsis = await new_finding(api, database, "sepsis")
    records = await new_finding(api, database, "quality_of_records")
    linked_at_birth = await new_action(api, plan, finding_ids=[sepsis, sepsis])
    assert linked_at_birth["finding_ids"] == [sepsis]
    later = await new_action(api, plan)
    unlinked = await new_action(api, plan)

    linker = await make_api(Scope.findings_read, Scope.findings_write)
    links_path = f"/v1/actions/{later['id']}/findings"
    current = await linker.get(links_path)
    assert current.status_code == 200
    assert current.json() == {"action_id": later["id"], "finding_ids": [], "version": 1}
    put = await linker.put(
        links_path,
        json={"finding_ids": [records, sepsis]},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert put.status_code == 200, put.text
    assert sorted(put.json()["finding_ids"]) == sorted([records, sepsis])
    assert put.json()["version"] == 2
    assert (await events_for(database, later["id"]))[-1] == ("action.updated", ["finding_ids"])
    # The linker cannot read or change the action itself.
    assert (await linker.get(f"/v1/actions/{later['id']}")).status_code == 403

    bad = await linker.put(
        links_path,
        json={"finding_ids": [sepsis, str(uuid.uuid4())]},
        headers={"If-Match": put.headers["ETag"]},
    )
    assert_problem(bad, 422)
    assert pointers(bad) == ["/finding_ids/1"]

    async def by_theme(theme: str) -> set[str]:
        response = await api.get("/v1/actions", params={"plan_id": plan["id"], "theme": theme})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await by_theme("sepsis") == {linked_at_birth["id"], later["id"]}
    assert await by_theme("quality_of_records") == {later["id"]}
    async with database.transaction() as session:
        records_theme = await session.scalar(
            select(Theme.id).where(Theme.code == "quality_of_records")
        )
    assert await by_theme(str(records_theme)) == {later["id"]}
    assert await by_theme("frailty") == set()
    assert unlinked["id"] not in await by_theme("sepsis")
    unknown = await api.get("/v1/actions", params={"theme": "no_such_theme"})
    assert_problem(unknown, 422)
    assert pointers(unknown) == ["query:/theme"]

    # Unlinking through PATCH: the theme filter follows.
    unlinked_now = await patch(api, f"/v1/actions/{later['id']}", {"finding_ids": [records]})
    assert unlinked_now.json()["finding_ids"] == [records]
    assert await by_theme("sepsis") == {linked_at_birth["id"]}


# --- lists -----------------------------------------------------------------------------------


async def test_the_list_filters(api) -> None:
    plan = await new_plan(api, organisations=["RR8", "RX1"])
    other_plan = await new_plan(api)
    today = uk_today()
    lead = unique("Dr Filter")
    late = str(today - timedelta(days=40))
    soon = str(today + timedelta(days=40))
    made = {
        "late-on-track": await new_action(
            api, plan, status=4, due_date=late, leads=[lead.upper()], organisations=["RR8"]
        ),
        "on-track": await new_action(
            api, plan, status=4, due_date=soon, leads=[lead], organisations=["RX1"]
        ),
        "at-risk": await new_action(api, plan, section=1, status=3, due_note="TBC"),
        "off-track": await new_action(api, plan, section=1, status=2, due_date=soon),
        "not-started-late": await new_action(api, plan, status=1, due_date=late),
        "complete-late": await new_action(api, plan, status=5, due_date=late, leads=["JB"]),
        "other-plan": await new_action(api, other_plan, status=4, leads=[lead]),
    }
    ids = {name: action["id"] for name, action in made.items()}

    async def names(**params: Any) -> set[str]:
        response = await api.get("/v1/actions", params={"limit": 200, **params})
        assert response.status_code == 200, response.text
        found = {item["id"] for item in response.json()["items"]}
        return {name for name, action_id in ids.items() if action_id in found}

    in_plan = {"plan_id": plan["id"]}
    assert await names(**in_plan) == set(ids) - {"other-plan"}
    assert await names(section_id=plan["sections"][1]["id"]) == {"at-risk", "off-track"}
    # An action that lists no organisation belongs to its plan's (as the actions report counts).
    for_all_of_us = {"at-risk", "off-track", "not-started-late", "complete-late"}
    assert await names(**in_plan, organisation="rx1") == {"on-track"} | for_all_of_us
    # Across plans: the other plan (RR8 only) has nothing for RX1, everything for RR8.
    assert await names(organisation="RX1") == {"on-track"} | for_all_of_us
    assert await names(organisation="RR8") == {"late-on-track", "other-plan"} | for_all_of_us
    assert await names(lead=lead.lower()) == {"late-on-track", "on-track", "other-plan"}
    assert await names(**in_plan, lead="jb") == {"complete-late"}
    assert await names(**in_plan, status=4) == {"late-on-track", "on-track"}
    assert await names(**in_plan, overdue="true") == {"late-on-track", "not-started-late"}
    assert await names(**in_plan, overdue="false") == {
        "on-track",
        "at-risk",
        "off-track",
        "complete-late",
    }
    expected_rag = {
        "red": {"late-on-track", "off-track", "not-started-late"},
        "amber": {"at-risk"},
        "green": {"on-track"},
        "blue": {"complete-late"},
        "grey": set(),
    }
    for colour, expected in expected_rag.items():
        assert await names(**in_plan, rag=colour) == expected, colour
    assert await names(**in_plan, rag="red", lead=lead) == {"late-on-track"}

    # The filter and the field agree: each action's rag is the colour that finds it.
    listed = (await api.get("/v1/actions", params={"limit": 200, **in_plan})).json()["items"]
    for item in listed:
        assert item["id"] in {ids[name] for name in expected_rag[item["rag"]]}
    counts = (await api.get(f"/v1/action-plans/{plan['id']}")).json()["counts"]
    assert counts["by_rag"] == {colour: len(names_) for colour, names_ in expected_rag.items()}
    assert counts["overdue"] == 2 and counts["total"] == 6

    for bad in ({"rag": "purple"}, {"status": 6}, {"overdue": "maybe"}, {"plan_id": "x"}):
        assert_problem(await api.get("/v1/actions", params=bad), 422)


async def test_actions_page_in_plan_order(api) -> None:
    plan = await new_plan(api)
    made = [await new_action(api, plan, section=n % 2) for n in range(5)]
    items, pages = await walk_pages(api, "/v1/actions", {"plan_id": plan["id"], "limit": 2})
    assert pages == 3
    assert [item["id"] for item in items] == [action["id"] for action in made]
    assert [item["position"] for item in items] == [1, 2, 3, 4, 5]
    garbage = await api.get("/v1/actions", params={"cursor": "not-a-cursor"})
    assert_problem(garbage, 400)


async def test_plans_page_newest_first(api) -> None:
    organisation = "R" + uuid.uuid4().hex[:4].upper()  # an NHS trust site code (R + 4)
    made = [await new_plan(api, organisations=[organisation]) for _ in range(3)]
    items, pages = await walk_pages(
        api, "/v1/action-plans", {"organisation": organisation, "limit": 2}
    )
    assert pages == 2
    assert [item["id"] for item in items] == [plan["id"] for plan in reversed(made)]
    assert all(len(item["sections"]) == 2 for item in items)


# --- retries and scopes ----------------------------------------------------------------------


async def test_a_retried_create_with_its_key_replays(api, database) -> None:
    plan = await new_plan(api)
    body = {
        "plan_id": plan["id"],
        "section_id": plan["sections"][0]["id"],
        "reference": "R1",
        "action": "Retried",
    }
    key = idem()
    first = await api.post("/v1/actions", json=body, headers=key)
    again = await api.post("/v1/actions", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await count_actions(database, plan["id"]) == 1
    other = await api.post("/v1/actions", json={**body, "reference": "R2"}, headers=key)
    assert_problem(other, 422)


async def test_a_reader_cannot_write(make_api) -> None:
    reader: Api = await make_api(Scope.actions_read)
    refused = await reader.post("/v1/action-plans", json={"title": "Not mine"})
    assert_problem(refused, 403)
    assert "actions:write" in refused.json()["detail"]
    assert (await reader.get("/v1/actions")).status_code == 200
