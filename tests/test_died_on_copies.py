"""The death's local date of death is copied onto its screening, route overrides, referrals and
reviews (migration 0009), so that reports read a period's rows by it. The copy must never be
stale: written with every row, moved when a death's time of death is corrected across
midnight, and backfilled by the migration for rows that existed before it. Each test checks
the copies in the database and what a governance user sees: the timeliness report of the
death's day, read without filters (the report's pass over the copies alone) and with a site
filter (joined to the deaths)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.kit.time import LONDON, local_date
from app.main import create_app
from app.migrate import downgrade, upgrade
from app.models import Referral, Review, RouteOverride, Screening
from tests.conftest import Api
from tests.factories import idem, screening_body
from tests.kit.cohorts import table_rows as rows

COPIES = (Screening, RouteOverride, Referral, Review)
POOR_CARE = {
    "instrument": "sjr",
    "reviewer": {"name": "Dr Stage One"},
    "phases": [{"phase": "overall", "rating": 2, "narrative": "Poor."}],
    "quality_of_records": 3,
    "avoidability": 5,
}


def a_summer_day() -> date:
    """A day of British Summer Time in 2002-2011 that no other test's deaths fall on."""
    rng = random.Random(uuid.uuid4().int)
    return date(rng.randint(2002, 2011), rng.randint(6, 8), rng.randint(1, 30))


def local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


