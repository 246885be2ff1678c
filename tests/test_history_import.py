"""History imports over HTTP (issue 14, docs/history.md): a bundle in as a job with its own
dates, idempotent re-import, per-record refusal with pointers, all-or-nothing, the one summary
event per batch and the one audit row, missed referrals."""

from __future__ import annotations

import asyncio
import copy
import os
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from app.auth.scopes import Scope
from app.db import Database
from app.kit.id_lists import id_in_list
from app.models import (
    AuditEvent,
    Death,
    HistoryImport,
    OutboxEvent,
    Referral,
    Review,
    ReviewVersion,
    Screening,
)
from tests.conftest import Api, MakeApi
from tests.history_records import NDJSON, bundle, history_record, run, sjr_referral, utc


def cohort() -> list[dict[str, Any]]:
    died = utc(2017, 5, 3, 14, 0)
    return [
        history_record(
            died,
            screening={"death_expected": False},
            referrals=[sjr_referral(died + timedelta(days=2), died + timedelta(days=40))],
            findings=[
                {
                    "reference": "F1",
                    "referral": "R1",
                    "kind": "problem_in_care",
                    "theme": {"code": "hist_monitoring", "name": "Monitoring (history test)"},
                    "description": "Observations were not escalated.",
                    "recorded_at": (died + timedelta(days=41)).isoformat(),
                }
            ],
        ),
        # Unexpected, never referred: a missed SJR.
        history_record(utc(2017, 6, 10, 9, 30), screening={"death_expected": False}),
    ]


async def test_a_bundle_goes_in_with_its_own_dates(api: Api, database: Database) -> None:
    records = cohort()
    job = await run(api, records)
    assert job["status"] == "completed", job
    assert (job["created"], job["updated"], job["unchanged"], job["refused"]) == (2, 0, 0, 0)
    reference = records[0]["death"]["source_reference"]
    async with database.transaction() as session:
        spooled = await session.get_one(HistoryImport, uuid.UUID(job["id"]))
        # The upload's copy is gone once the job is done.
        assert not await asyncio.to_thread(os.path.exists, spooled.spool_path)
        death = await session.scalar(select(Death).where(Death.source_reference == reference))
        assert death is not None
        assert death.status == "closed"
        screening = await session.scalar(select(Screening).where(Screening.death_id == death.id))
        assert screening is not None and screening.screened_at == utc(2017, 5, 4, 14, 0)
        referral = await session.scalar(select(Referral).where(Referral.death_id == death.id))
        assert referral is not None
        assert referral.created_at == utc(2017, 5, 5, 14, 0)
        assert referral.completed_at == utc(2017, 6, 12, 14, 0)
        assert referral.lease_id is None and referral.status == "completed"
        review = await session.scalar(select(Review).where(Review.death_id == death.id))
        assert review is not None and review.submitted_at == utc(2017, 6, 12, 14, 0)
        assert review.overall_rating == 3 and review.avoidability == 5
        # No stage 2 raised, no referral by today's rules for the second death.
        second = records[1]["death"]["source_reference"]
        count = await session.scalar(
            select(func.count())
            .select_from(Referral)
            .join(Death, Death.id == Referral.death_id)
            .where(Death.source_reference.in_([reference, second]))
        )
        assert count == 1


async def counts(database: Database, system: str) -> dict[str, int]:
    async with database.transaction() as session:
        return {
            name: int(
                await session.scalar(
                    select(func.count())
                    .select_from(model)
                    .join(Death, Death.id == model.death_id)
                    .where(Death.source_system == system)
                )
                or 0
            )
            for name, model in (
                ("screenings", Screening),
                ("referrals", Referral),
                ("reviews", Review),
            )
        } | {
            "deaths": int(
                await session.scalar(
                    select(func.count()).select_from(Death).where(Death.source_system == system)
                )
                or 0
            )
        }


