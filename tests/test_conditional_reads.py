"""Conditional reads (issue 5 part 3): every single-resource GET sends an ETag and answers a
current If-None-Match with a bodiless 304 repeating the tag; a change, including one that
bumps no version (a section added to a plan, an action added to it), gives a new tag."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.factories import idem, screening_body
from tests.kit.pseudonymised import Seeded, seed

SINGLE_RESOURCE = re.compile(r"^/v1/[a-z-]+/\{[a-z_]+\}$")


def test_every_single_resource_get_declares_304(app_and_http: Any) -> None:
    app, _ = app_and_http
    routes = [
        (path, operations["get"])
        for path, operations in app.openapi()["paths"].items()
        if "get" in operations and SINGLE_RESOURCE.match(path)
    ]
    assert len(routes) >= 8
    missing = [path for path, operation in routes if "304" not in operation["responses"]]
    assert not missing, f"single-resource GETs without conditional reads: {missing}"


async def _tag(api: Any, path: str) -> str:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    tag: str = response.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')
    return tag


async def _assert_not_modified(api: Any, path: str, tag: str) -> None:
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        response = await api.get(path, headers={"If-None-Match": header})
        assert response.status_code == 304, (path, header, response.text)
        assert response.content == b""
        assert response.headers["ETag"] == tag


Change = Callable[[Any, Seeded, str], Awaitable[Any]]


async def _patch_death(api: Any, seeded: Seeded, tag: str) -> Any:
    return await api.patch(
        f"/v1/deaths/{seeded.ids['death_id']}", json={"ward": "Ward 9"}, headers={"If-Match": tag}
    )


async def _amend_screening(api: Any, seeded: Seeded, tag: str) -> Any:
    path = f"/v1/screenings/{seeded.ids['screening_id']}"
    current = (await api.get(path)).json()
    body = {
        name: current[name]
        for name in (
            "examiner",
            "screened_at",
            "records_reviewed",
            "qap_discussed",
            "bereaved_contacted",
            "bereaved_concerns",
            "staff_concerns",
            "cause_of_death",
            "mccd_issued_at",
            "coroner_notified",
            "coroner_reason",
            "clinical_governance_concern",
            "death_expected",
            "patient_safety_concern",
            "routes_requested",
        )
    }
    body["staff_concerns"] = "Amended for the conditional read test"
    return await api.put(path, json=body, headers={"If-Match": tag})


async def _assign_referral(api: Any, seeded: Seeded, tag: str) -> Any:
    return await api.post(
        f"/v1/referrals/{seeded.ids['open_referral_id']}/assign", json={"assigned_to": "Dr Cond"}
    )


async def _amend_review(api: Any, seeded: Seeded, tag: str) -> Any:
    path = f"/v1/reviews/{seeded.ids['review_id']}"
    review = (await api.get(path)).json()["review"]
    kept = {
        "instrument": "sjr",
        "reviewer": review["reviewer"],
        "phases": [
            {"phase": p["phase"], "rating": p["rating"], "narrative": p["narrative"]}
            for p in review["phases"]
        ],
        "quality_of_records": review["quality_of_records"],
        "avoidability": 6,
        "problems_in_care": [],
        "patient_safety_incident_suspected": False,
    }
    return await api.put(path, json={"review": kept}, headers={"If-Match": tag})


async def _patch_finding(api: Any, seeded: Seeded, tag: str) -> Any:
    return await api.patch(
        f"/v1/findings/{seeded.ids['finding_id']}",
        json={"phase": "ongoing"},
        headers={"If-Match": tag},
    )


async def _rename_theme(api: Any, seeded: Seeded, tag: str) -> Any:
    return await api.patch(
        f"/v1/themes/{seeded.ids['own_theme_id']}",
        json={"name": f"Renamed {uuid.uuid4().hex[:8]}"},
        headers={"If-Match": tag},
    )


async def _add_section(api: Any, seeded: Seeded, tag: str) -> Any:
    # A new section bumps no version of the plan, but the plan shows it.
    return await api.post(
        f"/v1/action-plans/{seeded.ids['plan_id']}/sections", json={"title": "Another area"}
    )


async def _patch_action(api: Any, seeded: Seeded, tag: str) -> Any:
    return await api.patch(
        f"/v1/actions/{seeded.ids['action_id']}", json={"status": 4}, headers={"If-Match": tag}
    )


async def _unlink_findings(api: Any, seeded: Seeded, tag: str) -> Any:
    return await api.put(
        f"/v1/actions/{seeded.ids['action_id']}/findings",
        json={"finding_ids": []},
        headers={"If-Match": tag},
    )


CASES: list[tuple[str, Change]] = [
    ("/v1/deaths/{death_id}", _patch_death),
    ("/v1/screenings/{screening_id}", _amend_screening),
    ("/v1/referrals/{open_referral_id}", _assign_referral),
    ("/v1/reviews/{review_id}", _amend_review),
    ("/v1/findings/{finding_id}", _patch_finding),
    ("/v1/themes/{own_theme_id}", _rename_theme),
    ("/v1/action-plans/{plan_id}", _add_section),
    ("/v1/actions/{action_id}", _patch_action),
    ("/v1/actions/{action_id}/findings", _unlink_findings),
]


@pytest.mark.parametrize(("template", "change"), CASES, ids=[case[0] for case in CASES])
async def test_a_single_resource_answers_if_none_match(
    api: Any, template: str, change: Change
) -> None:
    seeded = await seed(api)
    theme = await api.post("/v1/themes", json={"name": f"Conditional {uuid.uuid4().hex[:10]}"})
    assert theme.status_code == 201, theme.text
    seeded.ids["own_theme_id"] = theme.json()["id"]
    unexpected = screening_body(screening={"death_expected": False})
    posted = await api.post("/v1/screenings", json=unexpected, headers=idem())
    assert posted.status_code == 201, posted.text
    seeded.ids["open_referral_id"] = posted.json()["referrals"][0]["id"]
    path = template.format(**seeded.ids)

    tag = await _tag(api, path)
    await _assert_not_modified(api, path, tag)
    stale = await api.get(path, headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200 and stale.headers["ETag"] == tag

    changed = await change(api, seeded, tag)
    assert changed.status_code in (200, 201), changed.text
    after = await api.get(path, headers={"If-None-Match": tag})
    assert after.status_code == 200, after.text
    assert after.content and after.headers["ETag"] != tag
    await _assert_not_modified(api, path, after.headers["ETag"])


async def test_a_plan_tag_follows_its_actions(api: Any) -> None:
    """A plan's detail counts its actions: adding one changes the plan's tag, though the
    plan's own version does not move."""
    seeded = await seed(api)
    path = f"/v1/action-plans/{seeded.ids['plan_id']}"
    before = await api.get(path)
    tag = before.headers["ETag"]
    section = before.json()["sections"][0]["id"]
    added = await api.post(
        "/v1/actions",
        json={
            "plan_id": seeded.ids["plan_id"],
            "section_id": section,
            "reference": "2",
            "action": "Audit escalation monthly",
            "status": 2,
        },
    )
    assert added.status_code == 201, added.text
    after = await api.get(path, headers={"If-None-Match": tag})
    assert after.status_code == 200
    assert after.json()["version"] == before.json()["version"]
    assert after.json()["counts"]["total"] == before.json()["counts"]["total"] + 1
    assert after.headers["ETag"] != tag


