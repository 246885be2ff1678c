"""Synthetic screening bodies. NHS numbers come from the reserved 999 test range, with valid
Modulus 11 check digits; no real person."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.kit.nhs_number import check_digit

_DRAWN: set[str] = set()


def _demo_shaped(number: str) -> bool:
    """Whether `lfd demo` could hold this number (app.demo.draw.nhs_number: its ninth digit
    is the first that gives its stem a valid check digit); the demo's deaths share a test
    database with the tests (tests/test_demo.py), so a test's number is never one of them."""
    stem = number[:8]
    for ninth in range(10):
        digit = check_digit(stem + str(ninth))
        if digit is not None and len(set(f"{stem}{ninth}{digit}")) > 1:
            return number[8] == str(ninth)
    return False


def test_nhs_number(rng: random.Random | None = None) -> str:
    """A number no other call of this process drew, and no demo death holds (a test that
    looks a death up by NHS number finds only its own)."""
    rng = rng or random.Random()
    while True:
        first_nine = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        digit = check_digit(first_nine)
        candidate = first_nine + str(digit) if digit is not None else ""
        if (
            digit is not None
            and len(set(candidate)) > 1
            and candidate not in _DRAWN
            and not _demo_shaped(candidate)
        ):
            _DRAWN.add(candidate)
            return candidate


test_nhs_number.__test__ = False  # type: ignore[attr-defined]  # a factory, not a test


def screening_body(
    *,
    death: dict[str, Any] | None = None,
    screening: dict[str, Any] | None = None,
    died_at: datetime | None = None,
) -> dict[str, Any]:
    """An expected death of an 80-year-old emergency admission with nothing to refer, unless
    the overrides say otherwise."""
    died = died_at or datetime.now(UTC) - timedelta(days=2)
    body: dict[str, Any] = {
        "death": {
            "source_system": "test-me-office",
            "source_reference": f"ME-{uuid.uuid4().hex[:12]}",
            "nhs_number": test_nhs_number(),
            "nhs_number_status": "01",
            "local_patient_id": "RX1" + uuid.uuid4().hex[:8],
            "given_name": "Testgiven",
            "family_name": "Testfamily",
            "date_of_birth": (died - timedelta(days=80 * 365 + 30)).date().isoformat(),
            "sex": "female",
            "postcode": "LS1 4AP",
            "ethnicity": "A",
            "died_at": died.isoformat(),
            "place_of_death": "inpatient",
            "site": "St Elsewhere",
            "ward": "Ward 7",
            "admitting_specialty": "General Medicine",
            "specialty_at_death": "General Medicine",
            "consultant": "Dr Consultant",
            "admission_method": "emergency",
            "admitted_at": (died - timedelta(days=5)).isoformat(),
        },
        "screening": {
            "examiner": {"name": "Dr Examiner", "gmc_number": "7654321"},
            "screened_at": (died + timedelta(hours=20)).isoformat(),
            "records_reviewed": True,
            "qap_discussed": True,
            "bereaved_contacted": True,
            "bereaved_concerns": None,
            "staff_concerns": None,
            "cause_of_death": {"part_1a": "Pneumonia", "part_2": "Frailty"},
            "coroner_notified": False,
            "death_expected": True,
        },
    }
    body = copy.deepcopy(body)
    body["death"].update(death or {})
    body["screening"].update(screening or {})
    return body


def idem() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def in_specialty(specialty: str, admitting: str | None = None) -> dict[str, str]:
    """Death fields for a patient who died under ``specialty`` (admitted under ``admitting``,
    the same unless given)."""
    return {"specialty_at_death": specialty, "admitting_specialty": admitting or specialty}


async def post_screening(api: Any, body: dict[str, Any]) -> Any:
    """POST the screening with a fresh Idempotency-Key; the response, which must be a 201."""
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    return response


async def record(
    api: Any,
    body: dict[str, Any] | None = None,
    *,
    death: dict[str, Any] | None = None,
    screening: dict[str, Any] | None = None,
    died_at: datetime | None = None,
) -> dict[str, Any]:
    """Record a screening, ``body`` or else screening_body() with these overrides; what the
    201 answers (the screening, its death and its referrals)."""
    if body is None:
        body = screening_body(death=death, screening=screening, died_at=died_at)
    else:
        assert death is None and screening is None and died_at is None, "a body or overrides"
    recorded: dict[str, Any] = (await post_screening(api, body)).json()
    return recorded


async def record_unexpected(
    api: Any,
    specialty: str | None = None,
    *,
    death: dict[str, Any] | None = None,
    died_at: datetime | None = None,
    **screening: Any,
) -> dict[str, Any]:
    """An unexpected death (so an SJR referral), in ``specialty`` when given, unless the
    screening overrides say otherwise."""
    fields = {**(in_specialty(specialty) if specialty else {}), **(death or {})}
    return await record(
        api,
        death=fields or None,
        screening={"death_expected": False, **screening},
        died_at=died_at,
    )


async def deaths_with_source(api: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The deaths the service holds under the body's source_system + source_reference."""
    response = await api.get(
        "/v1/deaths",
        params={
            "source_system": body["death"]["source_system"],
            "source_reference": body["death"]["source_reference"],
        },
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def walk_pages(
    api: Any, path: str, params: dict[str, Any], max_pages: int = 10
) -> tuple[list[dict[str, Any]], int]:
    """Follow ``next_cursor`` from the first page to the last: (every item, pages read)."""
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = dict(params) if cursor is None else {**params, "cursor": cursor}
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["items"]) <= params.get("limit", 50)
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < max_pages, "the cursor never ended"
