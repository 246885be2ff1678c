"""Write-to-read (issue 11, defect 2): a key with a write scope but not the matching read scope
must not read a patient through its writes.

The attack: with only `deaths:write`, a `PATCH /v1/deaths/{id}` with an empty body and a
guessed ETag (`"<id without dashes>.1"`) answered the whole death; with only
`screenings:write`, the 409 of a guessed source reference gave the screening's id and an
unchanged `PUT` of it answered the death. Now a tag cannot be made from an id, and a write
answers a client without the read scope with the id, version and links only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.auth.scopes import Scope
from tests.conftest import Api, MakeApi
from tests.factories import idem, screening_body

IDENTIFIERS = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode", "died_at")
WRITTEN = {"id", "version", "death_id", "links"}


def guessed(resource_id: str, version: int = 1) -> str:
    return f'"{uuid.UUID(resource_id).hex}.{version}"'


def assert_no_identifiers(response: httpx.Response, body: dict[str, Any]) -> None:
    text = response.text
    for name in IDENTIFIERS:
        assert name not in text, (name, text)
    for value in (
        body["death"]["nhs_number"],
        body["death"]["family_name"],
        body["death"]["date_of_birth"],
        body["death"]["postcode"],
    ):
        assert value not in text, (value, text)


async def recorded(api: Api, **death: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    body = screening_body(death=death)
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    return body, response.json()


async def test_a_guessed_etag_is_refused_and_a_write_only_patch_answers_no_patient(
    api: Api, make_api: MakeApi
) -> None:
    body, screening = await recorded(api)
    death_id = screening["death_id"]
    writer = await make_api(Scope.deaths_write)
    assert (await writer.get(f"/v1/deaths/{death_id}")).status_code == 403

    # The old tag format, made from the id alone, no longer names the death's version.
    stale = await writer.patch(
        f"/v1/deaths/{death_id}", json={}, headers={"If-Match": guessed(death_id)}
    )
    assert stale.status_code == 412, stale.text
    assert_no_identifiers(stale, body)
    tag = stale.json()["current_etag"]
    assert uuid.UUID(death_id).hex not in tag

    # With the real tag an empty PATCH succeeds, and says what was written, not what it holds.
    empty = await writer.patch(f"/v1/deaths/{death_id}", json={}, headers={"If-Match": tag})
    assert empty.status_code == 200, empty.text
    assert_no_identifiers(empty, body)
    assert set(empty.json()) == WRITTEN
    assert empty.json()["links"]["self"] == f"/v1/deaths/{death_id}"
    assert empty.json()["death_id"] == death_id
    assert empty.headers["ETag"]

    # A real correction: the same minimal answer, and the new tag works for the next one.
    corrected = await writer.patch(
        f"/v1/deaths/{death_id}",
        json={"ward": "Ward 9"},
        headers={"If-Match": empty.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    assert set(corrected.json()) == WRITTEN
    assert corrected.json()["version"] == 2
    assert_no_identifiers(corrected, body)

    # A client that may read deaths gets the death in full, as before.
    reader_writer = await make_api(Scope.deaths_read, Scope.deaths_write)
    full = await reader_writer.patch(
        f"/v1/deaths/{death_id}", json={}, headers={"If-Match": corrected.headers["ETag"]}
    )
    assert full.status_code == 200, full.text
    assert full.json()["nhs_number"] == body["death"]["nhs_number"]


async def test_tags_reveal_neither_id_nor_version(api: Api) -> None:
    _, screening = await recorded(api)
    read = await api.get(f"/v1/deaths/{screening['death_id']}")
    tag = read.headers["ETag"]
    assert uuid.UUID(screening["death_id"]).hex not in tag
    assert not tag.strip('"').split(".")[0].isdigit()
    screening_tag = (await api.get(f"/v1/screenings/{screening['id']}")).headers["ETag"]
    assert uuid.UUID(screening["id"]).hex not in screening_tag
    assert screening_tag != guessed(screening["id"])


async def test_a_screenings_writer_cannot_read_a_death_through_a_duplicate_and_a_put(
    api: Api, make_api: MakeApi
) -> None:
    body, screening = await recorded(api)
    writer = await make_api(Scope.screenings_write)

    # A guessed (taken) source reference: 409, but no link to another client's death.
    duplicate = await writer.post("/v1/screenings", json=body, headers=idem())
    assert duplicate.status_code == 409, duplicate.text
    assert "existing" not in duplicate.json()
    assert screening["id"] not in duplicate.text
    assert screening["death_id"] not in duplicate.text

    # Even with the id (learnt elsewhere), a guessed tag is stale and an unchanged PUT answers
    # only what was written.
    url = f"/v1/screenings/{screening['id']}"
    stale = await writer.put(
        url, json=body["screening"], headers={"If-Match": guessed(screening["id"])}
    )
    assert stale.status_code == 412, stale.text
    same = await writer.put(
        url, json=body["screening"], headers={"If-Match": stale.json()["current_etag"]}
    )
    assert same.status_code == 200, same.text
    assert set(same.json()) == WRITTEN
    assert same.json()["death_id"] == screening["death_id"]
    assert_no_identifiers(same, body)


async def test_a_screenings_writer_sees_its_own_duplicate_and_a_minimal_answer(
    make_api: MakeApi,
) -> None:
    writer = await make_api(Scope.screenings_write)
    body, first = await recorded(writer)
    assert set(first) == WRITTEN
    assert first["links"] == {
        "self": f"/v1/screenings/{first['id']}",
        "death": f"/v1/deaths/{first['death_id']}",
    }
    again = await writer.post("/v1/screenings", json=body, headers=idem())
    assert again.status_code == 409
    assert again.json()["existing"]["screening_id"] == first["id"]
    # A reader of deaths is shown the link too (it may read the death anyway).
    office = await make_api(Scope.screenings_write, Scope.deaths_read)
    linked = await office.post("/v1/screenings", json=body, headers=idem())
    assert linked.json()["existing"]["death_id"] == first["death_id"]


async def test_other_writes_answer_by_the_read_scope(api: Api, make_api: MakeApi) -> None:
    _, screening = await recorded(api)
    finding = await api.post(
        "/v1/findings",
        json={
            "death_id": screening["death_id"],
            "kind": "concern",
            "theme_code": "sepsis",
            "description": "Delayed antibiotics",
        },
    )
    assert finding.status_code == 201, finding.text
    writer = await make_api(Scope.findings_write)
    url = f"/v1/findings/{finding.json()['id']}"
    stale = await writer.patch(url, json={}, headers={"If-Match": guessed(finding.json()["id"])})
    assert stale.status_code == 412
    empty = await writer.patch(url, json={}, headers={"If-Match": stale.json()["current_etag"]})
    assert empty.status_code == 200, empty.text
    assert "Delayed antibiotics" not in empty.text
    assert set(empty.json()) <= WRITTEN
    new = await writer.post(
        "/v1/findings",
        json={
            "death_id": screening["death_id"],
            "kind": "concern",
            "theme_code": "sepsis",
            "description": "Second opinion late",
        },
    )
    assert new.status_code == 201, new.text
    assert set(new.json()) <= WRITTEN
    assert "Second opinion late" not in new.text

    # A referral transition by a claimer that may not read referrals.
    referral_screening = await api.post(
        "/v1/screenings",
        json=screening_body(screening={"death_expected": False}),
        headers=idem(),
    )
    (referral,) = referral_screening.json()["referrals"]
    claimer = await make_api(Scope.referrals_claim)
    held = await claimer.post(
        f"/v1/referrals/{referral['id']}/hold", json={"reason": "awaiting inquest"}
    )
    assert held.status_code == 200, held.text
    assert set(held.json()) == WRITTEN
    assert held.json()["death_id"] == referral["death_id"]
