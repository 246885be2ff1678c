"""An ICB's access (issue 16, item 5; acceptance review): its pseudonymised client reads its
members' deaths as pseudonyms, and never more; its identifiable client reads a member's death
only when that death is shared with the ICB for a purpose (LeDeR), identifiably, and only
while the share is open; its pseudonymised client still sees the shared death as pseudonyms."""

from __future__ import annotations

import uuid

from app.auth.scopes import Scope
from app.db import Database
from app.models import Organisation
from tests.conftest import MakeApi
from tests.factories import idem, record_unexpected


async def _organisation(
    database: Database, name: str, kind: str, parent: uuid.UUID | None = None
) -> uuid.UUID:
    async with database.transaction() as session:
        made = Organisation(
            id=uuid.uuid4(), name=name, kind=kind, parent_id=parent, aliases=[], settings={}
        )
        session.add(made)
    return made.id


async def test_an_icb_reads_a_member_death_identifiably_only_through_a_share(
    database: Database, make_api: MakeApi
) -> None:
    icb = await _organisation(database, "Access ICB", "icb")
    trust = await _organisation(database, "Access trust", "trust", icb)
    trust_api = await make_api(organisation_id=trust)
    leder = await make_api(
        Scope.deaths_read,
        Scope.deaths_write,
        Scope.referrals_read,
        Scope.reviews_write,
        organisation_id=icb,
    )
    commissioner = await make_api(pseudonymised=True, organisation_id=icb)
    shared = await record_unexpected(trust_api, death={"learning_disability": True})
    other = await record_unexpected(trust_api)
    shared_id, other_id = shared["death"]["id"], other["death"]["id"]

    for death in (shared_id, other_id):
        assert (await leder.get(f"/v1/deaths/{death}")).status_code == 404
        seen = await commissioner.get(f"/v1/deaths/{death}")
        assert seen.status_code == 200 and "family_name" not in seen.json()

    made = await trust_api.post(
        f"/v1/deaths/{shared_id}/shares",
        json={"organisation": str(icb), "purpose": "leder"},
        headers=idem(),
    )
    assert made.status_code == 201, made.text
    seen = await leder.get(f"/v1/deaths/{shared_id}")
    assert seen.status_code == 200 and seen.json()["family_name"] == "Testfamily"
    assert (await leder.get(f"/v1/deaths/{other_id}")).status_code == 404
    listed = await leder.get("/v1/deaths", params={"limit": 200})
    assert [item["id"] for item in listed.json()["items"]] == [shared_id]
    for death, found in ((shared["death"], True), (other["death"], False)):
        searched = await leder.get(
            "/fhir/r4/Patient",
            params={"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{death['nhs_number']}"},
        )
        assert searched.status_code == 200, searched.text
        assert len(searched.json().get("entry", [])) == (1 if found else 0), death["id"]
    # The commissioner's view stays pseudonymised, shared or not.
    pseudonymous = await commissioner.get(f"/v1/deaths/{shared_id}")
    assert pseudonymous.status_code == 200 and "family_name" not in pseudonymous.json()
    assert "nhs_number" not in pseudonymous.text and "Testfamily" not in pseudonymous.text
    # The ICB changes nothing of the death beyond the LeDeR work.
    patched = await leder.patch(
        f"/v1/deaths/{shared_id}",
        json={"ward": "Ward 9"},
        headers={"If-Match": seen.headers["ETag"]},
    )
    assert patched.status_code == 403, patched.text
    assert patched.json()["share_purposes"] == ["leder"]

    share = made.json()["id"]
    revoked = await trust_api.post(f"/v1/deaths/{shared_id}/shares/{share}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert (await leder.get(f"/v1/deaths/{shared_id}")).status_code == 404
