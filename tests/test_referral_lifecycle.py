"""The referral lifecycle by example, through the API: claims and their bounds, leases (renew,
release, a wrong or expired lease), assignment and the stage-2 exclusion, decline, hold,
resume, cancel, the transition history, the queue's view of leases, what is overdue, the
ETag, and the audit rows of claims.

Other tests share the database and create SJR referrals too, so every test here works in a
specialty of its own and claims only within it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.auth.scopes import Scope
from app.models import AuditEvent, Referral
from tests.factories import record_unexpected
from tests.kit.reviews import problem_sjr

PROBLEM_JSON = "application/problem+json"


def unique_specialty() -> str:
    return f"Lifecycle {uuid.uuid4().hex[:10]}"


async def sjrs(api: Any, specialty: str, count: int) -> list[dict[str, Any]]:
    """``count`` stage-1 SJR referrals in the specialty, one per unexpected death."""
    made = []
    for _ in range(count):
        (referral,) = (await record_unexpected(api, specialty))["referrals"]
        assert (referral["route"], referral["stage"]) == ("sjr", 1)
        made.append(referral)
    return made


async def claim(
    api: Any, specialty: str, reviewer: str | None = None, **body: Any
) -> list[dict[str, Any]]:
    response = await claim_response(api, specialty, reviewer, **body)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def claim_response(api: Any, specialty: str, reviewer: str | None = None, **body: Any):
    headers = {"X-On-Behalf-Of": reviewer} if reviewer else {}
    return await api.post(
        "/v1/referrals/claim",
        json={"route": "sjr", "specialty": specialty, **body},
        headers=headers,
    )


async def read(api: Any, referral_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/referrals/{referral_id}")
    assert response.status_code == 200, response.text
    referral: dict[str, Any] = response.json()
    return referral


async def listed(api: Any, **params: Any) -> list[str]:
    response = await api.get("/v1/referrals", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def store(database: Any, referral_id: str, **values: Any) -> None:
    """Change a referral's row directly (a lease's expiry, a due date): no sleeping."""
    async with database.transaction() as session:
        await session.execute(
            update(Referral).where(Referral.id == uuid.UUID(referral_id)).values(**values)
        )


async def expire(database: Any, referral_id: str) -> None:
    await store(database, referral_id, lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))


def refused(response: Any, current_status: str, slug: str | None = None) -> None:
    """A 409 problem that names the referral's current state."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert problem["current_status"] == current_status
    if slug is not None:
        assert problem["type"].endswith(f"/{slug}")


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


# -- claims -------------------------------------------------------------------------------------


async def test_a_claim_leases_referrals_in_queue_order(api, database) -> None:
    specialty = unique_specialty()
    first, second, third = await sjrs(api, specialty, 3)
    now = datetime.now(UTC)
    # Queue order: priority (1 first), then due date, then creation.
    await store(database, first["id"], due_at=now + timedelta(days=30))
    await store(database, second["id"], due_at=now + timedelta(days=10))
    await store(database, third["id"], due_at=now + timedelta(days=40), priority=1)

    before = datetime.now(UTC)
    taken = await claim(api, specialty, "Dr Queue", count=2, lease_seconds=600)
    after = datetime.now(UTC)
    assert [r["id"] for r in taken] == [third["id"], second["id"]]
    assert len({r["lease_id"] for r in taken}) == 2
    for referral in taken:
        assert referral["status"] == "claimed"
        assert referral["leased_to"] == "Dr Queue"
        claimed_at, expires = at(referral["claimed_at"]), at(referral["lease_expires_at"])
        assert before - timedelta(seconds=1) <= claimed_at <= after
        assert expires - claimed_at == timedelta(seconds=600)

    # What is left is the one not yet taken; then nothing.
    assert [r["id"] for r in await claim(api, specialty, "Dr Queue", count=5)] == [first["id"]]
    assert await claim(api, specialty, "Dr Queue", count=5) == []
    shown = await read(api, third["id"])
    assert (shown["status"], shown["lease_id"]) == ("claimed", taken[0]["lease_id"])


