"""Review bodies for each instrument, and deaths referred to one route."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from tests.factories import idem, screening_body


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def complete_sjr(**changes: Any) -> dict[str, Any]:
    """A complete SJR that sets nothing off (good care, death not avoidable)."""
    return {
        "instrument": "sjr",
        "reviewer": {"name": "Dr Valid", "role": "Consultant"},
        "phases": [
            {"phase": "admission_initial", "rating": 4, "narrative": "Seen promptly."},
            {"phase": "overall", "rating": 4, "narrative": "Good care throughout."},
        ],
        "quality_of_records": 4,
        "avoidability": 6,
        "problems_in_care": [],
        "patient_safety_incident_suspected": False,
        **changes,
    }


def mm_review(**changes: Any) -> dict[str, Any]:
    return {
        "instrument": "mm",
        "meeting_date": date.today().isoformat(),
        "specialty": "General Surgery",
        "presenter": "Dr Registrar",
        "outcome": "learning_identified",
        "learning_points": ["Earlier senior review"],
        **changes,
    }


def leder_review(death: dict[str, Any], **changes: Any) -> dict[str, Any]:
    notified = datetime.fromisoformat(death["died_at"]) + timedelta(hours=30)
    return {
        "instrument": "leder",
        "notified_at": notified.isoformat(),
        "leder_reference": "LDR-0001",
        **changes,
    }


def external_review(death: dict[str, Any], **changes: Any) -> dict[str, Any]:
    referred = datetime.fromisoformat(death["died_at"]) + timedelta(hours=26)
    return {
        "instrument": "external",
        "reference": "COR-2024-0001",
        "organisation": "HM Coroner, West Yorkshire (Eastern)",
        "referred_at": referred.isoformat(),
        "status": "referred",
        **changes,
    }


async def refer(api: Any, route: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new death whose screening refers it to `route` only: (the death, the referral)."""
    specialty = unique("Specialty")
    death: dict[str, Any] = {"admitting_specialty": specialty, "specialty_at_death": specialty}
    screening: dict[str, Any] = {}
    if route == "sjr":
        screening["death_expected"] = False
    elif route == "mm":
        death.update(admitting_specialty="General Surgery", specialty_at_death="General Surgery")
    elif route == "leder":
        death["autism"] = True
    elif route == "coroner":
        screening.update(coroner_notified=True, coroner_reason="cause_unknown")
    else:
        raise AssertionError(route)
    response = await api.post(
        "/v1/screenings", json=screening_body(death=death, screening=screening), headers=idem()
    )
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert [r["route"] for r in recorded["referrals"]] == [route]
    return recorded["death"], recorded["referrals"][0]


async def claim_one(api: Any, referral: dict[str, Any], reviewer: str) -> dict[str, Any]:
    response = await api.post(
        "/v1/referrals/claim",
        json={"route": referral["route"], "specialty": referral["specialty"], "count": 1},
        headers={"X-On-Behalf-Of": reviewer},
    )
    assert response.status_code == 200, response.text
    (claimed,) = response.json()["items"]
    assert claimed["id"] == referral["id"] and claimed["status"] == "claimed"
    return dict(claimed)


def problem_sjr(reviewer: str, overall: int, avoidability: int, **extra: Any) -> dict[str, Any]:
    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer},
        "phases": [
            {"phase": "admission_initial", "rating": 3, "narrative": "Seen promptly."},
            {"phase": "overall", "rating": overall, "narrative": "Overall."},
        ],
        "quality_of_records": 3,
        "avoidability": avoidability,
        "problems_in_care": [
            {"type": "monitoring", "phase": "ongoing", "harm": "probably"},
        ],
        **extra,
    }


def brief_sjr(reviewer: str, rating: int, narrative: str) -> dict[str, Any]:
    """A submittable SJR of the overall phase only, its records rated as its care, the death
    not avoidable (score 6)."""
    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer},
        "phases": [{"phase": "overall", "rating": rating, "narrative": narrative}],
        "quality_of_records": rating,
        "avoidability": 6,
    }


async def review_route(
    api: Any, recorded: dict[str, Any], route: str, sjr: dict[str, Any]
) -> dict[str, Any]:
    """Submit the review of the recorded death's referral on ``route`` (unclaimed, so no lease
    needed): ``sjr`` for an SJR, else an M&M meeting on the day of death; the 201's body."""
    (referral,) = [r for r in recorded["referrals"] if r["route"] == route]
    review = sjr if route == "sjr" else mm_review(meeting_date=recorded["death"]["died_on"])
    response = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": review})
    assert response.status_code == 201, response.text
    posted: dict[str, Any] = response.json()
    return posted
