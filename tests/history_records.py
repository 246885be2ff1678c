"""Hand-made history records (docs/history.md) for the history tests: a death in the past with
its screening, and referrals, reviews and findings at times the test chooses. NHS numbers from
the reserved 999 range; no real person."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.factories import test_nhs_number


def iso(moment: datetime) -> str:
    return moment.isoformat()


def sjr_form(
    overall: int = 3, avoidability: int = 5, reviewer: str = "Dr Reviewer", **extra: Any
) -> dict[str, Any]:
    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer},
        "phases": [
            {"phase": "admission_initial", "rating": 4},
            {"phase": "overall", "rating": overall},
        ],
        "quality_of_records": 3,
        "avoidability": avoidability,
        "problems_in_care": [{"type": "monitoring", "phase": "ongoing", "harm": "probably"}],
        **extra,
    }


def sjr_referral(
    created: datetime,
    submitted: datetime | None,
    *,
    reference: str = "R1",
    stage: int = 1,
    reasons: list[str] | None = None,
    form: dict[str, Any] | None = None,
    due: datetime | None = None,
) -> dict[str, Any]:
    """An SJR referral: completed with its review submitted at ``submitted``, or still open
    (ready, due at ``due``) when ``submitted`` is None."""
    referral: dict[str, Any] = {
        "reference": reference,
        "route": "sjr",
        "stage": stage,
        "reasons": reasons or ["unexpected_death"],
        "created_at": iso(created),
    }
    if submitted is None:
        referral.update(status="ready", due_at=iso(due or created + timedelta(days=56)))
        return referral
    referral.update(
        status="completed",
        closed_at=iso(submitted),
        reviewer=(form or sjr_form())["reviewer"]["name"],
        review={"status": "submitted", "submitted_at": iso(submitted), "form": form or sjr_form()},
    )
    return referral


def history_record(
    died_at: datetime,
    *,
    reference: str | None = None,
    system: str = "legacy-datix",
    screened_after: timedelta = timedelta(days=1),
    death: dict[str, Any] | None = None,
    screening: dict[str, Any] | None = None,
    referrals: list[dict[str, Any]] | None = None,
    findings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An 80-year-old's expected death after an emergency admission (nothing today's rules
    require), unless ``death`` or ``screening`` say otherwise."""
    record: dict[str, Any] = {
        "format": "lfd-history/1",
        "death": {
            "source_system": system,
            "source_reference": reference or f"H-{uuid.uuid4().hex[:12]}",
            "nhs_number": test_nhs_number(),
            "nhs_number_status": "01",
            "given_name": "Histgiven",
            "family_name": "Histfamily",
            "date_of_birth": (died_at - timedelta(days=80 * 365 + 30)).date().isoformat(),
            "sex": "male",
            "postcode": "LS2 9JT",
            "died_at": iso(died_at),
            "place_of_death": "inpatient",
            "site": "Old Infirmary",
            "admitting_specialty": "General Medicine",
            "specialty_at_death": "General Medicine",
            "admission_method": "emergency",
            "admitted_at": iso(died_at - timedelta(days=4)),
        },
        "screening": {
            "examiner": {"name": "Dr Examiner", "gmc_number": "7654321"},
            "screened_at": iso(died_at + screened_after),
            "records_reviewed": True,
            "qap_discussed": True,
            "bereaved_contacted": True,
            "coroner_notified": False,
            "death_expected": True,
        },
        "referrals": referrals or [],
        "findings": findings or [],
    }
    record = copy.deepcopy(record)
    record["death"].update(death or {})
    record["screening"].update(screening or {})
    return record


def bundle(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


NDJSON = {"Content-Type": "application/x-ndjson"}


async def run(api: Any, records: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    """Post a bundle and poll the job to its end."""
    response = await api.post(
        "/v1/history/imports", content=bundle(records), headers=NDJSON, params=params
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    for _ in range(2000):
        job = (await api.get(location)).json()
        if job["status"] in {"completed", "refused", "failed"}:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the import did not finish")
