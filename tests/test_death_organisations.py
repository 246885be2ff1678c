"""Deaths belong to organisations (issue 16, item 2): the site of death and the registered GP
practice by ODS code on every intake (screening, JSON notification, FHIR, HL7 v2), resolved in
the registry; the organisation that records the death; a code the registry lacks refused with
the field named; the death's JSON, its pseudonymised view, corrections and list filter."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.deaths.organisations import DeathCodes, resolve_death_codes
from app.errors import Forbidden
from app.reach import default_organisation_id
from app.scoping import DataScope, scoped
from tests.factories import idem, screening_body
from tests.kit.care_organisations import (
    Org,
    absent,
    add,
    client_of,
    icb_code,
    practice_code,
    site_of,
    trust_code,
)
from tests.kit.hl7 import ack_fields, adt
from tests.kit.notifications import notification_body, screening_of

FHIR = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
ODS_ORG = "https://fhir.nhs.uk/Id/ods-organization-code"
ODS_SITE = "https://fhir.nhs.uk/Id/ods-site-code"


@pytest.fixture
async def registry(database) -> dict[str, Org]:
    """An ICB, a trust under it with a site, and a GP practice."""
    icb = await add(database, "icb", "NHS Test ICB", icb_code)
    trust = await add(database, "trust", "Test Hospitals NHS Trust", trust_code, icb)
    site = await site_of(database, trust, "Test General Infirmary")
    practice = await add(database, "gp_practice", "Test Surgery", practice_code, icb)
    return {"icb": icb, "trust": trust, "site": site, "practice": practice}


@pytest.fixture
async def unknown(database) -> list[str]:
    """Site codes of the right form that the registry does not hold."""
    return [await absent(database) for _ in range(2)]


async def default_ref(database) -> dict[str, Any]:
    async with database.transaction() as session:
        default_id = await default_organisation_id(session)
    return {"id": str(default_id)}


async def screen(api: Any, status: int = 201, **death: Any) -> dict[str, Any]:
    response = await api.post("/v1/screenings", json=screening_body(death=death), headers=idem())
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def pointers(problem: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in problem["errors"]]


async def test_a_screening_names_its_site_and_practice_by_ods_code(api, database, registry):
    site, practice = registry["site"], registry["practice"]
    recorded = await screen(
        api,
        site_ods_code=site.ods_code.lower(),  # any case
        registered_gp_practice_ods_code=practice.ods_code,
    )
    death = recorded["death"]
    # The death is the posting client's organisation's (the default one): the site's trust is
    # not below it.
    assert death["organisation"]["id"] == (await default_ref(database))["id"]
    assert death["site_organisation"] == site.ref()
    assert death["gp_practice"] == practice.ref()
    assert death["site"] == "St Elsewhere"  # the free text stays as sent
    read = (await api.get(f"/v1/deaths/{death['id']}")).json()
    assert (read["organisation"], read["site_organisation"], read["gp_practice"]) == (
        death["organisation"],
        site.ref(),
        practice.ref(),
    )
    # A trust's code names the site of death too.
    by_trust = (await screen(api, site_ods_code=registry["trust"].ods_code))["death"]
    assert by_trust["site_organisation"] == registry["trust"].ref()
    plain = (await screen(api))["death"]
    assert plain["site_organisation"] is None and plain["gp_practice"] is None
    assert plain["organisation"]["id"] == death["organisation"]["id"]


async def test_codes_the_registry_lacks_or_of_the_wrong_form_or_kind_are_422(
    api, database, registry, unknown
):
    refused = await screen(api, 422, site_ods_code=unknown[0])
    assert refused["status"] == 422
    (error,) = refused["errors"]
    assert error["pointer"] == "/death/site_ods_code" and error["code"] == "unknown"
    assert "lfd organisations load" in error["detail"]

    malformed = await screen(
        api, 422, site_ods_code="St Elsewhere", registered_gp_practice_ods_code="12345"
    )
    assert sorted(pointers(malformed)) == [
        "/death/registered_gp_practice_ods_code",
        "/death/site_ods_code",
    ]
    # A practice is not a site (its code is not a site's form), an ICB is not a practice.
    assert pointers(await screen(api, 422, site_ods_code=registry["practice"].ods_code)) == [
        "/death/site_ods_code"
    ]
    other = await add(database, "other", "Out of hours", practice_code)
    wrong = await screen(api, 422, registered_gp_practice_ods_code=other.ods_code)
    assert pointers(wrong) == ["/death/registered_gp_practice_ods_code"]
    assert wrong["errors"][0]["code"] == "wrong_kind"
    # Nothing was recorded by a refused request.
    reference = f"ME-refused-{uuid.uuid4().hex[:8]}"
    late = unknown[1]
    await screen(api, 422, source_reference=reference, site_ods_code=late)
    listed = await api.get("/v1/deaths", params={"source_reference": reference})
    assert listed.status_code == 200 and listed.json()["items"] == []
    # The same death with its code in the registry goes in: the refusal was the code's.
    await add(database, "site", "Late site", late)
    await screen(api, source_reference=reference, site_ods_code=late.lower())
    listed = await api.get("/v1/deaths", params={"source_reference": reference})
    assert [item["site_organisation"]["ods_code"] for item in listed.json()["items"]] == [late]


async def test_a_json_notification_names_them_and_a_screening_completes_it(api, registry, unknown):
    site, practice = registry["site"], registry["practice"]
    body = notification_body(registered_gp_practice_ods_code=practice.ods_code)
    made = await api.post("/v1/death-notifications", json=body)
    assert made.status_code == 201, made.text
    death = made.json()["death"]
    assert death["gp_practice"] == practice.ref() and death["site_organisation"] is None
    # The screening of the notified death adds the site; the practice stays.
    screening = screening_of(body, site_ods_code=site.ods_code)
    screened = await api.post("/v1/screenings", json=screening, headers=idem())
    assert screened.status_code == 201, screened.text
    after = screened.json()["death"]
    assert after["id"] == death["id"]
    assert (after["site_organisation"], after["gp_practice"]) == (site.ref(), practice.ref())
    refused = await api.post(
        "/v1/death-notifications", json=notification_body(site_ods_code=unknown[0])
    )
    assert refused.status_code == 422 and pointers(refused.json()) == ["/site_ods_code"]


def bundle(site: dict[str, Any] | None, practice: str | None, where: str) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    from tests.factories import test_nhs_number

    died = datetime.now(UTC) - timedelta(hours=5)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": test_nhs_number()}],
        "gender": "female",
        "birthDate": "1940-01-01",
        "deceasedDateTime": died.isoformat(),
    }
    if practice is not None:
        patient["generalPractitioner"] = [
            {"identifier": {"system": ODS_ORG, "value": practice}, "display": "Surgery"}
        ]
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "period": {"start": (died - timedelta(days=2)).isoformat(), "end": died.isoformat()},
        "location": [{"location": {"display": "Ward 4"}}],
        "serviceProvider": {"display": "Infirmary"},
    }
    if site is not None and where == "location":
        encounter["location"] = [{"location": {"identifier": site, "display": "Ward 4"}}]
    elif site is not None:
        encounter["serviceProvider"] = {"identifier": site, "display": "Infirmary"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": {"system": "https://trust.example.nhs.uk/epr", "value": uuid.uuid4().hex},
        "entry": [
            {"resource": patient, "request": {"method": "POST", "url": "Patient"}},
            {"resource": encounter, "request": {"method": "POST", "url": "Encounter"}},
        ],
    }


async def test_fhir_takes_the_site_from_the_encounter_and_the_practice_from_the_patient(
    api, database, registry, unknown
):
    site, trust, practice = registry["site"], registry["trust"], registry["practice"]
    sent = bundle({"system": ODS_SITE, "value": site.ods_code}, practice.ods_code, "location")
    answer = await api.post("/fhir/r4", json=sent, headers=FHIR)
    assert answer.status_code == 200, answer.text
    death_id = answer.json()["entry"][0]["response"]["location"].removeprefix("Patient/")
    death = (await api.get(f"/v1/deaths/{death_id}")).json()
    assert (death["site_organisation"], death["gp_practice"]) == (site.ref(), practice.ref())
    # The serviceProvider's trust code, when no location names a site.
    provider = bundle({"system": ODS_ORG, "value": trust.ods_code}, None, "provider")
    answer = await api.post("/fhir/r4", json=provider, headers=FHIR)
    death_id = answer.json()["entry"][0]["response"]["location"].removeprefix("Patient/")
    assert (await api.get(f"/v1/deaths/{death_id}")).json()["site_organisation"] == trust.ref()
    # A code the registry lacks: an OperationOutcome naming the element it came from.
    for where, element in (
        ("location", "Encounter.location.location.identifier"),
        ("provider", "Encounter.serviceProvider.identifier"),
    ):
        refused = await api.post(
            "/fhir/r4",
            json=bundle({"system": ODS_SITE, "value": unknown[0]}, None, where),
            headers=FHIR,
        )
        assert refused.status_code == 422, refused.text
        issues = refused.json()["issue"]
        assert any(i.get("diagnostics", "").startswith(f"{element}:") for i in issues), issues
    unknown_practice = bundle(None, await absent(database, practice_code), "location")
    refused = await api.post("/fhir/r4", json=unknown_practice, headers=FHIR)
    assert refused.status_code == 422
    assert any(
        i.get("diagnostics", "").startswith("Patient.generalPractitioner.identifier:")
        for i in refused.json()["issue"]
    )


async def test_hl7_takes_pv1_39_and_pd1_3(api, registry, unknown):
    site, practice = registry["site"], registry["practice"]
    message = adt("A03")
    pv1 = message.split("\r")[3].split("|")
    pv1 += [""] * (40 - len(pv1))
    pv1[39] = site.ods_code
    pd1 = f"PD1|||Test Surgery^^{practice.ods_code}"
    segments = message.rstrip("\r").split("\r")
    segments[3] = "|".join(pv1)
    segments.insert(3, pd1)
    sent = "\r".join(segments) + "\r"
    response = await api.post(
        "/v1/hl7v2/adt", content=sent.encode(), headers={"Content-Type": "application/hl7-v2"}
    )
    assert ack_fields(response.text)["MSA"][1] == "AA", response.text
    visit = pv1[19]
    (death,) = (
        await api.get("/v1/deaths", params={"source_reference": visit, "source_system": "PAS@RX1"})
    ).json()["items"]
    assert (death["site_organisation"], death["gp_practice"]) == (site.ref(), practice.ref())
    assert death["site"] == "RX1SJ"  # PV1-3's facility stays free text
    # A PV1-39 of a site code's form the registry lacks: AE at PV1-39, nothing stored.
    pv1[39], pv1[19] = unknown[0], f"V{uuid.uuid4().hex[:8]}"
    segments[4] = "|".join(pv1)
    refused = await api.post(
        "/v1/hl7v2/adt",
        content=("\r".join(segments) + "\r").encode(),
        headers={"Content-Type": "application/hl7-v2"},
    )
    ack = ack_fields(refused.text)
    assert ack["MSA"][1] == "AE"
    assert "PV1^1^39" in refused.text or "PV1-39" in refused.text, refused.text


async def test_an_icb_client_posting_for_a_site_below_it_records_the_trusts_death(
    database, http, registry
):
    """Over HTTP an identifiable ICB client's scope is the ICB alone (app.scoping), so the
    trust's death would be out of its reach: refused (403), nothing written. With the trust in
    scope, the death is the trust's."""
    icb, trust, site = registry["icb"], registry["trust"], registry["site"]
    icb_client = await client_of(database, http, icb, Scope.screenings_write, Scope.deaths_read)
    refused = await screen(icb_client, 403, site_ods_code=site.ods_code)
    assert "client of the trust" in refused["detail"]

    principal = Principal(
        client_id=uuid.uuid4(),
        client_name="ICB",
        scopes=frozenset({"screenings:write"}),
        pseudonymised=False,
        on_behalf_of=None,
        request_id=None,
        organisation_id=icb.id,
    )
    with scoped(DataScope(False, frozenset({icb.id, trust.id}))):
        async with database.transaction() as session:
            values = await resolve_death_codes(
                session, principal, DeathCodes(site_ods_code=site.ods_code)
            )
            by_trust_code = await resolve_death_codes(
                session, principal, DeathCodes(site_ods_code=trust.ods_code)
            )
    assert values == {"site_organisation_id": site.id, "organisation_id": trust.id}
    assert by_trust_code["organisation_id"] == trust.id
    # Out of scope, the rule refuses rather than leave the ICB owning the trust's death.
    with scoped(DataScope(False, frozenset({icb.id}))):
        async with database.transaction() as session:
            with pytest.raises(Forbidden):
                await resolve_death_codes(
                    session, principal, DeathCodes(site_ods_code=site.ods_code)
                )


