"""Death notifications (issue 15): POST /v1/death-notifications creates the death awaiting
screening; the sender's key makes it idempotent; the same patient notified twice is one death;
a later screening attaches to the notified death."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.auth.scopes import Scope
from tests.factories import idem, screening_body
from tests.kit.feed import drain_until, head
from tests.kit.notifications import notification_body, screening_of

PATH = "/v1/death-notifications"


async def notify(api: Any, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.post(PATH, json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_notification_creates_the_death_awaiting_screening(api):
    body = notification_body()
    response = await api.post(PATH, json=body)
    assert response.status_code == 201, response.text
    made = response.json()
    assert response.headers["Location"] == f"{PATH}/{made['id']}"
    assert made["channel"] == "json"
    assert made["death_created"] is True
    death = made["death"]
    assert death["status"] == "awaiting_screening"
    assert death["source_system"] == "test-pas"
    assert death["source_reference"] == body["source_reference"]
    assert death["notified_at"] is not None
    read = await api.get(f"/v1/deaths/{death['id']}")
    assert read.status_code == 200
    assert read.json()["status"] == "awaiting_screening"
    again = await api.get(f"{PATH}/{made['id']}")
    assert again.status_code == 200
    assert again.json()["death_id"] == death["id"]


async def test_the_same_notification_sent_again_changes_nothing(api):
    body = notification_body()
    first = await notify(api, body)
    second = await notify(api, body, status=200)
    assert second["id"] == first["id"]
    assert second["death_id"] == first["death_id"]
    listed = await api.get("/v1/deaths", params={"nhs_number": body["nhs_number"]})
    assert [item["id"] for item in listed.json()["items"]] == [first["death_id"]]


async def test_two_systems_notifying_the_same_patient_make_one_death(api):
    pas = notification_body()
    epr = {**pas, "source_system": "test-epr", "source_reference": "EPR-" + pas["source_reference"]}
    first = await notify(api, pas)
    second = await notify(api, epr)
    assert second["id"] != first["id"]
    assert second["death_id"] == first["death_id"]
    assert second["death_created"] is False
    listed = await api.get("/v1/deaths", params={"nhs_number": pas["nhs_number"]})
    assert len(listed.json()["items"]) == 1


async def test_a_notification_is_validated_as_a_screenings_death_is(api):
    body = notification_body(died_at="2999-01-01T10:00:00+00:00")
    response = await api.post(PATH, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "/died_at" in [e["pointer"] for e in response.json()["errors"]]
    bad_number = notification_body(nhs_number="9999999990")
    response = await api.post(PATH, json=bad_number)
    assert response.status_code == 422
    assert body["nhs_number"] not in response.text
    listed = await api.get("/v1/deaths", params={"source_reference": body["source_reference"]})
    assert listed.json()["items"] == []


async def test_notifying_needs_its_scope_and_answers_a_writer_only_with_links(make_api):
    reader = await make_api(Scope.deaths_read)
    refused = await reader.post(PATH, json=notification_body())
    assert refused.status_code == 403
    writer = await make_api(Scope.notifications_write)
    body = notification_body()
    answer = await notify(writer, body)
    assert set(answer) == {"id", "version", "death_id", "links"}
    assert body["nhs_number"] not in str(answer)


async def test_a_screening_attaches_to_the_notified_death_by_its_key(api):
    notified = await notify(api, notification_body(ward="Ward 12"))
    body = screening_body()
    body["death"].update(
        source_system="test-pas",
        source_reference=notified["source_reference"],
        ward=None,
        died_at=notified["death"]["died_at"],
        date_of_birth=notified["death"]["date_of_birth"],
    )
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert recorded["death_id"] == notified["death_id"]
    death = recorded["death"]
    assert death["status"] == "screened"
    assert death["ward"] == "Ward 12"  # what only the notification said is kept
    assert death["nhs_number"] == body["death"]["nhs_number"]  # the ME's details win


async def test_a_screening_attaches_by_nhs_number_and_date_of_death(api):
    notification = notification_body()
    notified = await notify(api, notification)
    body = screening_of(notification, learning_disability=False)
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    assert recorded["death_id"] == notified["death_id"]
    listed = await api.get("/v1/deaths", params={"nhs_number": notification["nhs_number"]})
    assert len(listed.json()["items"]) == 1
    # The ME office's own reference now names the death too.
    by_me = await api.get(
        "/v1/deaths",
        params={"source_system": "test-pas", "source_reference": notification["source_reference"]},
    )
    assert [item["id"] for item in by_me.json()["items"]] == [notified["death_id"]]
    # A second screening of it is the usual 409, linking to the first.
    again = await api.post("/v1/screenings", json=body, headers=idem())
    assert again.status_code == 409
    assert again.json()["existing"]["death_id"] == notified["death_id"]


async def test_a_notified_learning_disability_is_not_lost_to_a_screening_that_omits_it(api):
    notification = notification_body(learning_disability=True)
    await notify(api, notification)
    body = screening_of(notification)
    body["death"].pop("learning_disability", None)
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    assert recorded["death"]["learning_disability"] is True
    assert "leder" in {r["route"] for r in recorded["referrals"]}


async def test_a_screening_matching_two_notified_deaths_is_a_409_listing_both(api, database):
    first = notification_body()
    a = await notify(api, first)
    b = await notify(api, notification_body(nhs_number=None, nhs_number_status="03"))
    # Give the second death the first's NHS number (a correction through the API).
    etag = (await api.get(f"/v1/deaths/{b['death_id']}")).headers["ETag"]
    patched = await api.patch(
        f"/v1/deaths/{b['death_id']}",
        json={
            "nhs_number": first["nhs_number"],
            "nhs_number_status": "01",
            "died_at": first["died_at"],
            "date_of_birth": first["date_of_birth"],
        },
        headers={"If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    response = await api.post("/v1/screenings", json=screening_of(first), headers=idem())
    assert response.status_code == 409, response.text
    problem = response.json()
    assert {c["death_id"] for c in problem["candidates"]} == {a["death_id"], b["death_id"]}
    assert first["nhs_number"] not in response.text
    # A notification of the same patient is ambiguous too.
    again = await api.post(
        PATH,
        json=notification_body(**{k: first[k] for k in ("nhs_number", "died_at", "date_of_birth")}),
    )
    assert again.status_code == 409
    assert len(again.json()["candidates"]) == 2


async def test_notified_events_and_audit(api):
    cursor = await head(api)
    made = await notify(api, notification_body())

    def arrived(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["death_id"] == made["death_id"]]

    seen, _ = await drain_until(api, cursor, arrived, types="death.notified")
    assert [e["resource"]["path"] for e in arrived(seen)] == [f"{PATH}/{made['id']}"]
    audit = await api.get("/v1/audit-events", params={"death_id": made["death_id"]})
    assert audit.status_code == 200, audit.text
    actions = {row["action"] for row in audit.json()["items"]}
    assert {"death.create", "death_notification.create"} <= actions


async def test_a_pseudonymised_client_sees_no_reference(api, make_api):
    body = notification_body()
    made = await notify(api, body)
    commissioner = await make_api(pseudonymised=True)
    read = await commissioner.get(f"{PATH}/{made['id']}")
    assert read.status_code == 200
    shown = read.json()
    assert "source_reference" not in shown and "received_at" not in shown
    assert body["source_reference"] not in read.text
    assert body["nhs_number"] not in read.text
    assert shown["death"]["pseudonym"].startswith("P-")


async def test_a_writer_without_deaths_read_learns_only_how_many_deaths_match(api, make_api):
    first = notification_body()
    await notify(api, first)
    b = await notify(api, notification_body(nhs_number=None, nhs_number_status="03"))
    etag = (await api.get(f"/v1/deaths/{b['death_id']}")).headers["ETag"]
    fields = {k: first[k] for k in ("died_at", "date_of_birth")}
    patched = await api.patch(
        f"/v1/deaths/{b['death_id']}",
        json={"nhs_number": first["nhs_number"], "nhs_number_status": "01", **fields},
        headers={"If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    writer = await make_api(Scope.notifications_write)
    again = await writer.post(
        PATH, json=notification_body(nhs_number=first["nhs_number"], **fields)
    )
    assert again.status_code == 409
    assert again.json()["candidate_count"] == 2
    assert "candidates" not in again.json()
    assert b["death_id"] not in again.text


@pytest.mark.postgres_only
async def test_racing_retries_of_one_notification_make_one_death(api):
    body = notification_body()
    answers = await asyncio.gather(*(api.post(PATH, json=body) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len({a.json()["death_id"] for a in answers}) == 1
    listed = await api.get("/v1/deaths", params={"nhs_number": body["nhs_number"]})
    assert len(listed.json()["items"]) == 1
