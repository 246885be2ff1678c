"""The referral queues: GET /v1/referrals with its filters, queue order and cursor pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from app.kit.time import LONDON
from app.models import Referral
from tests.factories import record, screening_body, walk_pages

PROBLEM_JSON = "application/problem+json"


def unique_site() -> str:
    return f"Queue site {uuid.uuid4().hex[:10]}"


async def queue(api: Any, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/v1/referrals", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ids(referrals: list[dict[str, Any]]) -> list[str]:
    return [referral["id"] for referral in referrals]


def by_route(referrals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {referral["route"]: referral for referral in referrals}


async def set_due(database: Any, referral_id: str, due_at: datetime, **values: Any) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(referral_id))
            .values(due_at=due_at, **values)
        )


def queue_key(referral: dict[str, Any]) -> tuple[int, datetime, datetime]:
    return (
        referral["priority"],
        datetime.fromisoformat(referral["due_at"]),
        datetime.fromisoformat(referral["created_at"]),
    )


async def test_a_referral_carries_its_reasons_due_date_and_overdue_flag(api) -> None:
    site = unique_site()
    recorded = await record(
        api, death={"site": site, "specialty_at_death": "Cardiology"}, screening={}
    )
    [referral] = await queue(api, site=site)
    assert referral["death_id"] == recorded["death_id"]
    assert referral["route"] == "sjr"
    assert referral["stage"] == 1
    assert referral["reasons"] == ["mortality_alert"]
    assert referral["status"] == "ready"
    assert referral["specialty"] == "Cardiology"
    assert referral["site"] == site
    assert referral["overdue"] is False
    due = datetime.fromisoformat(referral["due_at"])
    created = datetime.fromisoformat(referral["created_at"])
    assert due - created == timedelta(days=56)  # the SJR default


async def test_route_status_specialty_and_death_filters(api) -> None:
    site = unique_site()
    disabled = await record(
        api, death={"site": site, "learning_disability": True, "specialty_at_death": "Neurology"}
    )
    surgical = await record(
        api,
        death={
            "site": site,
            "admitting_specialty": "General Surgery",
            "specialty_at_death": "General Surgery",
        },
        screening={"staff_concerns": "Missed deterioration"},
    )
    ld = by_route(disabled["referrals"])
    surgery = by_route(surgical["referrals"])
    assert set(ld) == {"leder", "sjr"}
    assert set(surgery) == {"mm", "sjr"}

    assert ids(await queue(api, site=site, route="leder")) == [ld["leder"]["id"]]
    assert ids(await queue(api, site=site, route="mm")) == [surgery["mm"]["id"]]
    assert set(ids(await queue(api, site=site, route="sjr"))) == {
        ld["sjr"]["id"],
        surgery["sjr"]["id"],
    }
    assert set(ids(await queue(api, site=site, specialty="Neurology"))) == {
        ld["leder"]["id"],
        ld["sjr"]["id"],
    }
    assert set(ids(await queue(api, site=site, specialty="General Surgery"))) == {
        surgery["mm"]["id"],
        surgery["sjr"]["id"],
    }
    assert set(ids(await queue(api, death_id=surgical["death_id"]))) == {
        surgery["mm"]["id"],
        surgery["sjr"]["id"],
    }
    assert await queue(api, site=site, route="cdr") == []

    # Cancel the surgical SJR by amending away its only reason; the status filter sees it.
    screening = await api.get(f"/v1/screenings/{surgical['id']}")
    fields = screening_body()["screening"]
    amended = await api.put(
        f"/v1/screenings/{surgical['id']}",
        json={**fields, "screened_at": screening.json()["screened_at"]},
        headers={"If-Match": screening.headers["etag"]},
    )
    assert amended.status_code == 200, amended.text
    assert ids(await queue(api, site=site, status="cancelled")) == [surgery["sjr"]["id"]]
    assert set(ids(await queue(api, site=site, status="ready"))) == {
        ld["leder"]["id"],
        ld["sjr"]["id"],
        surgery["mm"]["id"],
    }
    assert ids(await queue(api, site=site, status="ready", route="sjr")) == [ld["sjr"]["id"]]


async def test_bad_filters_are_422_problems(api) -> None:
    for params in ({"route": "tarot"}, {"status": "lost"}, {"overdue": "maybe"}, {"limit": 0}):
        response = await api.get("/v1/referrals", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    tampered = await api.get("/v1/referrals", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert tampered.status_code == 400


async def test_overdue_means_open_and_past_due(api, database) -> None:
    site = unique_site()
    late = await record(api, death={"site": site}, screening={"death_expected": False})
    on_time = await record(api, death={"site": site}, screening={"death_expected": False})
    withdrawn = await record(
        api, death={"site": site}, screening={"staff_concerns": "Delayed escalation"}
    )
    late_id = late["referrals"][0]["id"]
    withdrawn_id = withdrawn["referrals"][0]["id"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    await set_due(database, late_id, yesterday)
    await set_due(database, withdrawn_id, yesterday)

    # A cancelled referral past its due date is not overdue: nobody owes it any more.
    screening = await api.get(f"/v1/screenings/{withdrawn['id']}")
    body = {**screening_body()["screening"], "screened_at": screening.json()["screened_at"]}
    response = await api.put(
        f"/v1/screenings/{withdrawn['id']}",
        json=body,
        headers={"If-Match": screening.headers["etag"]},
    )
    assert response.status_code == 200, response.text

    overdue = await queue(api, site=site, overdue="true")
    assert ids(overdue) == [late_id]
    assert overdue[0]["overdue"] is True
    rest = await queue(api, site=site, overdue="false")
    assert set(ids(rest)) == {on_time["referrals"][0]["id"], withdrawn_id}
    assert all(referral["overdue"] is False for referral in rest)

    death = await api.get(f"/v1/deaths/{late['death_id']}")
    assert death.json()["referrals"][0]["overdue"] is True


async def test_due_before_is_a_uk_local_date(api, database) -> None:
    site = unique_site()
    recorded = await record(api, death={"site": site, "learning_disability": True})
    referrals = by_route(recorded["referrals"])
    leder_due = datetime.fromisoformat(referrals["leder"]["due_at"])  # 7 days
    sjr_due = datetime.fromisoformat(referrals["sjr"]["due_at"])  # 56 days
    assert sjr_due - leder_due == timedelta(days=49)

    in_a_month = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    assert ids(await queue(api, site=site, due_before=in_a_month)) == [referrals["leder"]["id"]]

    # 23:30 UTC on 31 March 2027 is 00:30 BST on 1 April: due on 1 April, not before it.
    await set_due(database, referrals["leder"]["id"], datetime(2027, 3, 31, 23, 30, tzinfo=UTC))
    await set_due(database, referrals["sjr"]["id"], datetime(2027, 3, 31, 22, 30, tzinfo=UTC))
    assert datetime(2027, 3, 31, 23, 30, tzinfo=UTC).astimezone(LONDON).day == 1
    assert ids(await queue(api, site=site, due_before="2027-04-01")) == [referrals["sjr"]["id"]]
    assert set(ids(await queue(api, site=site, due_before="2027-04-02"))) == {
        referrals["leder"]["id"],
        referrals["sjr"]["id"],
    }
    assert await queue(api, site=site, due_before="2027-03-31") == []


async def test_queue_order_is_priority_then_due_date_then_creation(api, database) -> None:
    site = unique_site()
    coroner = await record(
        api,
        death={"site": site},
        screening={"coroner_notified": True, "coroner_reason": "cause_unknown"},
    )
    disabled = await record(api, death={"site": site, "learning_disability": True})
    surgical = await record(
        api,
        death={
            "site": site,
            "admitting_specialty": "General Surgery",
            "specialty_at_death": "General Surgery",
        },
    )
    first_sjr = await record(api, death={"site": site}, screening={"death_expected": False})
    second_sjr = await record(api, death={"site": site}, screening={"death_expected": False})

    listed = await queue(api, site=site)
    assert [r["route"] for r in listed] == ["coroner", "leder", "sjr", "sjr", "sjr", "mm"]
    assert [r["priority"] for r in listed] == [1, 2, 3, 3, 3, 4]
    assert ids(listed)[0] == coroner["referrals"][0]["id"]
    assert ids(listed)[1] == by_route(disabled["referrals"])["leder"]["id"]
    assert ids(listed)[-1] == surgical["referrals"][0]["id"]
    # Same priority: the earlier due date first (creation order here).
    ld_sjr = by_route(disabled["referrals"])["sjr"]["id"]
    first_id, second_id = first_sjr["referrals"][0]["id"], second_sjr["referrals"][0]["id"]
    assert ids(listed)[2:5] == [ld_sjr, first_id, second_id]

    # Bring the last SJR due sooner: it moves to the front of its priority.
    soon = datetime.now(UTC) + timedelta(days=3)
    await set_due(database, second_id, soon)
    assert ids(await queue(api, site=site, route="sjr")) == [second_id, ld_sjr, first_id]

    # Equal due dates: the earlier referral first.
    await set_due(database, ld_sjr, soon)
    await set_due(database, first_id, soon)
    created = {r["id"]: r["created_at"] for r in listed}
    expected = sorted([ld_sjr, first_id, second_id], key=lambda i: created[i])
    assert ids(await queue(api, site=site, route="sjr")) == expected


async def test_cursor_pages_return_each_referral_once_in_queue_order(api, database) -> None:
    site = unique_site()
    await record(api, death={"site": site, "learning_disability": True})  # leder + sjr
    await record(
        api,
        death={"site": site, "admitting_specialty": "General Surgery"},
        screening={"coroner_notified": True, "coroner_reason": "self_harm"},
    )  # coroner + mm
    for _ in range(3):
        await record(api, death={"site": site}, screening={"death_expected": False})
    whole = await queue(api, site=site)
    assert len(whole) == 7
    # Three referrals tie on priority, due date and creation: the id breaks the tie, across
    # pages too.
    tied = datetime.now(UTC) + timedelta(days=10)
    made = datetime.now(UTC) - timedelta(minutes=5)
    for referral in whole:
        if referral["route"] == "sjr" and referral["reasons"] == ["unexpected_death"]:
            await set_due(database, referral["id"], tied, created_at=made)
    whole = await queue(api, site=site)

    seen, pages = await walk_pages(api, "/v1/referrals", {"site": site, "limit": 2})

    assert pages == 4
    assert len(ids(seen)) == len(set(ids(seen))) == 7
    assert ids(seen) == ids(whole)
    keys = [queue_key(referral) for referral in seen]
    assert keys == sorted(keys)
