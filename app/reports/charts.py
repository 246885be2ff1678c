"""Charts drawn on the server as SVG, from numbers, with no library and no script.

Each function returns one `<svg>` element (a string) with a viewBox, so it scales to the width
of the page and prints crisply. Every chart is accessible (role="img", an aria-label and a
<title>/<desc> that state what it shows) and every mark carries a <title> tooltip with its exact
value. Colours are the Okabe-Ito palette, distinguishable with the common colour-vision
deficiencies; lines also differ by dash pattern so a greyscale print still tells them apart.

Rules every chart keeps:
- values are counts or percentages, never negative (a negative value is a programming error:
  ValueError);
- None means "no figure" (a percentage of nothing): no bar, a gap in a line;
- a zero draws no bar (a bar of no height cannot be seen or hovered) but keeps its place;
- no categories, or nothing but zeros and None, gives a "No data" chart: a framed message,
  no axes, never a division by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from app.reports.chart_frame import (
    GRID,
    MUTED,
    PALETTE,
    Series,
    category_axis,
    describe_chart,
    draw_legend,
    drawable,
    fmt,
    format_tick,
    legend_block_height,
    mark_tooltip,
    nice_scale,
    no_data_chart,
    plot_area,
    series_colour,
    series_dash,
    shorten,
    svg_element,
    text_width,
    value_axis,
    value_label,
    value_scale,
)

__all__ = [
    "PALETTE",
    "Series",
    "bar_chart",
    "column_chart",
    "line_chart",
    "nice_scale",
    "no_data_chart",
]


def column_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    unit: str = "",
    y_label: str | None = None,
    x_label: str | None = None,
    y_max: float | None = None,
    width: float = 640,
    height: float = 260,
    value_labels: bool | None = None,
) -> str:
    """Vertical columns, one group (or one stack, with `stacked`) per category.

    Heights are proportional to the values on an axis from zero to a round maximum (or
    `y_max`, e.g. 100 for percentages). `value_labels` writes each value (or each stack's
    total) above its column; by default when there is room."""
    if not drawable(categories, series):
        return no_data_chart(title, width)
    left, top, plot_width, plot_height = plot_area(series, width, height, x_label)
    maximum, ticks = value_scale(categories, series, unit=unit, stacked=stacked, at_least=y_max)
    band = plot_width / len(categories)
    groups = 1 if stacked else len(series)
    inner = band * 0.78
    bar_width = inner / groups
    if value_labels is None:
        value_labels = bar_width >= 18 or (stacked and band >= 24)
    baseline = top + plot_height
    scale = plot_height / maximum
    bars, labels = [], []
    for index, category in enumerate(categories):
        x0 = left + band * index + (band - inner) / 2
        stack = 0.0
        for number, entry in enumerate(series):
            value = entry.values[index]
            if not value:
                continue
            bar_height = value * scale
            if stacked:
                x, y = x0, baseline - (stack + value) * scale
                stack += value
            else:
                x, y = x0 + number * bar_width, baseline - bar_height
            tooltip = mark_tooltip(category, entry, value, unit)
            bars.append(
                f'<rect class="bar" data-series="{number}" data-category="{index}" '
                f'data-value="{value}" x="{fmt(x + 0.5)}" y="{fmt(y)}" '
                f'width="{fmt(max(bar_width - 1, 1))}" height="{fmt(bar_height)}" '
                f'fill="{series_colour(entry, number)}"><title>{escape(tooltip)}</title></rect>'
            )
            if value_labels and not stacked:
                labels.append(
                    f'<text x="{fmt(x + bar_width / 2)}" y="{fmt(y - 3)}" '
                    f'text-anchor="middle" font-size="9" fill="{MUTED}">'
                    f"{escape(value_label(value, unit))}</text>"
                )
        if value_labels and stacked and stack:
            labels.append(
                f'<text x="{fmt(x0 + inner / 2)}" y="{fmt(baseline - stack * scale - 3)}" '
                f'text-anchor="middle" font-size="9" fill="{MUTED}">'
                f"{escape(value_label(stack, unit))}</text>"
            )
    body = (
        (draw_legend(series, width - left, 2) if len(series) > 1 else "")
        + value_axis(ticks, maximum, left, top, plot_width, plot_height, unit, y_label)
        + f'<g class="bars">{"".join(bars)}</g>'
        + f'<g class="value-labels">{"".join(labels)}</g>'
        + category_axis(categories, left, band, baseline, x_label)
    )
    kind = "stacked" if stacked else "columns"
    return svg_element(width, height, title, describe_chart(categories, series, unit), body, kind)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    unit: str = "",
    x_label: str | None = None,
    x_max: float | None = None,
    width: float = 640,
    row_height: float = 22,
) -> str:
    """Horizontal bars, one row per category (long names such as themes read well), grouped
    or `stacked`; each bar (or stack) ends with its value. The height follows the rows."""
    if not drawable(categories, series):
        return no_data_chart(title, width)
    label_width = min(width * 0.5, max(text_width(category) for category in categories) + 10)
    left, right = label_width, 44.0
    legend_height = legend_block_height(series, width) if len(series) > 1 else 0
    top = legend_height + 4
    bottom = 22 + (16 if x_label else 0)
    plot_width = width - left - right
    plot_height = row_height * len(categories)
    height = top + plot_height + bottom
    maximum, ticks = value_scale(categories, series, unit=unit, stacked=stacked, at_least=x_max)
    scale = plot_width / maximum
    groups = 1 if stacked else len(series)
    inner = row_height * 0.72
    bar_height = inner / groups
    parts = []
    for tick in ticks:
        x = left + tick * scale
        parts.append(
            f'<line x1="{fmt(x)}" y1="{fmt(top)}" x2="{fmt(x)}" '
            f'y2="{fmt(top + plot_height)}" stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{fmt(x)}" y="{fmt(top + plot_height + 14)}" '
            f'text-anchor="middle" fill="{MUTED}">{escape(format_tick(tick, unit))}</text>'
        )
    if x_label:
        parts.append(
            f'<text class="axis-title" x="{fmt(left + plot_width / 2)}" '
            f'y="{fmt(top + plot_height + 30)}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(x_label)}</text>"
        )
    axis = f'<g class="axis axis-value">{"".join(parts)}</g>'
    bars, labels, names = [], [], []
    for index, category in enumerate(categories):
        y0 = top + row_height * index + (row_height - inner) / 2
        names.append(
            f'<text x="{fmt(left - 6)}" y="{fmt(top + row_height * (index + 0.5) + 4)}" '
            f'text-anchor="end"><title>{escape(category)}</title>'
            f"{escape(shorten(category, label_width - 10))}</text>"
        )
        stack = 0.0
        for number, entry in enumerate(series):
            value = entry.values[index]
            if not value:
                if value == 0 and not stacked:  # a written zero: the row was counted
                    labels.append(
                        f'<text x="{fmt(left + 4)}" '
                        f'y="{fmt(y0 + (number + 0.5) * bar_height + 3.5)}" font-size="9.5" '
                        f'fill="{MUTED}">0</text>'
                    )
                continue
            if stacked:
                x, y = left + stack * scale, y0
                stack += value
            else:
                x, y = left, y0 + number * bar_height
            tooltip = mark_tooltip(category, entry, value, unit)
            bars.append(
                f'<rect class="bar" data-series="{number}" data-category="{index}" '
                f'data-value="{value}" x="{fmt(x)}" y="{fmt(y + 0.5)}" '
                f'width="{fmt(value * scale)}" height="{fmt(max(bar_height - 1, 1))}" '
                f'fill="{series_colour(entry, number)}"><title>{escape(tooltip)}</title></rect>'
            )
            if not stacked:
                labels.append(
                    f'<text x="{fmt(x + value * scale + 4)}" '
                    f'y="{fmt(y + bar_height / 2 + 3.5)}" font-size="9.5" fill="{MUTED}">'
                    f"{escape(value_label(value, unit))}</text>"
                )
        counted = any(entry.values[index] is not None for entry in series)
        if stacked and counted:
            labels.append(
                f'<text x="{fmt(left + stack * scale + 4)}" '
                f'y="{fmt(y0 + inner / 2 + 3.5)}" font-size="9.5" fill="{MUTED}">'
                f"{escape(value_label(stack, unit))}</text>"
            )
    baseline = (
        f'<line x1="{fmt(left)}" y1="{fmt(top)}" x2="{fmt(left)}" '
        f'y2="{fmt(top + plot_height)}" stroke="{MUTED}" stroke-width="1"/>'
    )
    body = (
        (draw_legend(series, width, 2) if len(series) > 1 else "")
        + axis
        + f'<g class="bars">{"".join(bars)}</g>'
        + baseline
        + f'<g class="category-labels">{"".join(names)}</g>'
        + f'<g class="value-labels">{"".join(labels)}</g>'
    )
    kind = "bars-stacked" if stacked else "bars"
    return svg_element(width, height, title, describe_chart(categories, series, unit), body, kind)


def line_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    y_label: str | None = None,
    x_label: str | None = None,
    y_max: float | None = None,
    width: float = 640,
    height: float = 240,
) -> str:
    """One line per series across the categories (months), with a marker and tooltip at each
    point; a None breaks the line. Lines differ by colour and by dash pattern."""
    if not drawable(categories, series):
        return no_data_chart(title, width)
    left, top, plot_width, plot_height = plot_area(series, width, height, x_label)
    maximum, ticks = value_scale(categories, series, unit=unit, stacked=False, at_least=y_max)
    band = plot_width / len(categories)
    baseline = top + plot_height
    scale = plot_height / maximum
    lines = []
    for number, entry in enumerate(series):
        colour = series_colour(entry, number)
        dash_attr = series_dash(number)
        runs: list[list[str]] = [[]]
        markers = []
        for index, value in enumerate(entry.values):
            if value is None:
                runs.append([])
                continue
            x = left + band * (index + 0.5)
            y = baseline - value * scale
            runs[-1].append(f"{fmt(x)},{fmt(y)}")
            tooltip = mark_tooltip(categories[index], entry, value, unit)
            markers.append(
                f'<circle class="point" data-series="{number}" data-category="{index}" '
                f'data-value="{value}" cx="{fmt(x)}" cy="{fmt(y)}" r="3.2" '
                f'fill="{colour}" stroke="#fff" stroke-width="1">'
                f"<title>{escape(tooltip)}</title></circle>"
            )
        polylines = "".join(
            f'<polyline class="line" points="{" ".join(run)}" fill="none" stroke="{colour}" '
            f'stroke-width="2.2" stroke-linejoin="round"{dash_attr}/>'
            for run in runs
            if len(run) > 1
        )
        lines.append(f'<g class="series" data-series="{number}">{polylines}{"".join(markers)}</g>')
    body = (
        (draw_legend(series, width - left, 2, line=True) if len(series) > 1 else "")
        + value_axis(ticks, maximum, left, top, plot_width, plot_height, unit, y_label)
        + category_axis(categories, left, band, baseline, x_label)
        + "".join(lines)
    )
    return svg_element(width, height, title, describe_chart(categories, series, unit), body, "line")
