"""Which SJR is a death's final one, as the dashboard (which ranks the SJRs in the same pass as
its other review figures) and care quality (which ranks them once for the ratings and the phase
counts) both decide it. Expected figures worked out by hand in `build_cohort`."""

from __future__ import annotations

from typing import Any

from tests.kit.cohorts import FY, Amend, Cohort, Post, build, died, rows_by_period, sjr, table_rows


async def build_cohort(api: Any) -> Cohort:
    """Q 10 Apr 2025: stage 1 avoidability 2, overall 2, admission 2 (so a stage 2), the stage
      2 saved as a draft (avoidability 6, overall 5): a draft never counts, so stage 1 is
      final: avoidable (score 2), rated 2, admission rated 2.
    S 11 Apr: stage 1 avoidability 3, overall 2 (so a stage 2); stage 2 avoidability 5,
      overall 3, admission 3; then stage 1 amended (avoidability 4, overall 1, admission 1),
      so stage 1 is the review changed last: the higher stage still wins, so stage 2 is
      final: score 5, not avoidable, rated 3, admission rated 3.
    T 12 Apr: a stage-1 SJR saved as a draft only: not reviewed, not rated, referred.

    Dashboard, April and the year: deaths 3, reviewed 2, avoidable 1 (score 2 one, score 5
    one), investigated 0 (no stage 2 judged the death avoidable).
    Care quality: deaths 3, referred 3, reviewed 2, rated 2 (ratings 2 and 3), awaiting 1;
    admission phase rated 2 (ratings 2 and 3).
    """
    return await build(
        api,
        [
            died(
                "2025-04-10T12:00",
                Post("sjr", sjr(2, 2, phases={"admission_initial": 2}), stage=1),
                Post("sjr", sjr(6, 5, "Dr Stage Two"), stage=2, submit=False),
                unexpected=True,
            ),
            died(
                "2025-04-11T12:00",
                Post("sjr", sjr(3, 2, phases={"admission_initial": 2}), stage=1),
                Post("sjr", sjr(5, 3, "Dr Stage Two", phases={"admission_initial": 3}), stage=2),
                Amend(0, sjr(4, 1, phases={"admission_initial": 1})),
                unexpected=True,
            ),
            died(
                "2025-04-12T12:00",
                Post("sjr", sjr(6, 4), stage=1, submit=False),
                unexpected=True,
            ),
        ],
    )


async def test_the_final_sjr_is_the_highest_stage_submitted(api) -> None:
    cohort = await build_cohort(api)

    dashboard = await cohort.report("lfd-dashboard", period=FY)
    deaths = rows_by_period(dashboard, "deaths")
    scores = rows_by_period(dashboard, "avoidability")
    for period in ("Apr 2025", "Year to date"):
        row = deaths[period]
        assert (row["deaths"], row["reviewed"], row["investigated"], row["avoidable"]) == (
            3,
            2,
            0,
            1,
        ), period
        assert [scores[period][f"score_{n}"] for n in range(1, 7)] == [0, 1, 0, 0, 1, 0]
        assert row["avoidable_pct"] == 50.0
    assert deaths["May 2025"]["deaths"] == 0

    care = await cohort.report("care-quality", period=FY)
    (summary,) = table_rows(care, "summary")
    assert summary == {
        "deaths": 3,
        "referred": 3,
        "reviewed": 2,
        "rated": 2,
        "awaiting_review": 1,
        "reviewed_pct": 66.7,
    }
    overall = {row["rating"]: row["deaths"] for row in table_rows(care, "overall")}
    assert overall == {1: 0, 2: 1, 3: 1, 4: 0, 5: 0}
    phases = {row["phase"]: row for row in table_rows(care, "phases")}
    admission = phases["admission initial"]
    assert [admission[f"rating_{r}"] for r in range(1, 6)] == [0, 1, 1, 0, 0]
    assert phases["ongoing"]["rated"] == 0
    (april,) = [row for row in table_rows(care, "by_month") if row["month"] == "2025-04"]
    assert (april["rated"], april["rating_2"], april["rating_3"]) == (2, 1, 1)
