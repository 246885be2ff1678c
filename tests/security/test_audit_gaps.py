"""Issue 11, defect 7: what the audit log missed. A referral's history (names and reasons), a
refused read (403), a read of a record that does not exist (404) and a search by NHS number
that finds nobody (which tells the client the person is not on the register) each leave a row
now, with its outcome; a search's row holds the number's keyed hash, never the number."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.audit import refusals
from app.audit.integrity import audit_keys, search_hash
from app.auth.scopes import Scope
from app.db import Database
from app.fhir.mapping import NHS_NUMBER_SYSTEM
from app.models import AuditEvent
from tests.conftest import Api, MakeApi
from tests.factories import idem, screening_body, test_nhs_number


def traced() -> tuple[str, dict[str, str]]:
    rid = uuid.uuid4().hex
    return rid, {"X-Request-ID": rid, "X-On-Behalf-Of": "Dr Prober"}


async def rows_of(database: Database, rid: str) -> list[AuditEvent]:
    async with database.transaction() as session:
        found = await session.scalars(select(AuditEvent).where(AuditEvent.request_id == rid))
        return list(found.all())


async def unexpected_death(api: Api) -> dict[str, Any]:
    body = screening_body(screening={"death_expected": False})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    recorded: dict[str, Any] = response.json()
    recorded["body"] = body
    return recorded


async def test_a_referrals_history_is_audited(api: Api, make_api: MakeApi, database) -> None:
    recorded = await unexpected_death(api)
    referral_id = recorded["referrals"][0]["id"]
    reader = await make_api(Scope.referrals_read)
    rid, headers = traced()
    response = await reader.get(f"/v1/referrals/{referral_id}/history", headers=headers)
    assert response.status_code == 200, response.text
    [row] = await rows_of(database, rid)
    assert (row.action, row.resource_type) == ("referral.history", "referral")
    assert row.outcome == "success"
    assert str(row.resource_id) == referral_id
    assert str(row.death_id) == recorded["death_id"]
    assert row.client_id == reader.client_id
    assert row.on_behalf_of == "Dr Prober"


async def test_a_refused_read_is_audited(api: Api, make_api: MakeApi, database) -> None:
    recorded = await unexpected_death(api)
    death_id = recorded["death_id"]
    writer = await make_api(Scope.deaths_write)
    rid, headers = traced()
    response = await writer.get(f"/v1/deaths/{death_id}", headers=headers)
    assert response.status_code == 403
    [row] = await rows_of(database, rid)
    assert (row.action, row.resource_type, row.outcome) == ("death.read", "death", "refused")
    assert str(row.resource_id) == death_id and str(row.death_id) == death_id
    assert row.client_id == writer.client_id

    # A pseudonymised client refused the audit log itself: refused, named, audited.
    commissioner = await make_api(pseudonymised=True)
    rid, headers = traced()
    response = await commissioner.get("/v1/audit-events", headers=headers)
    assert response.status_code == 403
    [row] = await rows_of(database, rid)
    assert (row.action, row.outcome, row.client_id) == (
        "audit_event.list",
        "refused",
        commissioner.client_id,
    )


async def test_reads_of_records_that_do_not_exist_are_audited(make_api: MakeApi, database) -> None:
    reader = await make_api(Scope.deaths_read, Scope.referrals_read)
    missing = uuid.uuid4()
    cases = [
        (f"/v1/deaths/{missing}", "death.read", missing),
        (f"/v1/referrals/{missing}/history", "referral.history", missing),
        (f"/fhir/r4/Task/{missing}", "referral.read", missing),
    ]
    for url, action, resource_id in cases:
        rid, headers = traced()
        response = await reader.get(url, headers=headers)
        assert response.status_code == 404, url
        [row] = await rows_of(database, rid)
        assert (row.action, row.outcome, row.resource_id) == (action, "not_found", resource_id)
        assert row.client_id == reader.client_id

    # A path segment that is not an id (here an NHS number typed into the URL) is not kept.
    number = test_nhs_number()
    rid, headers = traced()
    response = await reader.get(f"/fhir/r4/Patient/{number}", headers=headers)
    assert response.status_code == 404
    [row] = await rows_of(database, rid)
    assert (row.action, row.outcome, row.resource_id, row.death_id) == (
        "death.read",
        "not_found",
        None,
        None,
    )
    assert number not in str([getattr(row, c.key) for c in AuditEvent.__table__.columns])


async def test_a_request_without_a_valid_key_names_nobody_and_leaves_no_row(
    http: Any, database
) -> None:
    rid, headers = traced()
    response = await http.get(
        f"/v1/deaths/{uuid.uuid4()}", headers={**headers, "Authorization": "Bearer lfd_x_y"}
    )
    assert response.status_code == 401
    assert await rows_of(database, rid) == []


async def search_rows(database: Database, rid: str) -> list[AuditEvent]:
    return [row for row in await rows_of(database, rid) if row.action == "death.search"]


async def test_an_nhs_number_search_is_audited_found_or_not(
    api: Api, make_api: MakeApi, database
) -> None:
    recorded = await unexpected_death(api)
    present = recorded["body"]["death"]["nhs_number"]
    absent = test_nhs_number()
    reader = await make_api(Scope.deaths_read)
    async with database.transaction() as session:
        keys = await audit_keys(session)

    for number, outcome, listed in ((absent, "no_match", 0), (present, "success", 1)):
        rid, headers = traced()
        response = await reader.get("/v1/deaths", params={"nhs_number": number}, headers=headers)
        assert response.status_code == 200
        assert len(response.json()["items"]) == listed
        [row] = await search_rows(database, rid)
        assert (row.outcome, row.resource_id, row.death_id) == (outcome, None, None)
        assert row.query_hash == search_hash(keys, number)
        assert number not in str([getattr(row, c.key) for c in AuditEvent.__table__.columns])

    # FHIR: one row per number searched, each with its own outcome.
    rid, headers = traced()
    response = await reader.get(
        "/fhir/r4/Patient",
        params={"identifier": f"{NHS_NUMBER_SYSTEM}|{present},{NHS_NUMBER_SYSTEM}|{absent}"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    outcomes = {row.query_hash: row.outcome for row in await search_rows(database, rid)}
    assert outcomes == {
        search_hash(keys, present): "success",
        search_hash(keys, absent): "no_match",
    }


async def test_the_audit_log_answers_who_searched_for_a_patient(
    make_api: MakeApi, database
) -> None:
    absent = test_nhs_number()
    prober = await make_api(Scope.deaths_read)
    response = await prober.get("/v1/deaths", params={"nhs_number": absent})
    assert response.status_code == 200 and response.json()["items"] == []
    auditor = await make_api(Scope.audit_read)

    response = await auditor.get(
        "/v1/audit-events", params={"nhs_number": absent, "outcome": "no_match"}
    )
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert (item["client_id"], item["action"], item["outcome"]) == (
        str(prober.client_id),
        "death.search",
        "no_match",
    )
    assert absent not in response.text
    assert len(item["query_hash"]) == 64

    # The auditor's own search is audited with the same hash.
    again = await auditor.get("/v1/audit-events", params={"nhs_number": absent})
    actions = sorted(item["action"] for item in again.json()["items"])
    assert actions == ["audit.read", "death.search"]

    refused = await auditor.get("/v1/audit-events", params={"outcome": "maybe"})
    assert refused.status_code == 422
    invalid = await auditor.get("/v1/audit-events", params={"nhs_number": "1234567890"})
    assert invalid.status_code == 422


async def test_a_refusal_that_cannot_be_audited_is_not_answered(
    make_api: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> None:
        raise OSError("the database went away")

    monkeypatch.setattr(refusals, "audit_refusal", broken)
    reader = await make_api(Scope.deaths_read)
    response = await reader.get(f"/v1/deaths/{uuid.uuid4()}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
