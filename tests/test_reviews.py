"""Reviews after they pass validation: drafts, submission, amendments with their history,
the scale labels, LeDeR and the external routes, what a review sets off, and how a death's
status and page follow."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.kit.id_lists import names
from app.models import AuditEvent, OutboxEvent, ReviewPhaseRating, ReviewProblem
from tests.factories import idem, screening_body
from tests.kit.reviews import (
    claim_one,
    complete_sjr,
    external_review,
    leder_review,
    mm_review,
    refer,
    unique,
)

RCP_CARE = ["Very poor care", "Poor care", "Adequate care", "Good care", "Excellent care"]
RCP_RECORDS = ["Very poor", "Poor", "Adequate", "Good", "Excellent"]
RCP_AVOIDABILITY = [
    "Definitely avoidable",
    "Strong evidence of avoidability",
    "Probably avoidable",
    "Possibly avoidable but not very likely",
    "Slight evidence of avoidability",
    "Definitely not avoidable",
]


async def post_review(api: Any, referral_id: str, review: Any, **body: Any) -> Any:
    return await api.post(f"/v1/referrals/{referral_id}/review", json={"review": review, **body})


async def death_page(api: Any, death_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/deaths/{death_id}")
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def events_of(database: Any, death_id: str, type_: str) -> list[OutboxEvent]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.death_id == uuid.UUID(death_id), OutboxEvent.type == type_
            )
        )
        return list(rows.all())


async def audits_of(database: Any, death_id: str, action: str) -> list[AuditEvent]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(AuditEvent).where(
                names(AuditEvent.death_ids, uuid.UUID(death_id)), AuditEvent.action == action
            )
        )
        return list(rows.all())


async def stored_parts(database: Any, review_id: str) -> tuple[list[Any], list[Any]]:
    """The SJR's phase ratings and problems in care as the report tables hold them."""
    rid = uuid.UUID(review_id)
    async with database.transaction() as session:
        ratings = await session.scalars(
            select(ReviewPhaseRating).where(ReviewPhaseRating.review_id == rid)
        )
        problems = await session.scalars(
            select(ReviewProblem).where(ReviewProblem.review_id == rid)
        )
        return (
            sorted((r.phase, r.rating) for r in ratings.all()),
            sorted((p.problem_type, p.phase, p.harm) for p in problems.all()),
        )


# --- Drafts and submission -----------------------------------------------------------------


async def test_a_draft_is_saved_then_submitted(api, database) -> None:
    death, referral = await refer(api, "sjr")
    draft = {
        "instrument": "sjr",
        "phases": [{"phase": "admission_initial", "rating": 3, "narrative": "First look."}],
    }
    first = await post_review(api, referral["id"], draft, submit=False)
    assert first.status_code == 201, first.text
    review = first.json()
    assert review["status"] == "draft" and review["submitted_at"] is None
    assert first.headers["Location"] == f"/v1/reviews/{review['id']}"

    page = await death_page(api, death["id"])
    assert page["referrals"][0]["status"] == "in_progress"
    assert page["status"] == "under_review"

    draft["phases"].append({"phase": "ongoing", "rating": 2, "narrative": "Missed obs."})
    second = await post_review(api, referral["id"], draft, submit=False)
    assert second.status_code == 200, second.text
    assert second.json()["id"] == review["id"]
    assert second.json()["status"] == "draft"
    assert [p["phase"] for p in second.json()["review"]["phases"]] == [
        "admission_initial",
        "ongoing",
    ]
    page = await death_page(api, death["id"])
    assert page["referrals"][0]["status"] == "in_progress"
    assert page["status"] == "under_review"
    assert [r["status"] for r in page["reviews"]] == ["draft"]

    submitted = await post_review(api, referral["id"], complete_sjr())
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert body["id"] == review["id"]
    assert body["status"] == "submitted" and body["submitted_at"] is not None
    assert body["reviewer"] == "Dr Valid"

    page = await death_page(api, death["id"])
    (done,) = page["referrals"]
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert page["status"] == "closed"  # nothing else open, nothing pending outside
    history = (await api.get(f"/v1/referrals/{referral['id']}/history")).json()
    assert [h["action"] for h in history] == ["start", "complete"]
    assert await events_of(database, death["id"], "review.drafted")
    assert len(await events_of(database, death["id"], "review.submitted")) == 1

    again = await post_review(api, referral["id"], complete_sjr(avoidability=5))
    assert again.status_code == 409
    assert again.json()["current_status"] == "completed"
    assert "PUT /v1/reviews/" in again.json()["detail"]


