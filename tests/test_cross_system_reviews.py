"""Cross-system SJR (issue 16, item 3): each phase rating and each problem in care names the
organisation that gave that care; the review shows it, the rows keep it, history bundles take
it, and the care-quality report breaks ratings and problems down by it. Every report figure is
worked out by hand in the docstring of `build_cohort`."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app.history.export import export_records
from app.models import ReviewPhaseRating, ReviewProblem
from tests.history_records import bundle, history_record, sjr_form, sjr_referral, utc
from tests.kit.care_organisations import Org, absent, add, practice_code, site_of, trust_code
from tests.kit.cohorts import FY, Post, build, died, table_rows
from tests.kit.reviews import refer

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
async def orgs(database) -> dict[str, Org]:
    """Named so that they sort: the acute trust, the practice, the community provider."""
    trust = await add(database, "trust", "Alpha Acute NHS Trust", trust_code)
    practice = await add(database, "gp_practice", "Beta Surgery", practice_code)
    community = await add(database, "community_provider", "Gamma Community Health", trust_code)
    return {"trust": trust, "practice": practice, "community": community}


Phase = tuple[str, int, Org | None]
Problem = tuple[str, str, str, Org | None]


def sjr(
    overall: int,
    phases: list[Phase],
    problems: list[Problem] = (),  # type: ignore[assignment]
    reviewer: str = "Dr Stage One",
    overall_by: Org | None = None,
    by_id: bool = False,
) -> dict[str, Any]:
    """A complete SJR, not avoidable, each phase and problem naming its organisation of care
    (by ODS code, or by registry id with ``by_id``)."""

    def named(org: Org | None) -> dict[str, str]:
        if org is None:
            return {}
        return {"care_organisation": str(org.id) if by_id else str(org.ods_code).lower()}

    return {
        "instrument": "sjr",
        "reviewer": {"name": reviewer},
        "phases": [
            *({"phase": p, "rating": r, "narrative": "Seen.", **named(o)} for p, r, o in phases),
            {"phase": "overall", "rating": overall, "narrative": "Overall.", **named(overall_by)},
        ],
        "quality_of_records": 4,
        "avoidability": 6,
        "problems_in_care": [
            {"type": t, "phase": p, "harm": h, **named(o)} for t, p, h, o in problems
        ],
        "patient_safety_incident_suspected": False,
    }


async def test_a_review_names_the_organisation_of_each_phase_and_problem(api, database, orgs):
    trust, practice = orgs["trust"], orgs["practice"]
    death, referral = await refer(api, "sjr")
    body = sjr(
        4,
        [("pre_admission", 3, practice), ("admission_initial", 4, trust), ("ongoing", 4, None)],
        [("assessment", "pre_admission", "no", practice)],
        by_id=True,
    )
    posted = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": body})
    assert posted.status_code == 201, posted.text
    review = posted.json()
    phases = review["review"]["phases"]
    assert [p.get("care_organisation") for p in phases] == [practice.ref(), trust.ref(), None, None]
    assert "care_organisation" not in phases[2]  # none named: the stored form has no key
    assert review["review"]["problems_in_care"][0]["care_organisation"] == practice.ref()
    read = (await api.get(f"/v1/reviews/{review['id']}")).json()
    assert read["review"] == review["review"]
    case = (await api.get(f"/v1/deaths/{death['id']}")).json()
    assert case["reviews"][0]["review"]["phases"][1]["care_organisation"] == trust.ref()
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(ReviewPhaseRating.phase, ReviewPhaseRating.care_organisation_id).where(
                    ReviewPhaseRating.review_id == uuid.UUID(review["id"])
                )
            )
        ).all()
        problems = (
            await session.scalars(
                select(ReviewProblem.care_organisation_id).where(
                    ReviewProblem.review_id == uuid.UUID(review["id"])
                )
            )
        ).all()
    assert dict(rows) == {
        "pre_admission": practice.id,
        "admission_initial": trust.id,
        "ongoing": None,
        "overall": None,
    }
    assert list(problems) == [practice.id]

    # Amended: the admission was the community provider's; the old version is kept.
    changed = sjr(4, [("admission_initial", 4, orgs["community"])])
    amended = await api.put(
        f"/v1/reviews/{review['id']}",
        json={"review": changed},
        headers={"If-Match": posted.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["review"]["phases"][0]["care_organisation"] == orgs["community"].ref()
    (earlier,) = (await api.get(f"/v1/reviews/{review['id']}/history")).json()
    assert earlier["snapshot"]["review"]["phases"][0]["care_organisation"] == practice.ref()


async def test_an_organisation_the_registry_lacks_is_a_422_with_its_pointer(api, database, orgs):
    _, referral = await refer(api, "sjr")
    body = sjr(4, [("admission_initial", 4, orgs["trust"])])
    # Overall: a code of an ODS form that the registry lacks.
    body["phases"][1]["care_organisation"] = await absent(database)
    body["problems_in_care"] = [
        {
            "type": "monitoring",
            "phase": "ongoing",
            "harm": "no",
            "care_organisation": str(uuid.uuid4()),
        }
    ]
    refused = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": body})
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert sorted(e["pointer"] for e in errors) == [
        "/review/phases/1/care_organisation",
        "/review/problems_in_care/0/care_organisation",
    ]
    assert all("lfd organisations load" in e["detail"] for e in errors)
    body["phases"][1]["care_organisation"] = "St Elsewhere"  # neither a code nor an id
    malformed = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": body})
    assert malformed.status_code == 422
    assert "/review/phases/1/care_organisation" in [
        e["pointer"] for e in malformed.json()["errors"]
    ]
    # Nothing was recorded: the referral still waits for its review.
    still = (await api.get(f"/v1/referrals/{referral['id']}")).json()
    assert still["status"] == "ready"


async def test_a_pseudonymised_client_sees_organisations_of_care_but_not_a_practice(
    api, make_api, orgs
):
    death, referral = await refer(api, "sjr")
    body = sjr(
        3,
        [("pre_admission", 2, orgs["practice"]), ("admission_initial", 4, orgs["trust"])],
        [("assessment", "pre_admission", "probably", orgs["practice"])],
    )
    posted = await api.post(f"/v1/referrals/{referral['id']}/review", json={"review": body})
    assert posted.status_code == 201, posted.text
    commissioner = await make_api(pseudonymised=True)
    seen = (await commissioner.get(f"/v1/reviews/{posted.json()['id']}")).json()
    phases = seen["review"]["phases"]
    assert "care_organisation" not in phases[0]
    assert phases[1]["care_organisation"] == orgs["trust"].ref()
    assert "care_organisation" not in seen["review"]["problems_in_care"][0]
    assert orgs["practice"].name not in str(seen)
    case = (await commissioner.get(f"/v1/deaths/{death['id']}")).json()
    assert orgs["practice"].name not in str(case)


async def build_cohort(api: Any, orgs: dict[str, Org]) -> Any:
    """At a site of its own, in May-June 2025 (T the acute trust, P the practice, C the
    community provider; every death unexpected, so referred for SJR):

    D1: SJR overall 3: pre-admission 3 (P), admission 4 (T), ongoing 2 (T); problems:
        assessment before admission, no harm (P); monitoring, ongoing, probably harm (T).
    D2: stage 1 overall 2 (admission 1 (P); a problem, harm yes (P)): superseded by its stage 2,
        overall 4: admission 5 (T), discharge 4 (none named); a treatment problem at
        discharge, harm yes (none named).
    D3: SJR overall 5 named (T) (overall is not counted by organisation): pre-admission 2 (C),
        end of life 5 (T); problems: other before admission, no harm (C); medication at the end
        of life, probably harm (T).
    D4: referred, not reviewed.

    Phase ratings by organisation of care (final SJRs, overall aside):
      T: D1 4, D1 2, D2 5, D3 5: rated 4 ({2: 1, 4: 1, 5: 2}), 3 deaths; adequate or better 3
         (75.0%), good or excellent 3 (75.0%), poor 1 (25.0%).
      P: D1 3: rated 1, 1 death; adequate 1 (100.0%), good 0 (0.0%), poor 0 (0.0%). (D2's
         stage 1 rating of 1 is not final.)
      C: D3 2: rated 1, 1 death; adequate 0 (0.0%), good 0 (0.0%), poor 1 (100.0%).
      (not recorded): D2 4: rated 1, 1 death; adequate 1, good 1 (100.0%), poor 0.
    Problems by organisation of care:
      T: 2 problems (D1, D3), 2 deaths, harm probably 2. P: 1 (D1), no harm. C: 1 (D3), no
      harm. (not recorded): 1 (D2 stage 2), harm yes. D2's stage-1 problem is not counted.
    """
    t, p, c = orgs["trust"], orgs["practice"], orgs["community"]
    return await build(
        api,
        [
            died(
                "2025-05-01T12:00",
                Post(
                    "sjr",
                    sjr(
                        3,
                        [("pre_admission", 3, p), ("admission_initial", 4, t), ("ongoing", 2, t)],
                        [
                            ("assessment", "pre_admission", "no", p),
                            ("monitoring", "ongoing", "probably", t),
                        ],
                    ),
                ),
                unexpected=True,
            ),
            died(
                "2025-05-02T12:00",
                Post(
                    "sjr",
                    sjr(2, [("admission_initial", 1, p)], [("treatment", "ongoing", "yes", p)]),
                    stage=1,
                ),
                Post(
                    "sjr",
                    sjr(
                        4,
                        [("admission_initial", 5, t), ("discharge", 4, None)],
                        [("treatment", "discharge", "yes", None)],
                        reviewer="Dr Stage Two",
                    ),
                    stage=2,
                ),
                unexpected=True,
            ),
            died(
                "2025-06-01T12:00",
                Post(
                    "sjr",
                    sjr(
                        5,
                        [("pre_admission", 2, c), ("end_of_life", 5, t)],
                        [
                            ("other", "pre_admission", "no", c),
                            ("medication", "end_of_life", "probably", t),
                        ],
                        overall_by=t,
                    ),
                ),
                unexpected=True,
            ),
            died("2025-06-02T12:00", unexpected=True),
        ],
    )


def distribution(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["deaths"],
        row["rated"],
        *(row[f"rating_{r}"] for r in range(1, 6)),
        row["adequate_or_better"],
        row["adequate_or_better_pct"],
        row["good_or_excellent"],
        row["good_or_excellent_pct"],
        row["poor_or_very_poor"],
        row["poor_or_very_poor_pct"],
    )


async def test_care_quality_by_organisation_of_care(api, orgs):
    cohort = await build_cohort(api, orgs)
    report = await cohort.report("care-quality", period=FY, by="care_organisation")
    assert report["filters"]["by"] == "care_organisation"
    assert [t["key"] for t in report["tables"]] == [
        "summary",
        "overall",
        "shares",
        "phases",
        "by_care_organisation",
        "problems_by_care_organisation",
    ]
    (summary,) = table_rows(report, "summary")
    assert (summary["deaths"], summary["referred"], summary["reviewed"], summary["rated"]) == (
        4,
        4,
        3,
        3,
    )
    t, p, c = orgs["trust"], orgs["practice"], orgs["community"]
    ratings = table_rows(report, "by_care_organisation")
    assert [(r["care_organisation"], r["ods_code"]) for r in ratings] == [
        (t.name, t.ods_code),
        (p.name, p.ods_code),
        (c.name, c.ods_code),
        ("(not recorded)", None),
    ]
    assert [distribution(r) for r in ratings] == [
        (3, 4, 0, 1, 0, 1, 2, 3, 75.0, 3, 75.0, 1, 25.0),
        (1, 1, 0, 0, 1, 0, 0, 1, 100.0, 0, 0.0, 0, 0.0),
        (1, 1, 0, 1, 0, 0, 0, 0, 0.0, 0, 0.0, 1, 100.0),
        (1, 1, 0, 0, 0, 1, 0, 1, 100.0, 1, 100.0, 0, 0.0),
    ]
    problems = table_rows(report, "problems_by_care_organisation")
    assert [
        (
            r["care_organisation"],
            r["deaths"],
            r["problems"],
            r["harm_no"],
            r["harm_probably"],
            r["harm_yes"],
        )
        for r in problems
    ] == [
        (t.name, 2, 2, 0, 2, 0),
        (p.name, 1, 1, 1, 0, 0),
        (c.name, 1, 1, 1, 0, 0),
        ("(not recorded)", 1, 1, 0, 0, 1),
    ]
    # The other groupings are unchanged: by month, the organisation tables are not there.
    by_month = await cohort.report("care-quality", period=FY)
    assert [t["key"] for t in by_month["tables"]][-1] == "by_month"

    # The same figures as CSV, XLSX and HTML.
    csv_one = await api.get(
        "/v1/reports/care-quality",
        params={
            "period": FY,
            "site": cohort.site,
            "by": "care_organisation",
            "format": "csv",
            "table": "by_care_organisation",
        },
    )
    assert csv_one.status_code == 200
    lines = list(csv.reader(io.StringIO(csv_one.text)))
    assert lines[0][:4] == ["Organisation of care", "ODS code", "Deaths", "Rated"]
    assert [line[0] for line in lines[1:]] == [t.name, p.name, c.name, "(not recorded)"]
    assert lines[1][2:4] == ["3", "4"]
    xlsx = await api.get(
        "/v1/reports/care-quality",
        params={"period": FY, "site": cohort.site, "by": "care_organisation", "format": "xlsx"},
    )
    workbook = load_workbook(io.BytesIO(xlsx.content))
    sheet = workbook.worksheets[-1]
    assert sheet.title == "Problems in care by organisatio"  # 31 characters
    assert [sheet.cell(row, 1).value for row in range(3, 7)] == [
        t.name,
        p.name,
        c.name,
        "(not recorded)",
    ]
    assert [sheet.cell(row, 4).value for row in range(3, 7)] == [2, 1, 1, 1]
    page = await api.get(
        "/v1/reports/care-quality",
        params={"period": FY, "site": cohort.site, "by": "care_organisation", "format": "html"},
    )
    assert "Care rating by organisation of care" in page.text and t.name in page.text


async def run_import(api: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = await api.post("/v1/history/imports", content=bundle(records), headers=NDJSON)
    assert response.status_code == 202, response.text
    for _ in range(2000):
        job: dict[str, Any] = (await api.get(response.headers["Location"])).json()
        if job["status"] in {"completed", "refused", "failed"}:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the import did not finish")


async def test_a_history_bundle_names_organisations_of_care_and_the_site(api, database, orgs):
    trust, practice = orgs["trust"], orgs["practice"]
    site = await site_of(database, trust)
    system = f"hist-{uuid.uuid4().hex[:8]}"
    moment = utc(2019, 3, 4, 10, 0)
    form = sjr_form(overall=3)
    form["phases"][0]["care_organisation"] = trust.ods_code
    form["problems_in_care"][0]["care_organisation"] = str(practice.id)
    good = history_record(
        moment,
        system=system,
        death={
            "site_ods_code": site.ods_code,
            "registered_gp_practice_ods_code": practice.ods_code,
        },
        screening={"death_expected": False},
        referrals=[
            sjr_referral(moment + timedelta(days=2), moment + timedelta(days=30), form=form)
        ],
    )
    unknown_form = sjr_form(overall=3)
    unknown_form["problems_in_care"][0]["care_organisation"] = await absent(database)
    unknown = history_record(
        moment,
        system=system,
        death={"site_ods_code": await absent(database)},
        screening={"death_expected": False},
        referrals=[
            sjr_referral(moment + timedelta(days=2), moment + timedelta(days=30), form=unknown_form)
        ],
    )
    job = await run_import(api, [good, unknown])
    assert (job["created"], job["refused"]) == (1, 1), job
    (problem,) = job["problems"]
    assert sorted(e["pointer"] for e in problem["errors"]) == [
        "/death/site_ods_code",
        "/referrals/0/review/form/problems_in_care/0/care_organisation",
    ]
    listed = await api.get(
        "/v1/deaths", params={"source_reference": good["death"]["source_reference"]}
    )
    (death,) = listed.json()["items"]
    assert (death["site_organisation"], death["gp_practice"]) == (site.ref(), practice.ref())
    case = (await api.get(f"/v1/deaths/{death['id']}")).json()
    (review,) = case["reviews"]
    assert review["review"]["phases"][0]["care_organisation"] == trust.ref()
    assert review["review"]["problems_in_care"][0]["care_organisation"] == practice.ref()
    async with database.transaction() as session:
        rows = (
            await session.scalars(
                select(ReviewPhaseRating.care_organisation_id).where(
                    ReviewPhaseRating.review_id == uuid.UUID(review["id"])
                )
            )
        ).all()
    assert sorted(map(str, rows)) == sorted([str(trust.id), "None"])
    # The export (`lfd history export`) writes the codes back as the bundle gave them.
    async with database.transaction() as session:
        records = [
            record
            async for page in export_records(session, moment.date(), moment.date())
            for record in page.records
            if record["death"]["source_reference"] == good["death"]["source_reference"]
        ]
    (exported,) = records
    assert exported["death"]["site_ods_code"] == site.ods_code
    assert exported["death"]["registered_gp_practice_ods_code"] == practice.ods_code
    exported_form = exported["referrals"][0]["review"]["form"]
    assert exported_form["phases"][0]["care_organisation"] == trust.ods_code
    # And the same bundle again changes nothing.
    again = await run_import(api, [good])
    assert (again["created"], again["unchanged"]) == (0, 1), again