async def test_the_same_bundle_twice_changes_nothing_and_a_correction_keeps_versions(
    api: Api, database: Database
) -> None:
    system = f"sys-{uuid.uuid4().hex[:8]}"
    records = cohort()
    for record in records:
        record["death"]["source_system"] = system
    first = await run(api, records)
    assert (first["created"], first["updated"], first["unchanged"]) == (2, 0, 0)
    before = await counts(database, system)
    again = await run(api, records)
    assert again["status"] == "completed"
    assert (again["created"], again["updated"], again["unchanged"], again["refused"]) == (
        0,
        0,
        2,
        0,
    )
    assert again["batches"][0].get("event") is None  # nothing written, nothing announced
    assert await counts(database, system) == before

    # A corrected bundle: the SJR's avoidability was mis-keyed; the second death gained an SJR.
    corrected = copy.deepcopy(records)
    corrected[0]["referrals"][0]["review"]["form"]["avoidability"] = 2
    died = utc(2017, 6, 10, 9, 30)
    corrected[1]["referrals"] = [sjr_referral(died + timedelta(days=3), died + timedelta(days=30))]
    fixed = await run(api, corrected)
    assert (fixed["created"], fixed["updated"], fixed["unchanged"]) == (0, 2, 0), fixed
    after = await counts(database, system)
    assert after == {
        **before,
        "referrals": before["referrals"] + 1,
        "reviews": before["reviews"] + 1,
    }
    async with database.transaction() as session:
        review = await session.scalar(
            select(Review)
            .join(Death, Death.id == Review.death_id)
            .where(Death.source_reference == records[0]["death"]["source_reference"])
        )
        assert review is not None and review.avoidability == 2 and review.version == 2
        versions = await session.scalar(
            select(func.count())
            .select_from(ReviewVersion)
            .where(ReviewVersion.review_id == review.id)
        )
        assert versions == 1
    # And the corrected bundle again changes nothing.
    assert (await run(api, corrected))["unchanged"] == 2


async def test_a_bad_record_is_refused_with_a_pointer_and_the_rest_go_in(
    api: Api, database: Database
) -> None:
    system = f"sys-{uuid.uuid4().hex[:8]}"
    died = utc(2018, 2, 1, 8, 0)
    good = history_record(died, system=system)
    # A review submitted before its referral was created.
    early = history_record(
        died,
        system=system,
        referrals=[sjr_referral(died + timedelta(days=5), died + timedelta(days=3))],
    )
    # Closed before it was created.
    closed = history_record(
        died, system=system, referrals=[sjr_referral(died + timedelta(days=5), None)]
    )
    closed["referrals"][0].update(
        status="cancelled", closed_at=(died + timedelta(days=4)).isoformat(), due_at=None
    )
    # A death after its import, and an NHS number that fails its check digit.
    future = history_record(utc(2099, 1, 1), system=system)
    bad_number = history_record(died, system=system, death={"nhs_number": "9434765918"})
    job = await run(api, [good, early, closed, future, bad_number])
    assert job["status"] == "completed"
    assert (job["created"], job["refused"]) == (1, 4)
    problems = {p["line"]: p for p in job["problems"]}
    assert set(problems) == {2, 3, 4, 5}
    pointers = {line: {e["pointer"] for e in p["errors"]} for line, p in problems.items()}
    assert "/referrals/0/review/submitted_at" in pointers[2]
    assert "/referrals/0/closed_at" in pointers[3]
    assert "/death/died_at" in pointers[4]
    assert "/death/nhs_number" in pointers[5]
    assert problems[2]["source_reference"] == early["death"]["source_reference"]
    # No submitted value is echoed back.
    assert bad_number["death"]["nhs_number"] not in str(job)
    assert (await counts(database, system))["deaths"] == 1


async def test_all_or_nothing_refuses_the_whole_bundle(api: Api, database: Database) -> None:
    system = f"sys-{uuid.uuid4().hex[:8]}"
    died = utc(2018, 3, 1, 8, 0)
    good = history_record(died, system=system)
    bad = history_record(died, system=system, death={"sex": "unknown-value"})
    job = await run(api, [good, bad], all_or_nothing="true")
    assert job["status"] == "refused"
    assert (job["created"], job["refused"]) == (0, 1)
    assert job["problems"][0]["errors"][0]["pointer"] == "/death/sex"
    assert (await counts(database, system))["deaths"] == 0
    fine = await run(api, [good], all_or_nothing="true")
    assert (fine["status"], fine["created"]) == ("completed", 1)


