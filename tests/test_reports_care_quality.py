"""Care quality from the final SJR of each death, over a hand-built cohort at a site of its
own; every expected figure is worked out by hand in the docstring of `build_cohort`."""

from __future__ import annotations

from typing import Any

from app.auth.scopes import Scope
from tests.kit.cohorts import FY, Amend, Cohort, Post, build, died, sjr, table_rows


async def build_cohort(api: Any) -> Cohort:
    """P1 1 May 2025, 50, Medicine X: SJR overall 4, admission 4, ongoing 3.
    P2 2 May, 70, Medicine X: stage 1 overall 2 (admission 2), so a stage 2: overall 3,
       admission 3, end of life 5. The stage 2 is final; stage 1's ratings do not count.
    P3 1 Jun, 85, Surgery Y: SJR overall 5 (admission 5), amended to overall 1 (admission 2).
    P4 2 Jun, 80, Surgery Y: referred for SJR, not reviewed.
    P5 3 Jun, 80: referred, a draft SJR only (not reviewed).
    P6 1 Jul, 80: not referred.
    P7 2 Jul at home (not in scope): SJR overall 1. Counted nowhere.

    So: 6 deaths, 5 referred, 3 reviewed, 3 rated, 2 awaiting. Overall ratings 1, 3, 4:
    adequate or better 2 of 3 (66.7%), good or excellent 1 (33.3%), poor or very poor 1 (33.3%).
    """
    return await build(
        api,
        [
            died(
                "2025-05-01T12:00",
                Post("sjr", sjr(6, 4, phases={"admission_initial": 4, "ongoing": 3})),
                unexpected=True,
                age=50,
                specialty="Med X",
            ),
            died(
                "2025-05-02T12:00",
                Post("sjr", sjr(5, 2, phases={"admission_initial": 2}), stage=1),
                Post(
                    "sjr",
                    sjr(5, 3, "Dr Stage Two", phases={"admission_initial": 3, "end_of_life": 5}),
                    stage=2,
                ),
                unexpected=True,
                age=70,
                specialty="Med X",
            ),
            died(
                "2025-06-01T12:00",
                Post("sjr", sjr(6, 5, phases={"admission_initial": 5}), stage=1),
                Amend(0, sjr(6, 1, phases={"admission_initial": 2})),
                unexpected=True,
                age=85,
                specialty="Surg Y",
            ),
            died("2025-06-02T12:00", unexpected=True, age=80, specialty="Surg Y"),
            died("2025-06-03T12:00", Post("sjr", sjr(6, 4), submit=False), unexpected=True),
            died("2025-07-01T12:00"),
            died(
                "2025-07-02T12:00",
                Post("sjr", sjr(6, 1), stage=1),
                unexpected=True,
                place="home",
            ),
        ],
    )


def shares(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["rated"],
        *(row[f"rating_{r}"] for r in range(1, 6)),
        row["adequate_or_better"],
        row["adequate_or_better_pct"],
        row["good_or_excellent"],
        row["good_or_excellent_pct"],
        row["poor_or_very_poor"],
        row["poor_or_very_poor_pct"],
    )


async def test_care_quality_of_a_hand_built_cohort(api) -> None:
    cohort = await build_cohort(api)
    report = await cohort.report("care-quality", period=FY)
    assert report["filters"]["by"] == "month"

    (summary,) = table_rows(report, "summary")
    assert summary == {
        "deaths": 6,
        "referred": 5,
        "reviewed": 3,
        "rated": 3,
        "awaiting_review": 2,
        "reviewed_pct": 60.0,
    }

    overall = {row["rating"]: row for row in table_rows(report, "overall")}
    assert [overall[r]["deaths"] for r in range(1, 6)] == [1, 0, 1, 1, 0]
    assert [overall[r]["deaths_pct"] for r in range(1, 6)] == [33.3, 0.0, 33.3, 33.3, 0.0]
    assert overall[1]["label"] == "Very poor care"
    assert overall[5]["label"] == "Excellent care"

    # The three shares as numbers (issue 17), not only the note's prose.
    assert table_rows(report, "shares") == [
        {
            "rated": 3,
            "adequate_or_better": 2,
            "adequate_or_better_pct": 66.7,
            "good_or_excellent": 1,
            "good_or_excellent_pct": 33.3,
            "poor_or_very_poor": 1,
            "poor_or_very_poor_pct": 33.3,
        }
    ]
    csv = await cohort.api.get(
        "/v1/reports/care-quality",
        params={"period": FY, "site": cohort.site, "format": "csv", "table": "shares"},
    )
    assert csv.text.splitlines()[1] == "3,2,66.7,1,33.3,1,33.3"

    phases = {row["phase"]: row for row in table_rows(report, "phases")}
    # Final reviews only: P1 4, P2 (stage 2) 3, P3 (amended) 2.
    assert shares(phases["admission initial"]) == (3, 0, 1, 1, 1, 0, 2, 66.7, 1, 33.3, 1, 33.3)
    assert shares(phases["ongoing"]) == (1, 0, 0, 1, 0, 0, 1, 100.0, 0, 0.0, 0, 0.0)
    assert shares(phases["end of life"]) == (1, 0, 0, 0, 0, 1, 1, 100.0, 1, 100.0, 0, 0.0)
    assert shares(phases["pre admission"]) == (0, 0, 0, 0, 0, 0, 0, None, 0, None, 0, None)
    assert "overall" not in phases

    months = {row["month"]: row for row in table_rows(report, "by_month")}
    assert len(months) == 12
    assert shares(months["2025-05"]) == (2, 0, 0, 1, 1, 0, 2, 100.0, 1, 50.0, 0, 0.0)
    assert shares(months["2025-06"]) == (1, 1, 0, 0, 0, 0, 0, 0.0, 0, 0.0, 1, 100.0)
    assert months["2025-07"]["rated"] == 0


