"""The SVG charts: well-formed XML, marks proportional to the numbers, empty data drawn as a
'No data' chart, everything escaped, accessible."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.reports.charts import (
    PALETTE,
    Series,
    bar_chart,
    column_chart,
    line_chart,
    nice_scale,
    no_data_chart,
)

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.find("svg:title", NS) is not None
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//svg:rect[@class='bar']", NS)


def test_grouped_columns_are_proportional_and_labelled():
    svg = column_chart(
        "Deaths by month",
        ["Apr 25", "May 25", "Jun 25"],
        [Series("In scope", [10, 20, 5]), Series("Reviewed", [4, 0, 5])],
        y_label="Deaths",
    )
    root = parse(svg)
    assert root.get("aria-label") == "Deaths by month"
    drawn = bars(root)
    # Six values, one of them zero: five bars.
    assert len(drawn) == 5
    by_value = {}
    for rect in drawn:
        value = float(rect.get("data-value"))
        height = float(rect.get("height"))
        by_value.setdefault(value, set()).add(round(height, 1))
    # Axis 0..20 (ticks every 5): 20 is the full plot height, 10 half, 5 a quarter, 4 a fifth.
    (full,) = by_value[20.0]
    assert by_value[10.0] == {round(full / 2, 1)}
    assert by_value[5.0] == {round(full / 4, 1)}
    assert by_value[4.0] == {round(full / 5, 1)}
    # Every bar sits on the same baseline.
    assert len({round(float(r.get("y")) + float(r.get("height")), 1) for r in drawn}) == 1
    # Tooltips state the exact value.
    titles = [rect.find("svg:title", NS).text for rect in drawn]
    assert "May 25 \u2013 In scope: 20" in titles
    # Series are told apart by Okabe-Ito colours, and a legend names them.
    assert {rect.get("fill") for rect in drawn} == {PALETTE[0], PALETTE[1]}
    legend = [t.text for t in root.findall(".//svg:g[@class='legend']//svg:text", NS)]
    assert legend == ["In scope", "Reviewed"]
    # Gridline labels run from 0 to the top of the scale.
    ticks = [t.text for t in root.findall(".//svg:g[@class='axis axis-value']/svg:text", NS)]
    assert ticks[0] == "0" and ticks[-2] == "20" and ticks[-1] == "Deaths"
    # The data in words for screen readers.
    assert "Jun 25: In scope 5, Reviewed 5" in root.find("svg:desc", NS).text


def test_stacked_columns_sit_on_each_other():
    svg = column_chart(
        "Avoidability",
        ["Q1", "Q2"],
        [Series("Score 1-3", [2, 1]), Series("Score 4-6", [6, 3])],
        stacked=True,
    )
    root = parse(svg)
    drawn = bars(root)
    assert len(drawn) == 4
    q1 = sorted(
        (r for r in drawn if r.get("data-category") == "0"), key=lambda r: float(r.get("y"))
    )
    top, bottom = q1[0], q1[1]
    # The first series (2) is the lower segment, the second (6) stands on it.
    assert float(bottom.get("data-value")) == 2 and float(top.get("data-value")) == 6
    assert float(top.get("y")) + float(top.get("height")) == pytest.approx(float(bottom.get("y")))
    assert float(top.get("height")) == pytest.approx(3 * float(bottom.get("height")), abs=0.02)
    # Column totals are written above the stacks.
    labels = [t.text for t in root.findall(".//svg:g[@class='value-labels']/svg:text", NS)]
    assert labels == ["8", "4"]


def test_horizontal_bars_widths_are_proportional_and_long_names_shortened():
    long_name = "Communication with the patient's family and carers about end of life care"
    svg = bar_chart("Themes", [long_name, "Sepsis"], [Series("Findings", [30, 15])])
    root = parse(svg)
    drawn = bars(root)
    assert len(drawn) == 2
    widths = {float(r.get("data-value")): float(r.get("width")) for r in drawn}
    assert widths[30.0] == pytest.approx(2 * widths[15.0], abs=0.02)
    labels = [t.text for t in root.findall(".//svg:g[@class='value-labels']/svg:text", NS)]
    assert labels == ["30", "15"]
    names = root.findall(".//svg:g[@class='category-labels']/svg:text", NS)
    assert names[0].find("svg:title", NS).text == long_name
    assert "".join(names[0].itertext()).endswith("\u2026")
    assert len(names[0].text or "".join(names[0].itertext())) < len(long_name) * 2


def test_line_chart_breaks_at_a_missing_value():
    svg = line_chart(
        "Reviewed within 30 days",
        ["Apr", "May", "Jun", "Jul"],
        [Series("Share", [50.0, None, 25.0, 75.0]), Series("Target", [90, 90, 90, 90])],
        unit="%",
        y_max=100,
    )
    root = parse(svg)
    share = root.find(".//svg:g[@data-series='0']", NS)
    # Apr stands alone; Jun-Jul make the only line of the share.
    lines = share.findall("svg:polyline", NS)
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2
    points = share.findall("svg:circle", NS)
    assert len(points) == 3
    y = {float(c.get("data-value")): float(c.get("cy")) for c in points}
    # Percent axis fixed at 0..100: 25% is three quarters of the way down from 75%'s height.
    baseline = y[25.0] + (y[25.0] - y[75.0]) / 2
    assert (baseline - y[75.0]) == pytest.approx(3 * (baseline - y[25.0]), abs=0.05)
    assert points[0].find("svg:title", NS).text == "Apr \u2013 Share: 50.0%"
    ticks = [t.text for t in root.findall(".//svg:g[@class='axis axis-value']/svg:text", NS)]
    assert ticks[-1] == "100%"
    # The second line is dashed so the two part in greyscale too.
    target = root.find(".//svg:g[@data-series='1']/svg:polyline", NS)
    assert target.get("stroke-dasharray")


@pytest.mark.parametrize(
    ("categories", "values"),
    [([], []), (["Apr", "May"], [0, 0]), (["Apr", "May"], [None, None]), (["Apr"], [0])],
)
@pytest.mark.parametrize("draw", [column_chart, bar_chart, line_chart])
def test_empty_data_draws_a_no_data_chart(draw, categories, values):
    svg = draw("Deaths reviewed", categories, [Series("Reviewed", values)])
    root = parse(svg)
    assert bars(root) == []
    assert root.findall(".//svg:circle", NS) == []
    message = root.find(".//svg:text[@class='no-data']", NS)
    assert message.text == "No data for this period"
    assert "No data" in root.find("svg:desc", NS).text


def test_no_series_at_all_is_no_data():
    root = parse(column_chart("Nothing", ["Apr"], []))
    assert root.find(".//svg:text[@class='no-data']", NS) is not None
    assert (
        parse(no_data_chart("X", message="No themes recorded"))
        .find(".//svg:text[@class='no-data']", NS)
        .text
        == "No themes recorded"
    )


def test_text_is_escaped():
    svg = column_chart(
        'A & B <"chart">',
        ["<Apr>", "M&M"],
        [Series("</svg><script>alert(1)</script>", [1, 2])],
    )
    root = parse(svg)  # well-formed despite the markup in every label
    assert root.find(".//svg:script", NS) is None
    assert root.get("aria-label") == 'A & B <"chart">'
    labels = [t.text for t in root.findall(".//svg:g[@class='axis axis-category']/svg:text", NS)]
    assert labels == ["<Apr>", "M&M"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="negative"):
        column_chart("x", ["a"], [Series("s", [-1])])
    with pytest.raises(ValueError, match="values for"):
        bar_chart("x", ["a", "b"], [Series("s", [1])])


@pytest.mark.parametrize(
    ("top", "integers", "maximum", "ticks"),
    [
        (20, True, 20, [0, 5, 10, 15, 20]),
        (7, True, 8, [0, 2, 4, 6, 8]),
        (12, True, 15, [0, 5, 10, 15]),
        (3, True, 3, [0, 1, 2, 3]),
        (1, True, 1, [0, 1]),
        (123, True, 125, [0, 25, 50, 75, 100, 125]),
        (100, False, 100, [0, 20, 40, 60, 80, 100]),
        (0.3, False, 0.3, [0, 0.1, 0.2, 0.3]),
        (0, True, 1, [0, 1]),
    ],
)
def test_nice_scale(top, integers, maximum, ticks):
    assert nice_scale(top, integers=integers) == (maximum, ticks)


def test_many_categories_and_decimals_stay_well_formed():
    months = [f"M{index}" for index in range(24)]
    series = [Series(f"S{n}", [index * 1.5 + n for index in range(24)]) for n in range(9)]
    for svg in (
        column_chart("big", months, series),
        column_chart("big", months, series, stacked=True),
        bar_chart("big", months, series, stacked=True),
        line_chart("big", months, series),
    ):
        root = parse(svg)
        # Colours cycle through the palette past its eighth series.
        assert {e.get("fill") for e in bars(root)} <= set(PALETTE) or root.findall(
            ".//svg:polyline", NS
        )


def test_horizontal_bars_write_a_counted_zero():
    """A zero is a figure (the row was counted), a None is not: the zero gets its label."""
    root = parse(
        bar_chart(
            "Scores",
            ["Score 1", "Score 2", "Score 3"],
            [Series("1-2", [0, 3, None]), Series("3", [None, None, 0])],
            stacked=True,
        )
    )
    assert len(bars(root)) == 1
    labels = [t.text for t in root.findall(".//svg:g[@class='value-labels']/svg:text", NS)]
    assert labels == ["0", "3", "0"]
    grouped = parse(bar_chart("Themes", ["A", "B"], [Series("Findings", [0, 2])]))
    labels = [t.text for t in grouped.findall(".//svg:g[@class='value-labels']/svg:text", NS)]
    assert labels == ["0", "2"]