async def test_nothing_claimable_is_an_empty_list(api) -> None:
    specialty = unique_specialty()
    assert await claim(api, specialty, "Dr Idle", count=10) == []
    (referral,) = await sjrs(api, specialty, 1)
    await api.post(f"/v1/referrals/{referral['id']}/cancel", json={"reason": "duplicate"})
    assert await claim(api, specialty, "Dr Idle", count=10) == []
    mm_only = await claim(api, specialty, "Dr Idle", route="mm")
    assert mm_only == []


async def test_the_claim_count_is_bounded_by_configuration(app_factory, make_api, database) -> None:
    _, http = await app_factory(claim_max_count=3)
    api = await make_api(
        Scope.screenings_write, Scope.deaths_read, Scope.referrals_claim, client=http
    )
    specialty = unique_specialty()
    referrals = await sjrs(api, specialty, 4)

    too_many = await claim_response(api, specialty, "Dr Bound", count=4)
    assert too_many.status_code == 422, too_many.text
    assert too_many.headers["content-type"].startswith(PROBLEM_JSON)
    assert [e["pointer"] for e in too_many.json()["errors"]] == ["/count"]
    none = await claim_response(api, specialty, "Dr Bound", count=0)
    assert none.status_code == 422
    assert [e["pointer"] for e in none.json()["errors"]] == ["/count"]
    # Refused claims leased nothing.
    async with database.transaction() as session:
        leased = await session.scalars(
            select(Referral.lease_id).where(
                Referral.id.in_([uuid.UUID(r["id"]) for r in referrals])
            )
        )
        assert set(leased.all()) == {None}

    taken = await claim(api, specialty, "Dr Bound", count=3)
    assert len(taken) == 3


async def test_the_lease_length_is_bounded(api) -> None:
    specialty = unique_specialty()
    (referral,) = await sjrs(api, specialty, 1)
    for seconds in (59, 86_401):
        response = await claim_response(api, specialty, "Dr Long", lease_seconds=seconds)
        assert response.status_code == 422, response.text
        assert [e["pointer"] for e in response.json()["errors"]] == ["/lease_seconds"]
    assert (await read(api, referral["id"]))["status"] == "ready"

    (taken,) = await claim(api, specialty, "Dr Long", lease_seconds=86_400)
    assert at(taken["lease_expires_at"]) - at(taken["claimed_at"]) == timedelta(days=1)
    renewed = await api.post(
        f"/v1/referrals/{taken['id']}/renew",
        json={"lease_id": taken["lease_id"], "lease_seconds": 86_401},
    )
    assert renewed.status_code == 422, renewed.text
    assert (await read(api, taken["id"]))["lease_expires_at"] == taken["lease_expires_at"]


async def test_claiming_needs_the_claim_scope(make_api) -> None:
    reader = await make_api(Scope.referrals_read)
    response = await reader.post("/v1/referrals/claim", json={"route": "sjr"})
    assert response.status_code == 403


# -- leases -------------------------------------------------------------------------------------


