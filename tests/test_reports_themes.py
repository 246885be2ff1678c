"""The themes report (GET /v1/reports/themes) on a hand-built cohort at a site of its own:
findings by theme and kind for the deaths of a month (UK local dates, so a death at 00:30 BST
on 1 May is May's), retired themes still reported, the route, specialty and site filters, a
second period side by side (new, persisting, fell away), empty periods, CSV and XLSX, the same
answer for a pseudonymised client, and the 400s."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

from openpyxl import load_workbook

from app.auth.scopes import Scope
from app.kit.time import local_date, now
from tests.conftest import Api
from tests.factories import record_unexpected
from tests.kit.cohorts import fetch_report
from tests.kit.cohorts import table_rows as rows
from tests.kit.reviews import brief_sjr, review_route

PROBLEM_JSON = "application/problem+json"


def new_site() -> str:
    return f"Themes site {uuid.uuid4().hex[:10]}"


async def screened(
    api: Api, site: str, died_at: datetime, specialty: str = "General Medicine"
) -> dict[str, Any]:
    """An unexpected death (so an SJR referral; General Surgery adds an M&M)."""
    return await record_unexpected(api, specialty, death={"site": site}, died_at=died_at)


async def reviewed(api: Api, recorded: dict[str, Any], route: str) -> str:
    """Submit the death's review on `route`; its id."""
    posted = await review_route(api, recorded, route, brief_sjr("Dr Theme", 4, "Good."))
    review_id: str = posted["id"]
    return review_id


async def finding(
    api: Api, recorded: dict[str, Any], theme: str, kind: str, review_id: str | None = None
) -> None:
    body: dict[str, Any] = {
        "death_id": recorded["death_id"],
        "kind": kind,
        "theme_code": theme,
        "description": "Learning from the review.",
    }
    if review_id:
        body["review_id"] = review_id
    response = await api.post("/v1/findings", json=body)
    assert response.status_code == 201, response.text


async def themes_report(api: Api, **params: Any) -> dict[str, Any]:
    return await fetch_report(api, "themes", **params)


class Built:
    """May 2025 and April 2025 at one site, with a theme of its own that is then retired:

    - A, 10 May, SJR: sepsis problem in care, sepsis learning point, frailty good practice
    - B, 20 May, General Surgery, M&M review: sepsis problem in care, own theme concern
    - C, 30 April 23:30 UTC = 1 May 00:30 BST (May): frailty problem in care (no review)
    - D, 31 May 23:30 UTC = 1 June 00:30 BST (June): sepsis good practice
    - E, 15 April: frailty problem in care, discharge concern
    """

    site: str
    theme_code: str
    theme_name: str


async def build(make_api: Any) -> Built:
    admin = await make_api(Scope.admin)
    built = Built()
    built.site = new_site()
    built.theme_name = f"Oxygen therapy {uuid.uuid4().hex[:8]}"
    created = await admin.post("/v1/themes", json={"name": built.theme_name})
    assert created.status_code == 201, created.text
    built.theme_code = created.json()["code"]

    a = await screened(admin, built.site, datetime(2025, 5, 10, 10, tzinfo=UTC))
    a_review = await reviewed(admin, a, "sjr")
    await finding(admin, a, "sepsis", "problem_in_care", a_review)
    await finding(admin, a, "sepsis", "learning_point", a_review)
    await finding(admin, a, "frailty", "good_practice", a_review)

    b = await screened(
        admin, built.site, datetime(2025, 5, 20, 10, tzinfo=UTC), specialty="General Surgery"
    )
    b_review = await reviewed(admin, b, "mm")
    await finding(admin, b, "sepsis", "problem_in_care", b_review)
    await finding(admin, b, built.theme_code, "concern", b_review)

    c = await screened(admin, built.site, datetime(2025, 4, 30, 23, 30, tzinfo=UTC))
    await finding(admin, c, "frailty", "problem_in_care")
    d = await screened(admin, built.site, datetime(2025, 5, 31, 23, 30, tzinfo=UTC))
    await finding(admin, d, "sepsis", "good_practice")
    e = await screened(admin, built.site, datetime(2025, 4, 15, 10, tzinfo=UTC))
    await finding(admin, e, "frailty", "problem_in_care")
    await finding(admin, e, "discharge", "concern")

    # Retire the site's theme after its finding: it is still reported.
    url = f"/v1/themes/{created.json()['id']}"
    retired = await admin.patch(
        url, json={"retired": True}, headers={"If-Match": created.headers["ETag"]}
    )
    assert retired.status_code == 200, retired.text
    return built


