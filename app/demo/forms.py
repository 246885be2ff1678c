"""The demo's review forms, exactly the ``review`` bodies of ``POST /v1/referrals/{id}/review``
(an SJR, an M&M outcome, a LeDeR notification, an outside body's review), and the findings a
review gives, under themes whose mix shifts from year to year (app.demo.wording)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from app.demo.wording import (
    GOOD_PRACTICE,
    MM_LEARNING,
    PHASE_WORDS,
    PRESENTERS,
    REVIEWERS,
    SUMMARIES,
    THEME_MIX,
    THEME_WORDS,
)

# Avoidability 1 (definitely avoidable) to 6 (definitely not): national SJR returns put about
# 3% at 1-3. Care ratings 1 (very poor) to 5 (excellent).
AVOIDABILITY = ((1, 0.3), (2, 0.7), (3, 2.5), (4, 6.5), (5, 22.0), (6, 68.0))
RATING = ((1, 1.5), (2, 6.0), (3, 22.0), (4, 45.0), (5, 25.5))
AVOIDABLE = 3  # 1-3: more likely than not due to problems in care
# Each theme's problem in care: its SJR problem type and the phase it arises in.
THEME_PROBLEM = {
    "deteriorating_patient": ("monitoring", "ongoing"),
    "early_warning_scores": ("monitoring", "ongoing"),
    "sepsis": ("infection", "admission_initial"),
    "medication": ("medication", "ongoing"),
    "fluid_balance_and_hydration": ("medication", "ongoing"),
    "end_of_life_care": ("treatment", "end_of_life"),
    "recognition_of_end_of_life": ("assessment", "end_of_life"),
    "dnacpr_decisions": ("other", "end_of_life"),
    "advance_care_planning": ("other", "pre_admission"),
    "communication_with_patients_and_families": ("other", "ongoing"),
    "discharge": ("other", "discharge"),
    "handover_and_transfer": ("other", "ongoing"),
    "delays_in_access": ("other", "admission_initial"),
    "frailty": ("assessment", "ongoing"),
    "clinical_reasoning": ("assessment", "ongoing"),
    "quality_of_records": ("other", "ongoing"),
    "nutrition_and_weight": ("treatment", "ongoing"),
}
GOOD_WORDS = {
    "palliative_care": THEME_WORDS["palliative_care"],
    "end_of_life_care": (PHASE_WORDS["end_of_life"][2],),
    "communication_with_patients_and_families": (
        "The family were kept informed at every change, and thanked the ward for it.",
    ),
}


def pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def _band(rating: int) -> int:
    """0 poor (1-2), 1 adequate (3), 2 good (4-5): which words describe a rating."""
    return 0 if rating <= 2 else 1 if rating == 3 else 2


class Findings:
    """The findings of one death's reviews, each with its own reference and time."""

    def __init__(self, rng: random.Random, year: int, at: datetime) -> None:
        self.rng, self.year, self.at = rng, year, at
        self.items: list[dict[str, Any]] = []

    def theme(self) -> str:
        code: str = pick(self.rng, THEME_MIX[self.year])
        return code

    def add(
        self,
        referral: str,
        kind: str,
        theme: str,
        phase: str | None,
        description: str,
        recorded_by: str,
        after: datetime,
    ) -> None:
        """A finding recorded one to three weeks after its review: none yet if that is after
        the demo's today (it is recorded later, as it would be)."""
        recorded_at = after + timedelta(days=self.rng.uniform(1, 21))
        if recorded_at > self.at:
            return
        self.items.append(
            {
                "reference": f"f-{len(self.items) + 1}",
                "referral": referral,
                "kind": kind,
                "theme": {"code": theme},
                "phase": phase,
                "description": description,
                "recorded_by": recorded_by,
                "recorded_at": recorded_at,
            }
        )