async def test_the_trusts_own_client_records_its_sites_death(database, http, registry):
    trust, site = registry["trust"], registry["site"]
    trust_client = await client_of(database, http, trust, Scope.screenings_write, Scope.deaths_read)
    death = (await screen(trust_client, site_ods_code=site.ods_code))["death"]
    assert death["organisation"] == trust.ref()
    assert death["site_organisation"] == site.ref()
    listed = await trust_client.get("/v1/deaths", params={"organisation": trust.ods_code.lower()})
    assert [item["id"] for item in listed.json()["items"]] == [death["id"]]
    by_id = await trust_client.get("/v1/deaths", params={"organisation": str(trust.id)})
    assert [item["id"] for item in by_id.json()["items"]] == [death["id"]]


async def test_the_list_filter_by_organisation(api, database, registry, unknown):
    death = (await screen(api, site_ods_code=registry["site"].ods_code))["death"]
    default_id = death["organisation"]["id"]
    found = await api.get(
        "/v1/deaths",
        params={"organisation": default_id, "source_reference": death["source_reference"]},
    )
    assert [item["id"] for item in found.json()["items"]] == [death["id"]]
    # Another organisation's code, or one the registry lacks: nothing.
    for other in (registry["trust"].ods_code, unknown[0]):
        empty = await api.get(
            "/v1/deaths",
            params={"organisation": other, "source_reference": death["source_reference"]},
        )
        assert empty.status_code == 200 and empty.json()["items"] == []
    bad = await api.get("/v1/deaths", params={"organisation": "not a code"})
    assert bad.status_code == 422
    assert pointers(bad.json()) == ["query:/organisation"]


