"""The referral rules end to end: what a medical examiner office sees when it posts a screening,
and what a reviewer's system then finds on the death."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.auth.scopes import Scope
from tests.factories import idem, record, screening_body

# DESIGN.md section 4's defaults, which the test settings keep.
DUE_DAYS = {"sjr": 56, "mm": 56, "leder": 7, "cdr": 7}
# A date of death well in the past, in British Summer Time (UTC+1).
SUMMER_DEATH = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


def born(died_on: date, years: int = 0, days: int = 0) -> str:
    """A date of birth ``years`` birthdays and then ``days`` days before ``died_on``."""
    birthday = died_on.replace(year=died_on.year - years)
    return (birthday - timedelta(days=days)).isoformat()


async def record_fresh(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Record the screening; its referrals were raised while the request ran."""
    before = datetime.now(UTC)
    recorded = await record(api, body)
    after = datetime.now(UTC)
    for referral in recorded["referrals"]:
        created = datetime.fromisoformat(referral["created_at"])
        assert before - timedelta(minutes=1) <= created <= after + timedelta(minutes=1)
    return recorded


def referred(recorded: dict[str, Any]) -> dict[str, list[str]]:
    return {r["route"]: r["reasons"] for r in recorded["referrals"]}


def required(recorded: dict[str, Any]) -> dict[str, tuple[list[str], str]]:
    return {r["route"]: (r["reasons"], r["outcome"]) for r in recorded["required_routes"]}


def check_referrals(recorded: dict[str, Any], settings: Any) -> None:
    """What every new referral must look like: waiting in the queue, stage 1 for an SJR and no
    stage otherwise, due the configured number of days after it was raised, with the
    configured priority."""
    for referral in recorded["referrals"]:
        route = referral["route"]
        assert referral["status"] == "ready"
        assert referral["death_id"] == recorded["death_id"]
        assert referral["stage"] == (1 if route == "sjr" else None)
        days = DUE_DAYS.get(route, settings.due_days[route])
        created = datetime.fromisoformat(referral["created_at"])
        due = datetime.fromisoformat(referral["due_at"])
        assert abs(due - (created + timedelta(days=days))) < timedelta(minutes=1), route
        assert referral["priority"] == settings.priorities[route]
        assert referral["overdue"] is False


ROWS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, list[str]]]] = [
    (
        "bereaved concern",
        {},
        {"bereaved_concerns": "The family feel the deterioration was missed."},
        {"sjr": ["bereaved_concern"]},
    ),
    (
        "staff concern",
        {},
        {"staff_concerns": "Night staff could not get a medical review."},
        {"sjr": ["staff_concern"]},
    ),
    (
        "ME concern",
        {},
        {"clinical_governance_concern": "Delay in antibiotics."},
        {"sjr": ["me_concern"]},
    ),
    (
        "learning disability",
        {"learning_disability": True},
        {},
        {"leder": ["learning_disability"], "sjr": ["learning_disability"]},
    ),
    ("autism", {"autism": True}, {}, {"leder": ["autism"]}),
    (
        "serious mental illness",
        {"serious_mental_illness": True},
        {},
        {"sjr": ["serious_mental_illness"]},
    ),
    ("elective admission", {"admission_method": "elective"}, {}, {"sjr": ["elective_admission"]}),
    ("unexpected death", {}, {"death_expected": False}, {"sjr": ["unexpected_death"]}),
    (
        "alert specialty at death",
        {"specialty_at_death": "Cardiology"},
        {},
        {"sjr": ["mortality_alert"]},
    ),
    (
        "alert admitting specialty, other case and spacing",
        {"admitting_specialty": "  CARDIOLOGY "},
        {},
        {"sjr": ["mortality_alert"]},
    ),
    ("alert diagnosis group", {"diagnosis_group": "sepsis"}, {}, {"sjr": ["mortality_alert"]}),
    ("M&M specialty", {"specialty_at_death": "General Surgery"}, {}, {"mm": ["specialty_mm"]}),
    (
        "M&M specialty, other case and spacing",
        {"admitting_specialty": "general   surgery"},
        {},
        {"mm": ["specialty_mm"]},
    ),
    (
        "maternal death",
        {
            "pregnant_or_recently_pregnant": True,
            "date_of_birth": "1994-03-02",
            "admission_method": "maternity",
            "specialty_at_death": "Obstetrics",
        },
        {},
        {"mnsi": ["maternal_death"], "sjr": ["maternal_death"], "mm": ["specialty_mm"]},
    ),
    (
        "coroner notified",
        {},
        {"coroner_notified": True, "coroner_reason": "medical_treatment_or_procedure"},
        {"coroner": ["coroner_referral"]},
    ),
    (
        "patient safety concern",
        {},
        {"patient_safety_concern": "Insulin given twice."},
        {"psii": ["patient_safety_incident"]},
    ),
]