async def test_one_summary_event_per_batch_and_one_audit_row(
    app_factory: Any, make_api: MakeApi, database: Database
) -> None:
    _, http = await app_factory(history_batch_size=2)
    api = await make_api(Scope.admin, client=http)
    system = f"sys-{uuid.uuid4().hex[:8]}"
    died = utc(2019, 1, 10, 12, 0)
    records = [history_record(died, system=system) for _ in range(5)]
    job = await run(api, records)
    assert job["created"] == 5 and len(job["batches"]) == 3
    assert [b["created"] for b in job["batches"]] == [2, 2, 1]
    numbers = [b["case_numbers"] for b in job["batches"]]
    assert all(low <= high for low, high in numbers)
    async with database.transaction() as session:
        events = (
            await session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.resource_id == uuid.UUID(job["id"]),
                )
            )
        ).all()
        assert [e.type for e in events] == ["history.imported"] * 3
        assert {str(e.id) for e in events} == {b["event"] for b in job["batches"]}
        per_death = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .join(Death, Death.id == OutboxEvent.death_id)
            .where(Death.source_system == system)
        )
        assert per_death == 0  # no storm of past events
        audit = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.resource_id == uuid.UUID(job["id"]))
            )
        ).all()
        assert [(a.action, a.client_id) for a in audit] == [
            ("history.import.completed", api.client_id)
        ]
        reads = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .join(Death, id_in_list(Death.id, AuditEvent.death_ids))
            .where(Death.source_system == system)
        )
        assert reads == 0  # no invented reads
    # The feed shows the events with a link to the import.
    ours: list[dict[str, Any]] = []
    params = {"types": "history.imported", "limit": "200"}
    # On PostgreSQL the feed hands an event out once every older transaction on the server
    # has ended (other databases' too): poll.
    for _ in range(3000):
        page = (await api.get("/v1/events", params=params)).json()
        ours += [e for e in page["items"] if e["resource"]["id"] == job["id"]]
        if len(ours) == 3:
            break
        params["cursor"] = page["next_cursor"]
        await asyncio.sleep(0.02)
    assert len(ours) == 3
    assert ours[0]["resource"]["path"] == f"/v1/history/imports/{job['id']}"


async def missed_figures(api: Api, start: str, end: str) -> dict[str, Any]:
    response = await api.get("/v1/history/missed-referrals", params={"from": start, "to": end})
    assert response.status_code == 200, response.text
    figures: dict[str, Any] = response.json()
    return figures