async def test_a_correction_sets_and_clears_the_site_and_practice(api, registry, unknown):
    site, practice = registry["site"], registry["practice"]
    death = (await screen(api))["death"]
    read = await api.get(f"/v1/deaths/{death['id']}")
    patched = await api.patch(
        f"/v1/deaths/{death['id']}",
        json={"site_ods_code": site.ods_code, "registered_gp_practice_ods_code": practice.ods_code},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["site_organisation"], body["gp_practice"]) == (site.ref(), practice.ref())
    assert body["organisation"] == death["organisation"]  # the owner never changes
    assert body["version"] == death["version"] + 1
    cleared = await api.patch(
        f"/v1/deaths/{death['id']}",
        json={"registered_gp_practice_ods_code": None},
        headers={"If-Match": patched.headers["ETag"]},
    )
    assert cleared.json()["gp_practice"] is None
    assert cleared.json()["site_organisation"] == site.ref()
    unknown = await api.patch(
        f"/v1/deaths/{death['id']}",
        json={"site_ods_code": unknown[0]},
        headers={"If-Match": cleared.headers["ETag"]},
    )
    assert unknown.status_code == 422 and pointers(unknown.json()) == ["/site_ods_code"]


async def test_a_pseudonymised_client_sees_the_organisations_but_not_the_practice(
    api, make_api, registry
):
    site, practice = registry["site"], registry["practice"]
    death = (
        await screen(
            api, site_ods_code=site.ods_code, registered_gp_practice_ods_code=practice.ods_code
        )
    )["death"]
    commissioner = await make_api(pseudonymised=True)
    seen = (await commissioner.get(f"/v1/deaths/{death['id']}")).json()
    assert seen["site_organisation"] == site.ref()
    assert seen["organisation"] == death["organisation"]
    assert "gp_practice" not in seen
    assert practice.ods_code not in str(seen) and practice.name not in str(seen)
    listed = await commissioner.get(
        "/v1/deaths", params={"organisation": death["organisation"]["id"], "limit": 200}
    )
    assert all("gp_practice" not in item for item in listed.json()["items"])
