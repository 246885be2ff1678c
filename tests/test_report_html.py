"""render_html on hand-made reports: every table, values formatted as a board paper prints
them, everything escaped, the dashboard's charts drawn from its own numbers, nothing fetched."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from app.reports.html import format_value, render_html
from app.reports.model import Column, Period, Report, Table, financial_year

NS = {"svg": "http://www.w3.org/2000/svg"}
GENERATED = datetime(2025, 7, 1, 8, 30, tzinfo=UTC)  # 09:30 BST


class Page(HTMLParser):
    """Collects the parts of the page the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.svgs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    return parser


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg .*?</svg>", page, re.S)]


def dashboard(months: list[dict], ytd: dict) -> Report:
    """A report shaped as app/reports/dashboard.py builds it (the table keys and column keys
    the page charts), with hand-made numbers."""
    period = Column("period", "Period", "text", "The month of death, or the year to date.")
    kind = Column("row_kind", "Row", "text", "month, quarter_to_date or year_to_date.")
    rows = [{"row_kind": "month", **row} for row in months] + [
        {"period": "Year to date", "row_kind": "year_to_date", **ytd}
    ]
    deaths = Table(
        "deaths",
        "Deaths and reviews",
        [
            period,
            kind,
            Column("deaths", "Deaths in scope", "int", "Deaths in scope."),
            Column("reviewed", "Deaths reviewed", "int", "With a submitted SJR or M&M."),
            Column("reviewed_pct", "% reviewed", "percent", "Reviewed / deaths."),
            Column("investigated", "Investigated (PSII)", "int"),
            Column("avoidable", "More likely than not", "int", "Final SJR scores 1-3."),
            Column("avoidable_pct", "% of reviewed", "percent"),
        ],
        rows,
    )
    scores = Table(
        "avoidability",
        "By avoidability score",
        [
            period,
            kind,
            *(Column(f"score_{n}", f"Score {n}", "int", f"Scored {n}.") for n in range(1, 7)),
        ],
        rows,
    )
    leder = Table(
        "ld_autism",
        "LeDeR",
        [
            period,
            kind,
            Column("ld_deaths", "Deaths", "int"),
            Column("ld_notified", "Notified", "int"),
            Column("ld_completed", "Completed", "int"),
        ],
        rows,
    )
    return Report(
        "lfd-dashboard",
        "Learning from Deaths dashboard",
        Period(date(2025, 4, 1), date(2025, 6, 30), "2025/26", "financial_year"),
        {"site": "St <Elsewhere> & Co", "specialty": None},
        [deaths, scores, leder],
        GENERATED,
        ["Deaths by month of death."],
    )


def month(label: str, deaths: int, reviewed: int, avoidable: int, **extra) -> dict:
    scores = {f"score_{n}": 0 for n in range(1, 7)}
    return {
        "period": label,
        "deaths": deaths,
        "reviewed": reviewed,
        "reviewed_pct": round(100 * reviewed / deaths, 1) if deaths else None,
        "investigated": 0,
        "avoidable": avoidable,
        "avoidable_pct": None,
        "ld_deaths": 0,
        "ld_notified": 0,
        "ld_completed": 0,
        **scores,
        **extra,
    }


def test_format_value():
    assert format_value(1234, "int") == "1,234"
    assert format_value(12.5, "percent") == "12.5%"
    assert format_value(7, "percent") == "7.0%"
    assert format_value(None, "percent") == "\u2013"
    assert format_value("2025-04", "month") == "Apr 2025"
    assert format_value(date(2026, 3, 31), "date") == "31 Mar 2026"
    assert format_value("2026-03-31", "date") == "31 Mar 2026"
    assert format_value(1234.56, "number") == "1,234.6"
    assert format_value(3, "number") == "3"
    assert format_value("Ward <7>", "text") == "Ward <7>"  # escaped by the renderer