async def day_report(api: Any, day: date, **params: Any) -> dict[str, Any]:
    response = await api.get(
        "/v1/reports/timeliness",
        params={"start": day.isoformat(), "end": day.isoformat(), **params},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    report.pop("generated_at")
    # The overdue table's note says "as of" the moment the report was made.
    next(t for t in report["tables"] if t["key"] == "overdue").pop("note")
    return report


async def record_pair(api: Any, site: str, died_at: datetime) -> tuple[str, str]:
    """Two unexpected deaths at `died_at`, screened a day later: the first referred for SJR,
    whose stage-1 review rates care poor (so a stage-2 SJR is raised), the second with the
    SJR overridden. Returns the two death ids."""
    deaths = []
    for overrides in ([], [{"route": "sjr", "reason": "The family declined a review."}]):
        body = screening_body(
            died_at=died_at,
            death={"site": site},
            screening={
                "death_expected": False,
                "screened_at": (died_at + timedelta(days=1)).isoformat(),
                "overrides": overrides,
            },
        )
        response = await api.post("/v1/screenings", json=body, headers=idem())
        assert response.status_code == 201, response.text
        deaths.append(response.json())
    (sjr,) = deaths[0]["referrals"]
    posted = await api.post(f"/v1/referrals/{sjr['id']}/review", json={"review": POOR_CARE})
    assert posted.status_code == 201, posted.text
    return deaths[0]["death_id"], deaths[1]["death_id"]


async def copies_of(database: Database, death_ids: list[str]) -> set[tuple[str, date]]:
    """(table, died_on) of every copy the deaths' rows carry."""
    ids = [uuid.UUID(death_id) for death_id in death_ids]
    found: set[tuple[str, date]] = set()
    async with database.transaction() as session:
        for model in COPIES:
            for died_on in await session.scalars(
                select(model.died_on).where(model.death_id.in_(ids))
            ):
                found.add((model.__tablename__, died_on))
    return found


async def correct(api: Any, death_ids: list[str], died_at: datetime) -> None:
    """PATCH each death's time of death, as a ward's correction would."""
    for death_id in death_ids:
        url = f"/v1/deaths/{death_id}"
        tag = (await api.get(url)).headers["ETag"]
        corrected = await api.patch(
            url, json={"died_at": died_at.isoformat()}, headers={"If-Match": tag}
        )
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["died_on"] == local_date(died_at).isoformat()


def the_pair_as_counted(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the pair gives, whichever day they fall on."""
    return {
        "intervals": [(r["interval"], r["route"], r["count"]) for r in rows(report, "intervals")],
        "overdue": [(r["route"], r["open"]) for r in rows(report, "overdue")],
        "referral_rate": rows(report, "referral_rate"),
        "override_criteria": rows(report, "override_criteria"),
        "overrides": [(r["route"], r["criteria"]) for r in rows(report, "overrides")],
    }


PAIR_COUNTED = {
    "intervals": [
        ("Death to medical examiner screening", "all routes", 2),
        ("Screening to referral", "all routes", 1),
        ("Screening to referral", "sjr", 1),
        ("Referral to completed review", "all routes", 1),
        ("Referral to completed review", "sjr", 1),
    ],
    # The stage-2 SJR the poor rating raised is open.
    "overdue": [("all routes", 1), ("sjr", 1)],
    "referral_rate": [
        {
            "route": route,
            "screened_deaths": 2,
            "referred_deaths": 1,
            "referral_rate": 50.0,
            "overridden_deaths": 1,
        }
        for route in ("all routes", "sjr")
    ],
    "override_criteria": [{"route": "sjr", "criterion": "unexpected_death", "deaths": 1}],
    "overrides": [("sjr", "unexpected_death")],
}


async def test_a_corrected_time_of_death_moves_every_copy_to_the_new_day(
    make_api, database
) -> None:
    admin = await make_api(Scope.admin)
    reader = await make_api(Scope.reports_read)
    site = f"Copies site {uuid.uuid4().hex[:10]}"
    day = a_summer_day()
    before = day - timedelta(days=1)
    # 00:30 BST on `day`: 23:30 UTC the evening before, and `day` in the trust's local time.
    first, second = await record_pair(admin, site, local(day, 0, 30))
    assert await copies_of(database, [first, second]) == {
        (model.__tablename__, day) for model in COPIES
    }
    for params in ({}, {"site": site}):
        assert the_pair_as_counted(await day_report(reader, day, **params)) == PAIR_COUNTED

    # The ward corrects the time of death to 23:30 BST the day before.
    await correct(admin, [first, second], local(before, 23, 30))
    assert await copies_of(database, [first, second]) == {
        (model.__tablename__, before) for model in COPIES
    }
    for params in ({}, {"site": site}):
        moved = await day_report(reader, before, **params)
        assert the_pair_as_counted(moved) == PAIR_COUNTED
        left = await day_report(reader, day, **params)
        assert rows(left, "referral_rate")[0]["screened_deaths"] == 0
        assert [r["count"] for r in rows(left, "intervals")] == [0, 0, 0]
        assert rows(left, "overdue")[0]["open"] == 0 and rows(left, "overrides") == []
    (listed,) = rows(moved, "overrides")
    assert listed["month_of_death"] == before.replace(day=1).isoformat()

    # What the corrected death gets afterwards carries the corrected day too: the stage-2
    # review, and the stage-2 referral's own follow-on (a PSII when it judges the death more
    # likely than not avoidable).
    death = (await admin.get(f"/v1/deaths/{first}")).json()
    (stage_two,) = [r for r in death["referrals"] if r["stage"] == 2]
    avoidable = {**POOR_CARE, "reviewer": {"name": "Dr Stage Two"}, "avoidability": 3}
    posted = await admin.post(f"/v1/referrals/{stage_two['id']}/review", json={"review": avoidable})
    assert posted.status_code == 201, posted.text
    assert await copies_of(database, [first, second]) == {
        (model.__tablename__, before) for model in COPIES
    }
    after = await day_report(reader, before)
    assert [(r["route"], r["open"]) for r in rows(after, "overdue")] == [
        ("all routes", 1),
        ("psii", 1),
    ]


MONTH_FIGURES = ("all_deaths", "reviewed", "investigated", "avoidable")


async def report(api: Any, name: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/v1/reports/{name}", params=params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_the_dashboard_and_care_quality_follow_a_corrected_month(make_api) -> None:
    """The dashboard and care quality read the period's reviews and referrals by their copies
    of the date of death: a death moved from 1 July to 30 June by a correction moves its
    reviews, its PSII and its final SJR to June, in the first quarter instead of the second."""
    admin = await make_api(Scope.admin)
    reader = await make_api(Scope.reports_read)
    site = f"Copies site {uuid.uuid4().hex[:10]}"
    day = date(random.Random(uuid.uuid4().int).randint(2002, 2011), 7, 1)
    june, july = f"Jun {day.year}", f"Jul {day.year}"
    year = f"{day.year}-{str(day.year + 1)[2:]}"
    first, second = await record_pair(admin, site, local(day, 0, 30))
    death = (await admin.get(f"/v1/deaths/{first}")).json()
    (stage_two,) = [r for r in death["referrals"] if r["stage"] == 2]
    avoidable = {**POOR_CARE, "reviewer": {"name": "Dr Stage Two"}, "avoidability": 3}
    posted = await admin.post(f"/v1/referrals/{stage_two['id']}/review", json={"review": avoidable})
    assert posted.status_code == 201, posted.text

    async def months() -> dict[str, tuple[int, ...]]:
        """(deaths, reviewed, investigated, avoidable) of June and July at the site."""
        dashboard = await report(reader, "lfd-dashboard", period=year, site=site)
        return {
            row["period"]: tuple(row[name] for name in MONTH_FIGURES)
            for row in rows(dashboard, "deaths")
            if row["period"] in (june, july)
        }

    async def quality(on: date) -> dict[str, Any]:
        found = await report(reader, "care-quality", start=on.isoformat(), end=on.isoformat())
        (summary,) = rows(found, "summary")
        return {name: summary[name] for name in ("deaths", "referred", "reviewed", "rated")}

    pair = {"deaths": 2, "referred": 1, "reviewed": 1, "rated": 1}
    none = {"deaths": 0, "referred": 0, "reviewed": 0, "rated": 0}
    # Two deaths, one reviewed (stage 1 and 2 count once), investigated (the PSII the stage 2
    # raised) and judged more likely than not avoidable (its final SJR scores 3).
    assert await months() == {june: (0, 0, 0, 0), july: (2, 1, 1, 1)}
    assert await quality(day) == pair

    await correct(admin, [first, second], local(day - timedelta(days=1), 23, 30))
    assert await months() == {june: (2, 1, 1, 1), july: (0, 0, 0, 0)}
    assert await quality(day - timedelta(days=1)) == pair
    assert await quality(day) == none


# --- the migration's backfill ------------------------------------------------------------------


async def test_the_migration_copies_the_date_onto_rows_made_before_it(
    scratch_url: str, base_settings: Settings
) -> None:
    """Rows made at 0009, their copies dropped by downgrading to 0008 and written again by
    upgrading: the same days, and the same report."""
    settings = base_settings.model_copy(update={"database_url": scratch_url})
    await asyncio.to_thread(upgrade, scratch_url, "head")
    database = Database(settings)
    try:
        async with database.transaction() as session:
            created = await create_client(session, "copies", [Scope.admin])
    finally:
        await database.dispose()
    day = a_summer_day()

    async def with_api(work: Any) -> Any:
        app = create_app(settings)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http:
                return await work(Api(http, created.key, created.client.id))
        finally:
            await app.state.database.dispose()

    async def make(api: Api) -> tuple[list[str], dict[str, Any]]:
        pair = await record_pair(api, "Backfill site", local(day, 0, 30))
        return list(pair), await day_report(api, day)

    death_ids, report = await with_api(make)

    await asyncio.to_thread(downgrade, scratch_url, "0008")
    await asyncio.to_thread(upgrade, scratch_url, "head")

    database = Database(settings)
    try:
        assert await copies_of(database, death_ids) == {
            (model.__tablename__, day) for model in COPIES
        }
    finally:
        await database.dispose()
    again = await with_api(lambda api: day_report(api, day))
    assert again == report
    assert the_pair_as_counted(report) == PAIR_COUNTED
