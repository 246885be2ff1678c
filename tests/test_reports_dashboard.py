"""The LfD dashboard over a hand-built cohort at a site of its own, with every expected figure
worked out by hand below (not by re-running the report's SQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from app.auth.scopes import Scope
from app.reports.model import percent
from tests.kit.cohorts import FY, Amend, Cohort, Expect, Post, at, build, died, rows_by_period, sjr

MONTHS = [
    "Apr 2025",
    "May 2025",
    "Jun 2025",
    "Jul 2025",
    "Aug 2025",
    "Sep 2025",
    "Oct 2025",
    "Nov 2025",
    "Dec 2025",
    "Jan 2026",
    "Feb 2026",
    "Mar 2026",
]


def leder(death: dict[str, Any], status: str = "notified") -> dict[str, Any]:
    notified = datetime.fromisoformat(death["died_at"]) + timedelta(hours=30)
    return {
        "instrument": "leder",
        "notified_at": notified.isoformat(),
        "leder_reference": "LDR-0042",
        "status": status,
    }


async def build_cohort(api: Any) -> Cohort:
    """The cohort of the figures in the tests below (all inpatient unless said):

    A 10 Apr 2025 expected death: counted, nothing else.
    B 20 Apr unexpected: SJR avoidability 6, overall 4.
    C 15 May unexpected: SJR stage 1 avoidability 3 (so a stage 2), stage 2 avoidability 5.
    D 20 May unexpected: stage 1 avoidability 4 overall 2 (so a stage 2), stage 2
      avoidability 2 (so a PSII referral): investigated and more likely than not avoidable.
    E 5 Jun unexpected: SJR avoidability 6, amended to avoidability 4 overall 3 (counts once,
      as 4).
    F 10 Jun at home (not in scope): SJR avoidability 1. Counted nowhere.
    G 1 Jul General Surgery (M&M): M&M review submitted: reviewed.
    H 2 Jul ME patient-safety concern: PSII referral: investigated, not reviewed.
    I 25 Apr learning disability: LeDeR notified; SJR stage 1 avoidability 2 (the stage 2 not
      done): LD figures only.
    J 3 Aug autism: LeDeR notified, amended to completed.
    K 4 Aug autism: LeDeR referral, nothing submitted.
    O 30 Sep 23:30 UTC = 00:30 BST 1 Oct: October.
    N 31 Dec 23:59 UTC = 23:59 GMT: December.
    M 31 Mar 2026 22:59 UTC = 23:59 BST: March 2025-26.
    L 31 Mar 2026 23:30 UTC = 00:30 BST 1 Apr 2026: the next financial year.
    """
    return await build(
        api,
        [
            died("2025-04-10T12:00"),  # A
            died("2025-04-20T12:00", Post("sjr", sjr(6, 4)), unexpected=True),  # B
            died(  # C
                "2025-05-15T12:00",
                Post("sjr", sjr(3, 3), stage=1),
                Post("sjr", sjr(5, 3, "Dr Stage Two"), stage=2),
                unexpected=True,
            ),
            died(  # D
                "2025-05-20T12:00",
                Post("sjr", sjr(4, 2), stage=1),
                Post("sjr", sjr(2, 2, "Dr Stage Two"), stage=2),
                Expect("psii", "ready"),
                unexpected=True,
            ),
            died(  # E
                "2025-06-05T12:00",
                Post("sjr", sjr(6, 4)),
                Amend(0, sjr(4, 3)),
                unexpected=True,
            ),
            died(  # F
                "2025-06-10T12:00",
                Post("sjr", sjr(1, 1), stage=1),
                unexpected=True,
                place="home",
            ),
            died(  # G
                "2025-07-01T12:00",
                Post(
                    "mm",
                    {
                        "instrument": "mm",
                        "meeting_date": "2025-07-20",
                        "specialty": "General Surgery",
                        "presenter": "Dr Registrar",
                        "outcome": "learning_identified",
                        "learning_points": ["Earlier senior review"],
                    },
                ),
                specialty="General Surgery",
            ),
            died("2025-07-02T12:00", safety_concern=True),  # H
            died(  # I
                "2025-04-25T12:00",
                Post("leder", leder),
                Post("sjr", sjr(2, 2), stage=1),
                learning_disability=True,
            ),
            died(  # J
                "2025-08-03T12:00",
                Post("leder", leder),
                Amend(0, lambda death: leder(death, "completed")),
                autism=True,
            ),
            died("2025-08-04T12:00", autism=True),  # K
            died("2025-09-30T23:30"),  # O
            died("2025-12-31T23:59"),  # N
            died("2026-03-31T22:59"),  # M
            died("2026-03-31T23:30"),  # L
        ],
    )


async def test_the_dashboard_of_a_hand_built_year(api) -> None:
    cohort = await build_cohort(api)
    report = await cohort.report("lfd-dashboard", period=FY)
    assert report["key"] == "lfd-dashboard"
    assert report["period"] == {
        "start": "2025-04-01",
        "end": "2026-03-31",
        "label": "2025/26",
        "kind": "financial_year",
    }
    assert report["filters"]["site"] == cohort.site

    deaths = rows_by_period(report, "deaths")
    assert list(deaths) == [*MONTHS, "Q4 to date", "Year to date"]

    def figures(row: dict[str, Any]) -> tuple[Any, ...]:
        return (
            row["all_deaths"],
            row["deaths"],
            row["reviewed"],
            row["reviewed_pct"],
            row["investigated"],
            row["avoidable"],
            row["avoidable_pct"],
        )

    assert figures(deaths["Apr 2025"]) == (3, 2, 1, 50.0, 0, 0, 0.0)
    assert figures(deaths["May 2025"]) == (2, 2, 2, 100.0, 1, 1, 50.0)
    assert figures(deaths["Jun 2025"]) == (1, 1, 1, 100.0, 0, 0, 0.0)
    assert figures(deaths["Jul 2025"]) == (2, 2, 1, 50.0, 1, 0, 0.0)
    # Only LeDeR deaths in August: no share of nothing.
    assert figures(deaths["Aug 2025"]) == (2, 0, 0, None, 0, 0, None)
    assert figures(deaths["Sep 2025"]) == (0, 0, 0, None, 0, 0, None)
    assert figures(deaths["Oct 2025"]) == (1, 1, 0, 0.0, 0, 0, None)
    assert figures(deaths["Nov 2025"]) == (0, 0, 0, None, 0, 0, None)
    assert figures(deaths["Dec 2025"]) == (1, 1, 0, 0.0, 0, 0, None)
    assert figures(deaths["Mar 2026"]) == (1, 1, 0, 0.0, 0, 0, None)
    assert figures(deaths["Q4 to date"]) == (1, 1, 0, 0.0, 0, 0, None)
    assert deaths["Q4 to date"]["row_kind"] == "quarter_to_date"
    # 10 deaths (13 with LD and autism), 5 reviewed (50.0%), 2 investigated, 1 avoidable of
    # the 5 reviewed (20.0%).
    assert figures(deaths["Year to date"]) == (13, 10, 5, 50.0, 2, 1, 20.0)

    scores = rows_by_period(report, "avoidability")
    year = scores["Year to date"]
    assert [year[f"score_{s}"] for s in range(1, 7)] == [0, 1, 0, 1, 1, 1]
    assert year["scored"] == 4
    assert [scores["May 2025"][f"score_{s}"] for s in range(1, 7)] == [0, 1, 0, 0, 1, 0]
    # E's amended review counts once, with its latest score (4, not 6).
    assert [scores["Jun 2025"][f"score_{s}"] for s in range(1, 7)] == [0, 0, 0, 1, 0, 0]
    labels = {c["key"]: c["label"] for c in report["tables"][1]["columns"]}
    assert labels["score_1"] == "Score 1: Definitely avoidable"

    leder_rows = rows_by_period(report, "ld_autism")

    def ld(row: dict[str, Any]) -> tuple[Any, ...]:
        return (
            row["ld_deaths"],
            row["ld_notified"],
            row["ld_notified_pct"],
            row["ld_completed"],
            row["ld_avoidable"],
        )

    assert ld(leder_rows["Apr 2025"]) == (1, 1, 100.0, 0, 1)
    assert ld(leder_rows["Aug 2025"]) == (2, 1, 50.0, 1, 0)
    # 2 of 3 notified: 66.7% (rounded to one place).
    assert ld(leder_rows["Year to date"]) == (3, 2, 66.7, 1, 1)


async def test_a_quarter_runs_the_year_to_its_end(api) -> None:
    cohort = await build_cohort(api)
    report = await cohort.report("lfd-dashboard", period="2025-26-Q1")
    assert report["period"]["start"] == "2025-04-01"
    assert report["period"]["end"] == "2025-06-30"
    deaths = rows_by_period(report, "deaths")
    assert list(deaths) == ["Apr 2025", "May 2025", "Jun 2025", "Q1 to date", "Year to date"]
    assert deaths["Q1 to date"]["deaths"] == 5
    assert deaths["Q1 to date"]["reviewed"] == 4
    assert deaths["Q1 to date"]["reviewed_pct"] == 80.0
    assert deaths["Year to date"]["all_deaths"] == 6

    # A month gives the year up to that month, the quarter it falls in to date.
    october = await cohort.report("lfd-dashboard", period="2025-10")
    rows = rows_by_period(october, "deaths")
    assert list(rows)[-2:] == ["Q3 to date", "Year to date"]
    assert rows["Q3 to date"]["deaths"] == 1  # O, 00:30 BST on 1 October
    assert rows["Year to date"]["deaths"] == 8

    # The death at 00:30 BST on 1 April 2026 opens the next year.
    following = await cohort.report("lfd-dashboard", period="2026-27-Q1")
    assert rows_by_period(following, "deaths")["Apr 2026"]["deaths"] == 1


async def test_filters_select_deaths(api) -> None:
    cohort = Cohort(api)
    await cohort.death(at("2025-05-01T10:00"), age=50, specialty="Cardiology Rpt")
    await cohort.death(at("2025-05-02T10:00"), age=65)
    await cohort.death(at("2025-05-03T10:00"), age=80)
    await cohort.death(at("2025-05-04T10:00"), age=81)

    async def year(**params: Any) -> int:
        report = await cohort.report("lfd-dashboard", period=FY, **params)
        count: int = rows_by_period(report, "deaths")["Year to date"]["all_deaths"]
        return count

    assert await year() == 4
    # Bands from the default boundaries 65 and 80: 80 is in 65-80.
    assert await year(age_band="under 65") == 1
    assert await year(age_band="65-80") == 2
    assert await year(age_band="over 80") == 1
    assert await year(specialty="Cardiology Rpt") == 1
    assert await year(specialty="No Such Specialty") == 0


async def test_an_empty_period_is_zeros(api) -> None:
    cohort = Cohort(api)
    report = await cohort.report("lfd-dashboard", period="2019-20")
    for table in report["tables"]:
        for row in table["rows"]:
            for column in table["columns"]:
                value = row[column["key"]]
                if column["kind"] == "int":
                    assert value == 0, (table["key"], column["key"])
                elif column["kind"] == "percent":
                    assert value is None, (table["key"], column["key"])
    assert len(report["tables"][0]["rows"]) == 14


async def test_the_discharged_within_30_days_setting_widens_scope(api, app_factory) -> None:
    cohort = Cohort(api)
    await cohort.death(at("2025-06-01T10:00"), place="home", discharged_days_before=10)
    await cohort.death(at("2025-06-02T10:00"), place="home", discharged_days_before=45)
    await cohort.death(at("2025-06-03T10:00"), place="hospice")
    await cohort.death(at("2025-06-04T10:00"), place="emergency_department")

    async def june(client: Any) -> int:
        response = await client.get(
            "/v1/reports/lfd-dashboard",
            params={"period": FY, "site": cohort.site},
            headers=api.headers,
        )
        assert response.status_code == 200, response.text
        count: int = rows_by_period(response.json(), "deaths")["Jun 2025"]["all_deaths"]
        return count

    # By default, deaths in hospital (inpatient and emergency department) only.
    assert await june(api.http) == 1
    # With the SHMI-style cohort, also the home death 10 days after discharge (not 45).
    _, wider = await app_factory(report_include_discharged_within_30_days=True)
    assert await june(wider) == 2
    _, places = await app_factory(report_in_scope_places=["inpatient", "hospice"])
    assert await june(places) == 1


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [(1, 8, 12.5), (1, 16, 6.3), (2, 3, 66.7), (1, 3, 33.3), (3, 40, 7.5), (0, 0, None)],
)
def test_percent_rounds_half_up_to_one_place(part: int, whole: int, expected: float) -> None:
    # 1/16 = 6.25 rounds up to 6.3 (banker's rounding would give 6.2).
    assert percent(part, whole) == expected


async def test_bad_periods_and_filters_are_400(api) -> None:
    for params in (
        {"period": "2025"},
        {"period": "2025-27"},
        {"period": "2025-13"},
        {"start": "2025-04-01", "end": "2025-06-30"},
        {"start": "2025-04-01"},
        {"period": FY, "start": "2025-04-01", "end": "2025-06-30"},
        {"route": "sjr"},
        {"organisation": "RX1"},
        {"age_band": "40-50"},
        {"format": "pdf"},
        {"table": "deaths"},
    ):
        response = await api.get("/v1/reports/lfd-dashboard", params=params)
        assert response.status_code in (400, 422), (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    route = await api.get("/v1/reports/lfd-dashboard", params={"route": "sjr"})
    assert route.status_code == 400
    assert "route" in route.json()["detail"]


async def test_scope_and_pseudonymised_clients(api, make_api) -> None:
    cohort = await build_cohort(api)
    no_scope = await make_api(Scope.deaths_read)
    response = await no_scope.get("/v1/reports/lfd-dashboard", params={"period": FY})
    assert response.status_code == 403
    full = await (await make_api(Scope.reports_read)).get(
        "/v1/reports/lfd-dashboard", params={"period": FY, "site": cohort.site}
    )
    pseudo = await (await make_api(Scope.reports_read, pseudonymised=True)).get(
        "/v1/reports/lfd-dashboard", params={"period": FY, "site": cohort.site}
    )
    assert full.status_code == pseudo.status_code == 200
    first, second = full.json(), pseudo.json()
    first.pop("generated_at"), second.pop("generated_at")
    assert first == second
