"""Amending a screening: PUT /v1/screenings/{id} with If-Match, the kept versions, the referrals
that follow the amendment, and the screening.amended event."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update

from app.models import OutboxEvent, Referral
from tests.factories import post_screening, screening_body

PROBLEM_JSON = "application/problem+json"


async def record_tagged(api: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Post a screening; returns the body sent, the response and its ETag."""
    body = screening_body(**kwargs)
    response = await post_screening(api, body)
    return body, response.json(), response.headers["etag"]


async def amend(api: Any, screening_id: str, fields: dict[str, Any], tag: str | None) -> Any:
    headers = {"If-Match": tag} if tag is not None else {}
    return await api.put(f"/v1/screenings/{screening_id}", json=fields, headers=headers)


async def death_of(api: Any, death_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/deaths/{death_id}")
    assert response.status_code == 200
    death: dict[str, Any] = response.json()
    return death


def by_route(referrals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {referral["route"]: referral for referral in referrals}


async def amended_events(database: Any, screening_id: str) -> list[OutboxEvent]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(
                OutboxEvent.resource_id == uuid.UUID(screening_id),
                OutboxEvent.type == "screening.amended",
            )
            .order_by(OutboxEvent.occurred_at)
        )
        return list(rows.all())


async def test_put_needs_if_match(api) -> None:
    body, recorded, _ = await record_tagged(api)
    fields = {**body["screening"], "staff_concerns": "Delayed review"}
    response = await amend(api, recorded["id"], fields, None)
    assert response.status_code == 428
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    current = await api.get(f"/v1/screenings/{recorded['id']}")
    assert current.json()["staff_concerns"] is None
    assert current.json()["version"] == 1


async def test_put_with_a_stale_etag_is_412_and_changes_nothing(api) -> None:
    body, recorded, tag = await record_tagged(api)
    first = await amend(api, recorded["id"], {**body["screening"], "qap_discussed": False}, tag)
    assert first.status_code == 200, first.text

    stale = await amend(
        api, recorded["id"], {**body["screening"], "staff_concerns": "Delayed review"}, tag
    )
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == first.headers["etag"]
    current = await api.get(f"/v1/screenings/{recorded['id']}")
    assert current.json()["staff_concerns"] is None
    assert current.json()["qap_discussed"] is False
    assert current.json()["version"] == 2
    assert (await death_of(api, recorded["death_id"]))["referrals"] == []


async def test_amending_with_the_etag_from_post_then_from_get(api) -> None:
    body, recorded, post_tag = await record_tagged(api)
    read = await api.get(f"/v1/screenings/{recorded['id']}")
    assert read.headers["etag"] == post_tag

    first = await amend(
        api, recorded["id"], {**body["screening"], "records_reviewed": False}, post_tag
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2
    assert first.json()["records_reviewed"] is False
    assert first.headers["etag"] != post_tag

    read = await api.get(f"/v1/screenings/{recorded['id']}")
    assert read.headers["etag"] == first.headers["etag"]
    second = await amend(
        api,
        recorded["id"],
        {**body["screening"], "records_reviewed": False, "cause_of_death": {"part_1a": "Sepsis"}},
        read.headers["etag"],
    )
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 3
    assert second.json()["cause_of_death"]["part_1a"] == "Sepsis"
    assert second.json()["cause_of_death"]["part_2"] is None

    versions = await api.get(f"/v1/screenings/{recorded['id']}/versions")
    assert versions.status_code == 200
    history = versions.json()
    assert [v["version"] for v in history] == [1, 2]
    assert history[0]["snapshot"]["records_reviewed"] is True
    assert history[0]["snapshot"]["cause_of_death"]["part_1a"] == "Pneumonia"
    assert history[0]["snapshot"]["cause_of_death"]["part_2"] == "Frailty"
    assert history[1]["snapshot"]["records_reviewed"] is False
    assert history[1]["snapshot"]["cause_of_death"]["part_2"] == "Frailty"


async def test_amending_an_unknown_screening_is_404(api) -> None:
    body = screening_body()
    response = await amend(api, str(uuid.uuid4()), body["screening"], "*")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_adding_a_concern_raises_an_sjr(api, database) -> None:
    body, recorded, tag = await record_tagged(api)
    assert recorded["referrals"] == []
    assert recorded["death"]["status"] == "screened"
    death_tag = (await api.get(f"/v1/deaths/{recorded['death_id']}")).headers["etag"]

    response = await amend(
        api, recorded["id"], {**body["screening"], "bereaved_concerns": "Pain not managed"}, tag
    )
    assert response.status_code == 200, response.text
    amended = response.json()
    assert amended["bereaved_concerns"] == "Pain not managed"
    assert [(r["route"], r["reasons"], r["status"]) for r in amended["referrals"]] == [
        ("sjr", ["bereaved_concern"], "ready")
    ]
    assert amended["required_routes"] == [
        {"route": "sjr", "reasons": ["bereaved_concern"], "outcome": "referred"}
    ]
    death = await api.get(f"/v1/deaths/{recorded['death_id']}")
    assert death.json()["status"] == "under_review"
    assert death.headers["etag"] != death_tag  # the death's status changed

    events = await amended_events(database, recorded["id"])
    assert len(events) == 1
    assert events[0].changed == ["bereaved_concerns"]
    assert events[0].death_id == uuid.UUID(recorded["death_id"])


async def test_removing_the_only_reason_cancels_the_waiting_referral(api) -> None:
    body, recorded, tag = await record_tagged(
        api, screening={"staff_concerns": "Delayed escalation"}
    )
    sjr = by_route(recorded["referrals"])["sjr"]
    assert sjr["status"] == "ready"
    assert recorded["death"]["status"] == "under_review"

    response = await amend(api, recorded["id"], {**body["screening"], "staff_concerns": None}, tag)
    assert response.status_code == 200, response.text
    amended = response.json()
    assert amended["required_routes"] == []
    cancelled = by_route(amended["referrals"])["sjr"]
    assert cancelled["id"] == sjr["id"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["status_reason"]
    assert cancelled["version"] == sjr["version"] + 1

    death = await death_of(api, recorded["death_id"])
    assert death["status"] == "screened"
    assert [(r["id"], r["status"]) for r in death["referrals"]] == [(sjr["id"], "cancelled")]
    queue = await api.get("/v1/referrals", params={"death_id": recorded["death_id"]})
    assert [(r["id"], r["status"]) for r in queue.json()["items"]] == [(sjr["id"], "cancelled")]

    # Restoring the concern refers the death again, with a new referral.
    again = await amend(
        api,
        recorded["id"],
        {**body["screening"], "staff_concerns": "Delayed escalation"},
        response.headers["etag"],
    )
    assert again.status_code == 200, again.text
    statuses = sorted((r["status"], r["id"] == sjr["id"]) for r in again.json()["referrals"])
    assert statuses == [("cancelled", True), ("ready", False)]
    assert (await death_of(api, recorded["death_id"]))["status"] == "under_review"


async def test_a_reason_removed_while_another_remains_keeps_the_referral(api) -> None:
    body, recorded, tag = await record_tagged(
        api, screening={"staff_concerns": "Delayed escalation", "death_expected": False}
    )
    sjr = by_route(recorded["referrals"])["sjr"]
    assert sjr["reasons"] == ["staff_concern", "unexpected_death"]
    response = await amend(api, recorded["id"], {**body["screening"], "staff_concerns": None}, tag)
    assert response.status_code == 200, response.text
    kept = by_route(response.json()["referrals"])["sjr"]
    assert kept["id"] == sjr["id"]
    assert kept["status"] == "ready"
    assert kept["reasons"] == ["unexpected_death"]
    assert (await death_of(api, recorded["death_id"]))["status"] == "under_review"


async def test_overriding_a_required_route_cancels_its_referral_and_keeps_the_reason(api) -> None:
    body, recorded, tag = await record_tagged(api, death={"learning_disability": True})
    referrals = by_route(recorded["referrals"])
    assert set(referrals) == {"leder", "sjr"}

    reason = "Family declined; LeDeR notified directly by the GP"
    response = await amend(
        api,
        recorded["id"],
        {**body["screening"], "overrides": [{"route": "leder", "reason": reason}]},
        tag,
    )
    assert response.status_code == 200, response.text
    amended = response.json()
    after = by_route(amended["referrals"])
    assert after["leder"]["id"] == referrals["leder"]["id"]
    assert after["leder"]["status"] == "cancelled"
    assert after["leder"]["status_reason"]
    assert after["sjr"]["status"] == "ready"
    assert [
        (o["route"], o["reason_codes"], o["override_reason"]) for o in amended["overrides"]
    ] == [("leder", ["learning_disability"], reason)]
    outcomes = {r["route"]: r["outcome"] for r in amended["required_routes"]}
    assert outcomes == {"leder": "overridden", "sjr": "referred"}

    screening = await api.get(f"/v1/screenings/{recorded['id']}")
    assert screening.json()["overrides"][0]["override_reason"] == reason
    death = await death_of(api, recorded["death_id"])
    assert death["screening"]["overrides"][0]["route"] == "leder"
    assert death["status"] == "under_review"  # the SJR is still open


async def test_overriding_a_route_the_rules_do_not_require_is_422(api) -> None:
    body, recorded, tag = await record_tagged(api)
    response = await amend(
        api,
        recorded["id"],
        {**body["screening"], "overrides": [{"route": "leder", "reason": "Not needed"}]},
        tag,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/overrides/0/route"
    current = await api.get(f"/v1/screenings/{recorded['id']}")
    assert current.json()["version"] == 1
    assert current.json()["overrides"] == []


async def test_a_put_that_changes_nothing_makes_no_version(api, database) -> None:
    body, recorded, tag = await record_tagged(
        api, screening={"staff_concerns": "Delayed escalation"}
    )
    response = await amend(api, recorded["id"], body["screening"], tag)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.headers["etag"] == tag
    assert [r["status"] for r in response.json()["referrals"]] == ["ready"]

    versions = await api.get(f"/v1/screenings/{recorded['id']}/versions")
    assert versions.json() == []
    assert await amended_events(database, recorded["id"]) == []
    # The ETag is still good: nothing moved.
    again = await amend(api, recorded["id"], {**body["screening"], "qap_discussed": False}, tag)
    assert again.status_code == 200


async def test_the_amended_event_names_the_fields_and_never_their_values(api, database) -> None:
    body, recorded, tag = await record_tagged(api)
    concern = f"Concern {uuid.uuid4().hex}"
    first = await amend(
        api,
        recorded["id"],
        {**body["screening"], "clinical_governance_concern": concern, "qap_discussed": False},
        tag,
    )
    assert first.status_code == 200, first.text
    second = await amend(
        api,
        recorded["id"],
        {
            **body["screening"],
            "clinical_governance_concern": concern,
            "qap_discussed": False,
            "overrides": [{"route": "sjr", "reason": "Reviewed at the weekly M&M instead"}],
        },
        first.headers["etag"],
    )
    assert second.status_code == 200, second.text
    assert by_route(second.json()["referrals"])["sjr"]["status"] == "cancelled"

    events = await amended_events(database, recorded["id"])
    assert [event.changed for event in events] == [
        ["clinical_governance_concern", "qap_discussed"],
        ["overrides"],
    ]
    for event in events:
        assert event.resource_type == "screening"
        assert concern not in repr(event.changed)
        assert event.request_id


async def test_an_amendment_never_cancels_work_a_reviewer_holds(api, database) -> None:
    body, recorded, tag = await record_tagged(
        api, screening={"staff_concerns": "Delayed escalation"}
    )
    sjr = by_route(recorded["referrals"])["sjr"]
    async with database.transaction() as session:
        # A reviewer has it (the claim endpoints come later; the state is what matters here).
        await session.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(sjr["id"]))
            .values(status="in_progress", assigned_to="Dr Reviewer")
        )
    response = await amend(api, recorded["id"], {**body["screening"], "staff_concerns": None}, tag)
    assert response.status_code == 200, response.text
    held = by_route(response.json()["referrals"])["sjr"]
    assert held["status"] == "in_progress"
    assert held["assigned_to"] == "Dr Reviewer"
    assert (await death_of(api, recorded["death_id"]))["status"] == "under_review"