def test_any_report_renders_every_table_escaped():
    report = Report(
        "themes",
        "Themes <b>report</b>",
        financial_year(2025),
        {"site": "<script>alert(1)</script>", "route": None},
        [
            Table(
                "escalations",
                "By theme & kind",
                [
                    Column("theme", "Theme", "text"),
                    Column("findings", "Findings", "int", "Findings <all kinds>."),
                    Column("share", "Share", "percent"),
                ],
                [
                    {"theme": "Escalation <of care>", "findings": 1500, "share": 62.5},
                    {"theme": "Sepsis", "findings": 0, "share": None},
                ],
                note="A note & more.",
            ),
            Table("empty", "Nothing here", [Column("x", "X", "int")], []),
        ],
        GENERATED,
    )
    page = render_html(report)
    assert "<script" not in page.replace("&lt;script", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Themes &lt;b&gt;report&lt;/b&gt;" in page
    parsed = parse(page)
    text = " ".join(parsed.text)
    # Header: period with its dates, filters given (absent ones left out), local time.
    assert "1 Apr 2025 to 31 Mar 2026" in text
    assert "site: <script>alert(1)</script>" in text and "route" not in text
    assert "1 Jul 2025 09:30 BST" in text
    # Numbers formatted and right-aligned; a missing percentage is a dash.
    cells = [(tag, attrs) for tag, attrs in parsed.tags if tag == "td"]
    assert all(attrs.get("class") == "num" for _, attrs in cells[:4])
    assert "1,500" in text and "62.5%" in text and "\u2013" in text
    # Definitions as numbered footnotes; the empty table says so.
    assert "Findings <all kinds>." in text and 'href="#def-1"' in page
    assert "No rows" in text and "A note & more." in text
    # No table the page charts: no charts.
    assert "<svg" not in page


def test_page_fetches_nothing():
    page = render_html(dashboard([month("Apr 2025", 10, 5, 1), month("May 2025", 20, 10, 0)], {}))
    parsed = parse(page)
    assert not [tag for tag, _ in parsed.tags if tag in ("script", "img", "iframe", "object")]
    # One link: an empty icon in the page itself, so the browser asks for no /favicon.ico.
    assert [attrs for tag, attrs in parsed.tags if tag == "link"] == [
        {"rel": "icon", "href": "data:,"}
    ]
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            if name in ("src", "href") and tag != "link":
                assert value is not None and value.startswith("#")
    assert (
        "url(" not in page
        and "@import" not in page
        and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "@media print" in page and "@page" in page


def test_dashboard_draws_its_numbers():
    months = [
        month("Apr 2025", 10, 4, 1, score_2=1, score_6=3, ld_deaths=2, ld_notified=2),
        month("May 2025", 20, 10, 0, score_5=4, score_6=6),
        month("Jun 2025", 0, 0, 0),
    ]
    ytd = {
        "deaths": 30,
        "reviewed": 14,
        "reviewed_pct": 46.7,
        "investigated": 1,
        "avoidable": 1,
        "avoidable_pct": 7.1,
        "score_1": 0,
        "score_2": 1,
        "score_3": 0,
        "score_4": 0,
        "score_5": 4,
        "score_6": 9,
        "ld_deaths": 2,
        "ld_notified": 2,
        "ld_completed": 0,
    }
    page = render_html(dashboard(months, ytd))
    charts = svgs(page)
    assert [chart.get("aria-label") for chart in charts] == [
        "Deaths in scope and deaths reviewed, by month of death",
        "Deaths by avoidability score of the final SJR, year to date",
        "Deaths of people with a learning disability or autism: LeDeR",
    ]
    by_month, scores, leder = charts
    bars = by_month.findall(".//svg:rect[@class='bar']", NS)
    # Deaths 10, 20, 0; reviewed 4, 10, 0; avoidable 1, 0, 0: five non-zero values.
    assert sorted(float(bar.get("data-value")) for bar in bars) == [1, 4, 10, 10, 20]
    heights = {float(bar.get("data-value")): float(bar.get("height")) for bar in bars}
    assert heights[20] == 2 * heights[10] and heights[10] == 2.5 * heights[4]
    labels = [
        t.text for t in by_month.findall(".//svg:g[@class='axis axis-category']/svg:text", NS)
    ]
    assert labels == ["Apr 25", "May 25", "Jun 25"]  # months only, not the year-to-date row
    # Avoidability: the year-to-date row, scores 1-3 in one colour and 4-6 in another.
    score_bars = scores.findall(".//svg:rect[@class='bar']", NS)
    assert [(bar.get("data-category"), bar.get("data-value")) for bar in score_bars] == [
        ("1", "1"),
        ("4", "4"),
        ("5", "9"),
    ]
    assert score_bars[0].get("fill") != score_bars[1].get("fill")
    assert len(leder.findall(".//svg:rect[@class='bar']", NS)) == 2
    # Headline tiles from the year to date.
    text = " ".join(parse(page).text)
    assert "Deaths in scope 30 year to date" in re.sub(r"\s+", " ", text)
    assert "46.7% of deaths in scope" in text and "7.1% of reviewed" in text
    # The row kind is a style on the page (totals in bold), not a column.
    assert "year_to_date" not in text and '<tr class="total">' in page
    assert ">Row<" not in page


def test_the_deaths_tile_counts_everyone_in_scope():
    """The dashboard's rows leave out people with a learning disability or autism (LeDeR has
    its own table); the headline counts every death in scope and says how many those are,
    and the reviewed share names the deaths it is a share of."""
    ytd = {"deaths": 30, "all_deaths": 33, "reviewed": 14, "reviewed_pct": 46.7}
    page = render_html(dashboard([month("Apr 2025", 30, 14, 0)], ytd))
    text = re.sub(r"\s+", " ", " ".join(parse(page).text))
    assert "Deaths in scope 33 year to date, 3 with a learning disability or autism" in text
    assert "46.7% of the 30 without a learning disability or autism" in text


def test_empty_dashboard_draws_no_data_charts():
    page = render_html(
        dashboard(
            [month("Apr 2025", 0, 0, 0)],
            {key: 0 for key in month("x", 0, 0, 0) if key != "period"},
        )
    )
    charts = svgs(page)
    assert len(charts) == 3
    for chart in charts:
        assert chart.findall(".//svg:rect[@class='bar']", NS) == []
        assert chart.find(".//svg:text[@class='no-data']", NS).text == "No data for this period"


def test_themes_table_gets_a_bar_chart_of_the_most_frequent():
    rows = [{"theme": f"Theme {n}", "findings": n, "deaths": 1} for n in range(1, 16)]
    report = Report(
        "themes",
        "Themes",
        financial_year(2025),
        {},
        [
            Table(
                "themes",
                "Findings by theme",
                [
                    Column("theme", "Theme", "text"),
                    Column("findings", "Findings", "int"),
                    Column("deaths", "Deaths", "int"),
                ],
                rows,
            )
        ],
        GENERATED,
    )
    (chart,) = svgs(render_html(report))
    names = [
        t.find("svg:title", NS).text
        for t in chart.findall(".//svg:g[@class='category-labels']/svg:text", NS)
    ]
    # The twelve with most findings, most first.
    assert names == [f"Theme {n}" for n in range(15, 3, -1)]
    assert "The 12 themes with the most findings" in render_html(report)


def test_care_quality_tables_get_rating_charts():
    ratings = [Column(f"rating_{n}", f"{n} label", "int") for n in range(1, 6)]
    overall = Table(
        "overall",
        "Overall care rating",
        [
            Column("rating", "Rating", "int"),
            Column("label", "Care", "text"),
            Column("deaths", "Deaths", "int"),
        ],
        [
            {"rating": n, "label": label, "deaths": deaths}
            for n, label, deaths in [
                (1, "Very poor", 0),
                (2, "Poor", 2),
                (3, "Adequate", 5),
                (4, "Good", 10),
                (5, "Excellent", 3),
            ]
        ],
    )
    phases = Table(
        "phases",
        "By phase",
        [Column("phase", "Phase", "text"), *ratings],
        [
            {"phase": "admission initial", **{f"rating_{n}": n for n in range(1, 6)}},
            {"phase": "end of life", **{f"rating_{n}": 0 for n in range(1, 6)}},
        ],
    )
    report = Report(
        "care-quality", "Care quality", financial_year(2025), {}, [overall, phases], GENERATED
    )
    by_overall, by_phase = svgs(render_html(report))
    bars = by_overall.findall(".//svg:rect[@class='bar']", NS)
    # Ratings 2-5 drawn (1 is zero), poor in one colour, adequate in another, good in a third.
    assert [(b.get("data-category"), b.get("data-value")) for b in bars] == [
        ("1", "2"),
        ("2", "5"),
        ("3", "10"),
        ("4", "3"),
    ]
    assert len({b.get("fill") for b in bars}) == 3
    assert bars[2].get("fill") == bars[3].get("fill")
    names = [t.text for t in by_overall.findall(".//svg:g[@class='legend']//svg:text", NS)]
    assert names == ["Poor or very poor", "Adequate", "Good or excellent"]
    # By phase: one stacked bar of five ratings (1+2+3+4+5 = 15); the unrated phase is 0.
    segments = by_phase.findall(".//svg:rect[@class='bar']", NS)
    assert [s.get("data-value") for s in segments] == ["1", "2", "3", "4", "5"]
    widths = [float(s.get("width")) for s in segments]
    assert widths[4] == pytest.approx(5 * widths[0], abs=0.05)
    totals = [t.text for t in by_phase.findall(".//svg:g[@class='value-labels']/svg:text", NS)]
    assert totals == ["15", "0"]
