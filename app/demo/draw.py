"""One synthetic death and its screening, drawn from a generator seeded by (seed, index)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from app.demo.vocabulary import (
    ADULT_AGES,
    ADULT_SPECIALTIES,
    BEREAVED,
    COMMUNITY_SITE,
    EMERGENCY_MEDICINE,
    ETHNICITY,
    EXAMINERS,
    FAMILY,
    GIVEN,
    GOVERNANCE,
    MM_OVERRIDE,
    NEONATOLOGY,
    OBSTETRICS,
    PAEDIATRICS,
    SAFETY,
    SEASON,
    SITES,
    SJR_OVERRIDE,
    SOURCE_SYSTEM,
    STAFF,
    R,
    Specialty,
)
from app.kit.enums import AdmissionMethod, ReasonCode, Route
from app.kit.nhs_number import check_digit
from app.kit.time import LONDON, age_in_years, local_date
from app.referrals.rules import RuleConfig, RuleFacts, required_routes


def financial_year(moment: datetime) -> int:
    """The year a financial year (April to March, UK local time) starts in."""
    local = moment.astimezone(LONDON)
    return local.year if local.month >= 4 else local.year - 1


def demo_window(moment: datetime) -> tuple[datetime, datetime]:
    """Three financial years: from 1 April two years before the current one's to three days
    ago, so that every death has been screened (the ME screens within one to three days)."""
    start = datetime(financial_year(moment) - 2, 4, 1, tzinfo=LONDON)
    return start, moment - timedelta(days=3)


class Ledger:
    """What the deaths drawn so far gave each month (by UK local month of death), so that every
    month has its share of the rarer things a board page reports: the first adult death of a
    month, and one in every ``LD_EVERY`` after, is of a person with a learning disability
    (about the national share of hospital deaths; drawn independently, a small demo would
    leave months with none). Deaths are drawn in index order, so a death depends only on the
    ones before it: the same whatever the number asked for."""

    LD_EVERY = 40

    def __init__(self) -> None:
        self.deaths: Counter[tuple[int, int]] = Counter()
        self.learning_disability: Counter[tuple[int, int]] = Counter()

    def owes_learning_disability(self, month: tuple[int, int]) -> bool:
        return self.learning_disability[month] < 1 + self.deaths[month] // self.LD_EVERY

    def record(self, month: tuple[int, int], learning_disability: bool) -> None:
        self.deaths[month] += 1
        self.learning_disability[month] += learning_disability


def nhs_number(seed: int, index: int) -> str:
    """A 999-range test number, different for every index of a seed: digits 4-8 are a
    permutation of the index, the ninth is the first that gives a valid check digit."""
    offset = int.from_bytes(hashlib.sha256(f"nhs:{seed}".encode()).digest()[:4], "big")
    stem = f"999{(index * 7919 + offset) % 100_000:05d}"
    for ninth in range(10):
        digit = check_digit(stem + str(ninth))
        candidate = f"{stem}{ninth}{digit}"
        if digit is not None and len(set(candidate)) > 1:
            return candidate
    raise AssertionError("unreachable: some ninth digit always gives a check digit")


def _consultants(specialty: str) -> list[str]:
    base = sum(specialty.encode())
    return [
        f"Dr {chr(65 + (base + k * 7) % 26)} {FAMILY[(base + k * 5) % len(FAMILY)]}"
        for k in range(3)
    ]


def _at_local(day: date, minutes: int) -> datetime:
    """A wall-clock time in UK local time on a day (minutes after midnight)."""
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=LONDON)


class _Draw:
    """One synthetic death and its screening, from its own random generator."""

    def __init__(
        self, seed: int, index: int, window: tuple[datetime, datetime], ledger: Ledger
    ) -> None:
        # Reproducible synthetic data, not secrets.
        self.rng = random.Random(f"lfd-demo:{seed}:{index}")  # noqa: S311
        self.seed, self.index, self.window, self.ledger = seed, index, window, ledger
        self.at = window[1] + timedelta(days=3)  # the demo's "now"

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def pick(self, weighted: tuple[tuple[Any, float], ...]) -> Any:
        values, weights = zip(*weighted, strict=True)
        return self.rng.choices(values, weights)[0]

    def died_at(self) -> datetime:
        start, end = self.window
        span = (end - start).total_seconds()
        for _ in range(50):  # winter has more deaths: thin the summer months
            moment = start + timedelta(seconds=self.rng.random() * span)
            if self.rng.random() * max(SEASON) < SEASON[moment.astimezone(LONDON).month - 1]:
                return moment
        return moment

    def body(self, config: RuleConfig) -> dict[str, Any]:
        rng = self.rng
        died_at = self.died_at()
        died_on = local_date(died_at)
        kind = self.pick(
            (
                ("neonate", 4),
                ("child", 6),
                ("maternal", 2),
                ("ed", 60),
                ("after_discharge", 25),
                ("inpatient", 903),
            )
        )
        specialty: Specialty = {
            "neonate": NEONATOLOGY,
            "child": PAEDIATRICS,
            "maternal": OBSTETRICS,
            "ed": EMERGENCY_MEDICINE,
        }.get(kind) or self.pick(
            tuple(
                (s, s.weight)
                for s in ADULT_SPECIALTIES
                if kind == "inpatient" or s.name not in {"Critical Care", "Palliative Medicine"}
            )
        )
        rates = specialty  # a maternal death moved to critical care keeps obstetric rates
        sex = "female" if kind == "maternal" else self.pick((("male", 51), ("female", 49)))
        admitted_at: datetime | None = None
        discharged_at: datetime | None = None
        if kind == "neonate":
            admitted_at = died_at - timedelta(hours=rng.uniform(0.5, 26 * 24))
            born = local_date(admitted_at)
        else:
            if kind == "child":
                years = self.pick(((0, 40), (rng.randint(1, 4), 20), (rng.randint(5, 17), 40)))
                extra_days = rng.randint(30 if years == 0 else 0, 360)
            elif kind == "maternal":
                years, extra_days = rng.randint(19, 44), rng.randint(0, 364)
            else:
                low, high, _ = self.pick(tuple(((lo, hi, w), w) for lo, hi, w in ADULT_AGES))
                years, extra_days = rng.randint(low, high), rng.randint(0, 364)
                if years < specialty.min_age:
                    years = rng.randint(specialty.min_age, specialty.min_age + 25)
            born = died_on - timedelta(days=round(years * 365.25) + extra_days)
        age = age_in_years(born, died_on)

        place, site = "inpatient", self.pick(SITES)
        method = AdmissionMethod.emergency
        if kind == "ed":
            place, method = "emergency_department", AdmissionMethod.not_admitted
        elif kind in {"neonate", "maternal"}:
            method = AdmissionMethod.maternity
        elif self.chance(rates.elective):
            method = AdmissionMethod.elective
        elif self.chance(0.04):
            method = AdmissionMethod.transfer
        if kind == "after_discharge":
            place = self.pick((("home", 60), ("care_home", 40)))
            discharged_at = died_at - timedelta(hours=rng.uniform(20, 29 * 24))
            admitted_at = discharged_at - timedelta(hours=rng.lognormvariate(4.3, 0.8))
        elif kind == "inpatient" and specialty.name == "Care of the Elderly" and self.chance(0.12):
            place, site = "community_hospital", COMMUNITY_SITE
        elif kind == "inpatient" and specialty.name == "Palliative Medicine" and self.chance(0.3):
            place = "hospice"
        if kind not in {"ed", "neonate", "after_discharge"}:
            admitted_at = died_at - timedelta(hours=rng.lognormvariate(4.9, 1.0) + 1)
            if admitted_at.astimezone(LONDON).date() < born:
                admitted_at = _at_local(born, 12 * 60)
        admitting = rng.choice(specialty.admitted_by) if specialty.admitted_by else specialty.name
        if kind == "maternal" and self.chance(0.5):
            specialty = next(s for s in ADULT_SPECIALTIES if s.name == "Critical Care")
            admitting = OBSTETRICS.name
        cause = rng.choice(rates.causes)

        adult = age >= 18
        month = (died_on.year, died_on.month)
        learning_disability = adult and self.ledger.owes_learning_disability(month)
        self.ledger.record(month, learning_disability)
        autism = adult and self.chance(0.25 if learning_disability else 0.004)
        smi = adult and self.chance(0.03)
        expected = not self.chance(rates.unexpected)
        coroner = self.chance(rates.coroner if expected else min(1.0, rates.coroner * 2.5))
        unknown_identity = kind == "ed" and self.chance(0.03)
        coroner_reason = None
        if unknown_identity:
            coroner, coroner_reason = True, R.identity_unknown
        elif coroner:
            coroner_reason = rng.choice(rates.coroner_reasons)
        worry = 2.5 if not expected else 1.0
        bereaved = rng.choice(BEREAVED) if self.chance(0.04 * worry) else None
        staff = rng.choice(STAFF) if self.chance(0.015 * worry) else None
        governance = rng.choice(GOVERNANCE) if self.chance(0.02 * worry) else None
        safety = rng.choice(SAFETY) if self.chance(0.006 * worry) else None

        screened_on = died_on + timedelta(days=rng.randint(1, 3))
        screened_at = min(_at_local(screened_on, rng.randint(510, 1050)), self.at)
        mccd = None
        if not coroner:
            mccd = min(screened_at + timedelta(minutes=rng.randint(30, 360)), self.at)
        unascertained = coroner_reason in {R.cause_unknown, R.identity_unknown}

        given = rng.choice(GIVEN["female" if sex == "female" else "male"])
        death: dict[str, Any] = {
            "source_system": SOURCE_SYSTEM,
            "source_reference": f"DEMO-{self.seed}-{self.index:06d}",
            "nhs_number": None if unknown_identity else nhs_number(self.seed, self.index),
            "nhs_number_status": "03" if unknown_identity else self.pick((("01", 95), ("02", 5))),
            "local_patient_id": f"SYN{self.index:07d}",
            "given_name": None if unknown_identity else ("Baby" if kind == "neonate" else given),
            "family_name": None if unknown_identity else rng.choice(FAMILY),
            "date_of_birth": born,
            "sex": sex,
            "postcode": None
            if unknown_identity or self.chance(0.02)
            else f"ZZ{rng.randint(1, 9)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
            "ethnicity": self.pick(ETHNICITY),
            "died_at": died_at,
            "place_of_death": place,
            "site": site,
            "ward": None
            if kind == "after_discharge"
            else rng.choice(
                ("Rehabilitation Ward",) if place == "community_hospital" else specialty.wards
            ),
            "admitting_specialty": admitting,
            "specialty_at_death": specialty.name,
            "diagnosis_group": cause[3],
            "consultant": rng.choice(_consultants(specialty.name)),
            "admission_method": method.value,
            "admitted_at": admitted_at,
            "discharged_at": discharged_at,
            "learning_disability": learning_disability,
            "autism": autism,
            "serious_mental_illness": smi,
            "pregnant_or_recently_pregnant": kind == "maternal",
        }
        examiner, gmc = rng.choice(EXAMINERS)
        screening: dict[str, Any] = {
            "examiner": {"name": examiner, "gmc_number": gmc},
            "screened_at": screened_at,
            "records_reviewed": self.chance(0.99),
            "qap_discussed": self.chance(0.97),
            "bereaved_contacted": not unknown_identity and self.chance(0.93),
            "bereaved_concerns": bereaved,
            "staff_concerns": staff,
            "cause_of_death": {}
            if unascertained
            else {"part_1a": cause[0], "part_1b": cause[1], "part_2": cause[2]},
            "mccd_issued_at": mccd,
            "coroner_notified": coroner,
            "coroner_reason": coroner_reason.value if coroner_reason else None,
            "clinical_governance_concern": governance,
            "death_expected": expected,
            "patient_safety_concern": safety,
            "routes_requested": ["complaint"] if bereaved and self.chance(0.25) else [],
            "overrides": [],
        }
        screening["overrides"] = self.overrides(facts_of(death, screening), config, screened_at)
        return {"death": death, "screening": screening}

    def overrides(
        self, facts: RuleFacts, config: RuleConfig, screened_at: datetime
    ) -> list[dict[str, Any]]:
        """A few required routes the ME declines, always with a reason, and only where the
        rules (as configured) really require them; recorded with the screening."""
        required = required_routes(facts, config)
        declined: list[dict[str, Any]] = []
        if required.get(Route.sjr) == [ReasonCode.elective_admission] and self.chance(0.35):
            declined.append({"route": Route.sjr.value, "reason": SJR_OVERRIDE})
        if required.get(Route.mm) == [ReasonCode.specialty_mm] and self.chance(0.08):
            declined.append({"route": Route.mm.value, "reason": MM_OVERRIDE})
        return [{**override, "recorded_at": screened_at} for override in declined]


def facts_of(death: dict[str, Any], screening: dict[str, Any]) -> RuleFacts:
    """What the referral rules look at, from a drawn death and its screening (as live intake
    takes them, app.referrals.service: the learning sample keyed by the death's source)."""
    born: date = death["date_of_birth"]
    died_on = local_date(death["died_at"])
    return RuleFacts(
        age_years=age_in_years(born, died_on),
        age_days=(died_on - born).days,
        learning_disability=death["learning_disability"],
        autism=death["autism"],
        serious_mental_illness=death["serious_mental_illness"],
        pregnant_or_recently_pregnant=death["pregnant_or_recently_pregnant"],
        admission_method=AdmissionMethod(death["admission_method"]),
        specialties=(death["admitting_specialty"], death["specialty_at_death"]),
        diagnosis_group=death["diagnosis_group"],
        bereaved_concern=screening["bereaved_concerns"] is not None,
        staff_concern=screening["staff_concerns"] is not None,
        me_concern=screening["clinical_governance_concern"] is not None,
        death_expected=screening["death_expected"],
        coroner_notified=screening["coroner_notified"],
        patient_safety_concern=screening["patient_safety_concern"] is not None,
        sample_key=f"{death['source_system']}\x1f{death['source_reference']}",
    )


def synthetic_death(
    seed: int, index: int, window: tuple[datetime, datetime], config: RuleConfig, ledger: Ledger
) -> dict[str, Any]:
    """Death number ``index`` of ``seed`` and its screening (the ``death`` and ``screening`` of
    a history record), drawn after the deaths before it (``ledger``)."""
    return _Draw(seed, index, window, ledger).body(config)
