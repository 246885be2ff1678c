"""The review cascade end to end through the API: SJR stage 1 -> stage 2 -> PSII, and M&M
escalation."""

from __future__ import annotations

from typing import Any

from app.auth.scopes import Scope
from tests.factories import idem, screening_body
from tests.kit.reviews import problem_sjr


async def claim(api, route: str, reviewer: str, **body: Any) -> list[dict[str, Any]]:
    response = await api.post(
        "/v1/referrals/claim",
        json={"route": route, **body},
        headers={"X-On-Behalf-Of": reviewer},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_sjr_stage_one_to_stage_two_to_psii(make_api) -> None:
    api = await make_api(
        Scope.screenings_write,
        Scope.referrals_read,
        Scope.referrals_claim,
        Scope.reviews_write,
        Scope.deaths_read,
    )
    # A specialty of its own, so that claims see only this test's referrals.
    specialty = "Cascade " + idem()["Idempotency-Key"][:8]
    body = screening_body(
        death={"specialty_at_death": specialty, "admitting_specialty": specialty},
        screening={"death_expected": False},
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (stage_one,) = recorded["referrals"]
    assert stage_one["route"] == "sjr" and stage_one["stage"] == 1

    claimed = await api.post(
        f"/v1/referrals/{stage_one['id']}/assign", json={"assigned_to": "Dr One"}
    )
    assert claimed.status_code == 200, claimed.text
    (mine,) = await claim(api, "sjr", "Dr One", specialty=specialty)
    assert mine["id"] == stage_one["id"]
    assert mine["status"] == "claimed" and mine["lease_id"]

    posted = await api.post(
        f"/v1/referrals/{mine['id']}/review",
        json={
            "lease_id": mine["lease_id"],
            "review": problem_sjr("Dr One", overall=2, avoidability=4),
        },
    )
    assert posted.status_code == 201, posted.text
    review = posted.json()
    assert review["status"] == "submitted"
    assert review["review"]["phases"][1]["rating_label"] == "Poor care"
    assert review["review"]["avoidability_label"] == "Possibly avoidable but not very likely"

    death = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    stages = {(r["route"], r["stage"]): r for r in death["referrals"]}
    assert stages[("sjr", 1)]["status"] == "completed"
    stage_two = stages[("sjr", 2)]
    assert stage_two["reasons"] == ["second_stage"]
    assert stage_two["excluded_reviewer"] == "Dr One"
    assert death["status"] == "under_review"
    assert [r["id"] for r in death["reviews"]] == [review["id"]]
    # The answer names the referral it raised (issue 18).
    assert [
        (r["id"], r["route"], r["stage"], r["reasons"]) for r in review["follow_on_referrals"]
    ] == [(stage_two["id"], "sjr", 2, ["second_stage"])]

    # The stage-1 reviewer cannot take the second review; another reviewer can.
    assert stage_two["id"] not in {
        r["id"] for r in await claim(api, "sjr", "dr one", count=50, stage=2)
    }
    taken = [
        r
        for r in await claim(api, "sjr", "Dr Two", count=50, stage=2)
        if r["id"] == stage_two["id"]
    ]
    assert len(taken) == 1
    second = await api.post(
        f"/v1/referrals/{stage_two['id']}/review",
        json={
            "lease_id": taken[0]["lease_id"],
            "review": problem_sjr("Dr Two", overall=2, avoidability=2),
        },
    )
    assert second.status_code == 201, second.text
    death = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    psii = [r for r in death["referrals"] if r["route"] == "psii"]
    assert [r["reasons"] for r in psii] == [["more_likely_than_not_avoidable"]]
    assert [r["id"] for r in second.json()["follow_on_referrals"]] == [psii[0]["id"]]
    # A read names none: the field is about what a request raised.
    read = await api.get(f"/v1/reviews/{review['id']}")
    assert read.status_code == 200 and read.json()["follow_on_referrals"] == []
    assert death["status"] == "under_review"


async def test_mm_escalation_raises_an_sjr(api) -> None:
    body = screening_body(
        death={"specialty_at_death": "General Surgery", "admitting_specialty": "General Surgery"}
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (mm,) = [r for r in recorded["referrals"] if r["route"] == "mm"]
    review = {
        "instrument": "mm",
        "meeting_date": recorded["death"]["died_on"],
        "specialty": "General Surgery",
        "presenter": "Dr Registrar",
        "outcome": "escalate_sjr",
        "learning_points": ["Earlier senior review"],
    }
    posted = await api.post(f"/v1/referrals/{mm['id']}/review", json={"review": review})
    assert posted.status_code == 201, posted.text
    death = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    sjrs = [r for r in death["referrals"] if r["route"] == "sjr"]
    assert [(r["stage"], r["reasons"], r["status"]) for r in sjrs] == [
        (1, ["mm_escalation"], "ready")
    ]


async def test_a_wrong_instrument_is_refused_and_writes_nothing(api) -> None:
    body = screening_body(screening={"death_expected": False})
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (referral,) = recorded["referrals"]
    wrong = {
        "instrument": "leder",
        "notified_at": recorded["death"]["died_at"],
        "leder_reference": "L-1",
    }
    response = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": wrong})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/review/instrument"
    death = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    assert death["reviews"] == []
    assert death["referrals"][0]["status"] == "ready"


async def test_a_retried_review_post_with_its_key_replays_instead_of_conflicting(api) -> None:
    body = screening_body(screening={"death_expected": False})
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (referral,) = recorded["referrals"]
    payload = {"review": problem_sjr("Dr Retry", overall=4, avoidability=6)}
    key = idem()
    first = await api.post(f"/v1/referrals/{referral['id']}/review", json=payload, headers=key)
    again = await api.post(f"/v1/referrals/{referral['id']}/review", json=payload, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    without_key = await api.post(f"/v1/referrals/{referral['id']}/review", json=payload)
    assert without_key.status_code == 409
    assert without_key.json()["current_status"] == "completed"


async def test_the_death_follows_when_its_only_referral_is_cancelled(api) -> None:
    body = screening_body(screening={"death_expected": False})
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (referral,) = recorded["referrals"]
    assert recorded["death"]["status"] == "under_review"
    cancelled = await api.post(
        f"/v1/referrals/{referral['id']}/cancel", json={"reason": "Duplicate of another review"}
    )
    assert cancelled.status_code == 200, cancelled.text
    death = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    assert death["status"] == "screened"
    assert death["version"] == recorded["death"]["version"] + 1
