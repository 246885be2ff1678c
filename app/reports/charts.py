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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe & Ito (2008), ordered so that the first colours also print apart in greyscale.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#000000",  # black
)
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")

INK = "#1d1d1b"
MUTED = "#4c6272"
GRID = "#d8dde0"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
FONT_SIZE = 11
CHAR_WIDTH = 6.2  # average advance of an 11px sans-serif character, for layout estimates

Value = int | float | None


@dataclass(frozen=True)
class Series:
    """One named run of values, one per category."""

    name: str
    values: Sequence[Value]
    colour: str | None = None


def _number(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def format_tick(value: float, unit: str = "") -> str:
    text = f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text}{unit}"


def _label(value: float, unit: str) -> str:
    """A value as a tooltip or data label states it."""
    if unit == "%":
        return f"{value:.1f}%"
    return format_tick(value, unit)


def nice_scale(top: float, ticks: int = 5, integers: bool = True) -> tuple[float, list[float]]:
    """An axis maximum at or above `top` and evenly spaced round ticks from zero to it
    (steps of 1, 2, 2.5 or 5 times a power of ten; whole numbers for counts)."""
    if top <= 0 or not math.isfinite(top):
        return 1.0, [0.0, 1.0]
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude * 10
    for multiple in (1, 2, 2.5, 5, 10):
        candidate = multiple * magnitude
        if integers and not float(candidate).is_integer():
            continue  # counts step in whole numbers: 1, 2, 5, 10, 20, 25, 50, ...
        if candidate >= raw:
            step = candidate
            break
    count = math.ceil(top / step - 1e-9)
    return round(count * step, 10), [round(step * index, 10) for index in range(count + 1)]


def _drawable(categories: Sequence[str], series: Sequence[Series]) -> bool:
    """Whether there is anything to draw (False: the "No data" chart). Raises ValueError for
    values no chart can draw, and for a series without one value per category."""
    for entry in series:
        for value in entry.values:
            if value is not None and (value < 0 or not math.isfinite(value)):
                raise ValueError(
                    "charts draw counts and percentages: no negative or infinite values"
                )
        if len(entry.values) != len(categories):
            raise ValueError(
                f"series {entry.name!r} has {len(entry.values)} values for "
                f"{len(categories)} categories"
            )
    has_data = any(value for entry in series for value in entry.values if value)
    return bool(categories) and bool(series) and has_data


def _scale(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str,
    stacked: bool,
    at_least: float | None,
) -> tuple[float, list[float]]:
    """The value axis (maximum and ticks) for the largest value, or stack, or `at_least`
    (e.g. 100 for percentages); whole-number steps unless a value or the unit has fractions."""
    if stacked:
        top_value = max(
            sum(entry.values[index] or 0 for entry in series) for index in range(len(categories))
        )
    else:
        top_value = max(value or 0 for entry in series for value in entry.values)
    integers = unit != "%" and all(
        float(value).is_integer() for entry in series for value in entry.values if value
    )
    return nice_scale(max(top_value, at_least or 0), integers=integers)


def _colour(series: Series, index: int) -> str:
    return series.colour or PALETTE[index % len(PALETTE)]


def _dash(index: int) -> str:
    """The dash pattern attribute of the line of series `index` (none for the first), the same
    on the line and on its legend swatch."""
    dash = DASHES[index % len(DASHES)]
    return f' stroke-dasharray="{dash}"' if dash else ""


def _tooltip(category: str, series: Series, value: float, unit: str) -> str:
    """What hovering one mark (bar or point) says: "Jul 2025 \u2013 Deaths reviewed: 12"."""
    return f"{category} \u2013 {series.name}: {_label(value, unit)}"


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * CHAR_WIDTH * size / FONT_SIZE


def _shorten(text: str, width: float) -> str:
    """Text cut with an ellipsis to fit `width` (the full text stays in the tooltip)."""
    if _text_width(text) <= width:
        return text
    keep = max(1, int(width / CHAR_WIDTH) - 1)
    return text[:keep].rstrip() + "\u2026"


def _svg(width: float, height: float, title: str, description: str, body: str, kind: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" '
        f'viewBox="0 0 {_number(width)} {_number(height)}" '
        f'width="{_number(width)}" height="{_number(height)}" role="img" '
        f'aria-label="{escape(title)}" font-family="{escape(FONT)}" '
        f'font-size="{FONT_SIZE}" fill="{INK}">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{body}</svg>"
    )


