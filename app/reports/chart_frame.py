"""The frame every chart is drawn in (app.reports.charts): palette and type, scales and
ticks, axes, legends, the accessible <svg> wrapper and the "No data" chart.

Charts drawn on the server as SVG, from numbers, with no library and no script.

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


def fmt(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def format_tick(value: float, unit: str = "") -> str:
    text = f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text}{unit}"


def value_label(value: float, unit: str) -> str:
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


def drawable(categories: Sequence[str], series: Sequence[Series]) -> bool:
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


def value_scale(
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


def series_colour(series: Series, index: int) -> str:
    return series.colour or PALETTE[index % len(PALETTE)]


def series_dash(index: int) -> str:
    """The dash pattern attribute of the line of series `index` (none for the first), the same
    on the line and on its legend swatch."""
    dash = DASHES[index % len(DASHES)]
    return f' stroke-dasharray="{dash}"' if dash else ""


def mark_tooltip(category: str, series: Series, value: float, unit: str) -> str:
    """What hovering one mark (bar or point) says: "Jul 2025 \u2013 Deaths reviewed: 12"."""
    return f"{category} \u2013 {series.name}: {value_label(value, unit)}"


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * CHAR_WIDTH * size / FONT_SIZE


def shorten(text: str, width: float) -> str:
    """Text cut with an ellipsis to fit `width` (the full text stays in the tooltip)."""
    if text_width(text) <= width:
        return text
    keep = max(1, int(width / CHAR_WIDTH) - 1)
    return text[:keep].rstrip() + "\u2026"


def svg_element(
    width: float, height: float, title: str, description: str, body: str, kind: str
) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" '
        f'viewBox="0 0 {fmt(width)} {fmt(height)}" '
        f'width="{fmt(width)}" height="{fmt(height)}" role="img" '
        f'aria-label="{escape(title)}" font-family="{escape(FONT)}" '
        f'font-size="{FONT_SIZE}" fill="{INK}">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{body}</svg>"
    )


def no_data_chart(title: str, width: float = 640, height: float = 120, message: str = "") -> str:
    """The chart for an empty period: a framed message, so the page keeps its layout."""
    text = message or "No data for this period"
    body = (
        f'<rect class="no-data-frame" x="0.5" y="0.5" width="{fmt(width - 1)}" '
        f'height="{fmt(height - 1)}" fill="#f7f8f8" stroke="{GRID}" rx="4"/>'
        f'<text class="no-data" x="{fmt(width / 2)}" y="{fmt(height / 2 + 4)}" '
        f'text-anchor="middle" fill="{MUTED}" font-size="13">{escape(text)}</text>'
    )
    return svg_element(width, height, title, f"{title}: {text}.", body, "empty")


LEGEND_ROW = 16


def legend_places(series: Sequence[Series], width: float) -> list[tuple[float, float]]:
    """Where each legend item starts (x, and y from the legend's top): in rows, left to right,
    a new row when the next item would pass `width`."""
    places, x, y = [], 0.0, 0.0
    for entry in series:
        item = 18 + text_width(entry.name) + 16
        if x and x + item > width:
            x, y = 0.0, y + LEGEND_ROW
        places.append((x, y))
        x += item
    return places


def draw_legend(series: Sequence[Series], width: float, top: float, line: bool = False) -> str:
    """Swatches and names in rows across the top; returns the markup."""
    parts = []
    places = legend_places(series, width)
    for index, (entry, (x, row)) in enumerate(zip(series, places, strict=True)):
        y = top + row
        colour = series_colour(entry, index)
        if line:
            dash_attr = series_dash(index)
            swatch = (
                f'<line x1="{fmt(x)}" y1="{fmt(y + 5)}" x2="{fmt(x + 14)}" '
                f'y2="{fmt(y + 5)}" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
            )
        else:
            swatch = (
                f'<rect x="{fmt(x)}" y="{fmt(y)}" width="11" height="11" fill="{colour}" rx="1.5"/>'
            )
        parts.append(
            f'<g class="legend-item">{swatch}<text x="{fmt(x + 17)}" '
            f'y="{fmt(y + 9.5)}">{escape(entry.name)}</text></g>'
        )
    return f'<g class="legend">{"".join(parts)}</g>'


def legend_block_height(series: Sequence[Series], width: float) -> float:
    places = legend_places(series, width)
    last_row = places[-1][1] if places else 0.0
    return last_row + LEGEND_ROW + 8


def value_axis(
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
            f'<line x1="{fmt(left)}" y1="{fmt(y)}" x2="{fmt(left + plot_width)}" '
            f'y2="{fmt(y)}" stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{fmt(left - 6)}" y="{fmt(y + 3.5)}" text-anchor="end" '
            f'fill="{MUTED}">{escape(format_tick(tick, unit))}</text>'
        )
    if label:
        middle = top + plot_height / 2
        parts.append(
            f'<text class="axis-title" x="12" y="{fmt(middle)}" text-anchor="middle" '
            f'fill="{MUTED}" transform="rotate(-90 12 {fmt(middle)})">{escape(label)}</text>'
        )
    return f'<g class="axis axis-value">{"".join(parts)}</g>'


def category_axis(
    categories: Sequence[str], left: float, band: float, baseline: float, label: str | None
) -> str:
    parts = [
        f'<line x1="{fmt(left)}" y1="{fmt(baseline)}" '
        f'x2="{fmt(left + band * len(categories))}" y2="{fmt(baseline)}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    ]
    for index, category in enumerate(categories):
        x = left + band * (index + 0.5)
        parts.append(
            f'<text x="{fmt(x)}" y="{fmt(baseline + 15)}" text-anchor="middle">'
            f"{escape(shorten(category, band - 2))}</text>"
        )
    if label:
        parts.append(
            f'<text class="axis-title" x="{fmt(left + band * len(categories) / 2)}" '
            f'y="{fmt(baseline + 32)}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(label)}</text>"
        )
    return f'<g class="axis axis-category">{"".join(parts)}</g>'


def describe_chart(categories: Sequence[str], series: Sequence[Series], unit: str) -> str:
    """The data in words, for screen readers (the <desc>)."""
    parts = []
    for index, category in enumerate(categories):
        values = ", ".join(
            f"{entry.name} {value_label(value, unit) if value is not None else 'no figure'}"
            for entry in series
            for value in [entry.values[index]]
        )
        parts.append(f"{category}: {values}")
    return "; ".join(parts) + "."


def plot_area(
    series: Sequence[Series], width: float, height: float, x_label: str | None
) -> tuple[float, float, float, float]:
    """Left, top, width and height of the plot of a column or line chart: below the legend
    (drawn for several series), right of the value axis's tick labels, above the category
    labels and the category axis's title."""
    left, right = 50.0, 8.0
    legend_height = legend_block_height(series, width - left) if len(series) > 1 else 4
    top = legend_height + 10
    bottom = 24 + (18 if x_label else 0)
    return left, top, width - left - right, height - top - bottom
