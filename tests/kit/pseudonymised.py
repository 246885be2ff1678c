"""One patient seeded with known identifiers everywhere a full client can see them (the
pseudonymised-access walk and the conditional-read tests use it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.factories import idem, screening_body, test_nhs_number

DIED_AT = "2019-02-13T04:17:00+00:00"
DATE_OF_BIRTH = "1931-06-29"
POSTCODE = "YO31 7QX"


def _letters(count: int) -> str:
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:count])


@dataclass
class Seeded:
    nhs_number: str
    given_name: str
    family_name: str
    local_patient_id: str
    source_reference: str
    leder_reference: str
    ids: dict[str, str]

    @property
    def needles(self) -> list[str]:
        """Everything a pseudonymised client must never be shown, in the forms it may take."""
        n = self.nhs_number
        return [
            n,
            f"{n[:3]} {n[3:6]} {n[6:]}",
            f"{n[:3]}-{n[3:6]}-{n[6:]}",
            self.given_name,
            self.family_name,
            self.local_patient_id,
            self.source_reference,
            self.leder_reference,
            DATE_OF_BIRTH,
            "29/06/1931",
            POSTCODE,
            POSTCODE.replace(" ", ""),
            "2019-02-13",  # the date of death, in any timestamp or date
            "13/02/2019",
            "2019-02-05",  # admitted (gives the date of death away too)
            "2019-02-14",  # screened
        ]


async def seed(api: Any) -> Seeded:
    """A death with identifiers everywhere a full client can see them."""
    tag = _letters(8)
    given, family = f"Zephyrine{tag}", f"Quillfeather{tag}"
    nhs = test_nhs_number()
    formatted = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    local_id = f"RX9{uuid.uuid4().hex[:8].upper()}"
    specialty = f"Pseudo specialty {tag}"
    body = screening_body(
        death={
            "nhs_number": formatted,
            "given_name": given,
            "family_name": family,
            "local_patient_id": local_id,
            "date_of_birth": DATE_OF_BIRTH,
            "postcode": POSTCODE,
            "learning_disability": True,
            "admitting_specialty": specialty,
            "specialty_at_death": specialty,
            "admitted_at": "2019-02-05T11:20:00+00:00",
        },
        screening={
            "screened_at": "2019-02-14T09:30:00+00:00",
            "mccd_issued_at": "2019-02-14T16:00:00+00:00",
            "bereaved_concerns": f"{given} {family}'s daughter says NHS number {formatted} was "
            "mixed up with another patient's",
            "staff_concerns": f"Born 29/06/1931, {family} waited six hours",
            "cause_of_death": {"part_1a": f"Aspiration pneumonia ({family})"},
            "death_expected": False,
            # The scrutiny in full (issue 15): names and words everywhere.
            "bereaved_contacted": True,
            "notes_received_at": "2019-02-13T10:00:00+00:00",
            "qap": {"name": f"Dr {family} Qap", "gmc_number": "7000001"},
            "proposed_cause_of_death": {"part_1a": f"Pneumonia in {given}"},
            "registrar_rejections": [
                {"rejected_at": "2019-02-15T10:00:00+00:00", "reason": f"{family} misspelt"}
            ],
            "bereaved_contacts": [
                {
                    "contacted_at": "2019-02-14T12:00:00+00:00",
                    "contact": f"{given}'s daughter",
                    "method": "phone",
                    "concerns": f"NHS number {formatted} on the wrong notes",
                }
            ],
        },
        died_at=None,
    )
    body["death"]["died_at"] = DIED_AT
    source_reference = body["death"]["source_reference"]
    posted = await api.post("/v1/screenings", json=body, headers=idem())
    assert posted.status_code == 201, posted.text
    recorded = posted.json()
    death_id = recorded["death"]["id"]
    screening_id = recorded["id"]
    referrals = {r["route"]: r for r in recorded["referrals"]}
    assert {"sjr", "leder"} <= set(referrals)

    # The same death notified by the PAS afterwards: the notification names the same death.
    notified = await api.post(
        "/v1/death-notifications",
        json={
            **{k: v for k, v in body["death"].items()},
            "source_system": "test-pas",
            "source_reference": f"PAS-{source_reference}",
        },
    )
    assert notified.status_code == 201, notified.text
    assert notified.json()["death_id"] == death_id
    notification_id = notified.json()["id"]

    # A governance reviewer's judgement of the ME's referral decision, with the patient in it.
    judged = await api.put(
        f"/v1/screenings/{screening_id}/referral-judgement",
        json={"judgement": "appropriate", "reason": f"{family}'s SJR was right"},
    )
    assert judged.status_code == 201, judged.text
    # Replaced, so that its earlier version (with the patient in its reason) is kept.
    rejudged = await api.put(
        f"/v1/screenings/{screening_id}/referral-judgement",
        json={"judgement": "possibly_missed", "reason": f"{family}: DOB {DATE_OF_BIRTH}"},
        headers={"If-Match": judged.headers["ETag"]},
    )
    assert rejudged.status_code == 200, rejudged.text

    # An amended screening: its earlier version (a snapshot) holds the identifiers.
    current = await api.get(f"/v1/screenings/{screening_id}")
    amended = dict(body["screening"], clinical_governance_concern=f"{given}: DOB {DATE_OF_BIRTH}")
    put = await api.put(
        f"/v1/screenings/{screening_id}",
        json=amended,
        headers={"If-Match": current.headers["ETag"]},
    )
    assert put.status_code == 200, put.text

    # A referral held and resumed, with the patient in the reason.
    sjr = referrals["sjr"]["id"]
    held = await api.post(f"/v1/referrals/{sjr}/hold", json={"reason": f"Awaiting {family} notes"})
    assert held.status_code == 200, held.text
    assert (await api.post(f"/v1/referrals/{sjr}/resume", json={})).status_code == 200

    sjr_review = {
        "instrument": "sjr",
        "reviewer": {"name": "Dr Reviewer", "role": "Consultant"},
        "phases": [
            {"phase": "admission_initial", "rating": 2, "narrative": f"{given} was not seen."},
            {"phase": "overall", "rating": 3, "narrative": f"NHS number {nhs} on the wrong notes"},
        ],
        "quality_of_records": 3,
        "avoidability": 5,
        "problems_in_care": [
            {
                "type": "monitoring",
                "phase": "admission_initial",
                "harm": "probably",
                "description": f"{family} had no observations",
            }
        ],
        "patient_safety_incident_suspected": False,
        "summary": f"{given} {family}, born {DATE_OF_BIRTH}, of {POSTCODE}",
    }
    review = await api.post(f"/v1/referrals/{sjr}/review", json={"review": sjr_review})
    assert review.status_code == 201, review.text
    review_id = review.json()["id"]
    again = dict(sjr_review, summary=f"Corrected: {family} {local_id}")
    amended_review = await api.put(
        f"/v1/reviews/{review_id}",
        json={"review": again},
        headers={"If-Match": review.headers["ETag"]},
    )
    assert amended_review.status_code == 200, amended_review.text

    leder_reference = f"LDR-{tag.upper()}"
    leder = await api.post(
        f"/v1/referrals/{referrals['leder']['id']}/review",
        json={
            "review": {
                "instrument": "leder",
                "notified_at": "2019-02-16T10:00:00+00:00",
                "leder_reference": leder_reference,
                "outcome_summary": f"{given} {family} ({nhs})",
            }
        },
    )
    assert leder.status_code == 201, leder.text

    theme = (await api.get("/v1/themes")).json()["items"][0]
    finding = await api.post(
        "/v1/findings",
        json={
            "death_id": death_id,
            "review_id": review_id,
            "kind": "problem_in_care",
            "theme_id": theme["id"],
            "description": f"{family} ({formatted}) was not escalated",
        },
    )
    assert finding.status_code == 201, finding.text
    finding_id = finding.json()["id"]

    plan = await api.post(
        "/v1/action-plans",
        json={"title": f"Plan {tag}", "organisations": ["RR8"], "sections": ["Escalation"]},
    )
    assert plan.status_code == 201, plan.text
    section_id = plan.json()["sections"][0]["id"]
    action = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan.json()["id"],
            "section_id": section_id,
            "reference": "1",
            "action": "Teach NEWS2 escalation on every ward",
            "leads": ["AB"],
            "due_date": "2030-01-31",
            "finding_ids": [finding_id],
        },
    )
    assert action.status_code == 201, action.text
    programme = await seed_programme(api, death_id, theme["id"], given, family)
    return Seeded(
        nhs_number=nhs,
        given_name=given,
        family_name=family,
        local_patient_id=local_id,
        source_reference=source_reference,
        leder_reference=leder_reference,
        ids={
            "death_id": death_id,
            "notification_id": notification_id,
            "case_reference": recorded["death"]["case_reference"],
            "screening_id": screening_id,
            "referral_id": sjr,
            "review_id": review_id,
            "finding_id": finding_id,
            "theme_id": theme["id"],
            "plan_id": plan.json()["id"],
            "action_id": action.json()["id"],
            **programme,
        },
    )


async def seed_programme(
    api: Any, death_id: str, theme_id: str, given: str, family: str
) -> dict[str, str]:
    """A review programme over February 2019 holding the seeded death (which counts its
    routine SJR), with the patient in its free text: an answer, the relatives' view, a second
    opinion's reason; and a theme mapping."""
    tag = uuid.uuid4().hex[:8]
    created = await api.post(
        "/v1/programmes",
        json={
            "name": f"February 2019 {tag}",
            "owner": "Mortality lead",
            "period_start": "2019-02-01",
            "period_end": "2019-02-28",
            "questions": [{"code": "notes", "text": "Notes", "kind": "text"}],
        },
        headers=idem(),
    )
    assert created.status_code == 201, created.text
    programme_id = created.json()["id"]
    built = await api.post(f"/v1/programmes/{programme_id}/cohort")
    assert built.status_code == 200, built.text
    cases = await api.get(f"/v1/programmes/{programme_id}/cases", params={"limit": 200})
    (case,) = [c for c in cases.json()["items"] if c["death_id"] == death_id]
    read = await api.get(f"/v1/programmes/{programme_id}/cases/{case['id']}")
    answered = await api.put(
        f"/v1/programmes/{programme_id}/cases/{case['id']}/answers",
        json={
            "answers": [{"question": "notes", "answer": f"{given} {family}'s notes were late"}],
            "relatives": {"sought": "yes", "view": f"{family}'s daughter was not called"},
        },
        headers={"If-Match": read.headers["ETag"]},
    )
    assert answered.status_code == 200, answered.text
    opinion = await api.post(
        f"/v1/programmes/{programme_id}/cases/{case['id']}/second-opinions",
        json={"requested_from": "Dr Other", "reason": f"Is {family}'s care poor?"},
    )
    assert opinion.status_code == 201, opinion.text
    other = await api.post(
        "/v1/themes", json={"code": f"seed_{tag}", "name": f"Seeded theme {tag}"}
    )
    assert other.status_code == 201, other.text
    mapping = await api.post("/v1/theme-mappings", json={"themes": [theme_id, other.json()["id"]]})
    assert mapping.status_code == 201, mapping.text
    return {"programme_id": programme_id, "case_id": case["id"], "mapping_id": mapping.json()["id"]}
