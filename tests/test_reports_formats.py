"""Every report format carries the JSON's numbers: CSV (sections and one table) and XLSX read
back (openpyxl), HTML as a page; spreadsheet text never runs as a formula."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook

from tests.kit.cohorts import FY, Cohort, Post, build, died, sjr


async def small_cohort(api: Any, site: str | None = None) -> Cohort:
    """Three deaths in April 2025, two reviewed (avoidability 6 and 2), one in May: 2/3 and
    1/2 reviewed give 66.7% and 50.0%."""
    return await build(
        api,
        [
            died("2025-04-01T12:00", Post("sjr", sjr(6, 4), stage=1), unexpected=True),
            died("2025-04-02T12:00", Post("sjr", sjr(2, 2), stage=1), unexpected=True),
            died("2025-04-03T12:00", unexpected=True),
            died("2025-05-05T12:00"),
        ],
        site,
    )


async def get(api: Any, cohort: Cohort, name: str, **params: Any) -> Any:
    response = await api.get(
        f"/v1/reports/{name}", params={"period": FY, "site": cohort.site, **params}
    )
    assert response.status_code == 200, response.text
    return response


def cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


async def test_csv_sections_and_one_table_carry_the_json_numbers(api) -> None:
    cohort = await small_cohort(api)
    report = (await get(api, cohort, "lfd-dashboard")).json()
    deaths = report["tables"][0]
    april = deaths["rows"][0]
    assert (april["deaths"], april["reviewed"], april["reviewed_pct"]) == (3, 2, 66.7)

    one = await get(api, cohort, "lfd-dashboard", format="csv", table="deaths")
    assert one.headers["content-type"] == "text/csv; charset=utf-8"
    assert one.headers["content-disposition"] == (
        'attachment; filename="lfd-dashboard-2025-26.csv"'
    )
    rows = list(csv.reader(io.StringIO(one.text)))
    assert rows[0] == [column["label"] for column in deaths["columns"]]
    parsed = [
        dict(zip([c["key"] for c in deaths["columns"]], map(cell, r), strict=True))
        for r in rows[1:]
    ]
    assert parsed == deaths["rows"]
    assert parsed[0]["reviewed_pct"] == 66.7 and parsed[1]["reviewed_pct"] == 0.0

    whole = await get(api, cohort, "lfd-dashboard", format="csv")
    sections = whole.text.split("\r\n\r\n")
    assert len(sections) == len(report["tables"]) == 3
    for section, table in zip(sections, report["tables"], strict=True):
        lines = list(csv.reader(io.StringIO(section)))
        assert lines[0] == [f"{table['title']} (2025/26)"]
        assert lines[1] == [column["label"] for column in table["columns"]]
        assert len(lines) - 2 == len(table["rows"])


async def test_xlsx_sheets_carry_the_json_numbers_with_percent_cells(api) -> None:
    cohort = await small_cohort(api)
    report = (await get(api, cohort, "care-quality", by="specialty")).json()
    response = await get(api, cohort, "care-quality", by="specialty", format="xlsx")
    assert response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    workbook = load_workbook(io.BytesIO(response.content))
    assert len(workbook.sheetnames) == len(report["tables"])
    for sheet, table in zip(workbook.worksheets, report["tables"], strict=True):
        assert sheet.title == table["title"][:31]
        assert sheet["A1"].value == f"{table['title']} (2025/26)"
        header = [c.value for c in sheet[2]]
        assert header == [column["label"] for column in table["columns"]]
        assert sheet["A2"].font.bold
        assert sheet.freeze_panes == "A3"
        for index, row in enumerate(table["rows"], start=3):
            for position, column in enumerate(table["columns"], start=1):
                got = sheet.cell(index, position)
                want = row[column["key"]]
                if column["kind"] == "percent" and want is not None:
                    assert got.value == want / 100
                    assert got.number_format == "0.0%"
                else:
                    assert got.value == want, (table["key"], column["key"])
    summary = workbook.worksheets[0]
    # 4 deaths, the 3 unexpected referred, 2 reviewed and rated, 1 awaiting: 66.7% as 0.667.
    assert [c.value for c in summary[3]] == [4, 3, 2, 2, 1, 0.667]


async def test_formula_text_stays_text(api) -> None:
    cohort = await small_cohort(api, site='=HYPERLINK("http://x")')
    text = (await get(api, cohort, "care-quality", by="site", format="csv", table="by_site")).text
    assert "'=HYPERLINK" in text
    workbook = load_workbook(
        io.BytesIO((await get(api, cohort, "care-quality", by="site", format="xlsx")).content)
    )
    sheet = workbook.worksheets[-1]
    assert sheet["A3"].value == '=HYPERLINK("http://x")'
    assert sheet["A3"].data_type == "s"


async def test_html_is_a_page_and_table_is_csv_only(api) -> None:
    cohort = await small_cohort(api)
    page = await get(api, cohort, "lfd-dashboard", format="html")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "Learning from Deaths dashboard" in page.text
    assert "66.7%" in page.text
    refused = await api.get(
        "/v1/reports/lfd-dashboard", params={"format": "xlsx", "table": "deaths"}
    )
    assert refused.status_code == 400
    unknown = await api.get("/v1/reports/lfd-dashboard", params={"format": "csv", "table": "nope"})
    assert unknown.status_code == 400
    assert "deaths, avoidability, ld_autism" in unknown.json()["detail"]