def no_data_chart(title: str, width: float = 640, height: float = 120, message: str = "") -> str:
    """The chart for an empty period: a framed message, so the page keeps its layout."""
    text = message or "No data for this period"
    body = (
        f'<rect class="no-data-frame" x="0.5" y="0.5" width="{_number(width - 1)}" '
        f'height="{_number(height - 1)}" fill="#f7f8f8" stroke="{GRID}" rx="4"/>'
        f'<text class="no-data" x="{_number(width / 2)}" y="{_number(height / 2 + 4)}" '
        f'text-anchor="middle" fill="{MUTED}" font-size="13">{escape(text)}</text>'
    )
    return _svg(width, height, title, f"{title}: {text}.", body, "empty")


LEGEND_ROW = 16


def _legend_places(series: Sequence[Series], width: float) -> list[tuple[float, float]]:
    """Where each legend item starts (x, and y from the legend's top): in rows, left to right,
    a new row when the next item would pass `width`."""
    places, x, y = [], 0.0, 0.0
    for entry in series:
        item = 18 + _text_width(entry.name) + 16
        if x and x + item > width:
            x, y = 0.0, y + LEGEND_ROW
        places.append((x, y))
        x += item
    return places


def _legend(series: Sequence[Series], width: float, top: float, line: bool = False) -> str:
    """Swatches and names in rows across the top; returns the markup."""
    parts = []
    places = _legend_places(series, width)
    for index, (entry, (x, row)) in enumerate(zip(series, places, strict=True)):
        y = top + row
        colour = _colour(entry, index)
        if line:
            dash_attr = _dash(index)
            swatch = (
                f'<line x1="{_number(x)}" y1="{_number(y + 5)}" x2="{_number(x + 14)}" '
                f'y2="{_number(y + 5)}" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
            )
        else:
            swatch = (
                f'<rect x="{_number(x)}" y="{_number(y)}" width="11" height="11" '
                f'fill="{colour}" rx="1.5"/>'
            )
        parts.append(
            f'<g class="legend-item">{swatch}<text x="{_number(x + 17)}" '
            f'y="{_number(y + 9.5)}">{escape(entry.name)}</text></g>'
        )
    return f'<g class="legend">{"".join(parts)}</g>'


def _legend_height(series: Sequence[Series], width: float) -> float:
    places = _legend_places(series, width)
    last_row = places[-1][1] if places else 0.0
    return last_row + LEGEND_ROW + 8


def _value_axis(
    ticks: Sequence[float],
    maximum: float,
    left: float,
    top: float,
    plot_width: float,
    plot_height: float,
    unit: str,
    label: str | None,
) -> str:
    """Horizontal gridlines with tick labels on the left, and the axis title."""
    parts = []
    for tick in ticks:
        y = top + plot_height - tick / maximum * plot_height
        parts.append(
            f'<line x1="{_number(left)}" y1="{_number(y)}" x2="{_number(left + plot_width)}" '
            f'y2="{_number(y)}" stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{_number(left - 6)}" y="{_number(y + 3.5)}" text-anchor="end" '
            f'fill="{MUTED}">{escape(format_tick(tick, unit))}</text>'
        )
    if label:
        middle = top + plot_height / 2
        parts.append(
            f'<text class="axis-title" x="12" y="{_number(middle)}" text-anchor="middle" '
            f'fill="{MUTED}" transform="rotate(-90 12 {_number(middle)})">{escape(label)}</text>'
        )
    return f'<g class="axis axis-value">{"".join(parts)}</g>'


