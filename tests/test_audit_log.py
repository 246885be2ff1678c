"""GET /v1/audit-events: the audit log read back by an information governance team, newest
first, by death, client, resource, action and time; paged; carrying ids and never a patient's
identifiers; and itself audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.auth.scopes import Scope
from tests.conftest import Api, MakeApi
from tests.factories import idem
from tests.kit.audit import ON_BEHALF_OF, patient_body, patient_values, request_id, traced


async def recorded_death(api: Api) -> tuple[dict[str, Any], dict[str, Any], str]:
    body = patient_body()
    rid = request_id()
    response = await api.post("/v1/screenings", json=body, headers={**idem(), **traced(rid)})
    assert response.status_code == 201, response.text
    return body, response.json(), rid


async def whole_trail(auditor: Api, **params: str) -> list[dict[str, Any]]:
    """Every row the search finds, page by page (limit 2), checking the cursor chain."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await auditor.get("/v1/audit-events", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        rows.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def test_a_deaths_trail_shows_who_did_what_for_whom(api: Api, make_api: MakeApi) -> None:
    writer = await make_api(Scope.screenings_write, Scope.deaths_read)
    body, recorded, rid = await recorded_death(writer)
    death_id = recorded["death_id"]
    read = await writer.get(f"/v1/deaths/{death_id}", headers={"X-On-Behalf-Of": "Dr Looker"})
    assert read.status_code == 200
    auditor = await make_api(Scope.audit_read)

    trail = await whole_trail(auditor, death_id=death_id)
    actions = [row["action"] for row in trail]
    assert actions[0] == "death.read"  # newest first
    referrals = len(recorded["referrals"])
    assert referrals >= 1
    assert sorted(actions[1:]) == sorted(
        ["screening.create", "death.create"] + ["referral.create"] * referrals
    )
    assert len({row["id"] for row in trail}) == len(trail)
    times = [row["occurred_at"] for row in trail]
    assert times == sorted(times, reverse=True)
    assert trail[0]["on_behalf_of"] == "Dr Looker"
    created = [row for row in trail if row["request_id"] == rid]
    assert len(created) == 2 + referrals
    for row in created:
        assert row["client_id"] == str(writer.client_id)
        assert row["on_behalf_of"] == ON_BEHALF_OF
        assert row["death_id"] == death_id
        assert row["outcome"] == "success"
    text = str(trail)
    for value in patient_values(body):
        assert value not in text


async def test_filters_narrow_the_trail(api: Api, make_api: MakeApi) -> None:
    writer = await make_api(Scope.screenings_write, Scope.deaths_read)
    _, recorded, _ = await recorded_death(writer)
    death_id = recorded["death_id"]
    auditor = await make_api(Scope.audit_read)

    mine = await whole_trail(auditor, client_id=str(writer.client_id))
    assert mine and {row["client_id"] for row in mine} == {str(writer.client_id)}

    referral_id = recorded["referrals"][0]["id"]
    one = await whole_trail(auditor, resource_id=referral_id)
    assert [(row["action"], row["resource_type"]) for row in one] == [
        ("referral.create", "referral")
    ]

    created = await whole_trail(auditor, death_id=death_id, action="referral.create")
    assert len(created) == len(recorded["referrals"])
    screenings = await whole_trail(auditor, death_id=death_id, resource_type="screening")
    assert [row["action"] for row in screenings] == ["screening.create"]

    moment = datetime.fromisoformat(screenings[0]["occurred_at"].replace("Z", "+00:00"))
    window = {
        "death_id": death_id,
        "occurred_from": moment.isoformat(),
        "occurred_before": (moment + timedelta(microseconds=1)).isoformat(),
    }
    assert {row["occurred_at"] for row in await whole_trail(auditor, **window)} == {
        screenings[0]["occurred_at"]
    }
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await whole_trail(auditor, death_id=death_id, occurred_from=later) == []
    assert await whole_trail(auditor, death_id=str(uuid.uuid4())) == []


async def test_reading_the_log_is_audited(make_api: MakeApi) -> None:
    writer = await make_api(Scope.screenings_write)
    _, recorded, _ = await recorded_death(writer)
    death_id = recorded["death_id"]
    auditor = await make_api(Scope.audit_read)
    first = await auditor.get(
        "/v1/audit-events",
        params={"death_id": death_id},
        headers={"X-On-Behalf-Of": "IG officer"},
    )
    assert first.status_code == 200
    assert "audit.read" not in {row["action"] for row in first.json()["items"]}

    again = await whole_trail(auditor, death_id=death_id, action="audit.read")
    assert len(again) >= 1
    looked = again[-1]  # the oldest: the first read
    assert looked["client_id"] == str(auditor.client_id)
    assert looked["on_behalf_of"] == "IG officer"
    assert looked["resource_type"] == "audit_event" and looked["resource_id"] is None


async def test_bad_searches_are_refused(make_api: MakeApi) -> None:
    auditor = await make_api(Scope.audit_read)
    now = datetime.now(UTC)
    cases: list[tuple[dict[str, str], int, str]] = [
        ({"death_id": "not-a-uuid"}, 422, "query:/death_id"),
        ({"occurred_from": "2026-01-01T10:00:00"}, 422, "query:/occurred_from"),
        (
            {"occurred_from": now.isoformat(), "occurred_before": now.isoformat()},
            422,
            "query:/occurred_from",
        ),
        ({"action": "DROP TABLE"}, 422, "query:/action"),
        ({"limit": "0"}, 422, "query:/limit"),
        ({"limit": "201"}, 422, "query:/limit"),
    ]
    for params, status, pointer in cases:
        response = await auditor.get("/v1/audit-events", params=params)
        assert response.status_code == status, (params, response.text)
        assert pointer in [error["pointer"] for error in response.json()["errors"]], params
    tampered = await auditor.get("/v1/audit-events", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert tampered.status_code == 400


async def test_only_audit_readers_and_never_commissioners(make_api: MakeApi, api: Api) -> None:
    reader = await make_api(Scope.deaths_read, Scope.reports_read)
    assert (await reader.get("/v1/audit-events")).status_code == 403
    commissioner = await make_api(pseudonymised=True)
    assert (await commissioner.get("/v1/audit-events")).status_code == 403
    assert (await api.get("/v1/audit-events")).status_code == 200  # admin implies every scope
