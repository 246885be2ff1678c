"""A programme's cohort rules as SQL on `deaths`: which deaths of the period each rule lets
through, in the order the dry run counts them (docs/programmes.md, "The cohort")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, cast, func, or_, true
from sqlalchemy.sql.elements import ColumnElement

from app.models import Death, Programme

# The rules in the order a death is tested against them: a death the dry run leaves out counts
# under the first rule it fails.
RULE_ORDER = ("place_of_death", "age", "excluded_ward", "excluded_specialty")


@dataclass(frozen=True)
class Rules:
    """The rules as a programme stores them (organisations as registry ids)."""

    places: tuple[str, ...] | None
    window_days: int | None
    age_min: int | None
    age_max: int | None
    wards: tuple[str, ...]
    specialties: tuple[str, ...]
    organisations: tuple[uuid.UUID, ...]

    @classmethod
    def of(cls, programme: Programme) -> Rules:
        stored = programme.rules
        places = stored.get("places_of_death")
        return cls(
            places=tuple(places) if places is not None else None,
            window_days=stored.get("discharged_within_days"),
            age_min=stored.get("age_min"),
            age_max=stored.get("age_max"),
            wards=tuple(ward.lower() for ward in stored.get("excluded_wards") or []),
            specialties=tuple(s.lower() for s in stored.get("excluded_specialties") or []),
            organisations=tuple(
                uuid.UUID(value)
                for value in stored.get("organisations") or [programme.organisation_id.hex]
            ),
        )


def _days_after_discharge(dialect: str) -> ColumnElement[Any]:
    """Days (of 24 hours) from discharge to death, as a float."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", Death.died_at - Death.discharged_at), Float) / 86400.0
    return cast(func.julianday(Death.died_at) - func.julianday(Death.discharged_at), Float)


def rule_terms(rules: Rules, dialect: str) -> dict[str, ColumnElement[bool]]:
    """Each rule the programme gives, by name (RULE_ORDER), as the condition a death must meet
    to pass it; never NULL, so that NOT of it is the deaths it leaves out."""
    terms: dict[str, ColumnElement[bool]] = {}
    if rules.places is not None:
        place: ColumnElement[bool] = Death.place_of_death.in_(rules.places)
        if rules.window_days is not None:
            days = _days_after_discharge(dialect)
            window = and_(
                Death.discharged_at.is_not(None), days >= 0.0, days <= float(rules.window_days)
            )
            place = or_(place, window)
        terms["place_of_death"] = place
    if rules.age_min is not None or rules.age_max is not None:
        ages = []
        if rules.age_min is not None:
            ages.append(Death.age_at_death >= rules.age_min)
        if rules.age_max is not None:
            ages.append(Death.age_at_death <= rules.age_max)
        terms["age"] = and_(*ages)
    if rules.wards:
        terms["excluded_ward"] = or_(
            Death.ward.is_(None), func.lower(Death.ward).not_in(rules.wards)
        )
    if rules.specialties:
        specialty = func.coalesce(Death.specialty_at_death, Death.admitting_specialty)
        terms["excluded_specialty"] = or_(
            specialty.is_(None), func.lower(specialty).not_in(rules.specialties)
        )
    return terms


def in_period(programme: Programme, rules: Rules) -> list[ColumnElement[bool]]:
    """The deaths the rules are tried on: those of the programme's organisations that died in
    its period (UK local date of death)."""
    return [
        Death.died_on >= programme.period_start,
        Death.died_on <= programme.period_end,
        Death.organisation_id.in_(rules.organisations),
    ]


def passes(rules: Rules, dialect: str) -> ColumnElement[bool]:
    """Every rule at once."""
    terms = list(rule_terms(rules, dialect).values())
    return and_(*terms) if terms else true()


def waterfall(terms: dict[str, ColumnElement[bool]]) -> list[tuple[str, Any, Any]]:
    """(rule, left out by it in order, failing it alone) as conditions to count."""
    counted = []
    before: list[ColumnElement[bool]] = []
    for name in RULE_ORDER:
        if name not in terms:
            continue
        failing = ~terms[name]
        counted.append((name, and_(*before, failing) if before else failing, failing))
        before.append(terms[name])
    return counted
