"""Themes and findings through the API: the seeded themes, an administrator's renames and
retirements that never break history, findings recorded against a death and its review, the
filters (theme, kind, UK-local period, specialty, route) with cursor pages, If-Match on
corrections, and the events and audit rows they leave."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.auth.scopes import Scope
from app.models import AuditEvent, OutboxEvent
from tests.conftest import Api
from tests.factories import idem, in_specialty, record, walk_pages
from tests.kit.reviews import brief_sjr, review_route

PROBLEM_JSON = "application/problem+json"

# The themes issue 4 names, in its words.
SEEDED_NAMES = {
    "Advance care planning",
    "DNACPR decisions",
    "Recognition of end of life",
    "End-of-life care",
    "Frailty",
    "Delays in access",
    "Admission avoidance",
    "Handover and transfer",
    "Inter-site transfers and ward moves",
    "Clinical monitoring and escalation of the deteriorating patient",
    "Early warning scores",
    "Sepsis",
    "Fluid balance and hydration",
    "Medication, including anticoagulation and diabetes",
    "Nutrition and weight",
    "Infection management",
    "Discharge",
    "Quality of records",
    "Communication with patients and families",
    "Clinical reasoning",
    "Palliative care",
}


# --- helpers ---------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def pointers(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    return [error["pointer"] for error in response.json().get("errors", [])]


async def staff(make_api: Any) -> Api:
    """A reviewer's system: records screenings (and reads them back: a write answers in full
    only a client that may read what it wrote) and reviews, reads and writes findings."""
    api: Api = await make_api(
        Scope.screenings_write,
        Scope.deaths_read,
        Scope.reviews_write,
        Scope.findings_read,
        Scope.findings_write,
    )
    return api


async def a_death(
    api: Api,
    specialty: str,
    died_at: datetime | None = None,
    *,
    expected: bool = True,
    admitting: str | None = None,
) -> dict[str, Any]:
    """A screened death; unexpected deaths get an SJR referral, General Surgery an M&M."""
    return await record(
        api,
        death=in_specialty(specialty, admitting),
        screening={"death_expected": expected},
        died_at=died_at,
    )


async def a_review(api: Api, recorded: dict[str, Any], route: str) -> dict[str, Any]:
    """Submit the review of the death's referral on ``route`` (unclaimed: no lease needed)."""
    return await review_route(api, recorded, route, brief_sjr("Dr Finder", 3, "Adequate."))


async def a_finding(api: Api, death_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "death_id": death_id,
        "kind": "problem_in_care",
        "description": "Antibiotics given four hours after sepsis was recognised.",
        **fields,
    }
    if "theme_id" not in fields:
        body.setdefault("theme_code", "sepsis")
    response = await api.post("/v1/findings", json=body)
    assert response.status_code == 201, response.text
    finding: dict[str, Any] = response.json()
    return finding


async def new_theme(admin: Api, name: str | None = None) -> dict[str, Any]:
    response = await admin.post("/v1/themes", json={"name": name or unique("Oxygen therapy")})
    assert response.status_code == 201, response.text
    theme: dict[str, Any] = response.json()
    return theme