def theme_row(theme: str, code: str, findings: int, deaths: int, **kinds: int) -> dict[str, Any]:
    counts = {"problem_in_care": 0, "good_practice": 0, "learning_point": 0, "concern": 0}
    counts.update(kinds)
    return {
        "theme": theme,
        "code": code,
        "retired_on": None,
        "findings": findings,
        "deaths": deaths,
        **counts,
    }


async def test_findings_by_theme_and_kind_for_the_deaths_of_a_month(make_api) -> None:
    built = await build(make_api)
    reader = await make_api(Scope.reports_read)
    report = await themes_report(reader, period="2025-05", site=built.site)
    assert report["period"]["label"] == "May 2025"
    assert report["filters"]["site"] == built.site and report["filters"]["compare"] is None

    retired = theme_row(built.theme_name, built.theme_code, 1, 1, concern=1)
    retired["retired_on"] = local_date(now()).isoformat()
    # Sepsis: A twice, B once (D died in June). Frailty: A and C (C's 00:30 BST on 1 May).
    assert rows(report, "themes") == [
        theme_row("Sepsis", "sepsis", 3, 2, problem_in_care=2, learning_point=1),
        theme_row("Frailty", "frailty", 2, 2, problem_in_care=1, good_practice=1),
        retired,
    ]
    assert rows(report, "kinds") == [
        {"kind": "Problems in care", "findings": 3, "deaths": 3},
        {"kind": "Good practice", "findings": 1, "deaths": 1},
        {"kind": "Learning points", "findings": 1, "deaths": 1},
        {"kind": "Concerns", "findings": 1, "deaths": 1},
        {"kind": "All kinds", "findings": 6, "deaths": 3},
    ]
    assert [t["key"] for t in report["tables"]] == ["themes", "kinds"]

    # June has D only; April has E only.
    june = await themes_report(reader, period="2025-06", site=built.site)
    assert rows(june, "themes") == [theme_row("Sepsis", "sepsis", 1, 1, good_practice=1)]

    # The route of the review that found it: the M&M found B's two.
    mm = await themes_report(reader, period="2025-05", site=built.site, route="mm")
    # (ties by name: "Oxygen therapy ..." before "Sepsis")
    assert rows(mm, "themes") == [retired, theme_row("Sepsis", "sepsis", 1, 1, problem_in_care=1)]
    assert rows(mm, "kinds")[-1] == {"kind": "All kinds", "findings": 2, "deaths": 1}

    surgery = await themes_report(
        reader, period="2025-05", site=built.site, specialty="General Surgery"
    )
    assert [r["findings"] for r in rows(surgery, "themes")] == [1, 1]
    # Every death here was 80: "65-80" keeps them all (80 included), "under 65" none.
    banded = await themes_report(reader, period="2025-05", site=built.site, age_band="65-80")
    assert rows(banded, "themes") == rows(report, "themes")
    young = await themes_report(reader, period="2025-05", site=built.site, age_band="under 65")
    assert rows(young, "themes") == []
    # Any range: 1 May to 1 June takes D too.
    ranged = await themes_report(reader, start="2025-05-01", end="2025-06-01", site=built.site)
    assert rows(ranged, "themes")[0] == theme_row(
        "Sepsis", "sepsis", 4, 3, problem_in_care=2, learning_point=1, good_practice=1
    )