async def test_a_lease_holder_saves_a_draft_and_submits_under_the_lease(api) -> None:
    _, referral = await refer(api, "sjr")
    claimed = await claim_one(api, referral, "Dr Holder")
    lease = claimed["lease_id"]
    draft = await post_review(
        api, referral["id"], {"instrument": "sjr"}, submit=False, lease_id=lease
    )
    assert draft.status_code == 201, draft.text
    shown = (await api.get(f"/v1/referrals/{referral['id']}")).json()
    assert shown["status"] == "in_progress"
    assert shown["lease_id"] == lease and shown["leased_to"] == "Dr Holder"

    done = await post_review(api, referral["id"], complete_sjr(), lease_id=lease)
    assert done.status_code == 200, done.text
    shown = (await api.get(f"/v1/referrals/{referral['id']}")).json()
    assert shown["status"] == "completed"
    assert shown["lease_id"] is None and shown["lease_expires_at"] is None


# --- Amendments ----------------------------------------------------------------------------


async def test_an_amendment_needs_if_match_and_keeps_the_previous_version(api, database) -> None:
    death, referral = await refer(api, "sjr")
    posted = await post_review(api, referral["id"], complete_sjr())
    assert posted.status_code == 201, posted.text
    review = posted.json()
    url = f"/v1/reviews/{review['id']}"
    first_etag = posted.headers["ETag"]
    assert (await api.get(url)).headers["ETag"] == first_etag

    corrected = complete_sjr(quality_of_records=2, summary="Notes were incomplete.")
    missing = await api.put(url, json={"review": corrected})
    assert missing.status_code == 428, missing.text
    stale = await api.put(url, json={"review": corrected}, headers={"If-Match": '"nope.1"'})
    assert stale.status_code == 412, stale.text
    assert (await api.get(url)).json()["version"] == 1
    assert (await api.get(f"{url}/history")).json() == []

    amended = await api.put(url, json={"review": corrected}, headers={"If-Match": first_etag})
    assert amended.status_code == 200, amended.text
    now_stands = amended.json()
    assert now_stands["version"] == 2
    assert now_stands["review"]["quality_of_records"] == 2
    assert now_stands["review"]["quality_of_records_label"] == "Poor"
    assert amended.headers["ETag"] != first_etag

    history = (await api.get(f"{url}/history")).json()
    assert [h["version"] for h in history] == [1]
    old = history[0]["snapshot"]
    assert old["version"] == 1
    assert old["review"]["quality_of_records"] == 4
    assert old["review"]["quality_of_records_label"] == "Good"
    assert old["review"]["summary"] is None

    (event,) = await events_of(database, death["id"], "review.amended")
    assert event.resource_id == uuid.UUID(review["id"])
    assert "quality_of_records" in event.changed
    assert len(await audits_of(database, death["id"], "review.amend")) == 1

    # The old ETag is now stale: a second writer cannot overwrite the amendment.
    late = await api.put(url, json={"review": complete_sjr()}, headers={"If-Match": first_etag})
    assert late.status_code == 412
    assert (await api.get(url)).json()["review"]["quality_of_records"] == 2


async def test_an_amendment_that_changes_nothing_makes_no_version(api, database) -> None:
    death, referral = await refer(api, "sjr")
    posted = await post_review(api, referral["id"], complete_sjr())
    url = f"/v1/reviews/{posted.json()['id']}"
    same = await api.put(
        url, json={"review": complete_sjr()}, headers={"If-Match": posted.headers["ETag"]}
    )
    assert same.status_code == 200, same.text
    assert same.json()["version"] == 1
    assert same.headers["ETag"] == posted.headers["ETag"]
    assert (await api.get(f"{url}/history")).json() == []
    assert await events_of(database, death["id"], "review.amended") == []


