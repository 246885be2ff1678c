"""Action plans in the history bundle (issue 14): a plan made through the API, with its
sections, actions, dated progress, organisations and the findings it answers, goes out in the
export beside its deaths and comes back whole into an empty database (exported again there, it
is the same line); the same bundle twice changes nothing; a correction updates what changed
and keeps versions; a correction that drops an action, or an action that breaks the live
rules or names a finding the service lacks, is refused with a pointer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from app.auth.scopes import Scope
from app.cli import main
from app.config import Settings, get_settings
from app.db import Database
from app.history.export import export_records
from app.history.plan_export import export_plans
from app.migrate import upgrade
from app.models import Death, Finding
from tests.conftest import Api, MakeApp, new_client
from tests.factories import idem
from tests.history_records import history_record, run, sjr_referral, utc

OPTIONS = orjson.OPT_UTC_Z
BASE = utc(2013, 3, 4, 9)  # March 2013: no other test has deaths then


def finding(reference: str, referral: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "referral": referral,
        "kind": "problem_in_care",
        "theme": {"code": "plan_round_trip", "name": "Plan round trip"},
        "phase": "ongoing",
        "description": "Observations were not escalated overnight.",
        "recorded_at": (BASE + timedelta(days=30)).isoformat(),
    }


async def finding_of(database: Database, death_key: str) -> str:
    async with database.transaction() as session:
        found = await session.scalar(
            select(Finding.id).join(Death).where(Death.source_reference == death_key)
        )
    return str(found)


async def made_plan(api: Api, finding_id: str) -> tuple[str, list[str]]:
    """A plan through the API: two sections, an action answering the finding with two dated
    progress notes (one a status change), and a complete one in the second section."""
    plan = await api.post(
        "/v1/action-plans",
        json={
            "title": f"Deterioration plan {uuid.uuid4().hex[:8]}",
            "sponsor": "Medical Director",
            "organisations": ["RR8", "15F"],
            "description": "Learning from the 2013 reviews.",
            "sections": ["Escalation", "Records"],
        },
        headers=idem(),
    )
    assert plan.status_code == 201, plan.text
    body = plan.json()
    first, second = (section["id"] for section in body["sections"])
    action = await api.post(
        "/v1/actions",
        json={
            "plan_id": body["id"],
            "section_id": first,
            "reference": "1.1",
            "action": "Audit NEWS escalation on the wards each quarter.",
            "leads": ["Dr A Lead"],
            "organisations": ["RR8"],
            "start_date": "2013-04-01",
            "due_date": "2013-09-30",
            "status": 3,
            "finding_ids": [finding_id],
        },
        headers=idem(),
    )
    assert action.status_code == 201, action.text
    action_id = action.json()["id"]
    tag = action.headers["ETag"]
    for note in (
        {"narrative": "First audit done.", "update_date": "2013-06-01"},
        {"narrative": "Second audit shows no gain.", "update_date": "2013-08-01", "status": 2},
    ):
        noted = await api.post(
            f"/v1/actions/{action_id}/updates", json=note, headers={"If-Match": tag}
        )
        assert noted.status_code in {200, 201}, noted.text
        tag = noted.headers["ETag"]
    done = await api.post(
        "/v1/actions",
        json={
            "plan_id": body["id"],
            "section_id": second,
            "reference": "2.1",
            "action": "Template for overnight handover notes.",
            "leads": ["Ward manager"],
            "due_date": "2013-07-01",
            "due_precision": "month",
            "status": 5,
            "completed_at": "2013-06-20",
            "evidence": "Template in use on every ward.",
        },
        headers=idem(),
    )
    assert done.status_code == 201, done.text
    return body["id"], [action_id, done.json()["id"]]


async def exported(database: Database, plan_id: str, death_key: str) -> list[bytes]:
    """The export's lines for the death and for the plan (the functions `lfd history export`
    runs, limited to what this test made: the database holds other tests' records)."""
    lines: list[bytes] = []
    async with database.snapshot() as session:
        async for page in export_records(session, date(2013, 3, 1), date(2013, 3, 31)):
            lines.extend(
                orjson.dumps(r, option=OPTIONS)
                for r in page.records
                if r["death"]["source_reference"] == death_key
            )
        async for line in export_plans(session):
            if line["action_plan"]["source_reference"] == plan_id:
                lines.append(orjson.dumps(line, option=OPTIONS))
    return lines


