"""What a change and a read leave behind: outbox events (thin, written with the change) and
audit rows (who read or changed which patient's record, for whom, in which request), and
nothing at all when the request fails."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent, Death, OutboxEvent
from tests.factories import idem
from tests.kit.audit import ON_BEHALF_OF, patient_body, patient_values, request_id, traced


def unique_site() -> str:
    return f"Audit site {uuid.uuid4().hex[:10]}"


async def events_for(database: Any, **where: Any) -> list[OutboxEvent]:
    async with database.transaction() as session:
        query = select(OutboxEvent).filter_by(**where)
        return list((await session.scalars(query)).all())


async def audits_for(database: Any, **where: Any) -> list[AuditEvent]:
    async with database.transaction() as session:
        query = select(AuditEvent).filter_by(**where)
        return list((await session.scalars(query)).all())


def row_text(row: Any) -> str:
    return " ".join(repr(getattr(row, column.key)) for column in row.__table__.columns)


async def test_a_screening_writes_its_events_and_audit_rows_together(api, database) -> None:
    body = patient_body(learning_disability=True)
    rid = request_id()
    response = await api.post("/v1/screenings", json=body, headers={**idem(), **traced(rid)})
    assert response.status_code == 201, response.text
    recorded = response.json()
    death_id = uuid.UUID(recorded["death_id"])
    screening_id = uuid.UUID(recorded["id"])
    referral_ids = {uuid.UUID(r["id"]) for r in recorded["referrals"]}
    assert len(referral_ids) == 2  # leder and sjr

    events = await events_for(database, death_id=death_id)
    assert Counter(e.type for e in events) == {
        "death.created": 1,
        "screening.recorded": 1,
        "referral.created": 2,
    }
    resources = {(e.type, e.resource_type, e.resource_id) for e in events}
    assert resources == {
        ("death.created", "death", death_id),
        ("screening.recorded", "screening", screening_id),
        *{("referral.created", "referral", rid_) for rid_ in referral_ids},
    }
    secrets = patient_values(body)
    for event in events:
        assert event.changed == []
        assert event.client_id == api.client_id
        assert event.request_id == rid
        text = row_text(event)
        for value in secrets:
            assert value not in text

    audits = await audits_for(database, request_id=rid)
    assert Counter(a.action for a in audits) == {
        "screening.create": 1,
        "death.create": 1,
        "referral.create": 2,
    }
    for audit in audits:
        assert audit.client_id == api.client_id
        assert audit.on_behalf_of == ON_BEHALF_OF
        assert audit.death_id == death_id
        assert audit.outcome == "success"
        text = row_text(audit)
        for value in secrets:
            assert value not in text
    assert {(a.action, a.resource_id) for a in audits} == {
        ("screening.create", screening_id),
        ("death.create", death_id),
        *{("referral.create", rid_) for rid_ in referral_ids},
    }


async def test_every_read_of_a_death_is_audited(api, database) -> None:
    site = unique_site()
    recorded = [
        (await api.post("/v1/screenings", json=patient_body(site=site), headers=idem())).json()
        for _ in range(3)
    ]
    death_ids = {uuid.UUID(r["death_id"]) for r in recorded}
    one = recorded[0]

    rid = request_id()
    response = await api.get(f"/v1/deaths/{one['death_id']}", headers=traced(rid))
    assert response.status_code == 200
    [audit] = await audits_for(database, request_id=rid)
    assert (audit.action, audit.resource_type) == ("death.read", "death")
    assert audit.resource_id == audit.death_id == uuid.UUID(one["death_id"])
    assert audit.client_id == api.client_id
    assert audit.on_behalf_of == ON_BEHALF_OF

    # A page is one row naming every patient on it, in the order shown (issue 19).
    rid = request_id()
    response = await api.get("/v1/deaths", params={"site": site}, headers=traced(rid))
    shown = [uuid.UUID(d["id"]) for d in response.json()["items"]]
    assert set(shown) == death_ids
    [audit] = await audits_for(database, request_id=rid)
    assert (audit.action, audit.resource_type, audit.resource_id) == ("death.list", "death", None)
    assert audit.death_ids == shown
    assert audit.death_id is None

    # Only what the page returned is recorded.
    rid = request_id()
    response = await api.get("/v1/deaths", params={"site": site, "limit": 2}, headers=traced(rid))
    returned = [uuid.UUID(d["id"]) for d in response.json()["items"]]
    assert len(returned) == 2
    [audit] = await audits_for(database, request_id=rid)
    assert audit.death_ids == returned

    rid = request_id()
    response = await api.get(f"/v1/screenings/{one['id']}", headers=traced(rid))
    assert response.status_code == 200
    [audit] = await audits_for(database, request_id=rid)
    assert (audit.action, audit.resource_type) == ("screening.read", "screening")
    assert audit.resource_id == uuid.UUID(one["id"])
    assert audit.death_id == uuid.UUID(one["death_id"])


async def test_every_referral_listed_is_audited(api, database) -> None:
    site = unique_site()
    recorded = [
        (
            await api.post(
                "/v1/screenings",
                json=patient_body(site=site, learning_disability=True),
                headers=idem(),
            )
        ).json()
        for _ in range(2)
    ]
    assert sum(len(r["referrals"]) for r in recorded) == 4

    # Four referrals of two patients: one row, naming each patient once, in the page's order.
    rid = request_id()
    response = await api.get("/v1/referrals", params={"site": site}, headers=traced(rid))
    items = response.json()["items"]
    assert len(items) == 4
    [audit] = await audits_for(database, request_id=rid)
    assert (audit.action, audit.resource_type) == ("referral.list", "referral")
    assert audit.death_ids == list(dict.fromkeys(uuid.UUID(item["death_id"]) for item in items))
    assert set(audit.death_ids) == {uuid.UUID(r["death_id"]) for r in recorded}

    rid = request_id()
    response = await api.get(
        "/v1/referrals", params={"site": site, "route": "cdr"}, headers=traced(rid)
    )
    assert response.json()["items"] == []
    assert await audits_for(database, request_id=rid) == []


async def test_a_correction_writes_a_thin_event_and_an_audit_row(api, database) -> None:
    body = patient_body()
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    death_id = recorded["death_id"]
    tag = (await api.get(f"/v1/deaths/{death_id}")).headers["etag"]
    rid = request_id()
    new_given = f"Corrected{uuid.uuid4().hex[:8]}"
    response = await api.patch(
        f"/v1/deaths/{death_id}",
        json={"given_name": new_given, "learning_disability": True},
        headers=traced(rid, **{"If-Match": tag}),
    )
    assert response.status_code == 200, response.text

    events = await events_for(database, request_id=rid)
    # The death had an SJR for the unexpected death: it gains a reason, and LeDeR is raised.
    assert Counter(e.type for e in events) == {
        "death.updated": 1,
        "referral.updated": 1,
        "referral.created": 1,
    }
    changed = {e.type: e.changed for e in events}
    assert changed["death.updated"] == ["given_name", "learning_disability"]
    assert changed["referral.updated"] == ["reasons"]
    for event in events:
        assert new_given not in row_text(event)
        assert body["death"]["given_name"] not in row_text(event)
    actions = Counter(a.action for a in await audits_for(database, request_id=rid))
    assert actions == {"death.update": 1, "referral.create": 1}


async def test_a_request_that_fails_in_the_service_leaves_nothing(api, database) -> None:
    # Valid field by field; the service rejects it only after it has started writing (the rules
    # do not require LeDeR for this death, so it cannot be overridden).
    body = patient_body()
    body["screening"]["overrides"] = [{"route": "leder", "reason": "Not needed"}]
    rid = request_id()
    response = await api.post("/v1/screenings", json=body, headers={**idem(), **traced(rid)})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["pointer"] == "/screening/overrides/0/route"

    assert await events_for(database, request_id=rid) == []
    assert await audits_for(database, request_id=rid) == []
    async with database.transaction() as session:
        death = await session.scalar(
            select(Death).where(
                Death.source_system == body["death"]["source_system"],
                Death.source_reference == body["death"]["source_reference"],
            )
        )
    assert death is None
    listed = await api.get(
        "/v1/deaths",
        params={
            "source_system": body["death"]["source_system"],
            "source_reference": body["death"]["source_reference"],
        },
    )
    assert listed.json()["items"] == []

    # Fixed, the same death goes in once, with its own events.
    del body["screening"]["overrides"]
    rid = request_id()
    response = await api.post("/v1/screenings", json=body, headers={**idem(), **traced(rid)})
    assert response.status_code == 201, response.text
    assert Counter(e.type for e in await events_for(database, request_id=rid))["death.created"] == 1


async def test_a_rejected_correction_leaves_no_event_and_no_audit_row(api, database) -> None:
    recorded = (await api.post("/v1/screenings", json=patient_body(), headers=idem())).json()
    death_id = recorded["death_id"]
    read = await api.get(f"/v1/deaths/{death_id}")
    died_at = read.json()["died_at"]
    after_death = (datetime.fromisoformat(died_at) + timedelta(hours=2)).isoformat()
    rid = request_id()
    response = await api.patch(
        f"/v1/deaths/{death_id}",
        json={"admitted_at": after_death, "ward": "Ward 12"},
        headers=traced(rid, **{"If-Match": read.headers["etag"]}),
    )
    assert response.status_code == 422
    assert await events_for(database, request_id=rid) == []
    assert await audits_for(database, request_id=rid) == []
    again = await api.get(f"/v1/deaths/{death_id}")
    assert again.json()["ward"] == read.json()["ward"]
    assert again.headers["etag"] == read.headers["etag"]