async def test_an_amendment_is_held_to_the_instrument(api) -> None:
    _, referral = await refer(api, "sjr")
    posted = await post_review(api, referral["id"], complete_sjr())
    url = f"/v1/reviews/{posted.json()['id']}"
    etag = {"If-Match": posted.headers["ETag"]}
    wrong = await api.put(url, json={"review": mm_review()}, headers=etag)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "/review/instrument"
    incomplete = complete_sjr(avoidability=None)
    partial = await api.put(url, json={"review": incomplete}, headers=etag)
    assert partial.status_code == 422
    assert [e["pointer"] for e in partial.json()["errors"]] == ["/review/avoidability"]
    out_of_range = await api.put(url, json={"review": complete_sjr(avoidability=9)}, headers=etag)
    assert out_of_range.status_code == 422
    assert out_of_range.json()["errors"][0]["pointer"] == "/review/avoidability"
    assert (await api.get(url)).json()["version"] == 1

    unknown = await api.put(
        f"/v1/reviews/{uuid.uuid4()}", json={"review": complete_sjr()}, headers=etag
    )
    assert unknown.status_code == 404


async def test_a_draft_is_not_amended_with_put(api) -> None:
    _, referral = await refer(api, "sjr")
    draft = await post_review(api, referral["id"], {"instrument": "sjr"}, submit=False)
    response = await api.put(
        f"/v1/reviews/{draft.json()['id']}",
        json={"review": complete_sjr()},
        headers={"If-Match": draft.headers["ETag"]},
    )
    assert response.status_code == 409
    assert response.json()["current_status"] == "draft"


