"""The FHIR R4 view: referrals as Task, deaths as Patient, searches as Bundles, errors as
OperationOutcome. Every FHIR body a test receives is validated by the third-party R4B models
(fhir.resources), which refuse unknown elements and malformed values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.task import Task
from sqlalchemy import select, update

from app.auth.scopes import Scope
from app.fhir.mapping import (
    AGE_BAND_EXTENSION,
    FHIR_TASK_STATUSES,
    NHS_NUMBER_SYSTEM,
    NHS_NUMBER_VERIFICATION_EXTENSION,
    NHS_NUMBER_VERIFICATION_SYSTEM,
    PSEUDONYM_SYSTEM,
    REFERRAL_STATUS_SYSTEM,
    ROUTE_SYSTEM,
)
from app.kit.enums import ReferralStatus
from app.kit.id_lists import names
from app.models import AuditEvent, Referral
from app.privacy.pseudonym import month_of_death
from tests.factories import idem, post_screening, screening_body

FHIR_JSON = "application/fhir+json"
MODELS: dict[str, Any] = {
    "Task": Task,
    "Patient": Patient,
    "Bundle": Bundle,
    "OperationOutcome": OperationOutcome,
    "CapabilityStatement": CapabilityStatement,
}
# What each referral status must read as (FHIR task-status), written out independently of
# the service's table, and parametrised over the enum below so a new status fails the test.
EXPECTED_TASK_STATUS = {
    "ready": "ready",
    "claimed": "accepted",
    "in_progress": "in-progress",
    "on_hold": "on-hold",
    "completed": "completed",
    "declined": "rejected",
    "cancelled": "cancelled",
}


def fhir(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The body, checked: the status, the FHIR media type, and valid against the R4B model."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body: dict[str, Any] = response.json()
    MODELS[body["resourceType"]].model_validate(body)
    return body


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    body = fhir(response, status)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(issue["severity"] in {"error", "fatal"} for issue in body["issue"])
    return body


def diagnostics(body: dict[str, Any]) -> str:
    return " ".join(issue.get("diagnostics", "") for issue in body["issue"])


async def record_ld(api: Any, **death: Any) -> dict[str, Any]:
    """A death referred to SJR and LeDeR (learning disability, adult)."""
    body = screening_body(death={"learning_disability": True, **death})
    response = await post_screening(api, body)
    referrals = await api.get(
        "/v1/referrals", params={"death_id": response.json()["death_id"], "limit": 200}
    )
    assert referrals.status_code == 200, referrals.text
    by_route = {r["route"]: r for r in referrals.json()["items"]}
    assert set(by_route) == {"sjr", "leder"}
    return {"body": body, "death_id": response.json()["death_id"], "referrals": by_route}


async def set_referral(database: Any, referral_id: str, **values: Any) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Referral).where(Referral.id == uuid.UUID(referral_id)).values(**values)
        )


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle.get("entry", [])]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle["link"]:
        if item["relation"] == relation:
            return str(item["url"])
    return None


async def search_ids(api: Any, params: dict[str, Any] | list[tuple[str, str]]) -> list[str]:
    bundle = fhir(await api.get("/fhir/r4/Task", params=params))
    assert link(bundle, "next") is None
    return [task["id"] for task in entries(bundle)]


# --- Task -------------------------------------------------------------------------------


async def test_a_referral_reads_as_a_task(api, database) -> None:
    case = await record_ld(api)
    sjr = case["referrals"]["sjr"]
    await set_referral(database, sjr["id"], external_reference="INC-12345")
    task = fhir(await api.get(f"/fhir/r4/Task/{sjr['id']}"))
    assert task["resourceType"] == "Task" and task["id"] == sjr["id"]
    assert task["status"] == "ready"
    assert task["intent"] == "order"
    assert task["priority"] == "routine"  # SJR is priority 3 by default
    assert task["code"]["coding"] == [
        {"system": ROUTE_SYSTEM, "code": "sjr", "display": "Structured Judgement Review"}
    ]
    assert task["code"]["text"] == "Structured Judgement Review, stage 1"
    assert task["businessStatus"]["coding"][0]["system"] == REFERRAL_STATUS_SYSTEM
    assert task["businessStatus"]["coding"][0]["code"] == "ready"
    assert task["for"] == {"reference": f"Patient/{case['death_id']}", "type": "Patient"}
    assert task["restriction"]["period"]["end"] == sjr["due_at"].replace("+00:00", "Z")
    assert datetime.fromisoformat(task["authoredOn"]) == datetime.fromisoformat(sjr["created_at"])
    assert "lastModified" in task and task["meta"]["versionId"] == "1"
    assert [c["code"] for c in task["reasonCode"]["coding"]] == sjr["reasons"]
    assert {
        "system": "https://lfd.example.nhs.uk/fhir/Id/referral",
        "value": sjr["id"],
    }.items() <= (task["identifier"][0].items())
    assert task["identifier"][1]["value"] == "INC-12345"
    assert "owner" not in task
    # No patient identifier on a Task: the patient is a reference by id only.
    text = (await api.get(f"/fhir/r4/Task/{sjr['id']}")).text
    assert case["body"]["death"]["nhs_number"] not in text
    assert case["body"]["death"]["family_name"] not in text


@pytest.mark.parametrize("status", list(ReferralStatus))
async def test_every_referral_status_maps_to_a_task_status(api, database, status) -> None:
    case = await record_ld(api)
    sjr = case["referrals"]["sjr"]
    future = datetime.now(UTC) + timedelta(hours=1)
    if status is ReferralStatus.claimed:
        # Stored as ready under a live lease: readers see claimed.
        values: dict[str, Any] = {
            "status": "ready",
            "lease_id": uuid.uuid4(),
            "lease_expires_at": future,
            "claimed_at": datetime.now(UTC),
        }
    else:
        values = {"status": status.value}
    await set_referral(database, sjr["id"], **values)
    other = "completed" if status is ReferralStatus.cancelled else "cancelled"
    await set_referral(database, case["referrals"]["leder"]["id"], status=other)
    task = fhir(await api.get(f"/fhir/r4/Task/{sjr['id']}"))
    assert task["status"] == EXPECTED_TASK_STATUS[status.value]
    assert task["status"] in FHIR_TASK_STATUSES
    assert task["businessStatus"]["coding"][0]["code"] == status.value
    # And the same status finds it.
    found = await search_ids(
        api, {"status": task["status"], "patient": f"Patient/{case['death_id']}"}
    )
    assert found == [sjr["id"]]


@pytest.mark.parametrize(
    ("priority", "code"),
    [(0, "stat"), (1, "asap"), (2, "urgent"), (3, "routine"), (4, "routine"), (9, "routine")],
)
async def test_priorities_map_to_request_priority(api, database, priority, code) -> None:
    case = await record_ld(api)
    sjr = case["referrals"]["sjr"]
    await set_referral(database, sjr["id"], priority=priority)
    assert fhir(await api.get(f"/fhir/r4/Task/{sjr['id']}"))["priority"] == code


async def test_default_priorities_of_the_routes(api) -> None:
    case = await record_ld(api)
    leder = fhir(await api.get(f"/fhir/r4/Task/{case['referrals']['leder']['id']}"))
    sjr = fhir(await api.get(f"/fhir/r4/Task/{case['referrals']['sjr']['id']}"))
    assert (leder["priority"], sjr["priority"]) == ("urgent", "routine")


async def test_a_claim_makes_the_task_accepted_with_its_owner(api, database) -> None:
    specialty = f"FHIR claims {uuid.uuid4().hex[:8]}"
    case = await record_ld(api, specialty_at_death=specialty)
    reviewer = f"Dr Owner {uuid.uuid4().hex[:6]}"
    claimed = await api.post(
        "/v1/referrals/claim",
        json={"route": "leder", "specialty": specialty, "count": 1, "reviewer": reviewer},
    )
    assert claimed.status_code == 200, claimed.text
    leder_id = case["referrals"]["leder"]["id"]
    assert [r["id"] for r in claimed.json()["items"]] == [leder_id]
    task = fhir(await api.get(f"/fhir/r4/Task/{leder_id}"))
    assert task["status"] == "accepted"
    assert task["owner"] == {"display": reviewer}
    assert await search_ids(api, {"owner": reviewer.upper(), "code": "leder"}) == [leder_id]
    # The lease lapses: ready again, no owner, and a new versionId at the same version.
    before = task["meta"]["versionId"]
    await set_referral(
        database, leder_id, lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    lapsed = fhir(await api.get(f"/fhir/r4/Task/{leder_id}"))
    assert lapsed["status"] == "ready" and "owner" not in lapsed
    assert lapsed["meta"]["versionId"] != before
    assert await search_ids(api, {"owner": reviewer}) == []


async def test_an_assignee_is_the_owner(api, database) -> None:
    case = await record_ld(api)
    sjr_id = case["referrals"]["sjr"]["id"]
    name = f"Dr Assigned {uuid.uuid4().hex[:6]}"
    await set_referral(database, sjr_id, assigned_to=name)
    assert fhir(await api.get(f"/fhir/r4/Task/{sjr_id}"))["owner"] == {"display": name}
    assert await search_ids(api, {"owner": name.lower()}) == [sjr_id]
    assert await search_ids(api, {"owner": f"{name},Nobody Else"}) == [sjr_id]


async def test_search_by_code_and_patient(api) -> None:
    first, second = await record_ld(api), await record_ld(api)
    patient = f"Patient/{first['death_id']}"
    assert await search_ids(api, {"patient": patient, "code": "leder"}) == [
        first["referrals"]["leder"]["id"]
    ]
    assert await search_ids(api, {"subject": patient, "code": f"{ROUTE_SYSTEM}|sjr"}) == [
        first["referrals"]["sjr"]["id"]
    ]
    assert await search_ids(api, {"patient": patient, "code": "http://other.example|sjr"}) == []
    both = await search_ids(
        api, {"patient": f"{first['death_id']},{second['death_id']}", "code": "sjr,leder"}
    )
    expected = {r["id"] for case in (first, second) for r in case["referrals"].values()}
    assert set(both) == expected and len(both) == 4
    # Repeated parameters AND: sjr and leder at once is nothing.
    assert await search_ids(api, [("patient", patient), ("code", "sjr"), ("code", "leder")]) == []


async def test_search_by_status_sees_the_lease(api, database) -> None:
    case = await record_ld(api)
    sjr, leder = case["referrals"]["sjr"]["id"], case["referrals"]["leder"]["id"]
    await set_referral(
        database,
        sjr,
        lease_id=uuid.uuid4(),
        claimed_at=datetime.now(UTC),
        lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    patient = f"Patient/{case['death_id']}"
    assert await search_ids(api, {"patient": patient, "status": "accepted"}) == [sjr]
    assert await search_ids(api, {"patient": patient, "status": "ready"}) == [leder]
    assert set(await search_ids(api, {"patient": patient, "status": "ready,accepted"})) == {
        sjr,
        leder,
    }
    # A FHIR status the view never produces matches nothing.
    assert await search_ids(api, {"patient": patient, "status": "draft"}) == []


async def test_search_by_due_period_in_uk_local_dates(api, database) -> None:
    case = await record_ld(api)
    sjr, leder = case["referrals"]["sjr"]["id"], case["referrals"]["leder"]["id"]
    # 23:30 UTC on 31 March 2026 is 00:30 BST on 1 April: due on the UK date 1 April.
    await set_referral(database, sjr, due_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC))
    await set_referral(database, leder, due_at=datetime(2026, 5, 10, 12, 0, tzinfo=UTC))
    patient = ("patient", f"Patient/{case['death_id']}")

    async def due(*periods: str) -> set[str]:
        return set(await search_ids(api, [patient, *[("period", p) for p in periods]]))

    assert await due("2026-04-01") == {sjr}
    assert await due("eq2026-03-31") == set()
    assert await due("2026-04") == {sjr}
    assert await due("2026") == {sjr, leder}
    assert await due("ge2026-04-01") == {sjr, leder}
    assert await due("gt2026-04-01") == {leder}
    assert await due("lt2026-04-01") == set()
    assert await due("le2026-04-01") == {sjr}
    assert await due("ge2026-04-02", "le2026-05-10") == {leder}
    assert await due("ge2026-03-31T23:30:00Z", "lt2026-03-31T23:30:01Z") == {sjr}
    assert await due("ge2026-04-01T00:30:00+01:00", "le2026-04-01T00:30:00+01:00") == {sjr}


async def test_pages_follow_the_next_link_in_queue_order(api, database) -> None:
    cases = [await record_ld(api) for _ in range(3)]
    deaths = ",".join(case["death_id"] for case in cases)
    expected = {r["id"] for case in cases for r in case["referrals"].values()}
    seen: list[dict[str, Any]] = []
    bundle = fhir(await api.get("/fhir/r4/Task", params={"patient": deaths, "_count": 2}))
    pages = 1
    while True:
        page = entries(bundle)
        assert len(page) <= 2
        seen.extend(page)
        next_url = link(bundle, "next")
        self_query = parse_qs(urlsplit(link(bundle, "self") or "").query)
        assert self_query["_count"] == ["2"] and self_query["patient"] == [deaths]
        if next_url is None:
            break
        query = parse_qs(urlsplit(next_url).query)
        assert query["patient"] == [deaths] and "_cursor" in query
        bundle = fhir(await api.get(next_url))
        pages += 1
        assert pages <= 4
    assert pages == 3
    assert [t["id"] for t in seen] == list(dict.fromkeys(t["id"] for t in seen))
    assert {t["id"] for t in seen} == expected
    keys = [(t["priority"], t["restriction"]["period"]["end"], t["authoredOn"]) for t in seen]
    order = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
    assert [(order[p], d) for p, d, _ in keys] == sorted((order[p], d) for p, d, _ in keys)
    # Every entry's fullUrl is the Task's address.
    assert all("fullUrl" in entry for entry in bundle.get("entry", []))


async def test_count_is_bounded(api) -> None:
    case = await record_ld(api)
    bundle = fhir(
        await api.get("/fhir/r4/Task", params={"patient": case["death_id"], "_count": 100000})
    )
    assert parse_qs(urlsplit(link(bundle, "self") or "").query)["_count"] == ["200"]
    assert "total" not in bundle


async def test_task_reads_are_audited(api, database) -> None:
    case = await record_ld(api)
    sjr = case["referrals"]["sjr"]["id"]
    fhir(await api.get(f"/fhir/r4/Task/{sjr}"))
    fhir(await api.get("/fhir/r4/Task", params={"patient": case["death_id"]}))
    fhir(await api.get(f"/fhir/r4/Patient/{case['death_id']}"))
    async with database.transaction() as session:
        rows = (
            await session.scalars(
                select(AuditEvent).where(
                    names(AuditEvent.death_ids, uuid.UUID(case["death_id"])),
                    AuditEvent.client_id == api.client_id,
                    AuditEvent.action.in_(["referral.read", "referral.list", "death.read"]),
                )
            )
        ).all()
    actions = sorted((row.action, str(row.resource_id)) for row in rows)
    referral_ids = sorted(r["id"] for r in case["referrals"].values())
    # The /v1 reads in record_ld() left referral.list rows too: count this test's own.
    assert ("referral.read", sjr) in actions
    assert [a for a in actions if a[0] == "death.read"] == [("death.read", case["death_id"])]
    assert len(referral_ids) > 1
    # One row per page naming the patient (issue 19), not one per referral: the /v1 page read
    # in record_ld() and the Task search.
    listed = [row for row in rows if row.action == "referral.list"]
    assert len(listed) == 2
    assert all(row.death_ids == [uuid.UUID(case["death_id"])] for row in listed)


async def test_task_etag_and_if_none_match(api) -> None:
    case = await record_ld(api)
    sjr = case["referrals"]["sjr"]["id"]
    first = await api.get(f"/fhir/r4/Task/{sjr}")
    task = fhir(first)
    tag = first.headers["etag"]
    assert tag == f'W/"{task["meta"]["versionId"]}"'
    again = await api.get(f"/fhir/r4/Task/{sjr}", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    # A change (a hold) makes the copy stale.
    held = await api.post(f"/v1/referrals/{sjr}/hold", json={"reason": "awaiting notes"})
    assert held.status_code == 200, held.text
    changed = await api.get(f"/fhir/r4/Task/{sjr}", headers={"If-None-Match": tag})
    assert fhir(changed)["status"] == "on-hold"
    assert changed.headers["etag"] != tag
    assert fhir(changed)["statusReason"] == {"text": "awaiting notes"}


# --- Patient ----------------------------------------------------------------------------


async def test_a_death_reads_as_a_patient(api) -> None:
    case = await record_ld(api)
    death = case["body"]["death"]
    response = await api.get(f"/fhir/r4/Patient/{case['death_id']}")
    patient = fhir(response)
    assert patient["id"] == case["death_id"]
    nhs = [i for i in patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM]
    assert len(nhs) == 1 and nhs[0]["value"] == death["nhs_number"]
    assert nhs[0]["extension"] == [
        {
            "url": NHS_NUMBER_VERIFICATION_EXTENSION,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": NHS_NUMBER_VERIFICATION_SYSTEM,
                        "code": "01",
                        "display": "Number present and verified",
                    }
                ]
            },
        }
    ]
    assert patient["name"] == [
        {"use": "official", "family": death["family_name"], "given": [death["given_name"]]}
    ]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == death["date_of_birth"]
    assert datetime.fromisoformat(patient["deceasedDateTime"]) == datetime.fromisoformat(
        death["died_at"]
    )
    assert patient["address"] == [{"postalCode": "LS1 4AP"}]
    assert response.headers["etag"] == f'W/"{patient["meta"]["versionId"]}"'
    again = await api.get(
        f"/fhir/r4/Patient/{case['death_id']}", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("sex", "gender"),
    [("male", "male"), ("female", "female"), ("indeterminate", "other"), ("not_known", "unknown")],
)
async def test_sex_maps_to_gender(api, sex, gender) -> None:
    case = await record_ld(api, sex=sex)
    assert fhir(await api.get(f"/fhir/r4/Patient/{case['death_id']}"))["gender"] == gender


async def test_a_patient_without_an_nhs_number(api) -> None:
    case = await record_ld(api, nhs_number=None, nhs_number_status="03")
    patient = fhir(await api.get(f"/fhir/r4/Patient/{case['death_id']}"))
    assert [i["system"] for i in patient["identifier"]] == [
        "https://lfd.example.nhs.uk/fhir/Id/case-reference"
    ]


async def test_pseudonymised_patient_has_no_identifiers(api, make_api) -> None:
    case = await record_ld(api, postcode="SW1A 1AA")
    death = case["body"]["death"]
    commissioner = await make_api(Scope.deaths_read, Scope.referrals_read, pseudonymised=True)
    response = await commissioner.get(f"/fhir/r4/Patient/{case['death_id']}")
    patient = fhir(response)
    for secret in (
        death["nhs_number"],
        death["given_name"],
        death["family_name"],
        death["date_of_birth"],
        death["local_patient_id"],
        "SW1A 1AA",
        "SW1A1AA",
        death["died_at"][:10],
    ):
        assert secret not in response.text
    assert [i["system"] for i in patient["identifier"]] == [PSEUDONYM_SYSTEM]
    assert patient["identifier"][0]["value"].startswith("P-")
    assert "name" not in patient and "birthDate" not in patient
    assert patient["deceasedDateTime"] == month_of_death(datetime.fromisoformat(death["died_at"]))
    assert patient["address"] == [{"postalCode": "SW1A"}]
    assert patient["extension"] == [{"url": AGE_BAND_EXTENSION, "valueString": "80-89"}]
    # The pseudonym is stable, and the representation has its own tag.
    again = fhir(await commissioner.get(f"/fhir/r4/Patient/{case['death_id']}"))
    assert again["identifier"] == patient["identifier"]
    assert response.headers["etag"].endswith('.pseudonymised"')
    # Tasks carry no identifiers either way.
    tasks = await commissioner.get("/fhir/r4/Task", params={"patient": case["death_id"]})
    assert len(entries(fhir(tasks))) == 2
    assert death["nhs_number"] not in tasks.text and death["family_name"] not in tasks.text


async def test_patient_search_by_nhs_number(api, make_api) -> None:
    case = await record_ld(api)
    number = case["body"]["death"]["nhs_number"]
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    for value in (number, spaced):
        bundle = fhir(
            await api.get("/fhir/r4/Patient", params={"identifier": f"{NHS_NUMBER_SYSTEM}|{value}"})
        )
        assert [p["id"] for p in entries(bundle)] == [case["death_id"]]
    bad = await api.get(
        "/fhir/r4/Patient", params={"identifier": f"{NHS_NUMBER_SYSTEM}|1234567890"}
    )
    assert "1234567890" not in bad.text
    outcome(bad, 400)
    outcome(await api.get("/fhir/r4/Patient"), 400)
    outcome(await api.get("/fhir/r4/Patient", params={"identifier": f"http://x|{number}"}), 400)
    commissioner = await make_api(Scope.deaths_read, pseudonymised=True)
    for params in (
        {"identifier": f"{NHS_NUMBER_SYSTEM}|{number}"},
        {"family": "Testfamily"},
        {"birthdate": "1940-01-01"},
    ):
        refused = await commissioner.get("/fhir/r4/Patient", params=params)
        assert "pseudonymised" in diagnostics(outcome(refused, 400))
        assert number not in refused.text


# --- Errors and the rest ----------------------------------------------------------------


async def test_errors_are_operation_outcomes(api, http, make_api) -> None:
    unknown = uuid.uuid4()
    outcome(await api.get(f"/fhir/r4/Task/{unknown}"), 404)
    outcome(await api.get("/fhir/r4/Task/not-a-uuid"), 404)
    outcome(await api.get(f"/fhir/r4/Patient/{unknown}"), 404)
    outcome(await api.get("/fhir/r4/Observation"), 404)
    outcome(await api.post("/fhir/r4/Task", json={"resourceType": "Task"}), 405)
    for params in (
        {"status": "bogus"},
        {"code": "not-a-route"},
        {"period": "ge31/03/2026"},
        {"period": "sa2026-01-01"},
        {"_count": "0"},
        {"_count": "ten"},
        {"_cursor": "garbage!"},
        {"_sort": "priority"},
        {"patient": "Patient/abc"},
        {"status": ""},
    ):
        body = outcome(await api.get("/fhir/r4/Task", params=params), 400)
        assert body["issue"][0]["code"] == "invalid"
    no_key = await http.get("/fhir/r4/Task")
    assert outcome(no_key, 401)["issue"][0]["code"] == "login"
    assert no_key.headers["www-authenticate"] == "Bearer"
    deaths_only = await make_api(Scope.deaths_read)
    forbidden = outcome(await deaths_only.get("/fhir/r4/Task"), 403)
    assert forbidden["issue"][0]["code"] == "forbidden"
    assert "referrals:read" in diagnostics(forbidden)
    referrals_only = await make_api(Scope.referrals_read)
    outcome(await referrals_only.get(f"/fhir/r4/Patient/{unknown}"), 403)
    xml = await api.get("/fhir/r4/Task", headers={"Accept": "application/fhir+xml"})
    assert outcome(xml, 406)["issue"][0]["code"] == "not-supported"
    outcome(await api.get("/fhir/r4/Task", params={"_format": "xml"}), 406)
    fhir(await api.get("/fhir/r4/Task", params={"_format": "json", "_count": 1}))
    # The /v1 API still answers problem+json.
    v1 = await api.get(f"/v1/referrals/{unknown}")
    assert v1.headers["content-type"].startswith("application/problem+json")


# Due dates a search may name: the years 2000 to 2100, as report periods. Outside, and near
# 9999 where the interval's end does not exist, a 400 (never a 500), without the value.
PERIODS_OUT_OF_RANGE = [
    "9999-12-31",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999+00:00",
    "9999",
    "9999-12",
    "le9999-12-31T23:59:59-14:00",
    "0001-01-01",
    "ge0001",
    "0001-01-01T00:00:00+01:00",
    "1999-12-31",
    "2101",
]
PERIODS_AT_THE_EDGES = [
    "ge2000-01-01",
    "ge2000-01-01T00:00:00+14:00",
    "le2100-12-31",
    "lt2100-12-31T23:59:59-12:00",
    "2100",
]


@pytest.mark.parametrize("pseudonymised", [False, True], ids=["full", "pseudonymised"])
async def test_a_due_date_outside_the_years_2000_to_2100_is_a_400_outcome(
    make_api, pseudonymised: bool
) -> None:
    client = await make_api(pseudonymised=pseudonymised) if pseudonymised else await make_api()
    for value in PERIODS_OUT_OF_RANGE:
        response = await client.get("/fhir/r4/Task", params={"period": value})
        body = outcome(response, 400)
        assert body["issue"][0]["code"] == "invalid"
        assert "2000 to 2100" in diagnostics(body), value
        assert "query:/period" in diagnostics(body)
        assert value.removeprefix("ge").removeprefix("le") not in response.text
    for value in PERIODS_AT_THE_EDGES:
        fhir(await client.get("/fhir/r4/Task", params={"period": value}))


@pytest.mark.parametrize("pseudonymised", [False, True], ids=["full", "pseudonymised"])
async def test_outcomes_name_parameters_never_the_values_sent(
    make_api, pseudonymised: bool
) -> None:
    client = await make_api(pseudonymised=pseudonymised) if pseudonymised else await make_api()
    pasted = "Testfamily<script>"
    for params in (
        {"status": pasted},
        {"status": f"ready,{pasted}"},
        {"period": f"ge{pasted}"},
        {"period": "zq2026-01-01"},
        {"code": pasted},
        {"patient": f"Patient/{pasted}"},
        {"owner": pasted * 20},
    ):
        response = await client.get("/fhir/r4/Task", params=params)
        outcome(response, 400)
        assert "Testfamily" not in response.text and "zq" not in response.text, params
    # A status names FHIR's list instead; a FHIR prefix the view does not take is named.
    status = outcome(await client.get("/fhir/r4/Task", params={"status": pasted}), 400)
    assert "in-progress" in diagnostics(status)
    prefix = outcome(await client.get("/fhir/r4/Task", params={"period": "ne2026-01-01"}), 400)
    assert "prefix ne" in diagnostics(prefix)
    # Unknown parameters: a name shaped like one is repeated (it is the client's code, not
    # data); anything else is counted, not repeated.
    response = await client.get(
        "/fhir/r4/Task", params={"_sort": "priority", "9990000000": "x", "Mrs Testfamily": "x"}
    )
    unknown = diagnostics(outcome(response, 400))
    assert "_sort" in unknown and "2 more not repeated" in unknown
    assert "9990000000" not in response.text and "Testfamily" not in response.text
    assert "query:/_sort" in unknown


@pytest.mark.parametrize("pseudonymised", [False, True], ids=["full", "pseudonymised"])
async def test_the_middlewares_refusals_under_fhir_are_outcomes(
    make_api, http, pseudonymised: bool
) -> None:
    """A NUL in the query (422), a body too large (413) or not JSON (415) is answered before
    routing: under /fhir/ as an OperationOutcome too, and /v1 keeps problem+json."""
    client = await make_api(pseudonymised=pseudonymised) if pseudonymised else await make_api()
    nul = outcome(await client.get("/fhir/r4/Task", params={"owner": "Testfamily\x00"}), 422)
    assert nul["issue"][0]["code"] == "invalid"
    assert "query:/owner" in diagnostics(nul) and "Testfamily" not in str(nul)
    # A NUL in a name that does not look like a parameter's: the name is not repeated.
    odd_name = await client.get("/fhir/r4/Task", params={"Testfamily\x00": "x"})
    assert "query:: contains NUL" in diagnostics(outcome(odd_name, 422))
    assert "Testfamily" not in odd_name.text
    too_large = await client.post(
        "/fhir/r4/Task",
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": FHIR_JSON},
    )
    assert outcome(too_large, 413)["issue"][0]["code"] == "too-long"
    not_json = await client.post(
        "/fhir/r4/Task", content=b"<Task/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert outcome(not_json, 415)["issue"][0]["code"] == "not-supported"
    # Before authentication (app/middleware.py): a NUL is a 422 even without a credential.
    unauthenticated = await http.get("/fhir/r4/Task", params={"owner": "\x00"})
    outcome(unauthenticated, 422)
    v1 = await client.get("/v1/referrals", params={"specialty": "\x00"})
    assert v1.status_code == 422
    assert v1.headers["content-type"].startswith("application/problem+json")


async def test_capability_statement(api) -> None:
    statement = fhir(await api.get("/fhir/r4/metadata"))
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Task", "Patient"}
    assert {p["name"] for p in resources["Task"]["searchParam"]} >= {
        "status",
        "code",
        "owner",
        "period",
        "patient",
        "_count",
    }


async def test_an_unexpected_failure_is_a_fatal_outcome_without_detail(
    api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.fhir import service

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Testfamily 9990000000 leaked?")

    monkeypatch.setattr(service, "read_task", broken)
    response = await api.get(f"/fhir/r4/Task/{uuid.uuid4()}")
    body = outcome(response, 500)
    assert body["issue"][0]["severity"] == "fatal"
    assert body["issue"][0]["code"] == "exception"
    assert "Testfamily" not in response.text and "9990000000" not in response.text


async def test_patient_search_pages_and_audits(api, database) -> None:
    first = await record_ld(api)
    number = first["body"]["death"]["nhs_number"]
    # A second death of the same NHS number (another source system's record of it).
    second_body = screening_body(death={"nhs_number": number, "source_system": "other-office"})
    created = await api.post("/v1/screenings", json=second_body, headers=idem())
    assert created.status_code == 201, created.text
    second = created.json()["death_id"]
    identifier = {"identifier": f"{NHS_NUMBER_SYSTEM}|{number}", "_count": 1}
    page_one = fhir(await api.get("/fhir/r4/Patient", params=identifier))
    next_url = link(page_one, "next")
    assert next_url is not None
    page_two = fhir(await api.get(next_url))
    assert link(page_two, "next") is None
    seen = [p["id"] for p in entries(page_one) + entries(page_two)]
    assert sorted(seen) == sorted([first["death_id"], second])
    async with database.transaction() as session:
        listed = (
            await session.scalars(
                select(AuditEvent.death_ids).where(
                    AuditEvent.client_id == api.client_id, AuditEvent.action == "death.list"
                )
            )
        ).all()
    assert {str(d) for page in listed for d in page} >= set(seen)
