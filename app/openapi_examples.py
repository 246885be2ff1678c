"""An example for every JSON request body that has none in its model (issue 18), by the
component schema's name. tests/test_openapi_document.py validates each against its model."""

from __future__ import annotations

from typing import Any

_UUID = "6f1c3e0a-4a1b-4f7e-9a55-0c1d2e3f4a5b"
_LEASE = "0d9f2b7c-3e4a-4c1d-9b8e-5f6a7b8c9d0e"
_DEATH = "0b7e9c1e-2f7d-4c59-8a0e-3d4c5b6a7f80"

_SCREENING_PART: dict[str, Any] = {
    "examiner": {"name": "Dr A Examiner", "gmc_number": "1234567"},
    "screened_at": "2026-11-21T09:00:00+00:00",
    "records_reviewed": True,
    "qap_discussed": True,
    "bereaved_contacted": True,
    "bereaved_concerns": "Family felt pain relief was delayed.",
    "coroner_notified": False,
    "death_expected": True,
    "overrides": [],
}
_SCREENING: dict[str, Any] = {
    "death": {
        "source_system": "me-office",
        "source_reference": "ME-2026-0042",
        "nhs_number": "943 476 5919",
        "nhs_number_status": "01",
        "given_name": "Test",
        "family_name": "Patient",
        "date_of_birth": "1948-06-01",
        "sex": "female",
        "postcode": "LS1 4AP",
        "died_at": "2026-11-20T03:10:00+00:00",
        "place_of_death": "inpatient",
        "site": "General Infirmary",
        "admitting_specialty": "General Medicine",
        "specialty_at_death": "General Medicine",
        "admission_method": "elective",
        "admitted_at": "2026-11-12T10:00:00+00:00",
        "learning_disability": True,
    },
    "screening": _SCREENING_PART,
}
_SJR: dict[str, Any] = {
    "instrument": "sjr",
    "reviewer": {"name": "Dr B Reviewer"},
    "phases": [
        {
            "phase": "admission_initial",
            "rating": 3,
            "narrative": "Prompt assessment and a clear plan on admission.",
        },
        {"phase": "overall", "rating": 2, "narrative": "Delayed escalation."},
    ],
    "quality_of_records": 3,
    "avoidability": 4,
    "problems_in_care": [{"type": "monitoring", "phase": "ongoing", "harm": "probably"}],
}

_NOTIFICATION: dict[str, Any] = {
    "source_system": "epr",
    "source_reference": "ENC-2026-118842",
    "nhs_number": "943 476 5919",
    "nhs_number_status": "01",
    "local_patient_id": "RX1204518",
    "given_name": "Test",
    "family_name": "Patient",
    "date_of_birth": "1948-06-01",
    "sex": "female",
    "postcode": "LS1 4AP",
    "died_at": "2026-11-20T03:10:00+00:00",
    "place_of_death": "inpatient",
    "site": "General Infirmary",
    "ward": "Ward 7",
    "admitting_specialty": "General Medicine",
    "specialty_at_death": "General Medicine",
    "admission_method": "emergency",
    "admitted_at": "2026-11-16T22:40:00+00:00",
    "sent_at": "2026-11-20T03:25:00+00:00",
    "message_id": "MSG000123456",
}

