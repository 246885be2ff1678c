"""The referral rules of DESIGN.md section 4 as a pure function: every row a screening can
trigger, its boundaries, the deterministic learning sample, and properties over all inputs."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.kit.enums import AdmissionMethod, ReasonCode, Route
from app.referrals.rules import (
    RuleConfig,
    RuleFacts,
    in_learning_sample,
    required_routes,
    with_learning_sample,
)

R = Route
C = ReasonCode

CONFIG = RuleConfig.build(
    mortality_alert_specialties=["Cardiology"],
    mortality_alert_diagnosis_groups=["Sepsis"],
    mm_specialties=["General Surgery", "Obstetrics"],
)

# An expected death of an 80-year-old emergency admission with no flags: nothing to refer.
QUIET = RuleFacts(
    age_years=80,
    age_days=80 * 365 + 20,
    learning_disability=False,
    autism=False,
    serious_mental_illness=False,
    pregnant_or_recently_pregnant=False,
    admission_method=AdmissionMethod.emergency,
    specialties=("General Medicine",),
    diagnosis_group=None,
    bereaved_concern=False,
    staff_concern=False,
    me_concern=False,
    death_expected=True,
    coroner_notified=False,
    patient_safety_concern=False,
    sample_key="test-me-office\x1fME-quiet",
)


def facts(**changes: object) -> RuleFacts:
    return dataclasses.replace(QUIET, **changes)  # type: ignore[arg-type]


def aged(years: int, days: int | None = None, **changes: object) -> RuleFacts:
    return facts(
        age_years=years, age_days=days if days is not None else years * 365 + 100, **changes
    )


def routes(found: dict[Route, list[ReasonCode]]) -> dict[str, list[str]]:
    """As a user reads them: route -> reason codes, as plain strings."""
    return {route.value: [code.value for code in codes] for route, codes in found.items()}


# --- each row of the table -----------------------------------------------------------------


def test_a_quiet_death_needs_nothing() -> None:
    assert required_routes(QUIET, CONFIG) == {}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bereaved_concern": True}, {"sjr": ["bereaved_concern"]}),
        ({"staff_concern": True}, {"sjr": ["staff_concern"]}),
        ({"me_concern": True}, {"sjr": ["me_concern"]}),
        ({"serious_mental_illness": True}, {"sjr": ["serious_mental_illness"]}),
        ({"admission_method": AdmissionMethod.elective}, {"sjr": ["elective_admission"]}),
        ({"death_expected": False}, {"sjr": ["unexpected_death"]}),
        (
            {"pregnant_or_recently_pregnant": True},
            {"mnsi": ["maternal_death"], "sjr": ["maternal_death"]},
        ),
        ({"coroner_notified": True}, {"coroner": ["coroner_referral"]}),
        ({"patient_safety_concern": True}, {"psii": ["patient_safety_incident"]}),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else str(value),
)
def test_each_screening_row_refers_its_route(
    changes: dict[str, object], expected: dict[str, list[str]]
) -> None:
    assert routes(required_routes(facts(**changes), CONFIG)) == expected


@pytest.mark.parametrize(
    "method",
    [
        AdmissionMethod.emergency,
        AdmissionMethod.maternity,
        AdmissionMethod.transfer,
        AdmissionMethod.not_admitted,
    ],
)
def test_only_an_elective_admission_is_a_reason(method: AdmissionMethod) -> None:
    assert required_routes(facts(admission_method=method), CONFIG) == {}


def test_learning_disability_is_leder_from_4_and_sjr_from_18() -> None:
    # LeDeR's remit is people with a learning disability aged 4 and over (issue 15): a child
    # of 4-17 goes to LeDeR as well as to child death review; the SJR is for adults.
    at_3 = required_routes(aged(3, learning_disability=True), CONFIG)
    at_4 = required_routes(aged(4, learning_disability=True), CONFIG)
    at_17 = required_routes(aged(17, learning_disability=True), CONFIG)
    at_18 = required_routes(aged(18, learning_disability=True), CONFIG)
    assert routes(at_3) == {"cdr": ["child_death"]}
    assert routes(at_4) == {"leder": ["learning_disability"], "cdr": ["child_death"]}
    assert routes(at_17) == {"leder": ["learning_disability"], "cdr": ["child_death"]}
    assert routes(at_18) == {"leder": ["learning_disability"], "sjr": ["learning_disability"]}


def test_autism_is_leder_from_18_not_at_17() -> None:
    assert routes(required_routes(aged(17, autism=True), CONFIG)) == {"cdr": ["child_death"]}
    assert routes(required_routes(aged(18, autism=True), CONFIG)) == {"leder": ["autism"]}


def test_learning_disability_and_autism_share_one_leder_referral() -> None:
    both = required_routes(aged(40, learning_disability=True, autism=True), CONFIG)
    assert routes(both) == {
        "leder": ["learning_disability", "autism"],
        "sjr": ["learning_disability"],
    }


def test_a_child_death_is_cdr_under_18_only() -> None:
    assert routes(required_routes(aged(17), CONFIG)) == {"cdr": ["child_death"]}
    assert routes(required_routes(aged(18), CONFIG)) == {}
    assert routes(required_routes(aged(0, 400), CONFIG)) == {"cdr": ["child_death"]}


def test_a_perinatal_death_is_within_the_first_28_days() -> None:
    day_27 = required_routes(aged(0, 27), CONFIG)
    day_28 = required_routes(aged(0, 28), CONFIG)
    day_0 = required_routes(aged(0, 0), CONFIG)
    assert routes(day_27) == {
        "cdr": ["child_death", "perinatal_death"],
        "pmrt": ["perinatal_death"],
    }
    assert routes(day_0) == routes(day_27)
    # Day 28 is no longer perinatal, but still a child's death.
    assert routes(day_28) == {"cdr": ["child_death"]}


@pytest.mark.parametrize("written", ["Cardiology", "cardiology", "CARDIOLOGY", "  Cardiology "])
def test_a_mortality_alert_specialty_is_matched_whatever_the_case_and_spacing(
    written: str,
) -> None:
    assert routes(required_routes(facts(specialties=(written,)), CONFIG)) == {
        "sjr": ["mortality_alert"]
    }


@pytest.mark.parametrize("written", ["Cardio", "Paediatric Cardiology", "Card iology", ""])
def test_a_mortality_alert_needs_the_whole_name(written: str) -> None:
    assert required_routes(facts(specialties=(written,)), CONFIG) == {}


def test_a_mortality_alert_applies_to_either_specialty() -> None:
    for pair in [("Cardiology", "General Medicine"), ("General Medicine", "Cardiology")]:
        assert routes(required_routes(facts(specialties=pair), CONFIG)) == {
            "sjr": ["mortality_alert"]
        }


@pytest.mark.parametrize("written", ["Sepsis", "sepsis", " SEPSIS  ", "sEpSiS"])
def test_a_mortality_alert_diagnosis_group_is_matched(written: str) -> None:
    assert routes(required_routes(facts(diagnosis_group=written), CONFIG)) == {
        "sjr": ["mortality_alert"]
    }


def test_a_diagnosis_group_is_not_a_specialty_and_vice_versa() -> None:
    assert required_routes(facts(diagnosis_group="Cardiology"), CONFIG) == {}
    assert required_routes(facts(specialties=("Sepsis",)), CONFIG) == {}
    assert required_routes(facts(diagnosis_group="Pneumonia"), CONFIG) == {}


def test_one_mortality_alert_reason_however_many_matches() -> None:
    found = required_routes(
        facts(specialties=("Cardiology", "cardiology"), diagnosis_group="Sepsis"), CONFIG
    )
    assert routes(found) == {"sjr": ["mortality_alert"]}


@pytest.mark.parametrize(
    "specialties",
    [
        ("General Surgery",),
        ("general  surgery",),
        ("Obstetrics", "Obstetrics"),
        ("General Medicine", "OBSTETRICS"),
        ("General Surgery", "Obstetrics"),
    ],
)
def test_an_mm_specialty_refers_to_mm_once(specialties: tuple[str, ...]) -> None:
    assert routes(required_routes(facts(specialties=specialties), CONFIG)) == {
        "mm": ["specialty_mm"]
    }


def test_the_configured_lists_are_what_counts() -> None:
    """Configuration, not code: another trust's lists give other answers, and the list entries
    are folded too."""
    other = RuleConfig.build(
        mortality_alert_specialties=["  respiratory MEDICINE "],
        mortality_alert_diagnosis_groups=["Pneumonia"],
        mm_specialties=["cardiology"],
    )
    assert routes(required_routes(facts(specialties=("Cardiology",)), other)) == {
        "mm": ["specialty_mm"]
    }
    assert routes(required_routes(facts(specialties=("Respiratory Medicine",)), other)) == {
        "sjr": ["mortality_alert"]
    }
    assert routes(required_routes(facts(diagnosis_group="pneumonia"), other)) == {
        "sjr": ["mortality_alert"]
    }
    assert required_routes(facts(diagnosis_group="Sepsis"), other) == {}
    assert required_routes(facts(specialties=("Cardiology",)), RuleConfig.build()) == {}


def test_several_rules_for_one_route_merge_in_table_order_without_repeats() -> None:
    everything = facts(
        age_years=40,
        age_days=40 * 365,
        # Given in reverse of the table, to show that the table decides the order.
        patient_safety_concern=True,
        coroner_notified=True,
        pregnant_or_recently_pregnant=True,
        specialties=("Obstetrics", "Cardiology"),
        diagnosis_group="Sepsis",
        death_expected=False,
        admission_method=AdmissionMethod.elective,
        serious_mental_illness=True,
        autism=True,
        learning_disability=True,
        me_concern=True,
        staff_concern=True,
        bereaved_concern=True,
    )
    assert routes(required_routes(everything, CONFIG)) == {
        "sjr": [
            "bereaved_concern",
            "staff_concern",
            "me_concern",
            "learning_disability",
            "serious_mental_illness",
            "elective_admission",
            "unexpected_death",
            "mortality_alert",
            "maternal_death",
        ],
        "leder": ["learning_disability", "autism"],
        "mm": ["specialty_mm"],
        "mnsi": ["maternal_death"],
        "coroner": ["coroner_referral"],
        "psii": ["patient_safety_incident"],
    }


def test_a_newborn_with_every_flag_gets_cdr_with_both_reasons_in_order() -> None:
    found = required_routes(
        aged(0, 3, learning_disability=True, autism=True, death_expected=False), CONFIG
    )
    assert routes(found) == {
        "sjr": ["unexpected_death"],
        "cdr": ["child_death", "perinatal_death"],
        "pmrt": ["perinatal_death"],
    }


# --- properties over every input ------------------------------------------------------------

# Each row of DESIGN.md section 4 that a screening can trigger, in the table's order, written
# here independently of app/referrals/rules.py. A specialty is given as (canonical name, as
# written), so the test knows what matches without folding strings the way the code does.
Rule = tuple[Callable[["Case"], bool], tuple[Route, ...], ReasonCode]


@dataclasses.dataclass(frozen=True)
class Case:
    facts: RuleFacts
    config: RuleConfig
    specialties: frozenset[str]  # canonical names
    diagnosis_group: str | None  # canonical name
    alert_specialties: frozenset[str]
    alert_groups: frozenset[str]
    mm_specialties: frozenset[str]


TABLE: list[Rule] = [
    (lambda c: c.facts.bereaved_concern, (R.sjr,), C.bereaved_concern),
    (lambda c: c.facts.staff_concern, (R.sjr,), C.staff_concern),
    (lambda c: c.facts.me_concern, (R.sjr,), C.me_concern),
    (
        lambda c: c.facts.learning_disability and c.facts.age_years >= 4,
        (R.leder,),
        C.learning_disability,
    ),
    (
        lambda c: c.facts.learning_disability and c.facts.age_years >= 18,
        (R.sjr,),
        C.learning_disability,
    ),
    (lambda c: c.facts.autism and c.facts.age_years >= 18, (R.leder,), C.autism),
    (lambda c: c.facts.serious_mental_illness, (R.sjr,), C.serious_mental_illness),
    (
        lambda c: c.facts.admission_method == AdmissionMethod.elective,
        (R.sjr,),
        C.elective_admission,
    ),
    (lambda c: not c.facts.death_expected, (R.sjr,), C.unexpected_death),
    (
        lambda c: (
            bool(c.specialties & c.alert_specialties)
            or (c.diagnosis_group is not None and c.diagnosis_group in c.alert_groups)
        ),
        (R.sjr,),
        C.mortality_alert,
    ),
    (lambda c: bool(c.specialties & c.mm_specialties), (R.mm,), C.specialty_mm),
    (lambda c: c.facts.age_years < 18, (R.cdr,), C.child_death),
    (lambda c: c.facts.age_days < 28, (R.pmrt, R.cdr), C.perinatal_death),
    (lambda c: c.facts.pregnant_or_recently_pregnant, (R.mnsi, R.sjr), C.maternal_death),
    (lambda c: c.facts.coroner_notified, (R.coroner,), C.coroner_referral),
    (lambda c: c.facts.patient_safety_concern, (R.psii,), C.patient_safety_incident),
]
SCREENING_ROUTES = {R.sjr, R.mm, R.leder, R.cdr, R.pmrt, R.mnsi, R.psii, R.coroner}
SPECIALTIES = ["Cardiology", "General Surgery", "Obstetrics", "General Medicine", "Care Of Elderly"]
GROUPS = ["Sepsis", "Pneumonia", "Acute Myocardial Infarction", "Stroke"]


def expected_routes(case: Case) -> dict[Route, list[ReasonCode]]:
    out: dict[Route, list[ReasonCode]] = {}
    for applies, targets, reason in TABLE:
        if applies(case):
            for route in targets:
                out.setdefault(route, [])
                if reason not in out[route]:
                    out[route].append(reason)
    return out


@st.composite
def written(draw: st.DrawFn, canonical: str) -> str:
    """The canonical name as a sender might type it: any letter case, extra spaces."""
    words = [
        "".join(draw(st.sampled_from([ch.lower(), ch.upper()])) for ch in word)
        for word in canonical.split()
    ]
    gaps = [draw(st.sampled_from([" ", "  ", "\t"])) for _ in words[1:]]
    text = words[0] + "".join(gap + word for gap, word in zip(gaps, words[1:], strict=True))
    return draw(st.sampled_from(["", " ", "  "])) + text + draw(st.sampled_from(["", " "]))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    age_days = draw(
        st.one_of(
            st.integers(0, 40),
            st.integers(17 * 365, 19 * 366),
            st.integers(0, 110 * 366),
        )
    )
    age_years = age_days * 10_000 // 3_652_425  # completed years, near enough for the rules
    specialty_names = draw(st.lists(st.sampled_from(SPECIALTIES), max_size=2))
    group = draw(st.none() | st.sampled_from(GROUPS))
    alert_specialties = frozenset(draw(st.sets(st.sampled_from(SPECIALTIES), max_size=2)))
    alert_groups = frozenset(draw(st.sets(st.sampled_from(GROUPS), max_size=2)))
    mm = frozenset(draw(st.sets(st.sampled_from(SPECIALTIES), max_size=3)))
    config = RuleConfig.build(
        [draw(written(name)) for name in alert_specialties],
        [draw(written(name)) for name in alert_groups],
        [draw(written(name)) for name in mm],
        draw(st.floats(0, 100)),
    )
    the_facts = RuleFacts(
        age_years=age_years,
        age_days=age_days,
        learning_disability=draw(st.booleans()),
        autism=draw(st.booleans()),
        serious_mental_illness=draw(st.booleans()),
        pregnant_or_recently_pregnant=draw(st.booleans()),
        admission_method=draw(st.sampled_from(AdmissionMethod)),
        specialties=tuple(draw(written(name)) for name in specialty_names),
        diagnosis_group=None if group is None else draw(written(group)),
        bereaved_concern=draw(st.booleans()),
        staff_concern=draw(st.booleans()),
        me_concern=draw(st.booleans()),
        death_expected=draw(st.booleans()),
        coroner_notified=draw(st.booleans()),
        patient_safety_concern=draw(st.booleans()),
        sample_key=draw(st.text(max_size=40)),
    )
    return Case(
        the_facts,
        config,
        frozenset(specialty_names),
        group,
        alert_specialties,
        alert_groups,
        mm,
    )


@settings(max_examples=200)
@given(cases())
def test_the_rules_are_exactly_the_table(case: Case) -> None:
    assert required_routes(case.facts, case.config) == expected_routes(case)


@settings(max_examples=100)
@given(cases())
def test_every_route_has_a_reason_and_only_the_listed_routes_appear(case: Case) -> None:
    found = required_routes(case.facts, case.config)
    assert set(found) <= SCREENING_ROUTES
    for route, reasons in found.items():
        assert isinstance(route, Route)
        assert reasons, f"{route} has no reason"
        assert len(set(reasons)) == len(reasons)
        assert all(isinstance(reason, ReasonCode) for reason in reasons)
        # The reasons that only a review or the ME's request can give never come from the rules.
        assert not {C.second_stage, C.more_likely_than_not_avoidable, C.me_requested} & set(reasons)
        assert C.learning_sample not in reasons


@given(cases(), cases())
def test_the_answer_depends_only_on_the_inputs(case: Case, other: Case) -> None:
    first = required_routes(case.facts, case.config)
    # Another evaluation in between, and a caller that scribbles on what it was given, change
    # nothing: no hidden state, no shared lists.
    required_routes(other.facts, other.config)
    for reasons in first.values():
        reasons.append(C.me_requested)
    again = required_routes(copy.deepcopy(case.facts), copy.deepcopy(case.config))
    assert again == expected_routes(case)
    assert with_learning_sample(again, [], case.facts, case.config) == with_learning_sample(
        required_routes(case.facts, case.config), [], case.facts, case.config
    )


# --- the learning sample ---------------------------------------------------------------------


@given(st.text(max_size=60))
def test_percent_0_never_samples_and_100_always_does(key: str) -> None:
    assert not in_learning_sample(key, 0)
    assert in_learning_sample(key, 100)


@given(st.text(max_size=60), st.floats(0, 100), st.lists(st.text(max_size=20), max_size=5))
def test_the_same_key_always_gets_the_same_answer(
    key: str, percent: float, others: list[str]
) -> None:
    first = in_learning_sample(key, percent)
    for other in others:  # no state carried from one death to the next
        in_learning_sample(other, percent)
    assert in_learning_sample("".join(list(key)), percent) == first


@given(st.text(max_size=60), st.floats(0, 100), st.floats(0, 100))
def test_raising_the_percentage_keeps_every_death_already_sampled(
    key: str, low: float, high: float
) -> None:
    """A trust that raises its sample from 5 % to 10 % adds deaths; none drop out."""
    low, high = sorted((low, high))
    if in_learning_sample(key, low):
        assert in_learning_sample(key, high)


def test_the_answer_is_the_same_in_another_process() -> None:
    """Deterministic across restarts and workers too (Python's own str hash is not: it is
    salted per process)."""
    keys = [f"test-me-office\x1fME-{n:05d}" for n in range(400)]
    here = [in_learning_sample(key, 50) for key in keys]
    script = (
        "import sys\n"
        "from app.referrals.rules import in_learning_sample\n"
        "keys = [f'test-me-office\\x1fME-{n:05d}' for n in range(400)]\n"
        "sys.stdout.write(''.join('1' if in_learning_sample(k, 50) else '0' for k in keys))\n"
    )
    root = Path(__file__).resolve().parents[1]
    for seed in ("1", "2"):
        there = subprocess.run(
            [sys.executable, "-c", script],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert there == "".join("1" if sampled else "0" for sampled in here)
    assert 0 < sum(here) < len(keys)  # 50 % splits them: the comparison above means something


SAMPLE_SIZE = 10_000


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([0.5, 1, 2.5, 5, 10, 12.5, 25, 50, 75, 90, 99]) | st.floats(0.5, 99.5),
    st.text(max_size=20),
)
def test_the_sampled_share_is_close_to_the_configured_percent(percent: float, prefix: str) -> None:
    """Over 10,000 keys the share sampled is a binomial proportion with standard deviation
    sqrt(p(1-p)/n), at most 0.5 percentage points. The tolerance is five standard deviations
    (plus 0.01 points for the hash's 1-in-10,000 buckets): a fair hash fails it less than once
    in a million examples, while a rule off by any real margin (a per-mille or fraction slip,
    a bias towards some keys) fails it every time. Deterministic keys make any failure
    reproducible."""
    keys = [f"{prefix}\x1fME-{n}" for n in range(SAMPLE_SIZE)]
    share = sum(in_learning_sample(key, percent) for key in keys) / SAMPLE_SIZE * 100
    p = percent / 100
    tolerance = 5 * math.sqrt(p * (1 - p) / SAMPLE_SIZE) * 100 + 0.01
    assert abs(share - percent) <= tolerance, (share, percent, tolerance)


def test_with_learning_sample_only_samples_deaths_nothing_else_refers() -> None:
    always = dataclasses.replace(CONFIG, learning_sample_percent=100)
    never = dataclasses.replace(CONFIG, learning_sample_percent=0)
    assert routes(with_learning_sample({}, [], QUIET, always)) == {"sjr": ["learning_sample"]}
    assert with_learning_sample({}, [], QUIET, never) == {}
    # Something else refers it: the sample adds nothing.
    coroner = {R.coroner: [C.coroner_referral]}
    assert with_learning_sample(coroner, [], QUIET, always) == coroner
    # The ME asked for a route: not "otherwise unreferred" either.
    assert with_learning_sample({}, [R.mm], QUIET, always) == {}


@given(cases(), st.lists(st.sampled_from(Route), max_size=3, unique=True))
def test_the_sample_is_an_sjr_exactly_for_unreferred_unrequested_sampled_deaths(
    case: Case, requested: list[Route]
) -> None:
    required = required_routes(case.facts, case.config)
    result = with_learning_sample(dict(required), requested, case.facts, case.config)
    sampled = in_learning_sample(case.facts.sample_key, case.config.learning_sample_percent)
    if not required and not requested and sampled:
        assert result == {R.sjr: [C.learning_sample]}
    else:
        assert result == required