async def findings_of(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/v1/findings", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def rows(database: Any, model: Any, **where: Any) -> list[Any]:
    async with database.transaction() as session:
        return list((await session.scalars(select(model).filter_by(**where))).all())


# --- themes ----------------------------------------------------------------------------------


async def test_the_seeded_themes_are_listed(make_api) -> None:
    reader = await make_api(Scope.findings_read)
    response = await reader.get("/v1/themes")
    assert response.status_code == 200, response.text
    themes = response.json()["items"]
    seeded = [theme for theme in themes if theme["name"] in SEEDED_NAMES]
    assert {theme["name"] for theme in seeded} == SEEDED_NAMES
    assert len(seeded) == 21
    assert not any(theme["retired"] for theme in themes)
    sepsis = next(theme for theme in themes if theme["name"] == "Sepsis")
    assert sepsis["code"] == "sepsis"

    # Small pages walk the same list once.
    walked, pages = await walk_pages(reader, "/v1/themes", {"limit": 5}, max_pages=100)
    assert pages >= 5
    assert [theme["id"] for theme in walked] == [theme["id"] for theme in themes]


async def test_an_administrator_creates_renames_and_retires_a_theme(make_api, database) -> None:
    admin = await make_api(Scope.admin)
    api = await staff(make_api)
    suffix = uuid.uuid4().hex[:8]
    created = await admin.post(
        "/v1/themes",
        json={"name": f"Oxygen therapy {suffix}", "description": "Prescribing and monitoring."},
    )
    assert created.status_code == 201, created.text
    theme = created.json()
    assert theme["code"] == f"oxygen_therapy_{suffix}"
    assert theme["retired"] is False and theme["version"] == 1
    assert created.headers["Location"] == f"/v1/themes/{theme['id']}"
    listed = (await api.get("/v1/themes")).json()["items"]
    assert theme["id"] in {item["id"] for item in listed}

    recorded = await a_death(api, unique("Respiratory"))
    finding = await a_finding(api, recorded["death_id"], theme_code=theme["code"])
    assert finding["theme"] == {
        "id": theme["id"],
        "code": theme["code"],
        "name": f"Oxygen therapy {suffix}",
        "retired": False,
    }

    # A rename needs If-Match, keeps the id and the code, and the finding shows the new name.
    url = f"/v1/themes/{theme['id']}"
    tag = (await api.get(url)).headers["ETag"]
    renamed_to = {"name": f"Oxygen prescribing {suffix}"}
    assert (await admin.patch(url, json=renamed_to)).status_code == 428
    renamed = await admin.patch(url, json=renamed_to, headers={"If-Match": tag})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["id"] == theme["id"]
    assert renamed.json()["code"] == theme["code"]
    assert renamed.json()["name"] == f"Oxygen prescribing {suffix}"
    assert renamed.json()["version"] == 2
    stale = await admin.patch(url, json={"description": "x"}, headers={"If-Match": tag})
    assert stale.status_code == 412
    seen = (await api.get(f"/v1/findings/{finding['id']}")).json()
    assert seen["theme"]["id"] == theme["id"]
    assert seen["theme"]["name"] == f"Oxygen prescribing {suffix}"
    assert seen["version"] == 1  # the finding itself did not change

    # Retired: hidden from the default list, refused for new findings, old findings unchanged.
    retired = await admin.patch(
        url, json={"retired": True}, headers={"If-Match": renamed.headers["ETag"]}
    )
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired"] is True and retired.json()["retired_at"]
    default = (await api.get("/v1/themes")).json()["items"]
    assert theme["id"] not in {item["id"] for item in default}
    everything = (await api.get("/v1/themes", params={"include_retired": "true"})).json()["items"]
    assert theme["id"] in {item["id"] for item in everything}

    for field, value in (("theme_id", theme["id"]), ("theme_code", theme["code"])):
        refused = await api.post(
            "/v1/findings",
            json={
                "death_id": recorded["death_id"],
                "kind": "concern",
                field: value,
                "description": "Oxygen not prescribed.",
            },
        )
        assert pointers(refused, 422) == [f"/{field}"]
        assert "retired" in refused.json()["errors"][0]["detail"]
    old = (await api.get(f"/v1/findings/{finding['id']}")).json()
    assert old == {**seen, "theme": {**seen["theme"], "retired": True}}
    assert [item["id"] for item in await findings_of(api, death_id=recorded["death_id"])] == [
        finding["id"]
    ]
    # The old finding keeps its retired theme through a correction of something else.
    corrected = await api.patch(
        f"/v1/findings/{finding['id']}",
        json={"description": "Oxygen given without a prescription."},
        headers={"If-Match": (await api.get(f"/v1/findings/{finding['id']}")).headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["theme"]["id"] == theme["id"]

    # Reopened, it takes findings again.
    reopened = await admin.patch(
        url, json={"retired": False}, headers={"If-Match": retired.headers["ETag"]}
    )
    assert reopened.status_code == 200 and reopened.json()["retired"] is False
    await a_finding(api, recorded["death_id"], theme_id=theme["id"])

    events = await rows(database, OutboxEvent, resource_id=uuid.UUID(theme["id"]))
    assert sorted(event.type for event in events) == ["theme.created"] + ["theme.updated"] * 3
    assert ["name"] in [event.changed for event in events]


async def test_a_theme_name_or_code_in_use_is_a_409_and_changes_nothing(make_api) -> None:
    admin = await make_api(Scope.admin)
    themes = (await admin.get("/v1/themes", params={"include_retired": "true"})).json()["items"]
    sepsis = next(theme for theme in themes if theme["code"] == "sepsis")
    for body, pointer in (
        ({"name": "Sepsis"}, "/name"),
        ({"name": "  SEPSIS "}, "/name"),  # names are compared without case or edge spaces
        ({"name": unique("Infection"), "code": "sepsis"}, "/code"),
    ):
        response = await admin.post("/v1/themes", json=body)
        assert pointers(response, 409) == [pointer], body
        assert response.json()["theme"] == f"/v1/themes/{sepsis['id']}"

    mine = await new_theme(admin)
    clash = await admin.patch(
        f"/v1/themes/{mine['id']}",
        json={"name": "sepsis"},
        headers={"If-Match": (await admin.get(f"/v1/themes/{mine['id']}")).headers["ETag"]},
    )
    assert pointers(clash, 409) == ["/name"]
    assert (await admin.get(f"/v1/themes/{mine['id']}")).json() == mine
    after = (await admin.get("/v1/themes", params={"include_retired": "true"})).json()["items"]
    assert len([theme for theme in after if theme["name"].lower() == "sepsis"]) == 1


async def test_only_an_administrator_manages_themes(make_api) -> None:
    admin = await make_api(Scope.admin)
    mine = await new_theme(admin)
    url = f"/v1/themes/{mine['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    api = await make_api(Scope.findings_read, Scope.findings_write)
    created = await api.post("/v1/themes", json={"name": unique("Falls")})
    assert created.status_code == 403 and "admin" in created.json()["detail"]
    retired = await api.patch(url, json={"retired": True}, headers={"If-Match": tag})
    assert retired.status_code == 403
    assert (await api.get(url)).json() == mine  # readable, unchanged


async def test_bad_theme_input_is_a_422_at_the_field_and_changes_nothing(make_api) -> None:
    admin = await make_api(Scope.admin)
    name = unique("Pressure ulcers")
    for body, pointer in (
        ({"name": ""}, "/name"),
        ({"name": "!!!"}, "/name"),
        ({"name": name, "code": "Not A Code"}, "/code"),
        ({"name": name, "colour": "red"}, "/colour"),
        ({}, "/name"),
    ):
        assert pointers(await admin.post("/v1/themes", json=body), 422) == [pointer], body
    names = {t["name"] for t in (await admin.get("/v1/themes")).json()["items"]}
    assert name not in names

    mine = await new_theme(admin)
    url = f"/v1/themes/{mine['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    for body, pointer in (
        ({"name": None}, "/name"),
        ({"retired": None}, "/retired"),
        ({"retired": "yes"}, "/retired"),
        ({"code": "other"}, "/code"),
    ):
        response = await admin.patch(url, json=body, headers={"If-Match": tag})
        assert pointers(response, 422) == [pointer], body
    assert (await admin.get(url)).json() == mine
    unknown = await admin.patch(
        f"/v1/themes/{uuid.uuid4()}", json={"retired": True}, headers={"If-Match": tag}
    )
    assert unknown.status_code == 404


# --- findings --------------------------------------------------------------------------------


async def test_a_finding_is_recorded_against_a_death_and_its_review(make_api, database) -> None:
    api = await staff(make_api)
    specialty = unique("Acute Medicine")
    recorded = await a_death(api, specialty, expected=False)
    review = await a_review(api, recorded, "sjr")
    person = unique("Dr Reviewer")
    response = await api.post(
        "/v1/findings",
        json={
            "death_id": recorded["death_id"],
            "review_id": review["id"],
            "kind": "problem_in_care",
            "theme_code": "sepsis",
            "phase": "admission_initial",
            "description": "Sepsis screening not completed on admission.",
        },
        headers={"X-On-Behalf-Of": person},
    )
    assert response.status_code == 201, response.text
    finding = response.json()
    assert response.headers["Location"] == f"/v1/findings/{finding['id']}"
    assert response.headers["ETag"]
    assert finding["death_id"] == recorded["death_id"]
    assert finding["review_id"] == review["id"]
    assert finding["kind"] == "problem_in_care"
    assert finding["theme"]["code"] == "sepsis" and finding["theme"]["name"] == "Sepsis"
    assert finding["theme"]["retired"] is False
    assert finding["phase"] == "admission_initial"
    assert finding["died_on"] == recorded["death"]["died_on"]
    assert finding["specialty"] == specialty
    assert finding["route"] == "sjr"
    assert finding["recorded_by"] == person
    assert finding["version"] == 1

    read = await api.get(response.headers["Location"])
    assert read.status_code == 200 and read.json() == finding
    assert read.headers["ETag"] == response.headers["ETag"]

    finding_id = uuid.UUID(finding["id"])
    events = await rows(database, OutboxEvent, resource_id=finding_id)
    assert [(e.type, e.death_id, e.resource_type) for e in events] == [
        ("finding.recorded", uuid.UUID(recorded["death_id"]), "finding")
    ]
    audits = await rows(database, AuditEvent, resource_id=finding_id)
    assert sorted(a.action for a in audits) == ["finding.create", "finding.read"]
    assert all(a.death_id == uuid.UUID(recorded["death_id"]) for a in audits)
    assert all(a.client_id == api.client_id for a in audits)
    assert [a.on_behalf_of for a in audits if a.action == "finding.create"] == [person]

    # A finding need not come from a review; an unknown finding is a 404.
    loose = await a_finding(api, recorded["death_id"], kind="good_practice")
    assert loose["review_id"] is None and loose["route"] is None
    assert (await api.get(f"/v1/findings/{uuid.uuid4()}")).status_code == 404


async def test_a_finding_that_does_not_fit_is_a_422_at_its_field_and_writes_nothing(
    make_api, database
) -> None:
    api = await staff(make_api)
    specialty = unique("Renal")
    recorded = await a_death(api, specialty, expected=False)
    other = await a_death(api, specialty, expected=False)
    review_of_other = await a_review(api, other, "sjr")
    themes = (await api.get("/v1/themes")).json()["items"]
    sepsis = next(theme for theme in themes if theme["code"] == "sepsis")
    death_id = recorded["death_id"]
    base = {"death_id": death_id, "kind": "concern", "theme_code": "sepsis", "description": "D"}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"review_id": review_of_other["id"]}, ["/review_id"]),
        ({"review_id": str(uuid.uuid4())}, ["/review_id"]),
        ({"death_id": str(uuid.uuid4())}, ["/death_id"]),
        ({"theme_code": "no_such_theme"}, ["/theme_code"]),
        ({"theme_code": None, "theme_id": str(uuid.uuid4())}, ["/theme_id"]),
        ({"theme_id": sepsis["id"]}, ["/theme_code"]),  # both
        ({"theme_code": None}, ["/theme_id"]),  # neither
        ({"kind": "complaint"}, ["/kind"]),
        ({"phase": "triage"}, ["/phase"]),
        ({"description": ""}, ["/description"]),
        ({"death_id": "D-2026-1"}, ["/death_id"]),
        ({"severity": "high"}, ["/severity"]),
        # Several problems at once are reported together.
        (
            {"review_id": str(uuid.uuid4()), "theme_code": "no_such_theme"},
            ["/review_id", "/theme_code"],
        ),
    ]
    for change, expected in cases:
        response = await api.post("/v1/findings", json={**base, **change})
        assert pointers(response, 422) == expected, change
        assert "Traceback" not in response.text

    assert await findings_of(api, death_id=death_id) == []
    death_uuid = uuid.UUID(death_id)
    assert [
        e.type
        for e in await rows(database, OutboxEvent, death_id=death_uuid)
        if e.type.startswith("finding.")
    ] == []
    assert [
        a.action
        for a in await rows(database, AuditEvent)
        if a.action.startswith("finding.") and death_uuid in a.death_ids
    ] == []


