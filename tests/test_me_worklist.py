"""The ME office's worklist (issue 15): deaths awaiting screening, oldest death first, with
waiting times against the targets, filterable by site, and a lease bound to the client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.auth.scopes import Scope
from app.kit.id_lists import names
from app.models import AuditEvent, WorklistClaim
from tests.factories import idem
from tests.kit.notifications import died, notification_body, screening_of

PATH = "/v1/me/worklist"


async def notified(api: Any, **death: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    body = notification_body(**death)
    response = await api.post("/v1/death-notifications", json=body)
    assert response.status_code == 201, response.text
    return body, response.json()


async def test_the_status_filter_lists_deaths_awaiting_screening(api):
    _, made = await notified(api, site=f"Site {uuid.uuid4().hex[:6]}")
    listed = await api.get(
        "/v1/deaths", params={"status": "awaiting_screening", "site": made["death"]["site"]}
    )
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [made["death_id"]]


async def test_the_worklist_is_oldest_death_first_with_its_targets(api):
    site = f"Site {uuid.uuid4().hex[:6]}"
    _, recent = await notified(api, site=site, died_at=died(0.5))
    _, old = await notified(api, site=site, died_at=died(4))
    await notified(api, site="Another site", died_at=died(5))
    response = await api.get(PATH, params={"site": site})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["death"]["id"] for item in items] == [old["death_id"], recent["death_id"]]
    assert items[0]["mccd_overdue"] is True  # 4 days > the 3-day target
    assert items[1]["mccd_overdue"] is False
    assert 95 < items[0]["hours_since_death"] < 97
    assert items[0]["waiting_hours"] >= 0
    assert items[0]["claim"] is None


async def test_pages_follow_the_cursor(api):
    site = f"Site {uuid.uuid4().hex[:6]}"
    made = [(await notified(api, site=site, died_at=died(1 + n / 10)))[1] for n in range(3)]
    first = (await api.get(PATH, params={"site": site, "limit": 2})).json()
    second = (await api.get(PATH, params={"site": site, "cursor": first["next_cursor"]})).json()
    seen = [item["death"]["id"] for item in first["items"] + second["items"]]
    assert seen == [m["death_id"] for m in reversed(made)]
    assert second["next_cursor"] is None


async def test_a_screened_death_leaves_the_worklist(api):
    site = f"Site {uuid.uuid4().hex[:6]}"
    body, _ = await notified(api, site=site)
    screened = await api.post("/v1/screenings", json=screening_of(body, site=site), headers=idem())
    assert screened.status_code == 201, screened.text
    assert (await api.get(PATH, params={"site": site})).json()["items"] == []


async def test_a_claim_is_a_lease_bound_to_its_client(make_api):
    api = await make_api(Scope.notifications_write, Scope.deaths_read, Scope.worklist_claim)
    other = await make_api(Scope.worklist_claim, Scope.deaths_read)
    site = f"Site {uuid.uuid4().hex[:6]}"
    _, made = await notified(api, site=site)
    death_id = made["death_id"]
    claimed = await api.post(f"{PATH}/{death_id}/claim", json={"lease_seconds": 600})
    assert claimed.status_code == 200, claimed.text
    lease = claimed.json()
    assert lease["held_by_you"] is True and lease["lease_id"]
    # Another ME cannot take it, nor use the lease id.
    assert (await other.post(f"{PATH}/{death_id}/claim")).status_code == 409
    stolen = await other.post(f"{PATH}/{death_id}/release", json={"lease_id": lease["lease_id"]})
    assert stolen.status_code == 409
    # The other sees it claimed, without the lease id.
    seen = (await other.get(PATH, params={"site": site})).json()["items"][0]["claim"]
    assert seen["held_by_you"] is False and seen["lease_id"] is None
    unclaimed = await other.get(PATH, params={"site": site, "unclaimed": "true"})
    assert unclaimed.json()["items"] == []
    renewed = await api.post(
        f"{PATH}/{death_id}/renew", json={"lease_id": lease["lease_id"], "lease_seconds": 900}
    )
    assert renewed.status_code == 200
    assert renewed.json()["lease_expires_at"] > lease["lease_expires_at"]
    released = await api.post(f"{PATH}/{death_id}/release", json={"lease_id": lease["lease_id"]})
    assert released.status_code == 204
    assert (await other.post(f"{PATH}/{death_id}/claim")).status_code == 200


async def test_an_expired_claim_frees_the_death(api, database):
    _, made = await notified(api)
    death_id = made["death_id"]
    lease = (await api.post(f"{PATH}/{death_id}/claim")).json()
    async with database.transaction() as session:
        await session.execute(
            update(WorklistClaim)
            .where(WorklistClaim.death_id == uuid.UUID(death_id))
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    late = await api.post(f"{PATH}/{death_id}/renew", json={"lease_id": lease["lease_id"]})
    assert late.status_code == 409
    assert (await api.post(f"{PATH}/{death_id}/claim")).status_code == 200


async def test_a_screened_death_cannot_be_claimed(api):
    body, made = await notified(api)
    await api.post("/v1/screenings", json=screening_of(body), headers=idem())
    refused = await api.post(f"{PATH}/{made['death_id']}/claim")
    assert refused.status_code == 409
    missing = await api.post(f"{PATH}/{uuid.uuid4()}/claim")
    assert missing.status_code == 404


async def test_a_pseudonymised_client_sees_no_exact_times(api, make_api):
    site = f"Site {uuid.uuid4().hex[:6]}"
    body, _ = await notified(api, site=site)
    commissioner = await make_api(pseudonymised=True)
    response = await commissioner.get(PATH, params={"site": site})
    assert response.status_code == 200, response.text
    item = response.json()["items"][0]
    assert set(item) == {"death", "waiting_days", "mccd_overdue", "scrutiny_overdue", "claimed"}
    assert body["died_at"][:10] not in response.text
    assert body["nhs_number"] not in response.text


async def test_a_claimed_death_is_screened_only_by_the_holder_presenting_the_lease(
    make_api, database
):
    holder = await make_api(
        Scope.notifications_write, Scope.deaths_read, Scope.worklist_claim, Scope.screenings_write
    )
    other = await make_api(Scope.deaths_read, Scope.worklist_claim, Scope.screenings_write)
    body, made = await notified(holder)
    death_id = made["death_id"]
    as_a = {"X-On-Behalf-Of": "Dr A Examiner"}
    claimed = await holder.post(f"{PATH}/{death_id}/claim", headers=as_a)
    assert claimed.status_code == 200, claimed.text
    lease = claimed.json()
    screening = screening_of(body)
    with_lease = {**screening, "worklist_lease_id": lease["lease_id"]}
    attempts = [
        await other.post("/v1/screenings", json=screening, headers=idem()),
        # The holder's lease id, learnt elsewhere, is worth nothing to another client.
        await other.post("/v1/screenings", json=with_lease, headers=idem()),
        # The holder itself must present the lease ...
        await holder.post("/v1/screenings", json=screening, headers={**idem(), **as_a}),
        # ... for the person the claim was made for (named, or not named at all).
        await holder.post(
            "/v1/screenings", json=with_lease, headers={**idem(), "X-On-Behalf-Of": "Dr B"}
        ),
        await holder.post("/v1/screenings", json=with_lease, headers=idem()),
    ]
    for refused in attempts:
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"].endswith("worklist-conflict")
        assert problem["lease_expires_at"] == lease["lease_expires_at"]
        assert body["nhs_number"] not in refused.text and death_id not in refused.text
    assert (await holder.get(f"/v1/deaths/{death_id}")).json()["status"] == "awaiting_screening"
    async with database.transaction() as session:
        refusals = (
            await session.scalars(
                select(AuditEvent).where(
                    names(AuditEvent.death_ids, uuid.UUID(death_id)),
                    AuditEvent.action == "worklist.lease_refused",
                )
            )
        ).all()
    assert sorted((row.client_id, row.outcome) for row in refusals) == sorted(
        [(other.client_id, "refused")] * 2 + [(holder.client_id, "refused")] * 3
    )
    # The holder, for its person, with the lease: recorded, and the claim has done its work.
    done = await holder.post(
        "/v1/screenings", json=with_lease, headers={**idem(), "X-On-Behalf-Of": "dr a examiner"}
    )
    assert done.status_code == 201, done.text
    assert done.json()["death"]["id"] == death_id
    async with database.transaction() as session:
        assert await session.get(WorklistClaim, uuid.UUID(death_id)) is None


async def test_an_expired_or_released_claim_binds_no_screening(make_api, database):
    holder = await make_api(Scope.notifications_write, Scope.deaths_read, Scope.worklist_claim)
    other = await make_api(Scope.deaths_read, Scope.screenings_write)
    expired_body, expired = await notified(holder)
    await holder.post(f"{PATH}/{expired['death_id']}/claim")
    async with database.transaction() as session:
        await session.execute(
            update(WorklistClaim)
            .where(WorklistClaim.death_id == uuid.UUID(expired["death_id"]))
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    screened = await other.post("/v1/screenings", json=screening_of(expired_body), headers=idem())
    assert screened.status_code == 201, screened.text
    released_body, released = await notified(holder)
    lease = (await holder.post(f"{PATH}/{released['death_id']}/claim")).json()
    gone = await holder.post(
        f"{PATH}/{released['death_id']}/release", json={"lease_id": lease["lease_id"]}
    )
    assert gone.status_code == 204
    # A lease id that no longer holds anything is no obstacle either.
    stale = {**screening_of(released_body), "worklist_lease_id": lease["lease_id"]}
    assert (await other.post("/v1/screenings", json=stale, headers=idem())).status_code == 201


async def test_a_lease_claimed_for_a_person_is_renewed_and_released_only_for_that_person(
    api, database
):
    _, made = await notified(api)
    death_id = made["death_id"]
    as_a = {"X-On-Behalf-Of": "Dr A Examiner"}
    lease = (await api.post(f"{PATH}/{death_id}/claim", headers=as_a)).json()
    assert lease["leased_to"] == "Dr A Examiner"
    renew = {"lease_id": lease["lease_id"]}
    for headers in ({}, {"X-On-Behalf-Of": "Dr B"}):
        refused = await api.post(f"{PATH}/{death_id}/renew", json=renew, headers=headers)
        assert refused.status_code == 409, refused.text
        refused = await api.post(f"{PATH}/{death_id}/release", json=renew, headers=headers)
        assert refused.status_code == 409, refused.text
    async with database.transaction() as session:
        refusals = await session.scalars(
            select(AuditEvent.outcome).where(
                names(AuditEvent.death_ids, uuid.UUID(death_id)),
                AuditEvent.action == "worklist.lease_refused",
            )
        )
        assert list(refusals) == ["refused"] * 4
    same = {"X-On-Behalf-Of": "dr a examiner"}
    assert (await api.post(f"{PATH}/{death_id}/renew", json=renew, headers=same)).status_code == 200
    assert (
        await api.post(f"{PATH}/{death_id}/release", json=renew, headers=same)
    ).status_code == 204
    # A lease claimed for no one is the client's own: renewed with or without a person.
    unnamed = (await api.post(f"{PATH}/{death_id}/claim")).json()
    renewed = await api.post(
        f"{PATH}/{death_id}/renew", json={"lease_id": unnamed["lease_id"]}, headers=as_a
    )
    assert renewed.status_code == 200


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


async def test_the_24_hour_scrutiny_target_runs_from_the_notes_received(make_api):
    api = await make_api(
        Scope.notifications_write, Scope.deaths_read, Scope.worklist_claim, Scope.screenings_write
    )
    site = f"Site {uuid.uuid4().hex[:6]}"
    _, late = await notified(api, site=site, died_at=died(3))
    _, recent = await notified(api, site=site, died_at=died(2))
    _, unknown = await notified(api, site=site, died_at=died(1))
    notes = f"{PATH}/{{}}/notes-received"
    put = await api.put(notes.format(late["death_id"]), json={"notes_received_at": ago(days=2)})
    assert put.status_code == 204, put.text
    put = await api.put(notes.format(recent["death_id"]), json={"notes_received_at": ago(hours=1)})
    assert put.status_code == 204, put.text
    items = {
        item["death"]["id"]: item
        for item in (await api.get(PATH, params={"site": site})).json()["items"]
    }
    overdue, due, none = (items[d["death_id"]] for d in (late, recent, unknown))
    assert overdue["scrutiny_overdue"] is True and due["scrutiny_overdue"] is False
    received = datetime.fromisoformat(due["notes_received_at"].replace("Z", "+00:00"))
    due_at = datetime.fromisoformat(due["scrutiny_due_at"].replace("Z", "+00:00"))
    assert due_at - received == timedelta(hours=24)
    assert none["notes_received_at"] is None and none["scrutiny_due_at"] is None
    assert none["scrutiny_overdue"] is False
    # Not before the death, not in the future.
    for when in (died(4), (datetime.now(UTC) + timedelta(hours=2)).isoformat()):
        bad = await api.put(notes.format(unknown["death_id"]), json={"notes_received_at": when})
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["pointer"] == "/notes_received_at"


async def test_the_notes_time_is_bound_by_the_claim_and_taken_by_the_screening(make_api):
    holder = await make_api(
        Scope.notifications_write, Scope.deaths_read, Scope.worklist_claim, Scope.screenings_write
    )
    other = await make_api(Scope.worklist_claim)
    body, made = await notified(holder, died_at=died(1))
    death_id = made["death_id"]
    url = f"{PATH}/{death_id}/notes-received"
    lease = (await holder.post(f"{PATH}/{death_id}/claim")).json()
    when = ago(hours=3)
    refused = await other.put(url, json={"notes_received_at": when})
    assert refused.status_code == 409, refused.text
    assert refused.json()["lease_expires_at"] == lease["lease_expires_at"]
    assert (await holder.put(url, json={"notes_received_at": when})).status_code == 409
    accepted = await holder.put(
        url, json={"notes_received_at": when, "lease_id": lease["lease_id"]}
    )
    assert accepted.status_code == 204, accepted.text
    # The screening sends no notes time of its own: it takes the worklist's.
    screening = {**screening_of(body), "worklist_lease_id": lease["lease_id"]}
    screening["screening"].pop("notes_received_at", None)
    screening["screening"].pop("scrutiny_completed_at", None)
    screening["screening"]["screened_at"] = ago(minutes=5)
    done = await holder.post("/v1/screenings", json=screening, headers=idem())
    assert done.status_code == 201, done.text
    taken = datetime.fromisoformat(done.json()["notes_received_at"].replace("Z", "+00:00"))
    assert taken == datetime.fromisoformat(when)
    # Once screened, the time belongs to the screening.
    late = await holder.put(url, json={"notes_received_at": when})
    assert late.status_code == 409
