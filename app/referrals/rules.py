"""The national referral criteria (DESIGN.md section 4) as a pure function of the death and its
screening. No database, no clock: the same facts always give the same routes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from app.kit.enums import AdmissionMethod, ReasonCode, Route

ADULT_AGE = 18
# LeDeR's remit: people with a learning disability aged 4 and over, and autistic adults.
LEDER_LEARNING_DISABILITY_MIN_AGE = 4
PERINATAL_DAYS = 28  # a neonatal death: within the first 28 days of life (days 0-27)


@dataclass(frozen=True)
class RuleFacts:
    """What the rules look at, taken from a death and its screening."""

    age_years: int
    age_days: int
    learning_disability: bool
    autism: bool
    serious_mental_illness: bool
    pregnant_or_recently_pregnant: bool
    admission_method: AdmissionMethod
    specialties: tuple[str, ...]
    diagnosis_group: str | None
    bereaved_concern: bool
    staff_concern: bool
    me_concern: bool
    death_expected: bool
    coroner_notified: bool
    patient_safety_concern: bool
    sample_key: str  # stable for a death: its source system and reference


@dataclass(frozen=True)
class RuleConfig:
    mortality_alert_specialties: frozenset[str]
    mortality_alert_diagnosis_groups: frozenset[str]
    mm_specialties: frozenset[str]
    learning_sample_percent: float

    @classmethod
    def build(
        cls,
        mortality_alert_specialties: Iterable[str] = (),
        mortality_alert_diagnosis_groups: Iterable[str] = (),
        mm_specialties: Iterable[str] = (),
        learning_sample_percent: float = 0.0,
    ) -> RuleConfig:
        return cls(
            frozenset(_fold(s) for s in mortality_alert_specialties),
            frozenset(_fold(s) for s in mortality_alert_diagnosis_groups),
            frozenset(_fold(s) for s in mm_specialties),
            learning_sample_percent,
        )


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())


def in_learning_sample(sample_key: str, percent: float) -> bool:
    """Deterministic: a death is in or out of the sample by a hash of its key, so that a retry,
    an amendment or a re-run never changes the answer, and about ``percent`` % are in."""
    if percent <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(sample_key.encode()).digest()[:8], "big") % 10_000
    return bucket < round(percent * 100)


def required_routes(facts: RuleFacts, config: RuleConfig) -> dict[Route, list[ReasonCode]]:
    """Every route the rules require, each with the reason codes that require it, in the
    order of the table in DESIGN.md section 4."""
    found: dict[Route, list[ReasonCode]] = {}

    def add(reason: ReasonCode, *routes: Route) -> None:
        for route in routes:
            reasons = found.setdefault(route, [])
            if reason not in reasons:
                reasons.append(reason)

    adult = facts.age_years >= ADULT_AGE
    specialties = {_fold(s) for s in facts.specialties if s}
    if facts.bereaved_concern:
        add(ReasonCode.bereaved_concern, Route.sjr)
    if facts.staff_concern:
        add(ReasonCode.staff_concern, Route.sjr)
    if facts.me_concern:
        add(ReasonCode.me_concern, Route.sjr)
    if facts.learning_disability and facts.age_years >= LEDER_LEARNING_DISABILITY_MIN_AGE:
        # A child of 4-17 is notified to LeDeR as well as referred to child death review.
        add(ReasonCode.learning_disability, Route.leder)
        if adult:
            add(ReasonCode.learning_disability, Route.sjr)
    if facts.autism and adult:
        add(ReasonCode.autism, Route.leder)
    if facts.serious_mental_illness:
        add(ReasonCode.serious_mental_illness, Route.sjr)
    if facts.admission_method is AdmissionMethod.elective:
        add(ReasonCode.elective_admission, Route.sjr)
    if not facts.death_expected:
        add(ReasonCode.unexpected_death, Route.sjr)
    if specialties & config.mortality_alert_specialties or (
        facts.diagnosis_group
        and _fold(facts.diagnosis_group) in config.mortality_alert_diagnosis_groups
    ):
        add(ReasonCode.mortality_alert, Route.sjr)
    if specialties & config.mm_specialties:
        add(ReasonCode.specialty_mm, Route.mm)
    if not adult:
        add(ReasonCode.child_death, Route.cdr)
    if facts.age_days < PERINATAL_DAYS:
        add(ReasonCode.perinatal_death, Route.pmrt, Route.cdr)
    if facts.pregnant_or_recently_pregnant:
        add(ReasonCode.maternal_death, Route.mnsi, Route.sjr)
    if facts.coroner_notified:
        add(ReasonCode.coroner_referral, Route.coroner)
    if facts.patient_safety_concern:
        add(ReasonCode.patient_safety_incident, Route.psii)
    return found


def with_learning_sample(
    required: dict[Route, list[ReasonCode]],
    requested: Iterable[Route],
    facts: RuleFacts,
    config: RuleConfig,
) -> dict[Route, list[ReasonCode]]:
    """Add the learning sample: an SJR for a sampled death that nothing else refers."""
    if required or list(requested):
        return required
    if in_learning_sample(facts.sample_key, config.learning_sample_percent):
        return {Route.sjr: [ReasonCode.learning_sample]}
    return required


SCREENING_REASONS = frozenset(ReasonCode) - {
    ReasonCode.second_stage,
    ReasonCode.more_likely_than_not_avoidable,
    # A review programme's referrals (issue 17) are the programme's: an amended screening
    # never cancels them.
    ReasonCode.programme,
    ReasonCode.second_opinion,
}