async def test_two_periods_side_by_side(make_api) -> None:
    built = await build(make_api)
    reader = await make_api(Scope.reports_read)
    report = await themes_report(reader, period="2025-05", compare="2025-04", site=built.site)
    assert report["filters"]["compare"] == "April 2025"
    (table,) = [t for t in report["tables"] if t["key"] == "comparison"]
    assert [c["label"] for c in table["columns"]][3:5] == [
        "Findings May 2025",
        "Findings April 2025",
    ]

    def compared(theme: str, now_: int, then: int, deaths: int, then_deaths: int, status: str):
        return (theme, now_, then, now_ - then, deaths, then_deaths, status)

    got = [
        (
            r["theme"],
            r["findings"],
            r["compare_findings"],
            r["change"],
            r["deaths"],
            r["compare_deaths"],
            r["status"],
        )
        for r in table["rows"]
    ]
    # April: E (frailty, discharge). C died at 00:30 BST on 1 May: May's, not April's.
    assert got == [
        compared("Sepsis", 3, 0, 2, 0, "new"),
        compared(built.theme_name, 1, 0, 1, 0, "new"),
        compared("Frailty", 2, 1, 2, 1, "persisting"),
        compared("Discharge", 0, 1, 0, 1, "fell away"),
    ]

    # The same comparison by dates; overlapping periods count a finding in both.
    by_dates = await themes_report(
        reader,
        period="2025-05",
        compare_start="2025-04-01",
        compare_end="2025-05-10",
        site=built.site,
    )
    frailty = next(r for r in rows(by_dates, "comparison") if r["theme"] == "Frailty")
    # 1 April to 10 May holds E (15 April), C (1 May) and A (10 May).
    assert (frailty["findings"], frailty["compare_findings"]) == (2, 3)
    sepsis = next(r for r in rows(by_dates, "comparison") if r["theme"] == "Sepsis")
    assert (sepsis["findings"], sepsis["compare_findings"], sepsis["status"]) == (
        3,
        2,
        "persisting",
    )


async def test_an_empty_period_is_zeros(make_api) -> None:
    reader = await make_api(Scope.reports_read)
    report = await themes_report(reader, period="2019-05", compare="2019-04", site=new_site())
    assert rows(report, "themes") == []
    assert rows(report, "comparison") == []
    assert rows(report, "kinds")[-1] == {"kind": "All kinds", "findings": 0, "deaths": 0}
    assert all(r["findings"] == 0 and r["deaths"] == 0 for r in rows(report, "kinds"))


async def test_csv_xlsx_and_a_pseudonymised_client(make_api) -> None:
    built = await build(make_api)
    reader = await make_api(Scope.reports_read)
    params = {"period": "2025-05", "compare": "2025-04", "site": built.site}

    plain = await reader.get(
        "/v1/reports/themes", params={**params, "format": "csv", "table": "themes"}
    )
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(plain.text)))
    assert parsed[0][:5] == ["Theme", "Code", "Retired on", "Findings", "Deaths"]
    assert parsed[1][:5] == ["Sepsis", "sepsis", "", "3", "2"]
    assert len(parsed) == 4

    page = await reader.get("/v1/reports/themes", params={**params, "format": "html"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Themes, May 2025 against April 2025" in page.text

    xlsx = await reader.get("/v1/reports/themes", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert len(book.worksheets) == 3
    sheet = book.worksheets[2]
    values = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2, max_row=3)]
    assert values[0][0] == "Theme" and values[1][:4] == ["Sepsis", "sepsis", None, 3]

    # A commissioner's client gets exactly the same aggregates.
    commissioner = await make_api(Scope.reports_read, pseudonymised=True)
    mine = await themes_report(reader, **params)
    theirs = await themes_report(commissioner, **params)
    mine.pop("generated_at"), theirs.pop("generated_at")
    assert theirs == mine


async def test_bad_parameters_are_400(make_api) -> None:
    reader = await make_api(Scope.reports_read)
    for params in (
        {"organisation": "RR8"},
        {"compare": "2025-13"},
        {"compare": "2025-04", "compare_start": "2025-04-01", "compare_end": "2025-04-30"},
        {"compare_start": "2025-04-01"},
        {"compare_start": "2025-04-30", "compare_end": "2025-04-01"},
        {"period": "May"},
        {"age_band": "teenage"},
    ):
        response = await reader.get("/v1/reports/themes", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    # Without reports:read, 403.
    other = await make_api(Scope.findings_read)
    assert (await other.get("/v1/reports/themes")).status_code == 403