async def test_grouped_by_specialty_site_and_age_band(api) -> None:
    cohort = await build_cohort(api)
    by_specialty = await cohort.report("care-quality", period=FY, by="specialty")
    rows = table_rows(by_specialty, "by_specialty")
    assert [row["specialty"] for row in rows] == ["Med X", "Surg Y"]
    assert shares(rows[0]) == (2, 0, 0, 1, 1, 0, 2, 100.0, 1, 50.0, 0, 0.0)
    assert shares(rows[1]) == (1, 1, 0, 0, 0, 0, 0, 0.0, 0, 0.0, 1, 100.0)

    by_site = await cohort.report("care-quality", period=FY, by="site")
    (site,) = table_rows(by_site, "by_site")
    assert site["site"] == cohort.site and site["rated"] == 3

    by_age = await cohort.report("care-quality", period=FY, by="age_band")
    bands = {row["age_band"]: row["rated"] for row in table_rows(by_age, "by_age_band")}
    assert bands == {"under 65": 1, "65-80": 1, "over 80": 1}

    # Filtered to 65-80 (80 included): P2 (70), P4, P5 and P6 (80).
    filtered = await cohort.report("care-quality", period=FY, age_band="65-80")
    (summary,) = table_rows(filtered, "summary")
    assert (summary["deaths"], summary["referred"], summary["reviewed"]) == (4, 3, 1)


async def test_a_custom_range_and_an_empty_period(api) -> None:
    cohort = await build_cohort(api)
    june = await cohort.report("care-quality", start="2025-06-01", end="2025-06-30")
    (summary,) = table_rows(june, "summary")
    assert (summary["deaths"], summary["referred"], summary["reviewed"]) == (3, 3, 1)
    assert [row["month"] for row in table_rows(june, "by_month")] == ["2025-06"]

    empty = await cohort.report("care-quality", period="2019-20")
    (summary,) = table_rows(empty, "summary")
    assert summary == {
        "deaths": 0,
        "referred": 0,
        "reviewed": 0,
        "rated": 0,
        "awaiting_review": 0,
        "reviewed_pct": None,
    }
    assert all(row["deaths_pct"] is None for row in table_rows(empty, "overall"))


async def test_care_quality_refusals_scope_and_pseudonymised(api, make_api) -> None:
    for params in ({"route": "sjr"}, {"organisation": "RX1"}, {"by": "ward"}):
        response = await api.get("/v1/reports/care-quality", params=params)
        assert response.status_code in (400, 422), params
    assert (await api.get("/v1/reports/care-quality", params={"route": "sjr"})).status_code == 400

    forbidden = await (await make_api(Scope.findings_read)).get("/v1/reports/care-quality")
    assert forbidden.status_code == 403

    cohort = await build_cohort(api)
    params = {"period": FY, "site": cohort.site, "by": "specialty"}
    full = await (await make_api(Scope.reports_read)).get("/v1/reports/care-quality", params=params)
    pseudo = await (await make_api(Scope.reports_read, pseudonymised=True)).get(
        "/v1/reports/care-quality", params=params
    )
    assert full.status_code == pseudo.status_code == 200
    first, second = full.json(), pseudo.json()
    first.pop("generated_at"), second.pop("generated_at")
    assert first == second
