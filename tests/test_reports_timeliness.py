"""The timeliness and compliance report (GET /v1/reports/timeliness) on a hand-built cohort at
a site of its own. Deaths and screenings go in through the API; the times the API stamps itself
(a referral's creation, a review's submission, a due date) are then set in the database, so
that every interval is one worked out by hand below: medians of odd and even counts, 90th
percentiles interpolated between ranks, overdue referrals, the referral rate and an overridden
route with its reason. Also the route filter, empty periods, exports, a pseudonymised client,
the 400s, and the portable percentile against PostgreSQL's percentile_cont."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Float, func, literal, select, union_all, update

from app.auth.scopes import Scope
from app.models import AuditEvent, Referral, Review
from app.reports.aggregates import days, percentile_terms
from tests.conftest import Api
from tests.factories import idem, screening_body
from tests.kit.cohorts import fetch_report
from tests.kit.cohorts import table_rows as rows
from tests.kit.reviews import brief_sjr

PROBLEM_JSON = "application/problem+json"
OVERRIDE_REASON = "The family asked that the care not be reviewed; discussed with the consultant."


def new_site() -> str:
    return f"Timeliness site {uuid.uuid4().hex[:10]}"


async def timeliness(api: Api, **params: Any) -> dict[str, Any]:
    return await fetch_report(api, "timeliness", **params)


async def screened(
    api: Api,
    site: str,
    died_at: datetime,
    after_hours: int,
    *,
    unexpected: bool,
    specialty: str = "General Medicine",
    overrides: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body = screening_body(
        died_at=died_at,
        death={"site": site, "specialty_at_death": specialty, "admitting_specialty": specialty},
        screening={
            "death_expected": not unexpected,
            "screened_at": (died_at + timedelta(hours=after_hours)).isoformat(),
            "overrides": overrides or [],
        },
    )
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    recorded: dict[str, Any] = response.json()
    return recorded


def referral_of(recorded: dict[str, Any], route: str) -> dict[str, Any]:
    (referral,) = [r for r in recorded["referrals"] if r["route"] == route]
    return referral


async def submit_sjr(api: Api, referral_id: str) -> str:
    review = brief_sjr("Dr Prompt", 4, "Good.")
    response = await api.post(f"/v1/referrals/{referral_id}/review", json={"review": review})
    assert response.status_code == 201, response.text
    review_id: str = response.json()["id"]
    return review_id


async def set_referral(database: Any, referral_id: str, **columns: Any) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Referral).where(Referral.id == uuid.UUID(referral_id)).values(**columns)
        )


async def set_submitted(database: Any, review_id: str, submitted_at: datetime) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Review)
            .where(Review.id == uuid.UUID(review_id))
            .values(submitted_at=submitted_at)
        )


class Built:
    site: str
    d4_due: date
    d6_id: str


async def build(api: Api, database: Any) -> Built:
    """Six deaths in May 2025 at one site:

    | death | screened after | referrals (created after screening) | review after referral |
    |---|---|---|---|
    | D1 General Surgery, unexpected | 12 h | SJR 0 days, M&M 3 days | SJR 10 days |
    | D2 unexpected | 24 h | SJR 1 day | SJR 20 days |
    | D3 unexpected | 48 h | SJR 2 days | SJR 60 days |
    | D4 unexpected | 96 h | SJR 4 days (open, due 1 July 2025) | - |
    | D5 expected | 24 h | none | - |
    | D6 unexpected, SJR overridden | 24 h | none | - |

    D1's M&M is open and due in 30 days' time.
    """
    built = Built()
    built.site = site = new_site()
    base = datetime(2025, 5, 1, 9, tzinfo=UTC)
    d1 = await screened(api, site, base, 12, unexpected=True, specialty="General Surgery")
    d2 = await screened(api, site, base + timedelta(days=1), 24, unexpected=True)
    d3 = await screened(api, site, base + timedelta(days=2), 48, unexpected=True)
    d4 = await screened(api, site, base + timedelta(days=3), 96, unexpected=True)
    await screened(api, site, base + timedelta(days=4), 24, unexpected=False)
    d6 = await screened(
        api,
        site,
        base + timedelta(days=5),
        24,
        unexpected=True,
        overrides=[{"route": "sjr", "reason": OVERRIDE_REASON}],
    )
    assert d6["referrals"] == []
    built.d6_id = d6["death_id"]

    def screened_at(recorded: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(recorded["screened_at"])

    plan = [(d1, 0, 10), (d2, 1, 20), (d3, 2, 60), (d4, 4, None)]
    for recorded, after_days, review_days in plan:
        referral = referral_of(recorded, "sjr")
        created = screened_at(recorded) + timedelta(days=after_days)
        await set_referral(database, referral["id"], created_at=created)
        if review_days is not None:
            review_id = await submit_sjr(api, referral["id"])
            await set_submitted(database, review_id, created + timedelta(days=review_days))
    built.d4_due = date(2025, 7, 1)
    await set_referral(
        database,
        referral_of(d4, "sjr")["id"],
        due_at=datetime(2025, 7, 1, 9, tzinfo=UTC),
    )
    mm = referral_of(d1, "mm")
    await set_referral(
        database,
        mm["id"],
        created_at=screened_at(d1) + timedelta(days=3),
        due_at=datetime.now(UTC) + timedelta(days=30),
    )
    return built


def interval(name: str, route: str, count: int, median: float | None, p90: float | None):
    return {
        "interval": name,
        "route": route,
        "count": count,
        "median_days": median,
        "p90_days": p90,
    }


TO_SCREENING = "Death to medical examiner screening"
TO_REFERRAL = "Screening to referral"
TO_REVIEW = "Referral to completed review"


async def test_intervals_overdue_rate_and_overrides(make_api, database) -> None:
    admin = await make_api(Scope.admin)
    built = await build(admin, database)
    # A governance team's client that may also read deaths: the examiner's reasons included.
    reader = await make_api(Scope.reports_read, Scope.deaths_read)
    report = await timeliness(reader, period="2025-05", site=built.site)
    assert [t["key"] for t in report["tables"]] == [
        "intervals",
        "overdue",
        "referral_rate",
        "override_criteria",
        "overrides",
    ]

    assert rows(report, "intervals") == [
        # 12, 24, 24, 24, 48, 96 hours: the middle two are 24 h; the 90th percentile is at
        # rank 1 + 5 x 0.9 = 5.5, halfway between 48 and 96 h: 72 h.
        interval(TO_SCREENING, "all routes", 6, 1.0, 3.0),
        # 0, 1, 2, 3, 4 days: median 2; rank 1 + 4 x 0.9 = 4.6: 3 + 0.6 x (4 - 3).
        interval(TO_REFERRAL, "all routes", 5, 2.0, 3.6),
        # SJR 0, 1, 2, 4: median (1 + 2) / 2; rank 3.7: 2 + 0.7 x (4 - 2).
        interval(TO_REFERRAL, "sjr", 4, 1.5, 3.4),
        interval(TO_REFERRAL, "mm", 1, 3.0, 3.0),
        # 10, 20, 60 days: median 20; rank 2.8: 20 + 0.8 x 40.
        interval(TO_REVIEW, "all routes", 3, 20.0, 52.0),
        interval(TO_REVIEW, "sjr", 3, 20.0, 52.0),
    ]
    assert rows(report, "overdue") == [
        {
            "route": "all routes",
            "open": 2,
            "overdue": 1,
            "overdue_percent": 50.0,
            "oldest_due": "2025-07-01",
        },
        {"route": "sjr", "open": 1, "overdue": 1, "overdue_percent": 100.0}
        | {"oldest_due": "2025-07-01"},
        {"route": "mm", "open": 1, "overdue": 0, "overdue_percent": 0.0, "oldest_due": None},
    ]
    # Six screened, four referred (D5 needed nothing, D6's SJR was overridden): 66.7%.
    assert rows(report, "referral_rate") == [
        {
            "route": "all routes",
            "screened_deaths": 6,
            "referred_deaths": 4,
            "referral_rate": 66.7,
            "overridden_deaths": 1,
        },
        {
            "route": "sjr",
            "screened_deaths": 6,
            "referred_deaths": 4,
            "referral_rate": 66.7,
            "overridden_deaths": 1,
        },
        {
            "route": "mm",
            "screened_deaths": 6,
            "referred_deaths": 1,
            "referral_rate": 16.7,
            "overridden_deaths": 0,
        },
    ]
    assert rows(report, "override_criteria") == [
        {"route": "sjr", "criterion": "unexpected_death", "deaths": 1}
    ]
    assert rows(report, "overrides") == [
        {
            "month_of_death": "2025-05-01",
            "site": built.site,
            "specialty": "General Medicine",
            "route": "sjr",
            "criteria": "unexpected_death",
            "reason": OVERRIDE_REASON,
        }
    ]
    # Reading the reason is a read of D6, audited.
    async with database.transaction() as session:
        audited = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.resource_type, AuditEvent.death_ids).where(
                    AuditEvent.client_id == reader.client_id
                )
            )
        ).all()
    assert audited == [("route_override.read", "route_override", [uuid.UUID(built.d6_id)])]

    # A client with reports:read alone gets the same figures, and no free text.
    reports_only = await make_api(Scope.reports_read)
    bare = await timeliness(reports_only, period="2025-05", site=built.site)
    (listed,) = rows(bare, "overrides")
    assert listed["reason"] is None and listed["criteria"] == "unexpected_death"
    assert "deaths:read" in next(t for t in bare["tables"] if t["key"] == "overrides")["note"]
    assert rows(bare, "referral_rate") == rows(report, "referral_rate")
    async with database.transaction() as session:
        none = await session.scalar(
            select(func.count()).where(AuditEvent.client_id == reports_only.client_id)
        )
    assert none == 0


async def test_the_route_filter_follows_one_route(make_api, database) -> None:
    admin = await make_api(Scope.admin)
    built = await build(admin, database)
    reader = await make_api(Scope.reports_read)
    report = await timeliness(reader, period="2025-05", site=built.site, route="mm")
    assert report["filters"]["route"] == "mm"
    # Only D1 went to M&M: screened after 12 hours, referred 3 days later, not yet reviewed.
    assert rows(report, "intervals") == [
        interval(TO_SCREENING, "all routes", 1, 0.5, 0.5),
        interval(TO_REFERRAL, "all routes", 1, 3.0, 3.0),
        interval(TO_REFERRAL, "mm", 1, 3.0, 3.0),
        interval(TO_REVIEW, "all routes", 0, None, None),
    ]
    assert [r["route"] for r in rows(report, "overdue")] == ["all routes", "mm"]
    assert rows(report, "referral_rate")[0]["referred_deaths"] == 1
    assert rows(report, "referral_rate")[0]["referral_rate"] == 16.7
    assert rows(report, "referral_rate")[0]["overridden_deaths"] == 0
    assert rows(report, "overrides") == []

    # The specialty filter keeps D1 alone; June holds none of them.
    surgery = await timeliness(
        reader, period="2025-05", site=built.site, specialty="General Surgery"
    )
    assert rows(surgery, "intervals")[0] == interval(TO_SCREENING, "all routes", 1, 0.5, 0.5)
    june = await timeliness(reader, period="2025-06", site=built.site)
    assert rows(june, "intervals")[0]["count"] == 0
    # Everyone here died aged 80: in "65-80" (80 included), none "over 80".
    banded = await timeliness(reader, period="2025-05", site=built.site, age_band="65-80")
    assert rows(banded, "intervals")[0]["count"] == 6
    older = await timeliness(reader, period="2025-05", site=built.site, age_band="over 80")
    assert rows(older, "referral_rate")[0]["screened_deaths"] == 0


async def test_referrals_a_review_raised_are_not_the_screenings(make_api) -> None:
    """A stage-1 SJR rating care poor raises a stage-2 SJR: reviewing work, not the examiner's
    referral, so screening to referral counts the stage 1 alone."""
    admin = await make_api(Scope.admin)
    site = new_site()
    recorded = await screened(admin, site, datetime(2025, 6, 3, 9, tzinfo=UTC), 24, unexpected=True)
    review = {
        "instrument": "sjr",
        "reviewer": {"name": "Dr Stage One"},
        "phases": [{"phase": "overall", "rating": 2, "narrative": "Poor."}],
        "quality_of_records": 3,
        "avoidability": 5,
    }
    stage_one = referral_of(recorded, "sjr")
    posted = await admin.post(f"/v1/referrals/{stage_one['id']}/review", json={"review": review})
    assert posted.status_code == 201, posted.text
    death = (await admin.get(f"/v1/deaths/{recorded['death_id']}")).json()
    assert sorted(r["stage"] for r in death["referrals"]) == [1, 2]

    report = await timeliness(admin, period="2025-06", site=site)
    by_interval = {(r["interval"], r["route"]): r["count"] for r in rows(report, "intervals")}
    assert by_interval[(TO_REFERRAL, "all routes")] == 1
    assert by_interval[(TO_REVIEW, "all routes")] == 1
    assert rows(report, "overdue")[0]["open"] == 1  # the stage 2
    assert rows(report, "referral_rate")[0]["referred_deaths"] == 1


async def test_an_empty_period_is_zeros(make_api) -> None:
    reader = await make_api(Scope.reports_read)
    report = await timeliness(reader, period="2019-05", site=new_site())
    assert rows(report, "intervals") == [
        interval(TO_SCREENING, "all routes", 0, None, None),
        interval(TO_REFERRAL, "all routes", 0, None, None),
        interval(TO_REVIEW, "all routes", 0, None, None),
    ]
    assert rows(report, "overdue") == [
        {"route": "all routes", "open": 0, "overdue": 0, "overdue_percent": None}
        | {"oldest_due": None}
    ]
    assert rows(report, "referral_rate") == [
        {
            "route": "all routes",
            "screened_deaths": 0,
            "referred_deaths": 0,
            "referral_rate": None,
            "overridden_deaths": 0,
        }
    ]
    assert rows(report, "override_criteria") == [] and rows(report, "overrides") == []


async def test_exports_and_a_pseudonymised_client(make_api, database) -> None:
    admin = await make_api(Scope.admin)
    built = await build(admin, database)
    reader = await make_api(Scope.reports_read)
    params = {"period": "2025-05", "site": built.site}

    response = await reader.get(
        "/v1/reports/timeliness", params={**params, "format": "csv", "table": "intervals"}
    )
    assert response.status_code == 200, response.text
    parsed = list(csv.reader(io.StringIO(response.text)))
    assert parsed[0] == ["Interval", "Route", "Count", "Median (days)", "90th percentile (days)"]
    assert parsed[1] == [TO_SCREENING, "all routes", "6", "1.0", "3.0"]

    whole = await reader.get("/v1/reports/timeliness", params={**params, "format": "csv"})
    assert whole.status_code == 200
    assert "unexpected_death" in whole.text and OVERRIDE_REASON not in whole.text

    page = await reader.get("/v1/reports/timeliness", params={**params, "format": "html"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "How long each step takes (days)" in page.text

    xlsx = await reader.get("/v1/reports/timeliness", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert len(book.worksheets) == 5
    rate = book.worksheets[2]
    first = [cell.value for cell in next(rate.iter_rows(min_row=3, max_row=3))]
    assert first[:4] == ["all routes", 6, 4, pytest.approx(0.667)]
    assert rate.cell(row=3, column=4).number_format == "0.0%"

    # A commissioner gets what a reports:read client gets: the same JSON.
    commissioner = await make_api(Scope.reports_read, pseudonymised=True)
    mine = await timeliness(reader, **params)
    theirs = await timeliness(commissioner, **params)
    mine.pop("generated_at"), theirs.pop("generated_at")
    for report in (mine, theirs):  # "as of" the moment each was made
        next(t for t in report["tables"] if t["key"] == "overdue").pop("note")
    assert theirs == mine
    # Even one whose client row holds deaths:read: never the examiner's free text.
    pseudonymised_reader = await make_api(Scope.reports_read, Scope.deaths_read, pseudonymised=True)
    (listed,) = rows(await timeliness(pseudonymised_reader, **params), "overrides")
    assert listed["reason"] is None


async def test_bad_parameters_are_400(make_api) -> None:
    reader = await make_api(Scope.reports_read)
    for params in (
        {"organisation": "RR8"},
        {"route": "ward_round"},
        {"period": "2025-26", "start": "2025-04-01", "end": "2025-04-30"},
        {"age_band": "65 to 80"},
    ):
        response = await reader.get("/v1/reports/timeliness", params=params)
        assert response.status_code in (400, 422), (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)


# --- the portable percentile -------------------------------------------------------------------


def numbers_table(numbers: list[float]) -> Any:
    """The numbers as a one-column subquery (SELECT ... UNION ALL ...: both dialects)."""
    return union_all(*(select(literal(n, Float).label("v")) for n in numbers)).subquery("data")


async def portable_percentiles(database: Any, numbers: list[float]) -> tuple[Any, Any]:
    data = numbers_table(numbers)
    ranked = select(
        data.c.v,
        func.row_number().over(order_by=data.c.v).label("rank"),
        func.count().over().label("n"),
    ).subquery()
    median, p90 = percentile_terms(ranked.c.v, ranked.c.rank, ranked.c.n, (50, 90))
    async with database.transaction() as session:
        row = (await session.execute(select(median, p90))).one()
    return row[0], row[1]


@pytest.mark.parametrize(
    ("numbers", "median", "p90"),
    [
        ([5.0], 5.0, 5.0),
        ([1.0, 2.0], 1.5, 1.9),
        ([4.0, 1.0, 3.0, 2.0], 2.5, 3.7),
        ([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0], 55.0, 91.0),
        ([7.0, 7.0, 7.0], 7.0, 7.0),
    ],
)
async def test_the_portable_percentile_interpolates_between_ranks(
    database, numbers, median, p90
) -> None:
    got = await portable_percentiles(database, numbers)
    assert got == (pytest.approx(median), pytest.approx(p90))


@pytest.mark.postgres_only
async def test_the_portable_percentile_equals_percentile_cont(database) -> None:
    rng = random.Random(20251123)
    for size in (1, 2, 3, 10, 11, 97, 250):
        numbers = [round(rng.uniform(0, 5_000_000), 3) for _ in range(size)]
        data = numbers_table(numbers)
        async with database.transaction() as session:
            expected = (
                await session.execute(
                    select(
                        func.percentile_cont(0.5).within_group(data.c.v),
                        func.percentile_cont(0.9).within_group(data.c.v),
                    )
                )
            ).one()
        got = await portable_percentiles(database, numbers)
        assert got[0] == pytest.approx(expected[0], rel=1e-9)
        assert got[1] == pytest.approx(expected[1], rel=1e-9)


def test_days_round_half_up_to_one_decimal() -> None:
    assert days(0) == 0.0
    assert days(86400 * 1.25) == 1.3  # a half rounds up
    assert days(86400 * 1.24) == 1.2
    assert days(None) is None