@pytest.mark.parametrize(
    ("death", "screening", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
async def test_each_rule_raises_its_referrals(
    api, base_settings, death: dict[str, Any], screening: dict[str, Any], expected: dict[str, Any]
) -> None:
    recorded = await record_fresh(api, screening_body(death=death, screening=screening))
    assert referred(recorded) == expected
    assert required(recorded) == {
        route: (reasons, "referred") for route, reasons in expected.items()
    }
    check_referrals(recorded, base_settings)
    assert recorded["death"]["status"] == "under_review"

    # A reviewer's system sees the same on the death.
    detail = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    assert {r["route"]: r["reasons"] for r in detail["referrals"]} == expected
    assert detail["status"] == "under_review"


async def test_a_death_nothing_refers_gets_no_referral(api) -> None:
    recorded = await record_fresh(api, screening_body())
    assert recorded["referrals"] == []
    assert recorded["required_routes"] == []
    assert recorded["death"]["status"] == "screened"


async def test_a_referral_names_the_specialty_it_belongs_to(api) -> None:
    recorded = await record_fresh(
        api,
        screening_body(
            death={"admitting_specialty": "General Medicine", "specialty_at_death": "Cardiology"}
        ),
    )
    assert [(r["route"], r["specialty"]) for r in recorded["referrals"]] == [("sjr", "Cardiology")]


async def test_several_rules_for_one_route_make_one_referral_with_reasons_in_table_order(
    api, base_settings
) -> None:
    recorded = await record_fresh(
        api,
        screening_body(
            death={
                "admission_method": "elective",
                "serious_mental_illness": True,
                "diagnosis_group": "Sepsis",
                "specialty_at_death": "General Surgery",
            },
            screening={
                "death_expected": False,
                "staff_concerns": "Escalation was slow.",
                "bereaved_concerns": "Nobody told us he was dying.",
                "coroner_notified": True,
                "coroner_reason": "medical_treatment_or_procedure",
            },
        ),
    )
    assert referred(recorded) == {
        "sjr": [
            "bereaved_concern",
            "staff_concern",
            "serious_mental_illness",
            "elective_admission",
            "unexpected_death",
            "mortality_alert",
        ],
        "mm": ["specialty_mm"],
        "coroner": ["coroner_referral"],
    }
    assert len(recorded["referrals"]) == 3
    check_referrals(recorded, base_settings)


async def test_configured_due_days_set_the_due_date(app_factory, make_api) -> None:
    _, http = await app_factory(due_days={"sjr": 28, "leder": 3})
    client = await make_api(Scope.admin, client=http)
    recorded = await record_fresh(client, screening_body(death={"learning_disability": True}))
    for referral in recorded["referrals"]:
        created = datetime.fromisoformat(referral["created_at"])
        due = datetime.fromisoformat(referral["due_at"])
        days = {"sjr": 28, "leder": 3}[referral["route"]]
        assert abs(due - (created + timedelta(days=days))) < timedelta(minutes=1)


# --- ages, from the date of birth and the date of death in UK local time ----------------------


@pytest.mark.parametrize(
    ("flags", "at_17", "at_18"),
    [
        (
            # LeDeR from 4 (issue 15): at 17 LeDeR as well as child death review.
            {"learning_disability": True},
            {"leder": ["learning_disability"], "cdr": ["child_death"]},
            {"leder": ["learning_disability"], "sjr": ["learning_disability"]},
        ),
        ({"autism": True}, {"cdr": ["child_death"]}, {"leder": ["autism"]}),
        ({}, {"cdr": ["child_death"]}, {}),
    ],
    ids=["learning disability", "autism", "no flags"],
)
async def test_the_18th_birthday_is_the_boundary(
    api, base_settings, flags: dict[str, Any], at_17: dict[str, Any], at_18: dict[str, Any]
) -> None:
    died_on = SUMMER_DEATH.date()
    # Eighteen on the very day of death: an adult.
    birthday = await record_fresh(
        api,
        screening_body(
            died_at=SUMMER_DEATH, death={**flags, "date_of_birth": born(died_on, years=18)}
        ),
    )
    # Eighteen tomorrow: still a child.
    day_before = await record_fresh(
        api,
        screening_body(
            died_at=SUMMER_DEATH,
            death={**flags, "date_of_birth": born(died_on, years=18, days=-1)},
        ),
    )
    assert birthday["death"]["age_at_death"] == 18
    assert day_before["death"]["age_at_death"] == 17
    assert referred(birthday) == at_18
    assert referred(day_before) == at_17
    check_referrals(birthday, base_settings)
    check_referrals(day_before, base_settings)


async def test_a_death_at_half_past_midnight_bst_belongs_to_that_local_date(api) -> None:
    # 23:30 UTC on 15 June is 00:30 BST on 16 June, the 18th birthday: no child death review.
    after_midnight = await record_fresh(
        api,
        screening_body(
            died_at=datetime(2026, 6, 15, 23, 30, tzinfo=UTC),
            death={"date_of_birth": "2008-06-16"},
        ),
    )
    assert after_midnight["death"]["died_on"] == "2026-06-16"
    assert after_midnight["death"]["age_at_death"] == 18
    assert referred(after_midnight) == {}

    # 22:59 UTC is 23:59 BST on 15 June: the day before the birthday, still 17.
    before_midnight = await record_fresh(
        api,
        screening_body(
            died_at=datetime(2026, 6, 15, 22, 59, tzinfo=UTC),
            death={"date_of_birth": "2008-06-16"},
        ),
    )
    assert before_midnight["death"]["died_on"] == "2026-06-15"
    assert before_midnight["death"]["age_at_death"] == 17
    assert referred(before_midnight) == {"cdr": ["child_death"]}


async def test_in_winter_uk_local_time_is_utc(api) -> None:
    # 23:30 UTC on 15 January is 23:30 GMT on 15 January: the day before the 18th birthday.
    recorded = await record_fresh(
        api,
        screening_body(
            died_at=datetime(2026, 1, 15, 23, 30, tzinfo=UTC),
            death={"date_of_birth": "2008-01-16"},
        ),
    )
    assert recorded["death"]["died_on"] == "2026-01-15"
    assert referred(recorded) == {"cdr": ["child_death"]}


async def test_the_time_of_death_may_be_sent_with_its_local_offset(api) -> None:
    body = screening_body(
        died_at=datetime(2026, 6, 15, 23, 30, tzinfo=UTC), death={"date_of_birth": "2008-06-16"}
    )
    body["death"]["died_at"] = "2026-06-16T00:30:00+01:00"
    recorded = await record_fresh(api, body)
    assert recorded["death"]["died_on"] == "2026-06-16"
    assert referred(recorded) == {}


async def test_a_perinatal_death_is_within_28_days_of_birth(api, base_settings) -> None:
    died_on = SUMMER_DEATH.date()
    day_27 = await record_fresh(
        api,
        screening_body(died_at=SUMMER_DEATH, death={"date_of_birth": born(died_on, days=27)}),
    )
    day_28 = await record_fresh(
        api,
        screening_body(died_at=SUMMER_DEATH, death={"date_of_birth": born(died_on, days=28)}),
    )
    assert referred(day_27) == {
        "pmrt": ["perinatal_death"],
        "cdr": ["child_death", "perinatal_death"],
    }
    assert required(day_27) == {
        "pmrt": (["perinatal_death"], "referred"),
        "cdr": (["child_death", "perinatal_death"], "referred"),
    }
    # Day 28 is past the perinatal period but still a child's death.
    assert referred(day_28) == {"cdr": ["child_death"]}
    check_referrals(day_27, base_settings)
    check_referrals(day_28, base_settings)


# --- the ME's overrides and requests -----------------------------------------------------------


async def test_a_declined_required_route_is_kept_with_its_reason_and_not_referred(api) -> None:
    reason = "Discussed at the weekly ME meeting: the death followed a known, documented course."
    recorded = await record_fresh(
        api,
        screening_body(
            screening={
                "death_expected": False,
                "coroner_notified": True,
                "coroner_reason": "cause_unknown",
                "overrides": [{"route": "sjr", "reason": reason}],
            }
        ),
    )
    assert referred(recorded) == {"coroner": ["coroner_referral"]}
    assert required(recorded) == {
        "sjr": (["unexpected_death"], "overridden"),
        "coroner": (["coroner_referral"], "referred"),
    }
    [override] = recorded["overrides"]
    assert override["route"] == "sjr"
    assert override["reason_codes"] == ["unexpected_death"]
    assert override["override_reason"] == reason
    assert override["recorded_at"]

    detail = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    assert [r["route"] for r in detail["referrals"]] == ["coroner"]
    [seen] = detail["screening"]["overrides"]
    assert (seen["route"], seen["reason_codes"], seen["override_reason"]) == (
        "sjr",
        ["unexpected_death"],
        reason,
    )

    screening = (await api.get(f"/v1/screenings/{recorded['id']}")).json()
    assert [o["route"] for o in screening["overrides"]] == ["sjr"]


async def test_declining_every_required_route_leaves_the_death_screened(api) -> None:
    recorded = await record_fresh(
        api,
        screening_body(
            death={"learning_disability": True},
            screening={
                "overrides": [
                    {"route": "leder", "reason": "Already notified by the community team."},
                    {"route": "sjr", "reason": "Reviewed jointly with LeDeR."},
                ]
            },
        ),
    )
    assert recorded["referrals"] == []
    assert required(recorded) == {
        "leder": (["learning_disability"], "overridden"),
        "sjr": (["learning_disability"], "overridden"),
    }
    assert recorded["death"]["status"] == "screened"
    assert {o["route"] for o in recorded["overrides"]} == {"leder", "sjr"}


async def assert_no_death(api: Any, body: dict[str, Any]) -> None:
    found = await api.get(
        "/v1/deaths",
        params={
            "source_system": body["death"]["source_system"],
            "source_reference": body["death"]["source_reference"],
        },
    )
    assert found.status_code == 200
    assert found.json()["items"] == []


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ([{"route": "mm", "reason": "Not needed."}], "/screening/overrides/0/route"),
        (
            [
                {"route": "sjr", "reason": "Reviewed elsewhere."},
                {"route": "leder", "reason": "Not needed."},
            ],
            "/screening/overrides/1/route",
        ),
    ],
    ids=["only override", "second override"],
)
async def test_overriding_a_route_the_rules_do_not_require_is_refused_and_writes_nothing(
    api, overrides: list[dict[str, str]], pointer: str
) -> None:
    body = screening_body(screening={"death_expected": False, "overrides": overrides})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
    await assert_no_death(api, body)