async def test_a_retried_post_with_the_same_idempotency_key_records_one_finding(make_api) -> None:
    api = await staff(make_api)
    recorded = await a_death(api, unique("Stroke"))
    body = {
        "death_id": recorded["death_id"],
        "kind": "learning_point",
        "theme_code": "discharge",
        "description": "Discharge summary sent late.",
    }
    key = idem()
    first = await api.post("/v1/findings", json=body, headers=key)
    again = await api.post("/v1/findings", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await api.post("/v1/findings", json={**body, "kind": "concern"}, headers=key)
    assert other.status_code == 422
    assert [f["id"] for f in await findings_of(api, death_id=recorded["death_id"])] == [
        first.json()["id"]
    ]


async def test_findings_filter_by_theme_kind_period_specialty_and_route(make_api, database) -> None:
    api = await staff(make_api)
    specialty = unique("Filter specialty")

    # Around the UK's 1 April and 1 May in 2025 (BST from 30 March): local dates differ from UTC.
    late_march = await a_death(api, specialty, datetime(2025, 3, 31, 22, 30, tzinfo=UTC))
    first_april = await a_death(
        api, specialty, datetime(2025, 3, 31, 23, 30, tzinfo=UTC), expected=False
    )
    first_may = await a_death(
        api, specialty, datetime(2025, 4, 30, 23, 30, tzinfo=UTC), admitting="General Surgery"
    )
    june = await a_death(api, specialty, datetime(2025, 6, 15, 12, 0, tzinfo=UTC))
    assert [d["death"]["died_on"] for d in (late_march, first_april, first_may, june)] == [
        "2025-03-31",
        "2025-04-01",
        "2025-05-01",
        "2025-06-15",
    ]
    sjr_review = await a_review(api, first_april, "sjr")
    mm_review = await a_review(api, first_may, "mm")

    made: dict[str, dict[str, Any]] = {}

    async def make(label: str, recorded: dict[str, Any], **fields: Any) -> None:
        made[label] = await a_finding(api, recorded["death_id"], **fields)

    await make("march sepsis", late_march)
    await make("march good", late_march, kind="good_practice", theme_code="end_of_life_care")
    await make("april sepsis sjr", first_april, review_id=sjr_review["id"])
    await make(
        "april discharge sjr",
        first_april,
        kind="learning_point",
        theme_code="discharge",
        review_id=sjr_review["id"],
    )
    await make("may sepsis mm", first_may, kind="concern", review_id=mm_review["id"])
    await make("may frailty", first_may, theme_code="frailty")
    await make("june sepsis", june)
    await make("june records", june, kind="learning_point", theme_code="quality_of_records")

    def labels(items: list[dict[str, Any]]) -> set[str]:
        by_id = {finding["id"]: label for label, finding in made.items()}
        return {by_id[item["id"]] for item in items}

    everything = await findings_of(api, specialty=specialty)
    assert labels(everything) == set(made)
    died_on = [item["died_on"] for item in everything]
    assert died_on == sorted(died_on, reverse=True)

    # Cursor pages over the test's own set: each finding once, in order.
    walked, pages = await walk_pages(api, "/v1/findings", {"specialty": specialty, "limit": 3})
    assert pages == 3
    assert [item["id"] for item in walked] == [item["id"] for item in everything]
    sepsis_pages, pages = await walk_pages(
        api, "/v1/findings", {"specialty": specialty, "theme": "sepsis", "limit": 1}
    )
    assert pages == 4
    assert labels(sepsis_pages) == {
        "march sepsis",
        "april sepsis sjr",
        "may sepsis mm",
        "june sepsis",
    }

    sepsis_id = made["march sepsis"]["theme"]["id"]
    assert labels(await findings_of(api, specialty=specialty, theme=sepsis_id)) == labels(
        sepsis_pages
    )
    assert labels(await findings_of(api, specialty=specialty, kind="problem_in_care")) == {
        "march sepsis",
        "april sepsis sjr",
        "may frailty",
        "june sepsis",
    }
    assert labels(
        await findings_of(api, specialty=specialty, kind="learning_point", theme="discharge")
    ) == {"april discharge sjr"}

    # Periods are UK local dates: 23:30 BST on 31 March is March; 00:30 BST on 1 April is April.
    april = await findings_of(
        api, specialty=specialty, died_from="2025-04-01", died_to="2025-04-30"
    )
    assert labels(april) == {"april sepsis sjr", "april discharge sjr"}
    assert labels(await findings_of(api, specialty=specialty, died_to="2025-03-31")) == {
        "march sepsis",
        "march good",
    }
    assert labels(await findings_of(api, specialty=specialty, died_from="2025-05-01")) == {
        "may sepsis mm",
        "may frailty",
        "june sepsis",
        "june records",
    }
    assert labels(
        await findings_of(api, specialty=specialty, died_from="2025-05-01", died_to="2025-05-01")
    ) == {"may sepsis mm", "may frailty"}

    assert labels(await findings_of(api, specialty=specialty, route="sjr")) == {
        "april sepsis sjr",
        "april discharge sjr",
    }
    assert labels(await findings_of(api, specialty=specialty, route="mm")) == {"may sepsis mm"}
    assert labels(await findings_of(api, review_id=mm_review["id"])) == {"may sepsis mm"}
    assert labels(await findings_of(api, death_id=june["death_id"])) == {
        "june sepsis",
        "june records",
    }
    assert await findings_of(api, specialty=unique("Nobody")) == []

    # A page of findings is audited by one row naming every patient on it (issue 19).
    request_id = f"req-{uuid.uuid4().hex}"
    listed = await api.get(
        "/v1/findings", params={"death_id": june["death_id"]}, headers={"X-Request-ID": request_id}
    )
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 2
    audits = await rows(database, AuditEvent, request_id=request_id)
    assert [(a.action, set(a.death_ids)) for a in audits] == [
        ("finding.list", {uuid.UUID(june["death_id"])})
    ]

    # Bad filters are refused at the parameter.
    for params, pointer in (
        ({"theme": "no_such_theme"}, "query:/theme"),
        ({"theme": str(uuid.uuid4())}, "query:/theme"),
        ({"kind": "complaint"}, "query:/kind"),
        ({"route": "inquest"}, "query:/route"),
        ({"died_from": "2025-05-01", "died_to": "2025-04-01"}, "query:/died_from"),
        ({"died_from": "1 April"}, "query:/died_from"),
        ({"death_id": "D-2025-1"}, "query:/death_id"),
        ({"limit": 0}, "query:/limit"),
    ):
        assert pointers(await api.get("/v1/findings", params=params), 422) == [pointer], params
    garbage = await api.get("/v1/findings", params={"cursor": "not-a-cursor"})
    assert garbage.status_code == 400


async def test_a_finding_is_corrected_with_if_match(make_api, database) -> None:
    api = await staff(make_api)
    admin = await make_api(Scope.admin)
    specialty = unique("Cardiology care")
    recorded = await a_death(api, specialty, expected=False)
    review = await a_review(api, recorded, "sjr")
    other = await a_death(api, specialty, expected=False)
    review_of_other = await a_review(api, other, "sjr")
    finding = await a_finding(api, recorded["death_id"])
    url = f"/v1/findings/{finding['id']}"
    tag = (await api.get(url)).headers["ETag"]

    change = {"kind": "learning_point", "theme_code": "early_warning_scores"}
    missing = await api.patch(url, json=change)
    assert missing.status_code == 428
    assert missing.headers["content-type"].startswith(PROBLEM_JSON)

    updated = await api.patch(
        url,
        json={**change, "phase": "ongoing", "review_id": review["id"]},
        headers={"If-Match": tag, "X-On-Behalf-Of": "Dr Corrector"},
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["kind"] == "learning_point"
    assert body["theme"]["code"] == "early_warning_scores"
    assert body["phase"] == "ongoing"
    assert body["review_id"] == review["id"] and body["route"] == "sjr"
    assert body["description"] == finding["description"]
    assert body["version"] == 2
    assert updated.headers["ETag"] != tag

    stale = await api.patch(url, json={"description": "Later."}, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == updated.headers["ETag"]

    # Refused at the field, and nothing changes.
    retired = await new_theme(admin)
    theme_url = f"/v1/themes/{retired['id']}"
    tag_theme = (await admin.get(theme_url)).headers["ETag"]
    assert (
        await admin.patch(theme_url, json={"retired": True}, headers={"If-Match": tag_theme})
    ).status_code == 200
    current = {"If-Match": updated.headers["ETag"]}
    for patch, pointer in (
        ({"review_id": review_of_other["id"]}, "/review_id"),
        ({"theme_id": retired["id"]}, "/theme_id"),
        ({"kind": None}, "/kind"),
        ({"description": None}, "/description"),
        ({"theme_code": None}, "/theme_code"),
        ({"death_id": other["death_id"]}, "/death_id"),
        ({"phase": "triage"}, "/phase"),
    ):
        assert pointers(await api.patch(url, json=patch, headers=current), 422) == [pointer]
    assert (await api.get(url)).json() == body

    # Clearing optional fields; the same values again change nothing.
    cleared = await api.patch(
        url, json={"phase": None, "review_id": None, "recorded_by": None}, headers=current
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["phase"] is None
    assert cleared.json()["review_id"] is None and cleared.json()["route"] is None
    same = await api.patch(
        url, json={"kind": "learning_point"}, headers={"If-Match": cleared.headers["ETag"]}
    )
    assert same.status_code == 200 and same.json()["version"] == 3

    events = await rows(database, OutboxEvent, resource_id=uuid.UUID(finding["id"]))
    assert [e.type for e in sorted(events, key=lambda e: e.occurred_at)] == [
        "finding.recorded",
        "finding.updated",
        "finding.updated",
    ]
    changed = sorted(e.changed for e in events if e.type == "finding.updated")
    assert changed == [
        ["kind", "phase", "review_id", "route", "theme_id"],
        ["phase", "review_id", "route"],
    ]
    audits = await rows(database, AuditEvent, resource_id=uuid.UUID(finding["id"]))
    updates = [a for a in audits if a.action == "finding.update"]
    assert len(updates) == 2
    assert "Dr Corrector" in {a.on_behalf_of for a in updates}
    assert all(a.death_id == uuid.UUID(recorded["death_id"]) for a in audits)


async def test_a_corrected_death_carries_its_findings_with_it(api) -> None:
    specialty = unique("Oncology")
    died = datetime.now(UTC) - timedelta(days=10)
    recorded = await a_death(api, specialty, died)
    finding = await a_finding(api, recorded["death_id"])
    death_url = f"/v1/deaths/{recorded['death_id']}"
    tag = (await api.get(death_url)).headers["ETag"]
    moved_to = unique("Haematology")
    earlier = died - timedelta(days=3)
    corrected = await api.patch(
        death_url,
        json={"specialty_at_death": moved_to, "died_at": earlier.isoformat()},
        headers={"If-Match": tag},
    )
    assert corrected.status_code == 200, corrected.text
    seen = (await api.get(f"/v1/findings/{finding['id']}")).json()
    assert seen["specialty"] == moved_to
    assert seen["died_on"] == corrected.json()["died_on"] != finding["died_on"]
    assert [f["id"] for f in await findings_of(api, specialty=moved_to)] == [finding["id"]]
    assert await findings_of(api, specialty=specialty) == []


async def test_reading_findings_needs_findings_read_and_recording_needs_write(make_api) -> None:
    writer = await staff(make_api)
    recorded = await a_death(writer, unique("Gastro"))
    reader = await make_api(Scope.findings_read)
    body = {
        "death_id": recorded["death_id"],
        "kind": "concern",
        "theme_code": "frailty",
        "description": "Falls risk not assessed.",
    }
    refused = await reader.post("/v1/findings", json=body)
    assert refused.status_code == 403 and "findings:write" in refused.json()["detail"]
    assert await findings_of(reader, death_id=recorded["death_id"]) == []