def sjr_form(
    rng: random.Random,
    phases: list[str],
    earlier: int | None,
    findings: Findings,
    reference: str,
    submitted_at: datetime,
) -> dict[str, Any]:
    """A complete SJR. A second stage (``earlier``: the first stage's avoidability) confirms
    an avoidable first stage about half the time, and otherwise finds the death less likely
    avoidable; its problems and findings are its own."""
    if earlier is None:
        avoidability: int = pick(rng, AVOIDABILITY)
    elif earlier <= AVOIDABLE and rng.random() < 0.55:
        avoidability = rng.randint(max(1, earlier - 1), AVOIDABLE)
    else:
        avoidability = rng.randint(4, 5)
    if avoidability <= AVOIDABLE:
        overall = pick(rng, ((1, 25.0), (2, 50.0), (3, 25.0)))
    else:
        overall = pick(rng, RATING)
    ratings = []
    for phase in [*phases, "overall"]:
        spread = 0 if phase == "overall" else rng.choice((-1, 0, 0, 1))
        rating = min(5, max(1, overall + spread))
        words = PHASE_WORDS.get(phase)
        rated: dict[str, Any] = {"phase": phase, "rating": rating}
        if words is not None:
            rated["narrative"] = words[_band(rating)]
        ratings.append(rated)
    count = 0
    if avoidability <= AVOIDABLE:
        count = rng.randint(2, 3)
    elif overall <= 2 or (overall == 3 and rng.random() < 0.35):
        count = 1
    problems = []
    for _ in range(count):
        theme = findings.theme()
        kind, phase = THEME_PROBLEM[theme]
        harm = (
            rng.choice(("yes", "probably"))
            if avoidability <= AVOIDABLE
            else rng.choice(("no", "probably"))
        )
        description = rng.choice(THEME_WORDS[theme])
        problems.append({"type": kind, "phase": phase, "harm": harm, "description": description})
        findings.add(
            reference,
            "problem_in_care",
            theme,
            phase,
            description,
            "Mortality surveillance group",
            submitted_at,
        )
    if overall >= 4 and rng.random() < 0.15:
        theme = pick(rng, GOOD_PRACTICE)
        findings.add(
            reference,
            "good_practice",
            theme,
            "end_of_life",
            rng.choice(GOOD_WORDS[theme]),
            "Mortality surveillance group",
            submitted_at,
        )
    name, role = rng.choice(REVIEWERS)
    return {
        "instrument": "sjr",
        "reviewer": {"name": name, "role": role},
        "phases": ratings,
        "quality_of_records": pick(rng, RATING),
        "avoidability": avoidability,
        "problems_in_care": problems,
        "patient_safety_incident_suspected": avoidability <= 2 and rng.random() < 0.5,
        "summary": SUMMARIES[_band(overall)],
    }


def sjr_draft(rng: random.Random, phases: list[str]) -> dict[str, Any]:
    """An SJR begun and not finished: the first phase rated, nothing else."""
    name, role = rng.choice(REVIEWERS)
    rating: int = pick(rng, RATING)
    return {
        "instrument": "sjr",
        "reviewer": {"name": name, "role": role},
        "phases": [{"phase": phases[0], "rating": rating}],
    }


def mm_form(
    rng: random.Random,
    meeting_on: Any,
    specialty: str,
    findings: Findings,
    reference: str,
    submitted_at: datetime,
) -> dict[str, Any]:
    outcome: str = pick(
        rng,
        (
            ("no_further_action", 55.0),
            ("learning_identified", 33.0),
            ("escalate_sjr", 8.0),
            ("escalate_psii", 4.0),
        ),
    )
    learning = []
    if outcome == "learning_identified":
        learning = rng.sample(MM_LEARNING, rng.randint(1, 2))
        findings.add(
            reference,
            "learning_point",
            findings.theme(),
            None,
            learning[0],
            f"{specialty} M&M meeting",
            submitted_at,
        )
    form: dict[str, Any] = {
        "instrument": "mm",
        "meeting_date": meeting_on,
        "specialty": specialty,
        "presenter": rng.choice(PRESENTERS),
        "outcome": outcome,
        "learning_points": learning,
    }
    if rng.random() < 0.5:
        form["avoidability"] = (
            rng.randint(3, 4) if outcome.startswith("escalate") else pick(rng, AVOIDABILITY[3:])
        )
    return form
