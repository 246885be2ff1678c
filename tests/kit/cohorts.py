"""Hand-built cohorts for the report tests: deaths put in through the API (screenings, reviews,
amendments) at a site of their own, so that no other test's deaths reach a report filtered by
that site. A test writes its cohort down as data (`died(...)` with the `Post`, `Amend` and
`Expect` steps of each death) and `build()` puts it in, in that order."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import idem, screening_body

FY = "2025-26"  # the financial year the hand-built cohorts die in


def at(text: str) -> datetime:
    """A moment in UTC, from ISO text without an offset."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def new_site() -> str:
    return f"Site {uuid.uuid4().hex[:10]}"


def sjr(
    avoidability: int,
    overall: int,
    reviewer: str = "Dr Stage One",
    phases: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A complete SJR with these scores (and phase ratings, admission 4 unless given)."""
    rated = phases if phases is not None else {"admission_initial": 4}
    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer, "role": "Consultant"},
        "phases": [
            *({"phase": p, "rating": r, "narrative": "Seen."} for p, r in rated.items()),
            {"phase": "overall", "rating": overall, "narrative": "Overall."},
        ],
        "quality_of_records": 4,
        "avoidability": avoidability,
        "problems_in_care": [],
        "patient_safety_incident_suspected": False,
    }


class Cohort:
    """Deaths at one site, made through the API."""

    def __init__(self, api: Any, site: str | None = None) -> None:
        self.api = api
        self.site = site or new_site()

    async def death(
        self,
        died_at: datetime,
        *,
        unexpected: bool = False,
        learning_disability: bool = False,
        autism: bool = False,
        place: str = "inpatient",
        specialty: str = "General Medicine",
        age: int = 80,
        safety_concern: bool = False,
        discharged_days_before: int | None = None,
    ) -> dict[str, Any]:
        """A screened death; returns the screening response (death and referrals)."""
        born = (died_at - timedelta(days=int(age * 365.25) + 40)).date()
        body = screening_body(
            died_at=died_at,
            death={
                "site": self.site,
                "place_of_death": place,
                "specialty_at_death": specialty,
                "admitting_specialty": specialty,
                "learning_disability": learning_disability,
                "autism": autism,
                "date_of_birth": born.isoformat(),
            },
            screening={
                "death_expected": not unexpected,
                "patient_safety_concern": "Possible missed deterioration"
                if safety_concern
                else None,
            },
        )
        if discharged_days_before is not None:
            discharged = died_at - timedelta(days=discharged_days_before)
            body["death"]["admitted_at"] = (discharged - timedelta(days=3)).isoformat()
            body["death"]["discharged_at"] = discharged.isoformat()
        response = await self.api.post("/v1/screenings", json=body, headers=idem())
        assert response.status_code == 201, response.text
        recorded: dict[str, Any] = response.json()
        return recorded

    async def referrals(self, death_id: str) -> list[dict[str, Any]]:
        page = await self.api.get(f"/v1/deaths/{death_id}")
        assert page.status_code == 200, page.text
        referrals: list[dict[str, Any]] = page.json()["referrals"]
        return referrals

    async def referral(self, death_id: str, route: str, stage: int | None = None) -> dict[str, Any]:
        matches = [
            r
            for r in await self.referrals(death_id)
            if r["route"] == route and (stage is None or r["stage"] == stage)
        ]
        assert len(matches) == 1, (route, stage, matches)
        return matches[0]

    async def review(
        self,
        death_id: str,
        route: str,
        review: dict[str, Any],
        stage: int | None = None,
        submit: bool = True,
    ) -> dict[str, Any]:
        referral = await self.referral(death_id, route, stage)
        response = await self.api.post(
            f"/v1/referrals/{referral['id']}/review", json={"review": review, "submit": submit}
        )
        assert response.status_code == 201, response.text
        posted: dict[str, Any] = response.json()
        posted["etag"] = response.headers["ETag"]
        return posted

    async def amend(self, review: dict[str, Any], body: dict[str, Any]) -> None:
        response = await self.api.put(
            f"/v1/reviews/{review['id']}",
            json={"review": body},
            headers={"If-Match": review["etag"]},
        )
        assert response.status_code == 200, response.text

    async def report(self, name: str, **params: Any) -> dict[str, Any]:
        return await fetch_report(self.api, name, **{"site": self.site, **params})


async def fetch_report(api: Any, name: str, **params: Any) -> dict[str, Any]:
    """GET /v1/reports/{name} as JSON; it must answer 200."""
    response = await api.get(f"/v1/reports/{name}", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def rows_by_period(report: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    (found,) = [t for t in report["tables"] if t["key"] == table]
    return {row["period"]: row for row in found["rows"]}


def table_rows(report: dict[str, Any], table: str) -> list[dict[str, Any]]:
    (found,) = [t for t in report["tables"] if t["key"] == table]
    rows: list[dict[str, Any]] = found["rows"]
    return rows


# --- cohorts as data ----------------------------------------------------------------------

# A review body, or a function of the recorded death that makes one (a LeDeR notification
# dated from the death, say).
Body = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Post:
    """Post a review of the death's referral on ``route`` (of ``stage`` where the route has
    two), submitted unless ``submit`` is False (a draft)."""

    route: str
    body: Body
    stage: int | None = None
    submit: bool = True


@dataclass(frozen=True)
class Amend:
    """Amend the death's ``review``-th posted review (0 for its first) to ``body``."""

    review: int
    body: Body


@dataclass(frozen=True)
class Expect:
    """The death's referral on ``route`` is in ``status`` by this step."""

    route: str
    status: str


Step = Post | Amend | Expect


@dataclass(frozen=True)
class Died:
    at: str
    steps: tuple[Step, ...]
    options: dict[str, Any]


def died(moment: str, *steps: Step, **options: Any) -> Died:
    """A death at ``moment`` (UTC, ISO without an offset) with Cohort.death()'s ``options``,
    then its ``steps`` in order."""
    return Died(moment, steps, options)


def _body(body: Body, death: dict[str, Any]) -> dict[str, Any]:
    return body(death) if callable(body) else body


async def build(api: Any, deaths: Iterable[Died], site: str | None = None) -> Cohort:
    """Put the deaths in, one after another, each followed by its steps."""
    cohort = Cohort(api, site)
    for death in deaths:
        recorded = (await cohort.death(at(death.at), **death.options))["death"]
        posted: list[dict[str, Any]] = []
        for step in death.steps:
            if isinstance(step, Post):
                review = _body(step.body, recorded)
                posted.append(
                    await cohort.review(recorded["id"], step.route, review, step.stage, step.submit)
                )
            elif isinstance(step, Amend):
                await cohort.amend(posted[step.review], _body(step.body, recorded))
            else:
                referral = await cohort.referral(recorded["id"], step.route)
                assert referral["status"] == step.status, (step, referral)
    return cohort
