"""Review programmes' API beyond the hand-worked report (issue 17): what a definition may say
and when it may change, a closed programme, excluding a case, a linked case whose routine SJR
is withdrawn, a second opinion asked of a specialty, corrections of the date of death, other
organisations, and the routes a programme's queue is not."""

from __future__ import annotations

from typing import Any

from app.programmes.cohort import refresh_open_programmes
from app.programmes.sampling import sample_key
from tests.factories import idem, screening_body
from tests.history_records import history_record, run, utc
from tests.kit.programmes import case_number, death, new_trust, sjr_body

JUNE = {"period_start": "2025-06-01", "period_end": "2025-06-30"}


async def _programme(api: Any, **body: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/programmes",
        json={
            "name": f"Programme {idem()['Idempotency-Key'][:8]}",
            "owner": "Lead",
            **JUNE,
            **body,
        },
        headers=idem(),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _build(api: Any, programme: str, **params: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/programmes/{programme}/cohort", params=params)
    assert response.status_code == 200, response.text
    built: dict[str, Any] = response.json()
    return built


async def _cases(api: Any, programme: str) -> dict[str, dict[str, Any]]:
    page = await api.get(f"/v1/programmes/{programme}/cases", params={"limit": 200})
    assert page.status_code == 200, page.text
    return {case["death_id"]: case for case in page.json()["items"]}


async def _patch(api: Any, programme: str, body: dict[str, Any]) -> Any:
    current = await api.get(f"/v1/programmes/{programme}")
    return await api.patch(
        f"/v1/programmes/{programme}", json=body, headers={"If-Match": current.headers["ETag"]}
    )


async def test_a_definition_is_checked_whole(make_api, database) -> None:
    team = await make_api(organisation_id=await new_trust(database))
    for body, pointer in (
        ({"period_start": "2025-06-30", "period_end": "2025-06-01"}, "/period_end"),
        ({"sampling": {"mode": "number"}}, "/sampling"),
        ({"sampling": {"mode": "all", "percent": 10}}, "/sampling"),
        ({"cohort": {"age_min": 60, "age_max": 18}}, "/cohort/age_max"),
        ({"cohort": {"places_of_death": ["inpatient", "inpatient"]}},
         "/cohort/places_of_death"),
        ({"questions": [{"text": "Q", "kind": "colour"}]}, "/questions/0/kind"),
        # No code can be made from the text (an answer names its question by code).
        ({"questions": [{"text": "Q1", "kind": "text"}, {"text": "???", "kind": "text"}]},
         "/questions/1/code"),
    ):  # fmt: skip
        response = await team.post(
            "/v1/programmes", json={"name": "Bad", "owner": "Lead", **JUNE, **body}
        )
        assert response.status_code == 422, (body, response.text)
        assert any(e["pointer"].startswith(pointer) for e in response.json()["errors"]), body
    nameless = await team.post("/v1/programmes", json={"name": "!!!", "owner": "Lead", **JUNE})
    assert nameless.status_code == 422, nameless.text
    assert nameless.json()["errors"][0]["pointer"] == "/code"
    elsewhere = await new_trust(database)
    refused = await team.post(
        "/v1/programmes",
        json={"name": "Theirs", "owner": "Lead", **JUNE,
              "cohort": {"organisations": [str(elsewhere)]}, "themes": ["no_such_theme_x"]},
    )  # fmt: skip
    assert refused.status_code == 422
    assert {e["pointer"] for e in refused.json()["errors"]} == {"/cohort/organisations/0"}
    unknown_theme = await team.post(
        "/v1/programmes",
        json={"name": "Themes", "owner": "Lead", **JUNE, "themes": ["no_such_theme_x"]},
    )
    assert unknown_theme.json()["errors"][0]["pointer"] == "/themes/0"
    first = await _programme(team, name="Same name")
    again = await team.post("/v1/programmes", json={"name": "Same name", "owner": "X", **JUNE})
    assert again.status_code == 409
    assert again.json()["programme"] == f"/v1/programmes/{first['id']}"
    # A programme's questions get codes from their text, numbered when two would clash.
    coded = await _programme(
        team, questions=[{"text": "Was it avoidable?", "kind": "yes_no"},
                         {"text": "Was it avoidable", "kind": "scale"}],
    )  # fmt: skip
    assert [q["code"] for q in coded["questions"]] == ["was_it_avoidable", "was_it_avoidable_2"]


async def test_what_may_change_once_the_cohort_is_built(make_api, database) -> None:
    team = await make_api(organisation_id=await new_trust(database))
    deaths = [await death(team, f"2025-06-{day:02d}T10:00") for day in (2, 3, 4, 5)]
    programme = (
        await _programme(
            team,
            sampling={"mode": "number", "size": 1, "seed": 5},
            questions=[{"code": "q", "text": "Q?", "kind": "yes_no"}],
        )
    )["id"]
    dry = await _build(team, programme, dry_run="true")
    assert (dry["added"], dry["selected"], dry["referred"]) == (4, 1, 1)
    assert await _cases(team, programme) == {}  # the dry run changed nothing
    # Before the build anything changes; questions are replaced whole.
    replaced = await _patch(
        team, programme, {"questions": [{"code": "r", "text": "R?", "kind": "text"}]}
    )
    assert [q["code"] for q in replaced.json()["questions"]] == ["r"]
    built = await _build(team, programme)
    assert (built["added"], built["selected"], built["referred"]) == (4, 1, 1)
    numbers = {case_number(d): d["death"]["id"] for d in deaths}
    first = min(numbers, key=lambda n: sample_key(n, 5))
    cases = await _cases(team, programme)
    assert [d for d, c in cases.items() if c["selected"]] == [numbers[first]]

    fixed = await _patch(team, programme, {"period_end": "2025-07-31"})
    assert fixed.status_code == 409 and fixed.json()["errors"][0]["code"] == "cohort_built"
    shrink = await _patch(
        team, programme, {"sampling": {"mode": "number", "size": 0 + 1, "seed": 6}}
    )
    assert shrink.status_code == 409
    grown = await _patch(team, programme, {"sampling": {"mode": "number", "size": 3}})
    assert grown.status_code == 200 and grown.json()["sampling"]["seed"] == 5
    assert (await _build(team, programme))["selected"] == 2
    # Once answered, the questions stay.
    case = cases[numbers[first]]
    read = await team.get(f"/v1/programmes/{programme}/cases/{case['id']}")
    answered = await team.put(
        f"/v1/programmes/{programme}/cases/{case['id']}/answers",
        json={"answers": [{"question": "r", "answer": "Noted."}]},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert answered.status_code == 200, answered.text
    stale = await team.put(
        f"/v1/programmes/{programme}/cases/{case['id']}/answers",
        json={"answers": []},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert stale.status_code == 412
    kept = await _patch(team, programme, {"questions": []})
    assert kept.status_code == 409

    # Closed: nothing joins (the build is a 409, its dry run answers; the runner passes it by).
    closed = await _patch(team, programme, {"status": "closed"})
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    assert (await team.post(f"/v1/programmes/{programme}/cohort")).status_code == 409
    late = await death(team, "2025-06-20T10:00")
    await refresh_open_programmes(database)
    assert late["death"]["id"] not in await _cases(team, programme)
    assert (await _build(team, programme, dry_run="true"))["added"] == 1
    reopened = await _patch(team, programme, {"status": "open"})
    assert reopened.json()["status"] == "open"
    await refresh_open_programmes(database)
    assert (await _cases(team, programme))[late["death"]["id"]]["joined"] == "late"


async def test_excluding_a_case_and_a_withdrawn_routine_sjr(make_api, database) -> None:
    team = await make_api(organisation_id=await new_trust(database))
    routine = await death(team, "2025-06-02T10:00", unexpected=True)
    other = await death(team, "2025-06-03T10:00")
    spare = await death(team, "2025-06-04T10:00")
    numbers = [case_number(d) for d in (routine, other, spare)]
    # A seed choosing the routine death and the other first, the spare last.
    seed = next(
        s for s in range(10_000)
        if sorted(numbers, key=lambda n: sample_key(n, s))[-1] == case_number(spare)
    )  # fmt: skip
    programme = (await _programme(team, sampling={"mode": "number", "size": 2, "seed": seed}))["id"]
    built = await _build(team, programme)
    assert (built["selected"], built["linked"], built["referred"]) == (2, 1, 1)
    cases = await _cases(team, programme)
    assert cases[routine["death"]["id"]]["linked"]

    # The routine SJR referral is cancelled: the next pass gives the case a programme referral.
    (sjr,) = [r for r in routine["referrals"] if r["route"] == "sjr"]
    cancelled = await team.post(f"/v1/referrals/{sjr['id']}/cancel", json={"reason": "In error."})
    assert cancelled.status_code == 200, cancelled.text
    again = await _build(team, programme)
    assert (again["unlinked"], again["referred"]) == (1, 1)
    relinked = (await _cases(team, programme))[routine["death"]["id"]]
    assert not relinked["linked"] and relinked["referral_id"]

    # Excluding the other case cancels its referral and tops the sample up with the spare.
    target = cases[other["death"]["id"]]
    excluded = await team.post(
        f"/v1/programmes/{programme}/cases/{target['id']}/exclude",
        json={"reason": "Recorded at another trust."},
    )
    assert excluded.status_code == 200 and excluded.json()["status"] == "excluded"
    referral = await team.get(f"/v1/referrals/{target['referral_id']}")
    assert referral.json()["status"] == "cancelled"
    assert referral.json()["status_reason"] == "Recorded at another trust."
    topped = await _build(team, programme)
    assert topped["selected"] == 1
    assert (await _cases(team, programme))[spare["death"]["id"]]["selected"]
    twice = await team.post(
        f"/v1/programmes/{programme}/cases/{target['id']}/exclude", json={"reason": "Again."}
    )
    assert twice.status_code == 409


async def test_a_second_opinion_from_a_specialty(make_api, database) -> None:
    team = await make_api(organisation_id=await new_trust(database))
    recorded = await death(team, "2025-06-02T10:00")
    programme = (await _programme(team))["id"]
    await _build(team, programme)
    (case,) = (await _cases(team, programme)).values()
    asked = await team.post(
        f"/v1/programmes/{programme}/cases/{case['id']}/second-opinions",
        json={"specialty": "Cardiology", "reason": "A cardiologist's view.",
              "requested_by": "Dr First"},
    )  # fmt: skip
    assert asked.status_code == 201, asked.text
    opinion = asked.json()
    assert (opinion["number"], opinion["requested_specialty"]) == (2, "Cardiology")
    referral = (await team.get(f"/v1/referrals/{opinion['referral_id']}")).json()
    assert referral["programme_id"] == programme and referral["reasons"] == ["second_opinion"]
    assert referral["specialty"] == "Cardiology" and referral["excluded_reviewer"] == "Dr First"
    claim = {"route": "programme", "programme_id": programme, "specialty": "Cardiology"}
    assert (await team.post("/v1/referrals/claim", json=claim)).json()["items"] == []
    assert (await team.post("/v1/referrals/claim", json={**claim, "reviewer": "dr first"})).json()[
        "items"
    ] == []
    taken = await team.post("/v1/referrals/claim", json={**claim, "reviewer": "Dr Cardiologist"})
    assert [i["id"] for i in taken.json()["items"]] == [opinion["referral_id"]]
    posted = await team.post(
        f"/v1/programmes/{programme}/cases/{case['id']}/review",
        json={"opinion": 2, "lease_id": taken.json()["items"][0]["lease_id"],
              "review": sjr_body(4, reviewer="Dr Cardiologist")},
    )  # fmt: skip
    assert posted.status_code == 201, posted.text
    detail = posted.json()["case"]
    assert [o["number"] for o in detail["opinions"]] == [1, 2]
    assert detail["opinions"][0]["review"] is None  # the first is still to come
    assert detail["status"] == "awaiting_review"
    assert recorded["death"]["id"] == detail["death_id"]
    unknown = await team.post(
        f"/v1/programmes/{programme}/cases/{case['id']}/review",
        json={"opinion": 3, "review": sjr_body(4)},
    )
    assert unknown.status_code == 422


async def test_a_corrected_date_of_death_moves_the_case(make_api, database) -> None:
    team = await make_api(organisation_id=await new_trust(database))
    recorded = await death(team, "2025-06-02T10:00")
    programme = (await _programme(team))["id"]
    await _build(team, programme)
    death_id = recorded["death"]["id"]
    current = await team.get(f"/v1/deaths/{death_id}")
    patched = await team.patch(
        f"/v1/deaths/{death_id}",
        json={"died_at": "2025-07-02T10:00:00+00:00"},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.text
    assert (await _cases(team, programme))[death_id]["died_on"] == "2025-07-02"
    # It no longer meets the rules (the period): counted, kept until excluded by hand.
    assert (await _build(team, programme, dry_run="true"))["no_longer_meeting_rules"] == 1


async def test_another_organisation_sees_none_of_it(make_api, database) -> None:
    team = await make_api(organisation_id=await new_trust(database))
    await death(team, "2025-06-02T10:00")
    programme = (await _programme(team))["id"]
    await _build(team, programme)
    (case,) = (await _cases(team, programme)).values()
    stranger = await make_api(organisation_id=await new_trust(database))
    for path in (
        f"/v1/programmes/{programme}",
        f"/v1/programmes/{programme}/cases",
        f"/v1/programmes/{programme}/cases/{case['id']}",
        f"/v1/reports/programmes/{programme}",
    ):
        assert (await stranger.get(path)).status_code == 404, path
    assert (await stranger.post(f"/v1/programmes/{programme}/cohort")).status_code == 404
    listed = (await stranger.get("/v1/programmes")).json()["items"]
    assert programme not in {p["id"] for p in listed}
    index = (await stranger.get("/v1/reports/programmes")).json()["tables"][0]["rows"]
    assert programme not in {row["id"] for row in index}


async def test_the_programme_route_is_only_a_programmes(api) -> None:
    body = screening_body(screening={"routes_requested": ["programme"]})
    refused = await api.post("/v1/screenings", json=body, headers=idem())
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"].startswith("/screening/routes_requested")
    claim = await api.post(
        "/v1/referrals/claim",
        json={"route": "sjr", "programme_id": "6f1c3e0a-4a1b-4f7e-9a55-0c1d2e3f4a5b"},
    )
    assert claim.status_code == 422
    record = history_record(utc(2017, 6, 21, 10))
    record["referrals"] = [
        {"reference": "P1", "route": "programme", "reasons": ["programme"], "status": "ready",
         "created_at": "2017-06-22T10:00:00+00:00", "due_at": "2017-08-01T10:00:00+00:00"}
    ]  # fmt: skip
    job = await run(api, [record])
    assert (job["created"], job["refused"]) == (0, 1)
    assert {e["pointer"] for e in job["problems"][0]["errors"]} == {"/referrals/0/route"}


async def test_another_plan_while_recommendations_name_the_first_ones_actions(
    make_api, database
) -> None:
    """The recommendations' actions are the programme's plan's: the plan changes only once no
    recommendation names an action of the plan it replaces (else the report would count
    another plan's actions)."""
    team = await make_api(organisation_id=await new_trust(database))
    plans = []
    for title in ("First plan", "Second plan"):
        made = await team.post(
            "/v1/action-plans",
            json={"title": title, "organisations": ["RR8"], "sections": ["All"]},
            headers=idem(),
        )
        assert made.status_code == 201, made.text
        plans.append(made.json())
    action = await team.post(
        "/v1/actions",
        json={"plan_id": plans[0]["id"], "section_id": plans[0]["sections"][0]["id"],
              "reference": "1", "action": "Act.", "leads": ["AB"], "due_date": "2025-10-31"},
        headers=idem(),
    )  # fmt: skip
    assert action.status_code == 201, action.text
    programme = (await _programme(team, plan_id=plans[0]["id"]))["id"]
    current = await team.get(f"/v1/programmes/{programme}")
    recommended = await team.put(
        f"/v1/programmes/{programme}/recommendations",
        json={"recommendations": [{"key_area": "A", "key_area_title": "Area", "text": "Do.",
                                   "action_ids": [action.json()["id"]]}]},
        headers={"If-Match": current.headers["ETag"]},
    )  # fmt: skip
    assert recommended.status_code == 200, recommended.text
    moved = await _patch(team, programme, {"plan_id": plans[1]["id"]})
    assert moved.status_code == 409, moved.text
    assert moved.json()["errors"][0]["pointer"] == "/plan_id"
    assert (await team.get(f"/v1/programmes/{programme}")).json()["plan_id"] == plans[0]["id"]
    # Without actions named, the plan may change.
    cleared = await team.put(
        f"/v1/programmes/{programme}/recommendations",
        json={"recommendations": [{"key_area": "A", "key_area_title": "Area", "text": "Do."}]},
        headers={"If-Match": (await team.get(f"/v1/programmes/{programme}")).headers["ETag"]},
    )
    assert cleared.status_code == 200, cleared.text
    assert (await _patch(team, programme, {"plan_id": plans[1]["id"]})).status_code == 200
