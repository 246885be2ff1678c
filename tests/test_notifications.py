"""Death notifications (issue 15): POST /v1/death-notifications creates the death awaiting
screening; the sender's key makes it idempotent; the same patient notified twice is one death;
a later screening attaches to the notified death."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.auth.scopes import Scope
from tests.factories import idem, screening_body, test_nhs_number
from tests.kit.feed import drain_until, head
from tests.kit.notifications import notification_body, screening_of

PATH = "/v1/death-notifications"
FEED_TYPES = (
    "death.created,death.notified,death.updated,death.notification_corrected,"
    "death.correction_not_applied"
)


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


async def test_a_key_reused_for_another_patient_is_refused_and_nothing_is_dropped(api):
    first = notification_body()
    made = await notify(api, first)
    second = notification_body(source_reference=first["source_reference"])
    assert second["nhs_number"] != first["nhs_number"]
    refused = await api.post(PATH, json=second)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("notification-key-conflict")
    assert [e["pointer"] for e in problem["errors"]] == ["/source_reference"]
    for value in (first["nhs_number"], second["nhs_number"], made["death_id"]):
        assert value not in refused.text
    # Nothing recorded for the second patient; the first as it was.
    assert (await api.get("/v1/deaths", params={"nhs_number": second["nhs_number"]})).json()[
        "items"
    ] == []
    death = (await api.get(f"/v1/deaths/{made['death_id']}")).json()
    assert death["nhs_number"] == first["nhs_number"] and death["version"] == 1
    # The same patient by local id alone under a key first sent with only a local id; another
    # local id (another patient) under it is refused too.
    local = notification_body(nhs_number=None, nhs_number_status="03", local_patient_id="RX1-1")
    await notify(api, local)
    other = {**local, "local_patient_id": "RX1-2"}
    assert (await api.post(PATH, json=other)).status_code == 409
    # A key a screening recorded its death under is the same: not for another patient.
    screened = screening_body()
    posted = await api.post("/v1/screenings", json=screened, headers=idem())
    assert posted.status_code == 201, posted.text
    under_its_key = notification_body(
        source_system=screened["death"]["source_system"],
        source_reference=screened["death"]["source_reference"],
    )
    taken = await api.post(PATH, json=under_its_key)
    assert taken.status_code == 409, taken.text
    assert taken.json()["type"].endswith("notification-key-conflict")


def later(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The same notification sent again later, with changed details."""
    sent = datetime.fromisoformat(body["sent_at"]) + timedelta(minutes=5)
    return {**body, "sent_at": sent.isoformat(), **changes}


async def test_a_correction_of_the_same_patient_is_applied_to_the_death_awaiting_screening(api):
    cursor = await head(api)
    body = notification_body(ward="Ward 1", site="Site A")
    made = await notify(api, body)
    corrected_body = later(body, ward="Ward 2", learning_disability=True)
    response = await api.post(PATH, json=corrected_body)
    assert response.status_code == 200, response.text
    assert response.headers["Notification-Correction"] == "applied"
    answer = response.json()
    assert answer["id"] == made["id"] and answer["correction"] == "applied"
    assert answer["corrected_at"] is not None
    death = answer["death"]
    assert (death["ward"], death["site"], death["learning_disability"]) == (
        "Ward 2",
        "Site A",
        True,
    )
    assert death["version"] == 2 and death["status"] == "awaiting_screening"
    # The correction sent again is a replay, answered as the correction was.
    again = await api.post(PATH, json=corrected_body)
    assert again.status_code == 200
    assert again.headers["Notification-Correction"] == "applied"
    assert again.json()["death"]["version"] == 2
    # The first message arriving late (older than the correction) changes nothing.
    stale = await api.post(PATH, json=body)
    assert stale.status_code == 200 and "Notification-Correction" not in stale.headers
    assert stale.json()["death"]["ward"] == "Ward 2"

    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["death_id"] == made["death_id"]]

    seen, _ = await drain_until(
        api, cursor, lambda events: len(mine(events)) >= 4, types=FEED_TYPES
    )
    kinds = {e["type"]: e for e in mine(seen)}
    assert set(kinds) == {
        "death.created",
        "death.notified",
        "death.updated",
        "death.notification_corrected",
    }
    assert set(kinds["death.updated"]["changed"]) == {"ward", "learning_disability"}
    assert kinds["death.notification_corrected"]["resource"]["path"] == f"{PATH}/{made['id']}"
    audit = await api.get("/v1/audit-events", params={"death_id": made["death_id"]})
    actions = [row["action"] for row in audit.json()["items"]]
    assert actions.count("death_notification.correct") == 1 and "death.update" in actions


async def test_a_correction_of_a_screened_death_is_recorded_and_not_applied(api):
    cursor = await head(api)
    body = notification_body(ward="Ward 1")
    made = await notify(api, body)
    screened = await api.post("/v1/screenings", json=screening_of(body), headers=idem())
    assert screened.status_code == 201, screened.text
    before = (await api.get(f"/v1/deaths/{made['death_id']}")).json()
    response = await api.post(PATH, json=later(body, ward="Ward 3"))
    assert response.status_code == 200, response.text
    assert response.headers["Notification-Correction"] == "not_applied"
    assert response.json()["correction"] == "not_applied"
    death = (await api.get(f"/v1/deaths/{made['death_id']}")).json()
    assert (death["ward"], death["version"]) == (before["ward"], before["version"])
    assert death["ward"] != "Ward 3"

    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["death_id"] == made["death_id"]]

    seen, _ = await drain_until(
        api,
        cursor,
        lambda events: any(e["type"] == "death.correction_not_applied" for e in mine(events)),
        types=FEED_TYPES,
    )
    assert "death.notification_corrected" not in {e["type"] for e in mine(seen)}


async def test_a_correction_may_add_an_nhs_number_to_a_patient_known_by_local_id(api):
    body = notification_body(nhs_number=None, nhs_number_status="03", local_patient_id="RX1-77")
    made = await notify(api, body)
    number = test_nhs_number()
    traced = later(body, nhs_number=number, nhs_number_status="01")
    response = await api.post(PATH, json=traced)
    assert response.status_code == 200, response.text
    assert response.json()["death"]["nhs_number"] == number
    assert response.json()["death"]["nhs_number_status"] == "01"
    # From then on the key is this NHS number's: another under it is another patient.
    other = later(traced, nhs_number=test_nhs_number(), sent_at=datetime.now(UTC).isoformat())
    assert (await api.post(PATH, json=other)).status_code == 409
    assert (await api.get(f"/v1/deaths/{made['death_id']}")).json()["nhs_number"] == number
