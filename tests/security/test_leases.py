"""Issue 11, defect 1: a lease was not bound to its holder. Any client with `referrals:read`
saw a referral's `lease_id`, and any other client with the claim or review scopes could then
renew, release, hold, decline or post the review with it: client B posted an SJR on client
A's claimed referral and completed it. Now a lease id shows only to the client holding it, a
lease presented by anyone else is refused exactly as a made-up one is (409 `lease-conflict`),
and the refusal is audited."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from app.auth.scopes import Scope
from app.models import AuditEvent, Referral, Review
from tests.factories import idem, screening_body
from tests.kit.feed import drain_until

WORKER = (Scope.referrals_read, Scope.referrals_claim, Scope.reviews_write, Scope.deaths_read)
PROBLEM_JSON = "application/problem+json"


def sjr_review(reviewer: str) -> dict[str, Any]:
    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer, "role": "Consultant"},
        "phases": [
            {"phase": "admission_initial", "rating": 4, "narrative": "Seen promptly."},
            {"phase": "overall", "rating": 4, "narrative": "Good care throughout."},
        ],
        "quality_of_records": 4,
        "avoidability": 6,
        "problems_in_care": [],
        "patient_safety_incident_suspected": False,
    }


async def claimed_sjr(api: Any, claimer: Any, **headers: str) -> dict[str, Any]:
    """A fresh unexpected death's SJR referral, claimed by ``claimer`` (in a specialty of its
    own, so that the claim takes exactly this one)."""
    specialty = f"Leases {uuid.uuid4().hex[:10]}"
    body = screening_body(
        death={"specialty_at_death": specialty, "admitting_specialty": specialty},
        screening={"death_expected": False},
    )
    recorded = await api.post("/v1/screenings", json=body, headers=idem())
    assert recorded.status_code == 201, recorded.text
    (referral,) = recorded.json()["referrals"]
    response = await claimer.post(
        "/v1/referrals/claim", json={"route": "sjr", "specialty": specialty}, headers=headers
    )
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["id"] == referral["id"] and item["lease_id"] is not None
    return dict(item)


def lease_refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith("/lease-conflict"), problem
    return problem


async def attempts(attacker: Any, referral_id: str, lease_id: str, **headers: str) -> list[Any]:
    """Everything a lease lets its holder do, tried with ``lease_id``."""
    url = f"/v1/referrals/{referral_id}"
    return [
        await attacker.post(f"{url}/renew", json={"lease_id": lease_id}, headers=headers),
        await attacker.post(f"{url}/release", json={"lease_id": lease_id}, headers=headers),
        await attacker.post(
            f"{url}/hold", json={"reason": "mine now", "lease_id": lease_id}, headers=headers
        ),
        await attacker.post(
            f"{url}/decline", json={"reason": "mine now", "lease_id": lease_id}, headers=headers
        ),
        await attacker.post(
            f"{url}/review",
            json={"lease_id": lease_id, "review": sjr_review("Dr Intruder")},
            headers=headers,
        ),
        await attacker.post(
            f"{url}/review",
            json={"submit": False, "lease_id": lease_id, "review": {"instrument": "sjr"}},
            headers=headers,
        ),
    ]


async def test_another_clients_lease_cannot_be_used(api, make_api, database) -> None:
    holder, intruder = await make_api(*WORKER), await make_api(*WORKER)
    item = await claimed_sjr(api, holder)
    referral_id, lease = item["id"], item["lease_id"]

    stolen = await attempts(intruder, referral_id, lease)
    made_up = await attempts(intruder, referral_id, str(uuid.uuid4()))
    # The stolen lease is refused exactly as a made-up one: it confirms nothing.
    for with_stolen, with_made_up in zip(stolen, made_up, strict=True):
        assert lease_refused(with_stolen) == lease_refused(with_made_up)
        assert with_stolen.json()["current_status"] == "claimed"

    # Nothing changed: still claimed by the holder, no review, the same lease.
    async with database.transaction() as session:
        row = await session.get_one(Referral, uuid.UUID(referral_id))
        assert (row.status, row.lease_id, row.leased_by) == (
            "ready",
            uuid.UUID(lease),
            holder.client_id,
        )
        assert await session.scalar(select(Review.id).where(Review.referral_id == row.id)) is None
        refusals = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.resource_id == row.id,
                    AuditEvent.action == "referral.lease_refused",
                )
            )
        ).all()
    # Each refusal is audited, with the intruder's client and outcome `refused`.
    assert len(refusals) == len(stolen) + len(made_up)
    assert {(a.client_id, a.outcome, a.death_id) for a in refusals} == {
        (intruder.client_id, "refused", row.death_id)
    }

    # The holder's lease still works, to the end: the review completes the referral.
    done = await holder.post(
        f"/v1/referrals/{referral_id}/review",
        json={"lease_id": lease, "review": sjr_review("Dr Holder")},
    )
    assert done.status_code == 201, done.text
    assert (await holder.get(f"/v1/referrals/{referral_id}")).json()["status"] == "completed"


async def test_a_lease_id_shows_only_to_its_holder(api, make_api) -> None:
    holder, other = await make_api(*WORKER), await make_api(*WORKER, Scope.events_read)
    commissioner = await make_api(pseudonymised=True)
    feed = await other.get("/v1/events", params={"start": "now"})
    admin_feed = await api.get("/v1/events", params={"start": "now"})
    item = await claimed_sjr(api, holder)
    referral_id, lease, death_id = item["id"], item["lease_id"], item["death_id"]

    mine = await holder.get(f"/v1/referrals/{referral_id}")
    assert mine.json()["lease_id"] == lease
    holder_death = await holder.get(f"/v1/deaths/{death_id}")
    assert [r["lease_id"] for r in holder_death.json()["referrals"]] == [lease]

    reads = [
        f"/v1/referrals/{referral_id}",
        f"/v1/referrals?death_id={death_id}",
        "/v1/referrals?status=claimed&limit=200",
        f"/v1/referrals/{referral_id}/history",
        f"/v1/deaths/{death_id}",
        f"/fhir/r4/Task/{referral_id}",
        f"/fhir/r4/Task?patient={death_id}",
    ]
    for reader in (other, api, commissioner):
        for path in reads:
            response = await reader.get(path)
            assert response.status_code == 200, (path, response.text)
            assert lease not in response.text, path
            assert lease.replace("-", "") not in response.text, path
    shown = (await other.get(f"/v1/referrals/{referral_id}")).json()
    # Everything else about the claim still shows: who it is for, until when.
    assert shown["status"] == "claimed" and shown["lease_id"] is None
    assert shown["lease_expires_at"] == item["lease_expires_at"]
    pseudonymised = (await commissioner.get(f"/v1/referrals/{referral_id}")).json()
    assert "lease_id" not in pseudonymised and pseudonymised["status"] == "claimed"
    # The change feed names the fields that changed, never a lease's value.
    for reader, start in ((other, feed), (api, admin_feed)):
        events, _ = await drain_until(
            reader,
            start.json()["next_cursor"],
            lambda seen: any(e["type"] == "referral.claimed" for e in seen),
        )
        assert lease not in json.dumps(events)


async def test_a_lease_is_bound_to_the_person_it_was_claimed_for(api, make_api) -> None:
    """One system acting for many people (X-On-Behalf-Of): a lease claimed for Dr Ames cannot
    be used by the same system acting for Dr Bell; for Dr Ames, for the person who claimed it,
    or for nobody in particular (the system itself) it can."""
    system = await make_api(*WORKER)
    item = await claimed_sjr(api, system, **{"X-On-Behalf-Of": "Dr Ames"})
    url, lease = f"/v1/referrals/{item['id']}", item["lease_id"]
    assert item["leased_to"] == "Dr Ames"

    for refused in await attempts(system, item["id"], lease, **{"X-On-Behalf-Of": "Dr Bell"}):
        lease_refused(refused)
    for person in ({"X-On-Behalf-Of": "dr ames"}, {}):
        renewed = await system.post(f"{url}/renew", json={"lease_id": lease}, headers=person)
        assert renewed.status_code == 200, renewed.text

    # Claimed by the system for nobody in particular: any person it acts for may carry on.
    other = await claimed_sjr(api, system)
    assert other["leased_to"] is None
    for person in ("Dr Anyone", "Coordinator Kim"):
        renewed = await system.post(
            f"/v1/referrals/{other['id']}/renew",
            json={"lease_id": other["lease_id"]},
            headers={"X-On-Behalf-Of": person},
        )
        assert renewed.status_code == 200, renewed.text


async def test_a_coordinator_claim_for_a_reviewer_binds_both(api, make_api) -> None:
    system = await make_api(*WORKER)
    specialty = f"Leases {uuid.uuid4().hex[:10]}"
    body = screening_body(
        death={"specialty_at_death": specialty, "admitting_specialty": specialty},
        screening={"death_expected": False},
    )
    assert (await api.post("/v1/screenings", json=body, headers=idem())).status_code == 201
    taken = await system.post(
        "/v1/referrals/claim",
        json={"route": "sjr", "specialty": specialty, "reviewer": "Dr Cole"},
        headers={"X-On-Behalf-Of": "Coordinator Kim"},
    )
    (item,) = taken.json()["items"]
    url, lease = f"/v1/referrals/{item['id']}", item["lease_id"]
    for person, status in (("Coordinator Kim", 200), ("Dr Cole", 200), ("Dr Drake", 409)):
        renewed = await system.post(
            f"{url}/renew", json={"lease_id": lease}, headers={"X-On-Behalf-Of": person}
        )
        assert renewed.status_code == status, (person, renewed.text)


async def test_the_override_paths_still_work_on_a_claimed_referral(api, make_api) -> None:
    """Assign and cancel take no lease (a coordinator's override, as documented); the holder's
    lease ends with the cancellation."""
    # referrals:read too: a transition answers the referral only to a client that may read it.
    holder = await make_api(*WORKER)
    coordinator = await make_api(Scope.referrals_claim, Scope.referrals_read)
    item = await claimed_sjr(api, holder)
    url = f"/v1/referrals/{item['id']}"
    assigned = await coordinator.post(f"{url}/assign", json={"assigned_to": "Dr Else"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["lease_id"] is None  # not the coordinator's lease to see
    cancelled = await coordinator.post(f"{url}/cancel", json={"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    ended = await holder.post(f"{url}/renew", json={"lease_id": item["lease_id"]})
    assert ended.status_code == 409 and ended.json()["current_status"] == "cancelled"
