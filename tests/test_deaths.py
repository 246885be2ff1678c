"""Reading and correcting deaths: GET /v1/deaths (filters, order, cursor pages),
GET /v1/deaths/{id} (ETag, 304, 404) and PATCH /v1/deaths/{id} (If-Match, merge rules, the
referrals following a correction)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.factories import idem, record, screening_body, walk_pages
from tests.factories import test_nhs_number as new_nhs_number

PROBLEM_JSON = "application/problem+json"


def unique_site() -> str:
    return f"Site {uuid.uuid4().hex[:10]}"


async def death_ids(api: Any, **params: Any) -> list[str]:
    response = await api.get("/v1/deaths", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [death["id"] for death in response.json()["items"]]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- GET /v1/deaths ------------------------------------------------------------------------


async def test_died_from_and_died_to_use_the_uk_local_date(api) -> None:
    site = unique_site()
    # 23:30 UTC on 31 March 2026 is 00:30 BST on 1 April: the new financial year.
    after_midnight = await record(
        api, death={"site": site}, died_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    )
    # 22:30 UTC is 23:30 BST, still 31 March.
    before_midnight = await record(
        api, death={"site": site}, died_at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    )
    # In winter (GMT) the UTC date and the local date agree, even at 23:30.
    winter = await record(
        api, death={"site": site}, died_at=datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    )
    assert after_midnight["death"]["died_on"] == "2026-04-01"
    assert before_midnight["death"]["died_on"] == "2026-03-31"
    assert winter["death"]["died_on"] == "2026-01-15"

    late, early, jan = (
        after_midnight["death_id"],
        before_midnight["death_id"],
        winter["death_id"],
    )
    assert await death_ids(api, site=site, died_from="2026-04-01") == [late]
    assert await death_ids(api, site=site, died_to="2026-03-31") == [early, jan]
    assert await death_ids(api, site=site, died_from="2026-03-31", died_to="2026-03-31") == [early]
    assert await death_ids(api, site=site, died_from="2026-01-15", died_to="2026-01-15") == [jan]
    assert await death_ids(api, site=site, died_from="2026-01-16", died_to="2026-03-30") == []
    assert await death_ids(api, site=site, died_from="2026-01-01", died_to="2026-04-01") == [
        late,
        early,
        jan,
    ]


async def test_died_from_after_died_to_is_a_422_problem(api) -> None:
    response = await api.get(
        "/v1/deaths", params={"died_from": "2026-04-02", "died_to": "2026-04-01"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["errors"][0]["pointer"] == "query:/died_from"


async def test_specialty_matches_the_admitting_specialty_or_the_specialty_at_death(api) -> None:
    site = unique_site()
    moved = await record(
        api,
        death={
            "site": site,
            "admitting_specialty": "Respiratory Medicine",
            "specialty_at_death": "Intensive Care",
        },
    )
    stayed = await record(api, death={"site": site})  # General Medicine throughout
    assert await death_ids(api, site=site, specialty="Respiratory Medicine") == [moved["death_id"]]
    assert await death_ids(api, site=site, specialty="Intensive Care") == [moved["death_id"]]
    assert await death_ids(api, site=site, specialty="General Medicine") == [stayed["death_id"]]
    assert await death_ids(api, site=site, specialty="Cardiology") == []


async def test_status_filter(api) -> None:
    site = unique_site()
    referred = await record(api, death={"site": site, "learning_disability": True})
    screened = await record(api, death={"site": site})
    assert referred["death"]["status"] == "under_review"
    assert screened["death"]["status"] == "screened"
    assert await death_ids(api, site=site, status="under_review") == [referred["death_id"]]
    assert await death_ids(api, site=site, status="screened") == [screened["death_id"]]
    assert await death_ids(api, site=site, status="closed") == []
    bad = await api.get("/v1/deaths", params={"status": "lost"})
    assert bad.status_code == 422


async def test_nhs_number_filter_accepts_spaces_and_dashes(api) -> None:
    site = unique_site()
    wanted = await record(api, death={"site": site})
    await record(api, death={"site": site})
    number = wanted["death"]["nhs_number"]
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    dashed = f"{number[:3]}-{number[3:6]}-{number[6:]}"
    for form in (number, spaced, dashed):
        assert await death_ids(api, site=site, nhs_number=form) == [wanted["death_id"]]

    wrong_check_digit = number[:9] + str((int(number[9]) + 1) % 10)
    response = await api.get("/v1/deaths", params={"nhs_number": wrong_check_digit})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "query:/nhs_number"
    assert wrong_check_digit not in response.text


async def test_site_and_source_filters(api) -> None:
    site, other_site = unique_site(), unique_site()
    first = await record(api, death={"site": site})
    second = await record(api, death={"site": site})
    elsewhere = await record(api, death={"site": other_site})
    assert set(await death_ids(api, site=site)) == {first["death_id"], second["death_id"]}
    assert await death_ids(api, site=other_site) == [elsewhere["death_id"]]

    source = second["death"]
    assert await death_ids(
        api, source_system=source["source_system"], source_reference=source["source_reference"]
    ) == [second["death_id"]]
    assert (
        await death_ids(
            api, source_system="another-system", source_reference=source["source_reference"]
        )
        == []
    )


async def test_newest_first_and_cursor_pages_return_every_death_once(api) -> None:
    site = unique_site()
    start = datetime.now(UTC) - timedelta(days=20)
    moments = [start + timedelta(hours=7 * n) for n in range(5)]
    moments += [moments[2], moments[2]]  # three deaths at one instant: the id breaks the tie
    made = {}
    for moment in moments:
        recorded = await record(api, death={"site": site}, died_at=moment)
        made[recorded["death_id"]] = moment

    seen, pages = await walk_pages(api, "/v1/deaths", {"site": site, "limit": 2})

    assert pages == 4
    ids = [death["id"] for death in seen]
    assert len(ids) == len(set(ids)) == 7
    assert set(ids) == set(made)
    died = [instant(death["died_at"]) for death in seen]
    assert died == sorted(died, reverse=True)
    assert [made[death_id] for death_id in ids] == sorted(moments, reverse=True)
    # The pages agree with one big page.
    assert ids == await death_ids(api, site=site)


async def test_a_tampered_cursor_is_a_400_problem(api) -> None:
    response = await api.get("/v1/deaths", params={"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_the_page_size_is_bounded(api) -> None:
    for limit in (0, 201):
        response = await api.get("/v1/deaths", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "query:/limit"
    assert (await api.get("/v1/deaths", params={"limit": 200})).status_code == 200


# --- GET /v1/deaths/{id} -------------------------------------------------------------------


async def test_a_death_comes_with_its_screening_referrals_and_etag(api) -> None:
    recorded = await record(
        api, death={"learning_disability": True}, screening={"staff_concerns": "Late escalation"}
    )
    response = await api.get(f"/v1/deaths/{recorded['death_id']}")
    assert response.status_code == 200
    death = response.json()
    assert death["id"] == recorded["death_id"]
    assert death["screening"]["id"] == recorded["id"]
    assert death["screening"]["staff_concerns"] == "Late escalation"
    assert {r["route"]: r["reasons"] for r in death["referrals"]} == {
        "sjr": ["staff_concern", "learning_disability"],
        "leder": ["learning_disability"],
    }
    tag = response.headers["etag"]
    assert tag

    not_modified = await api.get(
        f"/v1/deaths/{recorded['death_id']}", headers={"If-None-Match": tag}
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == tag

    # If-None-Match compares weakly (RFC 9110): a proxy that weakened the tag still gets a 304.
    weak = await api.get(
        f"/v1/deaths/{recorded['death_id']}", headers={"If-None-Match": f"W/{tag}"}
    )
    assert weak.status_code == 304
    listed = await api.get(
        f"/v1/deaths/{recorded['death_id']}", headers={"If-None-Match": f'"other", {tag}'}
    )
    assert listed.status_code == 304

    stale = await api.get(f"/v1/deaths/{recorded['death_id']}", headers={"If-None-Match": '"0.1"'})
    assert stale.status_code == 200
    assert stale.json()["id"] == recorded["death_id"]


async def test_an_unknown_death_is_a_404_problem(api) -> None:
    response = await api.get(f"/v1/deaths/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["status"] == 404


# --- PATCH /v1/deaths/{id} -----------------------------------------------------------------


async def read(api: Any, death_id: str) -> tuple[dict[str, Any], str]:
    response = await api.get(f"/v1/deaths/{death_id}")
    assert response.status_code == 200
    return response.json(), response.headers["etag"]


async def test_patch_needs_if_match(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    response = await api.patch(f"/v1/deaths/{death_id}", json={"ward": "Ward 9"})
    assert response.status_code == 428
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    death, _ = await read(api, death_id)
    assert death["ward"] == "Ward 7"
    assert death["version"] == 1


async def test_a_stale_if_match_is_412_with_the_current_etag(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    _, tag = await read(api, death_id)
    first = await api.patch(
        f"/v1/deaths/{death_id}", json={"ward": "Ward 9"}, headers={"If-Match": tag}
    )
    assert first.status_code == 200, first.text

    second = await api.patch(
        f"/v1/deaths/{death_id}", json={"ward": "Ward 10"}, headers={"If-Match": tag}
    )
    assert second.status_code == 412
    assert second.headers["content-type"].startswith(PROBLEM_JSON)
    # The 412 names the death's own version; the GET/PATCH tag adds the state of what the
    # detail shows, and either form is accepted in If-Match.
    current = second.json()["current_etag"]
    assert first.headers["etag"].startswith(current.rstrip('"') + ".")
    death, current = await read(api, death_id)
    assert death["ward"] == "Ward 9"
    assert current == first.headers["etag"]


async def test_a_correction_bumps_the_version_and_recomputes_derived_fields(api) -> None:
    recorded = await record(api, died_at=datetime(2026, 6, 15, 10, 0, tzinfo=UTC))
    death_id = recorded["death_id"]
    death, tag = await read(api, death_id)
    assert death["died_on"] == "2026-06-15"

    # Born a day after the anniversary of the death: not yet 70.
    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"date_of_birth": "1956-06-16"}, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["date_of_birth"] == "1956-06-16"
    assert patched["age_at_death"] == 69
    assert patched["version"] == death["version"] + 1
    new_tag = response.headers["etag"]
    assert new_tag != tag

    again, current = await read(api, death_id)
    assert current == new_tag
    assert again["age_at_death"] == 69

    birthday = await api.patch(
        f"/v1/deaths/{death_id}",
        json={"date_of_birth": "1956-06-15"},
        headers={"If-Match": new_tag},
    )
    assert birthday.status_code == 200, birthday.text
    assert birthday.json()["age_at_death"] == 70
    assert birthday.json()["version"] == death["version"] + 2


async def test_a_required_field_cannot_be_cleared(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    before, tag = await read(api, death_id)
    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"date_of_birth": None}, headers={"If-Match": tag}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert [e["pointer"] for e in response.json()["errors"]] == ["/date_of_birth"]
    after, same = await read(api, death_id)
    assert after == before
    assert same == tag

    # An optional field can be cleared.
    cleared = await api.patch(
        f"/v1/deaths/{death_id}", json={"ward": None}, headers={"If-Match": tag}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ward"] is None


async def test_a_correction_that_makes_the_dates_impossible_is_a_422_with_a_pointer(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    before, tag = await read(api, death_id)
    # Valid on its own; impossible with the stored time of death.
    after_death = (instant(before["died_at"]) + timedelta(hours=1)).isoformat()
    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"admitted_at": after_death}, headers={"If-Match": tag}
    )
    assert response.status_code == 422
    assert "/admitted_at" in [e["pointer"] for e in response.json()["errors"]]

    # A date of birth after the stored death.
    born_later = (date.fromisoformat(before["died_on"]) + timedelta(days=1)).isoformat()
    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"date_of_birth": born_later}, headers={"If-Match": tag}
    )
    assert response.status_code == 422
    assert "/date_of_birth" in [e["pointer"] for e in response.json()["errors"]]

    after, same = await read(api, death_id)
    assert after == before
    assert same == tag


async def test_a_correction_that_changes_the_rules_raises_the_referrals(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    death, tag = await read(api, death_id)
    assert death["status"] == "screened"
    assert death["referrals"] == []
    assert death["age_at_death"] >= 18

    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"learning_disability": True}, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["learning_disability"] is True
    assert patched["status"] == "under_review"
    assert {r["route"]: r["reasons"] for r in patched["referrals"]} == {
        "leder": ["learning_disability"],
        "sjr": ["learning_disability"],
    }
    assert all(r["status"] == "ready" for r in patched["referrals"])

    queue = await api.get("/v1/referrals", params={"death_id": death_id})
    assert sorted(r["route"] for r in queue.json()["items"]) == ["leder", "sjr"]
    listed = await death_ids(
        api, status="under_review", site=death["site"], nhs_number=death["nhs_number"]
    )
    assert listed == [death_id]


async def test_a_patch_that_changes_nothing_keeps_the_version(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    before, tag = await read(api, death_id)
    number = before["nhs_number"]
    response = await api.patch(
        f"/v1/deaths/{death_id}",
        json={
            "ward": before["ward"],
            "site": before["site"],
            "died_at": before["died_at"],
            # The same number, written the way a person types it, is not a change either.
            "nhs_number": f"{number[:3]} {number[3:6]} {number[6:]}",
        },
        headers={"If-Match": tag},
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == before["version"]
    assert response.headers["etag"] == tag
    after, same = await read(api, death_id)
    assert same == tag
    assert after["nhs_number_status"] == before["nhs_number_status"] == "01"
    assert after["updated_at"] == before["updated_at"]


async def test_patching_an_unknown_death_is_404(api) -> None:
    response = await api.patch(
        f"/v1/deaths/{uuid.uuid4()}", json={"ward": "Ward 1"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_a_new_nhs_number_is_stored_as_digits_and_not_yet_traced(api) -> None:
    recorded = await record(api)
    death_id = recorded["death_id"]
    before, tag = await read(api, death_id)
    assert before["nhs_number_status"] == "01"
    number = new_nhs_number()
    while number == before["nhs_number"]:
        number = new_nhs_number()
    dashed = f"{number[:3]}-{number[3:6]}-{number[6:]}"
    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"nhs_number": dashed}, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.text
    assert response.json()["nhs_number"] == number
    assert response.json()["nhs_number_status"] == "02"
    assert await death_ids(api, site=before["site"], nhs_number=number) == [death_id]


async def test_a_correction_that_removes_the_reason_cancels_the_waiting_referrals(api) -> None:
    recorded = await record(api, death={"learning_disability": True})
    death_id = recorded["death_id"]
    death, tag = await read(api, death_id)
    assert death["status"] == "under_review"
    response = await api.patch(
        f"/v1/deaths/{death_id}", json={"learning_disability": False}, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["status"] == "screened"
    assert sorted((r["route"], r["status"]) for r in patched["referrals"]) == [
        ("leder", "cancelled"),
        ("sjr", "cancelled"),
    ]
    assert all(r["status_reason"] for r in patched["referrals"])


async def test_a_death_is_found_by_its_case_reference(api) -> None:

    created = await api.post("/v1/screenings", json=screening_body(), headers=idem())
    assert created.status_code == 201, created.text
    death = created.json()["death"]
    reference = death["case_reference"]
    assert reference.startswith(f"D-{death['died_on'][:4]}-")
    found = await api.get("/v1/deaths", params={"case_reference": reference.lower()})
    assert [item["id"] for item in found.json()["items"]] == [death["id"]]
    wrong_year = reference.replace(death["died_on"][:4], "2001", 1)
    assert (await api.get("/v1/deaths", params={"case_reference": wrong_year})).json()[
        "items"
    ] == []
    bad = await api.get("/v1/deaths", params={"case_reference": "X-12"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "query:/case_reference"


async def test_a_claim_changes_the_death_tag_but_does_not_make_a_correction_stale(api) -> None:
    """If-None-Match must see a referral change on the death page; If-Match guards only the
    death's own details."""

    specialty = "Tag " + idem()["Idempotency-Key"][:8]
    body = screening_body(
        death={"specialty_at_death": specialty, "admitting_specialty": specialty},
        screening={"death_expected": False},
    )
    recorded = (await api.post("/v1/screenings", json=body, headers=idem())).json()
    url = f"/v1/deaths/{recorded['death_id']}"
    before = await api.get(url)
    tag = before.headers["etag"]
    assert (await api.get(url, headers={"If-None-Match": tag})).status_code == 304
    claimed = await api.post(
        "/v1/referrals/claim",
        json={"route": "sjr", "specialty": specialty},
        headers={"X-On-Behalf-Of": "Dr Tag"},
    )
    assert len(claimed.json()["items"]) == 1
    after = await api.get(url, headers={"If-None-Match": tag})
    assert after.status_code == 200
    assert after.headers["etag"] != tag
    corrected = await api.patch(url, json={"ward": "Ward 9"}, headers={"If-Match": tag})
    assert corrected.status_code == 200, corrected.text
