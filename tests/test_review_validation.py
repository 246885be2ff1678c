"""Each review instrument's validation through POST /v1/referrals/{id}/review: every refusal is
a 4xx problem that points at the field (or names the referral's state), and nothing is
written: no review, the referral as it was, no event, no audit row, no transition."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.kit.id_lists import names
from app.models import (
    AuditEvent,
    Death,
    OutboxEvent,
    Referral,
    ReferralTransition,
    Review,
)
from tests.kit.reviews import (
    claim_one,
    complete_sjr,
    external_review,
    leder_review,
    mm_review,
    refer,
)

PROBLEM_JSON = "application/problem+json"


async def written(database: Any, referral_id: str) -> dict[str, Any]:
    """Everything a review post could leave behind for this referral and its death."""
    rid = uuid.UUID(referral_id)
    async with database.transaction() as session:
        referral = await session.get_one(Referral, rid)
        death = await session.get_one(Death, referral.death_id)

        async def count(model: Any, *where: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)))

        return {
            "reviews": await count(Review, Review.death_id == death.id),
            "referrals": await count(Referral, Referral.death_id == death.id),
            "referral": (
                referral.status,
                referral.version,
                referral.lease_id,
                referral.lease_expires_at,
                referral.completed_at,
            ),
            "death": (death.status, death.version),
            "events": await count(OutboxEvent, OutboxEvent.death_id == death.id),
            # A refused lease is audited (outcome `refused`): that row records the refusal,
            # it is not something the post wrote.
            "audit": await count(
                AuditEvent, names(AuditEvent.death_ids, death.id), AuditEvent.outcome == "success"
            ),
            "transitions": await count(
                ReferralTransition, ReferralTransition.referral_id == referral.id
            ),
        }


async def refused(
    api: Any,
    database: Any,
    referral: dict[str, Any],
    body: dict[str, Any],
    status: int,
    *pointers: str,
) -> dict[str, Any]:
    """Post the review, expect a problem with `status` (and errors at exactly `pointers`, when
    given), and check that nothing at all was written."""
    before = await written(database, referral["id"])
    response = await api.post(f"/v1/referrals/{referral['id']}/review", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    if pointers:
        assert sorted(e["pointer"] for e in problem["errors"]) == sorted(pointers)
    assert await written(database, referral["id"]) == before
    return problem


# --- SJR scores, phases and problems in care ---------------------------------------------

SJR_CASES = [
    pytest.param(
        {"phases": [{"phase": "overall", "rating": 0}]}, "/review/phases/0/rating", id="rating-0"
    ),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": 6}]}, "/review/phases/0/rating", id="rating-6"
    ),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": "3"}]},
        "/review/phases/0/rating",
        id="rating-string",
    ),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": 3.0}]},
        "/review/phases/0/rating",
        id="rating-float",
    ),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": 2.5}]},
        "/review/phases/0/rating",
        id="rating-fraction",
    ),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": True}]},
        "/review/phases/0/rating",
        id="rating-boolean",
    ),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": None}]},
        "/review/phases/0/rating",
        id="rating-null",
    ),
    pytest.param({"quality_of_records": 6}, "/review/quality_of_records", id="records-6"),
    pytest.param({"quality_of_records": 0}, "/review/quality_of_records", id="records-0"),
    pytest.param({"quality_of_records": "4"}, "/review/quality_of_records", id="records-string"),
    pytest.param({"quality_of_records": True}, "/review/quality_of_records", id="records-bool"),
    pytest.param({"avoidability": 0}, "/review/avoidability", id="avoidability-0"),
    pytest.param({"avoidability": 7}, "/review/avoidability", id="avoidability-7"),
    pytest.param({"avoidability": -1}, "/review/avoidability", id="avoidability-negative"),
    pytest.param({"avoidability": "2"}, "/review/avoidability", id="avoidability-string"),
    pytest.param({"avoidability": 2.0}, "/review/avoidability", id="avoidability-float"),
    pytest.param({"avoidability": False}, "/review/avoidability", id="avoidability-bool"),
    pytest.param(
        {"phases": [{"phase": "admission", "rating": 3}, {"phase": "overall", "rating": 3}]},
        "/review/phases/0/phase",
        id="phase-unknown",
    ),
    pytest.param(
        {"phases": [{"phase": "Overall", "rating": 3}]},
        "/review/phases/0/phase",
        id="phase-wrong-case",
    ),
    pytest.param(
        {
            "phases": [
                {"phase": "ongoing", "rating": 3},
                {"phase": "overall", "rating": 3},
                {"phase": "ongoing", "rating": 4},
            ]
        },
        "/review/phases",
        id="phase-rated-twice",
    ),
    pytest.param(
        {"problems_in_care": [{"type": "monitoring", "phase": "overall", "harm": "no"}]},
        "/review/problems_in_care/0/phase",
        id="problem-in-overall",
    ),
    pytest.param(
        {"problems_in_care": [{"type": "communication", "phase": "ongoing", "harm": "no"}]},
        "/review/problems_in_care/0/type",
        id="problem-type-unknown",
    ),
    pytest.param(
        {"problems_in_care": [{"type": "monitoring", "phase": "ongoing", "harm": "maybe"}]},
        "/review/problems_in_care/0/harm",
        id="problem-harm-unknown",
    ),
    pytest.param(
        {"problems_in_care": [{"type": "monitoring", "phase": "nowhere", "harm": "yes"}]},
        "/review/problems_in_care/0/phase",
        id="problem-phase-unknown",
    ),
    pytest.param(
        {"patient_safety_incident_suspected": "yes"},
        "/review/patient_safety_incident_suspected",
        id="psi-not-boolean",
    ),
    pytest.param({"overall_score": 3}, "/review/overall_score", id="unknown-field"),
    pytest.param(
        {"phases": [{"phase": "overall", "rating": 3, "score": 3}]},
        "/review/phases/0/score",
        id="unknown-phase-field",
    ),
    pytest.param(
        {"reviewer": {"name": "Dr Valid", "grade": "ST5"}},
        "/review/reviewer/grade",
        id="unknown-reviewer-field",
    ),
    pytest.param(
        {"problems_in_care": [{"type": "other", "phase": "ongoing", "harm": "no", "x": 1}]},
        "/review/problems_in_care/0/x",
        id="unknown-problem-field",
    ),
]


@pytest.mark.parametrize(("changes", "pointer"), SJR_CASES)
async def test_an_impossible_sjr_is_refused_at_its_field(
    api: Any, database: Any, changes: dict[str, Any], pointer: str
) -> None:
    _, referral = await refer(api, "sjr")
    for submit in (True, False):  # a draft is held to the same scales
        problem = await refused(
            api,
            database,
            referral,
            {"submit": submit, "review": complete_sjr(**changes)},
            422,
            pointer,
        )
        assert problem["type"].endswith("/validation-error")


async def test_an_unknown_field_beside_the_review_is_refused(api, database) -> None:
    _, referral = await refer(api, "sjr")
    await refused(
        api, database, referral, {"review": complete_sjr(), "approved": True}, 422, "/approved"
    )


@pytest.mark.parametrize(
    "review",
    [
        pytest.param({"instrument": "rcp"}, id="unknown-instrument"),
        pytest.param({"avoidability": 3}, id="no-instrument"),
        pytest.param("sjr", id="not-an-object"),
    ],
)
async def test_a_review_that_names_no_instrument_is_refused(api, database, review) -> None:
    _, referral = await refer(api, "sjr")
    problem = await refused(api, database, referral, {"review": review}, 422)
    assert [e["pointer"] for e in problem["errors"]] in (["/review"], ["/review/instrument"])


async def test_a_submitted_sjr_must_be_complete_but_a_draft_need_not_be(api, database) -> None:
    _, referral = await refer(api, "sjr")
    partial = {
        "instrument": "sjr",
        "phases": [{"phase": "ongoing", "rating": 2, "narrative": "Slow to escalate."}],
        "summary": "Half written.",
    }
    problem = await refused(
        api,
        database,
        referral,
        {"review": partial},
        422,
        "/review/reviewer",
        "/review/phases",
        "/review/quality_of_records",
        "/review/avoidability",
    )
    assert {e["code"] for e in problem["errors"]} == {"required_for_submission"}

    # The same partial form is a perfectly good draft.
    drafted = await api.post(
        f"/v1/referrals/{referral['id']}/review", json={"submit": False, "review": partial}
    )
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["status"] == "draft"
    assert drafted.json()["review"]["phases"][0]["rating_label"] == "Poor care"

    # ... and submitting it still needs what is missing; the draft stays as it was.
    before = await written(database, referral["id"])
    again = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": partial})
    assert again.status_code == 422
    assert await written(database, referral["id"]) == before
    stored = (await api.get(f"/v1/reviews/{drafted.json()['id']}")).json()
    assert stored["status"] == "draft" and stored["version"] == 1


async def test_a_submitted_sjr_without_its_overall_rating_names_the_phases(api, database) -> None:
    _, referral = await refer(api, "sjr")
    phases = [
        {"phase": "ongoing", "rating": 3, "narrative": "Seen daily."},
        {"phase": "end_of_life", "rating": 4, "narrative": "Comfortable."},
    ]
    await refused(
        api, database, referral, {"review": complete_sjr(phases=phases)}, 422, "/review/phases"
    )


# --- The instrument must be the route's ----------------------------------------------------


@pytest.mark.parametrize(
    ("route", "wrong"),
    [
        pytest.param("mm", "sjr", id="sjr-on-mm"),
        pytest.param("sjr", "mm", id="mm-on-sjr"),
        pytest.param("sjr", "external", id="external-on-sjr"),
        pytest.param("leder", "external", id="external-on-leder"),
        pytest.param("leder", "sjr", id="sjr-on-leder"),
        pytest.param("coroner", "leder", id="leder-on-coroner"),
        pytest.param("coroner", "sjr", id="sjr-on-coroner"),
    ],
)
async def test_a_review_for_the_wrong_route_is_refused(api, database, route, wrong) -> None:
    death, referral = await refer(api, route)
    review = {
        "sjr": complete_sjr(),
        "mm": mm_review(),
        "leder": leder_review(death),
        "external": external_review(death),
    }[wrong]
    problem = await refused(api, database, referral, {"review": review}, 422, "/review/instrument")
    assert problem["errors"][0]["code"] == "wrong_instrument"
    assert route in problem["errors"][0]["detail"]
    # A draft of the wrong instrument is no better.
    await refused(
        api, database, referral, {"submit": False, "review": review}, 422, "/review/instrument"
    )


# --- Dates that cannot be ------------------------------------------------------------------


async def test_an_mm_meeting_before_the_death_or_in_the_future_is_refused(api, database) -> None:
    death, referral = await refer(api, "mm")
    died_on = date.fromisoformat(death["died_on"])
    for meeting in (died_on - timedelta(days=1), date.today() + timedelta(days=2)):
        review = mm_review(meeting_date=meeting.isoformat())
        await refused(api, database, referral, {"review": review}, 422, "/review/meeting_date")
    await refused(
        api, database, referral, {"review": mm_review(avoidability=7)}, 422, "/review/avoidability"
    )
    await refused(
        api, database, referral, {"review": mm_review(outcome="escalate")}, 422, "/review/outcome"
    )
    # The day of the death itself is a possible meeting (a same-day huddle).
    same_day = await api.post(
        f"/v1/referrals/{referral['id']}/review",
        json={"review": mm_review(meeting_date=death["died_on"])},
    )
    assert same_day.status_code == 201, same_day.text


async def test_a_leder_notification_before_the_death_or_in_the_future_is_refused(
    api, database
) -> None:
    death, referral = await refer(api, "leder")
    died = datetime.fromisoformat(death["died_at"])
    for notified in (died - timedelta(hours=1), datetime.now(UTC) + timedelta(days=1)):
        review = leder_review(death, notified_at=notified.isoformat())
        await refused(api, database, referral, {"review": review}, 422, "/review/notified_at")
    await refused(
        api,
        database,
        referral,
        {"review": leder_review(death, status="closed")},
        422,
        "/review/status",
    )
    await refused(
        api,
        database,
        referral,
        {"review": leder_review(death, notified_at="2024-13-01T00:00:00Z")},
        422,
        "/review/notified_at",
    )
    await refused(
        api,
        database,
        referral,
        {"review": leder_review(death, leder_reference="")},
        422,
        "/review/leder_reference",
    )


async def test_external_dates_out_of_order_are_refused(api, database) -> None:
    death, referral = await refer(api, "coroner")
    died = datetime.fromisoformat(death["died_at"])
    before_death = external_review(death, referred_at=(died - timedelta(minutes=5)).isoformat())
    await refused(api, database, referral, {"review": before_death}, 422, "/review/referred_at")
    future = external_review(death, referred_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    await refused(api, database, referral, {"review": future}, 422, "/review/referred_at")
    referred = died + timedelta(days=1)
    backwards = external_review(
        death,
        referred_at=referred.isoformat(),
        status="completed",
        completed_at=(referred - timedelta(hours=2)).isoformat(),
    )
    await refused(api, database, referral, {"review": backwards}, 422, "/review/completed_at")
    await refused(
        api,
        database,
        referral,
        {"review": external_review(death, status="finished")},
        422,
        "/review/status",
    )
    await refused(
        api,
        database,
        referral,
        {"review": {k: v for k, v in external_review(death).items() if k != "reference"}},
        422,
        "/review/reference",
    )


# --- Leases --------------------------------------------------------------------------------


async def test_a_claimed_referral_needs_its_lease(api, database) -> None:
    _, referral = await refer(api, "sjr")
    claimed = await claim_one(api, referral, "Dr Lease")
    body = {"review": complete_sjr()}
    problem = await refused(api, database, referral, body, 409)
    assert problem["current_status"] == "claimed"
    assert "lease_id" in problem["detail"]
    # A draft needs the lease as much as a submission.
    await refused(api, database, referral, {**body, "submit": False}, 409)

    wrong = await refused(api, database, referral, {**body, "lease_id": str(uuid.uuid4())}, 409)
    assert wrong["current_status"] == "claimed"
    assert "not the referral's current lease" in wrong["detail"]

    # With its lease the same review goes in.
    posted = await api.post(
        f"/v1/referrals/{referral['id']}/review", json={**body, "lease_id": claimed["lease_id"]}
    )
    assert posted.status_code == 201, posted.text


async def test_an_expired_lease_is_refused(api, database) -> None:
    _, referral = await refer(api, "sjr")
    claimed = await claim_one(api, referral, "Dr Slow")
    async with database.transaction() as session:
        await session.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(referral["id"]))
            .values(lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    body = {"lease_id": claimed["lease_id"], "review": complete_sjr()}
    problem = await refused(api, database, referral, body, 409)
    assert problem["current_status"] == "ready"
    assert "expired" in problem["detail"]
    # The referral is back in its queue: it reads as ready, with no lease.
    shown = (await api.get(f"/v1/referrals/{referral['id']}")).json()
    assert shown["status"] == "ready" and shown["lease_id"] is None


# --- States in which a referral cannot be reviewed -----------------------------------------


async def test_a_completed_referral_cannot_be_reviewed_again(api, database) -> None:
    _, referral = await refer(api, "sjr")
    first = await api.post(
        f"/v1/referrals/{referral['id']}/review", json={"review": complete_sjr()}
    )
    assert first.status_code == 201, first.text
    problem = await refused(api, database, referral, {"review": complete_sjr(avoidability=5)}, 409)
    assert problem["current_status"] == "completed"
    assert "completed" in problem["detail"] and "PUT /v1/reviews/" in problem["detail"]
    review = (await api.get(f"/v1/reviews/{first.json()['id']}")).json()
    assert review["review"]["avoidability"] == 6 and review["version"] == 1


@pytest.mark.parametrize(
    ("action", "state"),
    [("cancel", "cancelled"), ("decline", "declined"), ("hold", "on_hold")],
)
async def test_a_closed_or_held_referral_cannot_be_reviewed(api, database, action, state) -> None:
    _, referral = await refer(api, "sjr")
    moved = await api.post(
        f"/v1/referrals/{referral['id']}/{action}", json={"reason": "Testing the refusal"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == state
    for submit in (True, False):
        problem = await refused(
            api, database, referral, {"submit": submit, "review": complete_sjr()}, 409
        )
        assert problem["current_status"] == state
        assert state in problem["detail"]
        assert problem["type"].endswith("/transition-not-allowed")


async def test_a_review_of_an_unknown_referral_is_not_found(api) -> None:
    response = await api.post(
        f"/v1/referrals/{uuid.uuid4()}/review", json={"review": complete_sjr()}
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["status"] == 404
    not_an_id = await api.post("/v1/referrals/not-an-id/review", json={"review": complete_sjr()})
    assert not_an_id.status_code in (404, 422)
    assert not_an_id.headers["content-type"].startswith(PROBLEM_JSON)


async def test_a_submitted_sjr_phase_needs_its_narrative(api, database) -> None:
    # Issue 15: a phase that applies needs both its rating and its narrative on submission.
    _, referral = await refer(api, "sjr")
    phases = [
        {"phase": "ongoing", "rating": 3},
        {"phase": "overall", "rating": 3, "narrative": "Adequate."},
    ]
    await refused(
        api,
        database,
        referral,
        {"review": complete_sjr(phases=phases)},
        422,
        "/review/phases/0/narrative",
    )