async def test_renew_extends_the_lease(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Renew", lease_seconds=120)
    before = datetime.now(UTC)
    response = await api.post(
        f"/v1/referrals/{taken['id']}/renew",
        json={"lease_id": taken["lease_id"], "lease_seconds": 3600},
    )
    assert response.status_code == 200, response.text
    renewed = response.json()
    assert renewed["lease_id"] == taken["lease_id"]
    assert renewed["status"] == "claimed"
    expires = at(renewed["lease_expires_at"])
    assert expires > at(taken["lease_expires_at"])
    assert expires >= before + timedelta(seconds=3599)
    # Without a length, the configured default (30 minutes) from now.
    again = await api.post(
        f"/v1/referrals/{taken['id']}/renew", json={"lease_id": taken["lease_id"]}
    )
    assert again.status_code == 200, again.text
    default = at(again.json()["lease_expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=29) < default <= timedelta(minutes=30)


async def test_release_returns_the_referral_to_its_queue(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Release")
    response = await api.post(
        f"/v1/referrals/{taken['id']}/release", json={"lease_id": taken["lease_id"]}
    )
    assert response.status_code == 200, response.text
    released = response.json()
    assert released["status"] == "ready"
    assert released["lease_id"] is None and released["leased_to"] is None
    assert released["lease_expires_at"] is None
    # Anyone can take it now; the old lease is dead.
    (again,) = await claim(api, specialty, "Dr Other")
    assert again["id"] == taken["id"] and again["lease_id"] != taken["lease_id"]
    stale = await api.post(
        f"/v1/referrals/{taken['id']}/release", json={"lease_id": taken["lease_id"]}
    )
    refused(stale, "claimed", "lease-conflict")


async def test_a_wrong_lease_is_a_conflict_naming_the_current_state(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Right")
    wrong = {"lease_id": str(uuid.uuid4())}
    for action in ("renew", "release"):
        refused(
            await api.post(f"/v1/referrals/{taken['id']}/{action}", json=wrong),
            "claimed",
            "lease-conflict",
        )
    review = await api.post(
        f"/v1/referrals/{taken['id']}/review",
        json={**wrong, "review": problem_sjr("Dr Wrong", overall=4, avoidability=6)},
    )
    refused(review, "claimed", "lease-conflict")
    # The lease holder is untouched.
    shown = await read(api, taken["id"])
    assert (shown["lease_id"], shown["lease_expires_at"]) == (
        taken["lease_id"],
        taken["lease_expires_at"],
    )
    missing = await api.post(f"/v1/referrals/{uuid.uuid4()}/renew", json=wrong)
    assert missing.status_code == 404


async def test_an_expired_lease_frees_the_referral_for_another_reviewer(api, database) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (old,) = await claim(api, specialty, "Dr Slow")
    await expire(database, old["id"])

    shown = await read(api, old["id"])
    assert shown["status"] == "ready"
    assert shown["lease_id"] is None and shown["leased_to"] is None
    assert await listed(api, specialty=specialty, status="ready") == [old["id"]]
    assert await listed(api, specialty=specialty, status="claimed") == []
    late = await api.post(f"/v1/referrals/{old['id']}/renew", json={"lease_id": old["lease_id"]})
    refused(late, "ready", "lease-conflict")

    (new,) = await claim(api, specialty, "Dr Quick")
    assert new["id"] == old["id"] and new["lease_id"] != old["lease_id"]
    assert new["leased_to"] == "Dr Quick"
    stale = {"lease_id": old["lease_id"]}
    for action in ("renew", "release"):
        refused(await api.post(f"/v1/referrals/{old['id']}/{action}", json=stale), "claimed")
    review = await api.post(
        f"/v1/referrals/{old['id']}/review",
        json={**stale, "review": problem_sjr("Dr Slow", overall=4, avoidability=6)},
    )
    refused(review, "claimed", "lease-conflict")

    done = await api.post(
        f"/v1/referrals/{old['id']}/review",
        json={
            "lease_id": new["lease_id"],
            "review": problem_sjr("Dr Quick", overall=4, avoidability=6),
        },
    )
    assert done.status_code == 201, done.text
    assert (await read(api, old["id"]))["status"] == "completed"


# -- assignment and the stage-2 exclusion --------------------------------------------------------


async def test_an_assigned_referral_is_claimable_only_by_its_assignee(api) -> None:
    specialty = unique_specialty()
    mine, open_one = await sjrs(api, specialty, 2)
    response = await api.post(
        f"/v1/referrals/{mine['id']}/assign", json={"assigned_to": "Dr Assigned"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["assigned_to"] == "Dr Assigned"
    assert await listed(api, specialty=specialty, assigned_to="Dr Assigned") == [mine["id"]]
    # The list, like the claim, does not mind letter case.
    assert await listed(api, specialty=specialty, assigned_to="dr ASSIGNED") == [mine["id"]]
    assert await listed(api, specialty=specialty, assigned_to="Dr Assigne") == []

    others = await claim(api, specialty, "Dr Other", count=5)
    assert [r["id"] for r in others] == [open_one["id"]]
    assert await claim(api, specialty, None, count=5) == []  # no reviewer named
    (taken,) = await claim(api, specialty, "DR ASSIGNED", count=5)  # case does not matter
    assert taken["id"] == mine["id"] and taken["leased_to"] == "DR ASSIGNED"

    # Unassigned, it is anyone's again.
    await api.post(f"/v1/referrals/{mine['id']}/release", json={"lease_id": taken["lease_id"]})
    unassigned = await api.post(f"/v1/referrals/{mine['id']}/assign", json={"assigned_to": None})
    assert unassigned.status_code == 200 and unassigned.json()["assigned_to"] is None
    assert [r["id"] for r in await claim(api, specialty, None)] == [mine["id"]]


async def test_the_stage_one_reviewer_cannot_take_the_stage_two_review(api) -> None:
    specialty = unique_specialty()
    (stage_one,) = await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr First")
    posted = await api.post(
        f"/v1/referrals/{stage_one['id']}/review",
        json={
            "lease_id": taken["lease_id"],
            "review": problem_sjr("Dr First", overall=2, avoidability=4),
        },
    )
    assert posted.status_code == 201, posted.text
    (stage_two,) = await listed(api, specialty=specialty, stage=2)
    assert await listed(api, specialty=specialty, stage=1) == [stage_one["id"]]
    assert (await read(api, stage_two))["excluded_reviewer"] == "Dr First"

    assert await claim(api, specialty, "dr first", count=5) == []
    assert await claim(api, specialty, "DR FIRST", stage=2) == []
    assert await claim(api, specialty, None, stage=2) == []
    assign = await api.post(f"/v1/referrals/{stage_two}/assign", json={"assigned_to": "dr first"})
    refused(assign, "ready")
    # Nor post it without claiming it, named in the review or on whose behalf it is sent.
    direct = await api.post(
        f"/v1/referrals/{stage_two}/review",
        json={"review": problem_sjr("DR FIRST", overall=3, avoidability=5)},
    )
    refused(direct, "ready", "transition-not-allowed")
    draft = await api.post(
        f"/v1/referrals/{stage_two}/review",
        json={"submit": False, "review": {"instrument": "sjr"}},
        headers={"X-On-Behalf-Of": "Dr First"},
    )
    refused(draft, "ready", "transition-not-allowed")
    death = (await api.get(f"/v1/deaths/{stage_one['death_id']}")).json()
    assert [review["stage"] for review in death["reviews"]] == [1]

    (second,) = await claim(api, specialty, "Dr Second", stage=2)
    assert second["id"] == stage_two
    done = await api.post(
        f"/v1/referrals/{stage_two}/review",
        json={
            "lease_id": second["lease_id"],
            "review": problem_sjr("Dr Second", overall=3, avoidability=5),
        },
    )
    assert done.status_code == 201, done.text


# -- decline, hold, resume, cancel ---------------------------------------------------------------


async def test_decline_needs_the_lease_of_a_claimed_referral(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Decline")
    url = f"/v1/referrals/{taken['id']}/decline"
    refused(await api.post(url, json={"reason": "not mine"}), "claimed", "lease-conflict")
    wrong = {"reason": "not mine", "lease_id": str(uuid.uuid4())}
    refused(await api.post(url, json=wrong), "claimed", "lease-conflict")

    response = await api.post(url, json={"reason": "not mine", "lease_id": taken["lease_id"]})
    assert response.status_code == 200, response.text
    declined = response.json()
    assert (declined["status"], declined["status_reason"]) == ("declined", "not mine")
    assert declined["lease_id"] is None
    refused(await api.post(url, json={"reason": "again"}), "declined", "transition-not-allowed")
    assert await claim(api, specialty, "Dr Decline") == []


async def test_hold_needs_the_lease_and_resume_returns_to_ready(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Hold")
    url = f"/v1/referrals/{taken['id']}"
    refused(await api.post(f"{url}/hold", json={"reason": "awaiting inquest"}), "claimed")
    response = await api.post(
        f"{url}/hold", json={"reason": "awaiting inquest", "lease_id": taken["lease_id"]}
    )
    assert response.status_code == 200, response.text
    held = response.json()
    assert (held["status"], held["status_reason"]) == ("on_hold", "awaiting inquest")
    assert held["lease_id"] is None
    assert await claim(api, specialty, "Dr Hold") == []  # on hold is not in the queue
    refused(await api.post(f"{url}/hold", json={"reason": "twice"}), "on_hold")

    resumed = await api.post(f"{url}/resume", json={})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "ready"
    refused(await api.post(f"{url}/resume", json={}), "ready", "transition-not-allowed")
    assert [r["id"] for r in await claim(api, specialty, "Dr Hold")] == [taken["id"]]


async def test_resume_returns_a_drafted_referral_to_in_progress(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Draft")
    draft = await api.post(
        f"/v1/referrals/{taken['id']}/review",
        json={
            "lease_id": taken["lease_id"],
            "submit": False,
            "review": {"instrument": "sjr", "phases": [{"phase": "ongoing", "rating": 3}]},
        },
    )
    assert draft.status_code == 201, draft.text
    assert (await read(api, taken["id"]))["status"] == "in_progress"

    url = f"/v1/referrals/{taken['id']}"
    held = await api.post(f"{url}/hold", json={"reason": "inquest", "lease_id": taken["lease_id"]})
    assert held.status_code == 200 and held.json()["status"] == "on_hold"
    resumed = await api.post(f"{url}/resume", json={})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "in_progress"
    assert resumed.json()["lease_id"] is None
    # In progress and unleased, it can be claimed to finish the draft.
    assert [r["id"] for r in await claim(api, specialty, "Dr Draft")] == [taken["id"]]


async def test_cancel_is_final(api) -> None:
    specialty = unique_specialty()
    await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Cancel")
    url = f"/v1/referrals/{taken['id']}"
    response = await api.post(f"{url}/cancel", json={"reason": "duplicate referral"})
    assert response.status_code == 200, response.text  # no lease needed to cancel
    cancelled = response.json()
    assert (cancelled["status"], cancelled["status_reason"]) == ("cancelled", "duplicate referral")
    assert cancelled["lease_id"] is None

    assert await claim(api, specialty, "Dr Cancel", count=5) == []
    review = await api.post(
        f"{url}/review", json={"review": problem_sjr("Dr Cancel", overall=3, avoidability=5)}
    )
    refused(review, "cancelled", "transition-not-allowed")
    assert "cancelled" in review.json()["detail"]
    for action, body in (
        ("resume", {}),
        ("cancel", {"reason": "again"}),
        ("decline", {"reason": "late"}),
        ("hold", {"reason": "late"}),
        ("assign", {"assigned_to": "Dr Late"}),
        ("renew", {"lease_id": taken["lease_id"]}),
        ("release", {"lease_id": taken["lease_id"]}),
    ):
        refused(await api.post(f"{url}/{action}", json=body), "cancelled")
    assert (await read(api, taken["id"]))["status"] == "cancelled"


# -- history, queue views, overdue, ETag, audit ---------------------------------------------------


async def test_the_history_lists_each_transition_with_who_when_and_why(api, make_api) -> None:
    specialty = unique_specialty()
    (referral,) = await sjrs(api, specialty, 1)
    coordinator = await make_api(Scope.referrals_claim)
    url = f"/v1/referrals/{referral['id']}"
    start = datetime.now(UTC)

    taken = await api.post(
        "/v1/referrals/claim",
        json={"route": "sjr", "specialty": specialty, "reviewer": "Dr History"},
        headers={"X-On-Behalf-Of": "Coordinator Kim"},
    )
    lease = taken.json()["items"][0]["lease_id"]
    assert (await api.post(f"{url}/renew", json={"lease_id": lease})).status_code == 200
    assert (await api.post(f"{url}/release", json={"lease_id": lease})).status_code == 200
    headers = {"X-On-Behalf-Of": "Coordinator Lee"}
    calls: tuple[tuple[str, dict[str, Any]], ...] = (
        ("assign", {"assigned_to": "Dr History"}),
        ("hold", {"reason": "awaiting inquest"}),
        ("resume", {}),
        ("cancel", {"reason": "duplicate referral"}),
    )
    for action, body in calls:
        response = await coordinator.post(f"{url}/{action}", json=body, headers=headers)
        assert response.status_code == 200, response.text
    refused(await api.post(f"{url}/resume", json={}), "cancelled")  # refused: not recorded
    end = datetime.now(UTC)

    response = await api.get(f"{url}/history")
    assert response.status_code == 200, response.text
    history = response.json()
    me, them = str(api.client_id), str(coordinator.client_id)
    assert [
        (
            h["action"],
            h["from_status"],
            h["to_status"],
            h["reason"],
            h["reviewer"],
            h["client_id"],
            h["on_behalf_of"],
        )
        for h in history
    ] == [
        ("claim", "ready", "claimed", None, "Dr History", me, "Coordinator Kim"),
        ("renew", "claimed", "claimed", None, "Dr History", me, None),
        ("release", "claimed", "ready", None, "Dr History", me, None),
        ("assign", "ready", "ready", None, "Dr History", them, "Coordinator Lee"),
        (
            "hold",
            "ready",
            "on_hold",
            "awaiting inquest",
            "Coordinator Lee",
            them,
            "Coordinator Lee",
        ),
        ("resume", "on_hold", "ready", None, "Coordinator Lee", them, "Coordinator Lee"),
        (
            "cancel",
            "ready",
            "cancelled",
            "duplicate referral",
            "Coordinator Lee",
            them,
            "Coordinator Lee",
        ),
    ]
    moments = [at(h["occurred_at"]) for h in history]
    assert moments == sorted(moments)
    assert start - timedelta(seconds=1) <= moments[0] and moments[-1] <= end
    assert (await api.get(f"/v1/referrals/{uuid.uuid4()}/history")).status_code == 404


async def test_the_status_filter_reflects_leases(api, database) -> None:
    specialty = unique_specialty()
    first, second, third = await sjrs(api, specialty, 3)
    (claimed,) = await claim(api, specialty, "Dr Filter")
    assert claimed["id"] == first["id"]
    draft = await api.post(
        f"/v1/referrals/{second['id']}/review",
        json={"submit": False, "review": {"instrument": "sjr"}},
    )
    assert draft.status_code == 201, draft.text

    assert await listed(api, specialty=specialty, status="claimed") == [first["id"]]
    assert await listed(api, specialty=specialty, status="in_progress") == [second["id"]]
    assert await listed(api, specialty=specialty, status="ready") == [third["id"]]

    # A lease on in-progress work leaves it in progress; an expired lease reads as ready.
    taken = await claim(api, specialty, "Dr Filter", count=5)
    assert [(r["id"], r["status"]) for r in taken] == [
        (second["id"], "in_progress"),
        (third["id"], "claimed"),
    ]
    assert await listed(api, specialty=specialty, status="in_progress") == [second["id"]]
    assert await listed(api, specialty=specialty, status="claimed") == [first["id"], third["id"]]
    assert await listed(api, specialty=specialty, status="ready") == []
    await expire(database, first["id"])
    assert await listed(api, specialty=specialty, status="claimed") == [third["id"]]
    assert await listed(api, specialty=specialty, status="ready") == [first["id"]]


async def test_overdue_referrals_are_counted_by_route_and_specialty(api, database) -> None:
    specialty = unique_specialty()
    late, later, cancelled, on_time = await sjrs(api, specialty, 4)
    coroner = (
        await record_unexpected(
            api,
            specialty,
            death_expected=True,
            coroner_notified=True,
            coroner_reason="cause_unknown",
        )
    )["referrals"]
    (coroner_referral,) = coroner
    assert coroner_referral["route"] == "coroner"
    now = datetime.now(UTC)
    await store(database, late["id"], due_at=now - timedelta(days=3))
    await store(database, later["id"], due_at=now - timedelta(days=1))
    await store(database, cancelled["id"], due_at=now - timedelta(days=9))
    await store(database, coroner_referral["id"], due_at=now - timedelta(days=2))
    await api.post(f"/v1/referrals/{cancelled['id']}/cancel", json={"reason": "duplicate"})
    (taken,) = await claim(api, specialty, "Dr Late")  # claimed work is still late
    assert taken["id"] == late["id"]

    response = await api.get("/v1/referrals/overdue")
    assert response.status_code == 200, response.text
    summary = response.json()
    mine = {
        g["route"]: (g["overdue"], at(g["oldest_due_at"]))
        for g in summary["groups"]
        if g["specialty"] == specialty
    }
    assert set(mine) == {"sjr", "coroner"}
    assert mine["sjr"][0] == 2
    assert abs(mine["sjr"][1] - (now - timedelta(days=3))) < timedelta(seconds=1)
    assert mine["coroner"][0] == 1
    assert summary["total"] == sum(g["overdue"] for g in summary["groups"])
    assert abs(at(summary["as_of"]) - datetime.now(UTC)) < timedelta(minutes=1)

    overdue = await listed(api, specialty=specialty, overdue="true")
    assert set(overdue) == {late["id"], later["id"], coroner_referral["id"]}
    assert on_time["id"] in await listed(api, specialty=specialty, overdue="false")


async def test_a_referral_has_an_etag_that_changes_with_it(api) -> None:
    specialty = unique_specialty()
    (referral,) = await sjrs(api, specialty, 1)
    url = f"/v1/referrals/{referral['id']}"
    first = await api.get(url)
    tag = first.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    assert (await api.get(url)).headers["etag"] == tag  # a read changes nothing

    (taken,) = await claim(api, specialty, "Dr Tag")
    claimed_tag = (await api.get(url)).headers["etag"]
    assert claimed_tag != tag
    renewed = await api.post(f"{url}/renew", json={"lease_id": taken["lease_id"]})
    assert renewed.headers["etag"] not in {tag, claimed_tag}
    assert (await api.get(url)).headers["etag"] == renewed.headers["etag"]
    refused(await api.post(f"{url}/resume", json={}), "claimed")
    assert (await api.get(url)).headers["etag"] == renewed.headers["etag"]


async def test_a_claim_is_audited_and_a_refused_release_is_not(api, database) -> None:
    specialty = unique_specialty()
    (referral,) = await sjrs(api, specialty, 1)
    (taken,) = await claim(api, specialty, "Dr Audited")
    wrong = await api.post(
        f"/v1/referrals/{taken['id']}/release", json={"lease_id": str(uuid.uuid4())}
    )
    assert wrong.status_code == 409
    async with database.transaction() as session:
        rows = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.resource_id == uuid.UUID(referral["id"]))
            )
        ).all()
    claims = [row for row in rows if row.action == "referral.claim"]
    assert len(claims) == 1
    (row,) = claims
    assert row.client_id == api.client_id
    assert row.on_behalf_of == "Dr Audited"
    assert str(row.death_id) == referral["death_id"]
    assert row.resource_type == "referral"
    assert [r for r in rows if r.action == "referral.release"] == []