async def test_an_overdue_action_has_another_tag(api: Any) -> None:
    """What turns with the calendar (an action's RAG) is in the tag, so a cached copy is not
    kept past the due date."""
    seeded = await seed(api)
    plan = (await api.get(f"/v1/action-plans/{seeded.ids['plan_id']}")).json()
    late = await api.post(
        "/v1/actions",
        json={
            "plan_id": seeded.ids["plan_id"],
            "section_id": plan["sections"][0]["id"],
            "reference": "3",
            "action": "Due long ago",
            "due_date": "2020-01-31",
        },
    )
    assert late.status_code == 201 and late.json()["overdue"] is True
    on_time = (await api.get(f"/v1/actions/{seeded.ids['action_id']}")).headers["ETag"]
    # Tags are keyed MACs (issue 11): the overdue state shows as a second part, not by name.
    assert len(late.headers["ETag"].strip('"').split(".")) == 2
    assert len(on_time.strip('"').split(".")) == 1
    read = await api.get(f"/v1/actions/{late.json()['id']}")
    assert read.headers["ETag"] == late.headers["ETag"]


async def test_a_finding_tag_follows_its_theme_and_death(api: Any) -> None:
    """A finding shows its theme's name and its death's specialty, which change without a new
    version of the finding: renaming the theme or correcting the death gives the finding a new
    tag, while If-Match still takes the finding's own version."""
    seeded = await seed(api)
    theme = await api.post("/v1/themes", json={"name": f"Tagged {uuid.uuid4().hex[:10]}"})
    assert theme.status_code == 201, theme.text
    finding = await api.post(
        "/v1/findings",
        json={
            "death_id": seeded.ids["death_id"],
            "kind": "learning_point",
            "theme_id": theme.json()["id"],
            "description": "Escalation plans were not shared at handover.",
        },
    )
    assert finding.status_code == 201, finding.text
    path = f"/v1/findings/{finding.json()['id']}"
    theme_path = f"/v1/themes/{theme.json()['id']}"
    before = await api.get(path)
    assert before.headers["ETag"] == finding.headers["ETag"]
    tag = before.headers["ETag"]
    await _assert_not_modified(api, path, tag)

    theme_tag = (await api.get(theme_path)).headers["ETag"]
    new_name = f"Renamed {uuid.uuid4().hex[:10]}"
    renamed = await api.patch(theme_path, json={"name": new_name}, headers={"If-Match": theme_tag})
    assert renamed.status_code == 200, renamed.text
    after_rename = await api.get(path, headers={"If-None-Match": tag})
    assert after_rename.status_code == 200, after_rename.text
    assert after_rename.json()["theme"]["name"] == new_name
    assert after_rename.json()["version"] == before.json()["version"]
    renamed_tag = after_rename.headers["ETag"]
    assert renamed_tag != tag
    await _assert_not_modified(api, path, renamed_tag)

    death_path = f"/v1/deaths/{seeded.ids['death_id']}"
    death_tag = (await api.get(death_path)).headers["ETag"]
    corrected = await api.patch(
        death_path, json={"specialty_at_death": "Neurology"}, headers={"If-Match": death_tag}
    )
    assert corrected.status_code == 200, corrected.text
    after_death = await api.get(path, headers={"If-None-Match": renamed_tag})
    assert after_death.status_code == 200
    assert after_death.json()["specialty"] == "Neurology"
    assert after_death.headers["ETag"] != renamed_tag

    # The old tag still guards an update: the finding itself has not changed.
    patched = await api.patch(
        path, json={"description": "Reworded after the theme's rename."}, headers={"If-Match": tag}
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == (await api.get(path)).headers["ETag"]
