"""A hand-worked review programme (issue 17), from its cohort rules to its report, every figure
worked out by hand below and asserted exactly.

The trust (of its own, so no other test's deaths reach the cohort) audits June 2025: deaths in
hospital or in a community hospital, or at home within 30 days of discharge; adults only; not
on the mental health unit, not under psychiatry; 60% of the cohort reviewed (rounded up), in a
seeded order; four questions of its own.

    A 2 Jun  inpatient, 80                         in; chosen; programme review, overall 2
    B 3 Jun  community hospital, 70                in; not chosen (a finding of its own)
    C 4 Jun  home, discharged 10 days before       in (the discharge window); not chosen
    D 5 Jun  home, discharged 40 days before       out: place of death
    E 6 Jun  care home                             out: place of death
    F 7 Jun  inpatient, 12                         out: age
    G 8 Jun  inpatient, "mental health unit"       out: ward (any case)
    H 9 Jun  inpatient, psychiatry                 out: specialty
    I 10 Jun inpatient, 15, mental health unit     out: age (the first rule it fails; fails two)
    J 1 Jul  inpatient                             not in the period
    K 11 Jun inpatient, 90, unexpected             in; chosen; counts its routine SJR (overall 4)
    L 12 Jun inpatient, 60                         in; chosen; programme review, overall 5
    M 20 Jun inpatient, 75, recorded after the build: joins late, the sample tops up to it

Cohort 5 at the build: 60% is 3 (A, K, L, by the seed). M joins: 6, 60% is 3.6, so 4; M is next.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook

from app.auth.scopes import Scope
from app.programmes.cohort import refresh_open_programmes
from tests.factories import idem
from tests.kit.programmes import (
    case_number,
    chosen,
    death,
    new_trust,
    seed_choosing,
    sjr_body,
    table,
)

PERIOD = {"period_start": "2025-06-01", "period_end": "2025-06-30"}
RULES = {
    "places_of_death": ["inpatient", "community_hospital"],
    "discharged_within_days": 30,
    "age_min": 18,
    "excluded_wards": ["Mental Health Unit"],
    "excluded_specialties": ["Psychiatry"],
}
QUESTIONS = [
    {"code": "admission_avoidable", "text": "Could the admission have been avoided?",
     "kind": "yes_no", "required": True},
    {"code": "dnacpr_sought", "text": "Was a DNACPR decision sought?", "kind": "yes_no"},
    {"code": "fast_track", "text": "Was fast-track discharge effective?", "kind": "scale"},
    {"code": "comments", "text": "Anything else?", "kind": "text"},
]  # fmt: skip


async def _deaths(api: Any) -> dict[str, dict[str, Any]]:
    made = {
        "A": await death(api, "2025-06-02T10:00"),
        "B": await death(api, "2025-06-03T10:00", place="community_hospital", age=70),
        "C": await death(api, "2025-06-04T10:00", place="home", discharged_days_before=10),
        "D": await death(api, "2025-06-05T10:00", place="home", discharged_days_before=40),
        "E": await death(api, "2025-06-06T10:00", place="care_home"),
        "F": await death(api, "2025-06-07T10:00", age=12),
        "G": await death(api, "2025-06-08T10:00", ward="mental health unit"),
        "H": await death(api, "2025-06-09T10:00", specialty="Psychiatry"),
        "I": await death(api, "2025-06-10T10:00", age=15, ward="Mental Health Unit"),
        "J": await death(api, "2025-07-01T10:00"),
        "K": await death(
            api,
            "2025-06-11T10:00",
            age=90,
            unexpected=True,
            screening={
                "bereaved_contacts": [
                    {
                        "contacted_at": "2025-06-12T09:00:00+00:00",
                        "contact": "Daughter",
                        "method": "phone",
                        "concerns": "Pain relief came late.",
                    }
                ]
            },
        ),
        "L": await death(api, "2025-06-12T10:00", age=60),
    }
    return made


async def _post(api: Any, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.post(path, json=body, headers=idem())
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _routine_sjr(api: Any, recorded: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    (referral,) = [r for r in recorded["referrals"] if r["route"] == "sjr"]
    return await _post(api, f"/v1/referrals/{referral['id']}/review", {"review": body})


async def _finding(api: Any, death_id: str, review_id: str | None, theme: str, kind: str) -> None:
    await _post(
        api,
        "/v1/findings",
        {
            "death_id": death_id,
            "review_id": review_id,
            "kind": kind,
            "theme_code": theme,
            "description": "As found.",
        },
    )


async def test_a_hand_worked_programme(api, make_api, database) -> None:
    trust = await new_trust(database)
    team = await make_api(organisation_id=trust)
    deaths = await _deaths(team)
    ids = {name: made["death"]["id"] for name, made in deaths.items()}
    cohort = [case_number(deaths[name]) for name in "ABCKL"]
    numbers = {name: case_number(deaths[name]) for name in deaths}
    # The seed that chooses A, K and L first, then M after it joins (M's case number is the
    # next the service gives: the deaths are numbered in the order they are recorded).
    m_number = max(numbers.values()) + 1
    seed = seed_choosing(
        cohort, {numbers["A"], numbers["K"], numbers["L"]}, then=m_number, percent=60
    )
    # K's routine SJR, submitted before the build: K will count it.
    k_review = await _routine_sjr(
        team, deaths["K"], sjr_body(4, records=4, avoidability=6, reviewer="Dr Routine")
    )

    created = await _post(
        team,
        "/v1/programmes",
        {
            "name": "Deaths in June 2025",
            "purpose": "A clinical quality audit of a month's deaths.",
            "owner": "Mortality Surveillance Group",
            **PERIOD,
            "cohort": RULES,
            "sampling": {"mode": "percent", "percent": 60, "seed": seed},
            "questions": QUESTIONS,
        },
    )
    programme = created["id"]
    assert created["status"] == "draft" and created["code"] == "deaths_in_june_2025"
    assert [q["code"] for q in created["questions"]] == [q["code"] for q in QUESTIONS]

    # The dry run counts by each rule and changes nothing.
    dry = await _post(team, f"/v1/programmes/{programme}/cohort?dry_run=true", {}, 200)
    assert dry["deaths_in_period"] == 11
    assert {r["rule"]: (r["excluded"], r["failing"]) for r in dry["rules"]} == {
        "place_of_death": (2, 2),
        "age": (2, 2),
        "excluded_ward": (1, 2),
        "excluded_specialty": (1, 1),
    }
    assert (dry["meeting_rules"], dry["already_in_cohort"], dry["added"]) == (5, 0, 5)
    assert (dry["sample_target"], dry["selected"], dry["linked"], dry["referred"]) == (3, 3, 1, 2)
    assert (await team.get(f"/v1/programmes/{programme}")).json()["status"] == "draft"

    built = await _post(team, f"/v1/programmes/{programme}/cohort", {}, 200)
    assert {k: built[k] for k in ("dry_run", "added", "selected", "linked", "referred")} == {
        "dry_run": False, "added": 5, "selected": 3, "linked": 1, "referred": 2,
    }  # fmt: skip
    again = await _post(team, f"/v1/programmes/{programme}/cohort", {}, 200)
    assert (again["already_in_cohort"], again["added"], again["referred"]) == (5, 0, 0)

    # Reproducible: the service chose exactly what the published formula chooses.
    cases = (await team.get(f"/v1/programmes/{programme}/cases")).json()["items"]
    picked = {c["death_id"] for c in cases if c["selected"]}
    expected = chosen(cohort, seed, 3)
    assert {numbers[n] for n in deaths if ids[n] in picked} == expected
    assert picked == {ids["A"], ids["K"], ids["L"]}
    by_death = {c["death_id"]: c for c in cases}
    assert by_death[ids["K"]]["linked"] and by_death[ids["K"]]["status"] == "reviewed"
    assert by_death[ids["B"]]["status"] == "not_selected"
    assert [c["sample_key"] for c in cases] == sorted(c["sample_key"] for c in cases)

    # A death recorded late joins on the background runner's pass, and the sample grows to it.
    deaths["M"] = await death(team, "2025-06-20T10:00", age=75)
    ids["M"] = deaths["M"]["death"]["id"]
    assert case_number(deaths["M"]) == m_number
    assert await refresh_open_programmes(database) >= 2
    cases = (await team.get(f"/v1/programmes/{programme}/cases")).json()["items"]
    late = next(c for c in cases if c["death_id"] == ids["M"])
    assert late["joined"] == "late"
    assert late["selected"] and m_number in chosen([*cohort, m_number], seed, 4)
    await _finish(team, programme, deaths, ids, k_review, make_api, trust)


async def _finish(team, programme, deaths, ids, k_review, make_api, trust) -> None:
    """The reviews, answers, second opinion, judgements, findings and plan; then the report."""
    queue = await team.post(
        "/v1/referrals/claim",
        json={"route": "programme", "programme_id": programme, "count": 10,
              "reviewer": "Dr Programme"},
    )  # fmt: skip
    assert queue.status_code == 200, queue.text
    leases = {item["death_id"]: item for item in queue.json()["items"]}
    assert set(leases) == {ids["A"], ids["L"], ids["M"]}
    cases = {
        c["death_id"]: c
        for c in (await team.get(f"/v1/programmes/{programme}/cases")).json()["items"]
    }

    def review_path(name: str) -> str:
        return f"/v1/programmes/{programme}/cases/{cases[ids[name]]['id']}/review"

    a_sjr = sjr_body(
        2,
        records=3,
        avoidability=4,
        phases={"admission_initial": 3},
        problems=[("monitoring", "ongoing", "probably"), ("medication", "ongoing", "no")],
    )
    # The required question must be answered to submit.
    missing = await team.post(
        review_path("A"), json={"lease_id": leases[ids["A"]]["lease_id"], "review": a_sjr}
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["errors"][0]["code"] == "required"
    a_posted = await _post(
        team,
        review_path("A"),
        {
            "lease_id": leases[ids["A"]]["lease_id"],
            "review": a_sjr,
            "answers": [
                {"question": "admission_avoidable", "answer": "no"},
                {"question": "dnacpr_sought", "answer": "yes"},
                {"question": "fast_track", "answer": 4},
                {"question": "comments", "answer": "Escalation was slow on the second night."},
            ],
            "relatives": {"sought": "yes", "view": "The family felt listened to."},
        },
    )
    assert a_posted["case"]["status"] == "reviewed"
    # Poor care raises the routine stage-2 SJR, as any SJR's does.
    assert [f["route"] for f in a_posted["review"]["follow_on_referrals"]] == ["sjr"]
    l_posted = await _post(
        team,
        review_path("L"),
        {
            "lease_id": leases[ids["L"]]["lease_id"],
            "review": sjr_body(5, records=5, avoidability=6,
                               phases={"admission_initial": 5, "end_of_life": 4}),
            "answers": [
                {"question": "admission_avoidable", "answer": "yes"},
                {"question": "dnacpr_sought", "answer": "no"},
                {"question": "fast_track", "answer": 3},
            ],
            "relatives": {"sought": "no"},
        },
    )  # fmt: skip
    # K counts its routine SJR: its answers are recorded on their own.
    k_case = cases[ids["K"]]
    refused = await team.post(
        f"/v1/programmes/{programme}/cases/{k_case['id']}/review",
        json={"review": sjr_body(4), "answers": []},
    )
    assert refused.status_code == 409, refused.text
    k_read = await team.get(f"/v1/programmes/{programme}/cases/{k_case['id']}")
    assert k_read.json()["relatives"]["contacts"][0]["concerns"] == "Pain relief came late."
    answered = await team.put(
        f"/v1/programmes/{programme}/cases/{k_case['id']}/answers",
        json={
            "answers": [
                {"question": "admission_avoidable", "answer": "not_applicable"},
                {"question": "dnacpr_sought", "answer": "yes"},
                {"question": "fast_track", "answer": 5},
            ],
            "relatives": {"sought": "not_applicable"},
        },
        headers={"If-Match": k_read.headers["ETag"]},
    )
    assert answered.status_code == 200, answered.text
    wrong = await team.put(
        f"/v1/programmes/{programme}/cases/{k_case['id']}/answers",
        json={"answers": [{"question": "fast_track", "answer": "yes"}]},
        headers={"If-Match": answered.headers["ETag"]},
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["code"] == "wrong_kind"

    # A second opinion on A, from a named colleague; never from A's first reviewer.
    a_case = cases[ids["A"]]["id"]
    same = await team.post(
        f"/v1/programmes/{programme}/cases/{a_case}/second-opinions",
        json={"requested_from": "dr programme", "reason": "Borderline."},
    )
    assert same.status_code == 422, same.text
    opinion = await _post(
        team,
        f"/v1/programmes/{programme}/cases/{a_case}/second-opinions",
        {"requested_from": "Dr Second", "reason": "Borderline poor care: a second view."},
    )
    assert opinion["number"] == 2
    nothing = await team.post(
        "/v1/referrals/claim", json={"route": "programme", "programme_id": programme}
    )
    assert nothing.json()["items"] == []  # assigned to Dr Second: no one else's claim takes it
    second = await team.post(
        "/v1/referrals/claim",
        json={"route": "programme", "programme_id": programme, "reviewer": "Dr Second"},
    )
    (second_lease,) = second.json()["items"]
    second_posted = await _post(
        team,
        review_path("A"),
        {
            "opinion": 2,
            "lease_id": second_lease["lease_id"],
            "review": sjr_body(3, reviewer="Dr Second", records=3, avoidability=4),
        },
    )
    assert [o["review"]["overall_rating"] for o in second_posted["case"]["opinions"]] == [2, 3]

    # The ME's referral decisions, judged.
    for name, judgement in (("A", "appropriate"), ("L", "possibly_missed")):
        judged = await team.put(
            f"/v1/screenings/{deaths[name]['id']}/referral-judgement",
            json={"judgement": judgement, "reason": "As judged."},
        )
        assert judged.status_code == 201, judged.text

    # Findings: the programme's reviews' and K's routine SJR's count; B's (not chosen) not.
    for code in ("prog_escalation", "prog_nutrition", "prog_family"):
        await api_theme(team, code)
    await _finding(team, ids["A"], a_posted["review"]["id"], "prog_escalation", "problem_in_care")
    await _finding(team, ids["A"], second_posted["review"]["id"], "prog_escalation", "concern")
    await _finding(team, ids["L"], l_posted["review"]["id"], "prog_escalation", "learning_point")
    await _finding(team, ids["K"], k_review["id"], "prog_nutrition", "good_practice")
    await _finding(team, ids["B"], None, "prog_family", "concern")

    await _plan(team, programme)
    report = (await team.get(f"/v1/reports/programmes/{programme}")).json()
    assert_report(report)

    # The same figures in every format: the shares as numbers in CSV and XLSX, the board page.
    path = f"/v1/reports/programmes/{programme}"
    csv = (await team.get(path, params={"format": "csv", "table": "shares"})).text
    assert csv.splitlines()[1] == "3,2,66.7,2,66.7,1,33.3"
    workbook = load_workbook(io.BytesIO((await team.get(path, params={"format": "xlsx"})).content))
    assert len(workbook.sheetnames) == len(report["tables"])
    shares = workbook[next(name for name in workbook.sheetnames if "three shares" in name)]
    assert [cell.value for cell in shares[3]] == [3, 2, 0.667, 2, 0.667, 1, 0.333]
    page = (await team.get(path, params={"format": "html"})).text
    assert "Review programme: Deaths in June 2025" in page and "<svg" in page
    commissioner = await make_api(Scope.reports_read, pseudonymised=True, organisation_id=trust)
    seen = (await commissioner.get(f"/v1/reports/programmes/{programme}")).json()
    assert {**seen, "generated_at": None} == {**report, "generated_at": None}


async def api_theme(team: Any, code: str) -> None:
    response = await team.post("/v1/themes", json={"code": code, "name": code.replace("_", " ")})
    assert response.status_code in (201, 409), response.text


async def _plan(team: Any, programme: str) -> None:
    plan = await _post(
        team,
        "/v1/action-plans",
        {"title": "June 2025 audit plan", "organisations": ["RR8"], "sections": ["All"]},
    )
    section = plan["sections"][0]["id"]
    actions = []
    for reference, status, due in (("1", 5, "2025-10-31"), ("2", 2, "2025-08-31"),
                                   ("3", 4, "2030-01-31")):  # fmt: skip
        actions.append(
            (
                await _post(
                    team,
                    "/v1/actions",
                    {
                        "plan_id": plan["id"],
                        "section_id": section,
                        "reference": reference,
                        "action": f"Action {reference}",
                        "leads": ["AB"],
                        "due_date": due,
                        "status": status,
                    },
                )
            )["id"]
        )
    current = await team.get(f"/v1/programmes/{programme}")
    patched = await team.patch(
        f"/v1/programmes/{programme}",
        json={"plan_id": plan["id"], "plan_approved_by": "Quality Committee",
              "plan_approved_on": "2025-09-10"},
        headers={"If-Match": current.headers["ETag"]},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    recommended = await team.put(
        f"/v1/programmes/{programme}/recommendations",
        json={
            "recommendations": [
                {"key_area": "A", "key_area_title": "Deterioration",
                 "text": "Escalate a NEWS2 of 5 within the hour.", "action_ids": actions[:2]},
                {"key_area": "A", "key_area_title": "Deterioration",
                 "text": "Audit escalation monthly.", "action_ids": [actions[2]]},
                {"key_area": "B", "key_area_title": "Communication",
                 "text": "Record the family's view in every review."},
            ]
        },
        headers={"If-Match": patched.headers["ETag"]},
    )  # fmt: skip
    assert recommended.status_code == 200, recommended.text
    assert [r["reference"] for r in recommended.json()["recommendations"]] == ["A1", "A2", "B1"]


def assert_report(report: dict[str, Any]) -> None:
    assert report["key"] == "programme" and report["period"]["start"] == "2025-06-01"
    definition = {row["item"]: row["value"] for row in table(report, "programme")}
    assert definition["Plan approved by"] == "Quality Committee"
    assert definition["Plan approved on"] == "2025-09-10"
    assert [(r["step"], r["deaths"]) for r in table(report, "selection")] == [
        ("Deaths in the period (of the programme's organisations)", 12),
        ("Left out by place of death (and the discharge window)", 2),
        ("Left out by age at death", 2),
        ("Left out: an excluded ward", 1),
        ("Left out: an excluded specialty", 1),
        ("Meeting the rules", 6),
        ("In the cohort", 6),
        ("Taken out of the cohort by hand", 0),
    ]
    assert table(report, "cohort") == [
        {"in_cohort": 6, "selected": 4, "selected_pct": 66.7, "reviewed": 3,
         "reviewed_pct": 75.0, "rated": 3, "rated_pct": 100.0, "linked": 1,
         "awaiting_review": 1, "not_reviewed": 0, "joined_late": 1, "excluded": 0}
    ]  # fmt: skip
    overall = {
        row["rating"]: (row["deaths"], row["deaths_pct"]) for row in table(report, "overall")
    }
    assert overall == {1: (0, 0.0), 2: (1, 33.3), 3: (0, 0.0), 4: (1, 33.3), 5: (1, 33.3)}
    assert table(report, "shares") == [
        {"rated": 3, "adequate_or_better": 2, "adequate_or_better_pct": 66.7,
         "good_or_excellent": 2, "good_or_excellent_pct": 66.7,
         "poor_or_very_poor": 1, "poor_or_very_poor_pct": 33.3}
    ]  # fmt: skip
    phases = {row["phase"]: row for row in table(report, "phases")}
    assert (phases["admission initial"]["rated"], phases["admission initial"]["rating_3"],
            phases["admission initial"]["rating_5"]) == (2, 1, 1)  # fmt: skip
    assert phases["admission initial"]["good_or_excellent_pct"] == 50.0
    assert (phases["end of life"]["rated"], phases["end of life"]["rating_4"]) == (1, 1)
    assert phases["ongoing"]["rated"] == 0
    bands = {row["age_band"]: row for row in table(report, "by_age_band")}
    assert (bands["under 65"]["rating_5"], bands["65-80"]["rating_2"],
            bands["over 80"]["rating_4"]) == (1, 1, 1)  # fmt: skip
    records = {row["records"]: row for row in table(report, "records_vs_care")}
    assert records["3 Adequate"]["care_2"] == 1
    assert records["4 Good"]["care_4"] == 1 and records["5 Excellent"]["care_5"] == 1
    assert records["All"]["total"] == 3
    avoidability = {
        r["score"]: (r["deaths"], r["deaths_pct"]) for r in table(report, "avoidability_scores")
    }
    assert avoidability[4] == (1, 33.3) and avoidability[6] == (2, 66.7)
    questions = {row["code"]: row for row in table(report, "questions")}
    q = questions["admission_avoidable"]
    assert (q["answered"], q["yes"], q["no"], q["not_applicable"], q["yes_pct"]) == (
        3,
        1,
        1,
        1,
        50.0,
    )
    q = questions["dnacpr_sought"]
    assert (q["answered"], q["yes"], q["no"], q["yes_pct"]) == (3, 2, 1, 66.7)
    q = questions["fast_track"]
    assert (q["answered"], q["scale_3"], q["scale_4"], q["scale_5"], q["scale_mean"]) == (
        3, 1, 1, 1, 4.0,
    )  # fmt: skip
    assert questions["comments"]["answered"] == 1 and questions["comments"]["yes"] is None
    problems = {row["problem_type"]: row for row in table(report, "problems")}
    assert (problems["monitoring"]["deaths"], problems["monitoring"]["harm_probably"]) == (1, 1)
    assert (problems["medication"]["problems"], problems["medication"]["harm_no"]) == (1, 1)
    assert problems["All types"]["problems"] == 2
    themes = {row["theme"]: row for row in table(report, "themes")}
    assert set(themes) == {"prog escalation", "prog nutrition"}
    escalation = themes["prog escalation"]
    assert (escalation["findings"], escalation["deaths"], escalation["problem_in_care"],
            escalation["concern"], escalation["learning_point"]) == (3, 2, 1, 1, 1)  # fmt: skip
    assert (themes["prog nutrition"]["findings"], themes["prog nutrition"]["good_practice"]) == (
        1,
        1,
    )
    judged = {
        r["judgement"]: (r["deaths"], r["deaths_pct"])
        for r in table(report, "me_referral_decisions")
    }
    assert judged == {
        "Appropriate": (1, 50.0),
        "Possibly missed": (1, 50.0),
        "Missed: should have been referred": (0, 0.0),
        "Judged": (2, None),
        "Not judged": (4, None),
    }
    assert table(report, "second_opinions") == [
        {"requested": 1, "given": 1, "same_rating": 0, "one_apart": 1, "further_apart": 0,
         "same_rating_pct": 0.0}
    ]  # fmt: skip
    assert table(report, "relatives") == [
        {"reviewed": 3, "contacted": 3, "concerns": 1, "recorded": 3, "sought": 1,
         "not_sought": 1, "not_applicable": 1, "sought_pct": 50.0}
    ]  # fmt: skip
    recommendations = {r["reference"]: r for r in table(report, "recommendations")}
    assert (recommendations["A1"]["actions"], recommendations["A1"]["complete"],
            recommendations["A1"]["overdue"], recommendations["A1"]["complete_pct"]) == (
        2, 1, 1, 50.0,
    )  # fmt: skip
    assert recommendations["B1"]["complete_pct"] is None
    (table_key,) = [t for t in report["tables"] if t["key"] == "recommendations"]
    assert "approved by Quality Committee on 2025-09-10" in table_key["note"]
