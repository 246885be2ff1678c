"""The scrutiny in full (issue 15): times, QAP, proposed and agreed causes with ICD-10 and
SNOMED CT codes, registrar rejections, urgent release and the contact log with the bereaved;
validated, shown in full, pseudonymised without names or text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import idem, screening_body
from tests.kit.feed import drain_until, head

DIED = datetime.now(UTC) - timedelta(days=3)


def at(hours: float) -> str:
    return (DIED + timedelta(hours=hours)).isoformat()


def full_scrutiny(**extra: Any) -> dict[str, Any]:
    return {
        "screened_at": at(30),
        "bereaved_contacted": True,
        "notes_received_at": at(4),
        "scrutiny_completed_at": at(20),
        "mccd_issued_at": at(26),
        "qap_discussed": True,
        "qap": {"name": "Dr Qapname Tester", "gmc_number": "7123450"},
        "cause_of_death": {"part_1a": "Community acquired pneumonia", "part_2": "COPD"},
        "cause_of_death_codes": {
            "part_1a": {"icd10": "j189", "snomed_ct": "233604007"},
            "part_2": {"icd10": "J44.9"},
        },
        "proposed_cause_of_death": {
            "part_1a": "Pneumonia",
            "codes": {"part_1a": {"snomed_ct": "233604007"}},
        },
        "registrar_rejections": [
            {"rejected_at": at(40), "reason": "Abbreviation used", "reissued_at": at(44)}
        ],
        "urgent_release": {"requested_at": at(2), "reason": "faith", "granted": True},
        "bereaved_contacts": [
            {
                "contacted_at": at(22),
                "contact": "Daughter Bereavedname",
                "method": "phone",
                "compliments": "Kind nurses on the ward",
                "wants_involvement": False,
            }
        ],
        **extra,
    }


async def post(api, scrutiny: dict[str, Any]):
    body = screening_body(died_at=DIED, screening=scrutiny)
    return await api.post("/v1/screenings", json=body, headers=idem())


async def test_the_scrutiny_in_full_is_recorded_and_read_back(api):
    response = await post(api, full_scrutiny())
    assert response.status_code == 201, response.text
    screening = (await api.get(f"/v1/screenings/{response.json()['id']}")).json()
    assert screening["qap"] == {"name": "Dr Qapname Tester", "gmc_number": "7123450"}
    assert screening["cause_of_death_codes"]["part_1a"] == {
        "icd10": "J18.9",
        "snomed_ct": "233604007",
    }
    assert screening["proposed_cause_of_death"]["part_1a"] == "Pneumonia"
    assert screening["registrar_rejections"][0]["reason"] == "Abbreviation used"
    assert screening["urgent_release"]["reason"] == "faith"
    assert screening["bereaved_contacts"][0]["method"] == "phone"
    assert screening["notes_received_at"] is not None
    # No concern in the log: no bereaved-concern referral.
    assert all("bereaved_concern" not in r["reasons"] for r in response.json()["referrals"])


async def test_a_concern_in_any_contact_triggers_the_bereaved_concern_rule(api):
    contacts = [
        {"contacted_at": at(10), "contact": "Son", "method": "in_person"},
        {
            "contacted_at": at(12),
            "contact": "Son",
            "method": "phone",
            "concerns": "Pain relief was late",
            "wants_involvement": True,
        },
    ]
    response = await post(api, full_scrutiny(bereaved_contacts=contacts))
    assert response.status_code == 201, response.text
    sjr = [r for r in response.json()["referrals"] if r["route"] == "sjr"]
    assert sjr and "bereaved_concern" in sjr[0]["reasons"]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (
            {"cause_of_death_codes": {"part_1a": {"icd10": "18.9"}}},
            "/screening/cause_of_death_codes/part_1a/icd10",
        ),
        (
            {"cause_of_death_codes": {"part_1a": {"snomed_ct": "233604008"}}},
            "/screening/cause_of_death_codes/part_1a/snomed_ct",
        ),
        (
            {"cause_of_death_codes": {"part_2": {"snomed_ct": "12345"}}},
            "/screening/cause_of_death_codes/part_2/snomed_ct",
        ),
        ({"qap": {"name": "Dr Q", "gmc_number": "12345"}}, "/screening/qap/gmc_number"),
        ({"notes_received_at": at(-5)}, "/screening/notes_received_at"),
        ({"scrutiny_completed_at": at(2)}, "/screening/scrutiny_completed_at"),
        ({"scrutiny_completed_at": at(24 * 30)}, "/screening/scrutiny_completed_at"),
        (
            {
                "registrar_rejections": [
                    {"rejected_at": at(40), "reason": "x", "reissued_at": at(39)}
                ]
            },
            "/screening/registrar_rejections/0/reissued_at",
        ),
        (
            {"urgent_release": {"requested_at": at(1), "reason": "convenience"}},
            "/screening/urgent_release/reason",
        ),
        (
            {"bereaved_contacts": [{"contacted_at": at(3), "contact": "Wife", "method": "pigeon"}]},
            "/screening/bereaved_contacts/0/method",
        ),
        ({"bereaved_contacted": False}, "/screening/bereaved_contacted"),
    ],
)
async def test_bad_scrutiny_is_a_422_at_its_field_and_nothing_is_stored(api, change, pointer):
    body = screening_body(died_at=DIED, screening=full_scrutiny(**change))
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422, response.text
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    listed = await api.get(
        "/v1/deaths", params={"source_reference": body["death"]["source_reference"]}
    )
    assert listed.json()["items"] == []


async def test_the_pseudonymised_view_shares_codes_never_names_or_text(api, make_api):
    recorded = (await post(api, full_scrutiny())).json()
    commissioner = await make_api(pseudonymised=True)
    response = await commissioner.get(f"/v1/screenings/{recorded['id']}")
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["cause_of_death_codes"]["part_1a"]["icd10"] == "J18.9"
    assert shown["proposed_cause_of_death_codes"]["part_1a"]["snomed_ct"] == "233604007"
    assert shown["qap_recorded"] is True and "qap" not in shown
    assert shown["scrutiny_within_24_hours"] is True
    assert shown["registrar_rejections"] == 1 and shown["mccd_reissued"] is True
    assert shown["urgent_release_reason"] == "faith"
    assert shown["bereaved_contacts"][0]["compliments_given"] is True
    for secret in (
        "Qapname",
        "7123450",
        "Bereavedname",
        "Kind nurses",
        "pneumonia",
        "Abbreviation",
    ):
        assert secret.lower() not in response.text.lower()


async def test_an_amendment_keeps_the_earlier_scrutiny_as_a_version(api):
    recorded = (await post(api, full_scrutiny())).json()
    url = f"/v1/screenings/{recorded['id']}"
    current = await api.get(url)
    amended = {
        **screening_body(died_at=DIED, screening=full_scrutiny())["screening"],
        "bereaved_contacts": [],
        "bereaved_contacted": False,
    }
    put = await api.put(url, json=amended, headers={"If-Match": current.headers["ETag"]})
    assert put.status_code == 200, put.text
    assert put.json()["bereaved_contacts"] == []
    versions = (await api.get(f"{url}/versions")).json()
    assert versions[0]["snapshot"]["bereaved_contacts"][0]["contact"] == "Daughter Bereavedname"


async def test_the_scrutiny_raises_its_events(api):
    cursor = await head(api)
    recorded = (await post(api, full_scrutiny())).json()
    url = f"/v1/screenings/{recorded['id']}"
    types = (
        "screening.mccd_rejected,screening.bereaved_contact_logged,"
        "screening.bereaved_concern_raised"
    )

    def kinds(events: list[dict[str, Any]]) -> list[str]:
        return sorted(e["type"] for e in events if e["resource"]["id"] == recorded["id"])

    seen, cursor = await drain_until(api, cursor, lambda e: len(kinds(e)) >= 2, types=types)
    assert kinds(seen) == ["screening.bereaved_contact_logged", "screening.mccd_rejected"]
    screening = full_scrutiny()
    screening["bereaved_contacts"].append(
        {"contacted_at": at(30), "contact": "Son", "method": "letter", "concerns": "No call back"}
    )
    body = screening_body(died_at=DIED, screening=screening)["screening"]
    current = await api.get(url)
    put = await api.put(url, json=body, headers={"If-Match": current.headers["ETag"]})
    assert put.status_code == 200, put.text
    # The amendment added a contact, with a concern; the rejections stayed as they were.
    seen, _ = await drain_until(api, cursor, lambda e: len(kinds(e)) >= 2, types=types)
    assert kinds(seen) == ["screening.bereaved_concern_raised", "screening.bereaved_contact_logged"]
