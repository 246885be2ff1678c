"""Review programmes for tests: a trust of its own (so that no other test's deaths reach its
cohort), deaths with the particulars the cohort rules read, and the seed that makes the sample
choose the deaths a hand-worked test wants."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.db import Database
from app.models import Organisation
from app.programmes.sampling import sample_key, target
from tests.factories import idem, screening_body


async def new_trust(database: Database, name: str | None = None) -> uuid.UUID:
    async with database.transaction() as session:
        made = Organisation(
            id=uuid.uuid4(),
            name=name or f"Programme trust {uuid.uuid4().hex[:8]}",
            kind="trust",
            aliases=[],
            settings={},
        )
        session.add(made)
    return made.id


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def death(
    api: Any,
    died: str,
    *,
    place: str = "inpatient",
    age: int = 80,
    ward: str = "Ward 7",
    specialty: str = "General Medicine",
    discharged_days_before: int | None = None,
    unexpected: bool = False,
    screening: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A screened death (the 201 of POST /v1/screenings): `unexpected` refers it for a
    routine SJR; anything else in `screening` overrides the screening's fields."""
    died_at = at(died)
    born = (died_at - timedelta(days=int(age * 365.25) + 40)).date()
    body = screening_body(
        died_at=died_at,
        death={
            "place_of_death": place,
            "date_of_birth": born.isoformat(),
            "ward": ward,
            "specialty_at_death": specialty,
            "admitting_specialty": specialty,
        },
        screening={"death_expected": not unexpected, **(screening or {})},
    )
    if discharged_days_before is not None:
        discharged = died_at - timedelta(days=discharged_days_before)
        body["death"]["admitted_at"] = (discharged - timedelta(days=3)).isoformat()
        body["death"]["discharged_at"] = discharged.isoformat()
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    recorded: dict[str, Any] = response.json()
    return recorded


def case_number(recorded: dict[str, Any]) -> int:
    return int(recorded["death"]["case_reference"].rsplit("-", 1)[1])


def chosen(numbers: Iterable[int], seed: int, count: int) -> set[int]:
    """The case numbers the sample takes first: lowest key (then death id; keys rarely tie)."""
    return set(sorted(numbers, key=lambda n: sample_key(n, seed))[:count])


def seed_choosing(
    numbers: list[int], wanted: set[int], *, then: int | None = None, percent: int
) -> int:
    """A seed whose `percent` % sample of `numbers` is exactly `wanted`, and, with `then` (a
    death joining late), whose top-up after it joins takes `then` next."""
    for seed in range(200_000):
        if chosen(numbers, seed, target("percent", len(numbers), None, percent)) != wanted:
            continue
        if then is not None:
            grown = [*numbers, then]
            if chosen(grown, seed, target("percent", len(grown), None, percent)) != wanted | {then}:
                continue
        return seed
    raise AssertionError("no seed chooses those deaths")


def table(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    (found,) = [t for t in report["tables"] if t["key"] == key]
    rows: list[dict[str, Any]] = found["rows"]
    return rows


def sjr_body(
    overall: int,
    *,
    records: int = 4,
    avoidability: int = 6,
    reviewer: str = "Dr Programme",
    phases: dict[str, int] | None = None,
    problems: list[tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    rated = phases if phases is not None else {}
    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer, "role": "Consultant"},
        "phases": [
            *({"phase": p, "rating": r, "narrative": "Seen."} for p, r in rated.items()),
            {"phase": "overall", "rating": overall, "narrative": "Overall."},
        ],
        "quality_of_records": records,
        "avoidability": avoidability,
        "problems_in_care": [
            {"type": kind, "phase": phase, "harm": harm} for kind, phase, harm in problems or []
        ],
        "patient_safety_incident_suspected": False,
    }
