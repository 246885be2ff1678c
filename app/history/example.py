"""One record of a history bundle, the first of examples/history-bundle.jsonl (a made-up
person): the request body's example in the OpenAPI document, one JSON object per line."""

from __future__ import annotations

import json
from typing import Any

EXAMPLE_RECORD: dict[str, Any] = {
    "format": "lfd-history/1",
    "death": {
        "source_system": "datix-mortality",
        "source_reference": "MORT-2017-0042",
        "nhs_number": "9990000123",
        "nhs_number_status": "01",
        "given_name": "Alex",
        "family_name": "Example",
        "date_of_birth": "1936-02-11",
        "sex": "male",
        "postcode": "LS1 4AP",
        "died_at": "2017-05-03T14:20:00+01:00",
        "place_of_death": "inpatient",
        "site": "General Infirmary",
        "ward": "Ward 12",
        "admitting_specialty": "General Medicine",
        "specialty_at_death": "Respiratory",
        "admission_method": "emergency",
        "admitted_at": "2017-04-27T22:05:00+01:00",
    },
    "screening": {
        "examiner": {"name": "Dr M Examiner", "gmc_number": "7654321"},
        "screened_at": "2017-05-04T10:30:00+01:00",
        "records_reviewed": True,
        "qap_discussed": True,
        "bereaved_contacted": True,
        "bereaved_concerns": "Family felt deterioration was missed overnight.",
        "cause_of_death": {"part_1a": "Community-acquired pneumonia", "part_2": "COPD"},
        "coroner_notified": False,
        "death_expected": False,
    },
    "referrals": [
        {
            "reference": "SJR-1187",
            "route": "sjr",
            "stage": 1,
            "reasons": ["bereaved_concern", "unexpected_death"],
            "status": "completed",
            "created_at": "2017-05-05T09:00:00+01:00",
            "claimed_at": "2017-05-12T11:00:00+01:00",
            "closed_at": "2017-06-20T16:45:00+01:00",
            "reviewer": "Dr S Reviewer",
            "review": {
                "status": "submitted",
                "started_at": "2017-05-12T11:00:00+01:00",
                "submitted_at": "2017-06-20T16:45:00+01:00",
                "form": {
                    "instrument": "sjr",
                    "reviewer": {"name": "Dr S Reviewer", "role": "Consultant physician"},
                    "phases": [
                        {"phase": "admission_initial", "rating": 4},
                        {
                            "phase": "ongoing",
                            "rating": 2,
                            "narrative": "NEWS of 7 not escalated for six hours.",
                        },
                        {"phase": "end_of_life", "rating": 3},
                        {"phase": "overall", "rating": 3},
                    ],
                    "quality_of_records": 3,
                    "avoidability": 5,
                    "problems_in_care": [
                        {"type": "monitoring", "phase": "ongoing", "harm": "probably"}
                    ],
                    "summary": "Adequate care overall; delayed escalation on the second night.",
                },
            },
        }
    ],
    "findings": [
        {
            "reference": "FND-301",
            "referral": "SJR-1187",
            "kind": "problem_in_care",
            "theme": {"code": "deterioration", "name": "Recognising deterioration"},
            "phase": "ongoing",
            "description": "A NEWS of 7 was not escalated to the medical registrar.",
            "recorded_by": "Mortality lead",
            "recorded_at": "2017-07-04T12:00:00+01:00",
        }
    ],
}

EXAMPLE_LINE = json.dumps(EXAMPLE_RECORD, separators=(",", ":")) + "\n"