def routes_of(figures: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {r.pop("route"): r for r in figures["routes"]}


async def test_missed_referrals_are_flagged(api: Api, make_api: MakeApi) -> None:
    died = utc(2016, 4, 12, 10, 0)
    referred = history_record(
        died,
        screening={"death_expected": False},
        referrals=[sjr_referral(died + timedelta(days=2), died + timedelta(days=20))],
    )
    missed = history_record(died, screening={"death_expected": False})
    # A child's death: CDR required; declined in writing by the ME.
    override = {
        "route": "cdr",
        "reason": "Notified by the paediatric team",
        "recorded_at": (died + timedelta(days=1)).isoformat(),
    }
    child = history_record(
        died, death={"date_of_birth": "2010-01-01"}, screening={"overrides": [override]}
    )
    nothing = history_record(died)
    before = await missed_figures(api, "2016-04-01", "2016-04-30")
    job = await run(api, [referred, missed, child, nothing])
    assert job["created"] == 4, job
    after = await missed_figures(api, "2016-04-01", "2016-04-30")
    # The figures these four deaths add (the database may hold earlier runs' April 2016).
    for name, added in (("deaths", 4), ("meeting_a_criterion", 3), ("with_a_missed_referral", 1)):
        assert after[name] - before[name] == added, name
    old, new = routes_of(before), routes_of(after)
    zero = {"required": 0, "referred": 0, "overridden": 0, "missed": 0}

    def added(route: str) -> dict[str, int]:
        return {k: new[route][k] - old.get(route, zero)[k] for k in zero}

    assert added("sjr") == {"required": 2, "referred": 1, "overridden": 0, "missed": 1}
    assert added("cdr") == {"required": 1, "referred": 0, "overridden": 1, "missed": 0}
    # A commissioner sees the figures for whole months, not for a day.
    commissioner = await make_api(pseudonymised=True)
    month = {"from": "2016-04-01", "to": "2016-04-30"}
    day = {"from": "2016-04-12", "to": "2016-04-12"}
    path = "/v1/history/missed-referrals"
    assert (await commissioner.get(path, params=month)).status_code == 200
    assert (await commissioner.get(path, params=day)).status_code == 400


async def test_only_an_administrator_imports_and_only_ndjson(make_api: MakeApi, api: Api) -> None:
    writer = await make_api(Scope.screenings_write)
    body = bundle([history_record(utc(2019, 1, 1))])
    assert (
        await writer.post("/v1/history/imports", content=body, headers=NDJSON)
    ).status_code == 403
    commissioner = await make_api(pseudonymised=True)
    assert (
        await commissioner.post("/v1/history/imports", content=body, headers=NDJSON)
    ).status_code == 403
    wrong = await api.post(
        "/v1/history/imports", content=body, headers={"Content-Type": "text/plain"}
    )
    assert wrong.status_code == 415
    assert wrong.headers["content-type"].startswith("application/problem+json")
    empty = await api.post("/v1/history/imports", content=b"", headers=NDJSON)
    assert empty.status_code == 400
    missing = await api.get(f"/v1/history/imports/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_a_line_that_is_not_json_is_refused_on_its_own(api: Api) -> None:
    good = history_record(utc(2019, 2, 1, 10, 0))
    body = b"{not json\n\n" + bundle([good]) + b"[1, 2]\n"
    response = await api.post("/v1/history/imports", content=body, headers=NDJSON)
    job_url = response.headers["Location"]
    for _ in range(2000):
        job = (await api.get(job_url)).json()
        if job["status"] == "completed":
            break
        await asyncio.sleep(0.01)
    assert (job["created"], job["refused"]) == (1, 2)
    assert [(p["line"], p["errors"][0]["code"]) for p in job["problems"]] == [
        (1, "json_invalid"),
        (4, "type_error"),
    ]


async def test_pseudonymised_clients_never_see_identifiers_of_imported_records(
    api: Api, make_api: MakeApi
) -> None:
    died = utc(2016, 9, 14, 16, 45)
    record = history_record(
        died,
        death={
            "given_name": "Zebedee",
            "family_name": "Quillfeather",
            "local_patient_id": "LP98765",
        },
        screening={"death_expected": False},
        referrals=[sjr_referral(died + timedelta(days=2), died + timedelta(days=9))],
    )
    job = await run(api, [record])
    assert job["created"] == 1
    death = record["death"]
    secrets = [
        death["nhs_number"],
        death["given_name"],
        death["family_name"],
        death["local_patient_id"],
        death["date_of_birth"],
        death["postcode"],
        "2016-09-14",
    ]
    commissioner = await make_api(pseudonymised=True)
    deaths = await commissioner.get(
        "/v1/deaths", params={"died_from": "2016-09-01", "died_to": "2016-09-30", "limit": 200}
    )
    assert deaths.status_code == 200
    assert len(deaths.json()["items"]) >= 1
    feed = await commissioner.get("/v1/events", params={"types": "history.imported"})
    missed = await commissioner.get(
        "/v1/history/missed-referrals", params={"from": "2016-09-01", "to": "2016-09-30"}
    )
    for response in (deaths, feed, missed):
        assert response.status_code == 200
        for secret in secrets:
            assert secret not in response.text
    # The import itself (its problems name the sender's references) is the administrator's.
    assert (await commissioner.get(f"/v1/history/imports/{job['id']}")).status_code == 403


async def test_worker_processes_give_the_same_outcome(
    app_factory: Any, make_api: MakeApi, database: Database
) -> None:
    """LFD_HISTORY_WORKERS: the records checked and planned in another process."""
    _, http = await app_factory(history_workers=1, history_parallel_from=1, history_batch_size=2)
    api = await make_api(Scope.admin, client=http)
    system = f"sys-{uuid.uuid4().hex[:8]}"
    died = utc(2019, 3, 4, 5, 6)
    records = [
        history_record(
            died,
            system=system,
            screening={"death_expected": False},
            referrals=[sjr_referral(died + timedelta(days=1), died + timedelta(days=8))],
        )
        for _ in range(4)
    ]
    records.append(history_record(died, system=system, death={"given_name": "Nul\u0000"}))
    job = await run(api, records)
    assert (job["status"], job["created"], job["refused"]) == ("completed", 4, 1), job
    assert job["problems"][0]["errors"][0]["pointer"] == "/death/given_name"
    assert await counts(database, system) == {
        "deaths": 4,
        "screenings": 4,
        "referrals": 4,
        "reviews": 4,
    }