async def cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> int:
    monkeypatch.setenv("LFD_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        return await asyncio.to_thread(main, list(args))
    finally:
        get_settings.cache_clear()


def keyed(lines: list[bytes]) -> dict[str, Any]:
    records = [orjson.loads(line) for line in lines]
    return {(r.get("death") or r["action_plan"])["source_reference"]: r for r in records}


def plan_of(lines: list[bytes]) -> dict[str, Any]:
    plans = [orjson.loads(line) for line in lines if b'"action_plan"' in line]
    assert len(plans) == 1
    found: dict[str, Any] = plans[0]
    return found


@pytest.mark.parametrize(
    "scratch_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres_only)],
    indirect=True,
)
async def test_an_action_plan_goes_out_with_its_deaths_and_comes_back_whole(
    api: Api,
    database: Database,
    app_factory: MakeApp,
    base_settings: Settings,
    database_url: str,
    scratch_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = history_record(
        BASE,
        referrals=[sjr_referral(BASE + timedelta(days=2), BASE + timedelta(days=20))],
        findings=[finding("F1", "R1")],
    )
    assert (await run(api, [record]))["created"] == 1
    death_key = record["death"]["source_reference"]
    finding_id = await finding_of(database, death_key)
    plan_id, action_ids = await made_plan(api, finding_id)
    before = [(await api.get(f"/v1/actions/{a}")).json() for a in action_ids]
    history = (await api.get(f"/v1/actions/{action_ids[0]}/history")).json()

    lines = await exported(database, plan_id, death_key)
    plan = plan_of(lines)["action_plan"]
    assert plan["source_system"] == "lfd" and plan["source_reference"] == plan_id
    assert plan["organisations"] == ["RR8", "15F"]
    assert [a["reference"] for a in plan["actions"]] == ["1.1", "2.1"]
    answering = plan["actions"][0]
    assert answering["findings"] == [
        {"source_system": "legacy-datix", "source_reference": death_key, "finding": "F1"}
    ]
    assert [(u["narrative"], u["status_before"], u["status"]) for u in answering["updates"]] == [
        ("First audit done.", None, 3),
        ("Second audit shows no gain.", 3, 2),
    ]

    bundle_file = tmp_path / "leaving.jsonl"
    bundle_file.write_bytes(b"".join(line + b"\n" for line in lines))
    await asyncio.to_thread(upgrade, scratch_url)
    assert await cli(monkeypatch, scratch_url, "history", "import", str(bundle_file)) == 0
    again = tmp_path / "again.jsonl"
    assert await cli(monkeypatch, scratch_url, "history", "export", "-o", str(again)) == 0
    # Whole: the same deaths and the same plan, line for line (keys, times, updates, links;
    # as JSON: PostgreSQL's jsonb keeps a review form's keys in an order of its own).
    assert keyed(again.read_bytes().splitlines()) == keyed(lines)

    _, http = await app_factory(database_url=scratch_url)
    key, client_id = await new_client(
        Database(base_settings.model_copy(update={"database_url": scratch_url})), [Scope.admin]
    )
    there = Api(http, key, client_id)
    answer = await there.get("/v1/actions", params={"limit": 50})
    assert answer.status_code == 200, answer.text
    listed = answer.json()["items"]
    assert [a["reference"] for a in listed] == ["1.1", "2.1"]
    same = ("status", "rag", "overdue", "due_date", "falls_due_on", "completed_at", "leads")
    for mine, theirs in zip(before, listed, strict=True):
        assert {k: theirs[k] for k in same} == {k: mine[k] for k in same}
        assert theirs["created_at"] == mine["created_at"]
        assert theirs["organisations"] == mine["organisations"]
    linked = (await there.get(f"/v1/actions/{listed[0]['id']}/findings")).json()
    assert len(linked["finding_ids"]) == 1
    answered = (await there.get(f"/v1/findings/{linked['finding_ids'][0]}")).json()
    assert answered["description"] == "Observations were not escalated overnight."
    there_history = (await there.get(f"/v1/actions/{listed[0]['id']}/history")).json()
    drop = {"id"}
    assert [{k: v for k, v in e.items() if k not in drop} for e in there_history] == [
        {k: v for k, v in e.items() if k not in drop} for e in history
    ]

    # The same bundle again changes nothing.
    job = await run(there, [orjson.loads(line) for line in lines])
    assert (job["created"], job["updated"], job["unchanged"], job["refused"]) == (0, 0, 2, 0)


async def test_a_corrected_plan_updates_what_changed_and_a_dropped_action_is_refused(
    api: Api,
) -> None:
    key = f"PLAN-{uuid.uuid4().hex[:8]}"
    action = {
        "key": "A1",
        "section": "S1",
        "reference": "1",
        "action": f"Teach sepsis screening at induction ({key}).",
        "leads": [f"Education lead {key}"],
        "due_date": "2012-12-31",
        "status": 4,
        "created_at": "2012-06-01T09:00:00Z",
        "updates": [
            {
                "update_date": "2012-07-01",
                "narrative": "Slides written.",
                "status": 4,
                "recorded_at": "2012-07-01T10:00:00Z",
            },
        ],
    }
    plan = {
        "source_system": "legacy-plans",
        "source_reference": key,
        "title": "Sepsis plan",
        "organisations": ["RR8"],
        "created_at": "2012-06-01T09:00:00Z",
        "sections": [{"key": "S1", "title": "Training"}],
        "actions": [action],
    }
    job = await run(api, [{"action_plan": plan}])
    assert (job["created"], job["refused"]) == (1, 0), job
    # Its own lead finds it among the other tests' actions (more than a page of them).
    listed = (
        await api.get("/v1/actions", params={"lead": f"Education lead {key}", "limit": 200})
    ).json()["items"]
    mine = next(a for a in listed if a["action"] == action["action"])
    # Past its due date and not complete when imported: overdue and red, as any action.
    assert (mine["overdue"], mine["rag"], mine["version"]) == (True, "red", 1)

    corrected = orjson.loads(orjson.dumps(plan))
    corrected["title"] = "Sepsis improvement plan"
    fixed = corrected["actions"][0]
    fixed.update(status=5, completed_at="2013-01-15")
    fixed["updates"].append(
        {
            "update_date": "2013-01-15",
            "narrative": "Every induction teaches it.",
            "status_before": 4,
            "status": 5,
            "recorded_at": "2013-01-15T16:00:00Z",
        }
    )
    corrected["actions"].append(
        {**action, "key": "A2", "reference": "2", "action": "Audit screening.", "updates": []}
    )
    job = await run(api, [{"action_plan": corrected}])
    assert (job["created"], job["updated"], job["refused"]) == (0, 1, 0), job
    now = (await api.get(f"/v1/actions/{mine['id']}")).json()
    assert (now["status"], now["completed_at"], now["rag"], now["version"]) == (
        5,
        "2013-01-15",
        "blue",
        2,
    )
    history = (await api.get(f"/v1/actions/{mine['id']}/history")).json()
    assert [e["narrative"] for e in history] == ["Slides written.", "Every induction teaches it."]
    plans = (await api.get("/v1/action-plans", params={"limit": 200})).json()["items"]
    assert any(p["title"] == "Sepsis improvement plan" and p["version"] == 2 for p in plans)

    dropped = orjson.loads(orjson.dumps(corrected))
    dropped["actions"] = dropped["actions"][:1]
    job = await run(api, [{"action_plan": dropped}])
    assert job["refused"] == 1 and job["updated"] == 0
    assert {(e["pointer"], e["code"]) for e in job["problems"][0]["errors"]} == {
        ("/action_plan/actions", "removed")
    }


async def test_a_plan_breaking_the_action_rules_is_refused_with_pointers(api: Api) -> None:
    plan = {
        "source_system": "legacy-plans",
        "source_reference": f"BAD-{uuid.uuid4().hex[:8]}",
        "title": "A plan with problems",
        "created_at": "2012-06-01T09:00:00Z",
        "sections": [{"key": "S1", "title": "Only section"}],
        "actions": [
            {
                "key": "A1",
                "section": "S1",
                "reference": "1",
                "action": "Complete but never said when.",
                "status": 5,
                "created_at": "2012-06-01T09:00:00Z",
            },
            {
                "key": "A2",
                "section": "S9",
                "reference": "2",
                "action": "Answers a finding nobody recorded.",
                "created_at": "2012-06-01T09:00:00Z",
                "findings": [
                    {"source_system": "nowhere", "source_reference": "X", "finding": "F1"}
                ],
            },
        ],
    }
    job = await run(api, [{"action_plan": plan}])
    assert (job["created"], job["refused"]) == (0, 1)
    assert {(e["pointer"], e["code"]) for e in job["problems"][0]["errors"]} == {
        ("/action_plan/actions/0/completed_at", "missing"),
        ("/action_plan/actions/1/section", "value_error"),
    }
    plan["actions"][0].update(completed_at="2012-07-01")
    plan["actions"][1]["section"] = "S1"
    job = await run(api, [{"action_plan": plan}])
    assert {(e["pointer"], e["code"]) for e in job["problems"][0]["errors"]} == {
        ("/action_plan/actions/1/findings/0", "unknown_finding"),
    }


async def test_a_plan_made_here_is_not_overwritten_by_its_own_export(
    api: Api, database: Database
) -> None:
    record = history_record(
        BASE + timedelta(days=1),
        referrals=[sjr_referral(BASE + timedelta(days=3), BASE + timedelta(days=21))],
        findings=[finding("F2", "R1")],
    )
    assert (await run(api, [record]))["created"] == 1
    finding_id = await finding_of(database, record["death"]["source_reference"])
    plan_id, _ = await made_plan(api, finding_id)
    line = plan_of(await exported(database, plan_id, record["death"]["source_reference"]))
    job = await run(api, [line])
    assert job["refused"] == 1
    assert job["problems"][0]["errors"][0]["code"] == "conflict"