EXAMPLES: dict[str, Any] = {
    "NotificationCreate": _NOTIFICATION,
    "WorklistClaimRequest": {"lease_seconds": 3600},
    "NotesReceivedRequest": {
        "notes_received_at": "2026-11-20T09:15:00+00:00",
        "lease_id": "5f0c6a1e-2b7d-4c3e-9a8f-1d2e3f4a5b6c",
    },
    "JudgementIn": {
        "judgement": "possibly_missed",
        "criterion": "bereaved_concern",
        "reason": "The family's concern about pain relief met the referral criterion; "
        "a structured judgement review should have been considered.",
    },
    "ScreeningCreate": _SCREENING,
    "ScreeningBatch": {"screenings": [_SCREENING]},
    "ScreeningAmend": {**_SCREENING_PART, "staff_concerns": "Handover notes were incomplete."},
    "DeathPatch": {"ward": "Ward 12", "consultant": "Dr C Consultant"},
    "DuplicateReview": {"other_death_id": _DEATH, "decision": "same_person"},
    "ClaimRequest": {"route": "sjr", "specialty": "General Medicine", "count": 1},
    "LeaseRequest": {"lease_id": _LEASE, "lease_seconds": 3600},
    "ReleaseRequest": {"lease_id": _LEASE},
    "AssignRequest": {"assigned_to": "Dr B Reviewer"},
    "ReasonRequest": {"reason": "Awaiting the coroner's inquest.", "lease_id": _LEASE},
    "ResumeRequest": {},
    "CancelRequest": {"reason": "Referred in error: the death was recorded twice."},
    "ReviewSubmission": {"lease_id": _LEASE, "review": _SJR},
    "ReviewAmendment": {"review": {**_SJR, "avoidability": 5}},
    "ThemeCreate": {
        "code": "escalation",
        "name": "Escalation of the deteriorating patient",
        "description": "Recognising and escalating deterioration (NEWS2).",
    },
    "ThemePatch": {"description": "Recognising, escalating and responding to deterioration."},
    "FindingCreate": {
        "death_id": _DEATH,
        "kind": "problem_in_care",
        "theme_code": "escalation",
        "phase": "ongoing",
        "description": "NEWS2 of 7 not escalated for four hours overnight.",
        "recorded_by": "Dr B Reviewer",
    },
    "FindingPatch": {"description": "NEWS2 of 7 not escalated for five hours overnight."},
    "PlanCreate": {
        "title": "Learning from Deaths improvement plan 2026/27",
        "sponsor": "Medical Director",
        "organisations": ["RWE", "LPT", "Healthwatch Leicester"],
        "sections": ["Deteriorating patient", "Communication with families"],
    },
    "PlanPatch": {"sponsor": "Chief Nurse"},
    "SectionCreate": {"title": "End of life care"},
    "ActionCreate": {
        "plan_id": _UUID,
        "section_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "reference": "1.1",
        "action": "Audit NEWS2 escalation on the medical wards monthly.",
        "leads": ["Deputy Chief Nurse"],
        "organisations": ["UHL", "Healthwatch Leicester"],
        "due_date": "2027-03-31",
        "status": 2,
    },
    "ActionPatch": {
        "status": 3,
        "comments": "First two audits done.",
        "organisations": ["RWE", "Leicester City Council"],
    },
    "ProgressUpdateCreate": {
        "narrative": "Audit of October: 82% escalated within an hour.",
        "status": 3,
    },
    "FindingLinks": {"finding_ids": ["2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"]},
    "ProgrammeCreate": {
        "name": "Deaths of 20 June to 21 July 2026",
        "purpose": "A clinical quality audit of a month's deaths for the Quality Committee.",
        "owner": "Mortality Surveillance Group",
        "period_start": "2026-06-20",
        "period_end": "2026-07-21",
        "cohort": {
            "places_of_death": ["inpatient", "community_hospital"],
            "discharged_within_days": 30,
            "age_min": 18,
            "excluded_wards": ["Bradgate Mental Health Unit"],
            "excluded_specialties": ["Psychiatry"],
        },
        "sampling": {"mode": "percent", "percent": 50, "seed": 20260620},
        "questions": [
            {
                "code": "admission_avoidable",
                "text": "Could the admission have been avoided?",
                "kind": "yes_no",
                "required": True,
            },
            {"text": "Was fast-track discharge effective?", "kind": "scale"},
            {"text": "Were the relatives' views sought?", "kind": "yes_no"},
        ],
    },
    "ProgrammePatch": {
        "plan_id": _UUID,
        "plan_approved_by": "Quality Committee",
        "plan_approved_on": "2026-10-14",
    },
    "Recommendations": {
        "recommendations": [
            {
                "key_area": "A",
                "key_area_title": "Recognising deterioration",
                "text": "Escalate a NEWS2 of 5 or more to the registrar within the hour.",
                "action_ids": ["2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"],
            },
            {
                "key_area": "B",
                "key_area_title": "End of life care",
                "text": "Discuss DNACPR decisions with the family on admission.",
            },
        ]
    },
    "MappingIn": {
        "themes": ["dnar_orders", "dnacpr_decisions"],
        "note": "The 2017 audit's 'DNAR orders' are the 2026 audit's 'DNACPR decisions'.",
    },
    "ProgrammeReviewSubmission": {
        "lease_id": _LEASE,
        "review": _SJR,
        "answers": [
            {"question": "admission_avoidable", "answer": "no"},
            {"question": "fast_track_discharge_effective", "answer": 4},
        ],
        "relatives": {"sought": "yes", "view": "The family felt listened to."},
    },
    "AnswersIn": {
        "answers": [{"question": "admission_avoidable", "answer": "not_applicable"}],
        "relatives": {"sought": "not_applicable"},
        "answered_by": "Dr B Reviewer",
    },
    "SecondOpinionRequest": {
        "requested_from": "Dr C Colleague",
        "reason": "Borderline between adequate and poor care: a second view, please.",
    },
    "ExcludeRequest": {"reason": "Recorded in error: the death was at another trust."},
    "EndpointCreate": {
        "url": "https://icb.example.nhs.uk/lfd-hooks",
        "description": "ICB quality team",
        "event_types": ["referral.*"],
    },
    "EndpointPatch": {"event_types": ["referral.*", "review.submitted"]},
}


def add_examples(document: dict[str, Any]) -> None:
    """Put the example on each JSON request body whose schema has none."""
    schemas = document.get("components", {}).get("schemas", {})
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                schema = body.get("schema", {})
                # An optional body (`Model | None`) is an anyOf of the model and null.
                refs = [s["$ref"] for s in schema.get("anyOf", []) if "$ref" in s]
                ref = schema.get("$ref") or (refs[0] if len(refs) == 1 else "")
                name = str(ref).rsplit("/", 1)[-1]
                if "example" in body or "examples" in body:
                    continue
                if name in EXAMPLES and "examples" not in schemas.get(name, {}):
                    body["example"] = EXAMPLES[name]
                elif media == "text/csv":
                    body["example"] = (
                        "Learning from Deaths improvement plan 2026/27\n"
                        "Ref,Action,Lead,Due date,Status\n"
                        "1.1,Audit NEWS2 escalation monthly,Deputy Chief Nurse,31/03/2027,2\n"
                    )