def _category_axis(
    categories: Sequence[str], left: float, band: float, baseline: float, label: str | None
) -> str:
    parts = [
        f'<line x1="{_number(left)}" y1="{_number(baseline)}" '
        f'x2="{_number(left + band * len(categories))}" y2="{_number(baseline)}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    ]
    for index, category in enumerate(categories):
        x = left + band * (index + 0.5)
        parts.append(
            f'<text x="{_number(x)}" y="{_number(baseline + 15)}" text-anchor="middle">'
            f"{escape(_shorten(category, band - 2))}</text>"
        )
    if label:
        parts.append(
            f'<text class="axis-title" x="{_number(left + band * len(categories) / 2)}" '
            f'y="{_number(baseline + 32)}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(label)}</text>"
        )
    return f'<g class="axis axis-category">{"".join(parts)}</g>'


def _describe(categories: Sequence[str], series: Sequence[Series], unit: str) -> str:
    """The data in words, for screen readers (the <desc>)."""
    parts = []
    for index, category in enumerate(categories):
        values = ", ".join(
            f"{entry.name} {_label(value, unit) if value is not None else 'no figure'}"
            for entry in series
            for value in [entry.values[index]]
        )
        parts.append(f"{category}: {values}")
    return "; ".join(parts) + "."


def _plot_area(
    series: Sequence[Series], width: float, height: float, x_label: str | None
) -> tuple[float, float, float, float]:
    """Left, top, width and height of the plot of a column or line chart: below the legend
    (drawn for several series), right of the value axis's tick labels, above the category
    labels and the category axis's title."""
    left, right = 50.0, 8.0
    legend_height = _legend_height(series, width - left) if len(series) > 1 else 4
    top = legend_height + 10
    bottom = 24 + (18 if x_label else 0)
    return left, top, width - left - right, height - top - bottom


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
    if not _drawable(categories, series):
        return no_data_chart(title, width)
    left, top, plot_width, plot_height = _plot_area(series, width, height, x_label)
    maximum, ticks = _scale(categories, series, unit=unit, stacked=stacked, at_least=y_max)
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
            tooltip = _tooltip(category, entry, value, unit)
            bars.append(
                f'<rect class="bar" data-series="{number}" data-category="{index}" '
                f'data-value="{value}" x="{_number(x + 0.5)}" y="{_number(y)}" '
                f'width="{_number(max(bar_width - 1, 1))}" height="{_number(bar_height)}" '
                f'fill="{_colour(entry, number)}"><title>{escape(tooltip)}</title></rect>'
            )
            if value_labels and not stacked:
                labels.append(
                    f'<text x="{_number(x + bar_width / 2)}" y="{_number(y - 3)}" '
                    f'text-anchor="middle" font-size="9" fill="{MUTED}">'
                    f"{escape(_label(value, unit))}</text>"
                )
        if value_labels and stacked and stack:
            labels.append(
                f'<text x="{_number(x0 + inner / 2)}" y="{_number(baseline - stack * scale - 3)}" '
                f'text-anchor="middle" font-size="9" fill="{MUTED}">'
                f"{escape(_label(stack, unit))}</text>"
            )
    body = (
        (_legend(series, width - left, 2) if len(series) > 1 else "")
        + _value_axis(ticks, maximum, left, top, plot_width, plot_height, unit, y_label)
        + f'<g class="bars">{"".join(bars)}</g>'
        + f'<g class="value-labels">{"".join(labels)}</g>'
        + _category_axis(categories, left, band, baseline, x_label)
    )
    kind = "stacked" if stacked else "columns"
    return _svg(width, height, title, _describe(categories, series, unit), body, kind)


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
    if not _drawable(categories, series):
        return no_data_chart(title, width)
    label_width = min(width * 0.5, max(_text_width(category) for category in categories) + 10)
    left, right = label_width, 44.0
    legend_height = _legend_height(series, width) if len(series) > 1 else 0
    top = legend_height + 4
    bottom = 22 + (16 if x_label else 0)
    plot_width = width - left - right
    plot_height = row_height * len(categories)
    height = top + plot_height + bottom
    maximum, ticks = _scale(categories, series, unit=unit, stacked=stacked, at_least=x_max)
    scale = plot_width / maximum
    groups = 1 if stacked else len(series)
    inner = row_height * 0.72
    bar_height = inner / groups
    parts = []
    for tick in ticks:
        x = left + tick * scale
        parts.append(
            f'<line x1="{_number(x)}" y1="{_number(top)}" x2="{_number(x)}" '
            f'y2="{_number(top + plot_height)}" stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{_number(x)}" y="{_number(top + plot_height + 14)}" '
            f'text-anchor="middle" fill="{MUTED}">{escape(format_tick(tick, unit))}</text>'
        )
    if x_label:
        parts.append(
            f'<text class="axis-title" x="{_number(left + plot_width / 2)}" '
            f'y="{_number(top + plot_height + 30)}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(x_label)}</text>"
        )
    axis = f'<g class="axis axis-value">{"".join(parts)}</g>'
    bars, labels, names = [], [], []
    for index, category in enumerate(categories):
        y0 = top + row_height * index + (row_height - inner) / 2
        names.append(
            f'<text x="{_number(left - 6)}" y="{_number(top + row_height * (index + 0.5) + 4)}" '
            f'text-anchor="end"><title>{escape(category)}</title>'
            f"{escape(_shorten(category, label_width - 10))}</text>"
        )
        stack = 0.0
        for number, entry in enumerate(series):
            value = entry.values[index]
            if not value:
                if value == 0 and not stacked:  # a written zero: the row was counted
                    labels.append(
                        f'<text x="{_number(left + 4)}" '
                        f'y="{_number(y0 + (number + 0.5) * bar_height + 3.5)}" font-size="9.5" '
                        f'fill="{MUTED}">0</text>'
                    )
                continue
            if stacked:
                x, y = left + stack * scale, y0
                stack += value
            else:
                x, y = left, y0 + number * bar_height
            tooltip = _tooltip(category, entry, value, unit)
            bars.append(
                f'<rect class="bar" data-series="{number}" data-category="{index}" '
                f'data-value="{value}" x="{_number(x)}" y="{_number(y + 0.5)}" '
                f'width="{_number(value * scale)}" height="{_number(max(bar_height - 1, 1))}" '
                f'fill="{_colour(entry, number)}"><title>{escape(tooltip)}</title></rect>'
            )
            if not stacked:
                labels.append(
                    f'<text x="{_number(x + value * scale + 4)}" '
                    f'y="{_number(y + bar_height / 2 + 3.5)}" font-size="9.5" fill="{MUTED}">'
                    f"{escape(_label(value, unit))}</text>"
                )
        counted = any(entry.values[index] is not None for entry in series)
        if stacked and counted:
            labels.append(
                f'<text x="{_number(left + stack * scale + 4)}" '
                f'y="{_number(y0 + inner / 2 + 3.5)}" font-size="9.5" fill="{MUTED}">'
                f"{escape(_label(stack, unit))}</text>"
            )
    baseline = (
        f'<line x1="{_number(left)}" y1="{_number(top)}" x2="{_number(left)}" '
        f'y2="{_number(top + plot_height)}" stroke="{MUTED}" stroke-width="1"/>'
    )
    body = (
        (_legend(series, width, 2) if len(series) > 1 else "")
        + axis
        + f'<g class="bars">{"".join(bars)}</g>'
        + baseline
        + f'<g class="category-labels">{"".join(names)}</g>'
        + f'<g class="value-labels">{"".join(labels)}</g>'
    )
    kind = "bars-stacked" if stacked else "bars"
    return _svg(width, height, title, _describe(categories, series, unit), body, kind)


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
    if not _drawable(categories, series):
        return no_data_chart(title, width)
    left, top, plot_width, plot_height = _plot_area(series, width, height, x_label)
    maximum, ticks = _scale(categories, series, unit=unit, stacked=False, at_least=y_max)
    band = plot_width / len(categories)
    baseline = top + plot_height
    scale = plot_height / maximum
    lines = []
    for number, entry in enumerate(series):
        colour = _colour(entry, number)
        dash_attr = _dash(number)
        runs: list[list[str]] = [[]]
        markers = []
        for index, value in enumerate(entry.values):
            if value is None:
                runs.append([])
                continue
            x = left + band * (index + 0.5)
            y = baseline - value * scale
            runs[-1].append(f"{_number(x)},{_number(y)}")
            tooltip = _tooltip(categories[index], entry, value, unit)
            markers.append(
                f'<circle class="point" data-series="{number}" data-category="{index}" '
                f'data-value="{value}" cx="{_number(x)}" cy="{_number(y)}" r="3.2" '
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
        (_legend(series, width - left, 2, line=True) if len(series) > 1 else "")
        + _value_axis(ticks, maximum, left, top, plot_width, plot_height, unit, y_label)
        + _category_axis(categories, left, band, baseline, x_label)
        + "".join(lines)
    )
    return _svg(width, height, title, _describe(categories, series, unit), body, "line")