async def test_an_override_needs_a_written_reason(api) -> None:
    body = screening_body(
        screening={"death_expected": False, "overrides": [{"route": "sjr", "reason": ""}]}
    )
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/screening/overrides/0/reason"]
    await assert_no_death(api, body)


async def test_routes_the_me_requests_are_referred_as_me_requested(api, base_settings) -> None:
    recorded = await record_fresh(
        api, screening_body(screening={"routes_requested": ["mm", "system_review"]})
    )
    assert referred(recorded) == {"mm": ["me_requested"], "system_review": ["me_requested"]}
    assert recorded["routes_requested"] == ["mm", "system_review"]
    # Requested, not required: nothing for the compliance report to count as overridden.
    assert recorded["required_routes"] == []
    check_referrals(recorded, base_settings)


async def test_a_requested_route_that_is_also_required_is_one_referral(api) -> None:
    recorded = await record_fresh(
        api,
        screening_body(screening={"death_expected": False, "routes_requested": ["sjr"]}),
    )
    assert referred(recorded) == {"sjr": ["unexpected_death", "me_requested"]}
    assert [r["stage"] for r in recorded["referrals"]] == [1]


# --- the learning sample --------------------------------------------------------------------


async def test_at_100_percent_an_otherwise_unreferred_death_is_sampled(
    app_factory, make_api, base_settings
) -> None:
    _, http = await app_factory(learning_sample_percent=100)
    client = await make_api(Scope.admin, client=http)
    recorded = await record_fresh(client, screening_body())
    assert referred(recorded) == {"sjr": ["learning_sample"]}
    assert required(recorded) == {"sjr": (["learning_sample"], "referred")}
    check_referrals(recorded, base_settings)


async def test_the_sample_only_takes_deaths_nothing_else_refers(app_factory, make_api) -> None:
    _, http = await app_factory(learning_sample_percent=100)
    client = await make_api(Scope.admin, client=http)
    coroner = await record_fresh(
        client,
        screening_body(screening={"coroner_notified": True, "coroner_reason": "self_harm"}),
    )
    assert referred(coroner) == {"coroner": ["coroner_referral"]}
    requested = await record_fresh(client, screening_body(screening={"routes_requested": ["mm"]}))
    assert referred(requested) == {"mm": ["me_requested"]}


async def test_at_0_percent_nothing_is_sampled(app_factory, make_api) -> None:
    _, http = await app_factory(learning_sample_percent=0)
    client = await make_api(Scope.admin, client=http)
    for _ in range(5):
        recorded = await record_fresh(client, screening_body())
        assert recorded["referrals"] == []
        assert recorded["death"]["status"] == "screened"