async def test_amending_an_sjr_to_avoidable_raises_the_second_stage_once(api, database) -> None:
    death, referral = await refer(api, "sjr")
    posted = await post_review(api, referral["id"], complete_sjr())
    assert posted.status_code == 201
    page = await death_page(api, death["id"])
    assert [r["route"] for r in page["referrals"]] == ["sjr"]
    assert page["status"] == "closed"

    url = f"/v1/reviews/{posted.json()['id']}"
    amended = await api.put(
        url,
        json={"review": complete_sjr(avoidability=2)},
        headers={"If-Match": posted.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["review"]["avoidability_label"] == "Strong evidence of avoidability"
    page = await death_page(api, death["id"])
    stage_two = [r for r in page["referrals"] if r["stage"] == 2]
    assert [(r["route"], r["reasons"], r["status"]) for r in stage_two] == [
        ("sjr", ["second_stage"], "ready")
    ]
    assert stage_two[0]["excluded_reviewer"] == "Dr Valid"
    assert page["status"] == "under_review"

    again = await api.put(
        url,
        json={"review": complete_sjr(avoidability=1, summary="Worse on reflection.")},
        headers={"If-Match": amended.headers["ETag"]},
    )
    assert again.status_code == 200, again.text
    assert again.json()["version"] == 3
    page = await death_page(api, death["id"])
    assert len([r for r in page["referrals"] if r["stage"] == 2]) == 1
    assert [h["version"] for h in (await api.get(f"{url}/history")).json()] == [1, 2]


async def test_phase_ratings_and_problems_are_rows_replaced_on_amendment(api, database) -> None:
    _, referral = await refer(api, "sjr")
    review = complete_sjr(
        phases=[
            {"phase": "pre_admission", "rating": 3, "narrative": "Seen by the GP."},
            {"phase": "admission_initial", "rating": 4, "narrative": "Seen promptly."},
            {"phase": "ongoing", "rating": 3, "narrative": "NEWS late once."},
            {"phase": "overall", "rating": 4, "narrative": "Good care."},
        ],
        problems_in_care=[
            {"type": "monitoring", "phase": "ongoing", "harm": "no", "description": "NEWS late"},
            {"type": "medication", "phase": "admission_initial", "harm": "probably"},
        ],
    )
    posted = await post_review(api, referral["id"], review)
    assert posted.status_code == 201, posted.text
    review_id = posted.json()["id"]
    assert await stored_parts(database, review_id) == (
        [("admission_initial", 4), ("ongoing", 3), ("overall", 4), ("pre_admission", 3)],
        [("medication", "admission_initial", "probably"), ("monitoring", "ongoing", "no")],
    )

    corrected = complete_sjr(
        phases=[
            {"phase": "ongoing", "rating": 2, "narrative": "NEWS late."},
            {"phase": "discharge", "rating": 3, "narrative": "Planned late."},
            {"phase": "overall", "rating": 3, "narrative": "Adequate."},
        ],
        problems_in_care=[{"type": "other", "phase": "discharge", "harm": "yes"}],
    )
    amended = await api.put(
        f"/v1/reviews/{review_id}",
        json={"review": corrected},
        headers={"If-Match": posted.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.text
    assert await stored_parts(database, review_id) == (
        [("discharge", 3), ("ongoing", 2), ("overall", 3)],
        [("other", "discharge", "yes")],
    )


async def test_a_draft_resaved_replaces_its_rows(api, database) -> None:
    _, referral = await refer(api, "sjr")
    first = await post_review(
        api,
        referral["id"],
        {
            "instrument": "sjr",
            "phases": [{"phase": "ongoing", "rating": 2}],
            "problems_in_care": [{"type": "infection", "phase": "ongoing", "harm": "yes"}],
        },
        submit=False,
    )
    review_id = first.json()["id"]
    assert await stored_parts(database, review_id) == (
        [("ongoing", 2)],
        [("infection", "ongoing", "yes")],
    )
    await post_review(api, referral["id"], complete_sjr())
    assert await stored_parts(database, review_id) == (
        [("admission_initial", 4), ("overall", 4)],
        [],
    )


# --- Labels --------------------------------------------------------------------------------


async def test_the_scales_list_the_rcp_wording(api) -> None:
    response = await api.get("/v1/scales")
    assert response.status_code == 200, response.text
    scales = response.json()
    assert [(s["value"], s["label"]) for s in scales["care_rating"]] == list(enumerate(RCP_CARE, 1))
    assert [(s["value"], s["label"]) for s in scales["records_quality"]] == list(
        enumerate(RCP_RECORDS, 1)
    )
    assert [(s["value"], s["label"]) for s in scales["avoidability"]] == list(
        enumerate(RCP_AVOIDABILITY, 1)
    )
    notes = {s["value"]: s["description"] for s in scales["avoidability"]}
    assert notes[3] == "more than 50:50" and notes[4] == "less than 50:50"


async def test_every_score_has_its_label_beside_it(api) -> None:
    death, referral = await refer(api, "sjr")
    phases = [
        {"phase": phase, "rating": rating, "narrative": f"The {phase} phase."}
        for phase, rating in [
            ("pre_admission", 1),
            ("admission_initial", 2),
            ("ongoing", 3),
            ("procedure", 4),
            ("end_of_life", 5),
            ("overall", 3),
        ]
    ]
    posted = await post_review(
        api,
        referral["id"],
        complete_sjr(phases=phases, quality_of_records=1, avoidability=4),
    )
    assert posted.status_code == 201, posted.text
    for shown in (
        posted.json(),
        (await api.get(f"/v1/reviews/{posted.json()['id']}")).json(),
        (await death_page(api, death["id"]))["reviews"][0],
    ):
        body = shown["review"]
        assert [(p["rating"], p["rating_label"]) for p in body["phases"]] == [
            (1, "Very poor care"),
            (2, "Poor care"),
            (3, "Adequate care"),
            (4, "Good care"),
            (5, "Excellent care"),
            (3, "Adequate care"),
        ]
        assert body["quality_of_records_label"] == "Very poor"
        assert body["avoidability_label"] == "Possibly avoidable but not very likely"

    _, mm = await refer(api, "mm")
    posted = await post_review(api, mm["id"], mm_review(avoidability=6))
    assert posted.status_code == 201, posted.text
    assert posted.json()["review"]["avoidability_label"] == "Definitely not avoidable"


# --- LeDeR ---------------------------------------------------------------------------------


async def test_leder_notification_completes_the_referral_and_the_icb_review_follows(
    api, database
) -> None:
    died = datetime(2023, 8, 20, 14, 0, tzinfo=UTC)
    specialty = unique("Specialty")
    body = screening_body(
        death={"autism": True, "admitting_specialty": specialty, "specialty_at_death": specialty},
        died_at=died,
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (referral,) = recorded["referrals"]
    assert referral["route"] == "leder"

    notification = {
        "instrument": "leder",
        "notified_at": "2023-08-31T10:00:00Z",
        "leder_reference": "LDR-2023-0042",
    }
    posted = await post_review(api, referral["id"], notification)
    assert posted.status_code == 201, posted.text
    review = posted.json()
    assert review["status"] == "submitted"
    assert review["review"]["status"] == "notified"
    # Six months after 31 August is the last day of February (2024 is a leap year), counted
    # in the trust's calendar: 11:00 BST on 31 August is due at 11:00 GMT (= UTC) in February.
    assert review["external_due_at"] == "2024-02-29T11:00:00Z"

    page = await death_page(api, recorded["death_id"])
    (done,) = page["referrals"]
    assert done["status"] == "completed"
    assert done["external_reference"] == "LDR-2023-0042"
    assert page["status"] == "reviewed"  # the trust is done; LeDeR still runs at the ICB

    url = f"/v1/reviews/{review['id']}"
    etag = posted.headers["ETag"]
    progress = await api.put(
        url,
        json={"review": {**notification, "status": "focused_review"}},
        headers={"If-Match": etag},
    )
    assert progress.status_code == 200, progress.text
    assert (await death_page(api, recorded["death_id"]))["status"] == "reviewed"

    # A notification date corrected to 31 August 2024 is due on 28 February 2025.
    finished = await api.put(
        url,
        json={
            "review": {
                **notification,
                "notified_at": "2024-08-31T10:00:00Z",
                "status": "completed",
                "outcome_summary": "Care met expected standards.",
            }
        },
        headers={"If-Match": progress.headers["ETag"]},
    )
    assert finished.status_code == 200, finished.text
    assert finished.json()["external_due_at"] == "2025-02-28T11:00:00Z"
    assert finished.json()["review"]["outcome_summary"] == "Care met expected standards."
    page = await death_page(api, recorded["death_id"])
    assert page["status"] == "closed"
    assert len(await events_of(database, recorded["death_id"], "review.amended")) == 2
    history = (await api.get(f"{url}/history")).json()
    assert [h["snapshot"]["review"]["status"] for h in history] == ["notified", "focused_review"]


async def test_a_death_with_leder_and_sjr_closes_only_when_both_are_done(api) -> None:
    specialty = unique("Specialty")
    body = screening_body(
        death={
            "learning_disability": True,
            "admitting_specialty": specialty,
            "specialty_at_death": specialty,
        }
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    routes = {r["route"]: r for r in recorded["referrals"]}
    assert set(routes) == {"leder", "sjr"}

    leder = await post_review(api, routes["leder"]["id"], leder_review(recorded["death"]))
    assert leder.status_code == 201, leder.text
    assert (await death_page(api, recorded["death_id"]))["status"] == "under_review"
    completed = await api.put(
        f"/v1/reviews/{leder.json()['id']}",
        json={"review": leder_review(recorded["death"], status="completed")},
        headers={"If-Match": leder.headers["ETag"]},
    )
    assert completed.status_code == 200, completed.text
    assert (await death_page(api, recorded["death_id"]))["status"] == "under_review"

    sjr = await post_review(api, routes["sjr"]["id"], complete_sjr())
    assert sjr.status_code == 201, sjr.text
    assert (await death_page(api, recorded["death_id"]))["status"] == "closed"


# --- External routes -----------------------------------------------------------------------


async def test_a_coroner_referral_round_trips(api) -> None:
    death, referral = await refer(api, "coroner")
    died = datetime.fromisoformat(death["died_at"])
    referred = died + timedelta(hours=20)
    sent = external_review(
        death,
        reference="COR/24/1187",
        organisation="HM Coroner, Leeds",
        referred_at=referred.isoformat(),
        status="accepted",
        outcome=None,
    )
    posted = await post_review(api, referral["id"], sent)
    assert posted.status_code == 201, posted.text
    review = posted.json()
    assert review["route"] == "coroner"
    assert review["review"]["reference"] == "COR/24/1187"
    assert review["review"]["organisation"] == "HM Coroner, Leeds"
    assert datetime.fromisoformat(review["review"]["referred_at"]) == referred
    assert review["review"]["status"] == "accepted"

    page = await death_page(api, death["id"])
    (done,) = page["referrals"]
    assert done["status"] == "completed" and done["external_reference"] == "COR/24/1187"
    assert page["status"] == "reviewed"  # the inquest is still to come

    finished_at = referred + timedelta(hours=30)
    closed = {
        **sent,
        "status": "completed",
        "outcome": "Natural causes; no inquest.",
        "completed_at": finished_at.isoformat(),
    }
    amended = await api.put(
        f"/v1/reviews/{review['id']}",
        json={"review": closed},
        headers={"If-Match": posted.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.text
    shown = (await api.get(f"/v1/reviews/{review['id']}")).json()["review"]
    assert shown["status"] == "completed"
    assert shown["outcome"] == "Natural causes; no inquest."
    assert datetime.fromisoformat(shown["completed_at"]) == finished_at
    assert (await death_page(api, death["id"]))["status"] == "closed"


async def test_a_child_death_review_round_trips(api) -> None:
    died = datetime.now(UTC) - timedelta(days=3)
    specialty = unique("Paediatrics")
    body = screening_body(
        death={
            "date_of_birth": (died - timedelta(days=9 * 365)).date().isoformat(),
            "admitting_specialty": specialty,
            "specialty_at_death": specialty,
        },
        died_at=died,
    )
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    recorded = response.json()
    (cdr,) = recorded["referrals"]
    assert cdr["route"] == "cdr"

    referred = died + timedelta(days=1)
    sent = {
        "instrument": "external",
        "reference": "CDOP-WY-0099",
        "organisation": "West Yorkshire Child Death Overview Panel",
        "referred_at": referred.isoformat(),
        "status": "declined",
        "outcome": "Reviewed elsewhere (out of area).",
    }
    posted = await post_review(api, cdr["id"], sent)
    assert posted.status_code == 201, posted.text
    stored = (await api.get(f"/v1/reviews/{posted.json()['id']}")).json()
    assert {k: stored["review"][k] for k in ("reference", "organisation", "status", "outcome")} == {
        k: sent[k] for k in ("reference", "organisation", "status", "outcome")
    }
    assert stored["review"]["completed_at"] is None
    page = await death_page(api, recorded["death_id"])
    assert page["referrals"][0]["external_reference"] == "CDOP-WY-0099"
    assert page["status"] == "closed"  # a declined outside review is final


# --- What a review sets off ----------------------------------------------------------------


async def test_an_sjr_suspecting_a_patient_safety_incident_raises_a_psii(api, database) -> None:
    death, referral = await refer(api, "sjr")
    posted = await post_review(
        api, referral["id"], complete_sjr(patient_safety_incident_suspected=True)
    )
    assert posted.status_code == 201, posted.text
    page = await death_page(api, death["id"])
    by_route = {r["route"]: r for r in page["referrals"]}
    assert set(by_route) == {"sjr", "psii"}  # good care, not avoidable: no stage 2
    assert by_route["psii"]["reasons"] == ["patient_safety_incident"]
    assert by_route["psii"]["status"] == "ready"
    assert page["status"] == "under_review"
    assert len(await events_of(database, death["id"], "referral.created")) == 2


async def test_an_mm_escalation_to_psii_raises_a_psii(api) -> None:
    death, referral = await refer(api, "mm")
    posted = await post_review(api, referral["id"], mm_review(outcome="escalate_psii"))
    assert posted.status_code == 201, posted.text
    page = await death_page(api, death["id"])
    psii = [r for r in page["referrals"] if r["route"] == "psii"]
    assert [(r["reasons"], r["status"]) for r in psii] == [(["patient_safety_incident"], "ready")]
    assert not [r for r in page["referrals"] if r["route"] == "sjr"]
    mm = next(r for r in page["referrals"] if r["route"] == "mm")
    assert mm["status"] == "completed"
    assert page["status"] == "under_review"


async def test_an_mm_with_no_escalation_raises_nothing(api) -> None:
    death, referral = await refer(api, "mm")
    posted = await post_review(api, referral["id"], mm_review(outcome="no_further_action"))
    assert posted.status_code == 201, posted.text
    page = await death_page(api, death["id"])
    assert [(r["route"], r["status"]) for r in page["referrals"]] == [("mm", "completed")]
    assert page["status"] == "closed"
    assert page["reviews"][0]["review"]["meeting_date"] == date.today().isoformat()


# --- A death's page ------------------------------------------------------------------------


async def test_the_death_page_shows_screening_referrals_leases_and_reviews(api) -> None:
    specialty = unique("Specialty")
    body = screening_body(
        death={
            "learning_disability": True,
            "admitting_specialty": specialty,
            "specialty_at_death": specialty,
        }
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    death_id = recorded["death_id"]
    routes = {r["route"]: r for r in recorded["referrals"]}
    claimed = await claim_one(api, routes["sjr"], "Dr Pipeline")
    leder = await post_review(api, routes["leder"]["id"], leder_review(recorded["death"]))
    assert leder.status_code == 201, leder.text

    page = await death_page(api, death_id)
    assert page["status"] == "under_review"
    assert page["screening"]["examiner"]["name"] == "Dr Examiner"
    shown = {r["route"]: r for r in page["referrals"]}
    assert shown["sjr"]["status"] == "claimed"
    assert shown["sjr"]["lease_id"] == claimed["lease_id"]
    assert shown["sjr"]["leased_to"] == "Dr Pipeline"
    assert shown["sjr"]["lease_expires_at"] == claimed["lease_expires_at"]
    assert shown["leder"]["status"] == "completed"
    assert [(r["route"], r["status"]) for r in page["reviews"]] == [("leder", "submitted")]

    posted = await post_review(
        api, routes["sjr"]["id"], complete_sjr(avoidability=5), lease_id=claimed["lease_id"]
    )
    assert posted.status_code == 201, posted.text
    page = await death_page(api, death_id)
    shown = {r["route"]: r for r in page["referrals"]}
    assert shown["sjr"]["status"] == "completed" and shown["sjr"]["lease_id"] is None
    reviews = {r["route"]: r for r in page["reviews"]}
    assert set(reviews) == {"leder", "sjr"}
    assert reviews["sjr"]["review"]["avoidability_label"] == "Slight evidence of avoidability"
    assert reviews["sjr"]["review"]["phases"][-1]["rating_label"] == "Good care"
    assert page["status"] == "reviewed"  # LeDeR still open at the ICB


async def test_the_leder_due_date_follows_the_uk_calendar_across_midnight(api) -> None:
    """00:30 BST on 1 September is 23:30 UTC on 31 August: due on 1 March, not 28 February."""
    specialty = "LeDeR midnight " + uuid.uuid4().hex[:8]
    body = screening_body(
        death={"autism": True, "admitting_specialty": specialty, "specialty_at_death": specialty},
        died_at=datetime(2024, 8, 30, 12, 0, tzinfo=UTC),
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    (referral,) = recorded["referrals"]
    notification = {
        "instrument": "leder",
        "notified_at": "2024-08-31T23:30:00Z",
        "leder_reference": "LDR-MIDNIGHT",
    }
    posted = await post_review(api, referral["id"], notification)
    assert posted.status_code == 201, posted.text
    assert posted.json()["external_due_at"] == "2025-03-01T00:30:00Z"
